package whatsapp

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"go.mau.fi/libsignal/ecc"
	"go.mau.fi/libsignal/keys/identity"
	"go.mau.fi/libsignal/keys/prekey"
	"go.mau.fi/libsignal/util/optional"
	"go.mau.fi/whatsmeow"
	waBinary "go.mau.fi/whatsmeow/binary"
	"go.mau.fi/whatsmeow/proto/waAdv"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"
	waLog "go.mau.fi/whatsmeow/util/log"
	"google.golang.org/protobuf/proto"

	"app/internal/store"
	"app/internal/store/sqlitestore"
	"app/internal/testutil"
)

var (
	anna      = types.NewJID("4915112345678", types.DefaultUserServer)
	annaPhone = types.JID{User: "4915112345678", Device: 3, Server: types.DefaultUserServer}
	group     = types.NewJID("120363000000000000", types.GroupServer)
)

// The whatsmeow handler acknowledges a message only when our Handler
// stored it (whatsmeow sends the ack when the handler returns true).
func TestWhatsmeowMappingAckOnlyAfterHandler(t *testing.T) {
	d := NewWhatsmeow(WhatsmeowConfig{StoreDir: t.TempDir(), Log: zerolog.Nop()})
	msg := &events.Message{
		Info:    types.MessageInfo{MessageSource: types.MessageSource{Chat: anna, Sender: anna}, ID: "3EB0X"},
		Message: &waE2E.Message{Conversation: proto.String("hi")},
	}
	var got []Event
	fail := errors.New("disk full")
	var result error
	h := func(_ context.Context, ev Event) error { got = append(got, ev); return result }
	handle := d.handler(context.Background(), h, nil, 1)

	result = fail
	if handle(msg) {
		t.Error("message acknowledged although the handler failed")
	}
	result = nil
	if !handle(msg) {
		t.Error("message not acknowledged although the handler stored it")
	}
	if !handle(&events.Presence{From: anna}) {
		t.Error("an event we ignore must not be left unacknowledged")
	}
	if len(got) != 2 {
		t.Fatalf("handler called %d times, want 2", len(got))
	}
	if in, ok := got[1].(*Incoming); !ok || in.Text != "hi" {
		t.Errorf("handler got %+v", got[1])
	}
}

func TestWhatsmeowStoreOpensAndMigrates(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "wa") // created by openStore

	version := func() (v int, tables int) {
		t.Helper()
		db, err := sql.Open("sqlite", storeDSN(filepath.Join(dir, "whatsmeow.db")))
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		if err := db.QueryRow("SELECT version FROM whatsmeow_version").Scan(&v); err != nil {
			t.Fatalf("schema version: %v", err)
		}
		if err := db.QueryRow("SELECT count(*) FROM sqlite_master WHERE type='table' AND name LIKE 'whatsmeow_%'").Scan(&tables); err != nil {
			t.Fatal(err)
		}
		return v, tables
	}

	c1, err := openStore(ctx, filepath.Join(dir, "whatsmeow.db"), waLog.Noop)
	if err != nil {
		t.Fatalf("first open: %v", err)
	}
	dev, err := c1.GetFirstDevice(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if dev.ID != nil {
		t.Fatalf("fresh store has device %v, want none (the driver would pair)", dev.ID)
	}
	if err := c1.Close(); err != nil {
		t.Fatal(err)
	}
	v1, n1 := version()
	if v1 < 1 || n1 < 5 {
		t.Fatalf("after migration: version %d, %d tables", v1, n1)
	}
	// The decrypted event buffer (EnableDecryptedEventBuffer) lives here.
	func() {
		db, err := sql.Open("sqlite", storeDSN(filepath.Join(dir, "whatsmeow.db")))
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		var n int
		if err := db.QueryRow("SELECT count(*) FROM whatsmeow_event_buffer").Scan(&n); err != nil {
			t.Errorf("event buffer table: %v", err)
		}
	}()
	if _, err := os.Stat(filepath.Join(dir, "whatsmeow.db")); err != nil {
		t.Fatalf("store file: %v", err)
	}

	c2, err := openStore(ctx, filepath.Join(dir, "whatsmeow.db"), waLog.Noop)
	if err != nil {
		t.Fatalf("second open: %v", err)
	}
	dev, err = c2.GetFirstDevice(ctx)
	if err != nil || dev.ID != nil {
		t.Fatalf("second open: device %v, err %v", dev, err)
	}
	if err := c2.Close(); err != nil {
		t.Fatal(err)
	}
	if v2, n2 := version(); v2 != v1 || n2 != n1 {
		t.Fatalf("second open changed the schema: version %d->%d, tables %d->%d", v1, v2, n1, n2)
	}

	// A store that cannot be opened is Run's error, at once.
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	d := NewWhatsmeow(WhatsmeowConfig{StoreDir: filepath.Join(file, "sub"), Log: zerolog.Nop()})
	ctx2, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := d.Run(ctx2, func(context.Context, Event) error { return nil }); err == nil {
		t.Fatal("Run with an unusable store directory returned nil")
	}
	if err := NewWhatsmeow(WhatsmeowConfig{Log: zerolog.Nop()}).Run(ctx2, func(context.Context, Event) error { return nil }); err == nil {
		t.Fatal("Run without StoreDir returned nil")
	}
}

