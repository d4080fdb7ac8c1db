package primary_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"app/internal/primary"
	"app/internal/store"
)

// fakeClock is the scheduler's clock in these tests.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }

func newScheduler(t *testing.T, st store.Store, clock *fakeClock, epoch int64) *primary.Scheduler {
	t.Helper()
	s := &primary.Scheduler{Store: st, Log: zerolog.Nop(), Now: clock.Now}
	if err := s.Start(context.Background(), epoch); err != nil {
		t.Fatal(err)
	}
	return s
}

func pass(t *testing.T, s *primary.Scheduler) {
	t.Helper()
	if err := s.Pass(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func runsOf(t *testing.T, st store.Store, id string) []store.ScheduleRun {
	t.Helper()
	runs, err := st.ScheduleRuns(context.Background(), id, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	// Oldest first.
	for i, j := 0, len(runs)-1; i < j; i, j = i+1, j-1 {
		runs[i], runs[j] = runs[j], runs[i]
	}
	return runs
}

func stateOf(t *testing.T, st store.Store, id string) store.ScheduleState {
	t.Helper()
	s, err := st.ScheduleState(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func create(t *testing.T, st store.Store, sc store.Schedule) store.Schedule {
	t.Helper()
	if sc.ID == "" {
		sc.ID = "sch_" + store.NewMessageID()[4:]
	}
	if sc.Chat == "" {
		sc.Chat, sc.Text = alice, "scheduled"
	}
	if err := st.CreateSchedule(context.Background(), &sc); err != nil {
		t.Fatal(err)
	}
	return sc
}

// advance moves the clock to each next run and passes, until the clock
// would pass until; it returns the runs recorded.
func advance(t *testing.T, s *primary.Scheduler, st store.Store, clock *fakeClock, id string, until time.Time) []store.ScheduleRun {
	t.Helper()
	for range 1000 {
		next := s.NextRun(id)
		if next.IsZero() || next.After(until) {
			break
		}
		clock.Set(next)
		pass(t, s)
	}
	return runsOf(t, st, id)
}

func TestOneShotRunsOnceAtItsTime(t *testing.T) {
	st := waStore(t)
	clock := &fakeClock{t: time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)}
	s := newScheduler(t, st, clock, 1)
	sc := create(t, st, store.Schedule{Kind: "once", SendAt: clock.Now().Add(10 * time.Second), Missed: "run_once"})
	pass(t, s)
	if runs := runsOf(t, st, sc.ID); len(runs) != 0 {
		t.Fatalf("ran before its time: %+v", runs)
	}
	clock.Set(sc.SendAt.Add(300 * time.Millisecond))
	pass(t, s)
	pass(t, s)
	runs := runsOf(t, st, sc.ID)
	if len(runs) != 1 || runs[0].Outcome != "enqueued" || runs[0].MessageID != store.RunMessageID(sc.ID, sc.SendAt) {
		t.Fatalf("runs: %+v", runs)
	}
	m, err := st.OutboxMessage(context.Background(), runs[0].MessageID)
	if err != nil || m.Chat != alice || m.Text != "scheduled" || m.Status != store.StatusQueued {
		t.Errorf("enqueued message: %+v, %v", m, err)
	}
	if s := stateOf(t, st, sc.ID); !s.Done || s.Runs != 1 {
		t.Errorf("state after the run: %+v", s)
	}
}

// A daily 02:30 in two zones across their 2026 transitions: exactly one
// run each local day, strictly increasing.
func TestDailyRunAcrossDaylightSaving(t *testing.T) {
	for _, c := range []struct {
		zone       string
		from, to   time.Time
		cron       string
		transition string
	}{
		{"Europe/Berlin", time.Date(2026, 3, 26, 0, 0, 0, 0, time.UTC), time.Date(2026, 4, 2, 0, 0, 0, 0, time.UTC), "30 2 * * *", "spring gap"},
		{"Europe/Berlin", time.Date(2026, 10, 22, 0, 0, 0, 0, time.UTC), time.Date(2026, 10, 29, 0, 0, 0, 0, time.UTC), "30 2 * * *", "autumn overlap"},
		{"America/New_York", time.Date(2026, 3, 5, 12, 0, 0, 0, time.UTC), time.Date(2026, 3, 12, 12, 0, 0, 0, time.UTC), "30 2 * * *", "spring gap"},
		{"America/New_York", time.Date(2026, 10, 29, 12, 0, 0, 0, time.UTC), time.Date(2026, 11, 5, 12, 0, 0, 0, time.UTC), "30 1 * * *", "autumn overlap"},
	} {
		t.Run(c.zone+" "+c.transition, func(t *testing.T) {
			st := waStore(t)
			clock := &fakeClock{t: c.from}
			s := newScheduler(t, st, clock, 1)
			sc := create(t, st, store.Schedule{Kind: "cron", Cron: c.cron, Timezone: c.zone, Missed: "skip"})
			pass(t, s)
			runs := advance(t, s, st, clock, sc.ID, c.to)
			loc, _ := time.LoadLocation(c.zone)
			days := map[string]int{}
			var prev time.Time
			for _, r := range runs {
				if r.Outcome != "enqueued" {
					t.Errorf("run %s: %s (%s)", r.DueAt, r.Outcome, r.Reason)
				}
				if !r.DueAt.After(prev) {
					t.Errorf("run %s not after %s", r.DueAt, prev)
				}
				prev = r.DueAt
				days[r.DueAt.In(loc).Format("2006-01-02")]++
			}
			if len(days) != 7 {
				t.Errorf("%d local days with runs, want 7: %v", len(days), days)
			}
			for d, n := range days {
				if n != 1 {
					t.Errorf("%s: %d runs", d, n)
				}
			}
		})
	}
}

func TestPauseAndResume(t *testing.T) {
	st := waStore(t)
	clock := &fakeClock{t: time.Date(2026, 6, 1, 10, 0, 0, 0, time.UTC)}
	s := newScheduler(t, st, clock, 1)
	sc := create(t, st, store.Schedule{Kind: "cron", Cron: "0 * * * *", Timezone: "UTC", Missed: "run_all"})
	pass(t, s)
	advance(t, s, st, clock, sc.ID, clock.Now().Add(2*time.Hour)) // 11:00, 12:00
	sc, _ = st.Schedule(context.Background(), sc.ID)
	sc.Paused = true
	if err := st.UpdateSchedule(context.Background(), &sc); err != nil {
		t.Fatal(err)
	}
	pass(t, s)
	clock.Set(time.Date(2026, 6, 1, 15, 30, 0, 0, time.UTC))
	pass(t, s)
	if n := len(runsOf(t, st, sc.ID)); n != 2 {
		t.Fatalf("%d runs; none may come while paused", n)
	}
	sc.Paused = false
	if err := st.UpdateSchedule(context.Background(), &sc); err != nil {
		t.Fatal(err)
	}
	pass(t, s)
	// Resumed at 15:30 (the clock): the hours paused are not caught up.
	runs := advance(t, s, st, clock, sc.ID, time.Date(2026, 6, 1, 17, 0, 0, 0, time.UTC))
	var got []string
	for _, r := range runs {
		got = append(got, r.DueAt.UTC().Format("15:04")+" "+r.Outcome)
	}
	if want := "[11:00 enqueued 12:00 enqueued 16:00 enqueued 17:00 enqueued]"; fmtList(got) != want {
		t.Errorf("runs %v, want %s", got, want)
	}
}

func fmtList(s []string) string {
	out := "["
	for i, x := range s {
		if i > 0 {
			out += " "
		}
		out += x
	}
	return out + "]"
}

// Five hours without a primary: each policy does what it says.
func TestMissedRunPolicies(t *testing.T) {
	for policy, want := range map[string]string{
		"skip":     "[10:00 enqueued 11:00 skipped 12:00 skipped 13:00 skipped 14:00 skipped 15:00 enqueued]",
		"run_once": "[10:00 enqueued 11:00 skipped 12:00 skipped 13:00 skipped 14:00 enqueued 15:00 enqueued]",
		"run_all":  "[10:00 enqueued 11:00 enqueued 12:00 enqueued 13:00 enqueued 14:00 enqueued 15:00 enqueued]",
	} {
		t.Run(policy, func(t *testing.T) {
			st := waStore(t)
			clock := &fakeClock{t: time.Date(2026, 6, 1, 9, 30, 0, 0, time.UTC)}
			a := newScheduler(t, st, clock, 1)
			sc := create(t, st, store.Schedule{Kind: "cron", Cron: "0 * * * *", Timezone: "UTC", Missed: policy})
			pass(t, a)
			clock.Set(time.Date(2026, 6, 1, 10, 0, 0, 0, time.UTC))
			pass(t, a)
			// The primary is gone until 15:00; a new one starts then.
			clock.Set(time.Date(2026, 6, 1, 15, 0, 0, 500, time.UTC))
			b := newScheduler(t, st, clock, 2)
			pass(t, b)
			var got []string
			for _, r := range runsOf(t, st, sc.ID) {
				got = append(got, r.DueAt.UTC().Format("15:04")+" "+r.Outcome)
			}
			if fmtList(got) != want {
				t.Errorf("runs %v, want %s", got, want)
			}
			if n := stateOf(t, st, sc.ID).NextRunAt; !n.Equal(time.Date(2026, 6, 1, 16, 0, 0, 0, time.UTC)) {
				t.Errorf("next run %s, want 16:00", n)
			}
		})
	}
}

// A primary that stopped after enqueueing a run but before saving its
// progress: the next one finds the run due again and enqueues nothing new.
func TestKilledBetweenEnqueueAndProgress(t *testing.T) {
	st := waStore(t)
	clock := &fakeClock{t: time.Date(2026, 6, 1, 9, 59, 0, 0, time.UTC)}
	a := newScheduler(t, st, clock, 1)
	sc := create(t, st, store.Schedule{Kind: "cron", Cron: "0 * * * *", Timezone: "UTC", Missed: "skip"})
	pass(t, a)
	// The progress as it was before the 10:00 run.
	before := store.ScheduleState{ID: sc.ID, Version: sc.Version, NextRunAt: time.Date(2026, 6, 1, 10, 0, 0, 0, time.UTC)}
	clock.Set(time.Date(2026, 6, 1, 10, 0, 0, 100, time.UTC))
	pass(t, a)
	// As if the progress had never been saved.
	if err := st.SaveScheduleState(context.Background(), before); err != nil {
		t.Fatal(err)
	}
	b := newScheduler(t, st, clock, 2) // the standby takes over
	pass(t, b)
	due := time.Date(2026, 6, 1, 10, 0, 0, 0, time.UTC)
	if runs := runsOf(t, st, sc.ID); len(runs) != 1 || runs[0].Epoch != 1 {
		t.Errorf("runs: %+v; want the one run epoch 1 recorded", runs)
	}
	msgs, _ := st.OutboxUnfinished(context.Background(), 100)
	if len(msgs) != 1 || msgs[0].ID != store.RunMessageID(sc.ID, due) {
		t.Errorf("outbox: %d messages %+v; want exactly the one of the 10:00 run", len(msgs), msgs)
	}
	// The standby continues the schedule.
	clock.Set(time.Date(2026, 6, 1, 11, 0, 0, 100, time.UTC))
	pass(t, b)
	runs := runsOf(t, st, sc.ID)
	if len(runs) != 2 || runs[1].Epoch != 2 || !runs[1].DueAt.Equal(due.Add(time.Hour)) {
		t.Errorf("runs after the takeover: %+v", runs)
	}
}

func TestEndAndMaxRuns(t *testing.T) {
	st := waStore(t)
	clock := &fakeClock{t: time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)}
	s := newScheduler(t, st, clock, 1)
	capped := create(t, st, store.Schedule{Kind: "cron", Cron: "0 9 * * *", Timezone: "Europe/Berlin", MaxRuns: 3, Missed: "skip"})
	ended := create(t, st, store.Schedule{Kind: "cron", Cron: "0 9 * * *", Timezone: "Europe/Berlin", Missed: "skip",
		StartAt: time.Date(2026, 6, 3, 0, 0, 0, 0, time.UTC), EndAt: time.Date(2026, 6, 5, 12, 0, 0, 0, time.UTC)})
	pass(t, s)
	until := time.Date(2026, 6, 10, 0, 0, 0, 0, time.UTC)
	if n := len(advance(t, s, st, clock, capped.ID, until)); n != 3 {
		t.Errorf("max_runs 3: %d runs", n)
	}
	clock.Set(time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC))
	runs := advance(t, s, st, clock, ended.ID, until)
	var got []string
	for _, r := range runs {
		got = append(got, r.DueAt.Format("01-02 15:04"))
	}
	if fmtList(got) != "[06-03 07:00 06-04 07:00 06-05 07:00]" {
		t.Errorf("start_at/end_at runs (UTC): %v", got)
	}
	if !stateOf(t, st, capped.ID).Done || !stateOf(t, st, ended.ID).Done {
		t.Error("finished schedules are not done")
	}
}

// A week without a primary for a schedule every minute: run_once sends the
// latest missed run (not one a week old), and the schedule goes on.
func TestLongOutageRunOnce(t *testing.T) {
	st := waStore(t)
	clock := &fakeClock{t: time.Date(2026, 6, 1, 9, 59, 30, 0, time.UTC)}
	a := newScheduler(t, st, clock, 1)
	sc := create(t, st, store.Schedule{Kind: "cron", Cron: "* * * * *", Timezone: "UTC", Missed: "run_once"})
	pass(t, a)
	clock.Set(time.Date(2026, 6, 1, 10, 0, 0, 0, time.UTC))
	pass(t, a) // the 10:00 run of June 1, then the primary is gone for a week
	clock.Set(time.Date(2026, 6, 8, 10, 0, 30, 0, time.UTC))
	b := newScheduler(t, st, clock, 2)
	pass(t, b)
	var fired []time.Time
	for _, r := range runsOf(t, st, sc.ID) {
		if r.Outcome == "enqueued" && r.Epoch == 2 {
			fired = append(fired, r.DueAt)
		}
	}
	// 09:59 is the latest missed run (more than a minute late), 10:00 is on time.
	want := []time.Time{time.Date(2026, 6, 8, 9, 59, 0, 0, time.UTC), time.Date(2026, 6, 8, 10, 0, 0, 0, time.UTC)}
	if len(fired) != 2 || !fired[0].Equal(want[0]) || !fired[1].Equal(want[1]) {
		t.Errorf("fired %v, want %v", fired, want)
	}
	if n := b.NextRun(sc.ID); !n.Equal(time.Date(2026, 6, 8, 10, 1, 0, 0, time.UTC)) {
		t.Errorf("next run %s, want 10:01", n)
	}
}
