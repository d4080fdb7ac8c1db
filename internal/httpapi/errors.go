package httpapi

import (
	"context"
	"errors"
	"net/http"
	"time"

	"app/internal/store"
)

// dbTimeout bounds a request's database work: past it, the route answers
// that the database did not answer. Routes that wait for the primary or
// move media have their own.
const dbTimeout = 10 * time.Second

// dbContext is a request's context for its database work.
func dbContext(r *http.Request) (context.Context, context.CancelFunc) {
	return context.WithTimeout(r.Context(), dbTimeout)
}

// defaultSettleTimeout bounds how long a create whose insert went
// unanswered keeps trying to learn its outcome, from that failure on: long
// enough for a database restart or a replica set election.
const defaultSettleTimeout = 10 * time.Second

func (s *Server) settleWithin() time.Duration {
	if s.settleTimeout > 0 {
		return s.settleTimeout
	}
	return defaultSettleTimeout
}

// The answers to a failed database call, one helper for each kind of
// failure; storeFailed and writeFailed choose among them.

func notFound(w http.ResponseWriter, r *http.Request, msg, field string) {
	writeError(w, r, http.StatusNotFound, "not_found", msg, field)
}

func conflict(w http.ResponseWriter, r *http.Request, msg, field string) {
	writeError(w, r, http.StatusConflict, "conflict", msg, field)
}

// databaseUnavailable answers 503 with Retry-After: the database is away
// and the request changed nothing, so sending it again later is safe.
func (s *Server) databaseUnavailable(w http.ResponseWriter, r *http.Request, err error) {
	s.logFor(r).Warn().Err(err).Msg("The database did not answer.")
	w.Header().Set("Retry-After", "1")
	writeError(w, r, http.StatusServiceUnavailable, "database_unavailable", "the database did not answer; try again", "")
}

// serverError answers 500 with an error id that is also in the log line
// with the error: a fault of ours that waiting does not fix.
func (s *Server) serverError(w http.ResponseWriter, r *http.Request, err error) {
	errID := newID()
	s.logFor(r).Error().Err(err).Str("error_id", errID).Msg("The request failed on an unexpected error.")
	writeError(w, r, http.StatusInternalServerError, "internal", "internal error (error id "+errID+")", "")
}

// outcomeUnknown answers 503 outcome_unknown, without Retry-After: the
// write may have happened, so a client must not simply send it again; id,
// when there is one, names what the write created or changed, and a GET
// of path settles the question.
func (s *Server) outcomeUnknown(w http.ResponseWriter, r *http.Request, err error, id, path string) {
	s.logFor(r).Warn().Err(err).Str("id", id).Msg("The database did not confirm a write that may have happened.")
	msg := "the database did not confirm the write; it may have happened"
	if id != "" && path != "" {
		msg += ": GET " + path + " tells whether it did"
	}
	var body struct {
		Error struct {
			apiError
			ID string `json:"id,omitempty"`
		} `json:"error"`
	}
	body.Error.apiError = apiError{Code: "outcome_unknown", Message: msg, RequestID: RequestID(r)}
	body.Error.ID = id
	writeJSON(w, http.StatusServiceUnavailable, body)
}

// storeFailed answers a failed database call: 404 for a record that is not
// there, 409 for one that exists or changed meanwhile, 503 with Retry-After
// when the database is away, and 500 with an error id for anything else
// (a document that does not decode, a command the server refused). A
// write that may have happened goes to writeFailed instead.
func (s *Server) storeFailed(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, store.ErrNotFound):
		notFound(w, r, "it does not exist (any more)", "")
	case errors.Is(err, store.ErrExists):
		conflict(w, r, "it exists already", "")
	case errors.Is(err, store.ErrConflict):
		conflict(w, r, "it changed meanwhile; read it again", "")
	case store.IsUnavailable(err):
		s.databaseUnavailable(w, r, err)
	default:
		s.serverError(w, r, err)
	}
}

// writeFailed answers a failed write: outcomeUnknown when it may have
// happened (id and path name what it wrote), storeFailed otherwise.
func (s *Server) writeFailed(w http.ResponseWriter, r *http.Request, err error, id, path string) {
	if store.OutcomeUnknown(err) {
		s.outcomeUnknown(w, r, err, id, path)
		return
	}
	s.storeFailed(w, r, err)
}

// readBack settles an unknown outcome by reading: it runs read, which
// looks up what the write created, until the database answers, for at
// most settleWithin, and reports whether it found it.
func (s *Server) readBack(r *http.Request, read func(context.Context) error) bool {
	sctx, cancel := context.WithTimeout(r.Context(), s.settleWithin())
	defer cancel()
	for wait := 20 * time.Millisecond; ; wait = min(2*wait, time.Second) {
		err := read(sctx)
		if err == nil || !store.IsUnavailable(err) {
			return err == nil
		}
		select {
		case <-sctx.Done():
			return false
		case <-time.After(wait):
		}
	}
}

// insertSettled runs insert, which stores a new record under an id chosen
// before it, and settles an unknown outcome: when the insert may have
// reached the database and no answer came back, it runs it again with the
// same id until the database answers, for at most settleWithin. Running
// it again is safe: it stores the record, or finds it stored by the first
// run (store.ErrExists). again says it ran more than once; ctx is the
// context to go on with, as the first may be spent.
func (s *Server) insertSettled(ctx context.Context, r *http.Request, insert func(context.Context) error) (_ context.Context, again bool, err error) {
	err = insert(ctx)
	if !store.OutcomeUnknown(err) {
		return ctx, false, err
	}
	s.logFor(r).Warn().Err(err).Msg("The database did not answer an insert; writing it again with the same id to learn the outcome.")
	sctx, cancel := context.WithTimeout(r.Context(), s.settleWithin())
	defer cancel()
	for wait := 20 * time.Millisecond; ; wait = min(2*wait, time.Second) {
		select {
		case <-sctx.Done():
			return ctx, true, err
		case <-time.After(wait):
		}
		e := insert(sctx)
		if e == nil || errors.Is(e, store.ErrExists) {
			// Released when the request ends, as its children are.
			next, cancel := dbContext(r)
			context.AfterFunc(r.Context(), cancel)
			return next, true, e
		}
		if !store.IsUnavailable(e) && !store.OutcomeUnknown(e) {
			// A refusal now says nothing about the first try.
			return ctx, true, err
		}
	}
}
