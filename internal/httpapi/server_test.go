package httpapi

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/julienschmidt/httprouter"
	"github.com/rs/zerolog"

	"app/internal/store"
	"app/internal/testdb"
	"app/internal/testutil"
)

// serve runs the API on a real loopback socket; every response it sends
// is checked against openapi.json (contract_test.go).
func serve(t *testing.T, s *Server, extra func(*httprouter.Router)) string {
	t.Helper()
	h := checked(t, s.handler(extra))
	srv := httptest.NewUnstartedServer(h)
	srv.Config = NewHTTPServer(h, zerolog.Nop())
	srv.Start()
	t.Cleanup(srv.Close)
	return srv.URL
}

type reply struct {
	status int
	header http.Header
	body   map[string]any
}

func do(t *testing.T, method, url string, body io.Reader, header map[string]string) reply {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	r := reply{status: res.StatusCode, header: res.Header}
	if ct := res.Header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("%s %s: Content-Type %q, want application/json", method, url, ct)
	}
	if err := json.NewDecoder(res.Body).Decode(&r.body); err != nil {
		t.Fatalf("%s %s: body is not JSON: %v", method, url, err)
	}
	return r
}

func errorOf(t *testing.T, r reply) map[string]any {
	t.Helper()
	e, ok := r.body["error"].(map[string]any)
	if !ok {
		t.Fatalf("reply %d %v has no error object", r.status, r.body)
	}
	if e["request_id"] != r.header.Get("X-Request-Id") || e["request_id"] == "" {
		t.Fatalf("error request_id %v does not match X-Request-Id %q", e["request_id"], r.header.Get("X-Request-Id"))
	}
	return e
}

// adminKey stores a key with the admin scope and returns its header.
func adminKey(t *testing.T, st store.Store) map[string]string {
	t.Helper()
	key, k := store.NewAPIKey("admin", []string{store.ScopeAdmin})
	if err := st.CreateAPIKey(context.Background(), k); err != nil {
		t.Fatal(err)
	}
	return map[string]string{"Authorization": "Bearer " + key}
}

// /readyz follows the database: 503 while it is gone, 200 once it is back,
// without restarting the worker; /healthz stays 200 throughout.
func TestReadinessFollowsTheDatabase(t *testing.T) {
	db := testdb.StartMongo(t)
	st := db.Connect(nil)
	admin := adminKey(t, st)
	url := serve(t, &Server{Backend: st, Keys: st, Log: zerolog.Nop(), Worker: "3"}, nil)

	waitReady := func(want int) reply {
		t.Helper()
		var r reply
		testutil.Eventually(t, 15*time.Second, fmt.Sprintf("/readyz %d", want), func() (bool, string) {
			r = do(t, "GET", url+"/readyz", nil, nil)
			return r.status == want, fmt.Sprintf("%d %v", r.status, r.body)
		})
		return r
	}
	if r := waitReady(200); r.body["database"] != "ok" || r.header.Get("X-App-Worker") != "3" {
		t.Fatalf("ready reply %v, worker %q", r.body, r.header.Get("X-App-Worker"))
	}
	db.Stop()
	if r := waitReady(503); r.body["database"] != "unreachable" {
		t.Fatalf("not-ready reply %v", r.body)
	}
	if r := do(t, "GET", url+"/healthz", nil, nil); r.status != 200 {
		t.Fatalf("/healthz is %d while the database is down; want 200 (the process is alive)", r.status)
	}
	if r := do(t, "GET", url+"/v1/cluster", nil, admin); r.status != 503 {
		t.Fatalf("/v1/cluster is %d while the database is down; want 503", r.status)
	} else {
		errorOf(t, r)
	}
	db.Restart()
	waitReady(200)
}

