package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"app/internal/config"
	"app/internal/realtime"
	"app/internal/store"
	"app/internal/testdb"
	"app/internal/testutil"
	"app/internal/whatsapp"
)

// The session routes against a real primary task with the sandbox driver,
// through the embedded database: pairing by QR code, the state, commands,
// and what bad requests get.
func TestSessionRoutes(t *testing.T) {
	db := testdb.Start(t)
	st := db.Connect(nil)
	sandboxPrimary(t, st, whatsapp.SandboxConfig{Dir: t.TempDir(), DeliveredDelay: -1, ReadDelay: -1}, config.WhatsApp{MediaMaxBytes: 1 << 20})
	url := serve(t, &Server{Backend: st, Sessions: st, Keys: st, Sandbox: true, Log: zerolog.Nop(), Worker: "1", MaxBodyBytes: 1 << 16}, nil)
	key, k := store.NewAPIKey("pairing", []string{store.ScopeSession})
	if err := st.CreateAPIKey(context.Background(), k); err != nil {
		t.Fatal(err)
	}
	auth := map[string]string{"Authorization": "Bearer " + key}
	jsonBody := map[string]string{"Content-Type": "application/json", "Authorization": "Bearer " + key}

	state := func(want string) reply {
		t.Helper()
		var r reply
		testutil.Eventually(t, 10*time.Second, "session "+want, func() (bool, string) {
			r = do(t, "GET", url+"/v1/session", nil, auth)
			return r.body["state"] == want, fmt.Sprint(r.body)
		})
		return r
	}

	r := state("pairing")
	if r.body["qr_available"] != true || r.body["driver"] != "sandbox" {
		t.Errorf("pairing session: %v", r.body)
	}
	// The QR code as a PNG, and as text for clients that draw it themselves.
	req, _ := http.NewRequest("GET", url+"/v1/session/qr", nil)
	req.Header.Set("Authorization", "Bearer "+key)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	png, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || res.Header.Get("Content-Type") != "image/png" || !bytes.HasPrefix(png, []byte("\x89PNG\r\n")) {
		t.Errorf("GET /v1/session/qr: %d %s, %d bytes", res.StatusCode, res.Header.Get("Content-Type"), len(png))
	}
	r = do(t, "GET", url+"/v1/session/qr", nil, map[string]string{"Accept": "application/json", "Authorization": "Bearer " + key})
	if qr, _ := r.body["qr"].(string); r.status != 200 || !strings.HasPrefix(qr, "2@sandbox-") {
		t.Errorf("QR code as JSON: %d %v", r.status, r.body)
	}

	// Bad requests name what is wrong.
	for _, c := range []struct {
		body, ctype string
		status      int
		field       string
	}{
		{`{"phone":"12"}`, "application/json", 400, "phone"},
		{`{"phone":"+49 170 1234567","pin":1}`, "application/json", 400, "pin"},
		{`{"phone":491701234567}`, "application/json", 400, "phone"},
		{`{"phone":"+491701234567"}`, "text/plain", 415, ""},
		{`{"phone":`, "application/json", 400, ""},
	} {
		r := do(t, "POST", url+"/v1/session/pair-code", strings.NewReader(c.body), map[string]string{"Content-Type": c.ctype, "Authorization": "Bearer " + key})
		e := errorOf(t, r)
		if r.status != c.status || (c.field != "" && e["field"] != c.field) {
			t.Errorf("pair-code %s (%s): %d %v, want %d naming %q", c.body, c.ctype, r.status, e, c.status, c.field)
		}
	}
	r = do(t, "POST", url+"/v1/sandbox/incoming", strings.NewReader(`{"chat":"491701234567@s.whatsapp.net"}`), jsonBody)
	if e := errorOf(t, r); r.status != 400 || e["field"] != "text" {
		t.Errorf("incoming without text: %d %v", r.status, e)
	}
	r = do(t, "POST", url+"/v1/sandbox/explode", nil, auth)
	if r.status != 404 {
		t.Errorf("unknown sandbox action: %d", r.status)
	}
	// Without a key, with a bad one, or with a key for other things: refused.
	other, ok := store.NewAPIKey("reader", []string{store.ScopeMessagesRead})
	if err := st.CreateAPIKey(context.Background(), ok); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		header string
		status int
	}{
		{"", 401},
		{"Bearer", 401},
		{"Basic dXNlcjpwYXNz", 401},
		{"Bearer " + key[:len(key)-1] + "x", 401},
		{"Bearer app_zzzzzzzz_" + strings.Repeat("a", 52), 401},
		{"Bearer " + other, 403},
	} {
		r := do(t, "POST", url+"/v1/session/logout", nil, map[string]string{"Authorization": c.header})
		e := errorOf(t, r)
		if r.status != c.status {
			t.Errorf("logout with Authorization %q: %d %v, want %d", c.header, r.status, e, c.status)
		}
		if c.status == 401 && r.header.Get("WWW-Authenticate") == "" {
			t.Errorf("401 without WWW-Authenticate")
		}
	}

	// A phone code while pairing, then the QR code "scanned".
	r = do(t, "POST", url+"/v1/session/pair-code", strings.NewReader(`{"phone":"+49 170 1234567"}`), jsonBody)
	if code, _ := r.body["code"].(string); r.status != 200 || len(code) != 9 {
		t.Errorf("pair-code: %d %v", r.status, r.body)
	}
	r = state("connected")
	if r.body["jid"] != "491701234567@s.whatsapp.net" {
		t.Errorf("paired by phone code as %v", r.body["jid"])
	}
	r = do(t, "GET", url+"/v1/session/qr", nil, auth)
	if r.status != 409 {
		t.Errorf("QR code while connected: %d, want 409", r.status)
	}
	r = do(t, "POST", url+"/v1/session/pair-code", strings.NewReader(`{"phone":"+491701234567"}`), jsonBody)
	if r.status != 409 {
		t.Errorf("pair-code while paired: %d %v, want 409", r.status, r.body)
	}

	// A message arrives; it is stored.
	r = do(t, "POST", url+"/v1/sandbox/incoming", strings.NewReader(`{"chat":"4915112345678@s.whatsapp.net","text":"hi there","push_name":"Bob"}`), jsonBody)
	if r.status != 200 || r.body["wa_id"] == "" {
		t.Fatalf("inject: %d %v", r.status, r.body)
	}
	var in []store.IncomingMessage
	incoming := func(n int) func() (bool, string) {
		return func() (bool, string) {
			var err error
			in, err = st.IncomingMessages(context.Background(), "4915112345678@s.whatsapp.net", 10)
			return len(in) >= n, fmt.Sprintf("%+v (%v)", in, err)
		}
	}
	testutil.Eventually(t, 5*time.Second, "the incoming message stored", incoming(1))
	if len(in) != 1 || in[0].Text != "hi there" || in[0].WAID != r.body["wa_id"] {
		t.Errorf("stored incoming: %+v", in)
	}
	// A chat given as a phone number is that number's conversation, the one
	// a send to the same number writes to; what is no recipient is refused.
	r = do(t, "POST", url+"/v1/sandbox/incoming", strings.NewReader(`{"chat":"+49 151 12345678","text":"again","sender":"+4915112345678"}`), jsonBody)
	if r.status != 200 {
		t.Fatalf("inject to a phone number: %d %v", r.status, r.body)
	}
	testutil.Eventually(t, 5*time.Second, "the message to a phone number stored", incoming(2))
	if len(in) != 2 || in[1].Text != "again" || in[1].Sender != "4915112345678@s.whatsapp.net" {
		t.Errorf("a message to +49 151 12345678 is not in the chat 4915112345678@s.whatsapp.net: %+v", in)
	}
	for _, c := range []struct{ body, field string }{
		{`{"chat":"garbage!!","text":"x"}`, "chat"},
		{`{"chat":"+12","text":"x"}`, "chat"},
		{`{"chat":"491701234567@example.com","text":"x"}`, "chat"},
		{`{"chat":"120363000000000000@g.us","text":"x","sender":"120363000000000000@g.us"}`, "sender"},
		{`{"chat":"120363000000000000@g.us","text":"x","sender":"nobody"}`, "sender"},
	} {
		r := do(t, "POST", url+"/v1/sandbox/incoming", strings.NewReader(c.body), jsonBody)
		if e := errorOf(t, r); r.status != 400 || e["field"] != c.field {
			t.Errorf("inject %s: %d %v, want 400 naming %s", c.body, r.status, e, c.field)
		}
	}
	// A group's message names the group by its subject, not by the sender.
	r = do(t, "POST", url+"/v1/sandbox/incoming", strings.NewReader(`{"chat":"120363000000000000@g.us","text":"hi all","sender":"+4915112345678","push_name":"Bob","chat_name":"Family"}`), jsonBody)
	if r.status != 200 {
		t.Fatalf("inject to a group: %d %v", r.status, r.body)
	}
	var family store.Chat
	testutil.Eventually(t, 5*time.Second, "the group chat named", func() (bool, string) {
		family, _ = st.Chat(context.Background(), "120363000000000000@g.us")
		return family.Name != "", fmt.Sprintf("%+v", family)
	})
	if family.Name != "Family" {
		t.Errorf("group chat after Bob's message: %+v, want named Family", family)
	}

	// Logout unlinks: logged out, then a new QR code.
	r = do(t, "POST", url+"/v1/session/logout", nil, auth)
	if r.status != 200 {
		t.Errorf("logout: %d %v", r.status, r.body)
	}
	state("pairing")
	r = do(t, "POST", url+"/v1/sandbox/scan", nil, auth)
	if r.status != 200 {
		t.Errorf("scan: %d %v", r.status, r.body)
	}
	state("connected")
}

