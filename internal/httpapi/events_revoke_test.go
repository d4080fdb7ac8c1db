package httpapi

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/rs/zerolog"

	"app/internal/primary"
	"app/internal/realtime"
	"app/internal/store"
	"app/internal/testdb"
)

// Streams opened before `app keys revoke` end within the key cache time:
// SSE with an error event, WebSocket with a policy-violation close, also a
// stream opened with a browser token of the key; another key's stream
// carries on and gets the next event.
func TestRevokedKeyEndsItsOpenStreams(t *testing.T) {
	const ttl = 500 * time.Millisecond
	db := testdb.Start(t)
	st := db.Connect(nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	log := primary.NewEventLog(st, zerolog.Nop())
	if !log.Start(ctx, 1) {
		t.Fatal("event log did not start")
	}
	hub := &realtime.Hub{Src: st, Log: zerolog.Nop()}
	go hub.Run(ctx)
	url := serve(t, &Server{Backend: st, Keys: st, Realtime: &Realtime{Hub: hub, Src: st, Heartbeat: time.Hour, Tokens: st},
		Log: zerolog.Nop(), Worker: "1", KeyCacheTTL: ttl}, nil)
	mk := func(name string) (map[string]string, string) {
		key, k := store.NewAPIKey(name, []string{store.ScopeMessagesRead})
		if err := st.CreateAPIKey(ctx, k); err != nil {
			t.Fatal(err)
		}
		return map[string]string{"Authorization": "Bearer " + key}, k.ID
	}
	doomed, doomedID := mk("doomed")
	kept, _ := mk("kept")
	env := eventEnv{header: doomed}
	token := env.newEventToken(t, url)

	sse, closeSSE := sseClient(t, url+"/v1/events", doomed)
	defer closeSSE()
	byToken, closeByToken := sseClient(t, url+"/v1/events?token="+token, nil)
	defer closeByToken()
	other, closeOther := sseClient(t, url+"/v1/events", kept)
	defer closeOther()
	ws, _, err := websocket.Dial(ctx, strings.Replace(url, "http", "ws", 1)+"/v1/ws",
		&websocket.DialOptions{HTTPHeader: http.Header{"Authorization": {doomed["Authorization"]}}})
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	// Every stream is live: each gets an event appended now.
	if err := log.Append(ctx, "test.event", map[string]any{"n": 1}); err != nil {
		t.Fatal(err)
	}
	for _, ch := range []<-chan sseEvent{sse, byToken, other} {
		collect(t, ch, 1, 10*time.Second)
	}
	if _, _, err := ws.Read(ctx); err != nil {
		t.Fatal(err)
	}

	if err := st.RevokeAPIKey(ctx, doomedID); err != nil {
		t.Fatal(err)
	}
	revoked := time.Now()
	for name, ch := range map[string]<-chan sseEvent{"SSE": sse, "SSE by token": byToken} {
		select {
		case ev, ok := <-ch:
			if !ok || ev.typ != "error" {
				t.Fatalf("%s of the revoked key: %+v (open %v), want an error event", name, ev, ok)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%s of the revoked key still open 10 s after the revocation", name)
		}
		if _, ok := <-ch; ok {
			t.Fatalf("%s of the revoked key goes on after its error event", name)
		}
	}
	_, _, err = ws.Read(ctx)
	if cs := websocket.CloseStatus(err); cs != websocket.StatusPolicyViolation {
		t.Fatalf("WebSocket of the revoked key: %v (close status %d), want a policy-violation close", err, cs)
	}
	if d := time.Since(revoked); d > ttl+time.Second {
		t.Errorf("the revoked key's streams ended %s after the revocation; want within the %s cache time and a check", d, ttl)
	}
	if err := log.Append(ctx, "test.event", map[string]any{"n": 2}); err != nil {
		t.Fatal(err)
	}
	if got := collect(t, other, 1, 10*time.Second); got[0].data["n"] != float64(2) {
		t.Errorf("the other key's stream got %+v, want the next event", got)
	}
	if r := do(t, "GET", url+"/v1/events?token="+token, nil, nil); r.status != 401 {
		t.Errorf("a new stream with the revoked key's token: %d %v, want 401", r.status, r.body)
	}
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		t.Fatal("test ran out of time")
	}
}
