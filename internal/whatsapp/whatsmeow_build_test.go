package whatsapp

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"app/internal/msg"
)

var update = flag.Bool("update", false, "rewrite testdata/golden/*.json from what buildMessage builds")

const goldenDir = "testdata/golden"

// goldenJSON is m as protojson, normalized: protojson's output is
// deliberately unstable in its spacing, so it is read back and written
// again with sorted keys and a fixed indent.
func goldenJSON(t *testing.T, m proto.Message) []byte {
	t.Helper()
	raw, err := protojson.MarshalOptions{Multiline: true, Indent: "  "}.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	enc := json.NewEncoder(&out)
	enc.SetEscapeHTML(false) // URLs as they are
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// goldenCases are one or more messages of every kind we send, each built
// from a fixed Outgoing and a fixed upload, clock and poll secret.
func goldenCases() []struct {
	name string
	m    Outgoing
} {
	const (
		annaJID  = "4915112345678@s.whatsapp.net"
		bobJID   = "4917600000001@s.whatsapp.net"
		groupJID = "120363000000000000@g.us"
	)
	file := func(mt, name string) *OutgoingMedia {
		return &OutgoingMedia{MimeType: mt, FileName: name, Body: strings.NewReader("bytes")}
	}
	out := func(kind string, f func(*Outgoing)) Outgoing {
		m := Outgoing{ID: "3EB0GOLDEN", Chat: annaJID, Body: msg.Body{Kind: kind}}
		f(&m)
		return m
	}
	target := &msg.Target{WAID: "3EB0TARGET", Chat: annaJID, Sender: annaJID}
	ours := &msg.Target{WAID: "3EB0OURS", Chat: annaJID, FromMe: true}
	inGroup := &msg.Target{WAID: "3EB0MEMBER", Chat: groupJID, Sender: bobJID}
	return []struct {
		name string
		m    Outgoing
	}{
		{"text", out(msg.KindText, func(m *Outgoing) { m.Text = "hello" })},
		{"text_legacy_kindless", Outgoing{ID: "3EB0GOLDEN", Chat: annaJID, Text: "from before the kinds"}},
		{"text_reply", out(msg.KindText, func(m *Outgoing) {
			m.Text, m.ReplyTo, m.ReplyToSender = "yes, that one", "3EB0QUOTED", annaJID
		})},
		{"text_reply_to_ours", out(msg.KindText, func(m *Outgoing) {
			m.Text, m.ReplyTo, m.ReplyToFromMe = "as I said", "3EB0MINE", true
		})},
		{"text_mentions", out(msg.KindText, func(m *Outgoing) {
			m.Chat, m.Text, m.Mentions = groupJID, "@4915112345678 and @4917600000001, look", []string{annaJID, bobJID}
		})},
		{"text_forwarded", out(msg.KindText, func(m *Outgoing) { m.Text, m.Forwarded = "passed on", true })},
		{"image", out(msg.KindImage, func(m *Outgoing) {
			m.Text, m.Media, m.ReplyTo, m.ReplyToSender = "the view", file("image/jpeg", ""), "3EB0QUOTED", annaJID
		})},
		{"image_legacy_kindless", Outgoing{ID: "3EB0GOLDEN", Chat: annaJID, Media: file("image/png", "")}},
		{"video", out(msg.KindVideo, func(m *Outgoing) { m.Text, m.Media = "the clip", file("video/mp4", "") })},
		{"audio", out(msg.KindAudio, func(m *Outgoing) { m.Media = file("audio/mpeg", "song.mp3") })},
		{"voice", out(msg.KindVoice, func(m *Outgoing) { m.Media = file("audio/ogg", "note.ogg") })},
		{"document", out(msg.KindDocument, func(m *Outgoing) {
			m.Text, m.Media = "this month's", file("application/pdf", "invoice.pdf")
		})},
		{"document_forwarded", out(msg.KindDocument, func(m *Outgoing) {
			m.Media, m.Forwarded = file("application/pdf", "invoice.pdf"), true
		})},
		{"sticker", out(msg.KindSticker, func(m *Outgoing) { m.Media = file("image/webp", "") })},
		{"location", out(msg.KindLocation, func(m *Outgoing) {
			m.Location = &msg.Location{Latitude: 52.520008, Longitude: 13.404954, Name: "Fernsehturm", Address: "Panoramastraße 1A, Berlin"}
		})},
		{"location_bare", out(msg.KindLocation, func(m *Outgoing) {
			m.Location = &msg.Location{Latitude: -33.8568, Longitude: 151.2153}
		})},
		{"contact", out(msg.KindContacts, func(m *Outgoing) {
			m.Contacts = []msg.Contact{{Name: "Anna Schmidt",
				VCard: "BEGIN:VCARD\nVERSION:3.0\nFN:Anna Schmidt\nTEL;type=CELL;waid=4915112345678:+49 151 12345678\nEND:VCARD"}}
		})},
		{"contacts", out(msg.KindContacts, func(m *Outgoing) {
			m.Contacts = []msg.Contact{
				{Name: "Anna Schmidt", VCard: "BEGIN:VCARD\nVERSION:3.0\nFN:Anna Schmidt\nEND:VCARD"},
				{Name: "Bob; the builder", Phones: []string{"+49 176 00000001", "+1 (555) 010-0000"}},
			}
		})},
		{"poll", out(msg.KindPoll, func(m *Outgoing) {
			m.Chat = groupJID
			m.Poll = &msg.Poll{Question: "Which day?", Options: []string{"Monday", "Tuesday", "Friday"}, Selectable: 1}
		})},
		{"poll_any_number", out(msg.KindPoll, func(m *Outgoing) {
			m.Poll = &msg.Poll{Question: "Toppings?", Options: []string{"cheese", "olives"}}
		})},
		{"reaction", out(msg.KindReaction, func(m *Outgoing) { m.Reaction, m.Target = "👍", target })},
		{"reaction_to_ours", out(msg.KindReaction, func(m *Outgoing) { m.Reaction, m.Target = "❤️", ours })},
		{"reaction_in_group", out(msg.KindReaction, func(m *Outgoing) { m.Chat, m.Reaction, m.Target = groupJID, "😂", inGroup })},
		{"reaction_removed", out(msg.KindReaction, func(m *Outgoing) { m.Target = target })},
		{"edit", out(msg.KindEdit, func(m *Outgoing) { m.Text, m.Target = "hello, corrected", ours })},
		{"revoke", out(msg.KindRevoke, func(m *Outgoing) { m.Target = ours })},
		{"revoke_as_admin", out(msg.KindRevoke, func(m *Outgoing) { m.Chat, m.Target = groupJID, inGroup })},
	}
}

func goldenParts() buildParts {
	return buildParts{
		up: &whatsmeow.UploadResponse{
			URL:           "https://mmg.whatsapp.net/v/t62.7118-24/11111111_2222222222222222_3333333333333333333_n.enc?ccb=11-4",
			DirectPath:    "/v/t62.7118-24/11111111_2222222222222222_3333333333333333333_n.enc?ccb=11-4&oh=01&oe=68000000",
			MediaKey:      bytes.Repeat([]byte{0x11}, 32),
			FileEncSHA256: bytes.Repeat([]byte{0x22}, 32),
			FileSHA256:    bytes.Repeat([]byte{0x33}, 32),
			FileLength:    4096,
		},
		self:   "15550001111@s.whatsapp.net",
		now:    time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC),
		secret: bytes.Repeat([]byte{0x44}, 32),
	}
}

