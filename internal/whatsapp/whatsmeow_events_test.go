package whatsapp

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/rs/zerolog"
	waBinary "go.mau.fi/whatsmeow/binary"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"
	"google.golang.org/protobuf/proto"

	"app/internal/msg"
)

// Each connection event tells the supervisor what to report and whether
// the connection attempt is over, and how.
func TestWhatsmeowEventsConnection(t *testing.T) {
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	const self = "15550001111@s.whatsapp.net"
	retry := func(reason string) *attemptResult { return &attemptResult{kind: attemptRetry, reason: reason} }
	tests := []struct {
		name      string
		in        any
		want      *Session // nil: nothing reported
		end       *attemptResult
		connected bool
		forget    forgetKind
	}{
		{name: "connected", in: &events.Connected{}, want: &Session{State: StateConnected, JID: self}, connected: true},
		{name: "disconnected", in: &events.Disconnected{}, want: &Session{State: StateDisconnected, JID: self, Reason: "connection lost"},
			end: retry("connection lost")},
		{name: "keep-alive timeout", in: &events.KeepAliveTimeout{ErrorCount: 2, LastSuccess: now.Add(-time.Minute)},
			want: &Session{State: StateDisconnected, JID: self, Reason: "no answer to keep-alive since 2025-03-01T11:59:00Z"}},
		{name: "keep-alive failing too long", in: &events.KeepAliveTimeout{ErrorCount: 9, LastSuccess: now.Add(-5 * time.Minute)},
			want: &Session{State: StateDisconnected, JID: self, Reason: "no answer to keep-alive since 2025-03-01T11:55:00Z"},
			end:  retry("keep-alive failing")},
		{name: "keep-alive restored", in: &events.KeepAliveRestored{}, want: &Session{State: StateConnected, JID: self}, connected: true},
		{name: "logged out", in: &events.LoggedOut{Reason: events.ConnectFailureLoggedOut},
			want: &Session{State: StateLoggedOut, Reason: "401: logged out from another device"},
			end:  &attemptResult{kind: attemptLoggedOut, reason: "401: logged out from another device"}, forget: forgetRemote},
		{name: "stream replaced", in: &events.StreamReplaced{},
			want: &Session{State: StateReplaced, JID: self, Reason: "another client connected with this session"},
			end:  &attemptResult{kind: attemptReplaced}},
		{name: "temporary ban", in: &events.TemporaryBan{Code: events.TempBanBlockedByUsers, Expire: 2 * time.Hour},
			want: &Session{State: StateTemporarilyBanned, JID: self, Reason: "102: too many people blocked you", Until: now.Add(2 * time.Hour)},
			end:  &attemptResult{kind: attemptBanned, reason: "102: too many people blocked you", until: now.Add(2 * time.Hour)}},
		{name: "connect failure 503", in: &events.ConnectFailure{Reason: events.ConnectFailureServiceUnavailable, Message: "later"},
			want: &Session{State: StateDisconnected, JID: self, Reason: "connect failure: 503: unknown error: later"},
			end:  retry("connect failure: 503: unknown error")},
		{name: "connect failure main device gone", in: &events.ConnectFailure{Reason: events.ConnectFailureMainDeviceGone},
			want: &Session{State: StateLoggedOut, Reason: "403: primary device was logged out"},
			end:  &attemptResult{kind: attemptLoggedOut, reason: "403: primary device was logged out"}, forget: forgetRemote},
		{name: "client outdated", in: &events.ClientOutdated{},
			want: &Session{State: StateDisconnected, JID: self, Reason: "client outdated: WhatsApp refuses this whatsmeow version"},
			end:  retry("client outdated")},
		{name: "pair success", in: &events.PairSuccess{ID: types.JID{User: "15550002222", Device: 12, Server: types.DefaultUserServer}},
			want: &Session{State: StateConnecting, JID: "15550002222@s.whatsapp.net"}},
		{name: "pair error", in: &events.PairError{Error: errors.New("boom")}, want: &Session{State: StateUnpaired, Reason: "pairing failed: boom"}},
		{name: "qr codes come through the QR channel", in: &events.QR{Codes: []string{"2@first"}}},
		{name: "presence is not ours", in: &events.Presence{From: anna}},
		{name: "stream error is only logged", in: &events.StreamError{Code: "xyz"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := NewWhatsmeow(WhatsmeowConfig{StoreDir: t.TempDir(), Log: zerolog.Nop()})
			d.clock = func() time.Time { return now }
			d.self = self
			handle := d.handler(context.Background(), func(context.Context, Event) error {
				t.Error("a connection event reached the Handler directly")
				return nil
			}, nil, 7)
			if !handle(tt.in) {
				t.Fatal("a connection event was left unacknowledged")
			}
			var s connSignal
			select {
			case s = <-d.sig:
			default:
				if tt.want != nil {
					t.Fatal("no signal to the supervisor")
				}
				return
			}
			if tt.want == nil {
				t.Fatalf("signalled %+v, want nothing", s)
			}
			if s.gen != 7 {
				t.Errorf("signal of client %d, want 7", s.gen)
			}
			if s.session == nil || !sameSession(*s.session, *tt.want) {
				t.Errorf("session %+v\nwant    %+v", s.session, *tt.want)
			}
			if (s.end == nil) != (tt.end == nil) || (s.end != nil && (s.end.kind != tt.end.kind || s.end.reason != tt.end.reason ||
				!s.end.until.Equal(tt.end.until))) {
				t.Errorf("end %+v, want %+v", s.end, tt.end)
			}
			if s.connected != tt.connected || s.forget != tt.forget {
				t.Errorf("connected %v forget %v, want %v %v", s.connected, s.forget, tt.connected, tt.forget)
			}
			if _, ok := tt.in.(*events.PairSuccess); ok && (s.paired == nil || s.paired.User != "15550002222") {
				t.Errorf("pairing not signalled: %v", s.paired)
			}
		})
	}
}

