package httpapi

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/coder/websocket"
	"github.com/julienschmidt/httprouter"

	"app/internal/realtime"
	"app/internal/store"
	"app/internal/whatsapp"
)

// Realtime is what the event routes need: the worker's hub and the log.
type Realtime struct {
	Hub *realtime.Hub
	Src realtime.Source
	// A client that falls behind the hub's ring (the events it needs are
	// no longer in memory) is cut off with a clear reason; so is one that
	// takes longer than WriteTimeout to take a write. Heartbeat is how
	// often an idle stream says it is alive (default 15s).
	Heartbeat    time.Duration
	WriteTimeout time.Duration // a client that takes longer to take a write is cut off (default 10s)
	// Done, when closed, ends every stream (the worker is stopping: the
	// clients reconnect to another worker with Last-Event-ID).
	Done <-chan struct{}
	// Tokens keeps browser tokens (POST /v1/events/token); nil leaves them
	// out.
	Tokens EventTokens
}

// EventTokens keeps browser tokens for the stream routes.
type EventTokens interface {
	CreateEventToken(ctx context.Context, t store.EventToken) error
	EventToken(ctx context.Context, hash string) (store.EventToken, error)
}

// EventTokenTTL is how long a browser token opens streams. An open stream
// is not cut when its token expires; the browser fetches a new one to
// reconnect. Short, because a URL's query ends up in proxy logs and browser
// histories where a header does not.
const EventTokenTTL = 10 * time.Minute

func (s *Server) eventRoutes(r routes) {
	r.handle("GET", "/v1/events", s.streamAuth(store.ScopeMessagesRead, s.sse))
	r.handle("GET", "/v1/ws", s.streamAuth(store.ScopeMessagesRead, s.ws))
	if s.Realtime.Tokens != nil {
		r.handle("POST", "/v1/events/token", s.auth(store.ScopeMessagesRead, s.eventToken))
	}
}

// eventToken hands the calling key a browser token for the stream routes.
func (s *Server) eventToken(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	k, _ := KeyOf(r)
	token, t := store.NewEventToken(k.ID, EventTokenTTL)
	ctx, cancel := dbContext(r)
	defer cancel()
	_, again, err := s.insertSettled(ctx, r, func(ctx context.Context) error { return s.Realtime.Tokens.CreateEventToken(ctx, t) })
	if errors.Is(err, store.ErrExists) && again {
		err = nil // the first try stored it
	}
	if err != nil {
		s.writeFailed(w, r, err, "", "")
		return
	}
	writeJSON(w, http.StatusCreated, struct {
		Token     string    `json:"token"`
		ExpiresAt time.Time `json:"expires_at"`
	}{token, t.ExpiresAt.UTC()})
}

// streamAuth is auth for the stream routes, which also take a browser token
// as ?token= in place of the Authorization header (the token is used when
// both come). A token stands for its key: the key's revocation, scope and
// rate limit apply as if the key had been sent.
func (s *Server) streamAuth(scope string, h httprouter.Handle) httprouter.Handle {
	withKey := s.auth(scope, h)
	return func(w http.ResponseWriter, r *http.Request, ps httprouter.Params) {
		q := r.URL.Query()
		if !q.Has("token") || s.Realtime.Tokens == nil {
			withKey(w, r, ps)
			return
		}
		refuse := func(msg string) {
			writeError(w, r, http.StatusUnauthorized, "unauthorized", msg, "token")
		}
		raw := q.Get("token")
		if !strings.HasPrefix(raw, "evt_") || len(raw) != 56 {
			refuse("token is not a token of this server; get one with POST /v1/events/token")
			return
		}
		ctx, cancel := dbContext(r)
		defer cancel()
		// A token costs a lookup as a key id does: the same bound.
		spent := s.reserveLookup(r)
		if spent == nil {
			s.tooManyUnknownKeys(w, r)
			return
		}
		t, err := s.Realtime.Tokens.EventToken(ctx, store.EventTokenHash(raw))
		if !errors.Is(err, store.ErrNotFound) {
			spent.CancelAt(s.clock())
		}
		if errors.Is(err, store.ErrNotFound) {
			refuse("token is unknown or long expired; get a new one with POST /v1/events/token")
			return
		}
		if err != nil {
			s.storeFailed(w, r, err)
			return
		}
		if !time.Now().Before(t.ExpiresAt) {
			refuse("token expired at " + t.ExpiresAt.UTC().Format(time.RFC3339) + "; get a new one with POST /v1/events/token")
			return
		}
		k, found, err := s.key(ctx, t.KeyID, nil)
		if err != nil {
			s.storeFailed(w, r, err)
			return
		}
		if !found || !k.RevokedAt.IsZero() {
			refuse("token was made with the API key " + t.KeyID + ", which is unknown or revoked")
			return
		}
		if !k.Has(scope) {
			writeError(w, r, http.StatusForbidden, "forbidden", "the API key "+k.ID+" behind the token lacks the scope "+scope, "token")
			return
		}
		if !s.allow(w, r, k.ID) {
			return
		}
		cancel()
		h(w, r.WithContext(context.WithValue(r.Context(), keyCtx{}, k)), ps)
	}
}

