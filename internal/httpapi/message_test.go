package httpapi

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/rivo/uniseg"
	"github.com/rs/zerolog"

	"app/internal/config"
	"app/internal/msg"
	"app/internal/primary"
	"app/internal/store"
	"app/internal/testdb"
	"app/internal/testutil"
	"app/internal/whatsapp"
)

type msgEnv struct {
	url            string
	st, api        store.Store
	sb             *whatsapp.Sandbox
	writer, reader map[string]string
	session        map[string]string // with msgOptions.sandbox
}

// msgOptions change what messageServerWith sets up; the zero value is
// messageServer's.
type msgOptions struct {
	maxBody  int64 // the API's MaxBodyBytes
	apiMedia int64 // the API's MediaMaxBytes; 0: 64 KiB
	// sandbox turns the sandbox's routes and the session's on, with a
	// session key.
	sandbox bool
	// retryDelay is the sandbox's MediaRetryDelay.
	retryDelay time.Duration
	wa         config.WhatsApp // the primary's settings; ReconcileWait 1s unless set
}

// messageServer is a worker's API and a primary with the sandbox driver,
// on one embedded database.
func messageServer(t *testing.T, maxBody int64) msgEnv {
	t.Helper()
	return messageServerWith(t, msgOptions{maxBody: maxBody})
}

// messageServerWith is messageServer as o says.
func messageServerWith(t *testing.T, o msgOptions) msgEnv {
	t.Helper()
	db, st := testStore(t)
	if o.wa.ReconcileWait == 0 {
		o.wa.ReconcileWait = time.Second
	}
	if o.apiMedia == 0 {
		o.apiMedia = 1 << 16
	}
	sb := sandboxPrimary(t, st, whatsapp.SandboxConfig{Paired: whatsapp.SandboxJID, DeliveredDelay: 20 * time.Millisecond, ReadDelay: -1,
		MediaRetryDelay: o.retryDelay}, o.wa)
	// The worker has its own connection, as it would in its own process,
	// so its round trips can be counted apart from the primary's.
	api := db.Connect(nil)
	env := msgEnv{st: st, sb: sb, api: api}
	s := &Server{Backend: api, Messages: api, Chats: api, Media: api, MediaMaxBytes: o.apiMedia, Schedules: api, Keys: api, Log: zerolog.Nop(),
		Worker: "1", MaxBodyBytes: o.maxBody}
	if o.sandbox {
		s.Sessions, s.Sandbox = api, true
		env.session = apiKey(t, st, store.ScopeSession)
	}
	env.url = serve(t, s, nil)
	env.writer, env.reader = apiKey(t, st, store.ScopeMessagesWrite, store.ScopeMessagesRead), apiKey(t, st, store.ScopeMessagesRead)
	return env
}

// testStore is an embedded database with its indexes, and a connection
// to it.
func testStore(t *testing.T) (*testdb.DB, store.Store) {
	t.Helper()
	db := testdb.Start(t)
	st := db.Connect(nil)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := st.EnsureIndexes(ctx, zerolog.Nop()); err != nil {
		t.Fatal(err)
	}
	return db, st
}

// apiKey stores a key of scopes in st and returns the headers of a JSON
// request made with it.
func apiKey(t *testing.T, st store.Store, scopes ...string) map[string]string {
	t.Helper()
	key, k := store.NewAPIKey("test", scopes)
	if err := st.CreateAPIKey(context.Background(), k); err != nil {
		t.Fatal(err)
	}
	return map[string]string{"Authorization": "Bearer " + key, "Content-Type": "application/json"}
}

// sandboxPrimary runs a primary's WhatsApp work on st with a sandbox made
// of sc, until the test ends; wc adds to the settings every test shares.
func sandboxPrimary(t *testing.T, st store.Store, sc whatsapp.SandboxConfig, wc config.WhatsApp) *whatsapp.Sandbox {
	t.Helper()
	sb, err := whatsapp.NewSandbox(sc)
	if err != nil {
		t.Fatal(err)
	}
	runPrimary(t, st, sb, wc, 20*time.Millisecond)
	return sb
}

// runPrimary runs a primary's WhatsApp work on st with driver d, polling
// every poll, until the test ends; wc adds to the settings every test
// shares.
func runPrimary(t *testing.T, st store.Store, d whatsapp.Driver, wc config.WhatsApp, poll time.Duration) {
	wc.Driver, wc.MaxAttempts, wc.RateLimitPause = "sandbox", 3, time.Minute
	wa := &primary.WhatsApp{Cfg: wc, Driver: d, Store: st, Log: zerolog.Nop(), Poll: poll}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = wa.Run(ctx, 1) }()
	t.Cleanup(func() { cancel(); <-done })
}

// inject posts body to /v1/sandbox/incoming (a server with
// msgOptions.sandbox) and returns the message's WhatsApp id.
func (e msgEnv) inject(t *testing.T, body string) string {
	t.Helper()
	r := do(t, "POST", e.url+"/v1/sandbox/incoming", strings.NewReader(body), e.session)
	id, _ := r.body["wa_id"].(string)
	if r.status != 200 || id == "" {
		t.Fatalf("POST /v1/sandbox/incoming %s: %d %v", body, r.status, r.body)
	}
	return id
}

// eventsOf are the data of the log's events of typ, in order.
func (e msgEnv) eventsOf(t *testing.T, typ string) []map[string]any {
	t.Helper()
	return eventData(t, e.st, typ)
}

