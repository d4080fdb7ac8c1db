package primary_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"app/internal/config"
	"app/internal/msg"
	"app/internal/primary"
	"app/internal/proc"
	"app/internal/store"
	"app/internal/testdb"
	"app/internal/testutil"
	"app/internal/whatsapp"
)

// waCfg is the configuration of the tests: no pace or caps unless a test
// sets them, quick reconciliation.
func waCfg() config.WhatsApp {
	return config.WhatsApp{Driver: "sandbox", MaxAttempts: 5, ReconcileWait: time.Second, MediaMaxBytes: 1 << 20,
		RateLimitPause: time.Minute}
}

func waStore(t *testing.T) store.Store { return waStoreTB(t) }

// statusStories are the statuses the log announced for each message, in
// order, by message id.
func statusStories(t *testing.T, st store.Store) map[string][]string {
	t.Helper()
	stories := map[string][]string{}
	for _, e := range events(t, st) {
		if e.Type == "message.status" {
			var d struct{ ID, Status string }
			_ = e.DecodeData(&d)
			stories[d.ID] = append(stories[d.ID], d.Status)
		}
	}
	return stories
}

// waStoreOn is a store on db, for the tests that run on both engines.
func waStoreOn(t testing.TB, db *testdb.DB) store.Store {
	t.Helper()
	st := db.Connect(nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := st.EnsureIndexes(ctx, zerolog.Nop()); err != nil {
		t.Fatal(err)
	}
	return st
}

func waStoreTB(t testing.TB) store.Store {
	t.Helper()
	st := testdb.Start(t).Connect(nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := st.EnsureIndexes(ctx, zerolog.Nop()); err != nil {
		t.Fatal(err)
	}
	return st
}

func sandbox(t *testing.T, cfg whatsapp.SandboxConfig) *whatsapp.Sandbox {
	t.Helper()
	if cfg.Paired == "" {
		cfg.Paired = whatsapp.SandboxJID
	}
	if cfg.DeliveredDelay == 0 {
		cfg.DeliveredDelay = 20 * time.Millisecond
	}
	if cfg.ReadDelay == 0 {
		cfg.ReadDelay = 40 * time.Millisecond
	}
	sb, err := whatsapp.NewSandbox(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return sb
}

// runWA runs a WhatsApp task as the lease holder of epoch; the returned
// function stops it and waits.
func runWA(t *testing.T, w *primary.WhatsApp, epoch int64) (context.CancelFunc, func()) {
	t.Helper()
	return runWACtx(t, context.Background(), w, epoch)
}

func runWACtx(t *testing.T, parent context.Context, w *primary.WhatsApp, epoch int64) (context.CancelFunc, func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(parent)
	done := make(chan struct{})
	go func() { defer close(done); _ = w.Run(ctx, epoch) }()
	stop := func() {
		cancel()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			t.Fatal("the WhatsApp task did not stop within 20s")
		}
	}
	t.Cleanup(stop)
	return cancel, stop
}

// primaryKilledAtMark runs a primary (epoch 1) on st with sb whose event
// log stops it at the first mark crash says yes to: the change stored,
// its events not appended. killed waits for that and returns the mark's
// seq, the primary stopped.
func primaryKilledAtMark(t *testing.T, st store.Store, sb *whatsapp.Sandbox, crash func() bool) (killed func() int64) {
	t.Helper()
	ev := primary.NewEventLog(st, zerolog.Nop())
	w := &primary.WhatsApp{Cfg: waCfg(), Driver: sb, Store: st, Log: zerolog.Nop(), Events: ev}
	ctx, kill := context.WithCancel(context.Background())
	crashed := make(chan int64, 1)
	var once sync.Once
	primary.SetMarkedHook(ev, func(seq int64) {
		if crash() {
			once.Do(func() { kill(); crashed <- seq })
		}
	})
	if !ev.Start(ctx, 1) {
		t.Fatal("event log did not start")
	}
	_, stop := runWACtx(t, ctx, w, 1)
	return func() int64 {
		t.Helper()
		select {
		case seq := <-crashed:
			stop()
			return seq
		case <-time.After(10 * time.Second):
			t.Fatal("the change was never stored")
			return 0
		}
	}
}

// nextPrimary runs the primary after a killed one (epoch 2) on st with
// sb, its event log started, until the test ends.
func nextPrimary(t *testing.T, st store.Store, sb *whatsapp.Sandbox) {
	t.Helper()
	ev := primary.NewEventLog(st, zerolog.Nop())
	w := &primary.WhatsApp{Cfg: waCfg(), Driver: sb, Store: st, Log: zerolog.Nop(), Events: ev}
	ctx, stop := context.WithCancel(context.Background())
	t.Cleanup(stop)
	if !ev.Start(ctx, 2) {
		t.Fatal("event log did not start")
	}
	runWACtx(t, ctx, w, 2)
}

// gapless fails t where the event log skips a position.
func gapless(t *testing.T, st store.Store) {
	t.Helper()
	var last int64
	for _, e := range events(t, st) {
		if e.Seq != last+1 {
			t.Errorf("event %d follows %d: the log has a gap", e.Seq, last)
		}
		last = e.Seq
	}
}

// waitFor is testutil.Eventually with this package's order of arguments.
func waitFor(t *testing.T, what string, within time.Duration, cond func() (bool, string)) {
	t.Helper()
	testutil.Eventually(t, within, what, cond)
}

// outboxTurns waits until the outbox loop has begun n more turns: each
// turn first decides the cancel requests pending, so a request for a
// message that does not exist, decided, marks one turn. Two turns prove
// the turn running when it was called has finished, sending included.
func outboxTurns(t *testing.T, st store.Store, n int) {
	t.Helper()
	for i := range n {
		id := fmt.Sprintf("msg_turn%d_%d", time.Now().UnixNano(), i)
		if err := st.RequestCancel(context.Background(), id); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the outbox loop to turn", 10*time.Second, func() (bool, string) {
			c, err := st.CancelRequest(context.Background(), id)
			return err == nil && c.Outcome != "", fmt.Sprintf("%+v (%v)", c, err)
		})
	}
}