// stream is one client's view: its cursor and filters.
type stream struct {
	cursor int64
	live   bool // reading from the ring (not catching up from the database)
	types  map[string]bool
	chat   string
}

func (st *stream) wants(e realtime.Event) bool {
	if len(st.types) > 0 && !st.types[e.Type] {
		return false
	}
	return st.chat == "" || e.Chat == st.chat
}

// openStream reads the position and filters; on failure it has answered.
func (s *Server) openStream(w http.ResponseWriter, r *http.Request) (*stream, bool) {
	q := r.URL.Query()
	for k := range q {
		switch {
		case k == "types", k == "chat", k == "last_event_id":
		case k == "token" && s.Realtime.Tokens != nil: // streamAuth took it
		default:
			writeError(w, r, http.StatusBadRequest, "invalid", "unknown query parameter "+strconv.Quote(k), k)
			return nil, false
		}
	}
	// A filter that can match nothing is refused before the stream opens:
	// the client would wait for events that never come.
	st := &stream{types: map[string]bool{}}
	if t := q.Get("types"); t != "" {
		for _, x := range strings.Split(t, ",") {
			if x = strings.TrimSpace(x); x == "" {
				continue
			}
			if !slices.Contains(store.EventTypes, x) {
				writeError(w, r, http.StatusBadRequest, "invalid", "types: unknown event type "+strconv.Quote(x)+"; known: "+strings.Join(store.EventTypes, ", "), "types")
				return nil, false
			}
			st.types[x] = true
		}
	}
	if c := q.Get("chat"); c != "" {
		chat, err := whatsapp.NormalizeRecipient(c)
		if err != nil {
			writeError(w, r, http.StatusBadRequest, "invalid", "chat must be "+err.Error(), "chat")
			return nil, false
		}
		st.chat = chat
	}
	ctx, cancel := dbContext(r)
	defer cancel()
	// The header wins: EventSource sends it on its own reconnects, to the
	// URL it was made with, whose last_event_id is older.
	last := r.Header.Get("Last-Event-ID")
	if last == "" {
		last = q.Get("last_event_id")
	}
	if last == "" {
		head, err := s.Realtime.Hub.Head(ctx)
		if err != nil {
			s.storeFailed(w, r, err)
			return nil, false
		}
		st.cursor = head
		return st, true
	}
	n, err := strconv.ParseInt(last, 10, 64)
	if err != nil || n < 0 {
		writeError(w, r, http.StatusBadRequest, "invalid", "Last-Event-ID must be the seq of an event received", "Last-Event-ID")
		return nil, false
	}
	first, err := s.Realtime.Src.FirstEventSeq(ctx)
	if err != nil {
		s.storeFailed(w, r, err)
		return nil, false
	}
	if first > 0 && n < first-1 {
		writeError(w, r, http.StatusGone, "position_expired",
			"events after "+last+" are no longer kept (the oldest is "+strconv.FormatInt(first, 10)+"); connect without Last-Event-ID and reload your state", "Last-Event-ID")
		return nil, false
	}
	st.cursor = n
	return st, true
}

// next waits for the client's next events: from the hub's ring, or from
// the database while the client catches up. errTooSlow when a client that
// was live has fallen out of the ring.
func (s *Server) next(ctx context.Context, st *stream, idle <-chan time.Time) ([]realtime.Event, error) {
	for {
		evs, more, _, ok := s.Realtime.Hub.Since(st.cursor)
		if !ok && st.live {
			return nil, errTooSlow
		}
		st.live = st.live || ok
		if !ok {
			stored, err := s.Realtime.Src.Events(ctx, st.cursor, 500)
			if err != nil {
				return nil, err
			}
			evs = evs[:0]
			for _, e := range stored {
				evs = append(evs, realtime.Encode(e))
			}
		}
		if len(evs) > 0 {
			return evs, nil
		}
		select {
		case <-ctx.Done():
			return nil, context.Cause(ctx)
		case <-s.Realtime.Done:
			return nil, errStopping
		case <-idle:
			return nil, nil // time for a heartbeat
		case <-more:
		}
	}
}

// watchStreamKey is the stream's context: it ends when the key that opened
// the stream (itself, or behind a browser token) is revoked.
func (s *Server) watchStreamKey(r *http.Request) (context.Context, func()) {
	return s.watchKey(r.Context(), keyIDOf(r), store.ScopeMessagesRead)
}

