package httpapi

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/julienschmidt/httprouter"
	"github.com/rs/zerolog"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"app/internal/config"
	"app/internal/realtime"
	"app/internal/store"
	"app/internal/testdb"
	"app/internal/testutil"
	"app/internal/webhook"
	"app/internal/whatsapp"
)

// lossyLink is a Unix socket between the driver and the test database
// that can lose the answer to one insert: the database applies the insert
// and the connection breaks before its answer reaches the driver, as when
// the network fails or the worker is paused past its deadline. All else
// passes through.
type lossyLink struct {
	path string

	mu      sync.Mutex
	target  []byte // the insert command (its first element) whose answer to lose
	onLoss  func() // runs once that answer is held back, before the break
	lost    chan struct{}
	streams []net.Conn
}

func newLossyLink(t *testing.T, dbSocket string) *lossyLink {
	t.Helper()
	dir, err := os.MkdirTemp("", "lossy") // a socket path must be short
	if err != nil {
		t.Fatal(err)
	}
	l := &lossyLink{path: filepath.Join(dir, "db.sock")}
	ln, err := net.Listen("unix", l.path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = ln.Close()
		l.mu.Lock()
		for _, c := range l.streams {
			_ = c.Close()
		}
		l.mu.Unlock()
		_ = os.RemoveAll(dir)
	})
	go func() {
		for {
			client, err := ln.Accept()
			if err != nil {
				return
			}
			db, err := net.Dial("unix", dbSocket)
			if err != nil {
				_ = client.Close()
				continue
			}
			l.mu.Lock()
			l.streams = append(l.streams, client, db)
			l.mu.Unlock()
			go l.relay(client, db)
		}
	}()
	return l
}

// loseNextInsertInto arms the link: the answer to the next insert into coll
// is lost, after onLoss ran (the insert is applied by then). It returns a
// channel closed once that happened.
func (l *lossyLink) loseNextInsertInto(coll string, onLoss func()) <-chan struct{} {
	l.mu.Lock()
	defer l.mu.Unlock()
	// The command document's first element: insert: "<coll>".
	l.target = append([]byte("\x02insert\x00"), binary.LittleEndian.AppendUint32(nil, uint32(len(coll)+1))...)
	l.target = append(append(l.target, coll...), 0)
	l.onLoss, l.lost = onLoss, make(chan struct{})
	return l.lost
}

// frame reads one wire protocol message: its length, then the rest.
func frame(r io.Reader) ([]byte, error) {
	var head [4]byte
	if _, err := io.ReadFull(r, head[:]); err != nil {
		return nil, err
	}
	n := binary.LittleEndian.Uint32(head[:])
	if n < 16 || n > 64<<20 {
		return nil, errors.New("not a wire protocol message")
	}
	b := make([]byte, n)
	copy(b, head[:])
	_, err := io.ReadFull(r, b[4:])
	return b, err
}

func (l *lossyLink) relay(client, db net.Conn) {
	var mu sync.Mutex
	doomed := map[uint32]bool{} // request ids whose answers are lost
	go func() {
		defer db.Close()
		for {
			m, err := frame(client)
			if err != nil {
				return
			}
			l.mu.Lock()
			if l.target != nil && bytes.Contains(m, l.target) {
				l.target = nil
				mu.Lock()
				doomed[binary.LittleEndian.Uint32(m[4:8])] = true
				mu.Unlock()
			}
			l.mu.Unlock()
			if _, err := db.Write(m); err != nil {
				return
			}
		}
	}()
	defer client.Close()
	for {
		m, err := frame(db)
		if err != nil {
			return
		}
		mu.Lock()
		lose := doomed[binary.LittleEndian.Uint32(m[8:12])]
		mu.Unlock()
		if lose {
			_ = db.Close()
			l.mu.Lock()
			onLoss, lost := l.onLoss, l.lost
			l.mu.Unlock()
			if onLoss != nil {
				onLoss()
			}
			close(lost)
			return // the driver's connection breaks with the answer unsent
		}
		if _, err := client.Write(m); err != nil {
			return
		}
	}
}

type lossyEnv struct {
	url     string
	db      *testdb.DB
	link    *lossyLink
	st      store.Store // the primary's, straight to the database
	srv     *Server
	writer  map[string]string
	admin   map[string]string
	session map[string]string
}