func enqueue(t *testing.T, st store.Store, chat, text string) store.OutboxMessage {
	t.Helper()
	m := store.OutboxMessage{Chat: chat, Text: text}
	if err := st.EnqueueMessage(context.Background(), &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func message(t *testing.T, st store.Store, id string) store.OutboxMessage {
	t.Helper()
	m, err := st.OutboxMessage(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func statusIs(t *testing.T, st store.Store, id string, want ...string) func() (bool, string) {
	return func() (bool, string) {
		m := message(t, st, id)
		for _, s := range want {
			if m.Status == s {
				return true, m.Status
			}
		}
		return false, fmt.Sprintf("status %s, waiting %q, error %+v", m.Status, m.Waiting, m.Error)
	}
}

func events(t *testing.T, st store.Store) []store.Event {
	t.Helper()
	evs, err := st.Events(context.Background(), 0, 100000)
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

const alice = "491701234567@s.whatsapp.net"

func TestMessageLifecycle(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		st := waStoreOn(t, db)
		sb := sandbox(t, whatsapp.SandboxConfig{})
		w := &primary.WhatsApp{Cfg: waCfg(), Driver: sb, Store: st, Log: zerolog.Nop()}
		runWA(t, w, 1)

		m := enqueue(t, st, alice, "hello")
		waitFor(t, "the message is read", 10*time.Second, statusIs(t, st, m.ID, store.StatusRead))
		got := message(t, st, m.ID)
		if got.WAID == "" || got.Attempts != 1 || got.SentAt.IsZero() || got.DeliveredAt.IsZero() || got.ReadAt.IsZero() {
			t.Errorf("read message: %+v; want a WhatsApp id, 1 attempt and the three times", got)
		}
		sent := sb.Sent()
		if len(sent) != 1 || sent[0].ID != got.WAID || sent[0].Chat != alice || sent[0].Text != "hello" {
			t.Errorf("the sandbox got %+v, want one send of %q with id %s", sent, "hello", got.WAID)
		}

		// The event log tells the same story, in order, with the session first
		// (each status is stored just before its event is appended).
		const want = "session:connecting session:connected sent delivered read"
		waitFor(t, "the log tells the story", 5*time.Second, func() (bool, string) {
			var story []string
			var last int64
			for _, e := range events(t, st) {
				if e.Seq != last+1 {
					t.Errorf("event %d follows %d: the log has a gap", e.Seq, last)
				}
				last = e.Seq
				switch e.Type {
				case "session.state":
					var d struct{ State string }
					_ = e.DecodeData(&d)
					story = append(story, "session:"+d.State)
				case "message.status":
					var d struct{ ID, Status string }
					_ = e.DecodeData(&d)
					if d.ID == m.ID {
						story = append(story, d.Status)
					}
				}
			}
			return strings.Join(story, " ") == want, strings.Join(story, " ")
		})
		ws, err := st.Session(context.Background())
		if err != nil || ws.State != "connected" || ws.JID != whatsapp.SandboxJID {
			t.Errorf("session document: %+v, %v; want connected as %s", ws, err, whatsapp.SandboxJID)
		}
	})
}

// A thousand messages over ten chats, queued by ten clients at once: all
// sent, none twice, each chat in the order it was queued.
func TestThousandMessagesInOrderPerChat(t *testing.T) {
	if raceEnabled {
		t.Skip("1,000 messages take minutes under the race detector's slowdown of the embedded database; make test runs this test again without -race")
	}
	st := waStore(t)
	sb := sandbox(t, whatsapp.SandboxConfig{DeliveredDelay: -1, ReadDelay: -1})
	w := &primary.WhatsApp{Cfg: waCfg(), Driver: sb, Store: st, Log: zerolog.Nop()}
	runWA(t, w, 1)

	const chats, per = 10, 100
	var wg sync.WaitGroup
	for c := range chats {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range per {
				m := store.OutboxMessage{Chat: fmt.Sprintf("4915%09d@s.whatsapp.net", c), Text: fmt.Sprintf("%d/%d", c, i)}
				if err := st.EnqueueMessage(context.Background(), &m); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	waitFor(t, "all sent", 3*time.Minute, func() (bool, string) {
		n := len(sb.Sent())
		return n >= chats*per, fmt.Sprintf("%d sent", n)
	})
	// A send too many would be of a message left unfinished; once none is
	// and the loop has gone round again, it would show.
	waitFor(t, "no message left unfinished", 10*time.Second, func() (bool, string) {
		ms, err := st.OutboxUnfinished(context.Background(), 10)
		return err == nil && len(ms) == 0, fmt.Sprintf("%d unfinished (%v)", len(ms), err)
	})
	outboxTurns(t, st, 2)
	sent := sb.Sent()
	if len(sent) != chats*per {
		t.Fatalf("%d sends for %d messages", len(sent), chats*per)
	}
	seen := map[string]bool{}
	next := map[string]int{}
	for _, s := range sent {
		if seen[s.ID] {
			t.Errorf("WhatsApp id %s sent twice", s.ID)
		}
		seen[s.ID] = true
		var c, i int
		fmt.Sscanf(s.Text, "%d/%d", &c, &i)
		if i != next[s.Chat] {
			t.Errorf("chat %s: message %d sent when %d was next", s.Chat, i, next[s.Chat])
		}
		next[s.Chat] = i + 1
	}
	left, err := st.OutboxUnfinished(context.Background(), 10)
	if err != nil || len(left) != 0 {
		t.Errorf("unfinished after all were sent: %d, %v", len(left), err)
	}
}

// A primary stopped right after a send, before it could store "sent", and
// one stopped right before a send, after it stored "sending": the next
// primary sends neither twice and loses neither.
func TestPrimaryKilledMidSend(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		for _, when := range []string{"after the send", "before the send"} {
			t.Run(when, func(t *testing.T) {
				st := waStoreOn(t, db)
				sb := sandbox(t, whatsapp.SandboxConfig{})
				a := &primary.WhatsApp{Cfg: waCfg(), Driver: sb, Store: st, Log: zerolog.Nop()}
				var ms []store.OutboxMessage
				for i := range 6 {
					ms = append(ms, enqueue(t, st, alice, fmt.Sprint("m", i)))
				}
				var once sync.Once
				ctxA, killA := context.WithCancel(context.Background())
				crashed := make(chan struct{})
				crash := func(id string) {
					if id == ms[2].ID {
						once.Do(func() { killA(); close(crashed) })
					}
				}
				if when == "after the send" {
					primary.SetSendHooks(a, nil, crash)
				} else {
					primary.SetSendHooks(a, crash, nil)
				}
				_, stopA := runWACtx(t, ctxA, a, 1)
				select {
				case <-crashed:
				case <-time.After(10 * time.Second):
					t.Fatal("message 2 was never sent")
				}
				stopA()
				left := message(t, st, ms[2].ID)
				if left.Status != store.StatusSending || left.WAID == "" {
					t.Fatalf("after the crash message 2 is %s (wa_id %q); want it left in sending with its id", left.Status, left.WAID)
				}

				b := &primary.WhatsApp{Cfg: waCfg(), Driver: sb, Store: st, Log: zerolog.Nop()}
				runWA(t, b, 2)
				for _, m := range ms {
					waitFor(t, "message "+m.Text+" delivered", 20*time.Second, statusIs(t, st, m.ID, store.StatusDelivered, store.StatusRead))
				}
				count := map[string]int{}
				var order []string
				for _, s := range sb.Sent() {
					count[s.ID]++
					order = append(order, s.Text)
				}
				for id, n := range count {
					if n != 1 {
						t.Errorf("WhatsApp id %s sent %d times", id, n)
					}
				}
				if got := strings.Join(order, " "); got != "m0 m1 m2 m3 m4 m5" {
					t.Errorf("sent in the order %s", got)
				}
				if got := message(t, st, ms[2].ID); got.WAID != left.WAID {
					t.Errorf("message 2 went out as %s, not the id %s chosen before the crash", got.WAID, left.WAID)
				}
			})
		}
	})
}

func TestTransientFailureRetriesPermanentFails(t *testing.T) {
	st := waStore(t)
	sb := sandbox(t, whatsapp.SandboxConfig{})
	w := &primary.WhatsApp{Cfg: waCfg(), Driver: sb, Store: st, Log: zerolog.Nop()}
	sb.FailNext(whatsapp.SendError{Reason: "timed out", Retryable: true})
	runWA(t, w, 1)
	m := enqueue(t, st, alice, "first")
	waitFor(t, "retried and delivered", 15*time.Second, statusIs(t, st, m.ID, store.StatusDelivered, store.StatusRead))
	got := message(t, st, m.ID)
	if got.Attempts != 2 || len(sb.Sent()) != 1 || sb.Sent()[0].ID != got.WAID {
		t.Errorf("after a transient failure: %d attempts, sends %+v; want 2 attempts and one send with id %s", got.Attempts, sb.Sent(), got.WAID)
	}

	sb.FailNext(whatsapp.SendError{Reason: "no such WhatsApp account"})
	bad := enqueue(t, st, alice, "second")
	after := enqueue(t, st, alice, "third")
	waitFor(t, "the permanent failure is recorded", 10*time.Second, statusIs(t, st, bad.ID, store.StatusFailed))
	got = message(t, st, bad.ID)
	if got.Error == nil || got.Error.Retryable || got.Error.Reason != "no such WhatsApp account" || got.Attempts != 1 {
		t.Errorf("failed message: %+v, error %+v; want one attempt and the reason, not retryable", got, got.Error)
	}
	// A failed message does not hold up its chat.
	waitFor(t, "the next message of the chat goes out", 10*time.Second, statusIs(t, st, after.ID, store.StatusDelivered, store.StatusRead))
}

func TestDisconnectedQueueAndCancel(t *testing.T) {
	st := waStore(t)
	sb := sandbox(t, whatsapp.SandboxConfig{})
	w := &primary.WhatsApp{Cfg: waCfg(), Driver: sb, Store: st, Log: zerolog.Nop()}
	runWA(t, w, 1)
	waitFor(t, "connected", 5*time.Second, func() (bool, string) {
		s := w.Session()
		return s.State == whatsapp.StateConnected, string(s.State)
	})
	sb.Disconnect("network is unreachable", 2*time.Second)
	waitFor(t, "the session document says disconnected", 5*time.Second, func() (bool, string) {
		ws, _ := st.Session(context.Background())
		return ws.State == "disconnected" && ws.Reason == "network is unreachable", ws.State + " " + ws.Reason
	})
	keep := enqueue(t, st, alice, "keep")
	drop := enqueue(t, st, alice, "drop")
	if err := st.RequestCancel(context.Background(), drop.ID); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "cancelled while disconnected", 5*time.Second, statusIs(t, st, drop.ID, store.StatusCancelled))
	if len(sb.Sent()) != 0 {
		t.Fatalf("sent while disconnected: %+v", sb.Sent())
	}
	waitFor(t, "sent after the reconnect", 10*time.Second, statusIs(t, st, keep.ID, store.StatusDelivered, store.StatusRead))
	c, err := st.CancelRequest(context.Background(), drop.ID)
	if err != nil || c.Outcome != "cancelled" {
		t.Errorf("cancel request: %+v, %v", c, err)
	}
	// Too late once it went out.
	if err := st.RequestCancel(context.Background(), keep.ID); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the late cancel is refused", 5*time.Second, func() (bool, string) {
		c, _ := st.CancelRequest(context.Background(), keep.ID)
		return c.Outcome == "too_late", c.Outcome
	})
	for _, s := range sb.Sent() {
		if s.Text == "drop" {
			t.Error("the cancelled message was sent")
		}
	}
}