func with(h map[string]string, kv ...string) map[string]string {
	out := map[string]string{}
	for k, v := range h {
		out[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		out[kv[i]] = kv[i+1]
	}
	return out
}

func TestSendAndFollowAMessage(t *testing.T) {
	e := messageServer(t, 1<<20)
	r := do(t, "POST", e.url+"/v1/messages", strings.NewReader(`{"to":"+49 170 1234567","text":"Your order shipped."}`), e.writer)
	if r.status != 202 || r.body["status"] != "queued" || r.body["to"] != "491701234567@s.whatsapp.net" {
		t.Fatalf("POST /v1/messages: %d %v", r.status, r.body)
	}
	id := r.body["id"].(string)
	if r.header.Get("Location") != "/v1/messages/"+id {
		t.Errorf("Location %q", r.header.Get("Location"))
	}
	var got reply
	testutil.Eventually(t, 10*time.Second, "the message delivered", func() (bool, string) {
		got = do(t, "GET", e.url+"/v1/messages/"+id, nil, e.reader)
		return got.body["status"] == "delivered", fmt.Sprintf("%d %v", got.status, got.body)
	})
	if got.status != 200 || got.body["status"] != "delivered" || got.body["wa_id"] == nil || got.body["sent_at"] == nil {
		t.Fatalf("GET /v1/messages/%s: %d %v", id, got.status, got.body)
	}
	if r := do(t, "GET", e.url+"/v1/messages/msg_nope", nil, e.reader); r.status != 404 || errorOf(t, r)["field"] != "id" {
		t.Errorf("unknown id: %d %v", r.status, r.body)
	}
	// A read-only key cannot send; no key at all is 401.
	if r := do(t, "POST", e.url+"/v1/messages", strings.NewReader(`{"to":"+491701234567","text":"x"}`), e.reader); r.status != 403 {
		t.Errorf("read-only key sending: %d", r.status)
	}
	if r := do(t, "GET", e.url+"/v1/messages/"+id, nil, nil); r.status != 401 {
		t.Errorf("no key: %d", r.status)
	}
}

func TestBadMessageRequests(t *testing.T) {
	e := messageServer(t, 1<<17)
	long := strings.Repeat("a", MaxTextBytes+1)
	for _, c := range []struct {
		name, body string
		header     map[string]string
		status     int
		field      string
	}{
		{"no to", `{"text":"hi"}`, nil, 400, "to"},
		{"number without +", `{"to":"491701234567","text":"hi"}`, nil, 400, "to"},
		{"bad JID", `{"to":"bob@example.com","text":"hi"}`, nil, 400, "to"},
		{"to a number", `{"to":491701234567,"text":"hi"}`, nil, 400, "to"},
		{"no text", `{"to":"+491701234567"}`, nil, 400, "text"},
		{"blank text", `{"to":"+491701234567","text":"  \n"}`, nil, 400, "text"},
		{"text over the limit", `{"to":"+491701234567","text":"` + long + `"}`, nil, 400, "text"},
		{"text as a list", `{"to":"+491701234567","text":["hi"]}`, nil, 400, "text"},
		{"unknown field", `{"to":"+491701234567","text":"hi","priority":1}`, nil, 400, "priority"},
		{"bad reply_to", `{"to":"+491701234567","text":"hi","reply_to":"a b"}`, nil, 400, "reply_to"},
		{"not an object", `["hi"]`, nil, 400, ""},
		{"two objects", `{"to":"+491701234567","text":"a"}{"to":"+491701234567","text":"b"}`, nil, 400, ""},
		{"broken JSON", `{"to":`, nil, 400, ""},
		{"empty body", ``, nil, 400, ""},
		{"wrong content type", `{"to":"+491701234567","text":"hi"}`, map[string]string{"Content-Type": "text/plain"}, 415, ""},
		{"over the body limit", `{"to":"+491701234567","text":"` + strings.Repeat("b", 1<<17) + `"}`, nil, 413, "body"},
		{"long Idempotency-Key", `{"to":"+491701234567","text":"hi"}`, map[string]string{"Idempotency-Key": strings.Repeat("k", 256)}, 400, "Idempotency-Key"},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := with(e.writer)
			for k, v := range c.header {
				h[k] = v
			}
			r := do(t, "POST", e.url+"/v1/messages", strings.NewReader(c.body), h)
			got := errorOf(t, r)
			if r.status != c.status || got["field"] != nilIfEmpty(c.field) {
				t.Errorf("%d %v; want %d naming %q", r.status, got, c.status, c.field)
			}
		})
	}
	for _, c := range []struct{ query, field string }{
		{"?status=lost", "status"}, {"?limit=0", "limit"}, {"?limit=x", "limit"}, {"?before=zzz", "before"},
		{"?chat=nobody", "chat"}, {"?direction=sideways", "direction"}, {"?sort=asc", "sort"},
	} {
		r := do(t, "GET", e.url+"/v1/messages"+c.query, nil, e.reader)
		if got := errorOf(t, r); r.status != 400 || got["field"] != c.field {
			t.Errorf("GET /v1/messages%s: %d %v, want 400 naming %s", c.query, r.status, got, c.field)
		}
	}
	if n := len(e.sb.Sent()); n != 0 {
		t.Errorf("%d messages sent from bad requests", n)
	}
}

func nilIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// Eight clients retry the same request at once: one message, one send.
func TestIdempotentRetries(t *testing.T) {
	e := messageServer(t, 1<<20)
	h := with(e.writer, "Idempotency-Key", "order-1042-shipped")
	var wg sync.WaitGroup
	ids := make([]string, 8)
	codes := make([]int, 8)
	for i := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequest("POST", e.url+"/v1/messages", strings.NewReader(`{"to":"+491701234567","text":"Shipped!"}`))
			for k, v := range h {
				req.Header.Set(k, v)
			}
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			defer res.Body.Close()
			codes[i] = res.StatusCode
			ids[i] = strings.TrimPrefix(res.Header.Get("Location"), "/v1/messages/")
		}()
	}
	wg.Wait()
	for i := range ids {
		if codes[i] != 202 || ids[i] != ids[0] || ids[0] == "" {
			t.Fatalf("retries answered %v with ids %v; want 202 and one id", codes, ids)
		}
	}
	r := do(t, "POST", e.url+"/v1/messages", strings.NewReader(`{"to":"+491701234567","text":"Something else"}`), h)
	if got := errorOf(t, r); r.status != 422 || got["field"] != "Idempotency-Key" {
		t.Errorf("same key, other message: %d %v", r.status, got)
	}
	// A later message to the same chat is sent after every message queued
	// before it (the primary sends a chat's messages in order), so once it
	// is out, a second copy of the retried one would be out too.
	if r := do(t, "POST", e.url+"/v1/messages", strings.NewReader(`{"to":"+491701234567","text":"marker"}`), e.writer); r.status != 202 {
		t.Fatalf("POST the marker: %d %v", r.status, r.body)
	}
	var texts []string
	testutil.Eventually(t, 10*time.Second, "the marker sent", func() (bool, string) {
		texts = texts[:0]
		for _, s := range e.sb.Sent() {
			texts = append(texts, s.Text)
		}
		return slices.Contains(texts, "marker"), fmt.Sprint(texts)
	})
	if slices.Index(texts, "marker") != 1 || texts[0] != "Shipped!" {
		t.Errorf("sends %q: want one send of the idempotent message, then the marker", texts)
	}
}

// DELETE races the primary's claim: each message is either cancelled and
// never sent, or refused with 409 and sent; never both, never neither.
func TestCancelRacesTheSend(t *testing.T) {
	e := messageServer(t, 1<<20)
	const n = 20
	ids := make([]string, n)
	for i := range ids {
		r := do(t, "POST", e.url+"/v1/messages", strings.NewReader(fmt.Sprintf(`{"to":"+4917012345%02d","text":"m%d"}`, i, i)), e.writer)
		ids[i] = r.body["id"].(string)
	}
	codes := make([]int, n)
	var wg sync.WaitGroup
	for i, id := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			codes[i] = do(t, "DELETE", e.url+"/v1/messages/"+id, nil, e.writer).status
		}()
	}
	wg.Wait()
	// Every message settles: cancelled, or on its way (sent or beyond).
	final := make([]store.OutboxMessage, n)
	testutil.Eventually(t, 30*time.Second, "every message cancelled or sent", func() (bool, string) {
		for i, id := range ids {
			m, err := e.st.OutboxMessage(context.Background(), id)
			if err != nil || m.Status == store.StatusQueued || m.Status == store.StatusSending {
				return false, fmt.Sprintf("message %d is %s (%v)", i, m.Status, err)
			}
			final[i] = m
		}
		return true, ""
	})
	sent := map[string]bool{}
	for _, s := range e.sb.Sent() {
		sent[s.Text] = true
	}
	cancelled := 0
	for i, m := range final {
		wasSent := sent[fmt.Sprint("m", i)]
		switch codes[i] {
		case 200:
			cancelled++
			if wasSent || m.Status != store.StatusCancelled {
				t.Errorf("message %d: DELETE said cancelled, but it is %s (sent: %t)", i, m.Status, wasSent)
			}
		case 409:
			if !wasSent || m.Status == store.StatusCancelled {
				t.Errorf("message %d: DELETE said too late, but it is %s (sent: %t)", i, m.Status, wasSent)
			}
		case 202:
			// The primary had not decided within the request's wait (a
			// loaded machine): whichever way it went, it went one way.
			if wasSent == (m.Status == store.StatusCancelled) {
				t.Errorf("message %d: after a pending cancel it is %s (sent: %t)", i, m.Status, wasSent)
			}
		default:
			t.Errorf("message %d: DELETE answered %d", i, codes[i])
		}
	}
	t.Logf("%d of %d cancelled before the primary claimed them", cancelled, n)
	if r := do(t, "DELETE", e.url+"/v1/messages/msg_nope", nil, e.writer); r.status != 404 {
		t.Errorf("DELETE of an unknown message: %d", r.status)
	}
}

// Pages newest first: following next from page to page lists every
// message once while new ones keep arriving.
func TestPaginationWhileMessagesArrive(t *testing.T) {
	e := messageServer(t, 1<<20)
	e.sb.Disconnect("test", time.Hour) // keep them queued; the list is what matters
	post := func(i int) string {
		r := do(t, "POST", e.url+"/v1/messages", strings.NewReader(fmt.Sprintf(`{"to":"+491701234567","text":"p%d"}`, i)), e.writer)
		if r.status != 202 {
			t.Fatalf("POST: %d %v", r.status, r.body)
		}
		return r.body["id"].(string)
	}
	var before []string
	for i := range 25 {
		before = append(before, post(i))
	}
	var seen []string
	next := ""
	for page := 0; page < 10; page++ {
		q := "?limit=10&chat=%2B491701234567"
		if next != "" {
			q += "&before=" + next
		}
		r := do(t, "GET", e.url+"/v1/messages"+q, nil, e.reader)
		if r.status != 200 {
			t.Fatalf("page %d: %d %v", page, r.status, r.body)
		}
		for _, m := range r.body["messages"].([]any) {
			seen = append(seen, m.(map[string]any)["id"].(string))
		}
		post(100 + page) // a new message between pages
		next, _ = r.body["next"].(string)
		if next == "" {
			break
		}
	}
	if len(seen) != len(before) {
		t.Fatalf("pages listed %d messages, want the %d that existed at the first page", len(seen), len(before))
	}
	for i, id := range seen {
		if want := before[len(before)-1-i]; id != want {
			t.Fatalf("position %d: %s, want %s (newest first, no gaps or repeats)", i, id, want)
		}
	}
}