func TestClusterViewShowsHeartbeatsAndLease(t *testing.T) {
	db := testdb.Start(t)
	st := db.Connect(nil)
	ctx := context.Background()
	now := time.Now()
	for _, hb := range []store.Heartbeat{
		{ID: "h/worker-1", Role: "worker", Worker: "1", Host: "h", PID: 101, Version: "v1", StartedAt: now, LastSeen: now, Requests: 5, State: "serving"},
		{ID: "h/worker-2", Role: "worker", Worker: "2", Host: "h", PID: 102, Version: "v1", StartedAt: now, LastSeen: now.Add(-5 * time.Second), State: "serving"},
		{ID: "h/worker-3", Role: "worker", Worker: "3", Host: "h", PID: 103, Version: "v1", StartedAt: now, LastSeen: now.Add(-time.Minute), State: "serving"},
		{ID: "h/primary", Role: "primary", Host: "h", PID: 100, Version: "v1", StartedAt: now, LastSeen: now, State: "holder"},
	} {
		if err := st.WriteHeartbeat(ctx, hb); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := st.ClaimLease(ctx, store.Lease{Epoch: 4, Holder: "h/primary/100/x", Host: "h", PID: 100, AcquiredAt: now, ExpiresAt: now.Add(time.Minute)}); err != nil {
		t.Fatal(err)
	}
	url := serve(t, &Server{Backend: st, Keys: st, Log: zerolog.Nop(), Worker: "1", HeartbeatInterval: time.Second}, nil)
	r := do(t, "GET", url+"/v1/cluster", nil, adminKey(t, st))
	if r.status != 200 {
		t.Fatalf("/v1/cluster: %d %v", r.status, r.body)
	}
	var view struct {
		Workers []struct {
			Worker   string `json:"worker"`
			PID      int    `json:"pid"`
			Requests int64  `json:"requests"`
			Alive    bool   `json:"alive"`
			Stale    bool   `json:"stale"`
			AgeMS    int64  `json:"heartbeat_age_ms"`
		} `json:"workers"`
		Primaries []struct {
			PID int `json:"pid"`
		} `json:"primaries"`
		Lease struct {
			Epoch int64 `json:"epoch"`
			PID   int   `json:"pid"`
			Valid bool  `json:"valid"`
		} `json:"lease"`
	}
	b, _ := json.Marshal(r.body)
	if err := json.Unmarshal(b, &view); err != nil {
		t.Fatal(err)
	}
	if len(view.Workers) != 2 || view.Workers[0].PID != 101 || view.Workers[0].Requests != 5 || !view.Workers[0].Alive || view.Workers[1].Alive {
		t.Fatalf("workers %+v: want worker 1 alive with 5 requests, worker 2 (silent for 5 intervals) listed but not alive, worker 3 (silent for a minute) gone", view.Workers)
	}
	if w := view.Workers; w[0].Stale || w[0].AgeMS > 1000 || !w[1].Stale || w[1].AgeMS < 5000 {
		t.Fatalf("workers %+v: want worker 2, 5 intervals late, marked stale with its heartbeat's age", w)
	}
	if len(view.Primaries) != 1 || view.Primaries[0].PID != 100 {
		t.Fatalf("primaries %+v", view.Primaries)
	}
	if view.Lease.Epoch != 4 || view.Lease.PID != 100 || !view.Lease.Valid {
		t.Fatalf("lease %+v, want epoch 4 held by pid 100", view.Lease)
	}
}

func TestErrorsAreJSONAndNamed(t *testing.T) {
	db := testdb.Start(t)
	s := &Server{Backend: db.Connect(nil), Log: zerolog.Nop(), Worker: "1", MaxBodyBytes: 16}
	url := serve(t, s, func(r *httprouter.Router) {
		r.GET("/boom", func(http.ResponseWriter, *http.Request, httprouter.Params) { panic("boom") })
		r.POST("/echo", func(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
			if _, err := io.ReadAll(r.Body); err != nil {
				writeError(w, r, http.StatusRequestEntityTooLarge, "body_too_large", err.Error(), "body")
				return
			}
			writeJSON(w, 200, map[string]string{"ok": "yes"})
		})
	})

	r := do(t, "GET", url+"/nope", nil, nil)
	if e := errorOf(t, r); r.status != 404 || e["code"] != "not_found" {
		t.Fatalf("unknown path: %d %v", r.status, r.body)
	}
	r = do(t, "DELETE", url+"/healthz", nil, nil)
	if e := errorOf(t, r); r.status != 405 || e["code"] != "method_not_allowed" || r.header.Get("Allow") == "" {
		t.Fatalf("wrong method: %d %v allow=%q", r.status, r.body, r.header.Get("Allow"))
	}
	r = do(t, "GET", url+"/boom", nil, nil)
	if e := errorOf(t, r); r.status != 500 || !strings.Contains(e["message"].(string), "error id") {
		t.Fatalf("panic: %d %v", r.status, r.body)
	}
	// The server survived the panic.
	if r := do(t, "GET", url+"/healthz", nil, nil); r.status != 200 {
		t.Fatalf("/healthz after a panic: %d", r.status)
	}
	r = do(t, "POST", url+"/echo", strings.NewReader(strings.Repeat("x", 17)), nil)
	if e := errorOf(t, r); r.status != 413 || e["field"] != "body" {
		t.Fatalf("oversized body: %d %v", r.status, r.body)
	}
	// Without a length the limit still holds while reading.
	r = do(t, "POST", url+"/echo", io.MultiReader(strings.NewReader(strings.Repeat("x", 40))), nil)
	if e := errorOf(t, r); r.status != 413 || e["field"] != "body" {
		t.Fatalf("oversized chunked body: %d %v", r.status, r.body)
	}
	if r := do(t, "POST", url+"/echo", strings.NewReader("small"), nil); r.status != 200 {
		t.Fatalf("small body: %d %v", r.status, r.body)
	}
}

func TestRequestIDIsKeptOrMade(t *testing.T) {
	db := testdb.Start(t)
	url := serve(t, &Server{Backend: db.Connect(nil), Log: zerolog.Nop(), Worker: "2"}, nil)
	r := do(t, "GET", url+"/healthz", nil, map[string]string{"X-Request-Id": "trace-42"})
	if got := r.header.Get("X-Request-Id"); got != "trace-42" {
		t.Fatalf("caller's request id came back as %q", got)
	}
	r = do(t, "GET", url+"/healthz", nil, map[string]string{"X-Request-Id": "bad id\twith spaces"})
	if got := r.header.Get("X-Request-Id"); got == "" || strings.ContainsAny(got, " \t") {
		t.Fatalf("unsafe request id not replaced: %q", got)
	}
	if r.header.Get("X-App-Worker") != "2" || r.body["worker"] != "2" {
		t.Fatalf("worker header %q body %v", r.header.Get("X-App-Worker"), r.body)
	}
}