func TestIncomingStoredWithMedia(t *testing.T) {
	st := waStore(t)
	sb := sandbox(t, whatsapp.SandboxConfig{})
	w := &primary.WhatsApp{Cfg: waCfg(), Driver: sb, Store: st, Log: zerolog.Nop()}
	runWA(t, w, 1)
	photo := bytes.Repeat([]byte("jpeg"), 1000)
	in := sb.Inject(whatsapp.Incoming{Chat: alice, PushName: "Alice", Body: msg.Body{Kind: "image"}, Text: "look",
		Media: &whatsapp.Media{MimeType: "image/jpeg", Size: int64(len(photo)), Caption: "look", Handle: photo}})
	sb.Inject(whatsapp.Incoming{Chat: alice, Body: msg.Body{Kind: "reaction", Reaction: "👍"}, ReactionTo: in.ID})
	var got []store.IncomingMessage
	waitFor(t, "both stored", 10*time.Second, func() (bool, string) {
		got, _ = st.IncomingMessages(context.Background(), alice, 10)
		return len(got) == 2, fmt.Sprint(len(got))
	})
	if got[0].WAID != in.ID || got[0].Media == nil || got[0].Media.FileID == "" || got[1].Reaction != "👍" || got[1].ReactionTo != in.ID {
		t.Fatalf("stored: %+v / %+v", got[0], got[1])
	}
	data, err := st.Media(context.Background(), got[0].Media.FileID)
	if err != nil || !bytes.Equal(data, photo) {
		t.Errorf("media read back: %d bytes, %v; want the %d bytes sent", len(data), err, len(photo))
	}
	c, err := st.Chat(context.Background(), alice)
	if err != nil || c.PushName != "Alice" || c.LastIncomingAt.IsZero() {
		t.Errorf("chat: %+v, %v", c, err)
	}
	// Each event follows its message's storing.
	waitFor(t, "two message.incoming events", 5*time.Second, func() (bool, string) {
		n := 0
		for _, e := range events(t, st) {
			if e.Type == "message.incoming" {
				n++
			}
		}
		return n == 2, fmt.Sprint(n, " events")
	})
}