// A revoked key stops working once the worker's cache entry is older than
// KeyCacheTTL, and not before a fresh lookup.
func TestRevokedKeyStopsWithinTheCacheTime(t *testing.T) {
	db := testdb.Start(t)
	st := db.Connect(nil)
	url := serve(t, &Server{Backend: st, Sessions: st, Keys: st, Log: zerolog.Nop(), Worker: "1", KeyCacheTTL: 500 * time.Millisecond}, nil)
	key, k := store.NewAPIKey("ops", []string{store.ScopeAdmin})
	if err := st.CreateAPIKey(context.Background(), k); err != nil {
		t.Fatal(err)
	}
	auth := map[string]string{"Authorization": "Bearer " + key}
	if r := do(t, "GET", url+"/v1/session", nil, auth); r.status != 200 {
		t.Fatalf("admin key: %d %v", r.status, r.body)
	}
	if err := st.RevokeAPIKey(context.Background(), k.ID); err != nil {
		t.Fatal(err)
	}
	revoked := time.Now()
	testutil.Eventually(t, 2*time.Second, "a revoked key refused (cache 500ms)", func() (bool, string) {
		r := do(t, "GET", url+"/v1/session", nil, auth)
		return r.status == 401, fmt.Sprintf("%d after %s", r.status, time.Since(revoked))
	})
	if d := time.Since(revoked); d > 1500*time.Millisecond {
		t.Errorf("revocation took %s to apply, want within the 500ms cache time plus a lookup", d)
	}
}

