package primary

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"app/internal/schedule"
	"app/internal/store"
)

// Scheduler turns due schedules into outbox messages, in the primary only.
//
// Exactly once: the message of a run has an id derived from the schedule
// and the due time, so a primary that stops between enqueueing a run and
// recording it enqueues the same id again on its next pass, which the
// unique insert turns into nothing; the progress (next due time) is saved
// after the run.
//
// Definitions are edited by workers; the scheduler keeps them in memory and
// picks up edits by polling their edit time, so a pass costs no database
// reads and 10,000 schedules are cheap to scan.
type Scheduler struct {
	Store  store.Store
	Log    zerolog.Logger
	Events *EventLog
	// Lateness, when set, is told how late each enqueued run was (metrics).
	Lateness func(time.Duration)
	// Now is the clock (tests set it); Tick is how often a pass runs
	// (default 250ms, so a run fires within a second of being due).
	Now  func() time.Time
	Tick time.Duration
	// Grace is how late a run may be and still count as on time, not
	// missed (default 1 minute). MaxCatchUp bounds the runs fired (run_all)
	// or recorded as skipped for one schedule in one pass (default 100).
	Grace      time.Duration
	MaxCatchUp int

	// Jobs are the suite's own periodic work (housekeeping), run on the
	// same passes; each runs in the background, one at a time.
	Jobs []Job

	entries map[string]*schedEntry
	since   int64
	loaded  bool
	epoch   int64
	jobNext map[string]time.Time
	jobBusy map[string]bool
	jobMu   sync.Mutex
}

// Job is periodic work of the primary.
type Job struct {
	Name  string
	Every time.Duration
	Run   func(ctx context.Context) error
}

type schedEntry struct {
	def  store.Schedule
	spec *schedule.Spec // nil for one-shot schedules
	st   store.ScheduleState
}

// Task is the scheduler for the primary's task list.
func (s *Scheduler) Task() Task { return Task{Name: "scheduler", Run: s.Run} }

func (s *Scheduler) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// Start loads the schedules and their progress for the lease of epoch.
func (s *Scheduler) Start(ctx context.Context, epoch int64) error {
	if s.Grace == 0 {
		s.Grace = time.Minute
	}
	if s.MaxCatchUp == 0 {
		s.MaxCatchUp = 100
	}
	if s.Events == nil {
		s.Events = NewEventLog(s.Store, s.Log)
		if !s.Events.Start(ctx, epoch) {
			return ctx.Err()
		}
	}
	s.epoch, s.since, s.loaded = epoch, 0, false
	s.entries = map[string]*schedEntry{}
	s.jobMu.Lock()
	s.jobNext, s.jobBusy = map[string]time.Time{}, map[string]bool{}
	for _, j := range s.Jobs {
		s.jobNext[j.Name] = s.now().Add(10 * time.Second) // soon after taking the lease
	}
	s.jobMu.Unlock()
	states, err := s.Store.ScheduleStates(ctx)
	if err != nil {
		return err
	}
	for _, st := range states {
		s.entries[st.ID] = &schedEntry{st: st}
	}
	return nil
}

// Run schedules until ctx ends.
func (s *Scheduler) Run(ctx context.Context, epoch int64) error {
	if s.Tick == 0 {
		s.Tick = 250 * time.Millisecond
	}
	if !retry(ctx, s.Log, "load the schedules", func(ctx context.Context) error { return s.Start(ctx, epoch) }) {
		return nil
	}
	t := time.NewTicker(s.Tick)
	defer t.Stop()
	for ctx.Err() == nil {
		if err := s.Pass(ctx); err != nil && ctx.Err() == nil {
			s.Log.Warn().Err(err).Msg("Scheduler pass failed; will retry.")
		}
		select {
		case <-ctx.Done():
		case <-t.C:
		}
	}
	return nil
}

// NextRun is when the schedule id runs next, as this scheduler plans it
// (zero when it will not run).
func (s *Scheduler) NextRun(id string) time.Time {
	e, ok := s.entries[id]
	if !ok || e.st.Done || e.def.Paused {
		return time.Time{}
	}
	return e.st.NextRunAt
}