// The lease moves from one primary to another: the second sends what the
// first had not, nothing twice.
func TestStandbyTakesOverTheOutbox(t *testing.T) {
	st := waStore(t)
	sb := sandbox(t, whatsapp.SandboxConfig{})
	cfg := config.Config{LeaseTTL: 600 * time.Millisecond, HeartbeatInterval: time.Second, DBWait: time.Second}
	start := func(name string) (context.CancelFunc, chan struct{}) {
		w := &primary.WhatsApp{Cfg: waCfg(), Driver: sb, Store: st, Log: zerolog.Nop()}
		p := &primary.Primary{Cfg: cfg, Log: zerolog.Nop(), Store: st, ID: proc.NewIdentity("primary", name), Tasks: []primary.Task{w.Task()}}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); _ = p.Run(ctx) }()
		return cancel, done
	}
	stopA, doneA := start("a")
	var ms []store.OutboxMessage
	for i := range 10 {
		ms = append(ms, enqueue(t, st, alice, fmt.Sprint(i)))
	}
	waitFor(t, "the first primary sends", 10*time.Second, statusIs(t, st, ms[0].ID, store.StatusSent, store.StatusDelivered, store.StatusRead))
	stopB, doneB := start("b")
	defer func() { stopB(); <-doneB }()
	stopA()
	<-doneA
	for i := 10; i < 20; i++ {
		ms = append(ms, enqueue(t, st, alice, fmt.Sprint(i)))
	}
	for _, m := range ms {
		waitFor(t, "message "+m.Text+" delivered", 20*time.Second, statusIs(t, st, m.ID, store.StatusDelivered, store.StatusRead))
	}
	epochs := map[int64]bool{}
	for _, m := range ms {
		epochs[message(t, st, m.ID).Epoch] = true
	}
	if len(epochs) < 2 {
		t.Errorf("every message was sent under one lease epoch (%v); the standby never took over", epochs)
	}
	count := map[string]int{}
	for _, s := range sb.Sent() {
		count[s.ID]++
	}
	// Each message goes out under its own id, chosen before the first
	// try. A send the first primary had in flight when it stopped may go
	// out again from the second under the same id, which WhatsApp takes as
	// the same message (seen on a loaded machine: 21 sends of 20 ids).
	if len(count) != 20 {
		t.Errorf("%d sends of %d ids for 20 messages", len(sb.Sent()), len(count))
	}
	for id, n := range count {
		if n > 2 {
			t.Errorf("message %s was sent %d times; a takeover repeats at most the send in flight", id, n)
		}
	}
}

