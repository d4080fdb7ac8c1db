package whatsapp

import (
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/proto/waAdv"
	"go.mau.fi/whatsmeow/proto/waCommon"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"
	waLog "go.mau.fi/whatsmeow/util/log"
	"google.golang.org/protobuf/proto"

	"app/internal/msg"
)

// The people of the mapping tests: we (with a LID), Anna (whose LID
// whatsmeow's map knows), Bob (whose LID it does not know).
var (
	ourJID     = types.JID{User: "15550001111", Device: 7, Server: types.DefaultUserServer}
	ourPN      = ourJID.ToNonAD()
	ourLID     = types.JID{User: "88000111", Device: 7, Server: types.HiddenUserServer}
	annaLID    = types.NewJID("77000222", types.HiddenUserServer)
	annaLIDDev = types.JID{User: "77000222", Device: 3, Server: types.HiddenUserServer}
	bobPN      = types.NewJID("4917600000001", types.DefaultUserServer)
	bobLID     = types.NewJID("77000333", types.HiddenUserServer)
)

// testClient is a whatsmeow client of a paired device jid (with lid) on a
// store of its own, never connected: its LID map, message secrets and
// contacts are real.
func testClient(t *testing.T, jid, lid types.JID) *whatsmeow.Client {
	t.Helper()
	ctx := context.Background()
	c, err := openStore(ctx, filepath.Join(t.TempDir(), "whatsmeow.db"), waLog.Noop)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	dev := c.NewDevice()
	dev.ID, dev.LID = &jid, lid
	dev.Account = &waAdv.ADVSignedDeviceIdentity{Details: []byte{1}, AccountSignature: make([]byte, 64),
		AccountSignatureKey: make([]byte, 32), DeviceSignature: make([]byte, 64)}
	if err := dev.Save(ctx); err != nil {
		t.Fatal(err)
	}
	dev, err = c.GetFirstDevice(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return whatsmeow.NewClient(dev, waLog.Noop)
}

// ourClient is our device, whose LID map knows Anna.
func ourClient(t *testing.T) *whatsmeow.Client {
	t.Helper()
	cli := testClient(t, ourJID, ourLID)
	if err := cli.Store.LIDs.PutLIDMapping(context.Background(), annaLID, anna); err != nil {
		t.Fatal(err)
	}
	return cli
}

// delivered is a message event as whatsmeow hands it over: the raw
// message unwrapped by its UnwrapRaw.
func delivered(info types.MessageInfo, raw *waE2E.Message) *events.Message {
	return (&events.Message{Info: info, RawMessage: raw}).UnwrapRaw()
}

func jsonOf(t *testing.T, v any) string {
	t.Helper()
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// Every kind of message whatsmeow delivers becomes the Incoming a user
// would expect: its kind, its parts, chat and sender by number where
// known with both forms in Addr, targets named from our side.
func TestWhatsmeowMapMessages(t *testing.T) {
	ctx := context.Background()
	cli := ourClient(t)
	d := NewWhatsmeow(WhatsmeowConfig{StoreDir: t.TempDir(), Log: zerolog.Nop()})
	ts := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

	fromAnna := types.MessageInfo{MessageSource: types.MessageSource{Chat: anna, Sender: annaPhone}, ID: "3EB0AAA", PushName: "Anna", Timestamp: ts}
	inGroup := types.MessageInfo{MessageSource: types.MessageSource{Chat: group, Sender: annaLIDDev, SenderAlt: annaPhone,
		IsGroup: true, AddressingMode: types.AddressingModeLID}, ID: "3EB0GGG", PushName: "Anna", Timestamp: ts}
	annaAddr := msg.Addr{ChatPN: anna.String(), ChatLID: annaLID.String(), SenderPN: anna.String(), SenderLID: annaLID.String()}
	fromAnnaWant := func(f func(*Incoming)) *Incoming {
		in := &Incoming{ID: "3EB0AAA", Chat: anna.String(), Sender: anna.String(), Timestamp: ts, PushName: "Anna", Addr: annaAddr}
		f(in)
		return in
	}
	inGroupWant := func(f func(*Incoming)) *Incoming {
		in := &Incoming{ID: "3EB0GGG", Chat: group.String(), Sender: anna.String(), Timestamp: ts, PushName: "Anna",
			Addr: msg.Addr{SenderPN: anna.String(), SenderLID: annaLID.String()}}
		f(in)
		return in
	}
	with := func(info types.MessageInfo, f func(*types.MessageInfo)) types.MessageInfo { f(&info); return info }

	image := &waE2E.ImageMessage{Mimetype: proto.String("image/jpeg"), FileLength: proto.Uint64(12345), Caption: proto.String("the view"),
		FileSHA256: []byte{1, 2, 3}, MediaKey: bytes.Repeat([]byte{9}, 32), DirectPath: proto.String("/v/img"),
		JPEGThumbnail: bytes.Repeat([]byte{0xff}, 2000), ContextInfo: &waE2E.ContextInfo{StanzaID: proto.String("3EB0QUOTED")}}
	video := &waE2E.VideoMessage{Mimetype: proto.String("video/mp4"), FileLength: proto.Uint64(99), Caption: proto.String("clip")}
	ptv := &waE2E.VideoMessage{Mimetype: proto.String("video/mp4"), FileLength: proto.Uint64(77)}
	audio := &waE2E.AudioMessage{Mimetype: proto.String("audio/mpeg"), FileLength: proto.Uint64(500)}
	voice := &waE2E.AudioMessage{Mimetype: proto.String("audio/ogg; codecs=opus"), FileLength: proto.Uint64(300), PTT: proto.Bool(true)}
	doc := &waE2E.DocumentMessage{Mimetype: proto.String("application/pdf"), FileLength: proto.Uint64(999), FileName: proto.String("invoice.pdf"),
		Caption: proto.String("March"), FileSHA256: []byte{9}}
	untitled := &waE2E.DocumentMessage{Mimetype: proto.String("text/plain"), FileLength: proto.Uint64(5), Title: proto.String("notes")}
	sticker := &waE2E.StickerMessage{Mimetype: proto.String("image/webp"), FileLength: proto.Uint64(40)}
	viewOnce := &waE2E.ImageMessage{Mimetype: proto.String("image/jpeg"), FileLength: proto.Uint64(10)}
	vcard := "BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Anna Schmidt\r\nitem1.TEL;waid=4915112345678:+49 151 12345678\r\nitem1.X-ABLabel:mobile\r\n" +
		"TEL;TYPE=work:+49 30\r\n 1234567\r\nEND:VCARD"
	key := func(id string, fromMe bool, participant string) *waCommon.MessageKey {
		k := &waCommon.MessageKey{ID: proto.String(id), FromMe: proto.Bool(fromMe), RemoteJID: proto.String(anna.String())}
		if participant != "" {
			k.Participant = proto.String(participant)
		}
		return k
	}
	media := func(mime string, size int64, name, caption string, sha []byte) *Media {
		return &Media{MimeType: mime, Size: size, FileName: name, Caption: caption, SHA256: sha}
	}

	tests := []struct {
		name   string
		evt    *events.Message
		want   *Incoming // nil: not a message of a chat
		handle any
	}{
		{name: "text", evt: delivered(fromAnna, &waE2E.Message{Conversation: proto.String("hello")}),
			want: fromAnnaWant(func(in *Incoming) { in.Kind, in.Text = msg.KindText, "hello" })},
		{name: "extended text in a LID group: reply, mentions, forwarded",
			evt: delivered(inGroup, &waE2E.Message{ExtendedTextMessage: &waE2E.ExtendedTextMessage{
				Text: proto.String("@77000222 @77000333 look"),
				ContextInfo: &waE2E.ContextInfo{StanzaID: proto.String("3EB0PREV"), Participant: proto.String(bobLID.String()),
					MentionedJID: []string{annaLID.String(), bobLID.String()}, IsForwarded: proto.Bool(true), ForwardingScore: proto.Uint32(3)},
			}}),
			want: inGroupWant(func(in *Incoming) {
				in.Kind, in.Text, in.ReplyTo, in.Forwarded = msg.KindText, "@77000222 @77000333 look", "3EB0PREV", true
				in.Mentions = []string{anna.String(), bobLID.String()}
			})},
		{name: "sent from our phone into a LID chat",
			evt: delivered(types.MessageInfo{MessageSource: types.MessageSource{Chat: annaLID, Sender: ourLID, IsFromMe: true, RecipientAlt: anna},
				ID: "3EB0MINE", Timestamp: ts}, &waE2E.Message{Conversation: proto.String("from my phone")}),
			want: &Incoming{ID: "3EB0MINE", Chat: anna.String(), Sender: ourPN.String(), FromMe: true, Timestamp: ts,
				Body: msg.Body{Kind: msg.KindText}, Text: "from my phone",
				Addr: msg.Addr{ChatPN: anna.String(), ChatLID: annaLID.String(), SenderPN: ourPN.String(), SenderLID: ourLID.ToNonAD().String()}}},
		{name: "by LID from someone whose number the map knows",
			evt:  delivered(with(fromAnna, func(i *types.MessageInfo) { i.Chat, i.Sender = annaLID, annaLIDDev }), &waE2E.Message{Conversation: proto.String("hi")}),
			want: fromAnnaWant(func(in *Incoming) { in.Kind, in.Text = msg.KindText, "hi" })},
		{name: "by LID with the number alongside",
			evt: delivered(types.MessageInfo{MessageSource: types.MessageSource{Chat: bobLID, Sender: bobLID, SenderAlt: bobPN},
				ID: "3EB0BOB", Timestamp: ts}, &waE2E.Message{Conversation: proto.String("hi")}),
			want: &Incoming{ID: "3EB0BOB", Chat: bobPN.String(), Sender: bobPN.String(), Timestamp: ts, Body: msg.Body{Kind: msg.KindText}, Text: "hi",
				Addr: msg.Addr{ChatPN: bobPN.String(), ChatLID: bobLID.String(), SenderPN: bobPN.String(), SenderLID: bobLID.String()}}},
		{name: "by LID alone, number unknown",
			evt: delivered(types.MessageInfo{MessageSource: types.MessageSource{Chat: bobLID, Sender: bobLID}, ID: "3EB0BOB", Timestamp: ts},
				&waE2E.Message{Conversation: proto.String("who am I")}),
			want: &Incoming{ID: "3EB0BOB", Chat: bobLID.String(), Sender: bobLID.String(), Timestamp: ts, Body: msg.Body{Kind: msg.KindText},
				Text: "who am I", Addr: msg.Addr{ChatLID: bobLID.String(), SenderLID: bobLID.String()}}},
		{name: "image with caption, quoting", evt: delivered(fromAnna, &waE2E.Message{ImageMessage: image}), handle: image,
			want: fromAnnaWant(func(in *Incoming) {
				in.Kind, in.ReplyTo = msg.KindImage, "3EB0QUOTED"
				in.Media = media("image/jpeg", 12345, "", "the view", []byte{1, 2, 3})
			})},
		{name: "view-once image", evt: delivered(fromAnna, &waE2E.Message{ViewOnceMessageV2: &waE2E.FutureProofMessage{
			Message: &waE2E.Message{ImageMessage: viewOnce}}}), handle: viewOnce,
			want: fromAnnaWant(func(in *Incoming) { in.Kind, in.Media = msg.KindImage, media("image/jpeg", 10, "", "", nil) })},
		{name: "video", evt: delivered(fromAnna, &waE2E.Message{VideoMessage: video}), handle: video,
			want: fromAnnaWant(func(in *Incoming) { in.Kind, in.Media = msg.KindVideo, media("video/mp4", 99, "", "clip", nil) })},
		{name: "round video note", evt: delivered(fromAnna, &waE2E.Message{PtvMessage: ptv}), handle: ptv,
			want: fromAnnaWant(func(in *Incoming) { in.Kind, in.Media = msg.KindVideo, media("video/mp4", 77, "", "", nil) })},
		{name: "audio", evt: delivered(fromAnna, &waE2E.Message{AudioMessage: audio}), handle: audio,
			want: fromAnnaWant(func(in *Incoming) { in.Kind, in.Media = msg.KindAudio, media("audio/mpeg", 500, "", "", nil) })},
		{name: "voice note", evt: delivered(fromAnna, &waE2E.Message{AudioMessage: voice}), handle: voice,
			want: fromAnnaWant(func(in *Incoming) {
				in.Kind, in.Media = msg.KindVoice, media("audio/ogg; codecs=opus", 300, "", "", nil)
			})},
		{name: "document with caption (wrapped)", evt: delivered(fromAnna, &waE2E.Message{DocumentWithCaptionMessage: &waE2E.FutureProofMessage{
			Message: &waE2E.Message{DocumentMessage: doc}}}), handle: doc,
			want: fromAnnaWant(func(in *Incoming) {
				in.Kind, in.Media = msg.KindDocument, media("application/pdf", 999, "invoice.pdf", "March", []byte{9})
			})},
		{name: "document named by its title", evt: delivered(fromAnna, &waE2E.Message{DocumentMessage: untitled}), handle: untitled,
			want: fromAnnaWant(func(in *Incoming) { in.Kind, in.Media = msg.KindDocument, media("text/plain", 5, "notes", "", nil) })},
		{name: "sticker", evt: delivered(fromAnna, &waE2E.Message{StickerMessage: sticker}), handle: sticker,
			want: fromAnnaWant(func(in *Incoming) { in.Kind, in.Media = msg.KindSticker, media("image/webp", 40, "", "", nil) })},
		{name: "disappearing text", evt: delivered(fromAnna, &waE2E.Message{EphemeralMessage: &waE2E.FutureProofMessage{
			Message: &waE2E.Message{ExtendedTextMessage: &waE2E.ExtendedTextMessage{Text: proto.String("gone soon")}}}}),
			want: fromAnnaWant(func(in *Incoming) { in.Kind, in.Text = msg.KindText, "gone soon" })},
		{name: "location", evt: delivered(fromAnna, &waE2E.Message{LocationMessage: &waE2E.LocationMessage{
			DegreesLatitude: proto.Float64(52.520008), DegreesLongitude: proto.Float64(13.404954),
			Name: proto.String("Fernsehturm"), Address: proto.String("Panoramastraße 1A")}}),
			want: fromAnnaWant(func(in *Incoming) {
				in.Kind = msg.KindLocation
				in.Location = &msg.Location{Latitude: 52.520008, Longitude: 13.404954, Name: "Fernsehturm", Address: "Panoramastraße 1A"}
			})},
		{name: "live location", evt: delivered(fromAnna, &waE2E.Message{LiveLocationMessage: &waE2E.LiveLocationMessage{
			DegreesLatitude: proto.Float64(48.1), DegreesLongitude: proto.Float64(11.5), Caption: proto.String("on my way")}}),
			want: fromAnnaWant(func(in *Incoming) {
				in.Kind, in.Text, in.Location = msg.KindLocation, "on my way", &msg.Location{Latitude: 48.1, Longitude: 11.5}
			})},
		{name: "contact", evt: delivered(fromAnna, &waE2E.Message{ContactMessage: &waE2E.ContactMessage{
			DisplayName: proto.String("Anna Schmidt"), Vcard: proto.String(vcard)}}),
			want: fromAnnaWant(func(in *Incoming) {
				in.Kind = msg.KindContacts
				in.Contacts = []msg.Contact{{Name: "Anna Schmidt", VCard: vcard, Phones: []string{"+49 151 12345678", "+49 301234567"}}}
			})},
		{name: "contacts", evt: delivered(fromAnna, &waE2E.Message{ContactsArrayMessage: &waE2E.ContactsArrayMessage{
			DisplayName: proto.String("2 contacts"), Contacts: []*waE2E.ContactMessage{
				{DisplayName: proto.String("A"), Vcard: proto.String("BEGIN:VCARD\nTEL:+1 555\nEND:VCARD")},
				{DisplayName: proto.String("B"), Vcard: proto.String("BEGIN:VCARD\nFN:B\nEND:VCARD")}}}}),
			want: fromAnnaWant(func(in *Incoming) {
				in.Kind = msg.KindContacts
				in.Contacts = []msg.Contact{{Name: "A", VCard: "BEGIN:VCARD\nTEL:+1 555\nEND:VCARD", Phones: []string{"+1 555"}},
					{Name: "B", VCard: "BEGIN:VCARD\nFN:B\nEND:VCARD"}}
			})},
		{name: "poll with one choice (V3)", evt: delivered(fromAnna, &waE2E.Message{PollCreationMessageV3: &waE2E.PollCreationMessage{
			Name: proto.String("Which day?"), SelectableOptionsCount: proto.Uint32(1),
			Options: []*waE2E.PollCreationMessage_Option{{OptionName: proto.String("Monday")}, {OptionName: proto.String("Friday")}}}}),
			want: fromAnnaWant(func(in *Incoming) {
				in.Kind, in.Text = msg.KindPoll, "Which day?"
				in.Poll = &msg.Poll{Question: "Which day?", Options: []string{"Monday", "Friday"}, Selectable: 1}
			})},
		{name: "poll with any number of choices", evt: delivered(inGroup, &waE2E.Message{PollCreationMessage: &waE2E.PollCreationMessage{
			Name:    proto.String("Toppings?"),
			Options: []*waE2E.PollCreationMessage_Option{{OptionName: proto.String("cheese")}, {OptionName: proto.String("olives")}}}}),
			want: inGroupWant(func(in *Incoming) {
				in.Kind, in.Text = msg.KindPoll, "Toppings?"
				in.Poll = &msg.Poll{Question: "Toppings?", Options: []string{"cheese", "olives"}}
			})},
		{name: "reaction to our message", evt: delivered(fromAnna, &waE2E.Message{ReactionMessage: &waE2E.ReactionMessage{
			Key:  &waCommon.MessageKey{ID: proto.String("3EB0OURS"), FromMe: proto.Bool(false), RemoteJID: proto.String(ourPN.String())},
			Text: proto.String("👍")}}),
			want: fromAnnaWant(func(in *Incoming) {
				in.Kind, in.Reaction, in.ReactionTo = msg.KindReaction, "👍", "3EB0OURS"
				in.Target = &msg.Target{WAID: "3EB0OURS", Chat: anna.String(), Sender: ourPN.String(), FromMe: true}
			})},
		{name: "reaction removed from her own message", evt: delivered(fromAnna, &waE2E.Message{ReactionMessage: &waE2E.ReactionMessage{
			Key: key("3EB0HERS", true, "")}}),
			want: fromAnnaWant(func(in *Incoming) {
				in.Kind, in.ReactionTo = msg.KindReaction, "3EB0HERS"
				in.Target = &msg.Target{WAID: "3EB0HERS", Chat: anna.String(), Sender: anna.String()}
			})},
		{name: "our phone reacted to hers", evt: delivered(types.MessageInfo{MessageSource: types.MessageSource{Chat: anna, Sender: ourJID, IsFromMe: true},
			ID: "3EB0MINE", Timestamp: ts}, &waE2E.Message{ReactionMessage: &waE2E.ReactionMessage{Key: key("3EB0HERS", false, ""), Text: proto.String("🎉")}}),
			want: &Incoming{ID: "3EB0MINE", Chat: anna.String(), Sender: ourPN.String(), FromMe: true, Timestamp: ts,
				Addr: annaAddrFromMe(annaAddr), Body: msg.Body{Kind: msg.KindReaction, Reaction: "🎉",
					Target: &msg.Target{WAID: "3EB0HERS", Chat: anna.String(), Sender: anna.String()}}, ReactionTo: "3EB0HERS"}},
		{name: "reaction in a group to a member's message", evt: delivered(inGroup, &waE2E.Message{ReactionMessage: &waE2E.ReactionMessage{
			Key: key("3EB0BOBS", false, bobLID.String()), Text: proto.String("😂")}}),
			want: inGroupWant(func(in *Incoming) {
				in.Kind, in.Reaction, in.ReactionTo = msg.KindReaction, "😂", "3EB0BOBS"
				in.Target = &msg.Target{WAID: "3EB0BOBS", Chat: group.String(), Sender: bobLID.String()}
			})},
		{name: "reaction in a group to our message", evt: delivered(inGroup, &waE2E.Message{ReactionMessage: &waE2E.ReactionMessage{
			Key: key("3EB0OURS", false, ourLID.ToNonAD().String()), Text: proto.String("👍")}}),
			want: inGroupWant(func(in *Incoming) {
				in.Kind, in.Reaction, in.ReactionTo = msg.KindReaction, "👍", "3EB0OURS"
				in.Target = &msg.Target{WAID: "3EB0OURS", Chat: group.String(), Sender: ourPN.String(), FromMe: true}
			})},
		{name: "edit", evt: delivered(with(fromAnna, func(i *types.MessageInfo) { i.ID = "3EB0EDIT" }), &waE2E.Message{EditedMessage: &waE2E.FutureProofMessage{
			Message: &waE2E.Message{ProtocolMessage: &waE2E.ProtocolMessage{Type: waE2E.ProtocolMessage_MESSAGE_EDIT.Enum(),
				Key: key("3EB0AAA", true, ""), EditedMessage: &waE2E.Message{Conversation: proto.String("hello, corrected")}}}}}),
			want: fromAnnaWant(func(in *Incoming) {
				in.ID, in.Kind, in.Text = "3EB0EDIT", msg.KindEdit, "hello, corrected"
				in.Target = &msg.Target{WAID: "3EB0AAA", Chat: anna.String(), Sender: anna.String()}
			})},
		{name: "edit as a bare protocol message, with mentions", evt: delivered(inGroup, &waE2E.Message{ProtocolMessage: &waE2E.ProtocolMessage{
			Type: waE2E.ProtocolMessage_MESSAGE_EDIT.Enum(), Key: key("3EB0OLD", true, ""),
			EditedMessage: &waE2E.Message{ExtendedTextMessage: &waE2E.ExtendedTextMessage{Text: proto.String("@77000222 new"),
				ContextInfo: &waE2E.ContextInfo{MentionedJID: []string{annaLID.String()}}}}}}),
			want: inGroupWant(func(in *Incoming) {
				in.Kind, in.Text, in.Mentions = msg.KindEdit, "@77000222 new", []string{anna.String()}
				in.Target = &msg.Target{WAID: "3EB0OLD", Chat: group.String(), Sender: anna.String()}
			})},
		{name: "revoke", evt: delivered(fromAnna, &waE2E.Message{ProtocolMessage: &waE2E.ProtocolMessage{
			Type: waE2E.ProtocolMessage_REVOKE.Enum(), Key: key("3EB0GONE", true, "")}}),
			want: fromAnnaWant(func(in *Incoming) {
				in.Kind, in.Target = msg.KindRevoke, &msg.Target{WAID: "3EB0GONE", Chat: anna.String(), Sender: anna.String()}
			})},
		{name: "revoke by a group admin", evt: delivered(inGroup, &waE2E.Message{ProtocolMessage: &waE2E.ProtocolMessage{
			Type: waE2E.ProtocolMessage_REVOKE.Enum(), Key: key("3EB0BOBS", false, bobLID.String())}}),
			want: inGroupWant(func(in *Incoming) {
				in.Kind, in.Target = msg.KindRevoke, &msg.Target{WAID: "3EB0BOBS", Chat: group.String(), Sender: bobLID.String()}
			})},
		{name: "poll vote that cannot be decrypted", evt: delivered(fromAnna, &waE2E.Message{PollUpdateMessage: &waE2E.PollUpdateMessage{
			PollCreationMessageKey: &waCommon.MessageKey{ID: proto.String("3EB0POLL"), FromMe: proto.Bool(false), RemoteJID: proto.String(ourPN.String())},
			Vote:                   &waE2E.PollEncValue{EncPayload: []byte("garbage"), EncIV: make([]byte, 12)}}}),
			want: fromAnnaWant(func(in *Incoming) {
				in.Kind, in.Target = msg.KindPollVote, &msg.Target{WAID: "3EB0POLL", Chat: anna.String(), Sender: ourPN.String(), FromMe: true}
			})},
		{name: "something else", evt: delivered(fromAnna, &waE2E.Message{GroupInviteMessage: &waE2E.GroupInviteMessage{InviteCode: proto.String("x")}}),
			want: fromAnnaWant(func(in *Incoming) { in.Kind = msg.KindOther })},
		{name: "history sync notice: not a message", evt: delivered(with(fromAnna, func(i *types.MessageInfo) { i.IsFromMe = true }),
			&waE2E.Message{ProtocolMessage: &waE2E.ProtocolMessage{Type: waE2E.ProtocolMessage_HISTORY_SYNC_NOTIFICATION.Enum(),
				HistorySyncNotification: &waE2E.HistorySyncNotification{}}})},
		{name: "app state keys: not a message", evt: delivered(fromAnna, &waE2E.Message{ProtocolMessage: &waE2E.ProtocolMessage{
			Type: waE2E.ProtocolMessage_APP_STATE_SYNC_KEY_SHARE.Enum()}})},
		{name: "a key distribution alone: not a message", evt: delivered(inGroup, &waE2E.Message{
			SenderKeyDistributionMessage: &waE2E.SenderKeyDistributionMessage{GroupID: proto.String(group.String())},
			MessageContextInfo:           &waE2E.MessageContextInfo{MessageSecret: make([]byte, 32)}})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := d.mapMessage(ctx, cli, tt.evt)
			if tt.want == nil {
				if ok {
					t.Fatalf("delivered %s, want nothing", jsonOf(t, got))
				}
				return
			}
			if !ok {
				t.Fatal("not delivered")
			}
			var handle any
			if got.Media != nil {
				handle = got.Media.Handle
				if len(got.Media.Retry) == 0 {
					t.Error("media without retry data")
				}
				got.Media.Retry = nil
			}
			if g, w := jsonOf(t, got), jsonOf(t, tt.want); g != w {
				t.Errorf("got  %s\nwant %s", g, w)
			}
			if handle != tt.handle {
				t.Errorf("media handle: got %v, want the message's own %T", handle, tt.handle)
			}
		})
	}
}

// annaAddrFromMe is Addr of what our phone sent into Anna's chat.
func annaAddrFromMe(a msg.Addr) msg.Addr {
	a.SenderPN, a.SenderLID = ourPN.String(), ourLID.ToNonAD().String()
	return a
}

// A vote on our poll, encrypted by Anna's device with the poll's secret
// as WhatsApp's apps do, arrives with the hashes of her choices.
func TestWhatsmeowMapPollVote(t *testing.T) {
	ctx := context.Background()
	ours := ourClient(t)
	hers := testClient(t, annaPhone, annaLIDDev)
	secret := bytes.Repeat([]byte{0x42}, 32)
	// Both devices keep the poll's secret: ours sent it, hers received it.
	if err := ours.Store.MsgSecrets.PutMessageSecret(ctx, anna, ourPN, "3EB0POLL", secret); err != nil {
		t.Fatal(err)
	}
	if err := hers.Store.MsgSecrets.PutMessageSecret(ctx, ourPN, ourPN, "3EB0POLL", secret); err != nil {
		t.Fatal(err)
	}
	poll := &types.MessageInfo{MessageSource: types.MessageSource{Chat: ourPN, Sender: ourPN}, ID: "3EB0POLL"}
	update, err := hers.EncryptPollVote(ctx, poll, &waE2E.PollVoteMessage{SelectedOptions: whatsmeow.HashPollOptions([]string{"Tuesday", "Friday"})})
	if err != nil {
		t.Fatal(err)
	}
	d := NewWhatsmeow(WhatsmeowConfig{StoreDir: t.TempDir(), Log: zerolog.Nop()})
	info := types.MessageInfo{MessageSource: types.MessageSource{Chat: anna, Sender: annaPhone}, ID: "3EB0VOTE", Timestamp: time.Now()}
	in, ok := d.mapMessage(ctx, ours, delivered(info, &waE2E.Message{PollUpdateMessage: update}))
	if !ok || in.Kind != msg.KindPollVote {
		t.Fatalf("got %+v, %v", in, ok)
	}
	want := whatsmeow.HashPollOptions([]string{"Tuesday", "Friday"})
	if len(in.VoteHashes) != 2 || !bytes.Equal(in.VoteHashes[0], want[0]) || !bytes.Equal(in.VoteHashes[1], want[1]) {
		t.Errorf("vote hashes %x, want %x", in.VoteHashes, want)
	}
	if in.Target == nil || in.Target.WAID != "3EB0POLL" || !in.Target.FromMe || in.Target.Chat != anna.String() {
		t.Errorf("target %+v, want our poll in Anna's chat", in.Target)
	}
}

// Receipts name chat and sender by number where known, as messages do.
func TestWhatsmeowMapReceipts(t *testing.T) {
	cli := ourClient(t)
	r := lidMap{ctx: context.Background(), cli: cli, log: zerolog.Nop()}
	ts := time.Date(2025, 3, 1, 12, 5, 0, 0, time.UTC)
	receipt := func(typ types.ReceiptType, fromMe bool) *events.Receipt {
		return &events.Receipt{
			MessageSource: types.MessageSource{Chat: group, Sender: annaPhone, IsFromMe: fromMe, IsGroup: true},
			MessageIDs:    []types.MessageID{"3EB0A", "3EB0B"},
			Timestamp:     ts,
			Type:          typ,
		}
	}
	tests := []struct {
		name string
		in   *events.Receipt
		want ReceiptType // "" = not reported
		chat string
	}{
		{"delivered", receipt(types.ReceiptTypeDelivered, false), ReceiptDelivered, group.String()},
		{"read", receipt(types.ReceiptTypeRead, false), ReceiptRead, group.String()},
		{"voice message played", receipt(types.ReceiptTypePlayed, false), ReceiptRead, group.String()},
		{"we read it on the phone", receipt(types.ReceiptTypeRead, true), "", ""},
		{"read-self", receipt(types.ReceiptTypeReadSelf, true), "", ""},
		{"our other device got it", receipt(types.ReceiptTypeSender, true), "", ""},
		{"retry", receipt(types.ReceiptTypeRetry, false), "", ""},
		{"server error", receipt(types.ReceiptTypeServerError, false), "", ""},
		{"read in a LID chat", &events.Receipt{MessageSource: types.MessageSource{Chat: annaLID, Sender: annaLIDDev},
			MessageIDs: []types.MessageID{"3EB0A", "3EB0B"}, Timestamp: ts, Type: types.ReceiptTypeRead}, ReceiptRead, anna.String()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := mapReceipt(tt.in, r)
			if tt.want == "" {
				if ok {
					t.Fatalf("reported %+v, want nothing", got)
				}
				return
			}
			want := Receipt{Chat: tt.chat, Sender: anna.String(), IDs: []string{"3EB0A", "3EB0B"}, Type: tt.want, Timestamp: ts}
			if !ok || jsonOf(t, got) != jsonOf(t, want) {
				t.Errorf("got  %+v (%v)\nwant %+v", got, ok, want)
			}
		})
	}
}
