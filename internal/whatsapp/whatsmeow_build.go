package whatsapp

import (
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/types"
	"google.golang.org/protobuf/proto"

	"app/internal/msg"
)

// buildParts is what a message needs beyond its Outgoing: the upload of
// its file, our own JID as the chat addresses us (a reply to our own
// message names it), the clock (reactions and edits carry a timestamp)
// and a poll's secret. Send fills it in; the golden tests fix it.
type buildParts struct {
	up     *whatsmeow.UploadResponse
	self   string
	now    time.Time
	secret []byte
}

// outgoingKind is m's kind; a message from before the kinds is a text, or
// media by its file's type.
func outgoingKind(m Outgoing) string {
	if m.Kind != "" {
		return m.Kind
	}
	if m.Media == nil {
		return msg.KindText
	}
	switch mediaKind(m.Media.MimeType) {
	case whatsmeow.MediaImage:
		return msg.KindImage
	case whatsmeow.MediaVideo:
		return msg.KindVideo
	case whatsmeow.MediaAudio:
		return msg.KindAudio
	}
	return msg.KindDocument
}

// mediaKind is how WhatsApp carries a file of MIME type mt.
func mediaKind(mt string) whatsmeow.MediaType {
	switch {
	case strings.HasPrefix(mt, "image/") && mt != "image/svg+xml":
		return whatsmeow.MediaImage
	case strings.HasPrefix(mt, "video/"):
		return whatsmeow.MediaVideo
	case strings.HasPrefix(mt, "audio/"):
		return whatsmeow.MediaAudio
	}
	return whatsmeow.MediaDocument
}

// uploadType is how a file of kind is uploaded (its encryption keys
// depend on it): stickers are images to WhatsApp's media servers.
func uploadType(kind string) whatsmeow.MediaType {
	switch kind {
	case msg.KindImage, msg.KindSticker:
		return whatsmeow.MediaImage
	case msg.KindVideo:
		return whatsmeow.MediaVideo
	case msg.KindAudio, msg.KindVoice:
		return whatsmeow.MediaAudio
	}
	return whatsmeow.MediaDocument
}

// The MIME types WhatsApp plays a voice note and shows a sticker in.
const (
	voiceMimeType   = "audio/ogg; codecs=opus"
	stickerMimeType = "image/webp"
)