// WhatsApp saying "too fast" pauses all sending for WHATSAPP_RATE_LIMIT_PAUSE
// and says so in the session; the message goes out afterwards.
func TestRateLimitPausesSending(t *testing.T) {
	st := waStore(t)
	sb := sandbox(t, whatsapp.SandboxConfig{})
	cfg := waCfg()
	cfg.RateLimitPause = 3 * time.Second
	w := &primary.WhatsApp{Cfg: cfg, Driver: sb, Store: st, Log: zerolog.Nop()}
	sb.FailNext(whatsapp.SendError{Reason: "rate-overlimit", Retryable: true, RateLimited: true})
	runWA(t, w, 1)
	m := enqueue(t, st, alice, "slow down")
	waitFor(t, "the pause is recorded", 10*time.Second, func() (bool, string) {
		ws, _ := st.Session(context.Background())
		return ws.SendingPausedUntil.After(time.Now().Add(time.Second)), ws.SendingPausedUntil.String()
	})
	other := enqueue(t, st, "4915199999999@s.whatsapp.net", "another chat")
	// The loop goes round while paused; two turns after the enqueue, a
	// send of either message would have happened.
	outboxTurns(t, st, 2)
	if ws, _ := st.Session(context.Background()); !ws.SendingPausedUntil.After(time.Now()) {
		t.Fatalf("the pause (until %s) ended before the check; the test tested nothing", ws.SendingPausedUntil)
	}
	if n := len(sb.Sent()); n != 0 {
		t.Fatalf("%d messages sent during the pause", n)
	}
	waitFor(t, "both sent after the pause", 15*time.Second, func() (bool, string) {
		a, b := message(t, st, m.ID), message(t, st, other.ID)
		return store.StatusRank(a.Status) >= store.StatusRank(store.StatusSent) && store.StatusRank(b.Status) >= store.StatusRank(store.StatusSent),
			a.Status + " " + b.Status
	})
	paused := false
	for _, e := range events(t, st) {
		paused = paused || e.Type == "sending.paused"
	}
	if !paused {
		t.Error("no sending.paused event")
	}
}

