package whatsapp

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// SandboxConfig sets the sandbox's timing. A negative delay turns that
// receipt off.
type SandboxConfig struct {
	// Dir keeps the pairing across restarts (sandbox.json), as the real
	// driver's device store does; empty keeps it in memory only.
	Dir            string
	DeliveredDelay time.Duration // after the send; default 200ms
	ReadDelay      time.Duration // after the send; default 1s
	ConnectDelay   time.Duration // from Run (or a reconnect) to connected; default 50ms
	QRRotate       time.Duration // a new QR code this often while pairing; default 20s
	// Paired starts it paired as this JID when Dir holds no pairing
	// (tests); empty starts unpaired with a QR code.
	Paired string
}

// Sandbox is the stand-in for WhatsApp: it accepts sends and answers them
// with receipts, pairs when told that its QR code was scanned or after a
// phone code was asked for, and can be told to fail sends, drop the
// connection, log out, be banned or replaced, or to receive a message.
// Events that happen while no Run is connected wait, as WhatsApp keeps
// them for an offline device, and are delivered on the next connection; an
// event whose handler fails stays first in line and is offered again.
type Sandbox struct {
	cfg SandboxConfig

	mu       sync.Mutex
	jid      string
	session  Session
	running  bool
	queue    []Event
	wake     chan struct{}
	failures []SendError
	sent     []Outgoing
	seen     map[string]int // message id -> sends
	gen      int            // counts Runs; a timer of an earlier Run does nothing
}

// SandboxJID is the account the sandbox pairs as.
const SandboxJID = "15550000001@s.whatsapp.net"

// NewSandbox returns a sandbox; Run starts it.
func NewSandbox(cfg SandboxConfig) (*Sandbox, error) {
	if cfg.DeliveredDelay == 0 {
		cfg.DeliveredDelay = 200 * time.Millisecond
	}
	if cfg.ReadDelay == 0 {
		cfg.ReadDelay = time.Second
	}
	if cfg.ConnectDelay == 0 {
		cfg.ConnectDelay = 50 * time.Millisecond
	}
	if cfg.QRRotate == 0 {
		cfg.QRRotate = 20 * time.Second
	}
	s := &Sandbox{cfg: cfg, wake: make(chan struct{}, 1), seen: map[string]int{}, jid: cfg.Paired}
	if cfg.Dir != "" {
		b, err := os.ReadFile(filepath.Join(cfg.Dir, "sandbox.json"))
		switch {
		case errors.Is(err, os.ErrNotExist):
		case err != nil:
			return nil, fmt.Errorf("whatsapp: sandbox: %w", err)
		default:
			var st struct{ JID string }
			if err := json.Unmarshal(b, &st); err != nil {
				return nil, fmt.Errorf("whatsapp: sandbox: %s: %w", filepath.Join(cfg.Dir, "sandbox.json"), err)
			}
			s.jid = st.JID
		}
	}
	return s, nil
}

var _ Driver = (*Sandbox)(nil)

func (s *Sandbox) save() {
	if s.cfg.Dir == "" {
		return
	}
	b, _ := json.Marshal(struct{ JID string }{s.jid})
	_ = os.WriteFile(filepath.Join(s.cfg.Dir, "sandbox.json"), b, 0o600)
}

// emit queues an event; the caller holds mu.
func (s *Sandbox) emit(ev Event) {
	s.queue = append(s.queue, ev)
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

func (s *Sandbox) setSession(ss Session) {
	s.session = ss
	s.emit(&SessionChanged{Session: ss})
}

// after runs f under mu after d, if the same Run is still on (session
// changes: connecting, QR codes, reconnecting).
func (s *Sandbox) after(d time.Duration, f func()) {
	gen := s.gen
	time.AfterFunc(d, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.running && s.gen == gen {
			f()
		}
	})
}

// later runs f under mu after d, whether or not a Run is on: what WhatsApp
// does on its side (receipts) happens while we are offline too.
func (s *Sandbox) later(d time.Duration, f func()) {
	time.AfterFunc(d, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		f()
	})
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return strings.ToUpper(hex.EncodeToString(b))
}

