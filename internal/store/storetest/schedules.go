package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"app/internal/store"
)

var _ = add(
	"SchedulesAreCreatedReadAndEditedByVersion", testSchedulesAreCreatedReadAndEditedByVersion,
	"SchedulesConcurrentEditsOfOneVersionConflict", testSchedulesConcurrentEditsOfOneVersionConflict,
	"SchedulesDeletedAreHiddenButFound", testSchedulesDeletedAreHiddenButFound,
	"SchedulesChangesAreNotedAndForgotten", testSchedulesChangesAreNotedAndForgotten,
	"SchedulesPagesAreStrict", testSchedulesPagesAreStrict,
	"SchedulesInBulk", testSchedulesInBulk,
	"SchedulesStateIsSaved", testSchedulesStateIsSaved,
	"SchedulesRunsAreRecordedOnceAndPaged", testSchedulesRunsAreRecordedOnceAndPaged,
)

func newSchedule(id string) *store.Schedule {
	return &store.Schedule{ID: id, KeyID: "key_1", Kind: "cron", Cron: "0 9 * * *", Timezone: "Europe/Berlin",
		Missed: "skip", Chat: alice, Text: "good morning"}
}

func scheduleIDs(scs []store.Schedule) []string {
	ids := make([]string, len(scs))
	for i, sc := range scs {
		ids[i] = sc.ID
	}
	return ids
}

// A schedule is created at version 1; an edit names the version it read
// and moves it on; an edit of a version no longer current is refused with
// ErrConflict and changes nothing, so no edit is lost.
func testSchedulesAreCreatedReadAndEditedByVersion(t *testing.T, h Harness) {
	st := h.Open(t)
	ctx := context.Background()
	if _, err := st.Schedule(ctx, "sch_1"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a schedule never created: %v, want ErrNotFound", err)
	}
	sc := newSchedule("sch_1")
	before := time.Now()
	if err := st.CreateSchedule(ctx, sc); err != nil {
		t.Fatal(err)
	}
	if sc.Version != 1 || sc.CreatedAt.Before(before) || sc.UpdatedNS < before.UnixNano() {
		t.Fatalf("created %+v: want version 1, created and updated now", sc)
	}
	got, err := st.Schedule(ctx, "sch_1")
	if err != nil {
		t.Fatal(err)
	}
	if got.Version != 1 || got.Cron != sc.Cron || got.Timezone != sc.Timezone || got.Text != sc.Text || got.KeyID != "key_1" ||
		got.UpdatedNS != sc.UpdatedNS || got.CreatedAt.Sub(sc.CreatedAt).Abs() >= time.Millisecond || got.Paused || got.Deleted {
		t.Fatalf("read back %+v, want %+v", got, sc)
	}
	dup := newSchedule("sch_1")
	dup.Text = "another"
	if err := st.CreateSchedule(ctx, dup); !errors.Is(err, store.ErrExists) {
		t.Fatalf("second create of sch_1: %v, want ErrExists", err)
	}
	// Two clients read version 1; the first edit wins.
	first, second := got, got
	first.Text, second.Text = "first edit", "second edit"
	if err := st.UpdateSchedule(ctx, &first); err != nil {
		t.Fatal(err)
	}
	if first.Version != 2 || first.UpdatedNS <= sc.UpdatedNS {
		t.Fatalf("after the edit: version %d, updated %d; want 2, after %d", first.Version, first.UpdatedNS, sc.UpdatedNS)
	}
	if err := st.UpdateSchedule(ctx, &second); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("edit of version 1 after version 2: %v, want ErrConflict", err)
	}
	if second.Version != 1 {
		t.Fatalf("the refused edit left the caller's copy at version %d, want 1", second.Version)
	}
	if got, err := st.Schedule(ctx, "sch_1"); err != nil || got.Version != 2 || got.Text != "first edit" {
		t.Fatalf("stored: %+v (%v), want version 2 with the first edit", got, err)
	}
	// Editing what was read again works.
	again, err := st.Schedule(ctx, "sch_1")
	if err != nil {
		t.Fatal(err)
	}
	again.Paused = true
	if err := st.UpdateSchedule(ctx, &again); err != nil || again.Version != 3 {
		t.Fatalf("edit of version 2: %v, version %d; want version 3", err, again.Version)
	}
	if got, err := st.Schedule(ctx, "sch_1"); err != nil || got.Version != 3 || !got.Paused || got.Text != "first edit" {
		t.Fatalf("stored: %+v (%v), want version 3, paused", got, err)
	}
	// A schedule that does not exist has no current version either.
	ghost := newSchedule("sch_ghost")
	ghost.Version = 1
	if err := st.UpdateSchedule(ctx, ghost); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("edit of a schedule that does not exist: %v, want ErrConflict", err)
	}
	if _, err := st.ScheduleAny(ctx, "sch_ghost"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("the refused edit created the schedule: %v", err)
	}
}