// Pass picks up edited definitions and fires what is due now. The first
// pass of a lease reads every definition; later ones read only the noted
// changes, so a pass with nothing due costs one small query.
func (s *Scheduler) Pass(ctx context.Context) error {
	if !s.loaded {
		// Changes noted before the full read are covered by it.
		changes, err := s.Store.ScheduleChanges(ctx, 100000)
		if err != nil {
			return err
		}
		for {
			defs, err := s.Store.SchedulesChangedSince(ctx, s.since, 1000)
			if err != nil {
				return err
			}
			for _, d := range defs {
				if err := s.apply(ctx, d); err != nil {
					return err
				}
				s.since = max(s.since, d.UpdatedNS)
			}
			if len(defs) < 1000 {
				break
			}
		}
		if err := s.forget(ctx, changes); err != nil {
			return err
		}
		s.loaded = true
	} else {
		changes, err := s.Store.ScheduleChanges(ctx, 1000)
		if err != nil {
			return err
		}
		seen := map[string]bool{}
		for _, c := range changes {
			if seen[c.ScheduleID] {
				continue
			}
			seen[c.ScheduleID] = true
			d, err := s.Store.ScheduleAny(ctx, c.ScheduleID)
			if errors.Is(err, store.ErrNotFound) {
				continue
			}
			if err != nil {
				return err
			}
			if err := s.apply(ctx, d); err != nil {
				return err
			}
		}
		if err := s.forget(ctx, changes); err != nil {
			return err
		}
	}
	now := s.now()
	s.startJobs(ctx, now)
	var dirty []*schedEntry
	defer func() {
		// Progress is saved after the pass's runs are enqueued, so runs are
		// not delayed by it; a primary that stops before this finds those
		// runs due again and their messages already there.
		for _, e := range dirty {
			if err := s.Store.SaveScheduleState(ctx, e.st); err != nil {
				s.Log.Warn().Err(err).Str("schedule", e.def.ID).Msg("Cannot save a schedule's progress; its runs are found again next time.")
			}
		}
	}()
	for _, e := range s.entries {
		if e.def.ID == "" || e.def.Paused || e.st.Done || e.st.NextRunAt.IsZero() || e.st.NextRunAt.After(now) {
			continue
		}
		if err := s.fire(ctx, e, now); err != nil {
			return err
		}
		dirty = append(dirty, e)
	}
	return nil
}

func (s *Scheduler) forget(ctx context.Context, changes []store.ScheduleChange) error {
	keys := make([]string, len(changes))
	for i, c := range changes {
		keys[i] = c.Key
	}
	return s.Store.ForgetScheduleChanges(ctx, keys)
}

// startJobs starts the jobs that are due and not running.
func (s *Scheduler) startJobs(ctx context.Context, now time.Time) {
	s.jobMu.Lock()
	defer s.jobMu.Unlock()
	for _, j := range s.Jobs {
		if s.jobBusy[j.Name] || s.jobNext[j.Name].After(now) {
			continue
		}
		s.jobBusy[j.Name], s.jobNext[j.Name] = true, now.Add(j.Every)
		go func() {
			jctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
			defer cancel()
			if err := j.Run(jctx); err != nil && ctx.Err() == nil {
				s.Log.Warn().Err(err).Str("job", j.Name).Msg("Housekeeping job failed; it runs again at its next time.")
			}
			s.jobMu.Lock()
			s.jobBusy[j.Name] = false
			s.jobMu.Unlock()
		}()
	}
}

// apply takes a new or edited definition. A definition the progress was
// computed from is kept as it is (a restart), so runs missed meanwhile
// are found; a new version (created, edited, paused or resumed) starts
// from when it was made.
func (s *Scheduler) apply(ctx context.Context, d store.Schedule) error {
	e, ok := s.entries[d.ID]
	if d.Deleted {
		delete(s.entries, d.ID)
		return nil
	}
	if !ok {
		e = &schedEntry{st: store.ScheduleState{ID: d.ID}}
		s.entries[d.ID] = e
	}
	e.def = d
	e.spec = nil
	if d.Kind == "cron" {
		spec, err := schedule.Parse(d.Cron, d.Timezone)
		if err != nil {
			// The API validates; a definition written by hand may not be.
			s.Log.Error().Err(err).Str("schedule", d.ID).Msg("Schedule has an invalid cron expression; it will not run.")
			e.st.Done = true
			return nil
		}
		e.spec = spec
	}
	if ok && e.st.Version == d.Version {
		return nil
	}
	// Runs count from when this version was made (so runs due while no
	// primary ran are found), but never from a future clock reading.
	edited := time.Unix(0, d.UpdatedNS)
	if now := s.now(); now.Before(edited) {
		edited = now
	}
	st := e.st
	st.Version, st.Done = d.Version, false
	switch d.Kind {
	case "once":
		st.NextRunAt = d.SendAt
		st.Done = st.Runs > 0
	default:
		from := edited
		if !d.StartAt.IsZero() && d.StartAt.Add(-time.Nanosecond).After(from) {
			from = d.StartAt.Add(-time.Nanosecond)
		}
		st.NextRunAt = e.spec.Next(from)
		st.Done = st.NextRunAt.IsZero() || (!d.EndAt.IsZero() && st.NextRunAt.After(d.EndAt)) || (d.MaxRuns > 0 && st.Runs >= d.MaxRuns)
	}
	// Not saved here: the next primary derives the same first run from
	// the same version, and the progress is saved with the first run.
	// (Saving 10,000 new schedules one by one would hold up the first pass.)
	e.st = st
	return nil
}