// plantDevice stores a paired-looking device so the driver dials as a
// logged-in client (the dial fails long before any key is used).
func plantDevice(t *testing.T, dir string) types.JID {
	t.Helper()
	return plantDeviceAs(t, dir, types.JID{User: "15550001111", Device: 7, Server: types.DefaultUserServer})
}

// plantDeviceAs stores a device with its own keys as jid in dir.
func plantDeviceAs(t *testing.T, dir string, jid types.JID) types.JID {
	t.Helper()
	ctx := context.Background()
	c, err := openStore(ctx, filepath.Join(dir, "whatsmeow.db"), waLog.Noop)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	dev := c.NewDevice()
	dev.ID = &jid
	dev.Account = &waAdv.ADVSignedDeviceIdentity{
		Details:             []byte{1},
		AccountSignature:    make([]byte, 64),
		AccountSignatureKey: make([]byte, 32),
		DeviceSignature:     make([]byte, 64),
	}
	if err := dev.Save(ctx); err != nil {
		t.Fatalf("plant device: %v", err)
	}
	return jid
}

// With WhatsApp out of reach the driver says why, keeps retrying with a
// growing, capped delay, and stops when told to.
func TestWhatsmeowNetworkDown(t *testing.T) {
	for _, paired := range []bool{true, false} {
		name := "unpaired"
		if paired {
			name = "paired"
		}
		t.Run(name, func(t *testing.T) {
			// A loopback port that refuses: listened on, then closed.
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			addr := ln.Addr().String()
			ln.Close()

			dir := t.TempDir()
			var self string
			if paired {
				jid := plantDevice(t, dir)
				self = jid.ToNonAD().String()
			}
			logs := &testutil.Buffer{}
			const maxBackoff = 400 * time.Millisecond
			d := NewWhatsmeow(WhatsmeowConfig{StoreDir: dir, Log: zerolog.New(logs), MaxBackoff: maxBackoff})
			d.initialBackoff = 50 * time.Millisecond
			var mu sync.Mutex
			var dials []time.Time
			var sessions []Session
			d.dialContext = func(ctx context.Context, network, _ string) (net.Conn, error) {
				mu.Lock()
				dials = append(dials, time.Now())
				mu.Unlock()
				var nd net.Dialer
				return nd.DialContext(ctx, network, addr)
			}
			h := func(_ context.Context, ev Event) error {
				if sc, ok := ev.(*SessionChanged); ok {
					mu.Lock()
					sessions = append(sessions, sc.Session)
					mu.Unlock()
				}
				return nil
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			done := make(chan error, 1)
			go func() { done <- d.Run(ctx, h) }()

			const wantDials = 5
			testutil.Eventually(t, 15*time.Second, fmt.Sprint(wantDials, " dial attempts"), func() (bool, string) {
				mu.Lock()
				n := len(dials)
				mu.Unlock()
				return n >= wantDials, fmt.Sprint("only ", n)
			})
			if _, err := d.Send(ctx, Outgoing{ID: "3EB0X", Chat: "4915112345678@s.whatsapp.net", Text: "hi"}); err != ErrNotConnected {
				t.Errorf("Send while offline: %v, want ErrNotConnected", err)
			}
			cancel()
			stopped := time.Now()
			select {
			case err := <-done:
				if err != nil {
					t.Fatalf("Run returned %v after cancel, want nil", err)
				}
				if took := time.Since(stopped); took > 2*time.Second {
					t.Errorf("Run took %v to return after cancel", took)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("Run did not return within 5s of cancel")
			}

			mu.Lock()
			defer mu.Unlock()
			var gaps []time.Duration
			for i := 1; i < len(dials); i++ {
				gaps = append(gaps, dials[i].Sub(dials[i-1]))
			}
			t.Logf("%d dials, gaps %v", len(dials), gaps)
			t.Logf("sessions: %+v", sessions)
			// Nominal delays 50, 100, 200, 400ms, each jittered into [d/2, d].
			if gaps[0] < 20*time.Millisecond {
				t.Errorf("first retry after %v: no back-off", gaps[0])
			}
			if gaps[3] <= gaps[0] {
				t.Errorf("delay did not grow: first %v, fourth %v", gaps[0], gaps[3])
			}
			for i, g := range gaps {
				if g > maxBackoff+time.Second {
					t.Errorf("gap %d is %v: back-off not capped at %v", i, g, maxBackoff)
				}
			}

			want := StateDisconnected
			if !paired {
				want = StateUnpaired
			}
			var offline []Session
			for _, s := range sessions {
				if s.State == want && s.Reason != "" {
					offline = append(offline, s)
				}
			}
			if len(offline) != 1 {
				t.Fatalf("sessions %+v: want exactly one %s with a reason (not one per retry)", sessions, want)
			}
			if r := offline[0].Reason; !strings.Contains(r, addr) || !strings.Contains(r, "connection refused") {
				t.Errorf("reason %q does not carry the dial error for %s", r, addr)
			}
			if offline[0].JID != self {
				t.Errorf("JID %q, want %q", offline[0].JID, self)
			}
			if paired && sessions[0].State != StateConnecting {
				t.Errorf("first session %+v, want connecting", sessions[0])
			}

			out := logs.String()
			warns := strings.Count(out, `"message":"Not connected to WhatsApp; retrying."`)
			if warns < len(dials)-1 || warns > len(dials) {
				t.Errorf("%d retry warnings for %d failed dials, want one each", warns, len(dials))
			}
			if !strings.Contains(out, `"component":"whatsmeow"`) {
				t.Error("whatsmeow's own logs are not routed into zerolog")
			}
		})
	}
}

func TestWhatsmeowNotRunning(t *testing.T) {
	d := NewWhatsmeow(WhatsmeowConfig{StoreDir: t.TempDir(), Log: zerolog.Nop()})
	ctx := context.Background()
	if _, err := d.Send(ctx, Outgoing{ID: "3EB0X", Chat: "4915112345678@s.whatsapp.net", Text: "hi"}); err != ErrNotConnected {
		t.Errorf("Send: %v, want ErrNotConnected", err)
	}
	if _, err := d.PairPhone(ctx, "4915112345678"); err != ErrNotConnected {
		t.Errorf("PairPhone: %v, want ErrNotConnected", err)
	}
	if err := d.Logout(ctx); err != ErrNotPaired {
		t.Errorf("Logout: %v, want ErrNotPaired", err)
	}
	a, b := d.NewMessageID(), d.NewMessageID()
	if !strings.HasPrefix(a, "3EB0") || len(a) < 12 || a == b {
		t.Errorf("NewMessageID: %q, %q", a, b)
	}
	big := &Media{Size: 2 << 20, Handle: &waE2E.ImageMessage{}}
	if _, err := d.Download(ctx, big, 1<<20); !errors.Is(err, errMediaTooLarge) {
		t.Errorf("Download over the limit: %v, want refused before downloading", err)
	}
	if _, err := d.Download(ctx, &Media{Size: 10, Handle: "not whatsmeow"}, 1<<20); err == nil {
		t.Error("Download with a foreign handle succeeded")
	}

	// Rejected before anything is sent, and never worth a retry.
	for _, m := range []Outgoing{
		{ID: "1", Chat: "not a jid", Text: "x"},
		{ID: "2", Chat: "123@example.com", Text: "x"},
		{ID: "3", Chat: "4915112345678@s.whatsapp.net", Text: "  "},
		{ID: "4", Chat: "4915112345678@s.whatsapp.net", Text: strings.Repeat("x", 70000)},
	} {
		_, err := d.Send(ctx, m)
		var se *SendError
		if !errors.As(err, &se) || se.Retryable {
			t.Errorf("Send(%q, %d bytes): %v, want a non-retryable SendError", m.Chat, len(m.Text), err)
		}
	}
}

func TestWhatsmeowRecipients(t *testing.T) {
	for mt, want := range map[string]whatsmeow.MediaType{"image/png": whatsmeow.MediaImage, "video/mp4": whatsmeow.MediaVideo,
		"audio/ogg": whatsmeow.MediaAudio, "application/pdf": whatsmeow.MediaDocument, "image/svg+xml": whatsmeow.MediaDocument} {
		if got := mediaKind(mt); got != want {
			t.Errorf("mediaKind(%s) = %v, want %v", mt, got, want)
		}
	}
	for in, want := range map[string]string{
		"4915112345678@s.whatsapp.net":   "4915112345678@s.whatsapp.net",
		"+4915112345678":                 "4915112345678@s.whatsapp.net",
		"4915112345678:3@s.whatsapp.net": "4915112345678@s.whatsapp.net",
		"120363000000000000@g.us":        "120363000000000000@g.us",
		"99887766@lid":                   "99887766@lid",
	} {
		jid, err := parseRecipient(in)
		if err != nil || jid.String() != want {
			t.Errorf("parseRecipient(%q) = %v, %v; want %s", in, jid, err, want)
		}
	}
}

func TestWhatsmeowSendErrors(t *testing.T) {
	tests := []struct {
		err                error
		retryable, limited bool
		notConnected       bool
	}{
		{err: whatsmeow.ErrNotConnected, notConnected: true},
		{err: fmt.Errorf("failed to get device list: %w", whatsmeow.ErrNotConnected), notConnected: true},
		{err: whatsmeow.ErrNotLoggedIn, notConnected: true},
		{err: context.DeadlineExceeded, retryable: true},
		{err: whatsmeow.ErrMessageTimedOut, retryable: true},
		{err: &whatsmeow.DisconnectedError{Action: "message send"}, retryable: true},
		{err: &net.OpError{Op: "dial", Err: errors.New("refused")}, retryable: true},
		{err: fmt.Errorf("%w 429", whatsmeow.ErrServerReturnedError), retryable: true, limited: true},
		{err: fmt.Errorf("%w 500", whatsmeow.ErrServerReturnedError), retryable: true},
		{err: fmt.Errorf("%w 479", whatsmeow.ErrServerReturnedError), retryable: true},
		{err: fmt.Errorf("%w 406", whatsmeow.ErrServerReturnedError)},
		{err: fmt.Errorf("failed to get user info: %w", whatsmeow.ErrIQRateOverLimit), retryable: true, limited: true},
		{err: fmt.Errorf("failed to get group members: %w", whatsmeow.ErrIQNotFound)},
		{err: whatsmeow.ErrRecipientADJID},
		{err: fmt.Errorf("%w x.example", whatsmeow.ErrUnknownServer)},
		{err: errors.New("no LID found for 49151@s.whatsapp.net from server")},
		{err: errors.New("something new"), retryable: true},
	}
	for _, tt := range tests {
		t.Run(tt.err.Error(), func(t *testing.T) {
			se := classifySendError(tt.err)
			if tt.notConnected {
				if se != ErrNotConnected {
					t.Fatalf("got %+v, want ErrNotConnected", se)
				}
				return
			}
			if se.Retryable != tt.retryable || se.RateLimited != tt.limited {
				t.Errorf("got retryable=%v rateLimited=%v, want %v %v", se.Retryable, se.RateLimited, tt.retryable, tt.limited)
			}
			if se.Reason != tt.err.Error() {
				t.Errorf("reason %q, want %q", se.Reason, tt.err.Error())
			}
		})
	}
}

// A sender who declares a small file cannot make Download read a big one.
func TestWhatsmeowDownloadLimit(t *testing.T) {
	body := bytes.Repeat([]byte("x"), 5000)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/chunked" {
			w.(http.Flusher).Flush() // no Content-Length
		}
		_, _ = w.Write(body)
	}))
	defer srv.Close()
	client := &http.Client{Transport: &limitTransport{base: http.DefaultTransport}}
	get := func(path string, limit int64) ([]byte, error) {
		ctx, cancel := context.WithTimeout(context.WithValue(context.Background(), maxBytesKey{}, limit), 10*time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+path, nil)
		resp, err := client.Do(req)
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		var buf bytes.Buffer
		_, err = buf.ReadFrom(resp.Body)
		return buf.Bytes(), err
	}
	for _, path := range []string{"/", "/chunked"} {
		if data, err := get(path, 1000); !errors.Is(err, errMediaTooLarge) || len(data) > 1001 {
			t.Errorf("%s: read %d bytes, err %v; want cut at the limit", path, len(data), err)
		}
		if data, err := get(path, 5000); err != nil || len(data) != 5000 {
			t.Errorf("%s: exactly the limit: %d bytes, %v", path, len(data), err)
		}
	}
}