// lossyServer is a worker whose database connection runs through a
// lossyLink, and a primary with the sandbox driver on its own connection.
func lossyServer(t *testing.T, settle time.Duration) lossyEnv {
	t.Helper()
	db := testdb.StartMongo(t)
	st := db.Connect(nil)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := st.EnsureIndexes(ctx, zerolog.Nop()); err != nil {
		t.Fatal(err)
	}
	sandboxPrimary(t, st, whatsapp.SandboxConfig{Paired: whatsapp.SandboxJID, DeliveredDelay: -1, ReadDelay: -1}, config.WhatsApp{ReconcileWait: time.Second})

	link := newLossyLink(t, db.Socket)
	api := db.Connect(map[string]string{"MONGO_URI": config.SocketURI(link.path)})
	hub := &realtime.Hub{Src: api, Log: zerolog.Nop()}
	loop := []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
	srv := &Server{Backend: api, Messages: api, Media: api, Schedules: api, Webhooks: api, WebhookGuard: webhook.NewGuard(loop),
		Sessions: api, Sandbox: true, Realtime: &Realtime{Hub: hub, Src: api, Tokens: api}, Keys: api,
		Log: zerolog.Nop(), Worker: "1", MaxBodyBytes: 1 << 20, settleTimeout: settle}
	e := lossyEnv{url: serve(t, srv, nil), db: db, link: link, st: st, srv: srv}
	mk := func(scopes ...string) map[string]string {
		key, k := store.NewAPIKey("test", scopes)
		if err := st.CreateAPIKey(context.Background(), k); err != nil {
			t.Fatal(err)
		}
		return map[string]string{"Authorization": "Bearer " + key, "Content-Type": "application/json"}
	}
	e.writer, e.admin, e.session = mk(store.ScopeMessagesWrite, store.ScopeMessagesRead), mk(store.ScopeAdmin), mk(store.ScopeSession)
	// The keys are cached by the first requests, so the lost answers are
	// those of the routes' own inserts.
	for _, h := range []map[string]string{e.writer, e.admin, e.session} {
		if r := do(t, "GET", e.url+"/v1/messages/none", nil, h); r.status != 404 && r.status != 403 {
			t.Fatalf("warm-up: %d %v", r.status, r.body)
		}
	}
	return e
}

// A create whose insert reached the database and whose answer was lost is
// settled by the worker: it answers success, never "try again", and the
// record is stored once. Before, it answered 503 with Retry-After, and a
// client that obeyed stored it twice.
func TestCreateWithLostAnswerIsSettled(t *testing.T) {
	e := lossyServer(t, 0)
	ctx := context.Background()
	soon := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	png := append([]byte("\x89PNG\r\n\x1a\n"), bytes.Repeat([]byte{7}, 100)...)
	for _, c := range []struct {
		route, coll string
		header      map[string]string
		body        []byte
		status      int
		stored      func(r reply) int // how many records the request left
	}{
		{"/v1/messages", "outbox", e.writer, []byte(`{"to":"+491701234567","text":"once"}`), 202, func(reply) int {
			ms, err := e.st.OutboxPage(ctx, "491701234567@s.whatsapp.net", "", 0, "", 10)
			if err != nil {
				t.Fatal(err)
			}
			return len(ms)
		}},
		{"/v1/schedules", "schedules", e.writer, []byte(`{"send_at":"` + soon + `","message":{"to":"+491701234567","text":"later"}}`), 201, func(reply) int {
			scs, err := e.st.SchedulesPage(ctx, 0, "", 10)
			if err != nil {
				t.Fatal(err)
			}
			return len(scs)
		}},
		{"/v1/webhooks", "webhooks", e.admin, []byte(`{"url":"http://127.0.0.1:9/hook"}`), 201, func(reply) int {
			whs, err := e.st.Webhooks(ctx)
			if err != nil {
				t.Fatal(err)
			}
			return len(whs)
		}},
		{"/v1/events/token", "event_tokens", e.writer, nil, 201, func(r reply) int {
			tok, _ := r.body["token"].(string)
			if _, err := e.st.EventToken(ctx, store.EventTokenHash(tok)); err != nil {
				t.Errorf("the token answered is not stored: %v", err)
				return 0
			}
			return 1
		}},
		{"/v1/media", "media.files", with(e.writer, "Content-Type", "image/png"), png, 201, func(r reply) int {
			id, _ := r.body["id"].(string)
			if _, err := e.st.MediaInfo(ctx, id); err != nil {
				t.Errorf("the media answered is not stored: %v", err)
				return 0
			}
			return 1
		}},
		{"/v1/sandbox/incoming", "wa_commands", e.session, []byte(`{"chat":"491709876543@s.whatsapp.net","text":"in"}`), 200, func(reply) int {
			var in []store.IncomingMessage
			testutil.Eventually(t, 10*time.Second, "the injected message stored", func() (bool, string) {
				var err error
				if in, err = e.st.IncomingMessages(ctx, "491709876543@s.whatsapp.net", 10); err != nil {
					t.Fatal(err)
				}
				return len(in) > 0, "none stored"
			})
			return len(in)
		}},
	} {
		t.Run(strings.TrimPrefix(c.route, "/v1/"), func(t *testing.T) {
			lost := e.link.loseNextInsertInto(c.coll, nil)
			r := do(t, "POST", e.url+c.route, bytes.NewReader(c.body), c.header)
			select {
			case <-lost:
			default:
				t.Fatalf("no answer to an insert into %s was lost: the test tested nothing", c.coll)
			}
			if r.status != c.status || r.header.Get("Retry-After") != "" {
				t.Fatalf("POST %s with the insert's answer lost: %d (Retry-After %q) %v, want %d and no Retry-After",
					c.route, r.status, r.header.Get("Retry-After"), r.body, c.status)
			}
			if n := c.stored(r); n != 1 {
				t.Errorf("POST %s stored %d records, want 1", c.route, n)
			}
		})
	}
}

