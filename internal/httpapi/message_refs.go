package httpapi

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"app/internal/msg"
	"app/internal/store"
)

// refusal is a request that names something the store says it cannot
// have: a status, an error code, a message and the field at fault.
type refusal struct {
	status           int
	code, msg, field string
}

func refuse(status int, code, field, message string) *refusal {
	return &refusal{status: status, code: code, field: field, msg: message}
}

func notFoundRef(field, message string) *refusal {
	return refuse(http.StatusNotFound, "not_found", field, message)
}

// resolve completes a checked request with what it names in the store:
// the message it forwards, its file's type (and so, untyped, its kind),
// the message it quotes, the message it is about. A refusal says what
// the client must change; an error is the store's.
func (s *Server) resolve(ctx context.Context, d *sendDraft) (*refusal, error) {
	if d.forward != nil {
		if rf, err := s.resolveForward(ctx, d); rf != nil || err != nil {
			return rf, err
		}
	} else if d.MediaID != "" {
		if rf, err := s.resolveMedia(ctx, d); rf != nil || err != nil {
			return rf, err
		}
	}
	if d.ReplyTo != "" {
		if rf, err := s.resolveReply(ctx, d); rf != nil || err != nil {
			return rf, err
		}
	}
	if d.Target != nil {
		return s.resolveTarget(ctx, d)
	}
	return nil, nil
}

// mediaFits says whether a file of mimeType can be sent as kind, as
// WhatsApp's apps play it.
func mediaFits(kind, mimeType string) (bool, string) {
	switch kind {
	case msg.KindImage:
		return mimeType == "image/jpeg" || mimeType == "image/png", "an image is JPEG or PNG"
	case msg.KindSticker:
		return mimeType == "image/webp", "a sticker is WebP"
	case msg.KindVideo:
		return mimeType == "video/mp4" || mimeType == "video/3gpp", "a video is MP4 or 3GPP"
	case msg.KindVoice:
		return mimeType == "audio/ogg", "a voice note is Ogg with Opus"
	case msg.KindAudio:
		return strings.HasPrefix(mimeType, "audio/"), "audio is an audio file"
	}
	return true, ""
}

func (s *Server) resolveMedia(ctx context.Context, d *sendDraft) (*refusal, error) {
	info, err := s.Messages.MediaInfo(ctx, d.MediaID)
	if errors.Is(err, store.ErrNotFound) {
		return refuse(http.StatusBadRequest, "invalid", "media_id", "no media "+strconv.Quote(d.MediaID)+"; upload it with POST /v1/media"), nil
	}
	if err != nil {
		return nil, err
	}
	d.MediaType, d.MediaName = info.MimeType, info.FileName
	if d.Kind == "" {
		d.Kind = msg.KindOf("", info.MimeType)
		return nil, nil
	}
	if ok, want := mediaFits(d.Kind, info.MimeType); !ok {
		return refuse(http.StatusUnsupportedMediaType, "unsupported_media_type", "media_id",
			"media "+d.MediaID+" is "+info.MimeType+"; "+want), nil
	}
	if d.Kind == msg.KindVoice {
		return s.checkOpus(ctx, d.MediaID)
	}
	return nil, nil
}

// checkOpus refuses an Ogg file whose stream is not Opus (Vorbis, say):
// WhatsApp plays a voice note as Opus only. An Ogg stream's first page
// carries its codec's header, "OpusHead" for Opus, at byte 28.
func (s *Server) checkOpus(ctx context.Context, id string) (*refusal, error) {
	_, file, err := s.Messages.OpenMedia(ctx, id)
	if err != nil {
		return nil, err
	}
	defer file.Close()
	head := make([]byte, 36)
	n, err := io.ReadFull(file, head)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return nil, err
	}
	if n < 36 || !bytes.HasPrefix(head, []byte("OggS")) || !bytes.Equal(head[28:36], []byte("OpusHead")) {
		return refuse(http.StatusUnsupportedMediaType, "unsupported_media_type", "media_id",
			"media "+id+" is Ogg but not Opus; a voice note is Ogg with Opus (ffmpeg -c:a libopus)"), nil
	}
	return nil, nil
}