func TestWhatsmeowBackoff(t *testing.T) {
	b := reconnectBackoff{initial: time.Second, max: 60 * time.Second}
	nominal := []time.Duration{1, 2, 4, 8, 16, 32, 60, 60, 60}
	for i, n := range nominal {
		n *= time.Second
		got := b.next()
		if got < n/2 || got > n {
			t.Errorf("step %d: %v, want within [%v, %v]", i, got, n/2, n)
		}
	}
	b.reset()
	if got := b.next(); got > time.Second {
		t.Errorf("after reset: %v, want at most 1s", got)
	}
}

// WhatsApp delivers a message again when it was not acknowledged, but the
// Signal session moved on when it was first decrypted: only the decrypted
// event buffer lets the driver hand it to the Handler a second time. Two
// devices with their own stores, Anna's encrypting through libsignal for
// ours, and whatsmeow's own decrypt path on our side.
func TestWhatsmeowRedeliveryAfterFailedHandler(t *testing.T) {
	ctx := context.Background()
	ourDir := t.TempDir()
	ourJID := plantDevice(t, ourDir)
	ours, err := openStore(ctx, filepath.Join(ourDir, "whatsmeow.db"), waLog.Noop)
	if err != nil {
		t.Fatal(err)
	}
	defer ours.Close()
	ourDev, err := ours.GetFirstDevice(ctx)
	if err != nil {
		t.Fatal(err)
	}
	annaDir := t.TempDir()
	plantDeviceAs(t, annaDir, annaPhone)
	annas, err := openStore(ctx, filepath.Join(annaDir, "whatsmeow.db"), waLog.Noop)
	if err != nil {
		t.Fatal(err)
	}
	defer annas.Close()
	annaDev, err := annas.GetFirstDevice(ctx)
	if err != nil {
		t.Fatal(err)
	}

	// Anna fetches our prekey bundle (here straight from our store, as the
	// server would hand it out) and encrypts one message for our device.
	pk, err := ourDev.PreKeys.GenOnePreKey(ctx)
	if err != nil {
		t.Fatal(err)
	}
	spk := ourDev.SignedPreKey
	bundle := prekey.NewBundle(ourDev.RegistrationID, uint32(ourJID.Device), optional.NewOptionalUint32(pk.KeyID), spk.KeyID,
		ecc.NewDjbECPublicKey(*pk.Pub), ecc.NewDjbECPublicKey(*spk.Pub), *spk.Signature,
		identity.NewKey(ecc.NewDjbECPublicKey(*ourDev.IdentityKey.Pub)))
	plaintext, err := proto.Marshal(&waE2E.Message{Conversation: proto.String("are you there?")})
	if err != nil {
		t.Fatal(err)
	}
	//lint:ignore SA1019 whatsmeow's own encrypt path stands in for Anna's phone; there is no public one for a single device
	enc, _, err := whatsmeow.NewClient(annaDev, waLog.Noop).DangerousInternals().EncryptMessageForDevice(ctx, plaintext, ourJID, bundle, nil, nil)
	if err != nil {
		t.Fatalf("encrypt: %v", err)
	}
	ts := time.Now().Truncate(time.Second)
	node := &waBinary.Node{Tag: "message", Attrs: waBinary.Attrs{"id": "3EB0AGAIN", "from": annaPhone, "t": ts.Unix(), "type": "text"},
		Content: []waBinary.Node{*enc}}

	// Our Handler fails the first time, as a store that is away would.
	var mu sync.Mutex
	calls := 0
	var stored []*Incoming
	storeUp := false
	h := func(_ context.Context, ev Event) error {
		in, ok := ev.(*Incoming)
		if !ok {
			return nil
		}
		mu.Lock()
		defer mu.Unlock()
		calls++
		if !storeUp {
			return errors.New("database unavailable")
		}
		stored = append(stored, in)
		return nil
	}
	d := NewWhatsmeow(WhatsmeowConfig{StoreDir: ourDir, Log: zerolog.Nop()})
	cli := d.newClient(ctx, h, ourDev)
	deliver := func() {
		info := &types.MessageInfo{MessageSource: types.MessageSource{Chat: anna, Sender: annaPhone}, ID: "3EB0AGAIN", Timestamp: ts, Type: "text"}
		//lint:ignore SA1019 the decrypt path a message from WhatsApp's socket takes, without the socket
		cli.DangerousInternals().DecryptMessages(ctx, info, node)
	}
	deliver()
	mu.Lock()
	if calls != 1 || len(stored) != 0 {
		t.Fatalf("first delivery: handler called %d times, %d stored; want one failed call", calls, len(stored))
	}
	storeUp = true
	mu.Unlock()

	deliver() // WhatsApp's redelivery of the unacknowledged message
	mu.Lock()
	if len(stored) != 1 || stored[0].Text != "are you there?" || stored[0].ID != "3EB0AGAIN" || stored[0].Chat != anna.String() {
		t.Fatalf("after the redelivery the handler was called %d times and stored %+v; want the message stored", calls, stored)
	}
	mu.Unlock()

	deliver() // once handled, a further delivery is not handed over again
	mu.Lock()
	defer mu.Unlock()
	if calls != 2 || len(stored) != 1 {
		t.Errorf("a third delivery of a handled message: handler called %d times, %d stored; want 2 and 1", calls, len(stored))
	}
}

