package httpapi

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"app/internal/config"
	"app/internal/primary"
	"app/internal/store"
	"app/internal/testdb"
	"app/internal/whatsapp"
)

// The session routes against a real primary task with the sandbox driver,
// through the embedded database: pairing by QR code, the state, commands,
// and what bad requests get.
func TestSessionRoutes(t *testing.T) {
	db := testdb.Start(t)
	st := newStore(t, db)
	sb, err := whatsapp.NewSandbox(whatsapp.SandboxConfig{Dir: t.TempDir(), DeliveredDelay: -1, ReadDelay: -1})
	if err != nil {
		t.Fatal(err)
	}
	wa := &primary.WhatsApp{Cfg: config.WhatsApp{Driver: "sandbox", MaxAttempts: 3, MediaMaxBytes: 1 << 20, RateLimitPause: time.Minute},
		Driver: sb, Store: st, Log: zerolog.Nop(), Poll: 20 * time.Millisecond}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = wa.Run(ctx, 1) }()
	t.Cleanup(func() { cancel(); <-done })
	url := serve(t, &Server{Backend: st, Sessions: st, Sandbox: true, Log: zerolog.Nop(), Worker: "1", MaxBodyBytes: 1 << 16}, nil)
	jsonBody := map[string]string{"Content-Type": "application/json"}

	state := func(want string) reply {
		t.Helper()
		var r reply
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			if r = do(t, "GET", url+"/v1/session", nil, nil); r.body["state"] == want {
				return r
			}
		}
		t.Fatalf("session never became %s: %v", want, r.body)
		return r
	}

	r := state("pairing")
	if r.body["qr_available"] != true || r.body["driver"] != "sandbox" {
		t.Errorf("pairing session: %v", r.body)
	}
	// The QR code as a PNG, and as text for clients that draw it themselves.
	res, err := http.Get(url + "/v1/session/qr")
	if err != nil {
		t.Fatal(err)
	}
	png, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || res.Header.Get("Content-Type") != "image/png" || !bytes.HasPrefix(png, []byte("\x89PNG\r\n")) {
		t.Errorf("GET /v1/session/qr: %d %s, %d bytes", res.StatusCode, res.Header.Get("Content-Type"), len(png))
	}
	r = do(t, "GET", url+"/v1/session/qr", nil, map[string]string{"Accept": "application/json"})
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
		r := do(t, "POST", url+"/v1/session/pair-code", strings.NewReader(c.body), map[string]string{"Content-Type": c.ctype})
		e := errorOf(t, r)
		if r.status != c.status || (c.field != "" && e["field"] != c.field) {
			t.Errorf("pair-code %s (%s): %d %v, want %d naming %q", c.body, c.ctype, r.status, e, c.status, c.field)
		}
	}
	r = do(t, "POST", url+"/v1/sandbox/incoming", strings.NewReader(`{"chat":"491701234567@s.whatsapp.net"}`), jsonBody)
	if e := errorOf(t, r); r.status != 400 || e["field"] != "text" {
		t.Errorf("incoming without text: %d %v", r.status, e)
	}
	r = do(t, "POST", url+"/v1/sandbox/explode", nil, nil)
	if r.status != 404 {
		t.Errorf("unknown sandbox action: %d", r.status)
	}
	// Not from this machine (a proxy in front): refused.
	r = do(t, "GET", url+"/v1/session", nil, map[string]string{"X-Forwarded-For": "203.0.113.9"})
	if r.status != 403 {
		t.Errorf("proxied request: %d, want 403", r.status)
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
	r = do(t, "GET", url+"/v1/session/qr", nil, nil)
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
	for deadline := time.Now().Add(5 * time.Second); len(in) == 0 && time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		in, _ = st.IncomingMessages(context.Background(), "4915112345678@s.whatsapp.net", 10)
	}
	if len(in) != 1 || in[0].Text != "hi there" || in[0].WAID != r.body["wa_id"] {
		t.Errorf("stored incoming: %+v", in)
	}

	// Logout unlinks: logged out, then a new QR code.
	r = do(t, "POST", url+"/v1/session/logout", nil, nil)
	if r.status != 200 {
		t.Errorf("logout: %d %v", r.status, r.body)
	}
	state("pairing")
	r = do(t, "POST", url+"/v1/sandbox/scan", nil, nil)
	if r.status != 200 {
		t.Errorf("scan: %d %v", r.status, r.body)
	}
	state("connected")
}
