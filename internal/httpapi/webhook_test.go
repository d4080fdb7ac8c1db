package httpapi

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"app/internal/config"
	"app/internal/primary"
	"app/internal/store"
	"app/internal/testdb"
	"app/internal/testutil"
	"app/internal/webhook"
)

type hookEnv struct {
	url          string
	admin, other map[string]string
	log          *primary.EventLog
	st           store.Store
}

// hookServer is a worker with the webhook routes (allowed to point at
// loopback, where the tests' receivers are) and a primary delivering.
func hookServer(t *testing.T) hookEnv {
	t.Helper()
	db := testdb.Start(t)
	st := db.Connect(nil)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := st.EnsureIndexes(ctx, zerolog.Nop()); err != nil {
		t.Fatal(err)
	}
	loop := []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
	log := primary.NewEventLog(st, zerolog.Nop())
	lctx, lcancel := context.WithCancel(context.Background())
	t.Cleanup(lcancel) // the lease of the test
	if !log.Start(lctx, 1) {
		t.Fatal("event log did not start")
	}
	h := &primary.Webhooks{Store: st, Log: zerolog.Nop(), Events: log, Cfg: config.Webhooks{Timeout: 5 * time.Second, MaxAge: time.Hour, AllowedNetworks: loop},
		Reload: 50 * time.Millisecond, Poll: 100 * time.Millisecond, Backoff: 20 * time.Millisecond, MaxBackoff: 100 * time.Millisecond}
	hctx, hcancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = h.Run(hctx, 1) }()
	t.Cleanup(func() { hcancel(); <-done })

	api := db.Connect(nil)
	e := hookEnv{log: log, st: st}
	e.url = serve(t, &Server{Backend: api, Webhooks: api, WebhookGuard: webhook.NewGuard(loop), Keys: api, Log: zerolog.Nop(),
		Worker: "1", MaxBodyBytes: 1 << 20}, nil)
	mk := func(scopes ...string) map[string]string {
		key, k := store.NewAPIKey("test", scopes)
		if err := st.CreateAPIKey(context.Background(), k); err != nil {
			t.Fatal(err)
		}
		return map[string]string{"Authorization": "Bearer " + key, "Content-Type": "application/json"}
	}
	e.admin, e.other = mk(store.ScopeAdmin), mk(store.ScopeMessagesRead, store.ScopeMessagesWrite)
	return e
}

// statusOf sends a request whose answer may have no body.
func statusOf(t *testing.T, method, url string, header map[string]string) int {
	t.Helper()
	req, _ := http.NewRequest(method, url, nil)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = res.Body.Close()
	return res.StatusCode
}