// fire runs what is due for e: on-time runs, and missed ones by the
// schedule's policy.
func (s *Scheduler) fire(ctx context.Context, e *schedEntry, now time.Time) error {
	d := e.def
	due := []time.Time{e.st.NextRunAt}
	if e.spec != nil {
		more, truncated := e.spec.Runs(e.st.NextRunAt, now, s.MaxCatchUp*2)
		due = append(due, more...)
		if truncated {
			// A long outage: also the last runs before now, so the latest
			// missed run (run_once) and the on-time ones are among them.
			// The window doubles back from now until it holds a missed run;
			// the runs between the two parts get no record.
			last := due[len(due)-1]
			var tail []time.Time
			for w := 2 * s.Grace; w <= 800*24*time.Hour; w *= 2 {
				from := now.Add(-w)
				if !from.After(last) {
					from = last
				}
				tail, _ = e.spec.Runs(from, now, s.MaxCatchUp*2)
				if from.Equal(last) || (len(tail) > 0 && now.Sub(tail[0]) > s.Grace) {
					break
				}
			}
			due = append(due, tail...)
		}
	}
	var runs []time.Time
	for _, t := range due {
		if !d.EndAt.IsZero() && t.After(d.EndAt) {
			break
		}
		if d.MaxRuns > 0 && e.st.Runs+len(runs) >= d.MaxRuns {
			break
		}
		runs = append(runs, t)
	}
	var fireList, skipList []time.Time
	for i, t := range runs {
		missed := now.Sub(t) > s.Grace
		switch {
		case !missed:
			fireList = append(fireList, t)
		case d.Missed == "run_all" && len(fireList) < s.MaxCatchUp:
			fireList = append(fireList, t)
		case d.Missed == "run_once" && (i == len(runs)-1 || now.Sub(runs[i+1]) <= s.Grace):
			fireList = append(fireList, t) // the latest missed run
		default:
			skipList = append(skipList, t)
		}
	}
	for _, t := range skipList {
		if err := s.record(ctx, e, t, "skipped", "missed while no primary ran (policy "+d.Missed+")", ""); err != nil {
			return err
		}
	}
	fired := 0
	for _, t := range fireList {
		id := store.RunMessageID(d.ID, t)
		m := store.OutboxMessage{ID: id, Chat: d.Chat, Text: d.Text, ReplyTo: d.ReplyTo, MediaID: d.MediaID, KeyID: d.KeyID}
		if d.MediaID != "" {
			if info, err := s.Store.MediaInfo(ctx, d.MediaID); err == nil {
				m.MediaType, m.MediaName = info.MimeType, info.FileName
			}
		}
		if d.MediaID == "" || m.MediaType != "" {
			m.Kind = m.MessageKind() // else the sender tells it by the file
		}
		if err := s.Store.EnqueueMessage(ctx, &m); err != nil && !errors.Is(err, store.ErrExists) {
			return err // nothing recorded: the next pass tries this run again
		}
		if err := s.record(ctx, e, t, "enqueued", "", id); err != nil {
			return err
		}
		fired++
	}
	st := e.st
	st.Runs += fired
	if len(runs) > 0 {
		st.LastRunAt = runs[len(runs)-1]
	}
	switch {
	case e.spec == nil:
		st.Done, st.NextRunAt = true, time.Time{}
	default:
		after := now
		if len(runs) > 0 && runs[len(runs)-1].After(after) {
			after = runs[len(runs)-1]
		}
		st.NextRunAt = e.spec.Next(after)
		st.Done = st.NextRunAt.IsZero() || (!d.EndAt.IsZero() && st.NextRunAt.After(d.EndAt)) || (d.MaxRuns > 0 && st.Runs >= d.MaxRuns)
	}
	e.st = st // saved by Pass once every due run is enqueued
	return nil
}

func (s *Scheduler) record(ctx context.Context, e *schedEntry, due time.Time, outcome, reason, msgID string) error {
	// FiredAt is when the run was done (its message enqueued), which is
	// what its lateness is measured by.
	now := s.now()
	r := store.ScheduleRun{Key: store.RunKey(e.def.ID, due), ScheduleID: e.def.ID, DueAt: due, FiredAt: now, Outcome: outcome,
		Reason: reason, MessageID: msgID, Epoch: s.epoch}
	if err := s.Store.RecordRun(ctx, r); err != nil {
		return err
	}
	if s.Lateness != nil && outcome == "enqueued" {
		s.Lateness(now.Sub(due))
	}
	return s.Events.Append(ctx, "schedule.run", scheduleRunEvent{ScheduleID: e.def.ID, DueAt: due, Outcome: outcome, Reason: reason,
		MessageID: msgID, LateMS: now.Sub(due).Milliseconds()})
}

// scheduleRunEvent is "schedule.run".
type scheduleRunEvent struct {
	ScheduleID string    `bson:"schedule_id" json:"schedule_id"`
	DueAt      time.Time `bson:"due_at" json:"due_at"`
	Outcome    string    `bson:"outcome" json:"outcome"`
	Reason     string    `bson:"reason,omitempty" json:"reason,omitempty"`
	MessageID  string    `bson:"message_id,omitempty" json:"message_id,omitempty"`
	LateMS     int64     `bson:"late_ms" json:"late_ms"`
}
