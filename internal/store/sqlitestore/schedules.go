package sqlitestore

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"app/internal/store"
)

// Schedules: the definitions workers write (versioned), the changes noted
// for the primary, and the primary's progress and runs.

var _ = schema(
	`CREATE TABLE schedules (
		id TEXT PRIMARY KEY,
		version INTEGER NOT NULL,
		deleted INTEGER NOT NULL,
		created_ns INTEGER NOT NULL,
		updated_ns INTEGER NOT NULL,
		media_id TEXT,
		doc BLOB NOT NULL
	) STRICT`,
	`CREATE INDEX schedules_updated ON schedules(updated_ns)`,
	`CREATE INDEX schedules_live_newest ON schedules(deleted, created_ns, id)`,
	// Media retention asks whether a live schedule sends a file.
	`CREATE INDEX schedules_media ON schedules(media_id) WHERE media_id IS NOT NULL`,
	// Emptied by the primary on each pass: read whole.
	`CREATE TABLE schedule_changes (
		key TEXT PRIMARY KEY,
		schedule_id TEXT NOT NULL
	) STRICT`,
	// One row per schedule, read whole when a primary takes over.
	`CREATE TABLE schedule_state (
		id TEXT PRIMARY KEY,
		doc BLOB NOT NULL
	) STRICT`,
	`CREATE TABLE schedule_runs (
		key TEXT PRIMARY KEY,
		schedule_id TEXT NOT NULL,
		due_ns INTEGER NOT NULL,
		doc BLOB NOT NULL
	) STRICT`,
	`CREATE INDEX schedule_runs_due ON schedule_runs(schedule_id, due_ns)`,
)

var (
	sqlCreateSchedule = exec(`INSERT INTO schedules(id, version, deleted, created_ns, updated_ns, media_id, doc)
		VALUES(?, ?, ?, ?, ?, ?, ?)`)
	// The compare-and-set: the row changes only at the version read.
	sqlUpdateSchedule = exec(`UPDATE schedules SET version = ?, deleted = ?, created_ns = ?, updated_ns = ?, media_id = ?, doc = ?
		WHERE id = ? AND version = ?`)
	sqlNoteScheduleChange = exec(`INSERT INTO schedule_changes(key, schedule_id) VALUES(?, ?)
		ON CONFLICT(key) DO NOTHING`)
	sqlScheduleChanges = query(`SELECT key, schedule_id FROM schedule_changes ORDER BY rowid LIMIT ?`)
	sqlForgetChange    = exec(`DELETE FROM schedule_changes WHERE key = ?`)
	sqlScheduleAny     = query(`SELECT doc FROM schedules WHERE id = ?`)
	sqlSchedule        = query(`SELECT doc FROM schedules WHERE id = ? AND deleted = 0`)
	sqlSchedulesSince  = query(`SELECT doc FROM schedules WHERE updated_ns > ? ORDER BY updated_ns LIMIT ?`)
	sqlSchedulesPage   = query(`SELECT doc FROM schedules WHERE deleted = 0 AND (created_ns, id) < (?, ?)
		ORDER BY created_ns DESC, id DESC LIMIT ?`)
	sqlScheduleStates    = query(`SELECT doc FROM schedule_state ORDER BY id`)
	sqlScheduleState     = query(`SELECT doc FROM schedule_state WHERE id = ?`)
	sqlSaveScheduleState = exec(`INSERT INTO schedule_state(id, doc) VALUES(?, ?)
		ON CONFLICT(id) DO UPDATE SET doc = excluded.doc`)
	sqlRecordRun = exec(`INSERT INTO schedule_runs(key, schedule_id, due_ns, doc) VALUES(?, ?, ?, ?)
		ON CONFLICT(key) DO NOTHING`)
	sqlScheduleRuns = query(`SELECT doc FROM schedule_runs WHERE schedule_id = ? AND due_ns < ?
		ORDER BY due_ns DESC LIMIT ?`)
)

