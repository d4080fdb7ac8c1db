// Package httpapi is the HTTP API a worker serves: the routes, their
// middleware (request id, recovery, access log, body limit) and the JSON
// error shape. It is the only package that imports httprouter.
package httpapi

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"runtime/debug"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/julienschmidt/httprouter"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"app/internal/metrics"
	"app/internal/store"
	"app/internal/webhook"
)

// Backend is what the handlers need from the database.
type Backend interface {
	Ping(ctx context.Context) error
	Heartbeats(ctx context.Context, since time.Time) ([]store.Heartbeat, error)
	CurrentLease(ctx context.Context) (store.Lease, error)
}

// Server holds the handlers' dependencies.
type Server struct {
	Backend      Backend
	Log          zerolog.Logger
	Worker       string // the X-App-Worker value
	MaxBodyBytes int64
	// HeartbeatInterval tells /v1/cluster when a process counts as gone.
	HeartbeatInterval time.Duration
	// settleTimeout (default defaultSettleTimeout) bounds insertSettled.
	settleTimeout time.Duration
	// actionWait, when set (tests), is every chat action's deadline.
	actionWait time.Duration
	// Sessions serves the WhatsApp session routes; nil leaves them out.
	Sessions SessionBackend
	// Sandbox adds the sandbox driver's routes (/v1/sandbox/...).
	Sandbox bool
	// Messages serves the message routes; nil leaves them out.
	Messages MessageBackend
	// Chats serves the chat and contact routes; nil leaves them out.
	Chats ChatBackend
	// Schedules serves the schedule routes; nil leaves them out.
	Schedules ScheduleBackend
	// Metrics, when set, measures the requests and realtime clients;
	// MetricsGatherer, when set, is served at /metrics (admin scope).
	Metrics         *metrics.HTTP
	MetricsGatherer prometheus.Gatherer
	// Webhooks serves the webhook routes; nil leaves them out.
	// WebhookGuard checks receiver URLs (default: public addresses only).
	Webhooks     WebhookBackend
	WebhookGuard *webhook.Guard
	// Realtime serves /v1/events and /v1/ws; nil leaves them out.
	Realtime *Realtime
	// Console serves the web console's page at / and its assets at
	// /console/{file} (not API: outside openapi.json); nil leaves it out.
	Console http.Handler
	// Media serves the media routes; nil leaves them out. MediaMaxBytes
	// (default MaxBodyBytes) caps an upload; MediaMaxUploads (default 16)
	// bounds this worker's uploads at once. A transfer may take 30 s plus
	// its size at MediaMinRate bytes a second (default 32 KiB/s) and is cut
	// off after MediaStall (default 30 s) without a byte.
	Media           MediaBackend
	MediaMaxBytes   int64
	MediaMaxUploads int
	MediaMinRate    int
	MediaStall      time.Duration
	uploads         uploadSlots
	// Keys checks API keys; KeyCacheTTL (default 10s) bounds how long a
	// revoked key keeps working.
	Keys        KeyBackend
	KeyCacheTTL time.Duration
	keys        keyCache
	streams     streamKeys // the keys of open event streams, checked again while they stay open
	// RateLimit (requests per second) and RateBurst are this worker's
	// share of a key's limit; 0 turns limiting off.
	RateLimit float64
	RateBurst int
	limits    keyLimiters
	// now is the limiters' clock (time.Now when nil; tests set it).
	now func() time.Time
	// authFails limits, per client address, lookups of key ids that turn
	// out not to exist (see authguard.go).
	authFails failedAuths

	routeList []string // "METHOD /path" of every route, for the OpenAPI test

	requests atomic.Int64
	inFlight atomic.Int64

	healthzOnce sync.Once
	healthzBody []byte
}

var (
	jsonType = []string{"application/json"}
	noStore  = []string{"no-store"}
)

// Requests is how many requests this process has served.
func (s *Server) Requests() int64 { return s.requests.Load() }

// Handler is the whole API with its middleware.
func (s *Server) Handler() http.Handler { return s.handler(nil) }

