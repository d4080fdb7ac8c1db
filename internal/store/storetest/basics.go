package storetest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"app/internal/msg"
	"app/internal/store"
)

var _ = add(
	"RecordsCarryTheirAccount", testRecordsCarryTheirAccount,
	"HeartbeatsAreListedAndPruned", testHeartbeatsAreListedAndPruned,
	"LeaseEpochsAreExclusive", testLeaseEpochsAreExclusive,
	"PruneMediaKeepsWhatIsNeeded", testPruneMediaKeepsWhatIsNeeded,
	"IncomingPagesAreStrict", testIncomingPagesAreStrict,
)

func testHeartbeatsAreListedAndPruned(t *testing.T, h Harness) {
	st := h.Open(t)
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Millisecond)
	for _, hb := range []store.Heartbeat{
		{ID: "h/worker-1", Role: "worker", Worker: "1", PID: 10, LastSeen: now, Requests: 7, State: "serving"},
		{ID: "h/primary", Role: "primary", PID: 11, LastSeen: now.Add(-2 * time.Hour), State: "holder"},
	} {
		if err := st.WriteHeartbeat(ctx, hb); err != nil {
			t.Fatal(err)
		}
	}
	// A second write replaces the first: one document per process.
	if err := st.WriteHeartbeat(ctx, store.Heartbeat{ID: "h/worker-1", Role: "worker", Worker: "1", PID: 10, LastSeen: now, Requests: 8, State: "serving"}); err != nil {
		t.Fatal(err)
	}
	recent, err := st.Heartbeats(ctx, now.Add(-time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if len(recent) != 1 || recent[0].ID != "h/worker-1" || recent[0].Requests != 8 {
		t.Fatalf("recent heartbeats = %+v, want only h/worker-1 with 8 requests", recent)
	}
	n, err := st.PruneHeartbeats(ctx, now.Add(-time.Hour))
	if err != nil || n != 1 {
		t.Fatalf("pruned %d (%v), want 1", n, err)
	}
}

// Exactly one contender gets an epoch; renewing needs the holder's name and
// fails once a higher epoch exists.
func testLeaseEpochsAreExclusive(t *testing.T, h Harness) {
	a, b := h.OpenTwo(t)
	ctx := context.Background()
	if _, err := a.CurrentLease(ctx); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("lease before any claim: %v, want ErrNotFound", err)
	}
	exp := time.Now().Add(time.Minute)
	var wg sync.WaitGroup
	won := make([]bool, 2)
	for i, st := range []store.Store{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ok, err := st.ClaimLease(ctx, store.Lease{Epoch: 1, Holder: fmt.Sprint("p", i), ExpiresAt: exp})
			if err != nil {
				t.Error(err)
			}
			won[i] = ok
		}()
	}
	wg.Wait()
	if won[0] == won[1] {
		t.Fatalf("claims of epoch 1: %v, want exactly one winner", won)
	}
	holder, loser := "p0", "p1"
	if won[1] {
		holder, loser = "p1", "p0"
	}
	if ok, err := a.RenewLease(ctx, 1, loser, exp); err != nil || ok {
		t.Fatalf("the loser renewed epoch 1: %v %v", ok, err)
	}
	if ok, err := a.RenewLease(ctx, 1, holder, exp); err != nil || !ok {
		t.Fatalf("the holder could not renew epoch 1: %v %v", ok, err)
	}
	if ok, err := b.ClaimLease(ctx, store.Lease{Epoch: 2, Holder: loser, ExpiresAt: exp}); err != nil || !ok {
		t.Fatalf("claim epoch 2: %v %v", ok, err)
	}
	if ok, err := a.RenewLease(ctx, 1, holder, exp); err != nil || ok {
		t.Fatalf("epoch 1 renewed after epoch 2 was taken: %v %v", ok, err)
	}
	cur, err := a.CurrentLease(ctx)
	if err != nil || cur.Epoch != 2 || cur.Holder != loser {
		t.Fatalf("current lease = %+v (%v), want epoch 2 held by %s", cur, err, loser)
	}
	if err := a.PruneLeases(ctx, 2); err != nil {
		t.Fatal(err)
	}
	if ok, err := a.ClaimLease(ctx, store.Lease{Epoch: 2, Holder: holder}); err != nil || ok {
		t.Fatalf("epoch 2 claimed twice: %v %v", ok, err)
	}
}

