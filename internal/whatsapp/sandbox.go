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

	"app/internal/msg"
)

// SandboxConfig sets the sandbox's timing. A negative delay turns that
// receipt off.
type SandboxConfig struct {
	// Dir keeps the pairing across restarts (sandbox.json), as the real
	// driver's device store does, and what WhatsApp holds for us until we
	// acknowledge it (sandbox-queue.jsonl); empty keeps both in memory only.
	Dir            string
	DeliveredDelay time.Duration // after the send; default 200ms
	ReadDelay      time.Duration // after the send; default 1s
	ConnectDelay   time.Duration // from Run (or a reconnect) to connected; default 50ms
	QRRotate       time.Duration // a new QR code this often while pairing; default 20s
	// MediaRetryDelay is how long the phone takes to send a file again
	// (RetryMedia); default 100ms.
	MediaRetryDelay time.Duration
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
//
// Like WhatsApp's servers, it keeps incoming messages and receipts until
// they are acknowledged: with Dir set, in sandbox-queue.jsonl there, so a
// primary killed while messages wait for it gets them from the next Run,
// in the same or another process. A receipt is kept from the send on,
// with the time it is due.
type Sandbox struct {
	cfg SandboxConfig

	mu       sync.Mutex
	jid      string
	session  Session
	running  bool
	queue    []Event // session changes: this connection's, never kept
	queueAt  []time.Time
	pending  []*held  // incoming messages and receipts until acknowledged, in order
	nextN    int64    // number of the next held event
	qfile    *os.File // sandbox-queue.jsonl, appended to; nil until loaded or without Dir
	qlines   int      // lines in it, for compaction
	wake     chan struct{}
	failures []SendError
	sent     []Outgoing
	seen     map[string]int // message id -> sends
	rejected []RejectedCall // calls rejected through RejectCall, in order
	gen      int            // counts Runs; a timer of an earlier Run does nothing
	acts     sandboxActs    // chat actions done, and a silence (sandbox_actions.go)

	// contacts: the blocklist and chat settings (sandbox_contacts.go).
	contacts sandboxContacts
	nums     sandboxNumbers  // the number directory (sandbox_numbers.go)
	profiles sandboxProfiles // profiles, and our own (sandbox_profiles.go)
	groups   sandboxGroups   // the group directory (sandbox_groups.go)
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

// held is an incoming message, receipt or call WhatsApp holds for us, to be
// delivered from At on; one line of sandbox-queue.jsonl (Ack lines mark
// the acknowledged).
type held struct {
	N       int64         `json:"n"`
	At      time.Time     `json:"at,omitzero"`
	In      *Incoming     `json:"incoming,omitempty"`
	Media   []byte        `json:"media,omitempty"` // In.Media.Handle, the sandbox's media bytes
	Receipt *Receipt      `json:"receipt,omitempty"`
	Retried *MediaRetried `json:"media_retried,omitempty"`
	Call    *Call         `json:"call,omitempty"`
	Ack     int64         `json:"ack,omitempty"`
}

func (h *held) event() Event {
	switch {
	case h.In != nil:
		return h.In
	case h.Retried != nil:
		return h.Retried
	case h.Receipt != nil:
		return h.Receipt
	case h.Call != nil:
		return h.Call
	}
	return nil
}

// media is the held event's file, whose bytes are kept in Media.
func (h *held) media() *Media {
	switch {
	case h.In != nil:
		return h.In.Media
	case h.Retried != nil:
		return h.Retried.Media
	}
	return nil
}

const queueFile = "sandbox-queue.jsonl"

// emit queues a session change; the caller holds mu.
func (s *Sandbox) emit(ev Event) {
	s.queue = append(s.queue, ev)
	s.queueAt = append(s.queueAt, time.Now())
	s.poke()
}

func (s *Sandbox) poke() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// holdLocked keeps incoming messages or receipts until they are
// acknowledged; with Dir, on disk (one sync for all) before it returns.
func (s *Sandbox) holdLocked(hs ...*held) error {
	if len(hs) == 0 {
		return nil
	}
	if err := s.loadLocked(false); err != nil {
		return err
	}
	n := s.nextN
	for _, h := range hs {
		n++
		h.N = n
		if h.At.IsZero() {
			h.At = time.Now()
		}
		if md := h.media(); md != nil {
			h.Media, _ = md.Handle.([]byte)
		}
		if s.qfile != nil {
			if err := s.writeLocked(h); err != nil {
				return err
			}
		}
	}
	if s.qfile != nil {
		if err := s.qfile.Sync(); err != nil {
			return fmt.Errorf("whatsapp: sandbox: sync %s: %w", queueFile, err)
		}
	}
	s.nextN = n
	s.pending = append(s.pending, hs...)
	s.poke()
	return nil
}

func (s *Sandbox) writeLocked(h *held) error {
	b, err := json.Marshal(h)
	if err != nil {
		return fmt.Errorf("whatsapp: sandbox: %w", err)
	}
	if _, err := s.qfile.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("whatsapp: sandbox: write %s: %w", queueFile, err)
	}
	s.qlines++
	return nil
}

// ackLocked forgets h: WhatsApp got our acknowledgement. A lost ack line
// (a crash before the page cache reached the disk) is a redelivery, which
// the handler takes as a duplicate.
func (s *Sandbox) ackLocked(h *held) {
	for i, p := range s.pending {
		if p.N == h.N {
			s.pending = append(s.pending[:i:i], s.pending[i+1:]...)
			break
		}
	}
	if s.qfile == nil {
		return
	}
	_ = s.writeLocked(&held{Ack: h.N})
	if s.qlines > 4096 && s.qlines > 4*len(s.pending) {
		_ = s.loadLocked(true) // rewrites the file with what is left
	}
}

// loadLocked reads what is held from Dir (again when reload is set, as at
// the start of a Run: another process may have held the account since)
// and rewrites the file with just that. Without Dir it does nothing.
func (s *Sandbox) loadLocked(reload bool) error {
	if s.cfg.Dir == "" || (s.qfile != nil && !reload) {
		return nil
	}
	if s.qfile != nil {
		_ = s.qfile.Close()
		s.qfile = nil
	}
	path := filepath.Join(s.cfg.Dir, queueFile)
	b, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("whatsapp: sandbox: %w", err)
	}
	var kept []*held
	acked := map[int64]bool{}
	var maxN int64
	for _, line := range bytes.Split(b, []byte("\n")) {
		var h held
		if len(line) == 0 || json.Unmarshal(line, &h) != nil {
			continue // a line cut short by a crash: its event was never confirmed
		}
		if h.Ack != 0 {
			acked[h.Ack] = true
			continue
		}
		if h.event() == nil {
			continue
		}
		if md := h.media(); md != nil {
			md.Handle = h.Media
		}
		maxN = max(maxN, h.N)
		kept = append(kept, &h)
	}
	s.pending = s.pending[:0]
	for _, h := range kept {
		if !acked[h.N] {
			s.pending = append(s.pending, h)
		}
	}
	s.nextN = max(s.nextN, maxN)
	// Compacted: written aside, synced, renamed over the old file.
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("whatsapp: sandbox: %w", err)
	}
	s.qfile, s.qlines = f, 0
	for _, h := range s.pending {
		if err := s.writeLocked(h); err != nil {
			_ = f.Close()
			s.qfile = nil
			return err
		}
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		s.qfile = nil
		return fmt.Errorf("whatsapp: sandbox: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		_ = f.Close()
		s.qfile = nil
		return fmt.Errorf("whatsapp: sandbox: %w", err)
	}
	if d, err := os.Open(s.cfg.Dir); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
	s.poke()
	return nil
}