// resolveReply fills in who wrote the quoted message, when it is stored:
// WhatsApp names a quoted message by its sender in groups. A WhatsApp id
// not stored here is quoted as it is, as before; our id of a message not
// sent yet is resolved by the primary, which sends it first (same chat).
func (s *Server) resolveReply(ctx context.Context, d *sendDraft) (*refusal, error) {
	r := d.ReplyTo
	if outboxID.MatchString(r) {
		q, err := s.Messages.OutboxMessage(ctx, r)
		if errors.Is(err, store.ErrNotFound) {
			return notFoundRef("reply_to", "no message "+strconv.Quote(r)+" to reply to"), nil
		}
		if err != nil {
			return nil, err
		}
		if q.Chat != d.Chat {
			return refuse(http.StatusBadRequest, "invalid", "reply_to", "reply_to "+r+" is a message to "+q.Chat+"; a reply quotes a message of its own chat"), nil
		}
		if q.Status == store.StatusFailed || q.Status == store.StatusCancelled {
			return refuse(http.StatusConflict, "not_sent", "reply_to", "reply_to "+r+" was never sent (it is "+q.Status+")"), nil
		}
		d.ReplyToFromMe = true
		if q.WAID != "" {
			d.ReplyTo = q.WAID
		}
		return nil, nil
	}
	if q, err := s.Messages.OutboxByWAID(ctx, r); err == nil && q.Chat == d.Chat {
		d.ReplyToFromMe = true
		return nil, nil
	} else if err != nil && !errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	in, err := s.Messages.IncomingByWAID(ctx, d.Chat, r)
	switch {
	case err == nil:
		d.ReplyToSender, d.ReplyToFromMe = in.Sender, in.FromMe
	case !errors.Is(err, store.ErrNotFound):
		return nil, err
	}
	return nil, nil
}

// stored is a message found in the store, of either direction, as a
// reaction, an edit, a revoke or a forward sees it.
type stored struct {
	outbox  *store.OutboxMessage
	in      *store.IncomingMessage
	kind    string
	fromMe  bool
	sentAt  time.Time
	revoked bool
}

func fromOutbox(m store.OutboxMessage) stored {
	return stored{outbox: &m, kind: m.MessageKind(), fromMe: true, sentAt: m.SentAt, revoked: !m.RevokedAt.IsZero()}
}

func fromIncoming(m store.IncomingMessage) stored {
	mt := ""
	if m.Media != nil {
		mt = m.Media.MimeType
	}
	return stored{in: &m, kind: msg.KindOf(m.Kind, mt), fromMe: m.FromMe, sentAt: m.SentAt, revoked: !m.RevokedAt.IsZero()}
}

// findByWAID finds the message of chat with WhatsApp id waID: one we sent
// through the API, or one received (by its sender, when given).
func (s *Server) findByWAID(ctx context.Context, chat, waID, sender string) (stored, error) {
	if sender == "" {
		q, err := s.Messages.OutboxByWAID(ctx, waID)
		if err == nil && q.Chat == chat {
			return fromOutbox(q), nil
		}
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return stored{}, err
		}
		in, err := s.Messages.IncomingByWAID(ctx, chat, waID)
		if err != nil {
			return stored{}, err
		}
		return fromIncoming(in), nil
	}
	in, err := s.Messages.IncomingMessage(ctx, chat+"/"+sender+"/"+waID)
	if err != nil {
		return stored{}, err
	}
	return fromIncoming(in), nil
}

// resolveTarget finds the message a reaction, edit or revoke is about, in
// the chat of to, and checks that WhatsApp would take the change.
func (s *Server) resolveTarget(ctx context.Context, d *sendDraft) (*refusal, error) {
	t := d.Target
	var found stored
	if t.ID != "" {
		q, err := s.Messages.OutboxMessage(ctx, t.ID)
		if errors.Is(err, store.ErrNotFound) {
			return notFoundRef("target", "no message "+strconv.Quote(t.ID)), nil
		}
		if err != nil {
			return nil, err
		}
		if q.Chat != d.Chat {
			return refuse(http.StatusBadRequest, "invalid", "target", "target "+t.ID+" is a message to "+q.Chat+", not to "+d.Chat), nil
		}
		found = fromOutbox(q)
	} else {
		var err error
		found, err = s.findByWAID(ctx, d.Chat, t.WAID, t.Sender)
		switch {
		case errors.Is(err, store.ErrNotFound) && d.Kind == msg.KindReaction:
			// A reaction may be to a message not stored here: WhatsApp
			// names it by chat, sender and id.
			if t.Sender == "" && strings.HasSuffix(d.Chat, "@g.us") {
				return refuse(http.StatusBadRequest, "invalid", "target.sender",
					"message "+t.WAID+" is not stored here: in a group, name its sender (target.sender)"), nil
			}
			if t.Sender == "" {
				t.Sender = d.Chat
			}
			return nil, nil
		case errors.Is(err, store.ErrNotFound):
			return notFoundRef("target", "no message "+strconv.Quote(t.WAID)+" in "+d.Chat+" is stored; an "+d.Kind+" is of a stored message of ours"), nil
		case err != nil:
			return nil, err
		}
	}
	if found.outbox != nil {
		q := found.outbox
		t.ID, t.WAID, t.Sender, t.FromMe = q.ID, q.WAID, "", true
		if store.StatusRank(q.Status) < store.StatusRank(store.StatusSent) || q.Status == store.StatusFailed || q.Status == store.StatusCancelled {
			hint := "; try again once it is sent"
			switch {
			case q.Status == store.StatusFailed || q.Status == store.StatusCancelled:
				hint = ""
			case d.Kind == msg.KindRevoke:
				hint = "; cancel it instead (DELETE /v1/messages/" + q.ID + ")"
			}
			return refuse(http.StatusConflict, "not_sent", "target", "target "+q.ID+" is "+q.Status+", not sent"+hint), nil
		}
	} else {
		t.WAID, t.Sender, t.FromMe = found.in.WAID, found.in.Sender, found.in.FromMe
	}
	if !msg.IsContent(found.kind) {
		return refuse(http.StatusConflict, "not_content", "target", "target is a "+found.kind+"; a "+d.Kind+" is about a message with content"), nil
	}
	if found.revoked {
		return refuse(http.StatusConflict, "revoked", "target", "target was deleted for everyone"), nil
	}
	switch d.Kind {
	case msg.KindEdit:
		if !found.fromMe {
			return refuse(http.StatusConflict, "not_ours", "target", "target was sent by "+found.in.Sender+"; only messages we sent can be edited"), nil
		}
		switch found.kind {
		case msg.KindText, msg.KindImage, msg.KindVideo, msg.KindDocument:
		default:
			return refuse(http.StatusConflict, "not_editable", "target", "target is a "+found.kind+"; only a text or a caption (image, video, document) can be edited"), nil
		}
		if age := time.Since(found.sentAt); age > msg.EditWindow {
			return refuse(http.StatusConflict, "edit_window_passed", "target", "target was sent at "+found.sentAt.UTC().Format(time.RFC3339)+
				", "+age.Truncate(time.Minute).String()+" ago; WhatsApp takes edits for 15 minutes after a message was sent"), nil
		}
	case msg.KindRevoke:
		if !found.fromMe {
			return refuse(http.StatusConflict, "not_ours", "target", "target was sent by "+found.in.Sender+
				"; deleting someone else's message for everyone needs group admin rights, which come with group management (issue 19)"), nil
		}
	}
	return nil, nil
}