// Ten clients, in two processes, edit one schedule at the same version at
// once: exactly one succeeds, the others get ErrConflict, and the stored
// schedule is the winner's.
func testSchedulesConcurrentEditsOfOneVersionConflict(t *testing.T, h Harness) {
	skipOnFerretDB(t, h, "a conditional replace is not atomic under concurrency")
	a, b := h.OpenTwo(t)
	ctx := context.Background()
	for round := range 3 {
		id := fmt.Sprint("sch_race", round)
		if err := a.CreateSchedule(ctx, newSchedule(id)); err != nil {
			t.Fatal(err)
		}
		read, err := a.Schedule(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		errs := make([]error, 10)
		start := make(chan struct{})
		for i := range errs {
			st := a
			if i%2 == 1 {
				st = b
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				edit := read
				edit.Text = fmt.Sprint("edit ", i)
				<-start
				errs[i] = st.UpdateSchedule(ctx, &edit)
			}()
		}
		close(start)
		wg.Wait()
		winner := -1
		for i, err := range errs {
			switch {
			case err == nil:
				if winner >= 0 {
					t.Fatalf("round %d: edits %d and %d of version 1 both succeeded", round, winner, i)
				}
				winner = i
			case !errors.Is(err, store.ErrConflict):
				t.Fatalf("round %d: edit %d: %v, want success or ErrConflict", round, i, err)
			}
		}
		if winner < 0 {
			t.Fatalf("round %d: no edit succeeded: %v", round, errs)
		}
		got, err := b.Schedule(ctx, id)
		if err != nil || got.Version != 2 || got.Text != fmt.Sprint("edit ", winner) {
			t.Fatalf("round %d: stored %+v (%v), want version 2 with edit %d", round, got, err, winner)
		}
	}
}

// A deleted schedule (an edit that sets Deleted) is gone for the API
// (Schedule, SchedulesPage) but still there for the primary (ScheduleAny,
// SchedulesChangedSince), which must stop it.
func testSchedulesDeletedAreHiddenButFound(t *testing.T, h Harness) {
	st := h.Open(t)
	ctx := context.Background()
	for _, id := range []string{"sch_keep", "sch_drop"} {
		if err := st.CreateSchedule(ctx, newSchedule(id)); err != nil {
			t.Fatal(err)
		}
	}
	drop, err := st.Schedule(ctx, "sch_drop")
	if err != nil {
		t.Fatal(err)
	}
	drop.Deleted = true
	if err := st.UpdateSchedule(ctx, &drop); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Schedule(ctx, "sch_drop"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a deleted schedule read: %v, want ErrNotFound", err)
	}
	got, err := st.ScheduleAny(ctx, "sch_drop")
	if err != nil || !got.Deleted || got.Version != 2 {
		t.Fatalf("ScheduleAny of the deleted schedule: %+v (%v), want it, deleted, at version 2", got, err)
	}
	if _, err := st.ScheduleAny(ctx, "sch_none"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("ScheduleAny of a schedule never created: %v, want ErrNotFound", err)
	}
	page, err := st.SchedulesPage(ctx, 0, "", 10)
	if err != nil || !slices.Equal(scheduleIDs(page), []string{"sch_keep"}) {
		t.Fatalf("live schedules: %v (%v), want sch_keep only", scheduleIDs(page), err)
	}
	changed, err := st.SchedulesChangedSince(ctx, 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	if ids := scheduleIDs(changed); len(ids) != 2 || ids[1] != "sch_drop" || !changed[1].Deleted {
		t.Fatalf("changed since 0: %v (%v), want both, the deletion last", ids, err)
	}
}

// Each creation and edit is noted for the primary under the schedule's id
// and version, once however often it is noted; forgotten notes are gone.
func testSchedulesChangesAreNotedAndForgotten(t *testing.T, h Harness) {
	st := h.Open(t)
	ctx := context.Background()
	keys := func(limit int) []string {
		t.Helper()
		cs, err := st.ScheduleChanges(ctx, limit)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, c := range cs {
			if !strings.HasPrefix(c.Key, c.ScheduleID+"#") {
				t.Fatalf("change %+v does not name its schedule", c)
			}
			out = append(out, c.Key)
		}
		slices.Sort(out)
		return out
	}
	if got := keys(10); len(got) != 0 {
		t.Fatalf("changes of an empty store: %v", got)
	}
	a, b := newSchedule("sch_a"), newSchedule("sch_b")
	for _, sc := range []*store.Schedule{a, b} {
		if err := st.CreateSchedule(ctx, sc); err != nil {
			t.Fatal(err)
		}
	}
	a.Text = "edited"
	if err := st.UpdateSchedule(ctx, a); err != nil {
		t.Fatal(err)
	}
	// Refused edits and creations note nothing new.
	stale := *b
	stale.Version = 7
	if err := st.UpdateSchedule(ctx, &stale); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("stale edit: %v, want ErrConflict", err)
	}
	if err := st.CreateSchedule(ctx, newSchedule("sch_a")); !errors.Is(err, store.ErrExists) {
		t.Fatalf("second create: %v, want ErrExists", err)
	}
	want := []string{"sch_a#1", "sch_a#2", "sch_b#1"}
	if got := keys(10); !slices.Equal(got, want) {
		t.Fatalf("changes: %v, want %v", got, want)
	}
	if got := keys(2); len(got) != 2 {
		t.Fatalf("at most 2 changes: %v", got)
	}
	if err := st.ForgetScheduleChanges(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if err := st.ForgetScheduleChanges(ctx, []string{"sch_a#1", "sch_b#1", "sch_x#9"}); err != nil {
		t.Fatal(err)
	}
	if got := keys(10); !slices.Equal(got, []string{"sch_a#2"}) {
		t.Fatalf("changes after forgetting two: %v, want sch_a#2", got)
	}
	a.Paused = true
	if err := st.UpdateSchedule(ctx, a); err != nil {
		t.Fatal(err)
	}
	if got := keys(10); !slices.Equal(got, []string{"sch_a#2", "sch_a#3"}) {
		t.Fatalf("changes after another edit: %v, want sch_a#2 and sch_a#3", got)
	}
}

// Paging through the live schedules returns each exactly once, newest
// first, those created at one time (a bulk import) ordered by id.
func testSchedulesPagesAreStrict(t *testing.T, h Harness) {
	st := h.Open(t)
	ctx := context.Background()
	var bulk []store.Schedule
	for i := range 5 {
		bulk = append(bulk, *newSchedule(fmt.Sprintf("sch_b%d", (i*3)%5)))
	}
	if err := st.CreateSchedules(ctx, bulk); err != nil {
		t.Fatal(err)
	}
	// Later ones, each at its own time (a schedule created with a version
	// keeps its times), their ids against the order of creation.
	var want []string
	later := bulk[0].CreatedAt.Truncate(time.Millisecond)
	for i := range 3 {
		sc := newSchedule(fmt.Sprintf("sch_l%d", 2-i))
		later = later.Add(time.Second)
		sc.Version, sc.CreatedAt, sc.UpdatedNS = 1, later, later.UnixNano()
		if err := st.CreateSchedule(ctx, sc); err != nil {
			t.Fatal(err)
		}
		want = append([]string{sc.ID}, want...)
	}
	want = append(want, "sch_b4", "sch_b3", "sch_b2", "sch_b1", "sch_b0")
	gone, err := st.Schedule(ctx, "sch_b2")
	if err != nil {
		t.Fatal(err)
	}
	gone.Deleted = true
	if err := st.UpdateSchedule(ctx, &gone); err != nil {
		t.Fatal(err)
	}
	want = slices.DeleteFunc(want, func(id string) bool { return id == "sch_b2" })
	for _, limit := range []int{1, 2, 3, 10} {
		var got []string
		var ns int64
		var id string
		for pages := 0; pages <= len(want); pages++ {
			page, err := st.SchedulesPage(ctx, ns, id, limit)
			if err != nil {
				t.Fatal(err)
			}
			if len(page) > limit {
				t.Fatalf("a page of %d with limit %d", len(page), limit)
			}
			got = append(got, scheduleIDs(page)...)
			if len(page) < limit {
				break
			}
			last := page[len(page)-1]
			ns, id = last.CreatedAt.UnixNano(), last.ID
		}
		if !slices.Equal(got, want) {
			t.Fatalf("pages of %d: %v, want %v", limit, got, want)
		}
	}
}

// CreateSchedules stores many at version 1, created at one time, each
// edited at its own nanosecond (so the primary's read of changes by time
// pages through them); a taken id refuses the batch with ErrExists and
// leaves the existing schedule as it was.
func testSchedulesInBulk(t *testing.T, h Harness) {
	st := h.Open(t)
	ctx := context.Background()
	var scs []store.Schedule
	for i := range 6 {
		scs = append(scs, *newSchedule(fmt.Sprint("sch_", i)))
	}
	if err := st.CreateSchedules(ctx, scs); err != nil {
		t.Fatal(err)
	}
	for i, sc := range scs {
		if sc.Version != 1 || !sc.CreatedAt.Equal(scs[0].CreatedAt) || i > 0 && sc.UpdatedNS <= scs[i-1].UpdatedNS {
			t.Fatalf("schedule %d: version %d, created %v, updated %d; want 1, the batch's time, after the one before",
				i, sc.Version, sc.CreatedAt, sc.UpdatedNS)
		}
		if got, err := st.Schedule(ctx, sc.ID); err != nil || got.Version != 1 || got.UpdatedNS != sc.UpdatedNS {
			t.Fatalf("read %s: %+v (%v)", sc.ID, got, err)
		}
	}
	// The primary's first read: oldest edit first, strictly after the
	// last one seen, a page at a time.
	var got []string
	var since int64
	for pages := 0; pages < 10; pages++ {
		page, err := st.SchedulesChangedSince(ctx, since, 4)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, scheduleIDs(page)...)
		if len(page) < 4 {
			break
		}
		since = page[len(page)-1].UpdatedNS
	}
	if want := scheduleIDs(scs); !slices.Equal(got, want) {
		t.Fatalf("changed since 0, 4 at a time: %v, want %v", got, want)
	}
	if page, err := st.SchedulesChangedSince(ctx, scs[5].UpdatedNS, 10); err != nil || len(page) != 0 {
		t.Fatalf("changed since the last edit: %v (%v), want none", scheduleIDs(page), err)
	}
	taken := []store.Schedule{*newSchedule("sch_new"), *newSchedule("sch_2")}
	taken[1].Text = "overwritten"
	if err := st.CreateSchedules(ctx, taken); !errors.Is(err, store.ErrExists) {
		t.Fatalf("a batch with a taken id: %v, want ErrExists", err)
	}
	if got, err := st.Schedule(ctx, "sch_2"); err != nil || got.Text != "good morning" || got.Version != 1 {
		t.Fatalf("the schedule whose id was taken: %+v (%v), want it unchanged", got, err)
	}
}

// The primary's progress on a schedule is saved whole and read back, one
// record per schedule.
func testSchedulesStateIsSaved(t *testing.T, h Harness) {
	st := h.Open(t)
	ctx := context.Background()
	if _, err := st.ScheduleState(ctx, "sch_1"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("state never saved: %v, want ErrNotFound", err)
	}
	if got, err := st.ScheduleStates(ctx); err != nil || len(got) != 0 {
		t.Fatalf("states of an empty store: %+v (%v)", got, err)
	}
	next := outboxT0.Add(time.Hour)
	for _, s := range []store.ScheduleState{
		{ID: "sch_1", Version: 1, NextRunAt: next, Runs: 0},
		{ID: "sch_2", Version: 4, LastRunAt: outboxT0, Runs: 9, Done: true},
		{ID: "sch_1", Version: 2, NextRunAt: next.Add(time.Hour), LastRunAt: next, Runs: 1},
	} {
		if err := st.SaveScheduleState(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	got, err := st.ScheduleState(ctx, "sch_1")
	if err != nil || got.Version != 2 || !got.NextRunAt.Equal(next.Add(time.Hour)) || !got.LastRunAt.Equal(next) || got.Runs != 1 ||
		got.Done || got.UpdatedAt.IsZero() {
		t.Fatalf("state of sch_1: %+v (%v), want the second save, with its time", got, err)
	}
	states, err := st.ScheduleStates(ctx)
	if err != nil {
		t.Fatal(err)
	}
	byID := map[string]store.ScheduleState{}
	for _, s := range states {
		byID[s.ID] = s
	}
	if len(states) != 2 || byID["sch_1"].Version != 2 || !byID["sch_2"].Done || byID["sch_2"].Runs != 9 || !byID["sch_2"].LastRunAt.Equal(outboxT0) {
		t.Fatalf("all states: %+v, want sch_1 at version 2 and sch_2 done after 9 runs", states)
	}
}

// A run is recorded once, however often it is recorded (a primary that
// stopped between the two records it again), and a schedule's runs are
// paged newest first, strictly before the cursor.
func testSchedulesRunsAreRecordedOnceAndPaged(t *testing.T, h Harness) {
	st := h.Open(t)
	ctx := context.Background()
	run := func(id string, i int, outcome string) store.ScheduleRun {
		due := outboxT0.Add(time.Duration(i) * time.Hour)
		return store.ScheduleRun{Key: store.RunKey(id, due), ScheduleID: id, DueAt: due, FiredAt: due.Add(time.Second),
			Outcome: outcome, MessageID: store.RunMessageID(id, due), Epoch: 3}
	}
	for _, i := range []int{3, 0, 4, 1, 2} {
		if err := st.RecordRun(ctx, run("sch_1", i, "enqueued")); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.RecordRun(ctx, run("sch_2", 5, "skipped")); err != nil {
		t.Fatal(err)
	}
	// Again, with another outcome: the first record stays.
	if err := st.RecordRun(ctx, run("sch_1", 2, "skipped")); err != nil {
		t.Fatalf("recording a run again: %v", err)
	}
	dues := func(runs []store.ScheduleRun) []int {
		var out []int
		for _, r := range runs {
			if r.ScheduleID != "sch_1" {
				t.Fatalf("another schedule's run: %+v", r)
			}
			out = append(out, int(r.DueAt.Sub(outboxT0)/time.Hour))
		}
		return out
	}
	all, err := st.ScheduleRuns(ctx, "sch_1", 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	if got := dues(all); !slices.Equal(got, []int{4, 3, 2, 1, 0}) {
		t.Fatalf("runs of sch_1: %v, want 4 3 2 1 0", got)
	}
	if all[2].Outcome != "enqueued" || all[2].MessageID != store.RunMessageID("sch_1", all[2].DueAt) || !all[2].FiredAt.Equal(all[2].DueAt.Add(time.Second)) {
		t.Fatalf("run due at 2: %+v, want the first record", all[2])
	}
	var got []int
	var before int64
	for pages := 0; pages < 10; pages++ {
		page, err := st.ScheduleRuns(ctx, "sch_1", before, 2)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, dues(page)...)
		if len(page) < 2 {
			break
		}
		before = page[len(page)-1].DueAt.UnixNano()
	}
	if !slices.Equal(got, []int{4, 3, 2, 1, 0}) {
		t.Fatalf("runs of sch_1, 2 at a time: %v, want 4 3 2 1 0", got)
	}
	if runs, err := st.ScheduleRuns(ctx, "sch_none", 0, 10); err != nil || len(runs) != 0 {
		t.Fatalf("runs of a schedule that never ran: %+v (%v)", runs, err)
	}
}
