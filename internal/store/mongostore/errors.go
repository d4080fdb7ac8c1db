package mongostore

import (
	"app/internal/store"
	"reflect"
	"strings"

	"context"
	"errors"
	"slices"

	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/x/mongo/driver"
	"go.mongodb.org/mongo-driver/v2/x/mongo/driver/topology"
)

// classify sorts the driver's errors for store.IsUnavailable and
// store.OutcomeUnknown; errors that did not come from the driver are not
// its to sort.
func classify(err error) (store.ErrorKind, bool) {
	if !fromDriver(err) {
		return store.Refused, false
	}
	k := store.Refused
	if isUnavailable(err) {
		k |= store.Away
	}
	if outcomeUnknown(err) {
		k |= store.Unknown
	}
	return k, true
}

// fromDriver reports whether err, or an error it wraps, is the driver's.
func fromDriver(err error) bool {
	if errors.Is(err, topology.ErrPoolClosed) || errors.Is(err, topology.ErrServerClosed) ||
		errors.Is(err, mongo.ErrClientDisconnected) || errors.Is(err, driver.ErrDeadlineWouldBeExceeded) {
		return true
	}
	found := false
	var walk func(error)
	walk = func(e error) {
		for e != nil && !found {
			t := reflect.TypeOf(e)
			if t.Kind() == reflect.Pointer {
				t = t.Elem()
			}
			if strings.HasPrefix(t.PkgPath(), "go.mongodb.org/mongo-driver/") {
				found = true
				return
			}
			switch u := e.(type) {
			case interface{ Unwrap() []error }:
				for _, x := range u.Unwrap() {
					walk(x)
				}
				return
			case interface{ Unwrap() error }:
				e = u.Unwrap()
			default:
				return
			}
		}
	}
	walk(err)
	return found
}

// isUnavailable reports whether err means the database is away: it could
// not be reached or selected, it did not answer before the deadline, or it
// answered that it cannot serve now. Trying again later may succeed.
func isUnavailable(err error) bool {
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

// outcomeUnknown reports whether a write that failed with err may still
// have been applied: the command may have reached the database and no
// answer came back (the connection broke, or the deadline passed while it
// waited for the reply), or the replica set did not confirm it. After any
// other failure the write certainly did not happen.
func outcomeUnknown(err error) bool {
	if err == nil || definite(err) || notSent(err) || answered(err) {
		return false
	}
	var (
		mar mongo.MarshalError
		arg mongo.InvalidArgumentError
	)
	return !errors.As(err, &mar) && !errors.As(err, &arg)
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

// awayCodes are the server's answers that mean it cannot serve now (a
// network fault behind a mongos, shutting down, stepping down, not the
// primary, over a time limit): the driver's own list of retryable codes.
var awayCodes = []int{6, 7, 89, 91, 134, 189, 262, 9001, 10107, 11600, 11602, 13435, 13436}

func definite(err error) bool {
	return errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrExists) || errors.Is(err, store.ErrConflict)
}
