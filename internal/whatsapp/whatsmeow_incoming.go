package whatsapp

import (
	"context"
	"time"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/proto/waCommon"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"
	"google.golang.org/protobuf/reflect/protoreflect"

	"app/internal/msg"
)

// mapMessage maps a message event as whatsmeow delivers it: decrypted,
// and unwrapped by its UnwrapRaw (device-sent, ephemeral, view-once,
// document-with-caption and edit wrappers gone; an edit is then the
// MESSAGE_EDIT protocol message inside). False for what is not a message
// of a chat: protocol messages other than edits and revokes (history sync
// notices, app state keys, which whatsmeow acted on) and messages that
// carry nothing but keys. Anything else we do not read is KindOther.
func (d *Whatsmeow) mapMessage(ctx context.Context, cli *whatsmeow.Client, e *events.Message) (*Incoming, bool) {
	r := lidMap{ctx: ctx, cli: cli, log: d.log}
	in := &Incoming{
		ID:        e.Info.ID,
		FromMe:    e.Info.IsFromMe,
		Timestamp: e.Info.Timestamp,
		PushName:  e.Info.PushName,
		Body:      msg.Body{Kind: msg.KindOther},
	}
	in.Chat, in.Sender, in.Addr = r.messageAddr(e.Info.MessageSource)

	m := e.Message
	media := func(kind string, x whatsmeow.DownloadableMessage, mime string, size uint64, name, caption string, ci *waE2E.ContextInfo) {
		in.Kind = kind
		// The caption is the media's (Media.Caption), as before kinds.
		in.Media = &Media{MimeType: mime, Size: int64(size), FileName: name, Caption: caption, SHA256: x.GetFileSHA256(), Handle: x}
		retry, err := encodeMediaRetry(e.Info, x)
		if err != nil {
			d.log.Warn().Err(err).Str("id", e.Info.ID).Msg("Cannot keep what a media retry needs; the file cannot be asked for again.")
		}
		in.Media.Retry = retry
		r.context(in, ci)
	}
	switch {
	case m == nil:
		// Nothing we could read (whatsmeow still delivers it).
	case m.ProtocolMessage != nil:
		pm := m.ProtocolMessage
		switch pm.GetType() {
		case waE2E.ProtocolMessage_MESSAGE_EDIT:
			in.Kind = msg.KindEdit
			in.Target = r.target(e, pm.GetKey(), in.Chat)
			in.Text, in.Mentions = editedText(r, pm.GetEditedMessage())
		case waE2E.ProtocolMessage_REVOKE:
			in.Kind = msg.KindRevoke
			in.Target = r.target(e, pm.GetKey(), in.Chat)
		default:
			return nil, false
		}
	case m.ReactionMessage != nil:
		in.Kind = msg.KindReaction
		in.Reaction = m.ReactionMessage.GetText()
		in.Target = r.target(e, m.ReactionMessage.GetKey(), in.Chat)
		in.ReactionTo = in.Target.WAID
	case m.PollUpdateMessage != nil:
		in.Kind = msg.KindPollVote
		in.Target = r.target(e, m.PollUpdateMessage.GetPollCreationMessageKey(), in.Chat)
		// The vote is encrypted with the poll's secret, which whatsmeow
		// kept when the poll was sent or received.
		vote, err := cli.DecryptPollVote(ctx, e)
		if err != nil {
			d.log.Warn().Err(err).Str("id", e.Info.ID).Str("poll", in.Target.WAID).
				Msg("Cannot decrypt a poll vote; it is delivered without the chosen options.")
			break
		}
		in.VoteHashes = vote.GetSelectedOptions()
	case m.Conversation != nil:
		in.Kind = msg.KindText
		in.Text = m.GetConversation()
	case m.ExtendedTextMessage != nil:
		in.Kind = msg.KindText
		in.Text = m.ExtendedTextMessage.GetText()
		r.context(in, m.ExtendedTextMessage.GetContextInfo())
	case m.ImageMessage != nil:
		x := m.ImageMessage
		media(msg.KindImage, x, x.GetMimetype(), x.GetFileLength(), "", x.GetCaption(), x.GetContextInfo())
	case m.VideoMessage != nil || m.PtvMessage != nil:
		x := m.VideoMessage
		if x == nil {
			x = m.PtvMessage // a round video note
		}
		media(msg.KindVideo, x, x.GetMimetype(), x.GetFileLength(), "", x.GetCaption(), x.GetContextInfo())
	case m.AudioMessage != nil:
		x := m.AudioMessage
		kind := msg.KindAudio
		if x.GetPTT() {
			kind = msg.KindVoice
		}
		media(kind, x, x.GetMimetype(), x.GetFileLength(), "", "", x.GetContextInfo())
	case m.DocumentMessage != nil:
		x := m.DocumentMessage
		name := x.GetFileName()
		if name == "" {
			name = x.GetTitle()
		}
		media(msg.KindDocument, x, x.GetMimetype(), x.GetFileLength(), name, x.GetCaption(), x.GetContextInfo())
	case m.StickerMessage != nil:
		x := m.StickerMessage
		media(msg.KindSticker, x, x.GetMimetype(), x.GetFileLength(), "", "", x.GetContextInfo())
	case m.LocationMessage != nil:
		x := m.LocationMessage
		in.Kind = msg.KindLocation
		in.Location = &msg.Location{Latitude: x.GetDegreesLatitude(), Longitude: x.GetDegreesLongitude(), Name: x.GetName(), Address: x.GetAddress()}
		in.Text = x.GetComment()
		r.context(in, x.GetContextInfo())
	case m.LiveLocationMessage != nil:
		// A live location is kept as where it started.
		x := m.LiveLocationMessage
		in.Kind = msg.KindLocation
		in.Location = &msg.Location{Latitude: x.GetDegreesLatitude(), Longitude: x.GetDegreesLongitude()}
		in.Text = x.GetCaption()
		r.context(in, x.GetContextInfo())
	case m.ContactMessage != nil:
		in.Kind = msg.KindContacts
		in.Contacts = []msg.Contact{contactCard(m.ContactMessage)}
		r.context(in, m.ContactMessage.GetContextInfo())
	case m.ContactsArrayMessage != nil:
		x := m.ContactsArrayMessage
		in.Kind = msg.KindContacts
		for _, c := range x.GetContacts() {
			in.Contacts = append(in.Contacts, contactCard(c))
		}
		r.context(in, x.GetContextInfo())
	case pollCreation(m) != nil:
		x := pollCreation(m)
		in.Kind = msg.KindPoll
		in.Text = x.GetName()
		in.Poll = &msg.Poll{Question: x.GetName(), Selectable: int(x.GetSelectableOptionsCount())}
		for _, o := range x.GetOptions() {
			in.Poll.Options = append(in.Poll.Options, o.GetOptionName())
		}
		r.context(in, x.GetContextInfo())
	case onlyKeys(m):
		return nil, false
	}
	return in, true
}