// When the database goes away with the insert applied and its answer lost,
// the worker either learns the outcome once the database is back (202) or,
// past its time to settle, says the outcome is unknown with the message's
// id and without Retry-After; reading the id back then finds the message.
// The client is never told to try again a message that ends up stored.
func TestUnknownOutcomeIsNeverRetryAfter(t *testing.T) {
	ready := func(t *testing.T, e lossyEnv, want int) {
		t.Helper()
		testutil.Eventually(t, 20*time.Second, fmt.Sprintf("/readyz %d", want), func() (bool, string) {
			r := do(t, "GET", e.url+"/readyz", nil, nil)
			return r.status == want, fmt.Sprint(r.status)
		})
	}
	// send posts a message whose insert's answer is lost as the database
	// stops; back says whether the database restarts before the answer.
	send := func(t *testing.T, e lossyEnv, back bool) (reply, []store.OutboxMessage) {
		t.Helper()
		lost := e.link.loseNextInsertInto("outbox", e.db.Stop)
		answer := make(chan reply, 1)
		go func() {
			answer <- do(t, "POST", e.url+"/v1/messages", strings.NewReader(`{"to":"+491701234567","text":"hello"}`), e.writer)
		}()
		<-lost
		var r reply
		if back {
			ready(t, e, 503) // the worker has seen the database go
			e.db.Restart()
			r = <-answer
		} else {
			r = <-answer
			e.db.Restart()
		}
		ready(t, e, 200)
		ms, err := e.st.OutboxPage(context.Background(), "491701234567@s.whatsapp.net", "", 0, "", 50)
		if err != nil {
			t.Fatal(err)
		}
		return r, ms
	}

	t.Run("the database comes back in time", func(t *testing.T) {
		e := lossyServer(t, 20*time.Second)
		r, stored := send(t, e, true)
		if r.status != 202 || r.header.Get("Retry-After") != "" {
			t.Fatalf("POST across a database restart: %d (Retry-After %q) %v, want 202", r.status, r.header.Get("Retry-After"), r.body)
		}
		if len(stored) != 1 || stored[0].ID != r.body["id"] {
			t.Errorf("stored %+v, want the one message answered (%v)", stored, r.body["id"])
		}
	})

	t.Run("the database stays away", func(t *testing.T) {
		e := lossyServer(t, 1500*time.Millisecond)
		r, stored := send(t, e, false)
		got := errorOf(t, r)
		if r.status != 503 || got["code"] != "outcome_unknown" || r.header.Get("Retry-After") != "" {
			t.Fatalf("POST with the database gone after the insert: %d (Retry-After %q) %v, want 503 outcome_unknown without Retry-After",
				r.status, r.header.Get("Retry-After"), got)
		}
		id, _ := got["id"].(string)
		if !strings.HasPrefix(id, "msg_") || !strings.Contains(got["message"].(string), "/v1/messages/"+id) {
			t.Fatalf("the answer does not name the message to read back: %v", got)
		}
		if r := do(t, "GET", e.url+"/v1/messages/"+id, nil, e.writer); r.status != 200 || r.body["text"] != "hello" {
			t.Errorf("GET /v1/messages/%s after the database came back: %d %v, want the message", id, r.status, r.body)
		}
		if len(stored) != 1 {
			t.Errorf("stored %d messages, want 1", len(stored))
		}
	})
}

