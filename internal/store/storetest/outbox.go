package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"app/internal/store"
)

var _ = add(
	"OutboxEnqueueIsUnique", testOutboxEnqueueIsUnique,
	"OutboxPagesAreStrict", testOutboxPagesAreStrict,
	"OutboxQueueOrderAndBacklog", testOutboxQueueOrderAndBacklog,
	"OutboxSaveSaysWhetherTheMessageExists", testOutboxSaveSaysWhetherTheMessageExists,
	"OutboxByWAIDMatchesReceipts", testOutboxByWAIDMatchesReceipts,
	"OutboxCountSentSince", testOutboxCountSentSince,
	"OutboxUnannouncedArePastThePosition", testOutboxUnannouncedArePastThePosition,
	"OutboxCancelRequestsAreDecided", testOutboxCancelRequestsAreDecided,
)

// Times the tests store are whole milliseconds: MongoDB keeps no finer.
var outboxT0 = time.UnixMilli(1_750_000_000_000).UTC()

// outboxIDs are the ids of msgs, in order.
func outboxIDs(msgs []store.OutboxMessage) []string {
	ids := make([]string, len(msgs))
	for i, m := range msgs {
		ids[i] = m.ID
	}
	return ids
}

// enqueueAll enqueues msgs, then moves each to the status it names (as the
// primary would, with SaveOutbox).
func enqueueAll(t *testing.T, st store.Store, msgs []store.OutboxMessage) {
	t.Helper()
	ctx := context.Background()
	for i := range msgs {
		status := msgs[i].Status
		if err := st.EnqueueMessage(ctx, &msgs[i]); err != nil {
			t.Fatal(err)
		}
		if status != "" && status != store.StatusQueued {
			msgs[i].Status = status
			if ok, err := st.SaveOutbox(ctx, &msgs[i]); err != nil || !ok {
				t.Fatalf("save %s as %s: %v %v", msgs[i].ID, status, ok, err)
			}
		}
	}
}