// pollCreation is a poll of any of the versions that carry one as a
// PollCreationMessage (V2 and V3 are polls with one choice, V5 the newest).
func pollCreation(m *waE2E.Message) *waE2E.PollCreationMessage {
	for _, p := range []*waE2E.PollCreationMessage{m.PollCreationMessage, m.PollCreationMessageV2, m.PollCreationMessageV3, m.PollCreationMessageV5} {
		if p != nil {
			return p
		}
	}
	return nil
}

// onlyKeys says whether m carries nothing but key material and message
// context: a sender key distribution sent alone, a message secret.
func onlyKeys(m *waE2E.Message) bool {
	only := true
	m.ProtoReflect().Range(func(fd protoreflect.FieldDescriptor, _ protoreflect.Value) bool {
		switch fd.Name() {
		case "senderKeyDistributionMessage", "fastRatchetKeySenderKeyDistributionMessage", "messageContextInfo":
			return true
		}
		only = false
		return false
	})
	return only
}

// context reads a message's context: the quoted message, mentions, the
// forwarded mark.
func (r lidMap) context(in *Incoming, ci *waE2E.ContextInfo) {
	if ci == nil {
		return
	}
	in.ReplyTo = ci.GetStanzaID()
	in.Forwarded = ci.GetIsForwarded()
	for _, j := range ci.GetMentionedJID() {
		in.Mentions = append(in.Mentions, r.user(j))
	}
}

