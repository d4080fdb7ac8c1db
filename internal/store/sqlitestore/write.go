package sqlitestore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

	"app/internal/store"
)

// stmt is one SQL statement of the store, prepared at Open on the pool
// that runs it. Every statement is declared with query or exec, so the
// plan test sees them all.
type stmt struct {
	id    int
	sql   string
	write bool
}

var statements []*stmt

// query declares a reading statement.
func query(sql string) *stmt { return declare(sql, false) }

// exec declares a statement run in a write transaction (it may read too).
func exec(sql string) *stmt { return declare(sql, true) }

func declare(sql string, write bool) *stmt {
	s := &stmt{id: len(statements), sql: sql, write: write}
	statements = append(statements, s)
	return s
}

// migrations are the schema's steps; user_version counts those applied.
// Each domain file adds its tables with schema, in the first step: no
// release was made, so there is nothing to migrate yet.
var migrations = [][]string{{}}

// schema adds DDL to the first step.
func schema(ddl ...string) bool {
	migrations[0] = append(migrations[0], ddl...)
	return true
}

// writeReq is one write waiting for a commit.
type writeReq struct {
	ctx  context.Context
	fn   func(tx *wtx) error
	done chan error
}

// wtx is a write transaction, with the store's prepared statements.
type wtx struct {
	s  *Store
	tx *sql.Tx
}

// nested runs fn in a savepoint inside the write: its error undoes its
// own writes only.
func (t *wtx) nested(fn func(tx *wtx) error) error {
	if _, err := t.tx.Exec("SAVEPOINT n"); err != nil {
		return err
	}
	if err := fn(t); err != nil {
		if _, rerr := t.tx.Exec("ROLLBACK TO n"); rerr != nil {
			return errors.Join(err, rerr)
		}
		_, _ = t.tx.Exec("RELEASE n")
		return err
	}
	_, err := t.tx.Exec("RELEASE n")
	return err
}

func (t *wtx) exec(st *stmt, args ...any) (sql.Result, error) {
	t.s.stats.CommandSent()
	return t.tx.Stmt(t.s.w[st.id]).Exec(args...)
}

func (t *wtx) queryRow(st *stmt, args ...any) *sql.Row {
	t.s.stats.CommandSent()
	return t.tx.Stmt(t.s.w[st.id]).QueryRow(args...)
}

type txKey struct{}

// Atomically runs f in one write: the writes f makes with the context it
// is given join it (see write), so they commit together or not at all.
func (s *Store) Atomically(ctx context.Context, f func(ctx context.Context) error) error {
	if t, ok := ctx.Value(txKey{}).(*wtx); ok && t.s == s {
		return f(ctx)
	}
	return s.write(ctx, func(t *wtx) error { return f(context.WithValue(ctx, txKey{}, t)) })
}

// write runs fn in this process's next group commit and returns when that
// commit is on disk (or failed). fn runs in its own savepoint: its error
// undoes its writes and no one else's. Inside Atomically, fn runs at once
// in the enclosing write, in a savepoint of its own.
func (s *Store) write(ctx context.Context, fn func(tx *wtx) error) error {
	if t, ok := ctx.Value(txKey{}).(*wtx); ok && t.s == s {
		return t.nested(fn)
	}
	if err := ctx.Err(); err != nil {
		return store.NotStored(err)
	}
	if err := s.usable(); err != nil {
		return store.NotStored(err)
	}
	r := &writeReq{ctx: ctx, fn: fn, done: make(chan error, 1)}
	select {
	case s.reqs <- r:
	case <-ctx.Done():
		return store.NotStored(ctx.Err())
	case <-s.closing:
		return errClosed
	}
	// Once queued, the outcome is waited for: a commit takes a few
	// milliseconds (or fails within the busy timeout), and leaving earlier
	// would make a known outcome unknown.
	return <-r.done
}

// commits is the process's one writer.
func (s *Store) commits() {
	defer close(s.done)
	for {
		var first *writeReq
		select {
		case first = <-s.reqs:
		case <-s.closing:
			// Commit what was queued before the close.
			for {
				select {
				case r := <-s.reqs:
					s.commit([]*writeReq{r})
				default:
					return
				}
			}
		}
		batch := []*writeReq{first}
	more:
		for len(batch) < maxBatch {
			select {
			case r := <-s.reqs:
				batch = append(batch, r)
			default:
				break more
			}
		}
		s.commit(batch)
	}
}

func (s *Store) commit(batch []*writeReq) {
	errs := make([]error, len(batch))
	err := s.commitBatch(batch, errs)
	for i, r := range batch {
		if err != nil && errs[i] == nil {
			errs[i] = err
		}
		r.done <- errs[i]
	}
}