// buildMessage is the WhatsApp message for m. Reactions, edits, revokes
// and polls are built by whatsmeow's own builders (cli may be nil: they
// then only leave our own JID out of the comparisons, which the target's
// FromMe settles), with the clock and the poll's secret from p.
func buildMessage(cli *whatsmeow.Client, m Outgoing, p buildParts) (*waE2E.Message, error) {
	kind := outgoingKind(m)
	ci := contextInfo(m, p.self)
	switch kind {
	case msg.KindText:
		if ci == nil {
			return &waE2E.Message{Conversation: proto.String(m.Text)}, nil
		}
		return &waE2E.Message{ExtendedTextMessage: &waE2E.ExtendedTextMessage{Text: proto.String(m.Text), ContextInfo: ci}}, nil

	case msg.KindImage, msg.KindVideo, msg.KindAudio, msg.KindVoice, msg.KindDocument, msg.KindSticker:
		if m.Media == nil || p.up == nil {
			return nil, fmt.Errorf("a %s message needs a file", kind)
		}
		return mediaMessage(kind, m, p.up, ci), nil

	case msg.KindLocation:
		l := m.Location
		if l == nil {
			return nil, errors.New("a location message needs a location")
		}
		return &waE2E.Message{LocationMessage: &waE2E.LocationMessage{
			DegreesLatitude: proto.Float64(l.Latitude), DegreesLongitude: proto.Float64(l.Longitude),
			Name: optString(l.Name), Address: optString(l.Address), ContextInfo: ci,
		}}, nil

	case msg.KindContacts:
		cards := make([]*waE2E.ContactMessage, 0, len(m.Contacts))
		for _, c := range m.Contacts {
			vcard := c.VCard
			if vcard == "" {
				vcard = msg.VCard(c.Name, c.Phones)
			}
			cards = append(cards, &waE2E.ContactMessage{DisplayName: proto.String(c.Name), Vcard: proto.String(vcard)})
		}
		switch len(cards) {
		case 0:
			return nil, errors.New("a contacts message needs a contact")
		case 1:
			cards[0].ContextInfo = ci
			return &waE2E.Message{ContactMessage: cards[0]}, nil
		}
		return &waE2E.Message{ContactsArrayMessage: &waE2E.ContactsArrayMessage{
			DisplayName: proto.String(fmt.Sprintf("%d contacts", len(cards))), Contacts: cards, ContextInfo: ci,
		}}, nil

	case msg.KindPoll:
		if m.Poll == nil {
			return nil, errors.New("a poll message needs a poll")
		}
		question := m.Poll.Question
		if question == "" {
			question = m.Text
		}
		x := cli.BuildPollCreation(question, m.Poll.Options, m.Poll.Selectable)
		if p.secret != nil {
			x.MessageContextInfo.MessageSecret = p.secret
		}
		x.PollCreationMessage.ContextInfo = ci
		return x, nil

	case msg.KindReaction:
		chat, sender, err := targetJIDs(m.Target)
		if err != nil {
			return nil, err
		}
		x := cli.BuildReaction(chat, sender, types.MessageID(m.Target.WAID), m.Reaction)
		x.ReactionMessage.SenderTimestampMS = proto.Int64(p.now.UnixMilli())
		return x, nil

	case msg.KindEdit:
		chat, _, err := targetJIDs(m.Target)
		if err != nil {
			return nil, err
		}
		content := &waE2E.Message{Conversation: proto.String(m.Text)}
		if len(m.Mentions) > 0 {
			content = &waE2E.Message{ExtendedTextMessage: &waE2E.ExtendedTextMessage{
				Text: proto.String(m.Text), ContextInfo: &waE2E.ContextInfo{MentionedJID: m.Mentions}}}
		}
		x := cli.BuildEdit(chat, types.MessageID(m.Target.WAID), content)
		x.EditedMessage.Message.ProtocolMessage.TimestampMS = proto.Int64(p.now.UnixMilli())
		return x, nil

	case msg.KindRevoke:
		chat, sender, err := targetJIDs(m.Target)
		if err != nil {
			return nil, err
		}
		return cli.BuildRevoke(chat, sender, types.MessageID(m.Target.WAID)), nil
	}
	return nil, fmt.Errorf("unknown message kind %q", kind)
}

// targetJIDs are the chat and sender whatsmeow's builders name a target
// by: an empty sender for our own message, the other side for theirs in
// a one-to-one chat; in a group the sender must be known.
func targetJIDs(t *msg.Target) (chat, sender types.JID, err error) {
	if t == nil || t.WAID == "" {
		return chat, sender, errors.New("no target message")
	}
	chat, err = types.ParseJID(t.Chat)
	if err != nil || chat.IsEmpty() {
		return chat, sender, fmt.Errorf("invalid target chat %q", t.Chat)
	}
	if t.FromMe {
		return chat, types.EmptyJID, nil
	}
	if t.Sender == "" {
		if chat.Server == types.GroupServer || chat.Server == types.BroadcastServer {
			return chat, sender, errors.New("the target's sender is needed in a group")
		}
		return chat, chat, nil
	}
	sender, err = types.ParseJID(t.Sender)
	if err != nil || sender.IsEmpty() {
		return chat, sender, fmt.Errorf("invalid target sender %q", t.Sender)
	}
	return chat, sender, nil
}

