package httpapi

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/rs/zerolog"

	"app/internal/primary"
	"app/internal/realtime"
	"app/internal/store"
	"app/internal/testdb"
)

type sseEvent struct {
	id   int64
	typ  string
	data map[string]any
}

// sseClient reads a stream's events into a channel until the body ends.
func sseClient(t *testing.T, url string, header map[string]string) (<-chan sseEvent, func()) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != 200 || res.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("GET %s: %d %s", url, res.StatusCode, res.Header.Get("Content-Type"))
	}
	ch := make(chan sseEvent, 10000)
	go func() {
		defer close(ch)
		sc := bufio.NewScanner(res.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		var ev sseEvent
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, "id: "):
				ev.id, _ = strconv.ParseInt(line[4:], 10, 64)
			case strings.HasPrefix(line, "event: "):
				ev.typ = line[7:]
			case strings.HasPrefix(line, "data: "):
				var body struct{ Data map[string]any }
				_ = json.Unmarshal([]byte(line[6:]), &body)
				ev.data = body.Data
			case line == "" && ev.typ != "":
				ch <- ev
				ev = sseEvent{}
			}
		}
	}()
	return ch, func() { res.Body.Close() }
}

func collect(t *testing.T, ch <-chan sseEvent, n int, within time.Duration) []sseEvent {
	t.Helper()
	var out []sseEvent
	deadline := time.After(within)
	for len(out) < n {
		select {
		case e, ok := <-ch:
			if !ok {
				t.Fatalf("stream ended after %d of %d events", len(out), n)
			}
			out = append(out, e)
		case <-deadline:
			t.Fatalf("%d of %d events within %s", len(out), n, within)
		}
	}
	return out
}

type eventEnv struct {
	st     store.Store
	log    *primary.EventLog
	urls   []string
	header map[string]string
	key    string
}

func eventServers(t *testing.T, rt func(*Realtime)) eventEnv {
	t.Helper()
	db := testdb.Start(t)
	st := db.Connect(nil)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	log := primary.NewEventLog(st, zerolog.Nop())
	if !log.Start(ctx, 1) {
		t.Fatal("event log did not start")
	}
	key, k := store.NewAPIKey("events", []string{store.ScopeMessagesRead})
	if err := st.CreateAPIKey(ctx, k); err != nil {
		t.Fatal(err)
	}
	env := eventEnv{st: st, log: log, header: map[string]string{"Authorization": "Bearer " + key}, key: key}
	for w := range 2 {
		hub := &realtime.Hub{Src: st, Log: zerolog.Nop()}
		go hub.Run(ctx)
		r := &Realtime{Hub: hub, Src: st, Heartbeat: 200 * time.Millisecond, Tokens: st}
		if rt != nil {
			rt(r)
		}
		env.urls = append(env.urls, serve(t, &Server{Backend: st, Keys: st, Messages: st, Realtime: r, Log: zerolog.Nop(), Worker: fmt.Sprint(w + 1)}, nil))
	}
	return env
}

func (e eventEnv) append(t *testing.T, n int, typ string, pad int) {
	t.Helper()
	for i := range n {
		if err := e.log.Append(context.Background(), typ, map[string]any{"n": i, "chat": "491701234567@s.whatsapp.net", "pad": strings.Repeat("x", pad)}); err != nil {
			t.Fatal(err)
		}
	}
}