func (s *Store) commitBatch(batch []*writeReq, errs []error) error {
	s.stats.CheckedOut()
	defer s.stats.CheckedIn()
	if err := s.sameFile(); err != nil {
		return store.NotStored(err)
	}
	tx, err := s.wdb.Begin()
	if err != nil {
		s.stats.CheckoutFailed()
		return store.NotStored(fmt.Errorf("store: begin: %w", err))
	}
	t := &wtx{s: s, tx: tx}
	ran := 0
	for i, r := range batch {
		if err := r.ctx.Err(); err != nil {
			errs[i] = store.NotStored(err)
			continue
		}
		if _, err := tx.Exec("SAVEPOINT w"); err != nil {
			_ = tx.Rollback()
			return store.NotStored(fmt.Errorf("store: savepoint: %w", err))
		}
		errs[i] = r.fn(t)
		if errs[i] != nil {
			if _, err := tx.Exec("ROLLBACK TO w"); err != nil {
				_ = tx.Rollback()
				return store.NotStored(fmt.Errorf("store: roll back a write: %w", err))
			}
			if !errors.Is(errs[i], store.ErrExists) && !errors.Is(errs[i], store.ErrConflict) && !errors.Is(errs[i], store.ErrNotFound) {
				errs[i] = store.NotStored(errs[i])
			}
		} else {
			ran++
		}
		if _, err := tx.Exec("RELEASE w"); err != nil {
			_ = tx.Rollback()
			return store.NotStored(fmt.Errorf("store: release: %w", err))
		}
	}
	if ran == 0 {
		return tx.Rollback()
	}
	if err := tx.Commit(); err != nil {
		_ = tx.Rollback()
		return commitFailed{fmt.Errorf("store: commit: %w", err)}
	}
	return nil
}

// The reading helpers: each row's first column is the record's JSON.

func (s *Store) queryRows(ctx context.Context, st *stmt, args ...any) (*sql.Rows, error) {
	if err := s.usable(); err != nil {
		return nil, err
	}
	s.stats.CommandSent()
	return s.r[st.id].QueryContext(ctx, args...)
}

// scanRow runs a reading statement and scans its first row into dest;
// sql.ErrNoRows when there is none.
func (s *Store) scanRow(ctx context.Context, st *stmt, args []any, dest ...any) error {
	if err := s.usable(); err != nil {
		return err
	}
	s.stats.CommandSent()
	return s.r[st.id].QueryRowContext(ctx, args...).Scan(dest...)
}

// one reads the record st finds, or store.ErrNotFound.
func one[T any](ctx context.Context, s *Store, what string, st *stmt, args ...any) (T, error) {
	var doc []byte
	err := s.scanRow(ctx, st, args, &doc)
	return decoded[T](what, doc, err)
}

// decoded is the record doc holds, after the read that filled it ended
// with err: store.ErrNotFound when it found no row.
func decoded[T any](what string, doc []byte, err error) (T, error) {
	var v T
	if errors.Is(err, sql.ErrNoRows) {
		return v, store.ErrNotFound
	}
	if err != nil {
		return v, fmt.Errorf("store: %s: %w", what, err)
	}
	if err := json.Unmarshal(doc, &v); err != nil {
		return v, fmt.Errorf("store: %s: %w", what, err)
	}
	return v, nil
}

// all reads every record st finds.
func all[T any](ctx context.Context, s *Store, what string, st *stmt, args ...any) ([]T, error) {
	rows, err := s.queryRows(ctx, st, args...)
	if err != nil {
		return nil, fmt.Errorf("store: %s: %w", what, err)
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		var doc []byte
		if err := rows.Scan(&doc); err != nil {
			return nil, fmt.Errorf("store: %s: %w", what, err)
		}
		var v T
		if err := json.Unmarshal(doc, &v); err != nil {
			return nil, fmt.Errorf("store: %s: %w", what, err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: %s: %w", what, err)
	}
	return out, nil
}

// allOf is all for the records whose keys are among keys, which the
// statement takes as one JSON array (json_each): none for no keys.
func allOf[T any](ctx context.Context, s *Store, what string, st *stmt, keys []string) ([]T, error) {
	if len(keys) == 0 {
		return nil, nil
	}
	list, err := json.Marshal(keys)
	if err != nil {
		return nil, err
	}
	return all[T](ctx, s, what, st, string(list))
}

// scalar reads one value.
func scalar[T any](ctx context.Context, s *Store, what string, st *stmt, args ...any) (T, error) {
	var v T
	if err := s.scanRow(ctx, st, args, &v); err != nil && !errors.Is(err, sql.ErrNoRows) {
		return v, fmt.Errorf("store: %s: %w", what, err)
	}
	return v, nil
}

// txOne reads the record st finds inside a write, or store.ErrNotFound.
func txOne[T any](t *wtx, what string, st *stmt, args ...any) (T, error) {
	var doc []byte
	err := t.queryRow(st, args...).Scan(&doc)
	return decoded[T](what, doc, err)
}

// doc is v as its JSON document.
func doc(v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("store: encode: %w", err)
	}
	return b, nil
}

// affected is how many rows a write changed.
func affected(res sql.Result) int64 {
	n, _ := res.RowsAffected()
	return n
}
