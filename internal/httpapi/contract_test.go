package httpapi

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
	"github.com/rs/zerolog"

	"app/internal/msg"
	"app/internal/store"
	"app/internal/testutil"
	"app/internal/whatsapp"
)

// The contract: every response a test server sends is checked against
// openapi.json by kin-openapi's validator (JSON Schema 2020-12, as OpenAPI
// 3.1 says), so a handler and the document cannot drift apart unnoticed.
// serve wraps every test server with it.

type contract struct {
	doc    *openapi3.T
	router routers.Router
	errors *openapi3.Schema // for answers on paths the document has no operation for
}

var loadContract = sync.OnceValues(func() (*contract, error) {
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(openAPI)
	if err != nil {
		return nil, fmt.Errorf("openapi.json does not load: %w", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		return nil, fmt.Errorf("openapi.json is not a valid OpenAPI document: %w", err)
	}
	// The server's URL is relative ("/"): paths are matched as they are.
	routed := *doc
	routed.Servers = nil
	router, err := gorillamux.NewRouter(&routed)
	if err != nil {
		return nil, fmt.Errorf("openapi.json's paths do not make a router: %w", err)
	}
	errSchema := doc.Components.Schemas["Error"]
	if errSchema == nil || errSchema.Value == nil {
		return nil, fmt.Errorf("openapi.json has no Error schema")
	}
	return &contract{doc: doc, router: router, errors: errSchema.Value}, nil
})

// checked wraps h so that each response it sends is validated against the
// document; a mismatch fails t.
func checked(t *testing.T, h http.Handler) http.Handler {
	t.Helper()
	c, err := loadContract()
	if err != nil {
		t.Fatal(err)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &recorder{ResponseWriter: w}
		rec.hijacked = func() {
			if err := c.check(r, rec); err != nil {
				t.Errorf("%s %s: %d does not match openapi.json: %v", r.Method, r.URL.RequestURI(), rec.status, err)
			}
		}
		h.ServeHTTP(rec, r)
		if rec.hijacked == nil {
			return // checked as it was hijacked; the test may be over by now
		}
		if err := c.check(r, rec); err != nil {
			t.Errorf("%s %s: %d does not match openapi.json: %v", r.Method, r.URL.RequestURI(), rec.status, err)
		}
	})
}

// maxChecked bounds the body kept for validation (media downloads).
const maxChecked = 4 << 20

// recorder passes a response through and keeps a copy to validate.
type recorder struct {
	http.ResponseWriter
	status    int
	body      bytes.Buffer
	truncated bool
	hijacked  func() // called once when the connection is hijacked, then nil
}

func (r *recorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	switch {
	case strings.HasPrefix(r.Header().Get("Content-Type"), "text/event-stream"):
		// A stream is checked by its status and type; its bytes are not kept.
	case r.body.Len()+len(b) <= maxChecked:
		r.body.Write(b)
	default:
		r.truncated = true
	}
	return r.ResponseWriter.Write(b)
}

func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// Hijack is a WebSocket upgrade: the 101 and its headers are what the
// client gets from the server before the socket is handed over.
func (r *recorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, brw, err := http.NewResponseController(r.ResponseWriter).Hijack()
	if err == nil && r.hijacked != nil {
		r.status = http.StatusSwitchingProtocols
		r.hijacked()
		r.hijacked = nil
	}
	return conn, brw, err
}

func (c *contract) check(r *http.Request, rec *recorder) error {
	if rec.status == 0 {
		rec.status = http.StatusOK
	}
	if r.URL.Path == "/" || strings.HasPrefix(r.URL.Path, "/console/") {
		return nil // the web console's page and files, not API (TestOpenAPIMatchesRoutes)
	}
	// The router sees the path as sent (%2F stays inside its segment), as
	// a client reading the document would expect it to be matched.
	routed := r.Clone(context.Background())
	routed.URL.Path, routed.URL.RawPath = r.URL.EscapedPath(), ""
	route, params, err := c.router.FindRoute(routed)
	if err != nil {
		// No operation: a test's own route (2xx), an unknown path or a
		// method not allowed, which answer with the Error shape.
		if rec.status < 400 {
			return nil
		}
		return c.checkError(rec)
	}
	ct := rec.Header().Get("Content-Type")
	opts := &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true}
	body := rec.body.Bytes()
	mt, _, _ := mime.ParseMediaType(ct)
	if mt == "text/event-stream" || rec.truncated || rec.status == http.StatusSwitchingProtocols {
		// A stream (or a body too big to keep): its status, headers and
		// media type are checked, not its bytes.
		opts.ExcludeResponseBody = true
		if resp := route.Operation.Responses.Status(rec.status); resp != nil && resp.Value != nil && len(resp.Value.Content) > 0 {
			if resp.Value.Content.Get(ct) == nil {
				return fmt.Errorf("Content-Type %q is not documented for %d", ct, rec.status)
			}
		}
		body = nil
	}
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: r, PathParams: params, Route: route, Options: opts},
		Status:                 rec.status,
		Header:                 rec.Header(),
		Body:                   io.NopCloser(bytes.NewReader(body)),
		Options:                opts,
	}
	if err := openapi3filter.ValidateResponse(context.Background(), in); err != nil {
		return err
	}
	if rec.status >= 400 && !strings.HasPrefix(ct, "application/json") && rec.status != http.StatusSwitchingProtocols {
		return fmt.Errorf("an error answered with Content-Type %q, not application/json", ct)
	}
	return nil
}

