package httpapi

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"app/internal/realtime"
	"app/internal/store"
	"app/internal/testdb"
)

// keyEnv is an API on the test database with keys of each kind.
type keyEnv struct {
	st                   store.Store
	url                  string
	reader, writer, root string // Authorization values
	lookups              *countingKeys
}

// countingKeys counts the key lookups that reach the store.
type countingKeys struct {
	KeyBackend
	n atomic.Int64
}

func (c *countingKeys) APIKey(ctx context.Context, id string) (store.APIKey, error) {
	c.n.Add(1)
	return c.KeyBackend.APIKey(ctx, id)
}

func newKeyEnv(t *testing.T, configure func(*Server)) keyEnv {
	t.Helper()
	db := testdb.Start(t)
	st := db.Connect(nil)
	e := keyEnv{st: st, lookups: &countingKeys{KeyBackend: st}}
	mk := func(scopes ...string) string {
		key, k := store.NewAPIKey("test", scopes)
		if err := st.CreateAPIKey(context.Background(), k); err != nil {
			t.Fatal(err)
		}
		return "Bearer " + key
	}
	e.reader, e.writer, e.root = mk(store.ScopeMessagesRead), mk(store.ScopeMessagesWrite), mk(store.ScopeAdmin)
	s := &Server{Backend: st, Messages: st, Keys: e.lookups, Log: zerolog.Nop(), Worker: "1", MaxBodyBytes: 1 << 20,
		HeartbeatInterval: time.Second}
	if configure != nil {
		configure(s)
	}
	e.url = serve(t, s, nil)
	return e
}

// rawConn is one keep-alive connection written to by hand.
type rawConn struct {
	net.Conn
	br *bufio.Reader
}

func dialRaw(t *testing.T, base string) rawConn {
	t.Helper()
	u, _ := url.Parse(base)
	c, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return rawConn{c, bufio.NewReader(c)}
}

