package sqlitestore

import (
	"app/internal/store"
	"context"
	"time"
)

// Not yet written: the outbox part of the store (delete this file when done).

func (s *Store) EnqueueMessage(ctx context.Context, m *store.OutboxMessage) error { return errTodo }

func (s *Store) OutboxMessage(ctx context.Context, id string) (store.OutboxMessage, error) {
	return store.OutboxMessage{}, errTodo
}

func (s *Store) OutboxPage(ctx context.Context, chat, status string, beforeNS int64, beforeID string, limit int) ([]store.OutboxMessage, error) {
	return nil, errTodo
}

func (s *Store) OutboxUnfinished(ctx context.Context, limit int) ([]store.OutboxMessage, error) {
	return nil, errTodo
}

func (s *Store) OutboxByStatus(ctx context.Context, status string, limit int) ([]store.OutboxMessage, error) {
	return nil, errTodo
}

func (s *Store) OutboxByWAID(ctx context.Context, waID string) (store.OutboxMessage, error) {
	return store.OutboxMessage{}, errTodo
}

func (s *Store) SaveOutbox(ctx context.Context, m *store.OutboxMessage) (bool, error) {
	return false, errTodo
}

func (s *Store) CountSentSince(ctx context.Context, t time.Time) (int64, error) { return 0, errTodo }

func (s *Store) OutboxBacklog(ctx context.Context) (int64, time.Time, error) {
	return 0, time.Time{}, errTodo
}

func (s *Store) OutboxUnannounced(ctx context.Context, seq int64) ([]store.OutboxMessage, error) {
	return nil, errTodo
}

func (s *Store) RequestCancel(ctx context.Context, id string) error { return errTodo }

func (s *Store) CancelRequest(ctx context.Context, id string) (store.CancelRequest, error) {
	return store.CancelRequest{}, errTodo
}

func (s *Store) PendingCancels(ctx context.Context) ([]store.CancelRequest, error) {
	return nil, errTodo
}

func (s *Store) DecideCancel(ctx context.Context, c store.CancelRequest) error { return errTodo }

func (s *Store) CreateSchedule(ctx context.Context, sc *store.Schedule) error { return errTodo }

func (s *Store) CreateSchedules(ctx context.Context, scs []store.Schedule) error { return errTodo }

func (s *Store) Schedule(ctx context.Context, id string) (store.Schedule, error) {
	return store.Schedule{}, errTodo
}

func (s *Store) ScheduleAny(ctx context.Context, id string) (store.Schedule, error) {
	return store.Schedule{}, errTodo
}

func (s *Store) UpdateSchedule(ctx context.Context, sc *store.Schedule) error { return errTodo }

func (s *Store) SchedulesChangedSince(ctx context.Context, ns int64, limit int) ([]store.Schedule, error) {
	return nil, errTodo
}

func (s *Store) SchedulesPage(ctx context.Context, beforeNS int64, beforeID string, limit int) ([]store.Schedule, error) {
	return nil, errTodo
}

func (s *Store) ScheduleChanges(ctx context.Context, limit int) ([]store.ScheduleChange, error) {
	return nil, errTodo
}

func (s *Store) ForgetScheduleChanges(ctx context.Context, keys []string) error { return errTodo }

func (s *Store) ScheduleStates(ctx context.Context) ([]store.ScheduleState, error) {
	return nil, errTodo
}

func (s *Store) ScheduleState(ctx context.Context, id string) (store.ScheduleState, error) {
	return store.ScheduleState{}, errTodo
}

func (s *Store) SaveScheduleState(ctx context.Context, st store.ScheduleState) error { return errTodo }

func (s *Store) RecordRun(ctx context.Context, r store.ScheduleRun) error { return errTodo }

func (s *Store) ScheduleRuns(ctx context.Context, id string, beforeNS int64, limit int) ([]store.ScheduleRun, error) {
	return nil, errTodo
}
