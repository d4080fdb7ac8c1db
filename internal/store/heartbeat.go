package store

import (
	"time"
)

// Heartbeat is one process's record of life. Each process writes only its
// own document (one writer per document).
type Heartbeat struct {
	ID        string    `bson:"_id"` // host/role/worker
	Role      string    `bson:"role"`
	Worker    string    `bson:"worker,omitempty"`
	Host      string    `bson:"host"`
	PID       int       `bson:"pid"`
	Version   string    `bson:"version"`
	StartedAt time.Time `bson:"started_at"`
	LastSeen  time.Time `bson:"last_seen"`
	Requests  int64     `bson:"requests"`
	State     string    `bson:"state"` // serving, degraded, holder, standby, stopped
}

// Late reports whether the process missed three heartbeats of interval
// without saying it stopped: hung, killed, or its machine is gone.
func (hb Heartbeat) Late(now time.Time, interval time.Duration) bool {
	return hb.State != "stopped" && now.Sub(hb.LastSeen) >= 3*interval
}