// The OpenAPI document lists exactly the routes the server has.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	db := testdb.Start(t)
	st := db.Connect(nil)
	s := &Server{Backend: st, Sessions: st, Messages: st, Chats: st, Media: st, Schedules: st, Webhooks: st, Keys: st, Sandbox: true, MetricsGatherer: prometheus.NewRegistry(), Log: zerolog.Nop(), Worker: "1",
		Realtime: &Realtime{Hub: &realtime.Hub{Src: st}, Src: st, Tokens: st}, Console: http.NotFoundHandler()}
	url := serve(t, s, nil)
	res, err := http.Get(url + "/v1/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var doc struct {
		OpenAPI string                                `json:"openapi"`
		Paths   map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.NewDecoder(res.Body).Decode(&doc); err != nil || res.StatusCode != 200 || !strings.HasPrefix(doc.OpenAPI, "3.1") {
		t.Fatalf("GET /v1/openapi.json: %d, %v, openapi %q", res.StatusCode, err, doc.OpenAPI)
	}
	documented := map[string]bool{}
	for path, ops := range doc.Paths {
		for method := range ops {
			if method != "parameters" {
				documented[strings.ToUpper(method)+" "+path] = true
			}
		}
	}
	// The web console's page and assets are not API: they are left out of
	// the contract, by name, so no other route can slip out with them.
	console := map[string]bool{"GET /": true, "GET /console/:file": true}
	served := map[string]bool{}
	for _, r := range s.routeList {
		if console[r] {
			delete(console, r)
			continue
		}
		method, path, _ := strings.Cut(r, " ")
		var parts []string
		for _, p := range strings.Split(path, "/") {
			if strings.HasPrefix(p, ":") {
				p = "{" + p[1:] + "}"
			}
			parts = append(parts, p)
		}
		served[method+" "+strings.Join(parts, "/")] = true
	}
	for r := range served {
		if !documented[r] {
			t.Errorf("%s is served but not in openapi.json", r)
		}
	}
	for r := range documented {
		if !served[r] {
			t.Errorf("%s is in openapi.json but not served", r)
		}
	}
	if len(console) != 0 {
		t.Errorf("the console's routes %v are not served", console)
	}
	if len(served) < 12 {
		t.Errorf("only %d routes recorded: %v", len(served), s.routeList)
	}
}

// The event types a webhook may ask for are the ones the API accepts
// (store.EventTypes), so a client generated from the document can
// subscribe to every one of them.
func TestOpenAPIListsEveryEventType(t *testing.T) {
	var doc struct {
		Components struct {
			Schemas struct {
				WebhookRequest struct {
					Properties struct {
						Types struct {
							Items struct {
								Enum []string `json:"enum"`
							} `json:"items"`
						} `json:"types"`
					} `json:"properties"`
				} `json:"WebhookRequest"`
			} `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal(openAPI, &doc); err != nil {
		t.Fatal(err)
	}
	got := doc.Components.Schemas.WebhookRequest.Properties.Types.Items.Enum
	if !slices.Equal(got, store.EventTypes) {
		t.Errorf("WebhookRequest.types lists %v, the API takes %v", got, store.EventTypes)
	}
}