// FuzzDecodeMessageRequest: no body makes the decoder panic, and what it
// accepts is a message that can be sent, of the kind it says.
func FuzzDecodeMessageRequest(f *testing.F) {
	for _, s := range []string{
		`{"to":"+491701234567","text":"hi"}`, `{"to":"491701234567@s.whatsapp.net","text":"hi","reply_to":"3EB0ABC"}`,
		`{"to":"120363025246125486@g.us","text":"team"}`, `{"to":1}`, `[]`, `null`, `{"text":"\u0000"}`, `{"to":"+1","text":"` + strings.Repeat("x", 100) + `"}`,
		`{"to":"+491701234567","type":"text","text":"hi @491709876543","mentions":["+491709876543"]}`,
		`{"to":"+491701234567","type":"voice","media_id":"0123456789abcdef01234567"}`,
		`{"to":"+491701234567","type":"image","media_id":"0123456789abcdef01234567","text":"caption"}`,
		`{"to":"+491701234567","type":"location","location":{"latitude":52.52,"longitude":13.405,"name":"Berlin"}}`,
		`{"to":"+491701234567","type":"location","location":{"latitude":91,"longitude":0}}`,
		`{"to":"+491701234567","type":"contacts","contacts":[{"name":"Jane; Doe","phones":["+49 170 1112222"]}]}`,
		`{"to":"+491701234567","type":"contacts","contacts":[{"name":"Jane","vcard":"BEGIN:VCARD\nEND:VCARD"}]}`,
		`{"to":"+491701234567","type":"poll","poll":{"question":"Lunch?","options":["Pizza","Sushi"],"selectable":1}}`,
		`{"to":"+491701234567","type":"poll","poll":{"question":"Lunch?","options":["Pizza","pizza "]}}`,
		`{"to":"+491701234567","type":"reaction","target":{"wa_id":"3EB0ABC"},"emoji":"👍🏽"}`,
		`{"to":"+491701234567","type":"reaction","target":{"id":"msg_abc"},"emoji":""}`,
		`{"to":"+491701234567","type":"reaction","target":{"wa_id":"3EB0ABC"},"emoji":"👍👍"}`,
		`{"to":"+491701234567","type":"edit","target":{"id":"msg_abc"},"text":"fixed"}`,
		`{"to":"+491701234567","type":"revoke","target":{"wa_id":"3EB0ABC","sender":"+491701234567"}}`,
		`{"to":"+491701234567","forward":{"id":"msg_abc"}}`,
		`{"to":"+491701234567","forward":{"wa_id":"3EB0ABC","chat":"+491709876543"}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		m, ferr := DecodeMessageRequest(body)
		if ferr != nil {
			if ferr.msg == "" {
				t.Fatalf("an error without a message for %q", body)
			}
			return
		}
		if why := unsendable(m); why != "" {
			t.Fatalf("accepted %q as %+v: %s", body, m, why)
		}
		if _, err := whatsapp.NormalizeRecipient(m.Chat); err != nil {
			t.Fatalf("accepted chat %q that does not normalise: %v", m.Chat, err)
		}
	})
}

// unsendable says what a decoded request lacks for its kind, if anything.
func unsendable(d sendDraft) string {
	switch {
	case d.Chat == "":
		return "no chat"
	case len(d.Text) > MaxTextBytes || !utf8.ValidString(d.Text):
		return "a text WhatsApp does not take"
	case d.hash == "":
		return "no request hash"
	case d.forward != nil:
		if d.forward.ID == "" && (d.forward.WAID == "" || d.forward.Chat == "") {
			return "a forward of nothing"
		}
		return ""
	}
	for _, m := range d.Mentions {
		if !strings.Contains(d.Text, "@"+strings.TrimSuffix(m, "@s.whatsapp.net")) {
			return "a mention the text does not name"
		}
	}
	switch d.Kind {
	case msg.KindText, msg.KindEdit:
		if strings.TrimSpace(d.Text) == "" {
			return "no text"
		}
		if d.Kind == msg.KindEdit && d.Target == nil {
			return "an edit of nothing"
		}
	case "", msg.KindImage, msg.KindVideo, msg.KindAudio, msg.KindVoice, msg.KindDocument, msg.KindSticker:
		if d.MediaID == "" {
			return "media without its file"
		}
	case msg.KindLocation:
		if l := d.Location; l == nil || l.Latitude < -90 || l.Latitude > 90 || l.Longitude < -180 || l.Longitude > 180 {
			return "no point on the map"
		}
	case msg.KindContacts:
		if len(d.Contacts) == 0 || len(d.Contacts) > 10 {
			return "not 1 to 10 cards"
		}
		for _, c := range d.Contacts {
			if !strings.HasPrefix(strings.ToUpper(strings.TrimSpace(c.VCard)), "BEGIN:VCARD") {
				return "a card without a vCard"
			}
		}
	case msg.KindPoll:
		p := d.Poll
		if p == nil || len(p.Options) < 2 || len(p.Options) > 12 || p.Selectable < 0 || p.Selectable > len(p.Options) {
			return "not a poll WhatsApp takes"
		}
		seen := map[string]bool{}
		for _, o := range p.Options {
			k := strings.ToLower(strings.TrimSpace(o))
			if k == "" || seen[k] {
				return "a blank or repeated option"
			}
			seen[k] = true
		}
	case msg.KindReaction, msg.KindRevoke:
		if d.Target == nil || (d.Target.ID == "" && d.Target.WAID == "") || d.Target.Chat != d.Chat {
			return "not about a message of the chat"
		}
		if d.Kind == msg.KindReaction && d.Reaction != "" && uniseg.GraphemeClusterCount(d.Reaction) != 1 {
			return "a reaction of more than one emoji"
		}
	default:
		return "a kind POST does not send"
	}
	return ""
}

// Database round trips per request, counted by the driver's command
// monitor: a cached key costs none, POST /v1/messages one insert (two on
// an idempotent retry), GET /v1/messages/{id} one find.
func TestRoundTripsPerRequest(t *testing.T) {
	e := messageServer(t, 1<<20)
	count := func(method, path, body string, h map[string]string) int64 {
		before := e.api.Stats().Commands()
		var rd *strings.Reader
		if body != "" {
			rd = strings.NewReader(body)
		}
		var r reply
		if rd != nil {
			r = do(t, method, e.url+path, rd, h)
		} else {
			r = do(t, method, e.url+path, nil, h)
		}
		if r.status >= 300 {
			t.Fatalf("%s %s: %d %v", method, path, r.status, r.body)
		}
		return e.api.Stats().Commands() - before
	}
	first := count("POST", "/v1/messages", `{"to":"+491701234567","text":"one"}`, e.writer) // looks the key up
	post := count("POST", "/v1/messages", `{"to":"+491701234567","text":"two"}`, e.writer)
	idem := with(e.writer, "Idempotency-Key", "k1")
	count("POST", "/v1/messages", `{"to":"+491701234567","text":"three"}`, idem)
	retry := count("POST", "/v1/messages", `{"to":"+491701234567","text":"three"}`, idem)
	r := do(t, "POST", e.url+"/v1/messages", strings.NewReader(`{"to":"+491701234567","text":"four"}`), e.writer)
	id := r.body["id"].(string)
	count("GET", "/v1/messages/"+id, "", e.reader)
	get := count("GET", "/v1/messages/"+id, "", e.reader)
	t.Logf("round trips: first POST with an uncached key %d, POST %d, idempotent retry %d, GET by id %d", first, post, retry, get)
	if first != 2 || post != 1 || retry != 2 || get != 1 {
		t.Errorf("round trips: first %d (want 2: key + insert), POST %d (want 1), retry %d (want 2), GET %d (want 1)", first, post, retry, get)
	}
}

// Two workers, each enforcing half of a key's limit (100/s, burst 20 in
// all). A client flooding them never gets more than the limit; a client
// sending exactly at the limit gets all of it when its requests spread
// evenly, and loses what lands beyond a worker's share when they do not
// (3:1, as the kernel's accept queue spreads connections at low load).
func TestRateLimitAcrossWorkers(t *testing.T) {
	db := testdb.Start(t)
	st := db.Connect(nil)
	key, k := store.NewAPIKey("flood", []string{store.ScopeMessagesRead})
	if err := st.CreateAPIKey(context.Background(), k); err != nil {
		t.Fatal(err)
	}
	const total, burst = 100.0, 20
	h := map[string]string{"Authorization": "Bearer " + key}
	for _, c := range []struct {
		name  string
		share int // of every 4 requests, how many go to worker 1
		paced bool
	}{{"even flood", 2, false}, {"3:1 flood", 3, false}, {"even at the limit", 2, true}, {"3:1 at the limit", 3, true}} {
		t.Run(c.name, func(t *testing.T) {
			// The workers' clock, moved by the test: 3 s of requests, a
			// flood at 1,000 a second or paced at the limit, without
			// waiting for them.
			start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
			var now atomic.Int64
			now.Store(start.UnixNano())
			clock := func() time.Time { return time.Unix(0, now.Load()) }
			var urls []string
			for w := range 2 {
				urls = append(urls, serve(t, &Server{Backend: st, Messages: st, Keys: st, Log: zerolog.Nop(), Worker: fmt.Sprint(w + 1),
					RateLimit: total / 2, RateBurst: burst / 2, now: clock}, nil))
			}
			const d = 3 * time.Second
			every := time.Millisecond
			if c.paced {
				every = time.Duration(float64(time.Second) / total)
			}
			ok, limited := 0, 0
			for i := 0; clock().Sub(start) < d; i++ {
				now.Store(start.Add(time.Duration(i) * every).UnixNano())
				u := urls[1]
				if i%4 < c.share {
					u = urls[0]
				}
				r := do(t, "GET", u+"/v1/messages/msg_x", nil, h)
				switch r.status {
				case 404:
					ok++
				case 429:
					limited++
					if r.header.Get("Retry-After") == "" || r.header.Get("RateLimit-Remaining") != "0" {
						t.Fatalf("429 without Retry-After, or RateLimit-Remaining %q", r.header.Get("RateLimit-Remaining"))
					}
				default:
					t.Fatalf("status %d", r.status)
				}
			}
			elapsed := clock().Sub(start).Seconds()
			allowed := total*elapsed + burst
			sent := ok + limited
			t.Logf("%s: %d of %d accepted in %.2fs; the limit allows %.0f; accepted/min(sent, allowed) = %.0f%%",
				c.name, ok, sent, elapsed, allowed, 100*float64(ok)/min(float64(sent), allowed))
			if float64(ok) > allowed*1.02 {
				t.Errorf("%d accepted, more than the %.0f the limit allows", ok, allowed)
			}
			if !c.paced && limited == 0 {
				t.Error("a flood was not limited")
			}
			if c.paced && c.share == 2 && float64(ok) < 0.95*float64(sent) {
				t.Errorf("an evenly spread client at the limit got %d of %d through", ok, sent)
			}
		})
	}
}

func TestChatsContactsAndHistory(t *testing.T) {
	e := messageServer(t, 1<<20)
	r := do(t, "POST", e.url+"/v1/messages", strings.NewReader(`{"to":"+491701234567","text":"Hello Alice"}`), e.writer)
	if r.status != 202 {
		t.Fatal(r.status, r.body)
	}
	// Not a wait for a condition: the reply must be stored a little later
	// than our message so that the history's order is certain.
	time.Sleep(20 * time.Millisecond)
	e.sb.Inject(whatsapp.Incoming{Chat: "491701234567@s.whatsapp.net", PushName: "Alice", Text: "Hi!"})
	time.Sleep(5 * time.Millisecond) // stored times have millisecond precision: a distinct time for each, not a wait
	e.sb.Inject(whatsapp.Incoming{Chat: "120363025246125486@g.us", Sender: "4915112345678@s.whatsapp.net", Text: "team news"})
	var chats []any
	// Alice's chat exists from our message on: wait until both incoming
	// messages are stored, hers included.
	testutil.Eventually(t, 10*time.Second, "two chats, both written to us", func() (bool, string) {
		chats, _ = do(t, "GET", e.url+"/v1/chats", nil, e.reader).body["chats"].([]any)
		incoming := 0
		for _, c := range chats {
			if c.(map[string]any)["last_incoming_at"] != nil {
				incoming++
			}
		}
		return len(chats) >= 2 && incoming >= 2, fmt.Sprint(chats)
	})
	if len(chats) != 2 {
		t.Fatalf("chats: %v", chats)
	}
	contacts := do(t, "GET", e.url+"/v1/contacts", nil, e.reader).body["contacts"].([]any)
	if len(contacts) != 1 || contacts[0].(map[string]any)["phone"] != "+491701234567" || contacts[0].(map[string]any)["name"] != "Alice" {
		t.Errorf("contacts: %v", contacts)
	}
	// Alice's history, one message per page: newest (hers) first, then ours.
	var dirs []string
	next := ""
	for range 5 {
		q := "?limit=1"
		if next != "" {
			q += "&before=" + next
		}
		r := do(t, "GET", e.url+"/v1/chats/%2B491701234567/messages"+q, nil, e.reader)
		if r.status != 200 {
			t.Fatalf("history: %d %v", r.status, r.body)
		}
		for _, m := range r.body["messages"].([]any) {
			mm := m.(map[string]any)
			dirs = append(dirs, mm["direction"].(string)+":"+mm["text"].(string))
		}
		if next, _ = r.body["next"].(string); next == "" {
			break
		}
	}
	if strings.Join(dirs, " | ") != "in:Hi! | out:Hello Alice" {
		t.Errorf("history pages: %v", dirs)
	}
	// Everything received, newest first, a page at a time.
	var texts []string
	next = ""
	for range 5 {
		q := "?direction=incoming&limit=1"
		if next != "" {
			q += "&before=" + next
		}
		r := do(t, "GET", e.url+"/v1/messages"+q, nil, e.reader)
		if r.status != 200 {
			t.Fatalf("incoming: %d %v", r.status, r.body)
		}
		for _, m := range r.body["messages"].([]any) {
			texts = append(texts, m.(map[string]any)["text"].(string))
		}
		if next, _ = r.body["next"].(string); next == "" {
			break
		}
	}
	if strings.Join(texts, " | ") != "team news | Hi!" {
		t.Errorf("incoming pages: %v", texts)
	}
	if r := do(t, "GET", e.url+"/v1/messages?direction=incoming&status=sent", nil, e.reader); r.status != 400 || errorOf(t, r)["field"] != "status" {
		t.Errorf("incoming with a status: %d %v", r.status, r.body)
	}
	if r := do(t, "GET", e.url+"/v1/chats/alice/messages", nil, e.reader); r.status != 400 || errorOf(t, r)["field"] != "jid" {
		t.Errorf("bad jid: %d %v", r.status, r.body)
	}
	if r := do(t, "GET", e.url+"/v1/chats?limit=500", nil, e.reader); r.status != 400 || errorOf(t, r)["field"] != "limit" {
		t.Errorf("bad limit: %d %v", r.status, r.body)
	}
}

func TestMediaUploadDownloadAndSend(t *testing.T) {
	e := messageServer(t, 1<<20)
	png := append([]byte("\x89PNG\r\n\x1a\n"), bytes.Repeat([]byte{7}, 1000)...)
	upload := func(body []byte, ctype, query string) reply {
		return do(t, "POST", e.url+"/v1/media"+query, bytes.NewReader(body), with(e.writer, "Content-Type", ctype))
	}
	r := upload(png, "image/png", "?filename=chart.png")
	if r.status != 201 || r.body["mime_type"] != "image/png" || r.body["size"] != float64(len(png)) || r.body["file_name"] != "chart.png" {
		t.Fatalf("upload: %d %v", r.status, r.body)
	}
	id := r.body["id"].(string)
	for _, c := range []struct {
		body   []byte
		ctype  string
		status int
		field  string
	}{
		{png, "image/jpeg", 415, "file"},
		{[]byte("MZ\x90\x00 an executable"), "application/x-msdownload", 415, "file"},
		{[]byte{}, "image/png", 400, "file"},
		{append([]byte("\x89PNG\r\n\x1a\n"), make([]byte, 1<<16)...), "image/png", 413, "file"},
		{png, "", 415, ""},
	} {
		r := upload(c.body, c.ctype, "")
		if got := errorOf(t, r); r.status != c.status || got["field"] != nilIfEmpty(c.field) {
			t.Errorf("upload of %d bytes as %q: %d %v, want %d naming %q", len(c.body), c.ctype, r.status, got, c.status, c.field)
		}
	}
	// multipart/form-data, as a browser form sends it.
	var form bytes.Buffer
	mw := multipart.NewWriter(&form)
	h := textproto.MIMEHeader{}
	h.Set("Content-Disposition", `form-data; name="file"; filename="invoice.pdf"`)
	h.Set("Content-Type", "application/pdf")
	part, _ := mw.CreatePart(h)
	_, _ = part.Write([]byte("%PDF-1.4 invoice"))
	_ = mw.Close()
	r = upload(form.Bytes(), mw.FormDataContentType(), "")
	if r.status != 201 || r.body["mime_type"] != "application/pdf" || r.body["file_name"] != "invoice.pdf" {
		t.Errorf("multipart upload: %d %v", r.status, r.body)
	}

	res, err := http.DefaultClient.Do(func() *http.Request {
		req, _ := http.NewRequest("GET", e.url+"/v1/media/"+id, nil)
		req.Header.Set("Authorization", e.reader["Authorization"])
		return req
	}())
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || res.Header.Get("Content-Type") != "image/png" || !bytes.Equal(got, png) {
		t.Errorf("GET /v1/media/%s: %d %s, %d bytes", id, res.StatusCode, res.Header.Get("Content-Type"), len(got))
	}
	if r := do(t, "GET", e.url+"/v1/media/0123456789abcdef01234567", nil, e.reader); r.status != 404 {
		t.Errorf("unknown media: %d", r.status)
	}

	// Sent with a caption.
	r = do(t, "POST", e.url+"/v1/messages", strings.NewReader(`{"to":"+491701234567","media_id":"`+id+`","text":"This week"}`), e.writer)
	if r.status != 202 || r.body["media_type"] != "image/png" {
		t.Fatalf("POST with media: %d %v", r.status, r.body)
	}
	testutil.Eventually(t, 10*time.Second, "the media message sent", func() (bool, string) {
		return len(e.sb.Sent()) > 0, "nothing sent"
	})
	sent := e.sb.Sent()
	if len(sent) != 1 || sent[0].Media == nil || !bytes.Equal(sent[0].Media.Data, png) || sent[0].Media.MimeType != "image/png" || sent[0].Text != "This week" {
		t.Errorf("the sandbox got %+v", sent)
	}
	for _, body := range []string{`{"to":"+491701234567","media_id":"0123456789abcdef01234567"}`, `{"to":"+491701234567","media_id":"nope"}`} {
		if r := do(t, "POST", e.url+"/v1/messages", strings.NewReader(body), e.writer); r.status != 400 || errorOf(t, r)["field"] != "media_id" {
			t.Errorf("%s: %d %v", body, r.status, r.body)
		}
	}
}

func TestScheduleRoutes(t *testing.T) {
	e := messageServer(t, 1<<20)
	post := func(body string) reply {
		return do(t, "POST", e.url+"/v1/schedules", strings.NewReader(body), e.writer)
	}
	soon := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	r := post(`{"send_at":"` + soon + `","message":{"to":"+491701234567","text":"Reminder: your appointment"}}`)
	if r.status != 201 || r.body["kind"] != "once" || r.body["missed"] != "run_once" || len(r.body["next_runs"].([]any)) != 1 {
		t.Fatalf("one-shot: %d %v", r.status, r.body)
	}
	r = post(`{"cron":"30 2 * * *","timezone":"Europe/Berlin","max_runs":3,"message":{"to":"+491701234567","text":"Daily report"}}`)
	if r.status != 201 || r.body["kind"] != "cron" || len(r.body["next_runs"].([]any)) != 3 {
		t.Fatalf("recurring: %d %v", r.status, r.body)
	}
	id := r.body["id"].(string)

	for _, c := range []struct {
		body, field string
	}{
		{`{"message":{"to":"+491701234567","text":"x"}}`, "send_at"},
		{`{"send_at":"2020-01-01T00:00:00Z","message":{"to":"+491701234567","text":"x"}}`, "send_at"},
		{`{"send_at":"tomorrow","message":{"to":"+491701234567","text":"x"}}`, "send_at"},
		{`{"cron":"61 * * * *","message":{"to":"+491701234567","text":"x"}}`, "cron"},
		{`{"cron":"0 9 * * *","timezone":"Mars/Olympus","message":{"to":"+491701234567","text":"x"}}`, "timezone"},
		{`{"cron":"0 9 * * *","send_at":"` + soon + `","message":{"to":"+491701234567","text":"x"}}`, "cron"},
		{`{"cron":"0 9 * * *","missed":"sometimes","message":{"to":"+491701234567","text":"x"}}`, "missed"},
		{`{"cron":"0 9 * * *","start_at":"2027-01-02T00:00:00Z","end_at":"2027-01-01T00:00:00Z","message":{"to":"+491701234567","text":"x"}}`, "end_at"},
		{`{"cron":"0 9 * * *"}`, "message"},
		{`{"cron":"0 9 * * *","message":{"to":"bob","text":"x"}}`, "message.to"},
		{`{"cron":"0 9 * * *","message":{"to":"+491701234567"}}`, "message.text"},
		{`{"cron":"0 9 * * *","message":{"to":"+491701234567","text":"x"},"color":"red"}`, "color"},
		{`{"cron":"0 9 * * *","message":{"to":"+491701234567","text":"x"},"version":1}`, "version"},
	} {
		r := post(c.body)
		if got := errorOf(t, r); r.status != 400 || got["field"] != nilIfEmpty(c.field) {
			t.Errorf("%s: %d %v, want 400 naming %q", c.body, r.status, got, c.field)
		}
	}

	// Edits need the version read; a stale one is refused.
	r = do(t, "PATCH", e.url+"/v1/schedules/"+id, strings.NewReader(`{"version":1,"cron":"0 8 * * 1-5"}`), e.writer)
	if r.status != 200 || r.body["version"] != float64(2) || r.body["cron"] != "0 8 * * 1-5" {
		t.Fatalf("PATCH: %d %v", r.status, r.body)
	}
	r = do(t, "PATCH", e.url+"/v1/schedules/"+id, strings.NewReader(`{"version":1,"max_runs":5}`), e.writer)
	if got := errorOf(t, r); r.status != 409 || got["field"] != "version" {
		t.Errorf("stale PATCH: %d %v", r.status, got)
	}
	r = do(t, "PATCH", e.url+"/v1/schedules/"+id, strings.NewReader(`{"max_runs":5}`), e.writer)
	if got := errorOf(t, r); r.status != 400 || got["field"] != "version" {
		t.Errorf("PATCH without version: %d %v", r.status, got)
	}
	r = do(t, "POST", e.url+"/v1/schedules/"+id+"/pause", nil, e.writer)
	if r.status != 200 || r.body["paused"] != true || r.body["next_runs"] != nil {
		t.Errorf("pause: %d %v", r.status, r.body)
	}
	r = do(t, "POST", e.url+"/v1/schedules/"+id+"/resume", nil, e.writer)
	if r.status != 200 || r.body["paused"] != false || len(r.body["next_runs"].([]any)) == 0 {
		t.Errorf("resume: %d %v", r.status, r.body)
	}
	r = do(t, "GET", e.url+"/v1/schedules/"+id+"?preview=20", nil, e.reader)
	if r.status != 200 || len(r.body["next_runs"].([]any)) != 3 {
		t.Errorf("GET with preview (max_runs 3): %d %v", r.status, r.body["next_runs"])
	}
	r = do(t, "GET", e.url+"/v1/schedules", nil, e.reader)
	if r.status != 200 || len(r.body["schedules"].([]any)) != 2 {
		t.Errorf("list: %d %v", r.status, r.body)
	}
	r = do(t, "GET", e.url+"/v1/schedules/"+id+"/runs", nil, e.reader)
	if r.status != 200 || r.body["runs"] == nil {
		t.Errorf("runs: %d %v", r.status, r.body)
	}
	r = do(t, "GET", e.url+"/v1/schedule-preview?cron=30+2+*+*+*&timezone=Europe/Berlin&n=3", nil, e.reader)
	if r.status != 200 || len(r.body["runs"].([]any)) != 3 || !strings.HasSuffix(r.body["local"].([]any)[0].(string), "+01:00") && !strings.HasSuffix(r.body["local"].([]any)[0].(string), "+02:00") {
		t.Errorf("preview: %d %v", r.status, r.body)
	}
	if r := do(t, "GET", e.url+"/v1/schedule-preview?cron=nope", nil, e.reader); r.status != 400 || errorOf(t, r)["field"] != "cron" {
		t.Errorf("bad preview: %d %v", r.status, r.body)
	}
	req, _ := http.NewRequest("DELETE", e.url+"/v1/schedules/"+id, nil)
	req.Header.Set("Authorization", e.writer["Authorization"])
	res, err := http.DefaultClient.Do(req)
	if err != nil || res.StatusCode != 204 {
		t.Fatalf("DELETE: %v %v", err, res)
	}
	res.Body.Close()
	if r := do(t, "GET", e.url+"/v1/schedules/"+id, nil, e.reader); r.status != 404 {
		t.Errorf("after DELETE: %d", r.status)
	}
}

// A chat that only ever wrote to us, five messages in one millisecond:
// its history and the incoming list page through all of them one at a
// time (before, the history stopped after two pages).
func TestIncomingOnlyHistoryPagesThroughEqualTimes(t *testing.T) {
	e := messageServer(t, 1<<20)
	at := time.Now().Truncate(time.Millisecond)
	for i := range 5 {
		m := store.IncomingMessage{WAID: fmt.Sprintf("3AEQ%d", i), Chat: "491709999999@s.whatsapp.net", Sender: "491709999999@s.whatsapp.net",
			Body: msg.Body{Kind: "text"}, Text: fmt.Sprint(i), SentAt: at, ReceivedAt: at}
		if _, err := e.st.SaveIncoming(context.Background(), m); err != nil {
			t.Fatal(err)
		}
	}
	pages := func(path string) []string {
		var texts []string
		next := ""
		for range 10 {
			q := "limit=1"
			if next != "" {
				q += "&before=" + next
			}
			sep := "?"
			if strings.Contains(path, "?") {
				sep = "&"
			}
			r := do(t, "GET", e.url+path+sep+q, nil, e.reader)
			if r.status != 200 {
				t.Fatalf("%s: %d %v", path, r.status, r.body)
			}
			for _, m := range r.body["messages"].([]any) {
				texts = append(texts, m.(map[string]any)["text"].(string))
			}
			if next, _ = r.body["next"].(string); next == "" {
				break
			}
		}
		slices.Sort(texts)
		return texts
	}
	for _, path := range []string{"/v1/chats/%2B491709999999/messages", "/v1/messages?direction=incoming"} {
		if got := strings.Join(pages(path), ","); got != "0,1,2,3,4" {
			t.Errorf("%s one per page: %s, want each of 0,1,2,3,4 once", path, got)
		}
	}
}
