package webhook

import (
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

func TestCheckURL(t *testing.T) {
	t.Parallel()
	g := NewGuard(nil)
	for _, c := range []struct {
		url  string
		want string // "" when allowed, else a part of the error
	}{
		{"https://hooks.example.com/in", ""},
		{"http://93.184.215.14:8443/in?x=1", ""},
		{"https://[2606:4700:4700::1111]/", ""},
		{"ftp://example.com/", "http"},
		{"example.com/in", "http"},
		{"https:///in", "http"},
		{"https://user:secret@example.com/", "credentials"},
		{"https://example.com/#top", "fragment"},
		{"http://127.0.0.1:9000/", "refused"},
		{"http://10.1.2.3/", "refused"},
		{"http://172.16.0.1/", "refused"},
		{"http://192.168.0.10/", "refused"},
		{"http://169.254.169.254/latest/meta-data/", "refused"},
		{"http://100.64.0.1/", "refused"},
		{"http://0.0.0.0/", "refused"},
		{"http://[::1]/", "refused"},
		{"http://[fe80::1]/", "refused"},
		{"http://[fd00::1]/", "refused"},
		{"http://[::ffff:10.0.0.1]/", "refused"},
		{"http://localhost:8080/", "refused"},
		{"http://api.localhost/", "refused"},
		// Names, accepted here and refused when a delivery connects (as
		// WEBHOOKS.md says): TestClientRefusesAtDialTime.
		{"http://localhost.:8080/", ""},
		{"http://127.1/", ""},
		{"https://example.com/" + strings.Repeat("a", 2050), "2048"},
	} {
		err := g.CheckURL(c.url)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s: refused: %v", c.url, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%s: %v, want an error about %q", c.url, err, c.want)
		}
	}
	// An allowed network lets its addresses through, and only those.
	g = NewGuard([]netip.Prefix{netip.MustParsePrefix("10.1.0.0/16"), netip.MustParsePrefix("::1/128")})
	if err := g.CheckURL("http://10.1.2.3/"); err != nil {
		t.Errorf("allowed network: %v", err)
	}
	if err := g.CheckURL("http://[::1]:8080/"); err != nil {
		t.Errorf("allowed ::1: %v", err)
	}
	if err := g.CheckURL("http://10.2.0.1/"); err == nil {
		t.Error("10.2.0.1 is outside the allowed 10.1.0.0/16 but was allowed")
	}
}

// The client checks the address it connects to, whatever name led to
// it: nothing reaches a receiver on loopback unless loopback is allowed.
func TestClientRefusesAtDialTime(t *testing.T) {
	t.Parallel()
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { hits.Add(1) }))
	defer srv.Close()
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	for _, u := range []string{srv.URL, "http://localhost:" + port + "/"} {
		_, err := NewGuard(nil).Client(5 * time.Second).Get(u)
		if err == nil || !errors.Is(err, ErrRefused) {
			t.Errorf("GET %s: %v, want a refusal", u, err)
		}
	}
	// Names that CheckURL lets through fail here: refused when they
	// resolve to loopback, not found when the resolver has no such name.
	for _, u := range []string{"http://localhost.:" + port + "/", "http://127.1:" + port + "/"} {
		if res, err := NewGuard(nil).Client(5 * time.Second).Get(u); err == nil {
			_ = res.Body.Close()
			t.Errorf("GET %s reached the receiver on loopback", u)
		}
	}
	if n := hits.Load(); n != 0 {
		t.Fatalf("the receiver on loopback got %d requests", n)
	}
	res, err := NewGuard([]netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}).Client(5 * time.Second).Get(srv.URL)
	if err != nil {
		t.Fatalf("allowed loopback: %v", err)
	}
	_ = res.Body.Close()
	if hits.Load() != 1 {
		t.Fatalf("allowed loopback: %d requests arrived", hits.Load())
	}
}

// Redirects are not followed: the receiver gives its final URL.
func TestClientFollowsNoRedirect(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "http://169.254.169.254/", http.StatusTemporaryRedirect)
	}))
	defer srv.Close()
	res, err := NewGuard([]netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}).Client(5*time.Second).Post(srv.URL, "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	_ = res.Body.Close()
	if res.StatusCode != http.StatusTemporaryRedirect {
		t.Fatalf("status %d, want the 307 itself", res.StatusCode)
	}
}

// A signature made here verifies with the specification's library, and
// not with another secret or body.
func TestSignVerifies(t *testing.T) {
	t.Parallel()
	secret := NewSecret()
	if !strings.HasPrefix(secret, "whsec_") || secret == NewSecret() {
		t.Fatalf("secret %q", secret)
	}
	body := []byte(`{"seq":1,"type":"message.status"}`)
	now := time.Now()
	sig, err := Sign(secret, "evt_1", now, body)
	if err != nil {
		t.Fatal(err)
	}
	h := http.Header{}
	h.Set(HeaderID, "evt_1")
	h.Set(HeaderTimestamp, strconv.FormatInt(now.Unix(), 10))
	h.Set(HeaderSignature, sig)
	wh, _ := standardwebhooks.NewWebhook(secret)
	if err := wh.Verify(body, h); err != nil {
		t.Fatalf("verify: %v", err)
	}
	if err := wh.Verify([]byte(`{"seq":2,"type":"message.status"}`), h); err == nil {
		t.Error("a changed body verified")
	}
	other, _ := standardwebhooks.NewWebhook(NewSecret())
	if err := other.Verify(body, h); err == nil {
		t.Error("another secret verified")
	}
}