// The pace, the daily cap and the cap on first messages to new chats.
func TestPaceAndCaps(t *testing.T) {
	st := waStore(t)
	sb := sandbox(t, whatsapp.SandboxConfig{DeliveredDelay: -1, ReadDelay: -1})
	cfg := waCfg()
	cfg.SendPerMinute, cfg.DailyCap, cfg.NewContactsPerDay = 300, 4, 1 // 200ms ±25% apart
	w := &primary.WhatsApp{Cfg: cfg, Driver: sb, Store: st, Log: zerolog.Nop()}
	var ms []store.OutboxMessage
	for i := range 4 {
		ms = append(ms, enqueue(t, st, alice, fmt.Sprint(i)))
	}
	stranger := enqueue(t, st, "4915188888888@s.whatsapp.net", "hello stranger")
	// All queued before the primary starts, so its first round sees both
	// chats: alice's first message takes the one new-contact slot, and the
	// stranger's waits for that cap before the daily cap is reached.
	runWA(t, w, 1)
	waitFor(t, "three to alice sent", 10*time.Second, func() (bool, string) {
		return len(sb.Sent()) >= 3, fmt.Sprint(len(sb.Sent()))
	})
	waitFor(t, "the stranger's message waits for the new-contact cap", 5*time.Second, func() (bool, string) {
		m := message(t, st, stranger.ID)
		return m.Status == store.StatusQueued && strings.Contains(m.Waiting, "WHATSAPP_NEW_CONTACTS_PER_DAY"), m.Waiting
	})
	waitFor(t, "the fourth to alice sent", 10*time.Second, statusIs(t, st, ms[3].ID, store.StatusSent))
	var prev time.Time
	for i, m := range ms {
		at := message(t, st, m.ID).SentAt
		if i > 0 && at.Sub(prev) < 140*time.Millisecond {
			t.Errorf("messages %d and %d sent %s apart; the pace is 200ms ±25%%", i-1, i, at.Sub(prev))
		}
		prev = at
	}
	// Alice got 4 of the daily 4: a fifth waits for the daily cap.
	fifth := enqueue(t, st, alice, "4")
	waitFor(t, "the fifth waits for the daily cap", 5*time.Second, func() (bool, string) {
		m := message(t, st, fifth.ID)
		return m.Status == store.StatusQueued && strings.Contains(m.Waiting, "WHATSAPP_DAILY_CAP"), m.Waiting
	})
	if n := len(sb.Sent()); n != 4 {
		t.Errorf("%d sent, want the 4 the daily cap allows", n)
	}
}