// Run delivers events to h until ctx ends.
func (s *Sandbox) Run(ctx context.Context, h Handler) error {
	s.mu.Lock()
	if s.running {
		s.mu.Unlock()
		return errors.New("whatsapp: sandbox: already running")
	}
	s.running = true
	s.gen++
	s.connectLocked()
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.running = false
		// Offline from WhatsApp's point of view; what is queued stays.
		s.session = Session{State: StateDisconnected, Reason: "stopped", JID: s.jid}
		s.mu.Unlock()
	}()
	retry := time.NewTimer(time.Hour)
	defer retry.Stop()
	for {
		s.mu.Lock()
		var ev Event
		if len(s.queue) > 0 {
			ev = s.queue[0]
		}
		s.mu.Unlock()
		if ev != nil {
			if err := h(ctx, ev); err != nil {
				if ctx.Err() != nil {
					return nil
				}
				// Not acknowledged: offered again shortly.
				retry.Reset(100 * time.Millisecond)
				select {
				case <-ctx.Done():
					return nil
				case <-retry.C:
				}
				continue
			}
			s.mu.Lock()
			if len(s.queue) > 0 && s.queue[0] == ev {
				s.queue = s.queue[1:]
			}
			s.mu.Unlock()
			continue
		}
		select {
		case <-ctx.Done():
			return nil
		case <-s.wake:
		}
	}
}

// connectLocked starts pairing or connecting, as a fresh start does.
func (s *Sandbox) connectLocked() {
	if s.jid == "" {
		s.rotateQRLocked()
		return
	}
	s.setSession(Session{State: StateConnecting, JID: s.jid})
	s.after(s.cfg.ConnectDelay, func() {
		if s.running && s.session.State == StateConnecting {
			s.setSession(Session{State: StateConnected, JID: s.jid})
		}
	})
}

func (s *Sandbox) rotateQRLocked() {
	if !s.running || s.jid != "" {
		return
	}
	s.setSession(Session{State: StatePairing, QR: "2@sandbox-" + randomHex(12), QRExpires: time.Now().Add(s.cfg.QRRotate)})
	s.after(s.cfg.QRRotate, s.rotateQRLocked)
}

// NewMessageID returns an id shaped like WhatsApp's own.
func (s *Sandbox) NewMessageID() string { return "3EB0" + randomHex(8) }

// Send accepts the message when connected, unless told to fail it.
func (s *Sandbox) Send(ctx context.Context, m Outgoing) (time.Time, error) {
	if err := ctx.Err(); err != nil {
		return time.Time{}, &SendError{Reason: err.Error(), Retryable: true}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.running || s.session.State != StateConnected {
		return time.Time{}, ErrNotConnected
	}
	if m.ID == "" || m.Chat == "" {
		return time.Time{}, &SendError{Reason: "message without id or chat"}
	}
	if m.Media != nil {
		var data []byte
		if m.Media.Body != nil {
			var err error
			if data, err = io.ReadAll(m.Media.Body); err != nil {
				return time.Time{}, &SendError{Reason: "cannot read media: " + err.Error(), Retryable: true}
			}
		}
		if len(data) == 0 || m.Media.MimeType == "" {
			return time.Time{}, &SendError{Reason: "media without bytes or type"}
		}
		m.Media = &OutgoingMedia{MimeType: m.Media.MimeType, FileName: m.Media.FileName, Data: data}
	}
	if len(s.failures) > 0 {
		f := s.failures[0]
		s.failures = s.failures[1:]
		return time.Time{}, &f
	}
	s.sent = append(s.sent, m)
	s.seen[m.ID]++
	now := time.Now()
	receipt := func(d time.Duration, t ReceiptType) {
		if d < 0 {
			return
		}
		s.later(d, func() {
			s.emit(&Receipt{Chat: m.Chat, Sender: m.Chat, IDs: []string{m.ID}, Type: t, Timestamp: time.Now()})
		})
	}
	receipt(s.cfg.DeliveredDelay, ReceiptDelivered)
	receipt(s.cfg.ReadDelay, ReceiptRead)
	return now, nil
}

// PairPhone returns a code; the sandbox then pairs after a moment, as if
// the code had been typed on the phone.
func (s *Sandbox) PairPhone(ctx context.Context, phone string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.jid != "" {
		return "", ErrAlreadyPaired
	}
	if !s.running {
		return "", ErrNotConnected
	}
	digits := strings.TrimPrefix(phone, "+")
	s.after(500*time.Millisecond, func() { s.pairLocked(digits + "@s.whatsapp.net") })
	return randomHex(2) + "-" + randomHex(2), nil
}

// Scan pairs the sandbox as if its QR code had been scanned.
func (s *Sandbox) Scan() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.jid != "" {
		return ErrAlreadyPaired
	}
	if !s.running {
		return ErrNotConnected
	}
	s.pairLocked(SandboxJID)
	return nil
}