// scheduleCols are sc's typed columns, in sqlCreateSchedule's order after
// the id, followed by its document.
func scheduleCols(sc *store.Schedule) ([]any, error) {
	d, err := doc(sc)
	if err != nil {
		return nil, err
	}
	return []any{sc.Version, sc.Deleted, ns(sc.CreatedAt), sc.UpdatedNS, nullIfEmpty(sc.MediaID), d}, nil
}

// CreateSchedule inserts sc (version 1) and notes the change for the
// primary, in one transaction; ErrExists when its id is taken. An insert
// run again notes the change again, as on MongoDB: the primary reading a
// definition twice changes nothing.
func (s *Store) CreateSchedule(ctx context.Context, sc *store.Schedule) error {
	if sc.Version == 0 {
		// Set once, so an insert run again writes the same document.
		now := time.Now()
		sc.Version, sc.CreatedAt, sc.UpdatedNS = 1, now, now.UnixNano()
	}
	cols, err := scheduleCols(sc)
	if err != nil {
		return err
	}
	exists := false
	err = s.write(ctx, func(t *wtx) error {
		_, err := t.exec(sqlCreateSchedule, append([]any{sc.ID}, cols...)...)
		if duplicate(err) {
			exists = true
		} else if err != nil {
			return err
		}
		return noteScheduleChange(t, sc)
	})
	if err != nil {
		return fmt.Errorf("store: create schedule: %w", err)
	}
	if exists {
		return fmt.Errorf("store: create schedule %s: %w", sc.ID, store.ErrExists)
	}
	return nil
}