// An SSE client on one worker and a WebSocket client on the other get the
// same events in order; a reconnect with Last-Event-ID gets exactly what
// it missed; filters apply.
func TestEventsOverSSEAndWebSocket(t *testing.T) {
	e := eventServers(t, nil)
	sse, closeSSE := sseClient(t, e.urls[0]+"/v1/events", e.header)
	filtered, closeFiltered := sseClient(t, e.urls[0]+"/v1/events?types=message.status", e.header)
	defer closeFiltered()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, strings.Replace(e.urls[1], "http", "ws", 1)+"/v1/ws",
		&websocket.DialOptions{HTTPHeader: http.Header{"Authorization": {"Bearer " + e.key}}})
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	// All three streams are at the head: a stream takes its position
	// before its handshake is answered (openStream).

	e.append(t, 20, "test.event", 10)
	got := collect(t, sse, 10, 10*time.Second)
	closeSSE() // gone after 10
	for i, ev := range got {
		if ev.id != int64(i+1) || ev.typ != "test.event" || ev.data["n"] != float64(i) {
			t.Fatalf("SSE event %d: %+v", i, ev)
		}
	}
	for i := range 20 {
		_, b, err := ws.Read(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var m struct {
			Seq  int64
			Type string
			Data map[string]any
		}
		if err := json.Unmarshal(b, &m); err != nil || m.Seq != int64(i+1) || m.Type != "test.event" || m.Data["n"] != float64(i) {
			t.Fatalf("WebSocket frame %d: %s (%v)", i, b, err)
		}
	}
	// Back with Last-Event-ID 10: exactly 11..20, then what comes next.
	again, closeAgain := sseClient(t, e.urls[1]+"/v1/events", with(e.header, "Last-Event-ID", "10"))
	defer closeAgain()
	e.append(t, 1, "test.event", 10)
	resumed := collect(t, again, 11, 10*time.Second)
	for i, ev := range resumed {
		if ev.id != int64(11+i) {
			t.Fatalf("resumed event %d has seq %d, want %d", i, ev.id, 11+i)
		}
	}
	e.append(t, 1, "message.status", 10)
	if f := collect(t, filtered, 1, 5*time.Second); f[0].typ != "message.status" || f[0].id != 22 {
		t.Errorf("filtered stream got %+v, want only the message.status event (22)", f)
	}

	// Bad positions and expired ones.
	if r := do(t, "GET", e.urls[0]+"/v1/events", nil, with(e.header, "Last-Event-ID", "soon")); r.status != 400 || errorOf(t, r)["field"] != "Last-Event-ID" {
		t.Errorf("bad Last-Event-ID: %d %v", r.status, r.body)
	}
	if _, err := e.st.PruneEvents(context.Background(), time.Now().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if r := do(t, "GET", e.urls[0]+"/v1/events", nil, with(e.header, "Last-Event-ID", "5")); r.status != 410 || errorOf(t, r)["code"] != "position_expired" {
		t.Errorf("expired position: %d %v", r.status, r.body)
	}
}

// A client that stops reading is cut off; the others get every event on
// time meanwhile.
func TestSlowClientIsCutOff(t *testing.T) {
	e := eventServers(t, func(r *Realtime) { r.WriteTimeout = 500 * time.Millisecond })
	fast, closeFast := sseClient(t, e.urls[0]+"/v1/events", e.header)
	defer closeFast()
	// The slow client sends its request and never reads.
	addr := strings.TrimPrefix(e.urls[0], "http://")
	// Its receive buffer is small, so the stream fills it and the server's
	// send buffer, whatever the machine's TCP autotuning allows.
	d := net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		if err := c.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 16<<10)
		}); err != nil {
			return err
		}
		return serr
	}}
	slow, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	fmt.Fprintf(slow, "GET /v1/events HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\n\r\n", addr, e.key)
	// Its stream is open (the server has its position) once the first
	// bytes come; after that it reads nothing more.
	_ = slow.SetReadDeadline(time.Now().Add(10 * time.Second))
	first := make([]byte, 512)
	if k, err := slow.Read(first); err != nil || !strings.Contains(string(first[:k]), "200 OK") {
		t.Fatalf("slow client's stream did not open: %q, %v", first[:k], err)
	}

	start := time.Now()
	const n = 3000
	e.append(t, n, "bulk", 4000) // ~12 MB: more than the socket buffers hold
	got := collect(t, fast, n, 60*time.Second)
	if got[n-1].id != n {
		t.Errorf("fast client ended at %d", got[n-1].id)
	}
	t.Logf("fast client: %d events of 4 KB in %s while the slow one stalled", n, time.Since(start).Round(time.Millisecond))
	// The server hung up on the slow client: draining its socket ends.
	_ = slow.SetReadDeadline(time.Now().Add(20 * time.Second))
	buf := make([]byte, 1<<20)
	for {
		if _, err := slow.Read(buf); err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				t.Fatal("the slow client was not cut off")
			}
			break
		}
	}
}

// A filter that can match nothing (an unknown event type, a chat that is
// not one) is a 400 naming the parameter before the stream opens, on SSE
// and WebSocket alike, as GET /v1/messages?chat= is; a chat given as a
// number matches that number's events.
func TestStreamFiltersAreCheckedBeforeTheStreamOpens(t *testing.T) {
	e := eventServers(t, nil)
	for _, c := range []struct{ query, field string }{
		{"types=message.incomming", "types"},
		{"types=message.status,message.sent", "types"},
		{"chat=abc", "chat"},
		{"chat=491701234567", "chat"},
		{"chat=bob@example.com", "chat"},
	} {
		r := do(t, "GET", e.urls[0]+"/v1/events?"+c.query, nil, e.header)
		if got := errorOf(t, r); r.status != 400 || got["field"] != c.field {
			t.Errorf("GET /v1/events?%s: %d %v, want 400 naming %s", c.query, r.status, got, c.field)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		ws, res, err := websocket.Dial(ctx, strings.Replace(e.urls[1], "http", "ws", 1)+"/v1/ws?"+c.query,
			&websocket.DialOptions{HTTPHeader: http.Header{"Authorization": {"Bearer " + e.key}}})
		cancel()
		if err == nil {
			ws.CloseNow()
			t.Errorf("GET /v1/ws?%s opened a WebSocket, want 400 naming %s", c.query, c.field)
			continue
		}
		var body struct{ Error struct{ Field string } }
		if res == nil || res.StatusCode != 400 || json.NewDecoder(res.Body).Decode(&body) != nil || body.Error.Field != c.field {
			t.Errorf("GET /v1/ws?%s: %v (%v), want 400 naming %s", c.query, res, err, c.field)
		}
	}

	// A number is the chat it normalises to: that chat's events, no other.
	byNumber, closeByNumber := sseClient(t, e.urls[0]+"/v1/events?chat=%2B49+170+1234567&types=message.status,", e.header)
	defer closeByNumber() // at the log's head once its headers came
	for _, ev := range []struct{ typ, chat string }{
		{"message.status", "491709999999@s.whatsapp.net"}, {"message.incoming", "491701234567@s.whatsapp.net"},
		{"message.status", "491701234567@s.whatsapp.net"},
	} {
		if err := e.log.Append(context.Background(), ev.typ, map[string]any{"chat": ev.chat}); err != nil {
			t.Fatal(err)
		}
	}
	if got := collect(t, byNumber, 1, 10*time.Second); got[0].id != 3 || got[0].typ != "message.status" {
		t.Errorf("chat=+49 170 1234567 got %+v first, want event 3 (message.status for 491701234567@s.whatsapp.net)", got)
	}
}