// resolveForward copies the content of the stored message to forward:
// a text, a file, a location or contact cards, marked forwarded.
func (s *Server) resolveForward(ctx context.Context, d *sendDraft) (*refusal, error) {
	f := d.forward
	var found stored
	var err error
	switch {
	case outboxID.MatchString(f.ID):
		var q store.OutboxMessage
		if q, err = s.Messages.OutboxMessage(ctx, f.ID); err == nil {
			found = fromOutbox(q)
		}
	case f.ID != "":
		var in store.IncomingMessage
		if in, err = s.Messages.IncomingMessage(ctx, f.ID); err == nil {
			found = fromIncoming(in)
		}
	default:
		found, err = s.findByWAID(ctx, f.Chat, f.WAID, "")
	}
	if errors.Is(err, store.ErrNotFound) {
		return notFoundRef("forward", "no stored message "+strconv.Quote(f.ID+f.WAID)+" to forward"), nil
	}
	if err != nil {
		return nil, err
	}
	switch found.kind {
	case msg.KindText, msg.KindLocation, msg.KindContacts:
	default:
		if !msg.IsMedia(found.kind) {
			return refuse(http.StatusConflict, "not_forwardable", "forward", "the message is a "+found.kind+"; a text, a file, a location or contact cards can be forwarded"), nil
		}
	}
	if found.revoked {
		return refuse(http.StatusConflict, "revoked", "forward", "the message was deleted for everyone"), nil
	}
	if d.Kind != "" && d.Kind != found.kind {
		return refuse(http.StatusBadRequest, "invalid", "type", "type is "+d.Kind+" but the forwarded message is a "+found.kind+"; leave type out"), nil
	}
	d.Kind = found.kind
	if q := found.outbox; q != nil {
		d.ForwardOf, d.Text, d.MediaID, d.MediaType, d.MediaName = q.ID, q.Text, q.MediaID, q.MediaType, q.MediaName
		d.Location, d.Contacts = q.Location, q.Contacts
	} else {
		in := found.in
		d.ForwardOf, d.Text, d.Location, d.Contacts = in.Key, in.Text, in.Location, in.Contacts
		if msg.IsMedia(found.kind) {
			if in.Media == nil || in.Media.FileID == "" {
				return refuse(http.StatusConflict, "not_forwardable", "forward", "the file of that message was not stored here; it cannot be forwarded"), nil
			}
			d.MediaID, d.MediaType, d.MediaName = in.Media.FileID, in.Media.MimeType, in.Media.FileName
			if d.Text == "" {
				d.Text = in.Media.Caption
			}
		}
	}
	if d.MediaID != "" {
		if _, err := s.Messages.MediaInfo(ctx, d.MediaID); errors.Is(err, store.ErrNotFound) {
			return refuse(http.StatusConflict, "not_forwardable", "forward", "the file of that message is no longer stored; it cannot be forwarded"), nil
		} else if err != nil {
			return nil, err
		}
	}
	return nil, nil
}
