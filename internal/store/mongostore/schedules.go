package mongostore

import (
	"app/internal/store"
	"context"
	"fmt"
	"strconv"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// CreateSchedule inserts s (version 1) and notes the change for the
// primary; ErrExists when its id is taken. An insert run again after an
// unanswered one notes the change too, which may be what was missing.
func (s *Store) CreateSchedule(ctx context.Context, sc *store.Schedule) error {
	if sc.Version == 0 {
		// Set once, so an insert run again writes the same document.
		now := time.Now()
		sc.Version, sc.CreatedAt, sc.UpdatedNS = 1, now, now.UnixNano()
	}
	// Index: _id, unique.
	_, err := s.db.Collection(colSchedules).InsertOne(ctx, sc)
	if err != nil && !IsDuplicateKey(err) {
		return fmt.Errorf("store: create schedule: %w", err)
	}
	if nerr := s.noteScheduleChange(ctx, sc); nerr != nil {
		return store.PartlyWritten(nerr) // stored, and the primary may not know
	}
	if err != nil {
		return fmt.Errorf("store: create schedule %s: %w", sc.ID, store.ErrExists)
	}
	return nil
}

// noteScheduleChange tells the primary a definition changed: a small
// collection it reads on every pass and empties, so noticing an edit costs
// no scan of every schedule.
func (s *Store) noteScheduleChange(ctx context.Context, sc *store.Schedule) error {
	// Index: _id, unique (a change noted twice is one).
	_, err := s.db.Collection(colScheduleChanges).InsertOne(ctx, bson.D{
		{Key: "_id", Value: sc.ID + "#" + strconv.Itoa(sc.Version)}, {Key: "schedule_id", Value: sc.ID}})
	if err != nil && !IsDuplicateKey(err) {
		return fmt.Errorf("store: note schedule change: %w", err)
	}
	return nil
}

// ScheduleChanges lists noted changes, at most limit.
//
// Index: none, read whole: the collection holds only the changes noted
// since the primary's last pass, which forgets them.
func (s *Store) ScheduleChanges(ctx context.Context, limit int) ([]store.ScheduleChange, error) {
	return findAll[store.ScheduleChange](ctx, s.db.Collection(colScheduleChanges), "read schedule changes", bson.D{}, options.Find().SetLimit(int64(limit)))
}

// ForgetScheduleChanges deletes noted changes once taken.
func (s *Store) ForgetScheduleChanges(ctx context.Context, keys []string) error {
	if len(keys) == 0 {
		return nil
	}
	// Index: _id.
	_, err := s.db.Collection(colScheduleChanges).DeleteMany(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: keys}}}})
	if err != nil {
		return fmt.Errorf("store: forget schedule changes: %w", err)
	}
	return nil
}

// ScheduleAny reads a definition, deleted or not.
//
// Index: _id.
func (s *Store) ScheduleAny(ctx context.Context, id string) (store.Schedule, error) {
	return findOne[store.Schedule](ctx, s.db.Collection(colSchedules), "read schedule", bson.D{{Key: "_id", Value: id}})
}

// Schedule reads one schedule (deleted ones are not found).
//
// Index: _id (deleted is checked on the one document).
func (s *Store) Schedule(ctx context.Context, id string) (store.Schedule, error) {
	return findOne[store.Schedule](ctx, s.db.Collection(colSchedules), "read schedule", bson.D{{Key: "_id", Value: id}, {Key: "deleted", Value: false}})
}

// UpdateSchedule replaces the definition if it is still at version
// sc.Version, and moves it to the next version.
func (s *Store) UpdateSchedule(ctx context.Context, sc *store.Schedule) error {
	prev := sc.Version
	sc.Version, sc.UpdatedNS = prev+1, time.Now().UnixNano()
	// Index: _id (the version is checked on the one document: a
	// conditional replace, atomic on MongoDB).
	res, err := s.db.Collection(colSchedules).ReplaceOne(ctx, bson.D{{Key: "_id", Value: sc.ID}, {Key: "version", Value: prev}}, sc)
	if err != nil {
		sc.Version = prev
		return fmt.Errorf("store: update schedule: %w", err)
	}
	if res.MatchedCount == 0 {
		sc.Version = prev
		return store.ErrConflict
	}
	if err := s.noteScheduleChange(ctx, sc); err != nil {
		return store.PartlyWritten(err) // changed, and the primary may not know
	}
	return nil
}

// SchedulesChangedSince lists definitions (deleted ones included) edited
// after ns, oldest edit first.
//
// Index: updated.
func (s *Store) SchedulesChangedSince(ctx context.Context, ns int64, limit int) ([]store.Schedule, error) {
	return findAll[store.Schedule](ctx, s.db.Collection(colSchedules), "read schedules", bson.D{{Key: "updated_ns", Value: bson.D{{Key: "$gt", Value: ns}}}},
		options.Find().SetSort(bson.D{{Key: "updated_ns", Value: 1}}).SetLimit(int64(limit)))
}

