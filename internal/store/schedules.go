package store

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strconv"
	"time"
)

// Schedule is a message to send at a time (Kind "once", SendAt) or on a
// cron expression in a time zone (Kind "cron"). Workers write its
// definition (create, edit, pause, delete) with Version guarding against
// lost edits; the primary keeps its progress in ScheduleState.
type Schedule struct {
	ID       string    `bson:"_id"`
	KeyID    string    `bson:"key_id,omitempty"`
	Kind     string    `bson:"kind"`
	SendAt   time.Time `bson:"send_at,omitempty"`
	Cron     string    `bson:"cron,omitempty"`
	Timezone string    `bson:"timezone,omitempty"`
	StartAt  time.Time `bson:"start_at,omitempty"`
	EndAt    time.Time `bson:"end_at,omitempty"`
	MaxRuns  int       `bson:"max_runs,omitempty"`
	// Missed is what happens to runs missed while no primary was up:
	// skip, run_once (the latest) or run_all (up to MaxCatchUp).
	Missed  string `bson:"missed"`
	Chat    string `bson:"chat"`
	Text    string `bson:"text,omitempty"`
	ReplyTo string `bson:"reply_to,omitempty"`
	MediaID string `bson:"media_id,omitempty"`
	Paused  bool   `bson:"paused"`
	Deleted bool   `bson:"deleted"`
	// Version counts edits; UpdatedNS orders them for the primary's poll.
	Version   int       `bson:"version"`
	CreatedAt time.Time `bson:"created_at"`
	UpdatedNS int64     `bson:"updated_ns"`
}

// ScheduleState is the primary's progress on a schedule (its one writer).
type ScheduleState struct {
	ID        string    `bson:"_id"`
	Version   int       `bson:"version"` // the definition version NextRunAt was computed from
	NextRunAt time.Time `bson:"next_run_at,omitempty"`
	LastRunAt time.Time `bson:"last_run_at,omitempty"`
	Runs      int       `bson:"runs"`
	Done      bool      `bson:"done"` // no run will come any more
	UpdatedAt time.Time `bson:"updated_at"`
}

// ScheduleRun records one run: enqueued (with its message), or skipped.
type ScheduleRun struct {
	Key        string    `bson:"_id"` // schedule id and due time: one record per run
	ScheduleID string    `bson:"schedule_id"`
	DueAt      time.Time `bson:"due_at"`
	FiredAt    time.Time `bson:"fired_at"`
	Outcome    string    `bson:"outcome"` // enqueued, skipped
	Reason     string    `bson:"reason,omitempty"`
	MessageID  string    `bson:"message_id,omitempty"`
	Epoch      int64     `bson:"epoch"`
}

// ErrConflict is an edit of a version that is no longer current.
var ErrConflict = errors.New("store: the document changed meanwhile")

// RunKey is the id of the run of schedule id due at t.
func RunKey(id string, t time.Time) string { return id + "@" + strconv.FormatInt(t.UnixNano(), 10) }

// RunMessageID is the outbox id of the run of schedule id due at t: the
// same run always enqueues the same message id, so a primary that stopped
// between enqueueing and recording the run cannot enqueue it twice.
func RunMessageID(id string, t time.Time) string {
	sum := sha256.Sum256([]byte(RunKey(id, t)))
	return "msg_s" + hex.EncodeToString(sum[:13])
}

// ScheduleChange is one noted change.
type ScheduleChange struct {
	Key        string `bson:"_id"`
	ScheduleID string `bson:"schedule_id"`
}