// A call offered is reported with its caller by number, whether it is a
// video call, and the group of a group call; rejecting it answers the
// caller as WhatsApp named it.
func TestWhatsmeowEventsCalls(t *testing.T) {
	ctx := context.Background()
	cli := ourClient(t)
	d := NewWhatsmeow(WhatsmeowConfig{StoreDir: t.TempDir(), Log: zerolog.Nop()})
	var got []*Call
	fail := false
	handle := d.handler(ctx, func(_ context.Context, ev Event) error {
		if c, ok := ev.(*Call); ok {
			got = append(got, c)
		}
		if fail {
			return errors.New("store away")
		}
		return nil
	}, cli, 1)
	ts := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	video := &waBinary.Node{Tag: "offer", Content: []waBinary.Node{{Tag: "video"}}}
	voice := &waBinary.Node{Tag: "offer", Content: []waBinary.Node{{Tag: "audio"}}}
	handle(&events.CallOffer{BasicCallMeta: types.BasicCallMeta{From: annaLIDDev, Timestamp: ts, CallCreator: annaLIDDev,
		CallCreatorAlt: annaPhone, CallID: "CALL1"}, Data: video})
	handle(&events.CallOffer{BasicCallMeta: types.BasicCallMeta{From: bobLID, Timestamp: ts, CallCreator: bobLID, CallID: "CALL2"}, Data: voice})
	handle(&events.CallOfferNotice{BasicCallMeta: types.BasicCallMeta{From: group, Timestamp: ts, CallCreator: annaPhone,
		CallID: "CALL3", GroupJID: group}, Media: "audio", Type: "group"})
	want := []Call{
		{ID: "CALL1", From: anna.String(), Video: true, Timestamp: ts},
		{ID: "CALL2", From: bobLID.String(), Timestamp: ts},
		{ID: "CALL3", From: anna.String(), Chat: group.String(), Timestamp: ts},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d calls, want %d", len(got), len(want))
	}
	for i := range want {
		if jsonOf(t, got[i]) != jsonOf(t, want[i]) {
			t.Errorf("call %d: got %s, want %s", i, jsonOf(t, got[i]), jsonOf(t, want[i]))
		}
	}
	d.mu.Lock()
	from := d.calls["CALL1"].from
	d.mu.Unlock()
	if from != annaLIDDev {
		t.Errorf("CALL1 would be rejected to %v, want the offer's own %v", from, annaLIDDev)
	}
	fail = true
	if handle(&events.CallOffer{BasicCallMeta: types.BasicCallMeta{From: anna, CallCreator: anna, CallID: "CALL4"}, Data: voice}) {
		t.Error("a call offer the handler failed on was acknowledged")
	}
}