// nextLocked is what Run delivers next, in the order things happened: a
// session change or the held event that became due first; otherwise
// when the next one falls due (zero: none is held).
func (s *Sandbox) nextLocked(now time.Time) (Event, *held, time.Time) {
	var first *held
	var soonest time.Time
	for _, h := range s.pending {
		if h.At.After(now) {
			if soonest.IsZero() || h.At.Before(soonest) {
				soonest = h.At
			}
			continue
		}
		if first == nil || h.At.Before(first.At) {
			first = h
		}
	}
	if len(s.queue) > 0 && (first == nil || !first.At.Before(s.queueAt[0])) {
		return s.queue[0], nil, time.Time{}
	}
	if first != nil {
		return first.event(), first, time.Time{}
	}
	return nil, nil, soonest
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
	if err := s.loadLocked(true); err != nil {
		s.mu.Unlock()
		return err
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
	due := time.NewTimer(time.Hour)
	defer due.Stop()
	for {
		s.mu.Lock()
		ev, kept, soonest := s.deliverableLocked(time.Now())
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
			if kept != nil {
				s.ackLocked(kept)
			} else if len(s.queue) > 0 && s.queue[0] == ev {
				s.queue, s.queueAt = s.queue[1:], s.queueAt[1:]
			}
			s.mu.Unlock()
			continue
		}
		wait := time.Hour
		if !soonest.IsZero() {
			wait = time.Until(soonest)
		}
		due.Reset(wait)
		select {
		case <-ctx.Done():
			return nil
		case <-s.wake:
		case <-due.C:
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
	if se := refuseOutgoing(m); se != nil {
		return time.Time{}, se
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
	// WhatsApp has the message, and the receipts to come: they are kept
	// from now on, due when the recipient's phone would send them.
	now := time.Now()
	var receipts []*held
	for _, r := range []struct {
		d time.Duration
		t ReceiptType
	}{{s.cfg.DeliveredDelay, ReceiptDelivered}, {s.cfg.ReadDelay, ReceiptRead}} {
		// A reaction, an edit or a revoke has only the server's receipt.
		if r.d >= 0 && msg.IsContent(m.Kind) {
			at := now.Add(r.d)
			receipts = append(receipts, &held{At: at, Receipt: &Receipt{Chat: m.Chat, Sender: m.Chat, IDs: []string{m.ID}, Type: r.t, Timestamp: at}})
		}
	}
	if err := s.holdLocked(receipts...); err != nil {
		return time.Time{}, &SendError{Reason: err.Error(), Retryable: true}
	}
	s.sent = append(s.sent, m)
	s.seen[m.ID]++
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
	if err := goneMedia(m); err != nil {
		return nil, err
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
	m, _ = s.Receive(m)
	return m
}

// Receive is Inject that says whether the message is kept: with Dir, on
// disk when it returns nil, as a message WhatsApp's servers accepted for us.
func (s *Sandbox) Receive(m Incoming) (Incoming, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if m.ID == "" {
		m.ID = "3A" + randomHex(9)
	}
	if m.Sender == "" {
		m.Sender = m.Chat
		if m.FromMe && s.jid != "" {
			m.Sender = s.jid // written on our phone
		}
	}
	if m.Timestamp.IsZero() {
		m.Timestamp = time.Now()
	}
	if m.Kind == "" {
		m.Kind = "text"
	}
	if m.ChatName == "" {
		m.ChatName = s.groupNameLocked(m.Chat)
	}
	return m, s.holdLocked(&held{In: &m})
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