// Each kind is built as the golden file says, field for field: a change
// of whatsmeow's builders or ours shows here (go test -run Golden -update
// rewrites the files; read the diff).
func TestGoldenOutgoingMessages(t *testing.T) {
	cases := goldenCases()
	if *update {
		if err := os.MkdirAll(goldenDir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	names := map[string]bool{}
	for _, c := range cases {
		names[c.name+".json"] = true
		t.Run(c.name, func(t *testing.T) {
			if err := checkOutgoing(outgoingKind(c.m), c.m); err != nil {
				t.Fatalf("the golden message itself is refused: %v", err)
			}
			m, err := buildMessage(nil, c.m, goldenParts())
			if err != nil {
				t.Fatal(err)
			}
			got := goldenJSON(t, m)
			file := filepath.Join(goldenDir, c.name+".json")
			if *update {
				if err := os.WriteFile(file, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(file)
			if err != nil {
				t.Fatalf("%v (go test -run Golden -update writes it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s differs from what is built now:\n--- built\n%s\n--- %s\n%s", file, got, file, want)
			}
		})
	}
	// Every kind we send has a golden file, and no file is left over.
	sendable := []string{msg.KindText, msg.KindImage, msg.KindVideo, msg.KindAudio, msg.KindVoice, msg.KindDocument,
		msg.KindSticker, msg.KindLocation, msg.KindContacts, msg.KindPoll, msg.KindReaction, msg.KindEdit, msg.KindRevoke}
	for _, kind := range sendable {
		if !slices.ContainsFunc(cases, func(c struct {
			name string
			m    Outgoing
		}) bool {
			return c.m.Kind == kind
		}) {
			t.Errorf("no golden message of kind %s", kind)
		}
	}
	entries, err := os.ReadDir(goldenDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if !names[e.Name()] {
			t.Errorf("%s/%s belongs to no case", goldenDir, e.Name())
		}
	}
}

// The comparison sees a change of any one field: the normalized JSON
// keeps every field, down to a flag and a byte.
func TestGoldenNoticesAChangedField(t *testing.T) {
	p := goldenParts()
	for _, c := range goldenCases() {
		switch c.name {
		case "voice", "reaction_in_group", "poll":
		default:
			continue
		}
		m, err := buildMessage(nil, c.m, p)
		if err != nil {
			t.Fatal(err)
		}
		base := goldenJSON(t, m)
		changed := proto.Clone(m).(*waE2E.Message)
		switch c.name {
		case "voice":
			changed.AudioMessage.PTT = proto.Bool(false)
		case "reaction_in_group":
			changed.ReactionMessage.Key.Participant = proto.String("4915112345678@s.whatsapp.net")
		case "poll":
			changed.MessageContextInfo.MessageSecret[31] ^= 1
		}
		if bytes.Equal(base, goldenJSON(t, changed)) {
			t.Errorf("%s: a changed field leaves the JSON as it was", c.name)
		}
	}
}

// What buildMessage leaves to whatsmeow's builders stays theirs: the
// timestamps come from our clock, the poll's secret from the send.
func TestGoldenUsesTheClockAndTheSecret(t *testing.T) {
	p := goldenParts()
	for _, c := range goldenCases() {
		m, err := buildMessage(nil, c.m, p)
		if err != nil {
			t.Fatal(err)
		}
		switch c.m.Kind {
		case msg.KindReaction:
			if got := m.GetReactionMessage().GetSenderTimestampMS(); got != p.now.UnixMilli() {
				t.Errorf("%s: sender timestamp %d, want the clock's %d", c.name, got, p.now.UnixMilli())
			}
		case msg.KindEdit:
			if got := m.GetEditedMessage().GetMessage().GetProtocolMessage().GetTimestampMS(); got != p.now.UnixMilli() {
				t.Errorf("%s: timestamp %d, want the clock's %d", c.name, got, p.now.UnixMilli())
			}
		case msg.KindPoll:
			if got := m.GetMessageContextInfo().GetMessageSecret(); !bytes.Equal(got, p.secret) {
				t.Errorf("%s: secret %x, want %x", c.name, got, p.secret)
			}
		}
	}
	// Without a secret of ours, whatsmeow's random one.
	poll := goldenCases()[0].m
	poll.Kind, poll.Poll = msg.KindPoll, &msg.Poll{Question: "?", Options: []string{"a", "b"}}
	p.secret = nil
	m, err := buildMessage(nil, poll, p)
	if err != nil || len(m.GetMessageContextInfo().GetMessageSecret()) != 32 {
		t.Fatalf("poll without our secret: %v, %v", m, err)
	}
}

// A poll sent twice (a retry) carries one secret, so its votes decrypt
// whichever attempt reached the voters; another poll has another.
func TestWhatsmeowPollSecretIsStablePerMessage(t *testing.T) {
	cli := testClient(t, ourJID, ourLID)
	a, b := pollSecret(cli, "3EB0POLL1"), pollSecret(cli, "3EB0POLL1")
	if len(a) != 32 || !bytes.Equal(a, b) {
		t.Fatalf("two attempts: %x and %x", a, b)
	}
	if bytes.Equal(a, pollSecret(cli, "3EB0POLL2")) {
		t.Error("two polls share a secret")
	}
	other := testClient(t, annaPhone, annaLID)
	if bytes.Equal(a, pollSecret(other, "3EB0POLL1")) {
		t.Error("another account derives our secret")
	}
}

// Send refuses, before anything goes out and for good, a message its
// kind cannot carry.
func TestWhatsmeowSendRefusesIncompleteKinds(t *testing.T) {
	d := NewWhatsmeow(WhatsmeowConfig{StoreDir: t.TempDir()})
	chat := "4915112345678@s.whatsapp.net"
	for _, m := range []Outgoing{
		{Body: msg.Body{Kind: msg.KindImage}, Text: "caption without a picture"},
		{Body: msg.Body{Kind: msg.KindVoice}},
		{Body: msg.Body{Kind: msg.KindSticker}, Media: &OutgoingMedia{MimeType: "image/webp"}}, // no bytes
		{Body: msg.Body{Kind: msg.KindLocation}},
		{Body: msg.Body{Kind: msg.KindLocation, Location: &msg.Location{Latitude: 91, Longitude: 0}}},
		{Body: msg.Body{Kind: msg.KindContacts}},
		{Body: msg.Body{Kind: msg.KindContacts, Contacts: []msg.Contact{{}}}},
		{Body: msg.Body{Kind: msg.KindPoll, Poll: &msg.Poll{Question: "?", Options: []string{"only one"}}}},
		{Body: msg.Body{Kind: msg.KindPoll, Poll: &msg.Poll{Options: []string{"a", "b"}}}},
		{Body: msg.Body{Kind: msg.KindReaction}, Text: "👍"},
		{Body: msg.Body{Kind: msg.KindEdit, Target: &msg.Target{WAID: "3EB0X", Chat: chat}}},
		{Body: msg.Body{Kind: msg.KindRevoke, Target: &msg.Target{Chat: chat}}},
		{Body: msg.Body{Kind: "hologram"}, Text: "x"},
	} {
		m.ID, m.Chat = "3EB0X", chat
		_, err := d.Send(context.Background(), m)
		var se *SendError
		if !errors.As(err, &se) || se.Retryable || se == ErrNotConnected {
			t.Errorf("Send(%s %+v): %v, want a SendError that is not retried", m.Kind, m.Body, err)
		}
	}
	// In a group, a target of someone else's needs its sender.
	_, err := buildMessage(nil, Outgoing{Chat: "120363000000000000@g.us", Body: msg.Body{Kind: msg.KindRevoke,
		Target: &msg.Target{WAID: "3EB0X", Chat: "120363000000000000@g.us"}}}, goldenParts())
	if err == nil {
		t.Error("a revoke of a group member's message without its sender was built")
	}
}