// Messages of a LID group teach the driver how the group addresses its
// members; replies and reactions sent there name them so.
func TestWhatsmeowEventsLearnGroupAddressing(t *testing.T) {
	ctx := context.Background()
	cli := ourClient(t)
	d := NewWhatsmeow(WhatsmeowConfig{StoreDir: t.TempDir(), Log: zerolog.Nop()})
	d.setGroupName(group, "Family") // known: no question to WhatsApp
	handle := d.handler(ctx, func(context.Context, Event) error { return nil }, cli, 1)
	out := Outgoing{Chat: group.String(), ReplyTo: "3EB0Q", ReplyToSender: anna.String(),
		Body: msg.Body{Target: &msg.Target{WAID: "3EB0T", Chat: group.String(), Sender: anna.String()}}}
	d.setGroupMode(group, types.AddressingModePN)
	m, self := d.addressOutgoing(ctx, cli, group, out)
	if m.ReplyToSender != anna.String() || m.Target.Sender != anna.String() || self != ourPN.String() {
		t.Fatalf("in a group by number: %q, %q, self %q", m.ReplyToSender, m.Target.Sender, self)
	}
	handle(delivered(types.MessageInfo{MessageSource: types.MessageSource{Chat: group, Sender: annaLIDDev, SenderAlt: annaPhone,
		IsGroup: true, AddressingMode: types.AddressingModeLID}, ID: "3EB0G"}, &waE2E.Message{Conversation: proto.String("hi")}))
	m, self = d.addressOutgoing(ctx, cli, group, out)
	if m.ReplyToSender != annaLID.String() || m.Target.Sender != annaLID.String() || self != ourLID.ToNonAD().String() {
		t.Errorf("in a group by LID: %q, %q, self %q", m.ReplyToSender, m.Target.Sender, self)
	}
	if out.Target.Sender != anna.String() {
		t.Error("addressOutgoing changed the caller's target")
	}
	// A one-to-one chat is addressed by LID once the account migrated.
	dm := Outgoing{Chat: anna.String(), Body: msg.Body{Target: &msg.Target{WAID: "3EB0T", Chat: anna.String(), FromMe: true}}}
	if m, _ := d.addressOutgoing(ctx, cli, anna, dm); m.Target.Chat != anna.String() {
		t.Errorf("before the migration: %q", m.Target.Chat)
	}
	cli.Store.LIDMigrationTimestamp = 1
	if m, _ := d.addressOutgoing(ctx, cli, anna, dm); m.Target.Chat != annaLID.String() {
		t.Errorf("after the migration: %q, want Anna's LID", m.Target.Chat)
	}
}