// A group's messages carry its subject as the chat's name, from the
// group's own events, never a member's push name.
func TestWhatsmeowChatNameIsTheGroupSubject(t *testing.T) {
	ctx := context.Background()
	c, err := openStore(ctx, filepath.Join(t.TempDir(), "whatsmeow.db"), waLog.Noop)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	dev, err := c.GetFirstDevice(ctx)
	if err != nil {
		t.Fatal(err)
	}
	d := NewWhatsmeow(WhatsmeowConfig{StoreDir: t.TempDir(), Log: zerolog.Nop()})
	var got []*Incoming
	handle := d.handler(ctx, func(_ context.Context, ev Event) error {
		if in, ok := ev.(*Incoming); ok {
			got = append(got, in)
		}
		return nil
	}, whatsmeow.NewClient(dev, waLog.Noop), 1)
	msg := func(text string) *events.Message {
		return &events.Message{Info: types.MessageInfo{MessageSource: types.MessageSource{Chat: group, Sender: annaPhone, IsGroup: true},
			ID: types.MessageID("3EB0" + text), PushName: "Anna"}, Message: &waE2E.Message{Conversation: proto.String(text)}}
	}
	handle(&events.JoinedGroup{GroupInfo: types.GroupInfo{JID: group, GroupName: types.GroupName{Name: "Family"}}})
	handle(msg("A"))
	handle(&events.GroupInfo{JID: group, Name: &types.GroupName{Name: "Family 2025"}})
	handle(msg("B"))
	if len(got) != 2 || got[0].ChatName != "Family" || got[1].ChatName != "Family 2025" || got[0].PushName != "Anna" {
		t.Fatalf("got %+v", got)
	}
}