// An enqueued message is stored queued, with its id and times set; the
// same id again is refused with ErrExists and leaves the first as it was
// (an Idempotency-Key's retry meets the first request there).
func testOutboxEnqueueIsUnique(t *testing.T, h Harness) {
	st := h.Open(t)
	ctx := context.Background()
	if _, err := st.OutboxMessage(ctx, "msg_none"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("reading a message never queued: %v, want ErrNotFound", err)
	}
	m := store.OutboxMessage{Chat: alice, Text: "hello", Status: store.StatusSent, KeyID: "key_1"}
	before := time.Now()
	if err := st.EnqueueMessage(ctx, &m); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(m.ID, "msg_") || m.Status != store.StatusQueued || m.QueuedNS < before.UnixNano() || m.QueuedAt.IsZero() {
		t.Fatalf("enqueued %+v: want an id, status queued, the queue time set", m)
	}
	got, err := st.OutboxMessage(ctx, m.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != m.ID || got.Chat != m.Chat || got.Text != "hello" || got.Status != store.StatusQueued ||
		got.QueuedNS != m.QueuedNS || got.KeyID != "key_1" || got.QueuedAt.Sub(m.QueuedAt).Abs() >= time.Millisecond {
		t.Fatalf("read back %+v, want %+v", got, m)
	}
	again := store.OutboxMessage{ID: m.ID, Chat: bob, Text: "other"}
	if err := st.EnqueueMessage(ctx, &again); !errors.Is(err, store.ErrExists) {
		t.Fatalf("second enqueue of %s: %v, want ErrExists", m.ID, err)
	}
	if got, err := st.OutboxMessage(ctx, m.ID); err != nil || got.Text != "hello" || got.Chat != m.Chat {
		t.Fatalf("after the refused enqueue the message is %+v (%v), want the first", got, err)
	}
	// An idempotent id, given by the caller, is kept.
	id := store.IdempotentMessageID("key_1", "order-7")
	if err := st.EnqueueMessage(ctx, &store.OutboxMessage{ID: id, Chat: m.Chat, Text: "once"}); err != nil {
		t.Fatal(err)
	}
	if err := st.EnqueueMessage(ctx, &store.OutboxMessage{ID: id, Chat: m.Chat, Text: "once"}); !errors.Is(err, store.ErrExists) {
		t.Fatalf("retry with the same Idempotency-Key: %v, want ErrExists", err)
	}
}

// Paging through the outbox, of everything, of a chat, of a status or of
// both, returns each matching message exactly once, newest first, ties
// on the queue time ordered by id, whatever the page size.
func testOutboxPagesAreStrict(t *testing.T, h Harness) {
	st := h.Open(t)
	base := outboxT0.UnixNano()
	var msgs []store.OutboxMessage
	for i := range 12 {
		m := store.OutboxMessage{ID: fmt.Sprintf("msg_p%02d", (i*7)%12), Chat: alice, Text: fmt.Sprint(i),
			QueuedNS: base + int64(i/4), QueuedAt: outboxT0} // four at a time share a nanosecond
		if i%2 == 1 {
			m.Chat = family
		}
		if i%3 == 0 {
			m.Status = store.StatusSent
		}
		msgs = append(msgs, m)
	}
	enqueueAll(t, st, msgs)
	newestFirst := slices.Clone(msgs)
	slices.SortFunc(newestFirst, func(a, b store.OutboxMessage) int {
		if a.QueuedNS != b.QueuedNS {
			return int(b.QueuedNS - a.QueuedNS)
		}
		return strings.Compare(b.ID, a.ID)
	})
	for _, f := range []struct{ chat, status string }{
		{"", ""}, {alice, ""}, {family, ""}, {"", store.StatusSent}, {"", store.StatusQueued},
		{alice, store.StatusSent}, {alice, store.StatusQueued}, {family, store.StatusQueued}, {"nobody@s.whatsapp.net", ""},
	} {
		var want []string
		for _, m := range newestFirst {
			if (f.chat == "" || m.Chat == f.chat) && (f.status == "" || m.Status == f.status) {
				want = append(want, m.ID)
			}
		}
		for _, limit := range []int{1, 2, 3, 5, 50} {
			var got []string
			var ns int64
			var id string
			for pages := 0; pages <= len(msgs); pages++ {
				page, err := st.OutboxPage(context.Background(), f.chat, f.status, ns, id, limit)
				if err != nil {
					t.Fatal(err)
				}
				if len(page) > limit {
					t.Fatalf("chat %q status %q: a page of %d with limit %d", f.chat, f.status, len(page), limit)
				}
				got = append(got, outboxIDs(page)...)
				if len(page) < limit {
					break
				}
				last := page[len(page)-1]
				ns, id = last.QueuedNS, last.ID
			}
			if !slices.Equal(got, want) {
				t.Fatalf("chat %q status %q, pages of %d: %v, want %v", f.chat, f.status, limit, got, want)
			}
		}
	}
	// A cursor inside a nanosecond: only the smaller ids of it, then older.
	page, err := st.OutboxPage(context.Background(), "", "", base+2, "msg_p06", 50)
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, m := range newestFirst {
		if m.QueuedNS < base+2 || m.QueuedNS == base+2 && m.ID < "msg_p06" {
			want = append(want, m.ID)
		}
	}
	if got := outboxIDs(page); !slices.Equal(got, want) {
		t.Fatalf("before (%d, msg_p06): %v, want %v", base+2, got, want)
	}
}

// The primary's queue is the queued and sending messages, oldest first
// (ties by id), at most the limit; OutboxByStatus lists one status so;
// the backlog counts the queue and dates its oldest message.
func testOutboxQueueOrderAndBacklog(t *testing.T, h Harness) {
	st := h.Open(t)
	ctx := context.Background()
	if n, oldest, err := st.OutboxBacklog(ctx); err != nil || n != 0 || !oldest.IsZero() {
		t.Fatalf("backlog of an empty outbox: %d, %v, %v; want 0 and no time", n, oldest, err)
	}
	base := outboxT0.UnixNano()
	statuses := []string{store.StatusSent, store.StatusSending, store.StatusQueued, store.StatusFailed, store.StatusQueued,
		store.StatusDelivered, store.StatusCancelled, store.StatusQueued, store.StatusRead, store.StatusSending}
	var msgs []store.OutboxMessage
	for i, s := range statuses {
		// Queued in reverse order of id, three by three in one nanosecond.
		msgs = append(msgs, store.OutboxMessage{ID: fmt.Sprintf("msg_q%02d", 20-i), Chat: alice,
			QueuedNS: base + int64(i/3), QueuedAt: outboxT0.Add(time.Duration(i/3) * time.Second), Status: s})
	}
	enqueueAll(t, st, msgs)
	queueOrder := func(keep func(store.OutboxMessage) bool) []string {
		var out []store.OutboxMessage
		for _, m := range msgs {
			if keep(m) {
				out = append(out, m)
			}
		}
		slices.SortFunc(out, func(a, b store.OutboxMessage) int {
			if a.QueuedNS != b.QueuedNS {
				return int(a.QueuedNS - b.QueuedNS)
			}
			return strings.Compare(a.ID, b.ID)
		})
		return outboxIDs(out)
	}
	unfinished := queueOrder(func(m store.OutboxMessage) bool {
		return m.Status == store.StatusQueued || m.Status == store.StatusSending
	})
	got, err := st.OutboxUnfinished(ctx, 100)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(outboxIDs(got), unfinished) {
		t.Fatalf("unfinished: %v, want %v", outboxIDs(got), unfinished)
	}
	if got, err := st.OutboxUnfinished(ctx, 2); err != nil || !slices.Equal(outboxIDs(got), unfinished[:2]) {
		t.Fatalf("the first 2 unfinished: %v (%v), want %v", outboxIDs(got), err, unfinished[:2])
	}
	for _, s := range []string{store.StatusQueued, store.StatusSending, store.StatusSent, "nothing"} {
		want := queueOrder(func(m store.OutboxMessage) bool { return m.Status == s })
		got, err := st.OutboxByStatus(ctx, s, 100)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(outboxIDs(got), want) {
			t.Fatalf("status %s: %v, want %v", s, outboxIDs(got), want)
		}
	}
	if got, err := st.OutboxByStatus(ctx, store.StatusQueued, 1); err != nil || len(got) != 1 {
		t.Fatalf("one queued message: %d (%v)", len(got), err)
	}
	n, oldest, err := st.OutboxBacklog(ctx)
	if err != nil || n != int64(len(unfinished)) || !oldest.Equal(outboxT0) {
		t.Fatalf("backlog: %d, oldest queued at %v (%v); want %d, %v", n, oldest, err, len(unfinished), outboxT0)
	}
	// Once all are sent, the queue is empty.
	all, err := st.OutboxUnfinished(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range all {
		m.Status, m.SentAt = store.StatusSent, outboxT0
		if ok, err := st.SaveOutbox(ctx, &m); err != nil || !ok {
			t.Fatalf("save %s as sent: %v %v", m.ID, ok, err)
		}
	}
	if rest, err := st.OutboxUnfinished(ctx, 100); err != nil || len(rest) != 0 {
		t.Fatalf("unfinished after all were sent: %v (%v)", outboxIDs(rest), err)
	}
	if n, oldest, err := st.OutboxBacklog(ctx); err != nil || n != 0 || !oldest.IsZero() {
		t.Fatalf("backlog after all were sent: %d, %v, %v; want 0 and no time", n, oldest, err)
	}
}

// SaveOutbox replaces the message with the primary's view and says true;
// for a message that does not exist it says false and creates nothing.
func testOutboxSaveSaysWhetherTheMessageExists(t *testing.T, h Harness) {
	st := h.Open(t)
	ctx := context.Background()
	m := store.OutboxMessage{Chat: alice, Text: "hi"}
	if err := st.EnqueueMessage(ctx, &m); err != nil {
		t.Fatal(err)
	}
	m.Status, m.Attempts, m.WAID, m.Epoch = store.StatusFailed, 3, "3EB0AA", 7
	m.Error = &store.Failure{Reason: "not on WhatsApp", Retryable: false}
	m.FinishedAt, m.EventSeq, m.EventSteps = outboxT0, 12, []string{store.StatusFailed}
	before := time.Now()
	if ok, err := st.SaveOutbox(ctx, &m); err != nil || !ok {
		t.Fatalf("save an existing message: %v %v, want true", ok, err)
	}
	if m.UpdatedAt.Before(before) {
		t.Fatalf("UpdatedAt %v not set by the save", m.UpdatedAt)
	}
	got, err := st.OutboxMessage(ctx, m.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != store.StatusFailed || got.Attempts != 3 || got.WAID != "3EB0AA" || got.Epoch != 7 || got.Error == nil ||
		got.Error.Reason != "not on WhatsApp" || !got.FinishedAt.Equal(outboxT0) || got.EventSeq != 12 ||
		!slices.Equal(got.EventSteps, []string{store.StatusFailed}) || got.Text != "hi" {
		t.Fatalf("read back %+v, want what was saved", got)
	}
	gone := store.OutboxMessage{ID: "msg_gone", Chat: m.Chat, Status: store.StatusSending}
	if ok, err := st.SaveOutbox(ctx, &gone); err != nil || ok {
		t.Fatalf("save a message that does not exist: %v %v, want false", ok, err)
	}
	if _, err := st.OutboxMessage(ctx, "msg_gone"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("the save created the missing message: %v", err)
	}
}

// A receipt finds its message by the WhatsApp id it was sent with.
func testOutboxByWAIDMatchesReceipts(t *testing.T, h Harness) {
	st := h.Open(t)
	ctx := context.Background()
	msgs := []store.OutboxMessage{
		{Chat: alice, Text: "a", WAID: "3EB0A1"},
		{Chat: alice, Text: "b", WAID: "3EB0B2"},
		{Chat: alice, Text: "not sent yet"},
	}
	enqueueAll(t, st, msgs)
	for _, m := range msgs[:2] {
		got, err := st.OutboxByWAID(ctx, m.WAID)
		if err != nil || got.ID != m.ID {
			t.Fatalf("message sent as %s: %s (%v), want %s", m.WAID, got.ID, err, m.ID)
		}
	}
	for _, waID := range []string{"3EB0FF", ""} {
		if got, err := st.OutboxByWAID(ctx, waID); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("WhatsApp id %q: %+v (%v), want ErrNotFound", waID, got, err)
		}
	}
	// The id is stored before the first send: a message gets it later.
	msgs[2].WAID, msgs[2].Status = "3EB0C3", store.StatusSending
	if ok, err := st.SaveOutbox(ctx, &msgs[2]); err != nil || !ok {
		t.Fatal(ok, err)
	}
	if got, err := st.OutboxByWAID(ctx, "3EB0C3"); err != nil || got.ID != msgs[2].ID {
		t.Fatalf("after the save: %s (%v), want %s", got.ID, err, msgs[2].ID)
	}
}

// The daily cap counts the messages sent since a time, including those
// delivered or read since (they keep their send time), from that time on.
func testOutboxCountSentSince(t *testing.T, h Harness) {
	st := h.Open(t)
	ctx := context.Background()
	day := outboxT0
	var msgs []store.OutboxMessage
	const unsent = time.Duration(-1)
	for i, sent := range []time.Duration{-time.Hour, -time.Millisecond, 0, time.Millisecond, 3 * time.Hour, unsent, unsent} {
		m := store.OutboxMessage{Chat: alice, Text: fmt.Sprint(i)}
		if sent != unsent {
			m.SentAt = day.Add(sent)
			m.Status = []string{store.StatusSent, store.StatusDelivered, store.StatusRead}[i%3]
		} else if i == 5 {
			m.Status = store.StatusFailed
		}
		msgs = append(msgs, m)
	}
	enqueueAll(t, st, msgs)
	for _, c := range []struct {
		since time.Time
		want  int64
	}{
		{day.Add(-2 * time.Hour), 5}, {day.Add(-time.Millisecond), 4}, {day, 3},
		{day.Add(time.Millisecond), 2}, {day.Add(2 * time.Hour), 1}, {day.Add(4 * time.Hour), 0},
	} {
		if n, err := st.CountSentSince(ctx, c.since); err != nil || n != c.want {
			t.Errorf("sent since %v: %d (%v), want %d", c.since.Sub(day), n, err, c.want)
		}
	}
}

// After a restart the primary asks for the status changes stored for
// event positions past the log's end: those, in position order.
func testOutboxUnannouncedArePastThePosition(t *testing.T, h Harness) {
	st := h.Open(t)
	ctx := context.Background()
	var msgs []store.OutboxMessage
	for _, seq := range []int64{7, 0, 3, 5, 0} {
		m := store.OutboxMessage{Chat: alice}
		if seq != 0 {
			m.Status, m.EventSeq = store.StatusSent, seq
		}
		msgs = append(msgs, m)
	}
	enqueueAll(t, st, msgs)
	seqs := func(after int64) []int64 {
		t.Helper()
		out, err := st.OutboxUnannounced(ctx, after)
		if err != nil {
			t.Fatal(err)
		}
		var got []int64
		for _, m := range out {
			got = append(got, m.EventSeq)
		}
		return got
	}
	for after, want := range map[int64][]int64{0: {3, 5, 7}, 3: {5, 7}, 4: {5, 7}, 6: {7}, 7: nil, 100: nil} {
		if got := seqs(after); !slices.Equal(got, want) {
			t.Errorf("unannounced after %d: %v, want %v", after, got, want)
		}
	}
}

// A cancel request is recorded once however often it is made, waits for
// the primary, and keeps the primary's decision.
func testOutboxCancelRequestsAreDecided(t *testing.T, h Harness) {
	st := h.Open(t)
	ctx := context.Background()
	if _, err := st.CancelRequest(ctx, "msg_a"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a request never made: %v, want ErrNotFound", err)
	}
	if got, err := st.PendingCancels(ctx); err != nil || len(got) != 0 {
		t.Fatalf("pending before any request: %+v (%v)", got, err)
	}
	for _, id := range []string{"msg_a", "msg_b", "msg_a"} {
		if err := st.RequestCancel(ctx, id); err != nil {
			t.Fatalf("request cancel of %s: %v", id, err)
		}
	}
	first, err := st.CancelRequest(ctx, "msg_a")
	if err != nil || first.MessageID != "msg_a" || first.RequestedAt.IsZero() || first.Outcome != "" {
		t.Fatalf("request of msg_a: %+v (%v)", first, err)
	}
	pendingIDs := func() []string {
		t.Helper()
		reqs, err := st.PendingCancels(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, r := range reqs {
			ids = append(ids, r.MessageID)
		}
		slices.Sort(ids)
		return ids
	}
	if got := pendingIDs(); !slices.Equal(got, []string{"msg_a", "msg_b"}) {
		t.Fatalf("pending: %v, want msg_a and msg_b once each", got)
	}
	first.Outcome, first.Status = "too_late", store.StatusSent
	if err := st.DecideCancel(ctx, first); err != nil {
		t.Fatal(err)
	}
	if got := pendingIDs(); !slices.Equal(got, []string{"msg_b"}) {
		t.Fatalf("pending after deciding msg_a: %v, want msg_b", got)
	}
	// Asking again after the decision changes nothing.
	if err := st.RequestCancel(ctx, "msg_a"); err != nil {
		t.Fatal(err)
	}
	got, err := st.CancelRequest(ctx, "msg_a")
	if err != nil || got.Outcome != "too_late" || got.Status != store.StatusSent || got.DecidedAt.IsZero() ||
		!got.RequestedAt.Equal(first.RequestedAt) {
		t.Fatalf("decided request: %+v (%v), want too_late at status sent, decided, requested when first asked", got, err)
	}
	if got := pendingIDs(); !slices.Equal(got, []string{"msg_b"}) {
		t.Fatalf("pending after a repeated request: %v, want msg_b", got)
	}
}