// contextInfo is what m says about other messages: the quoted one (by id,
// and by sender, which WhatsApp needs in groups), mentions, the forwarded
// mark. Nil when none.
func contextInfo(m Outgoing, self string) *waE2E.ContextInfo {
	if m.ReplyTo == "" && len(m.Mentions) == 0 && !m.Forwarded {
		return nil
	}
	ci := &waE2E.ContextInfo{}
	if m.ReplyTo != "" {
		ci.StanzaID = proto.String(m.ReplyTo)
		participant := m.ReplyToSender
		if m.ReplyToFromMe {
			participant = self
		}
		ci.Participant = optString(participant)
	}
	if len(m.Mentions) > 0 {
		ci.MentionedJID = m.Mentions
	}
	if m.Forwarded {
		// A score of 1: forwarded once (WhatsApp marks "forwarded many
		// times" from 5).
		ci.IsForwarded = proto.Bool(true)
		ci.ForwardingScore = proto.Uint32(1)
	}
	return ci
}

// mediaMessage is a message carrying the uploaded file.
func mediaMessage(kind string, m Outgoing, up *whatsmeow.UploadResponse, ci *waE2E.ContextInfo) *waE2E.Message {
	mt := m.Media.MimeType
	caption := optString(m.Text)
	url, path, length := proto.String(up.URL), proto.String(up.DirectPath), proto.Uint64(up.FileLength)
	switch kind {
	case msg.KindImage:
		return &waE2E.Message{ImageMessage: &waE2E.ImageMessage{Caption: caption, Mimetype: proto.String(mt), URL: url,
			DirectPath: path, MediaKey: up.MediaKey, FileEncSHA256: up.FileEncSHA256, FileSHA256: up.FileSHA256,
			FileLength: length, ContextInfo: ci}}
	case msg.KindVideo:
		return &waE2E.Message{VideoMessage: &waE2E.VideoMessage{Caption: caption, Mimetype: proto.String(mt), URL: url,
			DirectPath: path, MediaKey: up.MediaKey, FileEncSHA256: up.FileEncSHA256, FileSHA256: up.FileSHA256,
			FileLength: length, ContextInfo: ci}}
	case msg.KindAudio, msg.KindVoice:
		a := &waE2E.AudioMessage{Mimetype: proto.String(mt), URL: url, DirectPath: path, MediaKey: up.MediaKey,
			FileEncSHA256: up.FileEncSHA256, FileSHA256: up.FileSHA256, FileLength: length, ContextInfo: ci}
		if kind == msg.KindVoice {
			// WhatsApp plays a push-to-talk note only as Ogg/Opus, and
			// names it so whatever the upload said.
			a.PTT = proto.Bool(true)
			a.Mimetype = proto.String(voiceMimeType)
		}
		return &waE2E.Message{AudioMessage: a}
	case msg.KindSticker:
		return &waE2E.Message{StickerMessage: &waE2E.StickerMessage{Mimetype: proto.String(stickerMimeType), URL: url,
			DirectPath: path, MediaKey: up.MediaKey, FileEncSHA256: up.FileEncSHA256, FileSHA256: up.FileSHA256,
			FileLength: length, ContextInfo: ci}}
	}
	return &waE2E.Message{DocumentMessage: &waE2E.DocumentMessage{Caption: caption, Mimetype: proto.String(mt),
		FileName: optString(m.Media.FileName), URL: url, DirectPath: path,
		MediaKey: up.MediaKey, FileEncSHA256: up.FileEncSHA256, FileSHA256: up.FileSHA256, FileLength: length, ContextInfo: ci}}
}

func optString(s string) *string {
	if s == "" {
		return nil
	}
	return proto.String(s)
}

// pollSecret is a poll's message secret, the key its votes are encrypted
// with: derived from our identity key and the message id, so that every
// attempt at sending one poll carries the same secret. whatsmeow's own is
// random per build, and its store keeps the first one it saw for an id
// (ON CONFLICT DO NOTHING): a retry with a second secret would reach the
// voters while we decrypt with the first. Nil (whatsmeow's random one)
// without a device.
func pollSecret(cli *whatsmeow.Client, id string) []byte {
	if cli == nil || cli.Store == nil || cli.Store.IdentityKey == nil || cli.Store.IdentityKey.Priv == nil {
		return nil
	}
	mac := hmac.New(sha256.New, cli.Store.IdentityKey.Priv[:])
	mac.Write([]byte("app poll secret\x00" + id))
	return mac.Sum(nil)
}