// Media retention keeps what a live schedule or an unsent message needs.
func testPruneMediaKeepsWhatIsNeeded(t *testing.T, h Harness) {
	st := h.Open(t)
	ctx := context.Background()
	put := func(name string) string {
		id, err := st.PutMedia(ctx, name, "image/png", strings.NewReader("\x89PNG "+name))
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	forSchedule, forMessage, unused := put("schedule"), put("message"), put("unused")
	if err := st.CreateSchedule(ctx, &store.Schedule{ID: "sch_1", Kind: "cron", Cron: "0 9 * * *", Missed: "skip", Chat: "x@s.whatsapp.net", MediaID: forSchedule}); err != nil {
		t.Fatal(err)
	}
	if err := st.EnqueueMessage(ctx, &store.OutboxMessage{Chat: "x@s.whatsapp.net", MediaID: forMessage}); err != nil {
		t.Fatal(err)
	}
	n, err := st.PruneMedia(ctx, time.Now().Add(time.Minute))
	if err != nil || n != 1 {
		t.Fatalf("pruned %d, %v; want the 1 unused file", n, err)
	}
	for id, want := range map[string]bool{forSchedule: true, forMessage: true, unused: false} {
		_, err := st.Media(ctx, id)
		if got := err == nil; got != want {
			t.Errorf("media %s kept: %t, want %t (%v)", id, got, want, err)
		}
	}
	for seq := int64(1); seq <= 3; seq++ {
		if err := st.AppendEvent(ctx, seq, "test", 1, map[string]string{"a": "b"}); err != nil {
			t.Fatal(err)
		}
	}
	// Everything is past retention, but the newest stays: the position.
	if n, err := st.PruneEvents(ctx, time.Now().Add(time.Minute)); err != nil || n != 2 {
		t.Errorf("pruned %d events, %v; want 2", n, err)
	}
	if last, err := st.LastEventSeq(ctx); err != nil || last != 3 {
		t.Errorf("after pruning the log is at %d, %v; want 3", last, err)
	}
	// The size limit keeps the newest events.
	for seq := int64(4); seq <= 10; seq++ {
		if err := st.AppendEvent(ctx, seq, "test", 1, map[string]string{"a": "b"}); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := st.PruneEventsBeyond(ctx, 4); err != nil || n != 4 {
		t.Errorf("pruned %d events beyond 4, %v; want 4 (3..6)", n, err)
	}
	if first, err := st.FirstEventSeq(ctx); err != nil || first != 7 {
		t.Errorf("after the size limit the log starts at %d, %v; want 7", first, err)
	}
	if n, err := st.PruneEventsBeyond(ctx, 0); err != nil || n != 0 {
		t.Errorf("no limit pruned %d, %v", n, err)
	}
}

// Paging through incoming messages returns each exactly once, whatever the
// page size, also when many share one millisecond (WhatsApp stamps
// seconds, so a burst in a group often does) and across chats.
func testIncomingPagesAreStrict(t *testing.T, h Harness) {
	st := h.Open(t)
	ctx := context.Background()
	at := time.UnixMilli(1_750_000_000_000)
	want := map[string]bool{}
	for i := range 7 {
		m := store.IncomingMessage{WAID: fmt.Sprintf("3A%02d", i), Chat: "491701234567@s.whatsapp.net", Sender: "491701234567@s.whatsapp.net",
			Body: msg.Body{Kind: "text"}, Text: fmt.Sprint(i), SentAt: at, ReceivedAt: at}
		if i >= 5 { // two earlier ones, in another millisecond
			m.SentAt = at.Add(-time.Second)
		}
		if _, err := st.SaveIncoming(ctx, m); err != nil {
			t.Fatal(err)
		}
		want[m.WAID] = true
	}
	other := store.IncomingMessage{WAID: "3AFF", Chat: "120363025246125486@g.us", Sender: "4915112345678@s.whatsapp.net", Body: msg.Body{Kind: "text"}, SentAt: at}
	if _, err := st.SaveIncoming(ctx, other); err != nil {
		t.Fatal(err)
	}
	for _, limit := range []int{1, 2, 3, 7} {
		var got []string
		var ns int64
		var key string
		for pages := 0; pages < 10; pages++ {
			page, err := st.IncomingPage(ctx, "491701234567@s.whatsapp.net", ns, key, limit)
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range page {
				got = append(got, m.WAID)
			}
			if len(page) < limit {
				break
			}
			last := page[len(page)-1]
			ns, key = last.SentAt.UnixNano(), last.Key
		}
		seen := map[string]bool{}
		for _, id := range got {
			if seen[id] || !want[id] {
				t.Fatalf("limit %d: pages %v repeat a message or hold another chat's", limit, got)
			}
			seen[id] = true
		}
		if len(seen) != len(want) || got[len(got)-2] != "3A05" && got[len(got)-2] != "3A06" {
			t.Fatalf("limit %d: pages %v, want all 7, the two older ones last", limit, got)
		}
	}
	// A cursor off the millisecond (an outgoing message's in a chat's
	// mixed history) is after every message of that millisecond.
	page, err := st.IncomingPage(ctx, "491701234567@s.whatsapp.net", at.UnixNano()+1, "msg_zzz", 10)
	if err != nil || len(page) != 7 {
		t.Fatalf("before a cursor 1 ns after the burst: %d messages, %v; want 7", len(page), err)
	}
	if page, err := st.IncomingPage(ctx, "", 0, "", 10); err != nil || len(page) != 8 {
		t.Fatalf("every chat: %d messages, %v; want 8", len(page), err)
	}
}

// Every record that belongs to a WhatsApp account says which: the one
// account, "default", until an installation holds several.
func testRecordsCarryTheirAccount(t *testing.T, h Harness) {
	st := h.Open(t)
	ctx := context.Background()
	m := store.OutboxMessage{Chat: "491701234567@s.whatsapp.net", Text: "hi"}
	if err := st.EnqueueMessage(ctx, &m); err != nil {
		t.Fatal(err)
	}
	in := store.IncomingMessage{WAID: "3A01", Chat: m.Chat, Sender: m.Chat, Body: msg.Body{Kind: "text"}, SentAt: time.Now()}
	if _, err := st.SaveIncoming(ctx, in); err != nil {
		t.Fatal(err)
	}
	if err := st.SaveChat(ctx, store.Chat{JID: m.Chat, LastMessageAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if err := st.SaveContactPushName(ctx, m.Chat, "Alice"); err != nil {
		t.Fatal(err)
	}
	if err := st.SaveSession(ctx, store.WASession{State: "connected"}); err != nil {
		t.Fatal(err)
	}
	out, err1 := st.OutboxMessage(ctx, m.ID)
	inc, err2 := st.IncomingMessage(ctx, m.Chat+"/"+m.Chat+"/3A01")
	chat, err3 := st.Chat(ctx, m.Chat)
	contact, err4 := st.Contact(ctx, m.Chat)
	session, err5 := st.Session(ctx)
	if err := errors.Join(err1, err2, err3, err4, err5); err != nil {
		t.Fatal(err)
	}
	for what, got := range map[string]string{"outbox message": out.Account, "incoming message": inc.Account,
		"chat": chat.Account, "contact": contact.Account, "session": session.Account} {
		if got != store.DefaultAccount {
			t.Errorf("%s: account %q, want %q", what, got, store.DefaultAccount)
		}
	}
}