// CreateSchedules inserts many schedules at once (benchmarks, imports),
// all or none: ErrExists when an id is taken. No change is noted: a
// primary reads every definition when it takes over.
func (s *Store) CreateSchedules(ctx context.Context, scs []store.Schedule) error {
	now := time.Now()
	rows := make([][]any, len(scs))
	for i := range scs {
		scs[i].Version, scs[i].CreatedAt, scs[i].UpdatedNS = 1, now, now.UnixNano()+int64(i)
		cols, err := scheduleCols(&scs[i])
		if err != nil {
			return err
		}
		rows[i] = append([]any{scs[i].ID}, cols...)
	}
	err := s.write(ctx, func(t *wtx) error {
		for _, r := range rows {
			if _, err := t.exec(sqlCreateSchedule, r...); err != nil {
				if duplicate(err) {
					return store.ErrExists
				}
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: create schedules: %w", err)
	}
	return nil
}

// noteScheduleChange tells the primary a definition changed: a small
// table it reads on every pass and empties, so noticing an edit costs no
// scan of every schedule.
func noteScheduleChange(t *wtx, sc *store.Schedule) error {
	_, err := t.exec(sqlNoteScheduleChange, sc.ID+"#"+strconv.Itoa(sc.Version), sc.ID)
	return err
}

// ScheduleChanges lists noted changes, oldest first, at most limit.
func (s *Store) ScheduleChanges(ctx context.Context, limit int) ([]store.ScheduleChange, error) {
	rows, err := s.queryRows(ctx, sqlScheduleChanges, findLimit(limit))
	if err != nil {
		return nil, fmt.Errorf("store: read schedule changes: %w", err)
	}
	defer rows.Close()
	var out []store.ScheduleChange
	for rows.Next() {
		var c store.ScheduleChange
		if err := rows.Scan(&c.Key, &c.ScheduleID); err != nil {
			return nil, fmt.Errorf("store: read schedule changes: %w", err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: read schedule changes: %w", err)
	}
	return out, nil
}

// ForgetScheduleChanges deletes noted changes once taken.
func (s *Store) ForgetScheduleChanges(ctx context.Context, keys []string) error {
	if len(keys) == 0 {
		return nil
	}
	if err := s.write(ctx, func(t *wtx) error {
		for _, k := range keys {
			if _, err := t.exec(sqlForgetChange, k); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		return fmt.Errorf("store: forget schedule changes: %w", err)
	}
	return nil
}

// ScheduleAny reads a definition, deleted or not.
func (s *Store) ScheduleAny(ctx context.Context, id string) (store.Schedule, error) {
	return one[store.Schedule](ctx, s, "read schedule", sqlScheduleAny, id)
}

// Schedule reads one schedule (deleted ones are not found).
func (s *Store) Schedule(ctx context.Context, id string) (store.Schedule, error) {
	return one[store.Schedule](ctx, s, "read schedule", sqlSchedule, id)
}

// UpdateSchedule replaces the definition if it is still at version
// sc.Version, and moves it to the next version; ErrConflict when the
// stored version is another (or there is no such schedule). The change is
// noted in the same transaction. On failure sc keeps its version.
func (s *Store) UpdateSchedule(ctx context.Context, sc *store.Schedule) error {
	prev := sc.Version
	sc.Version, sc.UpdatedNS = prev+1, time.Now().UnixNano()
	cols, err := scheduleCols(sc)
	if err != nil {
		sc.Version = prev
		return err
	}
	err = s.write(ctx, func(t *wtx) error {
		res, err := t.exec(sqlUpdateSchedule, append(cols, sc.ID, prev)...)
		if err != nil {
			return err
		}
		if affected(res) == 0 {
			return store.ErrConflict
		}
		return noteScheduleChange(t, sc)
	})
	if err != nil {
		sc.Version = prev
		return fmt.Errorf("store: update schedule %s: %w", sc.ID, err)
	}
	return nil
}

// SchedulesChangedSince lists definitions (deleted ones included) edited
// after ns, oldest edit first.
func (s *Store) SchedulesChangedSince(ctx context.Context, ns int64, limit int) ([]store.Schedule, error) {
	return all[store.Schedule](ctx, s, "read schedules", sqlSchedulesSince, ns, findLimit(limit))
}

// SchedulesPage lists live schedules newest first (by creation, then id),
// strictly before the cursor (zero for the first page).
func (s *Store) SchedulesPage(ctx context.Context, beforeNS int64, beforeID string, limit int) ([]store.Schedule, error) {
	beforeNS, beforeID = firstPage(beforeNS, beforeID)
	return all[store.Schedule](ctx, s, "list schedules", sqlSchedulesPage, beforeNS, beforeID, findLimit(limit))
}

// ScheduleStates reads the primary's progress of every schedule.
func (s *Store) ScheduleStates(ctx context.Context) ([]store.ScheduleState, error) {
	return all[store.ScheduleState](ctx, s, "read schedule states", sqlScheduleStates)
}

// ScheduleState reads one schedule's progress.
func (s *Store) ScheduleState(ctx context.Context, id string) (store.ScheduleState, error) {
	return one[store.ScheduleState](ctx, s, "read schedule state", sqlScheduleState, id)
}

// SaveScheduleState writes the primary's progress.
func (s *Store) SaveScheduleState(ctx context.Context, st store.ScheduleState) error {
	st.UpdatedAt = time.Now()
	d, err := doc(st)
	if err != nil {
		return err
	}
	if err := s.write(ctx, func(t *wtx) error {
		_, err := t.exec(sqlSaveScheduleState, st.ID, d)
		return err
	}); err != nil {
		return fmt.Errorf("store: save schedule state: %w", err)
	}
	return nil
}

// RecordRun stores a run; recording the same run again changes nothing.
func (s *Store) RecordRun(ctx context.Context, r store.ScheduleRun) error {
	d, err := doc(r)
	if err != nil {
		return err
	}
	if err := s.write(ctx, func(t *wtx) error {
		_, err := t.exec(sqlRecordRun, r.Key, r.ScheduleID, ns(r.DueAt), d)
		return err
	}); err != nil {
		return fmt.Errorf("store: record schedule run: %w", err)
	}
	return nil
}

// ScheduleRuns lists a schedule's runs, newest first, due strictly before
// the cursor (zero for the first page).
func (s *Store) ScheduleRuns(ctx context.Context, id string, beforeNS int64, limit int) ([]store.ScheduleRun, error) {
	beforeNS, _ = firstPage(beforeNS, "")
	return all[store.ScheduleRun](ctx, s, "list schedule runs", sqlScheduleRuns, id, beforeNS, findLimit(limit))
}
