package httpapi

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"app/internal/config"
	"app/internal/msg"
	"app/internal/store"
	"app/internal/testdb"
	"app/internal/testutil"
	"app/internal/whatsapp"
)

type actionEnv struct {
	url             string
	db              store.Store
	sb              *whatsapp.Sandbox
	writer, session map[string]string
}

// actionServer is a worker's API and a primary holding the lease (epoch 1)
// with the sandbox, or with what wrap makes of it, on one embedded
// database. The primary polls once an hour: it runs commands because the
// store's change watch wakes it.
func actionServer(t *testing.T, wc config.WhatsApp, wrap func(*whatsapp.Sandbox) whatsapp.Driver, actionWait time.Duration) actionEnv {
	t.Helper()
	db, st := testStore(t)
	now := time.Now()
	if ok, err := st.ClaimLease(context.Background(), store.Lease{Epoch: 1, Holder: "test", Host: "test", PID: 1, AcquiredAt: now, ExpiresAt: now.Add(time.Hour)}); !ok || err != nil {
		t.Fatalf("claim the lease: %v %v", ok, err)
	}
	sb, err := whatsapp.NewSandbox(whatsapp.SandboxConfig{Paired: whatsapp.SandboxJID, ConnectDelay: 20 * time.Millisecond, ReadDelay: -1})
	if err != nil {
		t.Fatal(err)
	}
	var driver whatsapp.Driver = sb
	if wrap != nil {
		driver = wrap(sb)
	}
	runPrimary(t, st, driver, wc, time.Hour)
	api := db.Connect(nil)
	env := actionEnv{db: st, sb: sb}
	env.url = serve(t, &Server{Backend: api, Sessions: api, Chats: api, Keys: api, Media: api, Sandbox: true, Log: zerolog.Nop(), Worker: "1",
		MaxBodyBytes: 1 << 20, actionWait: actionWait}, nil)
	env.writer, env.session = apiKey(t, st, store.ScopeMessagesWrite), apiKey(t, st, store.ScopeSession)
	testutil.Eventually(t, 10*time.Second, "the session connected", func() (bool, string) {
		ws, err := st.Session(context.Background())
		return err == nil && ws.State == "connected", fmt.Sprint(ws.State, err)
	})
	return env
}

// received injects m and waits until the primary stored it.
func (e actionEnv) received(t *testing.T, m whatsapp.Incoming) whatsapp.Incoming {
	t.Helper()
	m = e.sb.Inject(m)
	testutil.Eventually(t, 10*time.Second, "the message stored", func() (bool, string) {
		_, err := e.db.IncomingByWAID(context.Background(), m.Chat, m.ID)
		return err == nil, fmt.Sprint(err)
	})
	return m
}

// reads are the read receipts the sandbox sent, from the n-th action on.
func (e actionEnv) reads(from int) []whatsapp.ReadMark {
	var out []whatsapp.ReadMark
	for _, a := range e.sb.Actions()[from:] {
		if a.Kind == "read" {
			out = append(out, *a.Read)
		}
	}
	return out
}

const (
	alice = "491701234567@s.whatsapp.net"
	bob   = "4915112345678@s.whatsapp.net"
	carol = "4915187654321@s.whatsapp.net"
	team  = "120363025246125486@g.us"
)

