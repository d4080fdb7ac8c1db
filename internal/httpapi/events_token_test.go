package httpapi

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/rs/zerolog"

	"app/internal/realtime"
	"app/internal/store"
	"app/internal/testutil"
)

// newEventToken asks for a browser token with the env's key on url.
func (e eventEnv) newEventToken(t *testing.T, url string) string {
	t.Helper()
	r := do(t, "POST", url+"/v1/events/token", nil, e.header)
	tok, _ := r.body["token"].(string)
	if r.status != 201 || !strings.HasPrefix(tok, "evt_") {
		t.Fatalf("POST /v1/events/token: %d %v", r.status, r.body)
	}
	return tok
}

// A token from one worker opens an SSE stream on the other and a WebSocket
// on itself, without an Authorization header; it opens nothing else.
func TestEventTokenOpensStreams(t *testing.T) {
	e := eventServers(t, nil)
	r := do(t, "POST", e.urls[0]+"/v1/events/token", nil, e.header)
	tok, _ := r.body["token"].(string)
	exp, err := time.Parse(time.RFC3339Nano, r.body["expires_at"].(string))
	if r.status != 201 || len(tok) != 56 || err != nil || time.Until(exp) < 9*time.Minute || time.Until(exp) > 10*time.Minute {
		t.Fatalf("POST /v1/events/token: %d %v (%v)", r.status, r.body, err)
	}

	sse, closeSSE := sseClient(t, e.urls[1]+"/v1/events?token="+tok, nil)
	defer closeSSE()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, strings.Replace(e.urls[0], "http", "ws", 1)+"/v1/ws?types=message.status&token="+tok, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	// Both streams are at the head: a stream takes its position before its
	// handshake is answered (openStream).
	e.append(t, 1, "message.status", 10)
	if got := collect(t, sse, 1, 10*time.Second); got[0].id != 1 || got[0].typ != "message.status" {
		t.Errorf("SSE with a token got %+v", got)
	}
	if _, b, err := ws.Read(ctx); err != nil || !strings.Contains(string(b), `"seq":1`) {
		t.Errorf("WebSocket with a token got %s (%v)", b, err)
	}
	// EventSource reconnecting by itself to a URL with last_event_id sends
	// a newer Last-Event-ID; that one counts.
	e.append(t, 2, "test.event", 10)
	again, closeAgain := sseClient(t, e.urls[0]+"/v1/events?last_event_id=1&token="+tok, map[string]string{"Last-Event-ID": "2"})
	defer closeAgain()
	if got := collect(t, again, 1, 10*time.Second); got[0].id != 3 {
		t.Errorf("reconnect with Last-Event-ID 2 to ?last_event_id=1 got %d first, want 3", got[0].id)
	}

	// Only the stream routes take it: not another route, not the token
	// route itself (a token cannot mint tokens).
	for _, c := range []struct{ method, path string }{
		{"GET", "/v1/messages/0123456789abcdef01234567"},
		{"POST", "/v1/events/token"},
	} {
		if r := do(t, c.method, e.urls[0]+c.path+"?token="+tok, nil, nil); r.status != 401 {
			t.Errorf("%s %s with a token: %d %v, want 401", c.method, c.path, r.status, r.body)
		}
	}
	// A token with an unknown parameter is refused like a key with one.
	if r := do(t, "GET", e.urls[0]+"/v1/events?token="+tok+"&since=1", nil, nil); r.status != 400 || errorOf(t, r)["field"] != "since" {
		t.Errorf("a token and an unknown parameter: %d %v, want 400 naming since", r.status, r.body)
	}
	if r := do(t, "POST", e.urls[0]+"/v1/events/token", nil, nil); r.status != 401 {
		t.Errorf("POST /v1/events/token without a key: %d %v", r.status, r.body)
	}
}