// Each kind of store error gets its own answer, through real HTTP: 404 for
// a record that is not there, 409 for a duplicate, 503 with Retry-After
// only while the database is away and nothing was written, and 500 with an
// error id (also in the log) for a document that does not decode. Before,
// every one of them was 503 database_unavailable.
func TestStoreErrorsAreMappedOnce(t *testing.T) {
	db := testdb.StartMongo(t)
	st := db.Connect(nil)
	var logs testutil.Buffer
	srv := &Server{Backend: st, Messages: st, Schedules: st, Keys: st, KeyCacheTTL: time.Minute, Log: zerolog.New(&logs), Worker: "1", MaxBodyBytes: 1 << 16}
	// Two routes that only pass the store's own errors to the one mapping.
	url := serve(t, srv, func(r *httprouter.Router) {
		r.GET("/test/missing", func(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
			_, err := st.Webhook(r.Context(), "wh_none")
			srv.storeFailed(w, r, err)
		})
		r.POST("/test/twice", func(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
			err := st.CreateWebhook(r.Context(), &store.Webhook{ID: "wh_twice", URL: "http://127.0.0.1:9/"})
			if err == nil {
				err = st.CreateWebhook(r.Context(), &store.Webhook{ID: "wh_twice", URL: "http://127.0.0.1:9/"})
			}
			srv.storeFailed(w, r, err)
		})
	})
	key, k := store.NewAPIKey("test", []string{store.ScopeMessagesRead, store.ScopeMessagesWrite})
	if err := st.CreateAPIKey(context.Background(), k); err != nil {
		t.Fatal(err)
	}
	auth := map[string]string{"Authorization": "Bearer " + key, "Content-Type": "application/json"}

	// A stored message that does not decode (chat is a number).
	cfg := db.Config(nil)
	raw, err := mongo.Connect(options.Client().ApplyURI(cfg.MongoURI))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = raw.Disconnect(context.Background()) }()
	if _, err := raw.Database(cfg.MongoDatabase).Collection("outbox").InsertOne(context.Background(),
		bson.D{{Key: "_id", Value: "msg_undecodable"}, {Key: "chat", Value: 5}, {Key: "status", Value: "queued"}}); err != nil {
		t.Fatal(err)
	}

	for _, c := range []struct {
		method, path string
		status       int
		code         string
	}{
		{"GET", "/test/missing", 404, "not_found"},
		{"POST", "/test/twice", 409, "conflict"},
		{"GET", "/v1/messages/msg_undecodable", 500, "internal"},
	} {
		r := do(t, c.method, url+c.path, nil, auth)
		got := errorOf(t, r)
		if r.status != c.status || got["code"] != c.code || r.header.Get("Retry-After") != "" {
			t.Errorf("%s %s: %d %v (Retry-After %q), want %d %s", c.method, c.path, r.status, got, r.header.Get("Retry-After"), c.status, c.code)
		}
		if c.status == 500 {
			id := regexp.MustCompile(`error id ([0-9a-f]+)`).FindStringSubmatch(got["message"].(string))
			if id == nil || !strings.Contains(logs.String(), `"error_id":"`+id[1]+`"`) {
				t.Errorf("the 500's error id is not in the log: %v\n%s", got, logs.String())
			}
		}
	}

	// The database away: a read, a write that was never sent (the worker
	// knows the database is gone, so nothing reaches it) and a schedule
	// whose media could not be looked up get 503 with Retry-After; the
	// write is not there when the database comes back.
	db.Stop()
	testutil.Eventually(t, 20*time.Second, "/readyz seeing the database away", func() (bool, string) {
		r := do(t, "GET", url+"/readyz", nil, nil)
		return r.status == 503, fmt.Sprint(r.status)
	})
	var wg sync.WaitGroup
	for _, c := range []struct{ method, path, body string }{
		{"GET", "/v1/messages", ""},
		{"POST", "/v1/messages", `{"to":"+491701234567","text":"not sent"}`},
		{"POST", "/v1/schedules", `{"send_at":"` + time.Now().Add(time.Hour).UTC().Format(time.RFC3339) +
			`","message":{"to":"+491701234567","media_id":"0123456789abcdef01234567"}}`},
	} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := do(t, c.method, url+c.path, strings.NewReader(c.body), auth)
			if got := errorOf(t, r); r.status != 503 || got["code"] != "database_unavailable" || r.header.Get("Retry-After") == "" {
				t.Errorf("%s %s with the database away: %d %v (Retry-After %q), want 503 database_unavailable with Retry-After",
					c.method, c.path, r.status, got, r.header.Get("Retry-After"))
			}
		}()
	}
	wg.Wait()
	db.Restart()
	wctx, wcancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer wcancel()
	if err := st.WaitReady(wctx); err != nil {
		t.Fatal(err)
	}
	ms, err := st.OutboxPage(context.Background(), "491701234567@s.whatsapp.net", "", 0, "", 10)
	if err != nil || len(ms) != 0 {
		t.Errorf("the write answered with Retry-After was stored: %v %v", ms, err)
	}
}