// A user's whole path: subscribe with the API, get the secret once,
// receive signed events, see the deliveries, replay, delete.
func TestWebhookRoutes(t *testing.T) {
	e := hookServer(t)
	var mu sync.Mutex
	var got []string // "seq type", as accepted
	var secret string
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		// The receiver verifies with the Standard Webhooks library.
		wh, err := standardwebhooks.NewWebhook(secret)
		if err == nil {
			err = wh.Verify(body, r.Header)
		}
		if err != nil {
			t.Errorf("signature: %v", err)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		got = append(got, string(body))
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(rcv.Close)
	received := func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), got...)
	}

	e.log.Append(context.Background(), "message.status", map[string]any{"id": "before"}) // not delivered: before the subscription
	r := do(t, "POST", e.url+"/v1/webhooks", strings.NewReader(`{"url":"`+rcv.URL+`/in","types":["message.incoming","session.state"],"description":"CRM"}`), e.admin)
	if r.status != 201 || r.body["enabled"] != true || r.body["version"] != float64(1) || r.header.Get("Location") != "/v1/webhooks/"+fmt.Sprint(r.body["id"]) {
		t.Fatalf("create: %d %v %v", r.status, r.header, r.body)
	}
	id := r.body["id"].(string)
	s, _ := r.body["secret"].(string)
	if !strings.HasPrefix(s, "whsec_") || len(s) < 40 {
		t.Fatalf("secret %q", s)
	}
	mu.Lock()
	secret = s
	mu.Unlock()
	// Shown once: reading it again does not show it.
	r = do(t, "GET", e.url+"/v1/webhooks/"+id, nil, e.admin)
	if r.status != 200 || r.body["secret"] != nil || r.body["description"] != "CRM" {
		t.Fatalf("get: %d %v", r.status, r.body)
	}
	r = do(t, "GET", e.url+"/v1/webhooks", nil, e.admin)
	if list, _ := r.body["webhooks"].([]any); r.status != 200 || len(list) != 1 || list[0].(map[string]any)["secret"] != nil {
		t.Fatalf("list: %d %v", r.status, r.body)
	}

	ctx := context.Background()
	_ = e.log.Append(ctx, "message.incoming", map[string]any{"chat": "a", "text": "hello"})
	_ = e.log.Append(ctx, "message.status", map[string]any{"id": "m1"}) // not asked for
	_ = e.log.Append(ctx, "session.state", map[string]any{"state": "connected"})
	testutil.Eventually(t, 10*time.Second, "two deliveries received", func() (bool, string) {
		return len(received()) >= 2, fmt.Sprintf("%q", received())
	})
	rec := received()
	if len(rec) != 2 || !strings.Contains(rec[0], `"seq":2,"type":"message.incoming"`) || !strings.Contains(rec[1], `"seq":4,"type":"session.state"`) ||
		!strings.Contains(rec[0], `"text":"hello"`) {
		t.Fatalf("received %q", rec)
	}

	// The receiver has them before the primary records the outcome.
	testutil.Eventually(t, 10*time.Second, "both deliveries recorded", func() (bool, string) {
		r = do(t, "GET", e.url+"/v1/webhooks/"+id+"/deliveries", nil, e.admin)
		list, _ := r.body["deliveries"].([]any)
		return r.status == 200 && len(list) == 2 && list[0].(map[string]any)["status"] == "delivered" && list[1].(map[string]any)["status"] == "delivered",
			fmt.Sprintf("%d %v", r.status, r.body)
	})
	list, _ := r.body["deliveries"].([]any)
	if list[0].(map[string]any)["seq"] != float64(4) || list[0].(map[string]any)["response_status"] != float64(200) {
		t.Fatalf("deliveries: %d %v", r.status, r.body)
	}
	r = do(t, "GET", e.url+"/v1/webhooks/"+id+"/deliveries?limit=1", nil, e.admin)
	next, _ := r.body["next"].(string)
	if list, _ := r.body["deliveries"].([]any); len(list) != 1 || next == "" {
		t.Fatalf("first page: %v", r.body)
	}
	r = do(t, "GET", e.url+"/v1/webhooks/"+id+"/deliveries?limit=1&before="+next, nil, e.admin)
	if list, _ := r.body["deliveries"].([]any); len(list) != 1 || list[0].(map[string]any)["seq"] != float64(2) {
		t.Fatalf("second page: %v", r.body)
	}
	testutil.Eventually(t, 10*time.Second, "the progress through seq 4", func() (bool, string) {
		r = do(t, "GET", e.url+"/v1/webhooks/"+id, nil, e.admin)
		return r.body["delivered_through"] == float64(4) && r.body["log_position"] == float64(4), fmt.Sprint(r.body)
	})

	// Replay from seq 2: both events again, in order.
	r = do(t, "POST", e.url+"/v1/webhooks/"+id+"/replay", strings.NewReader(`{"from_seq":2}`), e.admin)
	if r.status != 202 || r.body["from_seq"] != float64(2) {
		t.Fatalf("replay: %d %v", r.status, r.body)
	}
	testutil.Eventually(t, 10*time.Second, "the replay received", func() (bool, string) {
		return len(received()) >= 4, fmt.Sprintf("%q", received())
	})
	if rec := received(); len(rec) != 4 || rec[2] != rec[0] || rec[3] != rec[1] {
		t.Fatalf("after replay: %q", rec)
	}

	// PATCH with the version read; a stale version is refused.
	r = do(t, "GET", e.url+"/v1/webhooks/"+id, nil, e.admin)
	v := r.body["version"].(float64)
	r = do(t, "PATCH", e.url+"/v1/webhooks/"+id, strings.NewReader(fmt.Sprintf(`{"version":%v,"enabled":false}`, v)), e.admin)
	if r.status != 200 || r.body["enabled"] != false || r.body["disabled_reason"] == nil {
		t.Fatalf("disable: %d %v", r.status, r.body)
	}
	r = do(t, "PATCH", e.url+"/v1/webhooks/"+id, strings.NewReader(fmt.Sprintf(`{"version":%v,"enabled":true}`, v)), e.admin)
	if got := errorOf(t, r); r.status != 409 || got["field"] != "version" {
		t.Fatalf("stale PATCH: %d %v", r.status, r.body)
	}

	if st := statusOf(t, "DELETE", e.url+"/v1/webhooks/"+id, e.admin); st != 204 {
		t.Fatalf("delete: %d", st)
	}
	if r := do(t, "GET", e.url+"/v1/webhooks/"+id, nil, e.admin); r.status != 404 || errorOf(t, r)["field"] != "id" {
		t.Fatalf("after delete: %d %v", r.status, r.body)
	}
}

