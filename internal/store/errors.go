package store

import (
	"context"
	"errors"
	"slices"

	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/x/mongo/driver"
	"go.mongodb.org/mongo-driver/v2/x/mongo/driver/topology"
)

// The store's errors come in kinds its callers answer differently, told
// apart here so that no caller needs the driver: the definite answers
// ErrNotFound, ErrExists and ErrConflict; IsUnavailable, the database being
// away; OutcomeUnknown, a write that may or may not have happened; and the
// rest (a document that does not decode, a command the server refused),
// which waiting does not fix.

// awayCodes are the server's answers that mean it cannot serve now (a
// network fault behind a mongos, shutting down, stepping down, not the
// primary, over a time limit): the driver's own list of retryable codes.
var awayCodes = []int{6, 7, 89, 91, 134, 189, 262, 9001, 10107, 11600, 11602, 13435, 13436}

// IsUnavailable reports whether err means the database is away: it could
// not be reached or selected, it did not answer before the deadline, or it
// answered that it cannot serve now. Trying again later may succeed.
func IsUnavailable(err error) bool {
	if err == nil || definite(err) {
		return false
	}
	if notSent(err) || mongo.IsNetworkError(err) || mongo.IsTimeout(err) ||
		errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return true
	}
	var se mongo.ServerError
	return errors.As(err, &se) && slices.ContainsFunc(awayCodes, se.HasErrorCode)
}

// OutcomeUnknown reports whether a write that failed with err may still
// have been applied: the command may have reached the database and no
// answer came back (the connection broke, or the deadline passed while it
// waited for the reply), or the replica set did not confirm it. After any
// other failure the write certainly did not happen.
func OutcomeUnknown(err error) bool {
	if errors.As(err, new(notStored)) {
		return false
	}
	if errors.As(err, new(partlyWritten)) {
		return true
	}
	if err == nil || definite(err) || notSent(err) || answered(err) {
		return false
	}
	var (
		mar mongo.MarshalError
		arg mongo.InvalidArgumentError
	)
	return !errors.As(err, &mar) && !errors.As(err, &arg)
}

// partlyWritten is a failure after part of a write happened: its outcome
// is unknown to the caller, whatever the failure was.
type partlyWritten struct{ error }

func (e partlyWritten) Unwrap() error { return e.error }

func definite(err error) bool {
	return errors.Is(err, ErrNotFound) || errors.Is(err, ErrExists) || errors.Is(err, ErrConflict)
}

// notSent reports the failures that come before the driver sends a
// command: no server selected, no connection checked out or established,
// a deadline that would pass before an answer could come. Nothing reached
// the database.
func notSent(err error) bool {
	var (
		sel   topology.ServerSelectionError
		queue topology.WaitQueueTimeoutError
		pool  driver.RetryablePoolError
	)
	if errors.As(err, &sel) || errors.As(err, &queue) || errors.As(err, &pool) ||
		errors.Is(err, topology.ErrPoolClosed) || errors.Is(err, topology.ErrServerClosed) ||
		errors.Is(err, mongo.ErrClientDisconnected) || errors.Is(err, driver.ErrDeadlineWouldBeExceeded) {
		return true
	}
	var le mongo.LabeledError
	if errors.As(err, &le) {
		// The driver labels a failure to establish a connection
		// SystemOverloadedError (as a server does a command it refuses
		// when overloaded), and a retry that wrote nothing
		// NoWritesPerformed, which it returns only when no earlier attempt
		// may have written. A NetworkError otherwise is a command sent on a
		// connection that failed before the answer.
		switch {
		case le.HasErrorLabel(driver.ErrSystemOverloadedError), le.HasErrorLabel(driver.NoWritesPerformed):
			return true
		case le.HasErrorLabel(driver.NetworkError):
			return false
		}
	}
	// The driver checks the context before it sends; a context error that
	// is not a failed connection's comes from there.
	var conn topology.ConnectionError
	return (errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled)) && !errors.As(err, &conn)
}

// answered reports a refusal the server sent for the whole write: a
// command error or a write error (a duplicate key, say). A write concern
// error is not one: the write was applied and not confirmed.
func answered(err error) bool {
	var we mongo.WriteException
	if errors.As(err, &we) {
		return we.WriteConcernError == nil && len(we.WriteErrors) > 0
	}
	var ce mongo.CommandError
	return errors.As(err, &ce) && ce.Code != 0 && !ce.HasErrorLabel(driver.NetworkError)
}