// headerHasToken reports whether a comma-separated header lists token
// (case-insensitive), as Connection: keep-alive, Upgrade does.
func headerHasToken(h http.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		for _, t := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

func keyIDOf(r *http.Request) string {
	k, _ := KeyOf(r)
	return k.ID
}

// keyEnded is why ctx ended when its key did, or nil.
func keyEnded(ctx context.Context) error {
	if cause := context.Cause(ctx); errors.Is(cause, errKeyRevoked) || errors.Is(cause, errScopeLost) {
		return cause
	}
	return nil
}

var (
	errTooSlow  = errors.New("the client reads too slowly; reconnect with Last-Event-ID")
	errStopping = errors.New("the worker is stopping")
)

func (s *Server) writeTimeout() time.Duration {
	if s.Realtime.WriteTimeout > 0 {
		return s.Realtime.WriteTimeout
	}
	return 10 * time.Second
}

func (s *Server) heartbeat() time.Duration {
	if s.Realtime.Heartbeat > 0 {
		return s.Realtime.Heartbeat
	}
	return 15 * time.Second
}

// sse serves the events as Server-Sent Events.
func (s *Server) sse(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	st, ok := s.openStream(w, r)
	if !ok {
		return
	}
	defer s.Metrics.Subscribed("sse")()
	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		return // the stream's headers, without the stream
	}
	_, _ = w.Write([]byte(": connected\nretry: 2000\n\n"))
	_ = rc.Flush()
	ctx, stop := s.watchStreamKey(r)
	defer stop()
	beat := time.NewTicker(s.heartbeat())
	defer beat.Stop()
	for {
		evs, err := s.next(ctx, st, beat.C)
		_ = rc.SetWriteDeadline(time.Now().Add(s.writeTimeout()))
		if errors.Is(err, errTooSlow) {
			_, _ = w.Write([]byte("event: error\ndata: {\"code\":\"too_slow\",\"message\":\"" + err.Error() + "\"}\n\n"))
			_ = rc.Flush()
			return
		}
		if cause := keyEnded(ctx); cause != nil {
			_, _ = w.Write([]byte("event: error\ndata: {\"code\":\"unauthorized\",\"message\":\"" + cause.Error() + "\"}\n\n"))
			_ = rc.Flush()
			return
		}
		if err != nil {
			return
		}
		var b []byte
		if len(evs) == 0 {
			b = append(b, ": heartbeat\n\n"...)
		}
		for _, e := range evs {
			st.cursor = e.Seq
			if !st.wants(e) {
				continue
			}
			if b == nil {
				// Most turns carry one event: its shared frame is written
				// as is (capped, so an append copies it).
				b = e.SSE[:len(e.SSE):len(e.SSE)]
				continue
			}
			b = append(b, e.SSE...)
		}
		if len(b) > 0 {
			if _, err := w.Write(b); err != nil {
				return
			}
			if err := rc.Flush(); err != nil {
				return
			}
		}
	}
}

// ws serves the same events over a WebSocket, one JSON text frame each.
func (s *Server) ws(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	if !headerHasToken(r.Header, "Connection", "upgrade") || !headerHasToken(r.Header, "Upgrade", "websocket") {
		// Answered here in the API's error shape; the WebSocket library
		// would answer in plain text.
		w.Header().Set("Upgrade", "websocket")
		writeError(w, r, http.StatusUpgradeRequired, "upgrade_required",
			"GET /v1/ws is a WebSocket: send Connection: Upgrade and Upgrade: websocket (GET /v1/events serves the same events as Server-Sent Events)", "")
		return
	}
	st, ok := s.openStream(w, r)
	if !ok {
		return
	}
	// The server's read and write timeouts would end the socket; the
	// stream keeps its own (a write deadline per frame, pings).
	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(time.Time{})
	_ = rc.SetWriteDeadline(time.Time{})
	c, err := websocket.Accept(w, r, nil)
	if err != nil {
		return
	}
	defer c.CloseNow()
	defer s.Metrics.Subscribed("ws")()
	// The client sends nothing; CloseRead notices it leaving. The key's
	// watch hangs below it: CloseRead drops the connection without a close
	// frame when its own context ends, and a revoked key gets one.
	ctx, stop := s.watchKey(c.CloseRead(r.Context()), keyIDOf(r), store.ScopeMessagesRead)
	defer stop()
	beat := time.NewTicker(s.heartbeat())
	defer beat.Stop()
	for {
		evs, err := s.next(ctx, st, beat.C)
		if errors.Is(err, errTooSlow) {
			_ = c.Close(websocket.StatusPolicyViolation, "too slow: reconnect with last_event_id")
			return
		}
		if errors.Is(err, errStopping) {
			_ = c.Close(websocket.StatusGoingAway, "the worker is stopping: reconnect with last_event_id")
			return
		}
		if cause := keyEnded(ctx); cause != nil {
			_ = c.Close(websocket.StatusPolicyViolation, cause.Error())
			return
		}
		if err != nil {
			return
		}
		wctx, cancel := context.WithTimeout(ctx, s.writeTimeout())
		if len(evs) == 0 {
			err = c.Ping(wctx)
		}
		for _, e := range evs {
			st.cursor = e.Seq
			if err == nil && st.wants(e) {
				err = c.Write(wctx, websocket.MessageText, e.JSON)
			}
		}
		cancel()
		if err != nil {
			return
		}
	}
}