// Every bad request is a 4xx naming the field; webhooks need the admin
// scope.
func TestBadWebhookRequests(t *testing.T) {
	e := hookServer(t)
	r := do(t, "POST", e.url+"/v1/webhooks", strings.NewReader(`{"url":"https://hooks.example.com/in"}`), e.other)
	if r.status != 403 {
		t.Fatalf("without admin: %d %v", r.status, r.body)
	}
	// The worker of this test allows loopback; by default nothing private is.
	public := serve(t, &Server{Backend: e.st, Webhooks: e.st, Keys: e.st, Log: zerolog.Nop(), Worker: "1", MaxBodyBytes: 1 << 20}, nil)
	for _, c := range []struct {
		url, body, field string
	}{
		{e.url, `{}`, "url"},
		{e.url, `{"url":"ftp://example.com/"}`, "url"},
		{e.url, `{"url":"/relative"}`, "url"},
		{e.url, `{"url":"https://user:pw@example.com/"}`, "url"},
		{e.url, `{"url":"https://example.com/","types":["message.sent"]}`, "types"},
		{e.url, `{"url":"https://example.com/","types":"message.status"}`, "types"},
		{e.url, `{"url":"https://example.com/","description":"` + strings.Repeat("x", 201) + `"}`, "description"},
		{e.url, `{"url":"https://example.com/","secret":"mine"}`, "secret"},
		{e.url, `{"url":"https://example.com/","version":1}`, "version"},
		{e.url, `{"url":"http://10.0.0.8/in"}`, "url"},
		{public, `{"url":"http://127.0.0.1:9000/in"}`, "url"},
		{public, `{"url":"http://[::1]/in"}`, "url"},
		{public, `{"url":"http://169.254.169.254/latest/meta-data/"}`, "url"},
		{public, `{"url":"http://192.168.1.10/in"}`, "url"},
		{public, `{"url":"http://localhost:8080/in"}`, "url"},
		{public, `{"url":"http://0.0.0.0/"}`, "url"},
		{public, `{"url":"http://[::ffff:127.0.0.1]/"}`, "url"},
	} {
		r := do(t, "POST", c.url+"/v1/webhooks", strings.NewReader(c.body), e.admin)
		if got := errorOf(t, r); r.status != 400 || got["field"] != c.field {
			t.Errorf("%s: %d %v, want 400 naming %q", c.body, r.status, got, c.field)
		}
	}
	r = do(t, "POST", e.url+"/v1/webhooks", strings.NewReader(`{"url":"https://hooks.example.com/in"}`), e.admin)
	if r.status != 201 {
		t.Fatalf("create: %d %v", r.status, r.body)
	}
	id := r.body["id"].(string)
	for _, c := range []struct {
		method, path, body, field string
		status                    int
	}{
		{"PATCH", "/v1/webhooks/" + id, `{"enabled":false}`, "version", 400},
		{"PATCH", "/v1/webhooks/" + id, `{"version":1,"url":"gopher://x"}`, "url", 400},
		{"PATCH", "/v1/webhooks/wh_nope", `{"version":1}`, "id", 404},
		{"POST", "/v1/webhooks/" + id + "/replay", `{}`, "from_seq", 400},
		{"POST", "/v1/webhooks/" + id + "/replay", `{"from_seq":1,"from_time":"2026-01-01T00:00:00Z"}`, "from_seq", 400},
		{"POST", "/v1/webhooks/" + id + "/replay", `{"from_seq":0}`, "from_seq", 400},
		{"POST", "/v1/webhooks/" + id + "/replay", `{"from_seq":99}`, "from_seq", 400},
		{"POST", "/v1/webhooks/" + id + "/replay", `{"from_time":"yesterday"}`, "from_time", 400},
		{"POST", "/v1/webhooks/wh_nope/replay", `{"from_seq":1}`, "id", 404},
		{"GET", "/v1/webhooks/" + id + "/deliveries?status=lost", "", "status", 400},
		{"GET", "/v1/webhooks/" + id + "/deliveries?before=x", "", "before", 400},
		{"GET", "/v1/webhooks/" + id + "/deliveries?limit=1000", "", "limit", 400},
		{"GET", "/v1/webhooks/" + id + "/deliveries?page=2", "", "page", 400},
		{"GET", "/v1/webhooks?all=1", "", "all", 400},
		{"DELETE", "/v1/webhooks/wh_nope", "", "id", 404},
	} {
		var body io.Reader
		if c.body != "" {
			body = strings.NewReader(c.body)
		}
		r := do(t, c.method, e.url+c.path, body, e.admin)
		if got := errorOf(t, r); r.status != c.status || got["field"] != c.field {
			t.Errorf("%s %s %s: %d %v, want %d naming %q", c.method, c.path, c.body, r.status, got, c.status, c.field)
		}
	}
}