// Marking read sends receipts to whoever wrote: the messages named, or
// all the chat's unread ones, in a group one receipt per member who
// wrote; voice notes are marked played when asked; a whole chat's read
// mark moves, so the next read marks only what came since.
func TestMarkChatRead(t *testing.T) {
	e := actionServer(t, config.WhatsApp{}, nil, 0)
	a1 := e.received(t, whatsapp.Incoming{Chat: alice, Text: "one"})
	a2 := e.received(t, whatsapp.Incoming{Chat: alice, Text: "two"})
	voice := e.received(t, whatsapp.Incoming{Chat: alice, Body: msg.Body{Kind: msg.KindVoice},
		Media: &whatsapp.Media{MimeType: "audio/ogg; codecs=opus", Size: 4, Handle: []byte("opus")}})
	b1 := e.received(t, whatsapp.Incoming{Chat: team, Sender: bob, Text: "news"})
	c1 := e.received(t, whatsapp.Incoming{Chat: team, Sender: carol, Text: "more"})
	b2 := e.received(t, whatsapp.Incoming{Chat: team, Sender: bob, Text: "and"})

	// By id: that message only.
	r := do(t, "POST", e.url+"/v1/chats/%2B491701234567/read", strings.NewReader(`{"ids":["`+a1.ID+`","`+a1.ID+`"]}`), e.writer)
	if r.status != 200 || r.body["ok"] != true || r.body["marked"] != float64(1) {
		t.Fatalf("read by id: %d %v", r.status, r.body)
	}
	if got := e.reads(0); len(got) != 1 || got[0].Chat != alice || got[0].Sender != alice || strings.Join(got[0].IDs, ",") != a1.ID || got[0].Played {
		t.Errorf("receipts %+v, want one read of %s to Alice", got, a1.ID)
	}

	// The whole group: one receipt to Bob for his two, one to Carol.
	n := len(e.sb.Actions())
	r = do(t, "POST", e.url+"/v1/chats/"+team+"/read", nil, e.writer)
	if r.status != 200 || r.body["marked"] != float64(3) {
		t.Fatalf("read the group: %d %v", r.status, r.body)
	}
	got := e.reads(n)
	if len(got) != 2 || got[0].Sender != bob || strings.Join(got[0].IDs, ",") != b1.ID+","+b2.ID ||
		got[1].Sender != carol || strings.Join(got[1].IDs, ",") != c1.ID || got[0].Chat != team || got[1].Chat != team {
		t.Errorf("receipts %+v, want Bob's two messages to Bob, Carol's to Carol", got)
	}

	// Since the mark, only what came after it (and the newest read
	// before, at the mark itself: WhatsApp's times are to the second).
	b3 := e.received(t, whatsapp.Incoming{Chat: team, Sender: bob, Text: "later"})
	n = len(e.sb.Actions())
	r = do(t, "POST", e.url+"/v1/chats/"+team+"/read", strings.NewReader(`{}`), e.writer)
	got = e.reads(n)
	if r.status != 200 || len(got) != 1 || got[0].Sender != bob || strings.Join(got[0].IDs, ",") != b2.ID+","+b3.ID {
		t.Errorf("read again: %d %v, receipts %+v, want Bob's newest two only", r.status, r.body, got)
	}

	// Alice's chat as a whole, voice notes played: the texts read, the
	// voice note played, each once.
	n = len(e.sb.Actions())
	r = do(t, "POST", e.url+"/v1/chats/"+alice+"/read", strings.NewReader(`{"played":true}`), e.writer)
	got = e.reads(n)
	if r.status != 200 || r.body["marked"] != float64(3) || len(got) != 2 ||
		strings.Join(got[0].IDs, ",") != a1.ID+","+a2.ID || got[0].Played || strings.Join(got[1].IDs, ",") != voice.ID || !got[1].Played {
		t.Errorf("read Alice's chat with played: %d %v, receipts %+v, want the texts read and the voice note played", r.status, r.body, got)
	}

	// A chat never written in has nothing to mark.
	if r := do(t, "POST", e.url+"/v1/chats/%2B4930123456789/read", nil, e.writer); r.status != 200 || r.body["marked"] != float64(0) {
		t.Errorf("read an empty chat: %d %v", r.status, r.body)
	}
	// An id the chat has no message of, or one of ours, is a 404 naming ids;
	// nothing is sent.
	n = len(e.sb.Actions())
	for _, ids := range []string{`["3ANOSUCHMESSAGE"]`, `["` + a1.ID + `","3ANOSUCHMESSAGE"]`, `["` + b1.ID + `"]`} {
		r := do(t, "POST", e.url+"/v1/chats/"+alice+"/read", strings.NewReader(`{"ids":`+ids+`}`), e.writer)
		if r.status != 404 || errorOf(t, r)["field"] != "ids" {
			t.Errorf("read %s in Alice's chat: %d %v, want 404 naming ids", ids, r.status, r.body)
		}
	}
	if len(e.sb.Actions()) != n {
		t.Errorf("a refused read sent receipts: %+v", e.sb.Actions()[n:])
	}
}

