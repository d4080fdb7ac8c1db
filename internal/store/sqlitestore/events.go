package sqlitestore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"app/internal/store"
)

// The event log: one row per event, its position the primary key. The
// primary is its one writer and appends in order.

var _ = schema(
	`CREATE TABLE events (
		seq INTEGER PRIMARY KEY,
		account TEXT NOT NULL DEFAULT 'default',
		type TEXT NOT NULL,
		at_ns INTEGER NOT NULL,
		epoch INTEGER NOT NULL,
		data BLOB NOT NULL
	) STRICT`,
	`CREATE INDEX events_at ON events(at_ns)`,
)

var (
	sqlAppendEvent   = exec(`INSERT INTO events(seq, type, at_ns, epoch, data) VALUES(?, ?, ?, ?, ?)`)
	sqlLastEvent     = query(`SELECT seq FROM events ORDER BY seq DESC LIMIT 1`)
	sqlLastEventW    = exec(`SELECT seq FROM events ORDER BY seq DESC LIMIT 1`)
	sqlFirstEvent    = query(`SELECT seq FROM events ORDER BY seq LIMIT 1`)
	sqlEvents        = query(`SELECT seq, type, at_ns, epoch, data FROM events WHERE seq > ? ORDER BY seq LIMIT ?`)
	sqlEventAt       = query(`SELECT seq FROM events WHERE at_ns >= ? ORDER BY at_ns LIMIT 1`)
	sqlPruneEvents   = exec(`DELETE FROM events WHERE at_ns < ? AND seq < ?`)
	sqlPruneEventsTo = exec(`DELETE FROM events WHERE seq <= ?`)
)

// AppendEvent inserts the event at seq. An insert whose outcome was
// unknown and is repeated finds its own row: ErrExists, which the writer
// treats as done.
func (s *Store) AppendEvent(ctx context.Context, seq int64, typ string, epoch int64, data any) error {
	js, err := store.EventData(typ, data)
	if err != nil {
		return err
	}
	err = s.write(ctx, func(t *wtx) error {
		_, err := t.exec(sqlAppendEvent, seq, typ, time.Now().UnixNano(), epoch, []byte(js))
		if duplicate(err) {
			return store.ErrExists
		}
		return err
	})
	if err == store.ErrExists {
		return err
	}
	if err != nil {
		return fmt.Errorf("store: append event %d: %w", seq, err)
	}
	return nil
}

// LastEventSeq is the highest sequence number in the log, 0 when empty.
func (s *Store) LastEventSeq(ctx context.Context) (int64, error) {
	return scalar[int64](ctx, s, "last event", sqlLastEvent)
}

// FirstEventSeq is the lowest sequence number still in the log, 0 when
// the log is empty.
func (s *Store) FirstEventSeq(ctx context.Context) (int64, error) {
	return scalar[int64](ctx, s, "first event", sqlFirstEvent)
}

// Events lists events after seq, in order, at most limit.
func (s *Store) Events(ctx context.Context, after int64, limit int) ([]store.Event, error) {
	rows, err := s.queryRows(ctx, sqlEvents, after, limit)
	if err != nil {
		return nil, fmt.Errorf("store: read events: %w", err)
	}
	defer rows.Close()
	var out []store.Event
	for rows.Next() {
		var e store.Event
		var at int64
		var data []byte
		if err := rows.Scan(&e.Seq, &e.Type, &at, &e.Epoch, &data); err != nil {
			return nil, fmt.Errorf("store: read events: %w", err)
		}
		e.At, e.Data = time.Unix(0, at).UTC(), data
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: read events: %w", err)
	}
	return out, nil
}

// EventSeqAt is the position just before the first event at or after t
// (the last position when none is): a replay from there delivers the
// events from t on. The one writer appends in time order, so the first
// event by time is the first by position.
func (s *Store) EventSeqAt(ctx context.Context, t time.Time) (int64, error) {
	var seq int64
	err := s.scanRow(ctx, sqlEventAt, []any{t.UnixNano()}, &seq)
	if errors.Is(err, sql.ErrNoRows) {
		return s.LastEventSeq(ctx)
	}
	if err != nil {
		return 0, fmt.Errorf("store: find event by time: %w", err)
	}
	return seq - 1, nil
}

// PruneEvents deletes events written before t (the log's retention). The
// newest event always stays: it holds the log's position, from which the
// next primary continues, so numbers never start over.
func (s *Store) PruneEvents(ctx context.Context, before time.Time) (int64, error) {
	var n int64
	err := s.write(ctx, func(t *wtx) error {
		var last int64
		if err := t.queryRow(sqlLastEventW).Scan(&last); err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		res, err := t.exec(sqlPruneEvents, before.UnixNano(), last)
		if err == nil {
			n = affected(res)
		}
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("store: prune events: %w", err)
	}
	return n, nil
}

// PruneEventsBeyond deletes the oldest events so that at most keep
// remain (the log's size limit). Numbers are contiguous, so this is a
// range of positions.
func (s *Store) PruneEventsBeyond(ctx context.Context, keep int64) (int64, error) {
	if keep <= 0 {
		return 0, nil
	}
	var n int64
	err := s.write(ctx, func(t *wtx) error {
		var last int64
		if err := t.queryRow(sqlLastEventW).Scan(&last); err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		if last <= keep {
			return nil
		}
		res, err := t.exec(sqlPruneEventsTo, last-keep)
		if err == nil {
			n = affected(res)
		}
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("store: prune events beyond %d: %w", keep, err)
	}
	return n, nil
}

// SetEventHead has nothing to record: the log's last position is the end
// of its primary key, as cheap to read as a head row would be, and one
// write fewer for each burst of appends.
func (s *Store) SetEventHead(context.Context, int64) error { return nil }

// EventHead is the log's newest position (LastEventSeq); ErrNotFound
// while the log is empty, as on MongoDB before the first head.
func (s *Store) EventHead(ctx context.Context) (int64, error) {
	seq, err := s.LastEventSeq(ctx)
	if err == nil && seq == 0 {
		return 0, store.ErrNotFound
	}
	return seq, err
}