// On the embedded store the device store lives in the suite's own
// database file: both open it, each with its own tables and version, and
// what each wrote reads back after both are opened again.
func TestDeviceStoreSharesTheSuitesDatabaseFile(t *testing.T) {
	ctx := context.Background()
	file := filepath.Join(t.TempDir(), "app.db")
	st, err := sqlitestore.Open(file, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	c, err := openStore(ctx, file, waLog.Noop)
	if err != nil {
		t.Fatalf("the device store cannot open the suite's file: %v", err)
	}
	dev := c.NewDevice()
	dev.ID = &types.JID{User: "491701234567", Device: 3, Server: types.DefaultUserServer}
	dev.Account = &waAdv.ADVSignedDeviceIdentity{Details: []byte{1}, AccountSignature: make([]byte, 64),
		AccountSignatureKey: make([]byte, 32), DeviceSignature: make([]byte, 64)}
	if err := dev.Save(ctx); err != nil {
		t.Fatal(err)
	}
	if err := st.CreateAPIKey(ctx, store.APIKey{ID: "k1", Name: "shared", CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	_ = c.Close()
	_ = st.Close(ctx)

	st, err = sqlitestore.Open(file, zerolog.Nop())
	if err != nil {
		t.Fatalf("the suite's store does not open after the device store's upgrades: %v", err)
	}
	defer st.Close(ctx)
	if k, err := st.APIKey(ctx, "k1"); err != nil || k.Name != "shared" {
		t.Fatalf("key after reopening: %+v, %v", k, err)
	}
	c, err = openStore(ctx, file, waLog.Noop)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	devs, err := c.GetAllDevices(ctx)
	if err != nil || len(devs) != 1 || devs[0].ID.User != "491701234567" {
		t.Fatalf("devices after reopening: %v, %v", devs, err)
	}
}
