// Package webhook holds what the API and the primary share about webhook
// deliveries: the receiver URL rules, the HTTP client that refuses
// private addresses after DNS resolution, secrets and signatures.
//
// Signatures follow the Standard Webhooks specification (the headers
// webhook-id, webhook-timestamp and webhook-signature: "v1," and the
// base64 HMAC-SHA256 of "id.timestamp.body" with the secret), so
// receivers can verify with the specification's libraries in most
// languages, or with the ten lines docs/WEBHOOKS.md shows.
package webhook

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
	"time"

	"code.dny.dev/ssrf"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

// The signature headers.
const (
	HeaderID        = standardwebhooks.HeaderWebhookID
	HeaderTimestamp = standardwebhooks.HeaderWebhookTimestamp
	HeaderSignature = standardwebhooks.HeaderWebhookSignature
)

// NewSecret makes a signing secret: "whsec_" and 32 random bytes in
// base64, the Standard Webhooks form.
func NewSecret() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return "whsec_" + base64.StdEncoding.EncodeToString(b)
}

// Sign returns the webhook-signature header value for a delivery.
func Sign(secret, id string, at time.Time, body []byte) (string, error) {
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		return "", fmt.Errorf("webhook: secret: %w", err)
	}
	return wh.Sign(id, at, body)
}

// Guard decides which addresses deliveries may connect to: public ones,
// and the private, loopback or link-local ones of the allowed networks.
type Guard struct {
	g       *ssrf.Guardian
	allowed []netip.Prefix
}

// NewGuard is a guard that also allows the networks given.
func NewGuard(allowed []netip.Prefix) *Guard {
	var v4, v6 []netip.Prefix
	for _, p := range allowed {
		if p.Addr().Is4() {
			v4 = append(v4, p)
		} else {
			v6 = append(v6, p)
		}
	}
	// Any port: receivers often listen on 8443 or 3000; the addresses
	// are what protects the suite's own network.
	return &Guard{g: ssrf.New(ssrf.WithAnyPort(), ssrf.WithAllowedV4Prefixes(v4...), ssrf.WithAllowedV6Prefixes(v6...)), allowed: allowed}
}

// ErrRefused wraps every refusal of an address.
var ErrRefused = errors.New("refused")

// CheckAddr reports whether ip may be connected to.
func (g *Guard) CheckAddr(ip netip.Addr) error {
	if err := g.g.SafeAddr(ip.Unmap()); err != nil {
		return fmt.Errorf("%w: %s is a loopback, private, link-local or reserved address (allow its network in APP_WEBHOOK_ALLOWED_NETWORKS if it is meant)", ErrRefused, ip)
	}
	return nil
}

// control checks the address a connection is about to be made to: after
// DNS resolution, so a name cannot smuggle a private address in.
func (g *Guard) control(network, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("%w: cannot parse %s", ErrRefused, address)
	}
	return g.CheckAddr(ap.Addr())
}

// CheckURL checks a receiver URL as a client gives it: http or https, a
// host, no credentials, no fragment; a literal address must be allowed.
// Names are checked when a delivery connects.
func (g *Guard) CheckURL(raw string) error {
	if len(raw) > 2048 {
		return errors.New("url must be at most 2048 characters")
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Opaque != "" {
		return errors.New("url must be an absolute http:// or https:// URL")
	}
	if u.User != nil {
		return errors.New("url must not hold credentials: receivers check the signature instead")
	}
	if u.Fragment != "" {
		return errors.New("url must not have a #fragment")
	}
	host := u.Hostname()
	if ip, err := netip.ParseAddr(strings.Trim(host, "[]")); err == nil {
		if err := g.CheckAddr(ip); err != nil {
			return fmt.Errorf("url: %w", err)
		}
	} else if strings.EqualFold(host, "localhost") || strings.HasSuffix(strings.ToLower(host), ".localhost") {
		if err := g.CheckAddr(netip.MustParseAddr("127.0.0.1")); err != nil {
			return fmt.Errorf("url: %w", err)
		}
	}
	return nil
}

// Client is the HTTP client deliveries use: it connects only to allowed
// addresses, ignores proxy variables (a proxy would hide the address),
// follows no redirects (a 3xx is a failed attempt: the receiver must
// give its final URL) and gives up after timeout.
func (g *Guard) Client(timeout time.Duration) *http.Client {
	d := &net.Dialer{Timeout: min(timeout, 10*time.Second), Control: g.control}
	tr := &http.Transport{
		Proxy:                 nil,
		DialContext:           d.DialContext,
		TLSHandshakeTimeout:   min(timeout, 10*time.Second),
		ResponseHeaderTimeout: timeout,
		MaxIdleConnsPerHost:   4,
		IdleConnTimeout:       90 * time.Second,
		ForceAttemptHTTP2:     true,
	}
	return &http.Client{Transport: tr, Timeout: timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}