// Reconnect and a pairing reach the supervisor as signals it applies in
// order: the session reported, the attempt ended the way asked.
func TestWhatsmeowSupervisorAppliesSignals(t *testing.T) {
	ctx := context.Background()
	cli := ourClient(t)
	d := driverWith(cli)
	d.paired, d.self, d.gen = true, ourPN.String(), 3
	var sessions []Session
	h := func(_ context.Context, ev Event) error {
		if sc, ok := ev.(*SessionChanged); ok {
			sessions = append(sessions, sc.Session)
		}
		return nil
	}
	if err := d.Reconnect(ctx, "silent for 5m0s"); err != nil {
		t.Fatal(err)
	}
	s := <-d.sig
	if s.gen != 3 {
		t.Errorf("signal of client %d, want the current 3", s.gen)
	}
	conn := connection{started: time.Now(), connectedAt: time.Now().Add(-2 * time.Minute)}
	res := d.apply(ctx, h, cli, s, &conn)
	if res == nil || res.kind != attemptRetry || res.reason != "silent for 5m0s" || !res.stable {
		t.Errorf("attempt ends %+v, want a retry after a stable connection", res)
	}
	want := Session{State: StateDisconnected, Reason: "silent for 5m0s", JID: ourPN.String()}
	if len(sessions) != 1 || !sameSession(sessions[0], want) {
		t.Errorf("sessions %+v, want %+v", sessions, want)
	}

	// A pairing: paired before "connecting" is reported, the attempt goes on.
	d.paired, d.self, sessions = false, "", nil
	handle := d.handler(ctx, h, nil, 3)
	handle(&events.PairSuccess{ID: types.JID{User: "15550002222", Device: 4, Server: types.DefaultUserServer}})
	if res := d.apply(ctx, h, cli, <-d.sig, &conn); res != nil {
		t.Errorf("a pairing ended the attempt: %+v", res)
	}
	if !d.isPaired() || len(sessions) != 1 || sessions[0].State != StateConnecting || sessions[0].JID != "15550002222@s.whatsapp.net" {
		t.Errorf("after pairing: paired %v, sessions %+v", d.isPaired(), sessions)
	}
	handle(&events.Connected{})
	fresh := connection{}
	d.apply(ctx, h, cli, <-d.sig, &fresh)
	if fresh.connectedAt.IsZero() || sessions[len(sessions)-1].State != StateConnected {
		t.Errorf("Connected: %+v, sessions %+v", fresh, sessions)
	}

	// Logged out remotely: unpaired, the attempt over.
	handle(&events.LoggedOut{Reason: events.ConnectFailureLoggedOut})
	res = d.apply(ctx, h, cli, <-d.sig, &fresh)
	if res == nil || res.kind != attemptLoggedOut || d.isPaired() {
		t.Errorf("logged out: %+v, paired %v", res, d.isPaired())
	}

	d.paired = false
	if err := d.Reconnect(ctx, "x"); !errors.Is(err, ErrNotPaired) {
		t.Errorf("Reconnect unpaired: %v, want ErrNotPaired", err)
	}
}

// Without a connection every action says so (the API answers 503).
func TestWhatsmeowActionsOffline(t *testing.T) {
	ctx := context.Background()
	for name, d := range map[string]*Whatsmeow{
		"not running":   NewWhatsmeow(WhatsmeowConfig{StoreDir: t.TempDir(), Log: zerolog.Nop()}),
		"not connected": driverWith(ourClient(t)),
	} {
		chat := anna.String()
		for action, err := range map[string]error{
			"mark read":     d.MarkRead(ctx, ReadMark{Chat: chat, IDs: []string{"3EB0A"}}),
			"chat presence": d.SendChatPresence(ctx, chat, ChatRecording),
			"presence":      d.SendPresence(ctx, true),
			"reject call":   d.RejectCall(ctx, chat, "CALL1"),
			"retry media":   d.RetryMedia(ctx, &Incoming{Media: &Media{Retry: []byte(`{"v":1}`)}}),
			"ping":          d.Ping(ctx),
		} {
			if !errors.Is(err, ErrNotConnected) {
				t.Errorf("%s: %s: %v, want ErrNotConnected", name, action, err)
			}
		}
		if err := NewWhatsmeow(WhatsmeowConfig{}).Reconnect(ctx, "x"); !errors.Is(err, ErrNotConnected) {
			t.Errorf("Reconnect without a client: %v", err)
		}
		// Bad input is refused as such, before the connection matters.
		for action, err := range map[string]error{
			"mark read without ids":  d.MarkRead(ctx, ReadMark{Chat: chat}),
			"mark read, bad chat":    d.MarkRead(ctx, ReadMark{Chat: "nobody@example.com", IDs: []string{"3EB0A"}}),
			"unknown chat presence":  d.SendChatPresence(ctx, chat, "dancing"),
			"reject call without id": d.RejectCall(ctx, chat, ""),
		} {
			if err == nil || errors.Is(err, ErrNotConnected) {
				t.Errorf("%s: %s: %v, want it refused", name, action, err)
			}
		}
	}
}