// answer reads one response within d, or fails the test.
func (c rawConn) answer(t *testing.T, d time.Duration) (*http.Response, string) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(d))
	res, err := http.ReadResponse(c.br, nil)
	if err != nil {
		t.Fatalf("no answer within %s: %v", d, err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	return res, string(b)
}

// closedWithin reports whether the server closes the connection within d.
func (c rawConn) closedWithin(d time.Duration) bool {
	_ = c.SetReadDeadline(time.Now().Add(d))
	_, err := c.br.ReadByte()
	return err == io.EOF
}

// A request that will be refused (no key, an unknown one, a key without
// the scope) is answered at once while its body trickles in, and its
// connection closed: net/http would wait for the whole body first, up to
// the 60 s read timeout, unanswered.
func TestRefusedRequestIsAnsweredBeforeItsBody(t *testing.T) {
	e := newKeyEnv(t, nil)
	unknown, _ := store.NewAPIKey("never stored", nil)
	for _, c := range []struct{ name, auth string }{
		{"no key", ""}, {"unknown key", "Bearer " + unknown}, {"key without the scope", e.reader},
	} {
		t.Run(c.name, func(t *testing.T) {
			conn := dialRaw(t, e.url)
			head := "POST /v1/messages HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n"
			if c.auth != "" {
				head += "Authorization: " + c.auth + "\r\n"
			}
			if _, err := conn.Write([]byte(head + "\r\n{\"to\":")); err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			res, body := conn.answer(t, 5*time.Second)
			if res.StatusCode != 401 && res.StatusCode != 403 || !res.Close || !strings.Contains(body, `"error"`) {
				t.Errorf("answer %d (close %v) %s; want 401 or 403, JSON, Connection: close", res.StatusCode, res.Close, body)
			}
			if !conn.closedWithin(2 * time.Second) {
				t.Error("the connection stayed open after the refusal")
			}
			t.Logf("%s: %d after %s with 6 of 100 body bytes sent", c.name, res.StatusCode, time.Since(start).Round(time.Millisecond))
		})
	}
	// A refusal after the handler read the body keeps the connection.
	conn := dialRaw(t, e.url)
	body := `{"to":"abc","text":"x"}`
	fmt.Fprintf(conn, "POST /v1/messages HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nAuthorization: %s\r\nContent-Length: %d\r\n\r\n%s", e.writer, len(body), body)
	if res, b := conn.answer(t, 5*time.Second); res.StatusCode != 400 || res.Close {
		t.Errorf("an invalid message read whole: %d (close %v) %s; want 400 on a kept connection", res.StatusCode, res.Close, b)
	}
}

// A query string that cannot be read whole is refused, naming the query:
// net/url reads nothing of one with over 10,000 parameters, so its filter
// was dropped and the list came unfiltered.
func TestQueryThatDoesNotParseIsRefused(t *testing.T) {
	e := newKeyEnv(t, nil)
	h := map[string]string{"Authorization": e.reader}
	many := "status=bogus" + strings.Repeat("&x=1", maxQueryParams)
	for name, q := range map[string]string{"10,001 parameters": many, "a bad escape": "status=%zz", "a semicolon": "status=sent;limit=1"} {
		r := do(t, "GET", e.url+"/v1/messages?"+q, nil, h)
		if er := errorOf(t, r); r.status != 400 || er["field"] != "query" {
			t.Errorf("%s: %d %v; want 400 naming the query", name, r.status, r.body)
		}
	}
	// 10,000 are read: the handler names the one it does not know.
	if r := do(t, "GET", e.url+"/v1/messages?status=sent"+strings.Repeat("&x=1", maxQueryParams-1), nil, h); errorOf(t, r)["field"] != "x" {
		t.Errorf("10,000 parameters: %d %v; want the handler's 400 naming x", r.status, r.body)
	}
}

// A request with both Content-Length and Transfer-Encoding is answered and
// its connection closed (RFC 9112, 6.3): a proxy in front may have read it
// by its length and sent what follows as another request.
func TestLengthAndChunkedTogetherCloseTheConnection(t *testing.T) {
	e := newKeyEnv(t, nil)
	conn := dialRaw(t, e.url)
	fmt.Fprint(conn, "GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
	res, _ := conn.answer(t, 5*time.Second)
	if res.StatusCode != 200 || !res.Close {
		t.Errorf("answer %d, close %v; want 200 with Connection: close", res.StatusCode, res.Close)
	}
	if !conn.closedWithin(2 * time.Second) {
		t.Error("the connection stayed open")
	}
	// A request with a length alone keeps its connection.
	conn = dialRaw(t, e.url)
	fmt.Fprint(conn, "GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
	if res, _ := conn.answer(t, 5*time.Second); res.Close {
		t.Error("a plain request's connection was closed")
	}
}

// Random well-formed key ids cost the store a lookup each only up to a
// burst per client address; beyond it they are answered 429 with
// Retry-After, without a lookup, while a key this worker knows keeps
// working from the same address. A wrong key sent again is answered from
// the cache.
func TestUnknownKeyIDsCostBoundedLookups(t *testing.T) {
	var now atomic.Int64
	now.Store(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	e := newKeyEnv(t, func(s *Server) { s.now = func() time.Time { return time.Unix(0, now.Load()) } })
	if r := do(t, "GET", e.url+"/v1/messages?limit=1", nil, map[string]string{"Authorization": e.reader}); r.status != 200 {
		t.Fatalf("the known key: %d %v", r.status, r.body)
	}
	wrong, _ := store.NewAPIKey("never stored", nil)
	for range 2 {
		if r := do(t, "GET", e.url+"/v1/messages", nil, map[string]string{"Authorization": "Bearer " + wrong}); r.status != 401 {
			t.Fatalf("a wrong key: %d %v", r.status, r.body)
		}
	}
	if n := e.lookups.n.Load(); n != 2 {
		t.Fatalf("%d lookups for a known key and one wrong key sent twice; want 2 (the second is remembered)", n)
	}

	e.lookups.n.Store(0)
	const sprayed = 3000
	tr := &http.Transport{MaxIdleConnsPerHost: 4}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	var refused, limited, retryAfter atomic.Int64
	start := time.Now()
	var wg sync.WaitGroup
	ids := make(chan string, sprayed)
	for range sprayed {
		raw, _ := store.NewAPIKey("random", nil)
		ids <- raw
	}
	close(ids)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for raw := range ids {
				req, _ := http.NewRequest("GET", e.url+"/v1/messages", nil)
				req.Header.Set("Authorization", "Bearer "+raw)
				res, err := client.Do(req)
				if err != nil {
					t.Error(err)
					return
				}
				_, _ = io.Copy(io.Discard, res.Body)
				res.Body.Close()
				switch res.StatusCode {
				case 401:
					refused.Add(1)
				case 429:
					limited.Add(1)
					if res.Header.Get("Retry-After") == "1" {
						retryAfter.Add(1)
					}
				}
			}
		}()
	}
	wg.Wait()
	took := time.Since(start)
	t.Logf("%d random key ids in %s: %d looked up (401), %d refused at once (429)", sprayed, took.Round(time.Millisecond), refused.Load(), limited.Load())
	// The wrong key above spent one lookup of the burst already.
	const looked = failedAuthBurst - 1
	if n := e.lookups.n.Load(); n != looked || refused.Load() != looked || limited.Load() != sprayed-looked || retryAfter.Load() != limited.Load() {
		t.Errorf("%d lookups, %d answered 401, %d 429 (%d with Retry-After: 1); want %d, %d, %d, all",
			n, refused.Load(), limited.Load(), retryAfter.Load(), looked, looked, sprayed-looked)
	}
	if r := do(t, "GET", e.url+"/v1/messages?limit=1", nil, map[string]string{"Authorization": e.reader}); r.status != 200 {
		t.Errorf("the known key from the spraying address: %d %v; want 200", r.status, r.body)
	}
	// A second later the address may have one more unknown id looked up
	// (the limiter's rate), and the next waits again.
	now.Add(int64(time.Second / failedAuthRate))
	statuses := []int{}
	for range 2 {
		raw, _ := store.NewAPIKey("random", nil)
		statuses = append(statuses, do(t, "GET", e.url+"/v1/messages", nil, map[string]string{"Authorization": "Bearer " + raw}).status)
	}
	if statuses[0] != 401 || statuses[1] != 429 {
		t.Errorf("after waiting for one lookup: %v; want [401 429]", statuses)
	}
}

// Every answer, of a route or not, says X-Content-Type-Options: nosniff.
func TestEveryAnswerSaysNosniff(t *testing.T) {
	e := newKeyEnv(t, nil)
	for _, c := range []struct{ method, path, auth string }{
		{"GET", "/healthz", ""}, {"GET", "/v1/openapi.json", ""}, {"GET", "/nowhere", ""}, {"DELETE", "/healthz", ""},
		{"GET", "/v1/messages", ""}, {"GET", "/v1/messages?limit=1", e.reader}, {"POST", "/v1/messages", e.reader},
	} {
		r := do(t, c.method, e.url+c.path, nil, map[string]string{"Authorization": c.auth})
		if got := r.header.Get("X-Content-Type-Options"); got != "nosniff" {
			t.Errorf("%s %s (%d): X-Content-Type-Options %q; want nosniff", c.method, c.path, r.status, got)
		}
	}
}

// /v1/cluster (hosts, pids, versions) answers only an admin key.
func TestClusterViewNeedsAnAdminKey(t *testing.T) {
	e := newKeyEnv(t, nil)
	for _, c := range []struct {
		auth string
		want int
	}{{"", 401}, {e.reader, 403}, {e.writer, 403}, {e.root, 200}} {
		if r := do(t, "GET", e.url+"/v1/cluster", nil, map[string]string{"Authorization": c.auth}); r.status != c.want {
			t.Errorf("/v1/cluster with %q: %d %v; want %d", c.auth, r.status, r.body, c.want)
		}
	}
	for _, path := range []string{"/healthz", "/readyz"} {
		if r := do(t, "GET", e.url+path, nil, nil); r.status != 200 {
			t.Errorf("%s without a key: %d; want 200", path, r.status)
		}
	}
}

// A 429's RateLimit-Reset and Retry-After name the same moment: the next
// token. (Before: Retry-After 1 with RateLimit-Reset 2, the time to a full
// bucket.) Explicit times, no sleeping.
func TestRateLimitHeadersAgree(t *testing.T) {
	var now atomic.Int64
	now.Store(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	e := newKeyEnv(t, func(s *Server) {
		s.RateLimit, s.RateBurst = 1, 3
		s.now = func() time.Time { return time.Unix(0, now.Load()) }
	})
	h := map[string]string{"Authorization": e.reader}
	type got struct{ status, remaining, reset, retry string }
	get := func() got {
		r := do(t, "GET", e.url+"/v1/messages?limit=1", nil, h)
		return got{fmt.Sprint(r.status), r.header.Get("RateLimit-Remaining"), r.header.Get("RateLimit-Reset"), r.header.Get("Retry-After")}
	}
	want := []got{{"200", "2", "1", ""}, {"200", "1", "2", ""}, {"200", "0", "3", ""}, {"429", "0", "1", "1"}}
	for i, w := range want {
		if g := get(); g != w {
			t.Errorf("request %d at one instant: %+v; want %+v", i+1, g, w)
		}
	}
	now.Add(int64(1500 * time.Millisecond)) // 1.5 tokens back
	if g := get(); g != (got{"200", "0", "3", ""}) {
		t.Errorf("1.5 s later: %+v; want a 200 with 0.5 tokens left, the bucket full in 3 s", g)
	}
	if g := get(); g != (got{"429", "0", "1", "1"}) {
		t.Errorf("then: %+v; want a 429 naming 1 s in both headers (0.5 s to the next token, rounded up)", g)
	}
}

// HEAD answers on every GET route (load balancers probe /healthz with it)
// with GET's status and headers, and no body.
func TestHeadAnswersOnEveryGetRoute(t *testing.T) {
	db := testdb.Start(t)
	st := db.Connect(nil)
	key, k := store.NewAPIKey("head", []string{store.ScopeAdmin})
	if err := st.CreateAPIKey(context.Background(), k); err != nil {
		t.Fatal(err)
	}
	hub := &realtime.Hub{Src: st, Log: zerolog.Nop()}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go hub.Run(ctx)
	s := &Server{Backend: st, Sessions: st, Messages: st, Chats: st, Media: st, Schedules: st, Webhooks: st, Keys: st, Sandbox: true,
		MetricsGatherer: prometheus.NewRegistry(), Log: zerolog.Nop(), Worker: "1", HeartbeatInterval: time.Second,
		Realtime: &Realtime{Hub: hub, Src: st, Tokens: st}, Console: http.NotFoundHandler()}
	base := serve(t, s, nil)
	client := &http.Client{Timeout: 10 * time.Second}
	routes := 0
	for _, route := range s.routeList {
		method, path, _ := strings.Cut(route, " ")
		if method != "GET" {
			continue
		}
		routes++
		var parts []string
		for _, p := range strings.Split(path, "/") {
			if strings.HasPrefix(p, ":") {
				p = "x"
			}
			parts = append(parts, p)
		}
		u := base + strings.Join(parts, "/")
		answer := func(method string) (*http.Response, int) {
			t.Helper()
			req, _ := http.NewRequest(method, u, nil)
			req.Header.Set("Authorization", "Bearer "+key)
			res, err := client.Do(req)
			if err != nil {
				t.Fatalf("%s %s: %v", method, u, err)
			}
			defer res.Body.Close()
			if strings.HasPrefix(res.Header.Get("Content-Type"), "text/event-stream") {
				return res, -1 // a stream: its headers are the answer
			}
			b, _ := io.ReadAll(res.Body)
			return res, len(b)
		}
		g, gotBody := answer("GET")
		h, headBody := answer("HEAD")
		if h.StatusCode != g.StatusCode || h.Header.Get("Content-Type") != g.Header.Get("Content-Type") || headBody > 0 {
			t.Errorf("HEAD %s: %d %q with %d body bytes; GET: %d %q", path, h.StatusCode, h.Header.Get("Content-Type"), headBody,
				g.StatusCode, g.Header.Get("Content-Type"))
		}
		if gotBody >= 0 && g.ContentLength >= 0 && h.ContentLength != g.ContentLength {
			t.Errorf("HEAD %s: Content-Length %d; GET's is %d", path, h.ContentLength, g.ContentLength)
		}
	}
	if routes < 20 {
		t.Errorf("only %d GET routes checked", routes)
	}
}
