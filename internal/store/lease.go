package store

import (
	"time"
)

// Lease is one epoch of the primary lease. Each epoch is its own document
// with the epoch as _id, so taking the lease is a unique insert (exactly one
// contender wins, on MongoDB and on FerretDB alike) and renewing it is an
// update by its one holder. The current lease is the highest epoch.
type Lease struct {
	Epoch      int64     `bson:"_id"`
	Holder     string    `bson:"holder"`
	Host       string    `bson:"host"`
	PID        int       `bson:"pid"`
	AcquiredAt time.Time `bson:"acquired_at"`
	ExpiresAt  time.Time `bson:"expires_at"`
}