// SchedulesPage lists live schedules newest first (by creation, then id),
// strictly before the cursor (zero for the first page).
//
// Index: live_newest_id, which also gives the order.
func (s *Store) SchedulesPage(ctx context.Context, beforeNS int64, beforeID string, limit int) ([]store.Schedule, error) {
	filter := bson.D{{Key: "deleted", Value: false}}
	if beforeNS != 0 {
		t := time.Unix(0, beforeNS)
		// The $lte, implied by the $or, bounds the index scan at the cursor.
		filter = append(filter, bson.E{Key: "created_at", Value: bson.D{{Key: "$lte", Value: t}}}, bson.E{Key: "$or", Value: bson.A{
			bson.D{{Key: "created_at", Value: bson.D{{Key: "$lt", Value: t}}}},
			bson.D{{Key: "created_at", Value: t}, {Key: "_id", Value: bson.D{{Key: "$lt", Value: beforeID}}}},
		}})
	}
	return findAll[store.Schedule](ctx, s.db.Collection(colSchedules), "list schedules", filter,
		options.Find().SetSort(bson.D{{Key: "created_at", Value: -1}, {Key: "_id", Value: -1}}).SetLimit(int64(limit)))
}

// ScheduleStates reads the primary's progress of every schedule.
//
// Index: none, read whole (one document per schedule, when a primary
// takes over).
func (s *Store) ScheduleStates(ctx context.Context) ([]store.ScheduleState, error) {
	return findAll[store.ScheduleState](ctx, s.db.Collection(colScheduleState), "read schedule states", bson.D{})
}

// ScheduleState reads one schedule's progress.
//
// Index: _id.
func (s *Store) ScheduleState(ctx context.Context, id string) (store.ScheduleState, error) {
	return findOne[store.ScheduleState](ctx, s.db.Collection(colScheduleState), "read schedule state", bson.D{{Key: "_id", Value: id}})
}

// SaveScheduleState writes the primary's progress.
func (s *Store) SaveScheduleState(ctx context.Context, st store.ScheduleState) error {
	st.UpdatedAt = time.Now()
	// Index: _id.
	_, err := s.db.Collection(colScheduleState).ReplaceOne(ctx, bson.D{{Key: "_id", Value: st.ID}}, st, options.Replace().SetUpsert(true))
	if err != nil {
		return fmt.Errorf("store: save schedule state: %w", err)
	}
	return nil
}

// RecordRun stores a run; recording the same run again changes nothing.
func (s *Store) RecordRun(ctx context.Context, r store.ScheduleRun) error {
	// Index: _id, unique (the run's key).
	if _, err := s.db.Collection(colScheduleRuns).InsertOne(ctx, r); err != nil && !IsDuplicateKey(err) {
		return fmt.Errorf("store: record schedule run: %w", err)
	}
	return nil
}

// ScheduleRuns lists a schedule's runs, newest first, before the cursor.
//
// Index: schedule_due, which also gives the order.
func (s *Store) ScheduleRuns(ctx context.Context, id string, beforeNS int64, limit int) ([]store.ScheduleRun, error) {
	filter := bson.D{{Key: "schedule_id", Value: id}}
	if beforeNS != 0 {
		filter = append(filter, bson.E{Key: "due_at", Value: bson.D{{Key: "$lt", Value: time.Unix(0, beforeNS)}}})
	}
	return findAll[store.ScheduleRun](ctx, s.db.Collection(colScheduleRuns), "list schedule runs", filter,
		options.Find().SetSort(bson.D{{Key: "due_at", Value: -1}}).SetLimit(int64(limit)))
}

// CreateSchedules inserts many schedules at once (benchmarks, imports);
// ErrExists when an id is taken. The insert is ordered: the schedules
// before the taken id are stored, the rest not (SQLite stores none). No
// change is noted: a primary reads every definition when it takes over.
func (s *Store) CreateSchedules(ctx context.Context, scs []store.Schedule) error {
	now := time.Now()
	docs := make([]any, len(scs))
	for i := range scs {
		scs[i].Version, scs[i].CreatedAt, scs[i].UpdatedNS = 1, now, now.UnixNano()+int64(i)
		docs[i] = scs[i]
	}
	// Index: _id, unique.
	if _, err := s.db.Collection(colSchedules).InsertMany(ctx, docs); err != nil {
		if IsDuplicateKey(err) {
			return fmt.Errorf("store: create schedules: %w (%v)", store.ErrExists, err)
		}
		return fmt.Errorf("store: create schedules: %w", err)
	}
	return nil
}