func (c *contract) checkError(rec *recorder) error {
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		return fmt.Errorf("an error answered with Content-Type %q, not application/json", ct)
	}
	var v any
	if err := json.Unmarshal(rec.body.Bytes(), &v); err != nil {
		return fmt.Errorf("an error's body is not JSON: %w", err)
	}
	return c.errors.VisitJSON(v, openapi3.EnableJSONSchema2020(), openapi3.VisitAsResponse(), openapi3.MultiErrors())
}

// The check fails what the document does not say, so the HTTP tests'
// passing means something: a wrong type, a field or a status it does not
// list, an error that is not JSON; and passes what it does.
func TestContractCatchesMismatches(t *testing.T) {
	c, err := loadContract()
	if err != nil {
		t.Fatal(err)
	}
	check := func(method, target string, status int, ct, body string) error {
		rec := &recorder{ResponseWriter: httptest.NewRecorder()}
		rec.Header().Set("Content-Type", ct)
		rec.WriteHeader(status)
		_, _ = rec.Write([]byte(body))
		return c.check(httptest.NewRequest(method, target, nil), rec)
	}
	const msg = `{"id":"msg_1","to":"491701234567@s.whatsapp.net","kind":"text","text":"hi","status":"queued","attempts":0,"queued_at":"2026-12-01T10:00:00Z"}`
	for _, bad := range []struct {
		name, method, target string
		status               int
		ct, body             string
	}{
		{"a number for a string", "GET", "/v1/messages/msg_1", 200, "application/json", strings.Replace(msg, `"hi"`, `7`, 1)},
		{"a field the document does not list", "GET", "/v1/messages/msg_1", 200, "application/json", strings.Replace(msg, `{`, `{"MimeType":"x",`, 1)},
		{"a required field missing", "GET", "/v1/messages/msg_1", 200, "application/json", strings.Replace(msg, `"attempts":0,`, ``, 1)},
		{"a status the operation does not list", "GET", "/v1/messages/msg_1", 418, "application/json", `{"error":{"code":"teapot","message":"no"}}`},
		{"null where the schema has a string", "GET", "/v1/messages/msg_1", 200, "application/json", strings.Replace(msg, `"hi"`, `null`, 1)},
		{"an error as text", "GET", "/v1/messages/msg_1", 404, "text/plain", "not found"},
		{"an error without its object, on no route", "GET", "/nowhere", 404, "application/json", `{"message":"no"}`},
		{"a stream of another type", "GET", "/v1/events", 200, "application/json", `{}`},
	} {
		if err := check(bad.method, bad.target, bad.status, bad.ct, bad.body); err == nil {
			t.Errorf("%s: %s %s %d %s passed the check", bad.name, bad.method, bad.target, bad.status, bad.body)
		}
	}
	for _, good := range []struct {
		method, target string
		status         int
		ct, body       string
	}{
		{"GET", "/v1/messages/msg_1", 200, "application/json", msg},
		{"GET", "/v1/messages", 200, "application/json", `{"messages":[]}`},
		{"GET", "/v1/messages?direction=incoming", 200, "application/json", `{"messages":[{"direction":"in","id":"a/b/c","kind":"text","at":"2026-12-01T10:00:00Z"}]}`},
		{"GET", "/healthz", 200, "application/json", `{"status":"ok","worker":"1"}`},
		{"GET", "/v1/chats/a%2Fb/messages", 404, "application/json", `{"error":{"code":"not_found","message":"no route"}}`},
		{"GET", "/v1/events", 200, "text/event-stream", ": connected\n\n"},
	} {
		if err := check(good.method, good.target, good.status, good.ct, good.body); err != nil {
			t.Errorf("%s %s %d %s: %v", good.method, good.target, good.status, good.body, err)
		}
	}
}