// A receipt can overtake the send's return (the sandbox answers at once
// here): the log still tells sent, delivered, read, each once, in order.
func TestReceiptsFasterThanTheSend(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		st := waStoreOn(t, db)
		sb := sandbox(t, whatsapp.SandboxConfig{DeliveredDelay: time.Nanosecond, ReadDelay: 2 * time.Nanosecond})
		w := &primary.WhatsApp{Cfg: waCfg(), Driver: sb, Store: st, Log: zerolog.Nop()}
		runWA(t, w, 1)
		var ids []string
		for i := range 20 {
			ids = append(ids, enqueue(t, st, alice, fmt.Sprint("quick ", i)).ID)
		}
		for _, id := range ids {
			waitFor(t, "read", 10*time.Second, statusIs(t, st, id, store.StatusRead))
		}
		// On MongoDB a status is stored before its events are appended:
		// wait for the log to tell "read" of each, then check the story.
		var stories map[string][]string
		waitFor(t, "every read announced", 10*time.Second, func() (bool, string) {
			stories = statusStories(t, st)
			for _, id := range ids {
				if s := stories[id]; len(s) == 0 || s[len(s)-1] != store.StatusRead {
					return false, fmt.Sprint(id, ": ", s)
				}
			}
			return true, ""
		})
		for _, id := range ids {
			if got := strings.Join(stories[id], " "); got != "sent delivered read" {
				t.Errorf("%s: events %q, want \"sent delivered read\"", id, got)
			}
		}
	})
}

// A primary stopped after it stored a change (a message sent, a message
// received) and before it appended the event announcing it: the next
// primary appends the event, once, at the position the change was stored
// with, and the log stays gapless; a redelivery announces nothing again.
func TestPrimaryKilledBetweenChangeAndEvent(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		for _, typ := range []string{"message.status", "message.incoming"} {
			t.Run(typ, func(t *testing.T) {
				st := waStoreOn(t, db)
				sb := sandbox(t, whatsapp.SandboxConfig{DeliveredDelay: -1, ReadDelay: -1})
				killed := primaryKilledAtMark(t, st, sb, func() bool { return true })

				// The subject: a message we send (announced "sent"), or one we get.
				var id string
				about := func(e store.Event) bool {
					var d struct{ ID, Key, Status string }
					_ = e.DecodeData(&d)
					return e.Type == typ && (d.ID == id || d.Key == id) && (typ != "message.status" || d.Status == store.StatusSent)
				}
				if typ == "message.status" {
					id = enqueue(t, st, alice, "hello").ID
				} else {
					in := sb.Inject(whatsapp.Incoming{Chat: alice, PushName: "Alice", Text: "hi"})
					id = alice + "/" + alice + "/" + in.ID
				}
				seq := killed()
				for _, e := range events(t, st) {
					if about(e) {
						t.Fatalf("event %d announces the change although the primary stopped before appending it", e.Seq)
					}
				}
				if typ == "message.status" {
					if m := message(t, st, id); m.Status != store.StatusSent {
						t.Fatalf("after the crash the message is %s, want sent (stored before the event)", m.Status)
					}
				}

				nextPrimary(t, st, sb)
				// A later message of each kind: once it is announced, the
				// redelivery of the first (never acknowledged) was handled too.
				var next string
				if typ == "message.status" {
					next = enqueue(t, st, alice, "later").ID
				} else {
					in := sb.Inject(whatsapp.Incoming{Chat: alice, Text: "later"})
					next = alice + "/" + alice + "/" + in.ID
				}
				waitFor(t, "the later message is announced", 10*time.Second, func() (bool, string) {
					for _, e := range events(t, st) {
						var d struct{ ID, Key string }
						_ = e.DecodeData(&d)
						if e.Type == typ && (d.ID == next || d.Key == next) {
							return true, ""
						}
					}
					return false, "not yet"
				})
				gapless(t, st)
				var found []int64
				for _, e := range events(t, st) {
					if about(e) {
						found = append(found, e.Seq)
					}
				}
				if len(found) != 1 || found[0] != seq {
					t.Errorf("events announcing the change: at %v, want exactly one, at %d where it was stored", found, seq)
				}
			})
		}
	})
}