// handler builds the API; extra adds routes (tests use it).
func (s *Server) handler(extra func(*httprouter.Router)) http.Handler {
	r := httprouter.New()
	r.HandleMethodNotAllowed = true
	r.RedirectTrailingSlash = false
	r.RedirectFixedPath = false
	r.NotFound = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, r, http.StatusNotFound, "not_found", "no route for "+r.URL.Path, "")
	})
	r.MethodNotAllowed = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, r, http.StatusMethodNotAllowed, "method_not_allowed", r.Method+" is not allowed on "+r.URL.Path, "")
	})
	r.PanicHandler = s.panicked

	rt := routes{r, &s.routeList}
	s.routeList = nil
	rt.handle("GET", "/healthz", s.healthz)
	rt.handle("GET", "/readyz", s.readyz)
	// Hosts, pids and versions are for operators, as /metrics is.
	rt.handle("GET", "/v1/cluster", s.auth(store.ScopeAdmin, s.cluster))
	rt.handle("GET", "/v1/openapi.json", serveOpenAPI)
	if s.Keys != nil {
		rt.handle("GET", "/v1/key", s.auth("", s.currentKey))
	}
	if s.Sessions != nil {
		s.sessionRoutes(rt)
	}
	if s.Messages != nil {
		s.messageRoutes(rt)
	}
	if s.Chats != nil {
		s.chatRoutes(rt)
	}
	if s.Media != nil {
		s.mediaRoutes(rt)
	}
	if s.Schedules != nil {
		s.scheduleRoutes(rt)
	}
	if s.Realtime != nil {
		s.eventRoutes(rt)
	}
	if s.Webhooks != nil {
		s.webhookRoutes(rt)
	}
	if s.Console != nil {
		page := func(w http.ResponseWriter, r *http.Request, _ httprouter.Params) { s.Console.ServeHTTP(w, r) }
		rt.handle("GET", "/", page)
		rt.handle("GET", "/console/:file", page)
	}
	if s.MetricsGatherer != nil {
		// This worker's own metrics, for a look by hand; Prometheus
		// scrapes APP_METRICS_LISTEN, where one target has the machine.
		mh := metrics.Handler(s.MetricsGatherer, s.Log)
		rt.handle("GET", "/metrics", s.auth(store.ScopeAdmin, func(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
			mh.ServeHTTP(w, r)
		}))
	}
	if extra != nil {
		extra(r)
	}
	return s.middleware(r)
}

// NewHTTPServer wraps h with the timeouts every listener uses.
func NewHTTPServer(h http.Handler, log zerolog.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          nil,
		BaseContext:       func(net.Listener) context.Context { return log.WithContext(context.Background()) },
	}
}

type ctxKey int

const requestIDKey ctxKey = 0

// RequestID returns the request's id.
func RequestID(r *http.Request) string {
	id, _ := r.Context().Value(requestIDKey).(string)
	return id
}

func newID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Request ids are this process's random prefix and a counter: unique across
// processes and restarts, and cheap on the hot path.
var (
	idPrefix = newID()[:16] + "-"
	idSeq    atomic.Uint64
)

func nextRequestID() string {
	b := make([]byte, 0, len(idPrefix)+16)
	b = append(b, idPrefix...)
	return string(strconv.AppendUint(b, idSeq.Add(1), 36))
}

// logFor is the logger of one request: the server's, with its request id.
// Built only when something is logged, so quiet requests cost nothing.
func (s *Server) logFor(r *http.Request) *zerolog.Logger {
	l := s.Log.With().Str("request_id", RequestID(r)).Logger()
	return &l
}

// validRequestID accepts a caller's id when it is short and printable, so a
// trace can cross services without letting a client inject log lines.
func validRequestID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for _, c := range id {
		if !(c == '-' || c == '_' || c == '.' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			return false
		}
	}
	return true
}