// Typing, recording and paused reach WhatsApp in the order asked, and so
// does being online or not.
func TestChatPresenceAndPresence(t *testing.T) {
	e := actionServer(t, config.WhatsApp{}, nil, 0)
	for _, state := range []string{"composing", "paused", "recording", "paused"} {
		if r := do(t, "POST", e.url+"/v1/chats/%2B491701234567/presence", strings.NewReader(`{"state":"`+state+`"}`), e.writer); r.status != 200 || r.body["ok"] != true {
			t.Fatalf("presence %s: %d %v", state, r.status, r.body)
		}
	}
	for _, state := range []string{"available", "unavailable"} {
		if r := do(t, "POST", e.url+"/v1/presence", strings.NewReader(`{"state":"`+state+`"}`), e.writer); r.status != 200 || r.body["ok"] != true {
			t.Fatalf("presence %s: %d %v", state, r.status, r.body)
		}
	}
	var got []string
	for _, a := range e.sb.Actions() {
		switch a.Kind {
		case "chat_presence":
			got = append(got, a.Chat+" "+string(a.ChatPresence))
		case "presence":
			got = append(got, fmt.Sprint("online ", a.Online))
		}
	}
	want := []string{alice + " composing", alice + " paused", alice + " recording", alice + " paused", "online true", "online false"}
	if strings.Join(got, "; ") != strings.Join(want, "; ") {
		t.Errorf("actions %q, want %q", got, want)
	}
}

func TestBadChatActionRequests(t *testing.T) {
	e := actionServer(t, config.WhatsApp{}, nil, 0)
	many := `"3A0"` + strings.Repeat(`,"3A0"`, maxReadIDs)
	for _, c := range []struct{ path, body, field string }{
		{"/v1/chats/%2B491701234567/presence", `{"state":"typing"}`, "state"},
		{"/v1/chats/%2B491701234567/presence", `{}`, "state"},
		{"/v1/chats/%2B491701234567/presence", `{"state":"paused","for":5}`, "for"},
		{"/v1/chats/bob@example.com/presence", `{"state":"paused"}`, "jid"},
		{"/v1/chats/491701234567/read", `{}`, "jid"},
		{"/v1/presence", `{"state":"online"}`, "state"},
		{"/v1/presence", `{"state":true}`, "state"},
		{"/v1/chats/%2B491701234567/read", `{"ids":[1]}`, "ids"},
		{"/v1/chats/%2B491701234567/read", `{"ids":"3A0"}`, "ids"},
		{"/v1/chats/%2B491701234567/read", `{"ids":[""]}`, "ids"},
		{"/v1/chats/%2B491701234567/read", `{"ids":["3A0,3A1"]}`, "ids"},
		{"/v1/chats/%2B491701234567/read", `{"ids":[` + many + `]}`, "ids"},
		{"/v1/chats/%2B491701234567/read", `{"played":"yes"}`, "played"},
	} {
		r := do(t, "POST", e.url+c.path, strings.NewReader(c.body), e.writer)
		if r.status != 400 || errorOf(t, r)["field"] != c.field {
			t.Errorf("POST %s %.60s: %d %v, want 400 naming %s", c.path, c.body, r.status, r.body, c.field)
		}
	}
	if len(e.sb.Actions()) != 0 {
		t.Errorf("bad requests reached WhatsApp: %+v", e.sb.Actions())
	}
	for _, body := range []string{`{"seconds":"long"}`, `{"seconds":86401}`, `{"reason":"quiet"}`} {
		r := do(t, "POST", e.url+"/v1/sandbox/silence", strings.NewReader(body), e.session)
		if want := strings.Trim(strings.SplitN(body, ":", 2)[0], `{"`); r.status != 400 || errorOf(t, r)["field"] != want {
			t.Errorf("POST /v1/sandbox/silence %s: %d %v, want 400 naming %s", body, r.status, r.body, want)
		}
	}
	// The key must be allowed to write messages.
	if r := do(t, "POST", e.url+"/v1/presence", strings.NewReader(`{"state":"available"}`), e.session); r.status != 403 {
		t.Errorf("presence with a session key: %d %v, want 403", r.status, r.body)
	}
}