func (s *Sandbox) pairLocked(jid string) {
	if !s.running || s.jid != "" {
		return
	}
	s.jid = jid
	s.save()
	s.connectLocked()
}

// Download returns the sandbox's media bytes: the caption repeated to the
// declared size.
func (s *Sandbox) Download(ctx context.Context, m *Media, maxBytes int64) (io.ReadCloser, error) {
	if m == nil {
		return nil, errors.New("whatsapp: sandbox: no media")
	}
	if m.Size > maxBytes {
		return nil, fmt.Errorf("whatsapp: media of %d bytes is over the limit of %d", m.Size, maxBytes)
	}
	b, _ := m.Handle.([]byte)
	return io.NopCloser(bytes.NewReader(b)), nil
}

// Logout unlinks the device: logged_out, then pairing anew.
func (s *Sandbox) Logout(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.jid == "" {
		return ErrNotPaired
	}
	s.loggedOutLocked("logged out by request")
	return nil
}

func (s *Sandbox) loggedOutLocked(reason string) {
	s.jid = ""
	s.save()
	s.setSession(Session{State: StateLoggedOut, Reason: reason})
	s.after(s.cfg.ConnectDelay, s.rotateQRLocked)
}

// FailNext makes the next sends fail with err, in order.
func (s *Sandbox) FailNext(errs ...SendError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failures = append(s.failures, errs...)
}

// Disconnect drops the connection; it comes back after after.
func (s *Sandbox) Disconnect(reason string, after time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.jid == "" || !s.running {
		return
	}
	s.setSession(Session{State: StateDisconnected, Reason: reason, JID: s.jid})
	s.after(after, func() {
		if s.running && s.session.State == StateDisconnected {
			s.connectLocked()
		}
	})
}

// LogOutRemotely is the phone unlinking the device.
func (s *Sandbox) LogOutRemotely(reason string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.jid != "" {
		s.loggedOutLocked(reason)
	}
}

// Ban bans the account until until; it reconnects then.
func (s *Sandbox) Ban(code string, until time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.setSession(Session{State: StateTemporarilyBanned, Reason: code, Until: until, JID: s.jid})
	s.after(time.Until(until), func() {
		if s.running && s.session.State == StateTemporarilyBanned {
			s.connectLocked()
		}
	})
}

// Replace is another client taking the session; the sandbox stays off.
func (s *Sandbox) Replace() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.setSession(Session{State: StateReplaced, Reason: "another client connected with this session", JID: s.jid})
}

// Inject delivers an incoming message, filling in what is missing.
func (s *Sandbox) Inject(m Incoming) Incoming {
	s.mu.Lock()
	defer s.mu.Unlock()
	if m.ID == "" {
		m.ID = "3A" + randomHex(9)
	}
	if m.Sender == "" {
		m.Sender = m.Chat
	}
	if m.Timestamp.IsZero() {
		m.Timestamp = time.Now()
	}
	if m.Kind == "" {
		m.Kind = "text"
	}
	s.emit(&m)
	return m
}

// Sent lists every accepted send in order, retries included.
func (s *Sandbox) Sent() []Outgoing {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Outgoing(nil), s.sent...)
}

// Session is the sandbox's current state.
func (s *Sandbox) Session() Session {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.session
}