// editedText is an edit's new text (a caption, for media) and mentions.
func editedText(r lidMap, m *waE2E.Message) (string, []string) {
	var in Incoming
	switch {
	case m.GetConversation() != "":
		return m.GetConversation(), nil
	case m.GetExtendedTextMessage() != nil:
		r.context(&in, m.GetExtendedTextMessage().GetContextInfo())
		return m.GetExtendedTextMessage().GetText(), in.Mentions
	case m.GetImageMessage() != nil:
		return m.GetImageMessage().GetCaption(), nil
	case m.GetVideoMessage() != nil:
		return m.GetVideoMessage().GetCaption(), nil
	case m.GetDocumentMessage() != nil:
		return m.GetDocumentMessage().GetCaption(), nil
	}
	return "", nil
}

// target is the message a reaction, edit, revoke or vote names by key. A
// key is written from its author's side: FromMe there means "the
// author's own message", so who sent the target follows from who sent
// the event and where.
func (r lidMap) target(e *events.Message, key *waCommon.MessageKey, chat string) *msg.Target {
	src := e.Info.MessageSource
	t := &msg.Target{WAID: key.GetID(), Chat: chat}
	var sender, alt types.JID
	switch {
	case key.GetFromMe():
		sender, alt, t.FromMe = src.Sender, src.SenderAlt, src.IsFromMe
	case src.IsGroup:
		sender, _ = types.ParseJID(key.GetParticipant())
		t.FromMe = r.isOwn(sender)
	case src.IsFromMe:
		// Our phone acted on a message of the other side of the chat.
		sender, alt = src.Chat, src.RecipientAlt
	default:
		// The other side acted on a message of ours.
		t.FromMe = true
		sender, _ = r.own()
	}
	if !sender.IsEmpty() {
		pn, lid := r.pair(sender, alt)
		t.Sender = preferred(sender, pn, lid)
	}
	return t
}

// contactCard is a contact message as a card: its name, its vCard and the
// numbers the vCard lists.
func contactCard(c *waE2E.ContactMessage) msg.Contact {
	return msg.Contact{Name: c.GetDisplayName(), VCard: c.GetVcard(), Phones: msg.VCardPhones(c.GetVcard())}
}

// mapReceipt maps the receipts that say how far a message we sent got.
// Receipts from our own other devices (IsFromMe: we read or played
// something on the phone, "sender", "read-self", "played-self") and the
// bookkeeping ones (retry, server-error, inactive, peer_msg, hist_sync)
// are not about delivery and are left out.
func mapReceipt(e *events.Receipt, r lidMap) (*Receipt, bool) {
	if e.IsFromMe {
		return nil, false
	}
	var t ReceiptType
	switch e.Type {
	case types.ReceiptTypeDelivered:
		t = ReceiptDelivered
	case types.ReceiptTypeRead, types.ReceiptTypePlayed:
		// Played (a voice or view-once message opened) implies read.
		t = ReceiptRead
	default:
		return nil, false
	}
	ids := make([]string, 0, len(e.MessageIDs))
	for _, id := range e.MessageIDs {
		ids = append(ids, string(id))
	}
	if len(ids) == 0 {
		return nil, false
	}
	chat, sender, _ := r.messageAddr(e.MessageSource)
	return &Receipt{Chat: chat, Sender: sender, IDs: ids, Type: t, Timestamp: e.Timestamp}, true
}

// offeredCall is a call as WhatsApp named it, for RejectCall.
type offeredCall struct {
	from types.JID
	at   time.Time
}

// wmCallMemory is how long an offered call can be rejected by its id.
const wmCallMemory = 10 * time.Minute

// mapCall is a call offered to us; its caller as a number where known.
func (d *Whatsmeow) mapCall(ctx context.Context, cli *whatsmeow.Client, m types.BasicCallMeta, video bool) *Call {
	r := lidMap{ctx: ctx, cli: cli, log: d.log}
	caller, alt := m.CallCreator, m.CallCreatorAlt
	if caller.IsEmpty() {
		caller, alt = m.From, types.EmptyJID
	}
	pn, lid := r.pair(caller, alt)
	c := &Call{ID: m.CallID, From: preferred(caller, pn, lid), Video: video, Timestamp: m.Timestamp}
	if !m.GroupJID.IsEmpty() {
		c.Chat = m.GroupJID.ToNonAD().String()
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.calls == nil {
		d.calls = map[string]offeredCall{}
	}
	now := d.now()
	for id, oc := range d.calls {
		if now.Sub(oc.at) > wmCallMemory {
			delete(d.calls, id)
		}
	}
	d.calls[m.CallID] = offeredCall{from: m.From, at: now}
	return c
}
