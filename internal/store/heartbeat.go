package store

import (
	"context"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
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

// WriteHeartbeat records hb, creating the document on first use.
func (s *Store) WriteHeartbeat(ctx context.Context, hb Heartbeat) error {
	_, err := s.db.Collection(colHeartbeats).ReplaceOne(ctx, bson.D{{Key: "_id", Value: hb.ID}}, hb,
		options.Replace().SetUpsert(true))
	if err != nil {
		return fmt.Errorf("store: write heartbeat: %w", err)
	}
	return nil
}

// Heartbeats lists the processes seen since since, oldest id first.
func (s *Store) Heartbeats(ctx context.Context, since time.Time) ([]Heartbeat, error) {
	return findAll[Heartbeat](ctx, s.db.Collection(colHeartbeats), "list heartbeats", bson.D{{Key: "last_seen", Value: bson.D{{Key: "$gte", Value: since}}}},
		options.Find().SetSort(bson.D{{Key: "_id", Value: 1}}).SetLimit(1000))
}

// PruneHeartbeats deletes the records of processes not seen since before.
// Only the primary calls it.
func (s *Store) PruneHeartbeats(ctx context.Context, before time.Time) (int64, error) {
	res, err := s.db.Collection(colHeartbeats).DeleteMany(ctx, bson.D{{Key: "last_seen", Value: bson.D{{Key: "$lt", Value: before}}}})
	if err != nil {
		return 0, fmt.Errorf("store: prune heartbeats: %w", err)
	}
	return res.DeletedCount, nil
}