// offlineReads is the sandbox with a driver that finds itself offline
// when it is to send read receipts, although the session said connected.
type offlineReads struct{ *whatsapp.Sandbox }

func (offlineReads) MarkRead(context.Context, whatsapp.ReadMark) error {
	return whatsapp.ErrNotConnected
}

// Without a primary connected to WhatsApp an action is a 503 with
// Retry-After, and nothing is left to run later: no primary at all (no
// lease, or an expired one), a primary that has not reported yet, a
// session that is not connected, and a driver that says it is offline.
func TestChatActionsNeedAConnectedPrimary(t *testing.T) {
	e := actionServer(t, config.WhatsApp{}, func(sb *whatsapp.Sandbox) whatsapp.Driver { return offlineReads{sb} }, 0)
	m := e.received(t, whatsapp.Incoming{Chat: alice, Text: "hi"})
	r := do(t, "POST", e.url+"/v1/chats/"+alice+"/read", strings.NewReader(`{"ids":["`+m.ID+`"]}`), e.writer)
	if r.status != 503 || errorOf(t, r)["code"] != "not_connected" || r.header.Get("Retry-After") == "" {
		t.Errorf("read with the driver offline: %d %v Retry-After %q, want 503 not_connected", r.status, r.body, r.header.Get("Retry-After"))
	}

	e.sb.Disconnect("test", time.Hour) // the driver is wrapped: not steered through /v1/sandbox
	testutil.Eventually(t, 10*time.Second, "the session disconnected", func() (bool, string) {
		ws, _ := e.db.Session(context.Background())
		return ws.State == "disconnected", ws.State
	})
	before, err := e.db.PendingCommands(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	r = do(t, "POST", e.url+"/v1/presence", strings.NewReader(`{"state":"available"}`), e.writer)
	if r.status != 503 || errorOf(t, r)["code"] != "not_connected" || r.header.Get("Retry-After") != "5" ||
		!strings.Contains(errorOf(t, r)["message"].(string), "disconnected (test)") {
		t.Errorf("presence while disconnected: %d %v Retry-After %q, want 503 not_connected saying why", r.status, r.body, r.header.Get("Retry-After"))
	}
	if after, _ := e.db.PendingCommands(context.Background()); len(after) != len(before) {
		t.Errorf("a refused action left a command: %+v", after)
	}

	// Another database: no lease, an expired one, a live one whose primary
	// has not written the session.
	db := testdb.Start(t).Connect(nil)
	url := serve(t, &Server{Backend: db, Sessions: db, Chats: db, Keys: db, Log: zerolog.Nop(), Worker: "1", MaxBodyBytes: 1 << 16}, nil)
	h := apiKey(t, db, store.ScopeMessagesWrite)
	ask := func(what, code string) {
		t.Helper()
		r := do(t, "POST", url+"/v1/chats/%2B491701234567/presence", strings.NewReader(`{"state":"composing"}`), h)
		if r.status != 503 || errorOf(t, r)["code"] != code || r.header.Get("Retry-After") == "" {
			t.Errorf("%s: %d %v Retry-After %q, want 503 %s", what, r.status, r.body, r.header.Get("Retry-After"), code)
		}
	}
	ask("no primary ever", "no_primary")
	now := time.Now()
	if _, err := db.ClaimLease(context.Background(), store.Lease{Epoch: 1, Holder: "gone", AcquiredAt: now.Add(-time.Hour), ExpiresAt: now.Add(-time.Minute)}); err != nil {
		t.Fatal(err)
	}
	if err := db.SaveSession(context.Background(), store.WASession{State: "connected", Epoch: 1, Driver: "sandbox"}); err != nil {
		t.Fatal(err)
	}
	ask("the lease expired (the session still says connected)", "no_primary")
	if _, err := db.ClaimLease(context.Background(), store.Lease{Epoch: 2, Holder: "new", AcquiredAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	ask("a new primary that has not reported", "not_connected")
}

// stuck is the sandbox with a WhatsApp that does not answer: typing waits
// until the deadline, presence hangs whatever the deadline says until the
// test lets it go. Every chat action that reached it is counted.
type stuck struct {
	*whatsapp.Sandbox
	release chan struct{}
	calls   atomic.Int32
}

func (d *stuck) SendChatPresence(ctx context.Context, _ string, _ whatsapp.ChatPresence) error {
	d.calls.Add(1)
	<-ctx.Done()
	return ctx.Err()
}

func (d *stuck) SendPresence(ctx context.Context, _ bool) error {
	d.calls.Add(1)
	<-d.release
	return ctx.Err()
}

// A primary that does not get it done by the deadline answers 504, and
// what waited behind it meanwhile is dropped, not done late; so is an
// action no primary ran at all while the lease said one was there.
func TestChatActionDeadline(t *testing.T) {
	d := &stuck{release: make(chan struct{})}
	e := actionServer(t, config.WhatsApp{}, func(sb *whatsapp.Sandbox) whatsapp.Driver { d.Sandbox = sb; return d }, 300*time.Millisecond)
	var once sync.Once
	let := func() { once.Do(func() { close(d.release) }) }
	t.Cleanup(let) // before the primary stops, should the test end early
	start := time.Now()
	r := do(t, "POST", e.url+"/v1/chats/%2B491701234567/presence", strings.NewReader(`{"state":"composing"}`), e.writer)
	if r.status != 504 || errorOf(t, r)["code"] != "primary_timeout" {
		t.Fatalf("typing with WhatsApp silent: %d %v, want 504", r.status, r.body)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("the 504 took %s, past its deadline of 300ms", took)
	}

	hung := make(chan reply, 1)
	go func() {
		hung <- do(t, "POST", e.url+"/v1/presence", strings.NewReader(`{"state":"available"}`), e.writer)
	}()
	testutil.Eventually(t, 10*time.Second, "presence hanging in the driver", func() (bool, string) {
		select {
		case r := <-hung:
			t.Fatalf("presence answered %d %v, want it to hang", r.status, r.body)
		default:
		}
		return d.calls.Load() == 2, fmt.Sprint(d.calls.Load(), " calls")
	})
	r = do(t, "POST", e.url+"/v1/chats/%2B491701234567/presence", strings.NewReader(`{"state":"paused"}`), e.writer)
	if r.status != 504 {
		t.Errorf("paused behind a hanging action: %d %v, want 504", r.status, r.body)
	}
	let()
	if r := <-hung; r.status != 504 {
		t.Errorf("the hanging presence: %d %v, want 504", r.status, r.body)
	}
	testutil.Eventually(t, 10*time.Second, "every command decided", func() (bool, string) {
		cs, err := e.db.PendingCommands(context.Background())
		return err == nil && len(cs) == 0, fmt.Sprint(len(cs), err)
	})
	if n := d.calls.Load(); n != 2 {
		t.Errorf("%d chat actions reached WhatsApp, want 2: paused ran after its deadline", n)
	}

	// The lease held, the session connected, and no primary runs: 504, and
	// the command carries its deadline, so a primary that comes later
	// drops it.
	db := testdb.Start(t).Connect(nil)
	now := time.Now()
	if _, err := db.ClaimLease(context.Background(), store.Lease{Epoch: 1, Holder: "stuck", AcquiredAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if err := db.SaveSession(context.Background(), store.WASession{State: "connected", Epoch: 1, Driver: "sandbox"}); err != nil {
		t.Fatal(err)
	}
	url := serve(t, &Server{Backend: db, Sessions: db, Chats: db, Keys: db, Log: zerolog.Nop(), Worker: "1", MaxBodyBytes: 1 << 16, actionWait: 200 * time.Millisecond}, nil)
	r = do(t, "POST", url+"/v1/presence", strings.NewReader(`{"state":"available"}`), apiKey(t, db, store.ScopeMessagesWrite))
	if r.status != 504 || errorOf(t, r)["code"] != "primary_timeout" {
		t.Errorf("no primary running under a live lease: %d %v, want 504", r.status, r.body)
	}
	cs, err := db.PendingCommands(context.Background())
	if err != nil || len(cs) != 1 || cs[0].Deadline.IsZero() || !cs[0].Deadline.Before(time.Now()) {
		t.Fatalf("the command left: %+v %v, want one with its deadline passed", cs, err)
	}
	sb, err := whatsapp.NewSandbox(whatsapp.SandboxConfig{Paired: whatsapp.SandboxJID, ConnectDelay: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	runPrimary(t, db, sb, config.WhatsApp{}, 20*time.Millisecond)
	testutil.Eventually(t, 10*time.Second, "the late command decided", func() (bool, string) {
		c, err := db.Command(context.Background(), cs[0].ID)
		return err == nil && c.Outcome != "", fmt.Sprint(c.Outcome, err)
	})
	if c, _ := db.Command(context.Background(), cs[0].ID); c.Outcome != "expired" || len(sb.Actions()) != 0 {
		t.Errorf("a command past its deadline: outcome %q, actions %+v; want expired and not done", c.Outcome, sb.Actions())
	}
}

// A session that says connected while WhatsApp is silent is found by the
// watchdog: no answer to its ping, it reconnects, the session goes
// disconnected with the reason and comes back, the event log (and so the
// webhooks) says so, and the session counts the reconnect. A quiet
// session that answers its pings is left alone.
func TestWatchdogReconnectsASilentSession(t *testing.T) {
	e := actionServer(t, config.WhatsApp{WatchdogInterval: 300 * time.Millisecond}, nil, 0)
	testutil.Eventually(t, 10*time.Second, "two pings of a quiet session", func() (bool, string) {
		return e.sb.Pings() >= 2, fmt.Sprint(e.sb.Pings(), " pings")
	})
	stateEvents := func() []map[string]string {
		evs, err := e.db.Events(context.Background(), 0, 1000)
		if err != nil {
			t.Fatal(err)
		}
		var out []map[string]string
		for _, ev := range evs {
			if ev.Type == "session.state" {
				var d map[string]string
				_ = ev.DecodeData(&d)
				out = append(out, d)
			}
		}
		return out
	}
	for _, s := range stateEvents() {
		if s["state"] == "disconnected" {
			t.Fatalf("a quiet session that answers was reconnected: %v", stateEvents())
		}
	}

	if r := do(t, "POST", e.url+"/v1/sandbox/silence", strings.NewReader(`{"seconds":3600}`), e.session); r.status != 200 {
		t.Fatalf("silence: %d %v", r.status, r.body)
	}
	var reason string
	testutil.Eventually(t, 10*time.Second, "the session.state event of the reconnect", func() (bool, string) {
		for _, s := range stateEvents() {
			if s["state"] == "disconnected" {
				reason = s["reason"]
				return true, ""
			}
		}
		return false, fmt.Sprint(stateEvents())
	})
	if !strings.HasPrefix(reason, "no answer from WhatsApp for ") {
		t.Errorf("reason %q, want it to say WhatsApp did not answer", reason)
	}
	testutil.Eventually(t, 10*time.Second, "connected again", func() (bool, string) {
		r := do(t, "GET", e.url+"/v1/session", nil, e.session)
		return r.body["state"] == "connected" && r.body["reconnects"] == float64(1), fmt.Sprint(r.body)
	})
	evs := stateEvents()
	if last := evs[len(evs)-1]; last["state"] != "connected" || evs[len(evs)-2]["state"] != "connecting" || evs[len(evs)-3]["reason"] != reason {
		t.Errorf("session.state events %v, want disconnected (%s), connecting, connected", evs, reason)
	}
	// Actions work again at once.
	if r := do(t, "POST", e.url+"/v1/presence", strings.NewReader(`{"state":"available"}`), e.writer); r.status != 200 {
		t.Errorf("presence after the reconnect: %d %v", r.status, r.body)
	}
}