// A chat is named by its own name (a group's subject, the contact's), not
// by whoever wrote last; push names belong to their senders, kept per
// sender and on each message.
func TestChatNamesAndPushNames(t *testing.T) {
	st := waStore(t)
	sb := sandbox(t, whatsapp.SandboxConfig{DeliveredDelay: -1, ReadDelay: -1})
	w := &primary.WhatsApp{Cfg: waCfg(), Driver: sb, Store: st, Log: zerolog.Nop()}
	runWA(t, w, 1)
	const (
		family = "120363000000000000@g.us"
		bob    = "4915112345678@s.whatsapp.net"
		carol  = "4915187654321@s.whatsapp.net"
	)
	sb.Inject(whatsapp.Incoming{Chat: family, Sender: bob, PushName: "Bob", Text: "hi all"})
	sb.Inject(whatsapp.Incoming{Chat: family, Sender: carol, PushName: "Carol", ChatName: "Family", Text: "hi Bob"})
	sb.Inject(whatsapp.Incoming{Chat: family, Sender: bob, PushName: "Bob", Text: "hi Carol"})
	sb.Inject(whatsapp.Incoming{Chat: alice, Sender: whatsapp.SandboxJID, FromMe: true, PushName: "Me", Text: "from my phone"})
	sb.Inject(whatsapp.Incoming{Chat: alice, PushName: "Alice", Text: "hello"})
	sb.Inject(whatsapp.Incoming{Chat: alice, Sender: whatsapp.SandboxJID, FromMe: true, PushName: "Me", Text: "again"})
	var inGroup, withAlice []store.IncomingMessage
	waitFor(t, "all six stored", 10*time.Second, func() (bool, string) {
		inGroup, _ = st.IncomingMessages(context.Background(), family, 10)
		withAlice, _ = st.IncomingMessages(context.Background(), alice, 10)
		return len(inGroup) == 3 && len(withAlice) == 3, fmt.Sprint(len(inGroup), " and ", len(withAlice))
	})
	if c, err := st.Chat(context.Background(), family); err != nil || c.Name != "Family" || c.PushName != "" {
		t.Errorf("group chat: %+v, %v; want named Family (its subject), not after a member", c, err)
	}
	if c, err := st.Chat(context.Background(), alice); err != nil || c.PushName != "Alice" || c.Name != "" {
		t.Errorf("Alice's chat: %+v, %v; want Alice's own push name, not ours", c, err)
	}
	for jid, want := range map[string]string{bob: "Bob", carol: "Carol", alice: "Alice"} {
		if c, err := st.Contact(context.Background(), jid); err != nil || c.PushName != want {
			t.Errorf("contact %s: %+v, %v; want push name %s", jid, c, err, want)
		}
	}
	if c, err := st.Contact(context.Background(), whatsapp.SandboxJID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("our own push name was kept as a contact's: %+v, %v", c, err)
	}
	var names []string
	for _, m := range inGroup {
		names = append(names, m.PushName)
	}
	if got := strings.Join(names, " "); got != "Bob Carol Bob" {
		t.Errorf("push names on the group's messages: %s, want Bob Carol Bob", got)
	}
}
