package store

import (
	"context"
	"errors"
)

// The store's errors come in kinds its callers answer differently, told
// apart here so that no caller needs an engine's driver: the definite
// answers ErrNotFound, ErrExists and ErrConflict; IsUnavailable, the
// database being away; OutcomeUnknown, a write that may or may not have
// happened; and the rest (a record that does not decode, a statement the
// database refused), which waiting does not fix. Each engine sorts its own
// errors (Engine.Classify).

// ErrorKind is how an engine sorts one of its errors: Refused, or Away,
// Unknown or both.
type ErrorKind int

// Error kinds.
const (
	// Refused: the database answered with a refusal, or the failure came
	// before anything was sent; waiting does not help, nothing was written.
	Refused ErrorKind = 0
	// Away: the database cannot serve now; trying later may succeed.
	Away ErrorKind = 1
	// Unknown: a write may have happened.
	Unknown ErrorKind = 2
)

// IsUnavailable reports whether err means the database is away: it could
// not be reached, it did not answer before the deadline, or it answered
// that it cannot serve now (locked, disk full). Trying again later may
// succeed.
func IsUnavailable(err error) bool {
	if err == nil || definite(err) {
		return false
	}
	if k, ok := classify(err); ok {
		return k&Away != 0
	}
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled)
}

// OutcomeUnknown reports whether a write that failed with err may still
// have been applied: it may have reached the database and no answer came
// back, or the replica set did not confirm it. After any other failure
// the write certainly did not happen.
func OutcomeUnknown(err error) bool {
	if err == nil || definite(err) || errors.As(err, new(notStored)) {
		return false
	}
	if errors.As(err, new(partlyWritten)) {
		return true
	}
	k, ok := classify(err)
	return ok && k&Unknown != 0
}

func classify(err error) (ErrorKind, bool) {
	enginesMu.RLock()
	defer enginesMu.RUnlock()
	for _, e := range engines {
		if e.Classify == nil {
			continue
		}
		if k, ok := e.Classify(err); ok {
			return k, true
		}
	}
	return Refused, false
}

func definite(err error) bool {
	return errors.Is(err, ErrNotFound) || errors.Is(err, ErrExists) || errors.Is(err, ErrConflict)
}

// NotStored marks a failure after which the write is known not to have
// happened, whatever the error alone would say: what it wrote was taken
// back.
func NotStored(err error) error { return notStored{err} }

type notStored struct{ error }

func (e notStored) Unwrap() error { return e.error }

// PartlyWritten marks a failure after part of a write happened: its
// outcome is unknown to the caller, whatever the failure was.
func PartlyWritten(err error) error { return partlyWritten{err} }

type partlyWritten struct{ error }

func (e partlyWritten) Unwrap() error { return e.error }