// Unknown, expired and revoked-key tokens are a 401 naming token; a stream
// opened with a token stays open after the token expires.
func TestEventTokenRefused(t *testing.T) {
	e := eventServers(t, nil)
	ctx := context.Background()
	keyID := store.KeyID(e.key)
	short, st := store.NewEventToken(keyID, 500*time.Millisecond)
	if err := e.st.CreateEventToken(ctx, st); err != nil {
		t.Fatal(err)
	}
	open, closeOpen := sseClient(t, e.urls[0]+"/v1/events?token="+short, nil)
	defer closeOpen()
	// Not a wait for a condition: the token expires by the clock, so wall
	// time must pass (polling for the refusal instead would spend the
	// address's failed lookups). Once the server refuses the token, the
	// stream it opened must go on.
	time.Sleep(time.Until(st.ExpiresAt))
	testutil.Eventually(t, 10*time.Second, "the expired token refused", func() (bool, string) {
		r := do(t, "GET", e.urls[0]+"/v1/ws?token="+short, nil, nil)
		return r.status == 401, fmt.Sprintf("%d %v", r.status, r.body)
	})
	e.append(t, 1, "test.event", 10)
	if got := collect(t, open, 1, 10*time.Second); got[0].id != 1 {
		t.Errorf("stream opened with a token that expired since got %+v", got)
	}

	// A key used on neither worker yet, so no cache hides its revocation.
	other, k := store.NewAPIKey("browser", []string{store.ScopeMessagesRead})
	if err := e.st.CreateAPIKey(ctx, k); err != nil {
		t.Fatal(err)
	}
	r := do(t, "POST", e.urls[0]+"/v1/events/token", nil, map[string]string{"Authorization": "Bearer " + other})
	revoked, _ := r.body["token"].(string)
	if r.status != 201 {
		t.Fatalf("POST /v1/events/token: %d %v", r.status, r.body)
	}
	if err := e.st.RevokeAPIKey(ctx, k.ID); err != nil {
		t.Fatal(err)
	}

	for name, c := range map[string]struct{ token, says string }{
		"expired":     {short, "expired at"},
		"revoked key": {revoked, "revoked"},
		"unknown":     {"evt_" + strings.Repeat("a", 52), "unknown"},
		"malformed":   {e.key, "not a token"},
		"empty":       {"", "not a token"},
	} {
		for _, path := range []string{"/v1/events", "/v1/ws"} {
			r := do(t, "GET", e.urls[1]+path+"?token="+c.token, nil, nil)
			if r.status != 401 || errorOf(t, r)["field"] != "token" || !strings.Contains(errorOf(t, r)["message"].(string), c.says) {
				t.Errorf("%s token on %s: %d %v, want 401 naming token (%q)", name, path, r.status, r.body, c.says)
			}
		}
	}

	// Pruning removes expired tokens only.
	live := e.newEventToken(t, e.urls[0])
	if n, err := e.st.PruneEventTokens(ctx, time.Now()); err != nil || n != 1 {
		t.Errorf("PruneEventTokens: %d, %v; want the one expired token", n, err)
	}
	if _, err := e.st.EventToken(ctx, store.EventTokenHash(live)); err != nil {
		t.Errorf("the live token was pruned: %v", err)
	}
}

// A token spends its key's rate limit.
func TestEventTokenSharesTheKeysRateLimit(t *testing.T) {
	e := eventServers(t, nil)
	hub := &realtime.Hub{Src: e.st, Log: zerolog.Nop()}
	url := serve(t, &Server{Backend: e.st, Keys: e.st, Log: zerolog.Nop(), Worker: "3", RateLimit: 0.001, RateBurst: 1,
		Realtime: &Realtime{Hub: hub, Src: e.st, Tokens: e.st}}, nil)
	tok := e.newEventToken(t, url) // the key's one request
	if r := do(t, "GET", url+"/v1/events?token="+tok, nil, nil); r.status != 429 {
		t.Errorf("stream with the token of a key out of requests: %d %v, want 429", r.status, r.body)
	}
}

// The access log, at its most verbose, names the stream route but never the
// token, of a stream or of a refused request.
func TestEventTokenNotLogged(t *testing.T) {
	e := eventServers(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	hub := &realtime.Hub{Src: e.st, Log: zerolog.Nop()}
	go hub.Run(ctx)
	var logged testutil.Buffer
	url := serve(t, &Server{Backend: e.st, Keys: e.st, Worker: "3", Log: zerolog.New(&logged).Level(zerolog.TraceLevel),
		Realtime: &Realtime{Hub: hub, Src: e.st, Tokens: e.st}}, nil)
	tok := e.newEventToken(t, url)
	_, closeSSE := sseClient(t, url+"/v1/events?chat=%2B491701234567&token="+tok, nil)
	closeSSE()
	_ = do(t, "GET", url+"/v1/ws?token="+tok+"x", nil, nil)
	_ = do(t, "GET", url+"/v1/nowhere?token="+tok, nil, nil)
	// The stream's line comes when the server sees the client gone.
	testutil.Eventually(t, 10*time.Second, "4 requests logged", func() (bool, string) {
		out := logged.String()
		return strings.Count(out, "Request served.") >= 4, "the log has:\n" + out
	})
	out := logged.String()
	if !strings.Contains(out, `"path":"/v1/events"`) || !strings.Contains(out, `"path":"/v1/nowhere"`) {
		t.Errorf("the access log does not name the paths:\n%s", out)
	}
	if strings.Contains(out, tok[4:20]) {
		t.Errorf("the token is in the log:\n%s", out)
	}
}