// What the document once got wrong, as a client generated from it meets it
// (serve checks each answer): an empty page of either kind, a cluster with
// no lease yet (lease null), contacts listed as contacts, a received
// attachment in snake_case, a jid holding %2F, and 413 on every operation
// that reads a JSON body.
func TestAnswersMatchTheDocument(t *testing.T) {
	e := messageServer(t, 1<<20)
	for _, path := range []string{"/v1/messages", "/v1/messages?direction=incoming", "/v1/chats/%2B491701234567/messages", "/v1/contacts"} {
		if r := do(t, "GET", e.url+path, nil, e.reader); r.status != 200 {
			t.Errorf("GET %s: %d %v", path, r.status, r.body)
		}
	}
	clusterKey, clusterK := store.NewAPIKey("cluster", []string{store.ScopeAdmin})
	if err := e.st.CreateAPIKey(context.Background(), clusterK); err != nil {
		t.Fatal(err)
	}
	if r := do(t, "GET", e.url+"/v1/cluster", nil, map[string]string{"Authorization": "Bearer " + clusterKey}); r.status != 200 || r.body["lease"] != nil {
		t.Errorf("GET /v1/cluster before any primary: %d %v, want lease null", r.status, r.body)
	}

	e.sb.Inject(whatsapp.Incoming{Chat: "491701234567@s.whatsapp.net", PushName: "Alice", Body: msg.Body{Kind: "image"},
		Media: &whatsapp.Media{MimeType: "image/jpeg", Size: 4, Caption: "look", SHA256: []byte{0xab, 0xcd}, Handle: []byte("jpeg")}})
	var media map[string]any
	testutil.Eventually(t, 10*time.Second, "the received attachment in the history", func() (bool, string) {
		ms, _ := do(t, "GET", e.url+"/v1/chats/%2B491701234567/messages", nil, e.reader).body["messages"].([]any)
		if len(ms) == 1 {
			media, _ = ms[0].(map[string]any)["media"].(map[string]any)
		}
		return media != nil, fmt.Sprint(ms)
	})
	if media["mime_type"] != "image/jpeg" || media["caption"] != "look" || media["sha256"] != "abcd" || media["size"] != float64(4) {
		t.Errorf("a received attachment: %v, want mime_type, caption, sha256 (hex) and size", media)
	}
	contacts, _ := do(t, "GET", e.url+"/v1/contacts", nil, e.reader).body["contacts"].([]any)
	if len(contacts) != 1 {
		t.Errorf("GET /v1/contacts: contacts %v, want Alice", contacts)
	}
	if r := do(t, "GET", e.url+"/v1/chats/491701234567%2Fx/messages", nil, e.reader); r.status != 404 {
		t.Errorf("a jid with %%2F: %d %v, want 404", r.status, r.body)
	}

	// Bodies over the limit, declared (refused before reading) or chunked
	// (cut off while reading), on each operation that reads one.
	key, k := store.NewAPIKey("admin", []string{store.ScopeAdmin})
	if err := e.st.CreateAPIKey(context.Background(), k); err != nil {
		t.Fatal(err)
	}
	small := serve(t, &Server{Backend: e.api, Messages: e.api, Schedules: e.api, Webhooks: e.api, Sessions: e.api, Sandbox: true, Keys: e.api,
		Log: zerolog.Nop(), Worker: "2", MaxBodyBytes: 256}, nil)
	admin := map[string]string{"Authorization": "Bearer " + key, "Content-Type": "application/json"}
	big := `{"description":"` + strings.Repeat("x", 300) + `"}`
	for _, c := range []struct{ method, path string }{
		{"POST", "/v1/messages"}, {"POST", "/v1/session/pair-code"}, {"POST", "/v1/sandbox/incoming"},
		{"POST", "/v1/schedules"}, {"PATCH", "/v1/schedules/sch_x"},
		{"POST", "/v1/webhooks"}, {"PATCH", "/v1/webhooks/wh_x"}, {"POST", "/v1/webhooks/wh_x/replay"},
	} {
		if r := do(t, c.method, small+c.path, strings.NewReader(big), admin); r.status != 413 {
			t.Errorf("%s %s with %d bytes: %d %v, want 413", c.method, c.path, len(big), r.status, r.body)
		}
		if r := do(t, c.method, small+c.path, io.MultiReader(strings.NewReader(big)), admin); r.status != 413 {
			t.Errorf("%s %s with %d bytes chunked: %d %v, want 413", c.method, c.path, len(big), r.status, r.body)
		}
	}
}
