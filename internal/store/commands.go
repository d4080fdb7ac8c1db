package store

import (
	"time"
)

// Command is a request from a worker to the primary for something only
// the owner of the WhatsApp connection can do (ask for a pairing code, log
// out, steer the sandbox). Workers never call the primary: they insert a
// command and read its outcome, which the primary writes.
type Command struct {
	ID        string            `bson:"_id"`
	Kind      string            `bson:"kind"`
	Args      map[string]string `bson:"args,omitempty"`
	CreatedAt time.Time         `bson:"created_at"`
	// Deadline, when set, is when the worker stops waiting: a primary that
	// takes the command later records it "expired" without running it
	// (a read receipt or a typing indicator is worthless late).
	Deadline time.Time `bson:"deadline,omitempty"`
	// Outcome is empty until the primary ran it: "ok", "error" or
	// "expired" (no primary took it in time).
	Outcome   string            `bson:"outcome,omitempty"`
	Result    map[string]string `bson:"result,omitempty"`
	Error     string            `bson:"error,omitempty"`
	DecidedAt time.Time         `bson:"decided_at,omitempty"`
}