// The store tells apart, from the real driver's errors, a write that was
// sent and not answered in time (it may have happened: it did) from one
// the driver could not send (it did not), and both from a refusal.
func TestStoreTellsUnsentFromUnanswered(t *testing.T) {
	db := testdb.StartMongo(t)
	st := db.Connect(nil)
	link := newLossyLink(t, db.Socket)
	api := db.Connect(map[string]string{"MONGO_URI": config.SocketURI(link.path)})
	enqueue := func(m *store.OutboxMessage, within time.Duration) error {
		ctx, cancel := context.WithTimeout(context.Background(), within)
		defer cancel()
		return api.EnqueueMessage(ctx, m)
	}
	if err := enqueue(&store.OutboxMessage{Chat: "x@s.whatsapp.net", Text: "warm-up"}, 10*time.Second); err != nil {
		t.Fatal(err)
	}

	// The answer held back past the deadline: a worker paused, a slow link.
	release := make(chan struct{})
	lost := link.loseNextInsertInto("outbox", func() { <-release })
	held := &store.OutboxMessage{Chat: "x@s.whatsapp.net", Text: "held"}
	err := enqueue(held, 500*time.Millisecond)
	close(release)
	<-lost
	if err == nil || !store.OutcomeUnknown(err) || !store.IsUnavailable(err) {
		t.Errorf("an insert not answered before its deadline: %v; OutcomeUnknown %t, IsUnavailable %t, want both", err, store.OutcomeUnknown(err), store.IsUnavailable(err))
	}
	if _, err := st.OutboxMessage(context.Background(), held.ID); err != nil {
		t.Errorf("the unanswered insert is not stored (the test expects it applied): %v", err)
	}

	// The same insert again: a refusal the database answered.
	err = enqueue(held, 10*time.Second)
	if !errors.Is(err, store.ErrExists) || store.OutcomeUnknown(err) || store.IsUnavailable(err) {
		t.Errorf("a duplicate: %v; OutcomeUnknown %t, IsUnavailable %t, want ErrExists and neither", err, store.OutcomeUnknown(err), store.IsUnavailable(err))
	}

	// The database gone and known gone: nothing can be sent.
	db.Stop()
	testutil.Eventually(t, 20*time.Second, "the database known gone", func() (bool, string) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		return api.Ping(ctx) != nil, "it still answers"
	})
	unsent := &store.OutboxMessage{Chat: "x@s.whatsapp.net", Text: "unsent"}
	err = enqueue(unsent, 2*time.Second)
	if err == nil || store.OutcomeUnknown(err) || !store.IsUnavailable(err) {
		t.Errorf("an insert with the database away: %v; OutcomeUnknown %t, IsUnavailable %t, want only IsUnavailable", err, store.OutcomeUnknown(err), store.IsUnavailable(err))
	}
	db.Restart()
	wctx, wcancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer wcancel()
	if err := st.WaitReady(wctx); err != nil {
		t.Fatal(err)
	}
	if _, err := st.OutboxMessage(context.Background(), unsent.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("the insert that was not sent is there: %v", err)
	}
}