type statusWriter struct {
	http.ResponseWriter
	status int
	bytes  int64
	route  string       // the matched route's pattern
	body   *trackedBody // the request's body, when it has one
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
		if code >= 400 && w.body != nil && !w.body.read.Load() {
			// See trackedBody: the expired read deadline stops net/http
			// draining the body after the answer.
			w.Header()["Connection"] = closeConn
			_ = http.NewResponseController(w.ResponseWriter).SetReadDeadline(time.Now())
		}
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	return n, err
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (s *Server) middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		s.requests.Add(1)
		s.inFlight.Add(1)
		defer s.inFlight.Add(-1)
		done := s.Metrics.Begin()

		id := r.Header.Get("X-Request-Id")
		if !validRequestID(id) {
			id = nextRequestID()
		}
		h := w.Header()
		h["X-Request-Id"] = []string{id}
		h["X-App-Worker"] = []string{s.Worker}
		transportHeaders(h, r)
		r = r.WithContext(context.WithValue(r.Context(), requestIDKey, id))
		sw := &statusWriter{ResponseWriter: w}
		if r.ContentLength != 0 && r.Body != nil { // declared, or -1: chunked
			sw.body = &trackedBody{ReadCloser: r.Body}
			r.Body = sw.body
		}
		limit := s.MaxBodyBytes
		if s.MediaMaxBytes > 0 && r.Method == http.MethodPost && r.URL.Path == "/v1/media" {
			limit = s.MediaMaxBytes + 64*1024 // the file and a multipart envelope
		}
		query := queryProblem(r.URL.RawQuery)
		switch {
		case query != "":
			writeError(sw, r, http.StatusBadRequest, "invalid", query, "query")
		case limit > 0 && r.ContentLength > limit:
			// Refused before reading; a body without a length is cut off by
			// the MaxBytesReader below and the handler answers 413 itself.
			writeError(sw, r, http.StatusRequestEntityTooLarge, "body_too_large",
				fmt.Sprintf("request body is %d bytes; the limit is %d", r.ContentLength, limit), "body")
		default:
			if r.Body != nil && limit > 0 {
				r.Body = http.MaxBytesReader(sw, r.Body, limit)
			}
			next.ServeHTTP(sw, r)
		}

		route := sw.route
		if route == "" {
			route = "unmatched"
		}
		done(route, methodLabel(r.Method), sw.status)

		level := zerolog.DebugLevel
		switch {
		case sw.status >= 500:
			level = zerolog.WarnLevel
		case r.URL.Path == "/healthz" || r.URL.Path == "/readyz":
			level = zerolog.TraceLevel
		}
		ev := s.Log.WithLevel(level)
		if ev == nil {
			return
		}
		ev.Str("request_id", id).Str("method", r.Method).Str("path", r.URL.Path).Int("status", sw.status).
			Int64("bytes", sw.bytes).Dur("duration", time.Since(start)).Str("remote", r.RemoteAddr).
			Msg("Request served.")
	})
}

// methodLabel bounds the method label: clients may send any token.
func methodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodPost, http.MethodPatch, http.MethodPut, http.MethodDelete, http.MethodHead, http.MethodOptions:
		return m
	}
	return "other"
}

// panicked answers a handler's panic with a 500 carrying an error id that
// is also in the log line with the stack.
func (s *Server) panicked(w http.ResponseWriter, r *http.Request, v any) {
	if err, ok := v.(error); ok && errors.Is(err, http.ErrAbortHandler) {
		panic(v)
	}
	errID := newID()
	s.logFor(r).Error().Str("error_id", errID).Interface("panic", v).Str("stack", string(debug.Stack())).
		Msg("Handler panicked.")
	writeError(w, r, http.StatusInternalServerError, "internal", "internal error (error id "+errID+")", "")
}

type errorBody struct {
	Error apiError `json:"error"`
}

type apiError struct {
	Code      string `json:"code"`
	Message   string `json:"message"`
	Field     string `json:"field,omitempty"`
	RequestID string `json:"request_id,omitempty"`
}

func writeError(w http.ResponseWriter, r *http.Request, status int, code, msg, field string) {
	writeJSON(w, status, errorBody{apiError{Code: code, Message: msg, Field: field, RequestID: RequestID(r)}})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	h := w.Header()
	h["Content-Type"] = jsonType
	h["Cache-Control"] = noStore
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	_ = enc.Encode(v)
}
