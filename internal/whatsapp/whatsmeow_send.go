package whatsapp

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"strconv"
	"strings"
	"time"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/socket"
	"go.mau.fi/whatsmeow/types"

	"app/internal/msg"
)

// Send implements Driver. Every kind goes through SendMessage with the id
// chosen before the first attempt (SendRequestExtra.ID): whatsmeow uses
// it as the stanza id for reactions, edits and revokes too (it swaps it
// for the target's id only in newsletters), so a retry is the same
// message to WhatsApp whatever the kind. An edit names the message it
// edits inside (its key), not by the id it is sent with.
func (d *Whatsmeow) Send(ctx context.Context, m Outgoing) (time.Time, error) {
	if d == nil {
		return time.Time{}, ErrNotConnected
	}
	jid, err := parseRecipient(m.Chat)
	if err != nil {
		return time.Time{}, &SendError{Reason: err.Error()}
	}
	kind := outgoingKind(m)
	if err := checkOutgoing(kind, m); err != nil {
		return time.Time{}, &SendError{Reason: err.Error()}
	}
	cli, err := d.loggedIn()
	if err != nil {
		return time.Time{}, err
	}
	id := m.ID
	if id == "" {
		id = cli.GenerateMessageID()
	}
	m, self := d.addressOutgoing(ctx, cli, jid, m)
	p := buildParts{self: self, now: d.now()}
	if kind == msg.KindPoll {
		p.secret = pollSecret(cli, id)
	}
	if msg.IsMedia(kind) {
		// An upload is idempotent from our side: a retry uploads again and
		// sends with the same message id. The file is encrypted into a
		// temporary file as it is read (whatsmeow's Upload holds it twice).
		res, err := cli.UploadReader(ctx, m.Media.Body, nil, uploadType(kind))
		if err != nil {
			se := classifySendError(err)
			d.log.Warn().Err(err).Str("id", id).Bool("retryable", se.Retryable).Msg("Cannot upload the media of a message.")
			return time.Time{}, se
		}
		p.up = &res
	}
	message, err := buildMessage(cli, m, p)
	if err != nil {
		return time.Time{}, &SendError{Reason: err.Error()}
	}
	resp, err := cli.SendMessage(ctx, jid, message, whatsmeow.SendRequestExtra{ID: types.MessageID(id)})
	if err != nil {
		se := classifySendError(err)
		d.log.Warn().Err(err).Str("id", id).Str("kind", kind).Bool("retryable", se.Retryable).Bool("rate_limited", se.RateLimited).
			Msg("Cannot send a message.")
		return time.Time{}, se
	}
	if resp.Timestamp.IsZero() {
		return time.Now(), nil
	}
	return resp.Timestamp, nil
}

// checkOutgoing refuses, before anything is sent, what WhatsApp would
// refuse or could not show: never worth a retry.
func checkOutgoing(kind string, m Outgoing) error {
	if len(m.Text) > wmMaxTextLength {
		return fmt.Errorf("message too large (%d bytes, at most %d)", len(m.Text), wmMaxTextLength)
	}
	switch kind {
	case msg.KindText:
		if strings.TrimSpace(m.Text) == "" {
			return errors.New("empty message")
		}
	case msg.KindImage, msg.KindVideo, msg.KindAudio, msg.KindVoice, msg.KindDocument, msg.KindSticker:
		if m.Media == nil {
			return fmt.Errorf("a %s message needs a file", kind)
		}
		if m.Media.Body == nil {
			return errors.New("media without bytes")
		}
	case msg.KindLocation:
		l := m.Location
		if l == nil {
			return errors.New("a location message needs a location")
		}
		if math.IsNaN(l.Latitude) || math.IsNaN(l.Longitude) || math.Abs(l.Latitude) > 90 || math.Abs(l.Longitude) > 180 {
			return fmt.Errorf("coordinates out of range (%v, %v)", l.Latitude, l.Longitude)
		}
	case msg.KindContacts:
		if len(m.Contacts) == 0 {
			return errors.New("a contacts message needs a contact")
		}
		for i, c := range m.Contacts {
			if strings.TrimSpace(c.Name) == "" && c.VCard == "" {
				return fmt.Errorf("contact %d has neither a name nor a vCard", i+1)
			}
		}
	case msg.KindPoll:
		if m.Poll == nil || len(m.Poll.Options) < 2 {
			return errors.New("a poll needs at least two options")
		}
		if strings.TrimSpace(m.Poll.Question) == "" && strings.TrimSpace(m.Text) == "" {
			return errors.New("a poll needs a question")
		}
	case msg.KindReaction, msg.KindEdit, msg.KindRevoke:
		if m.Target == nil || m.Target.WAID == "" || m.Target.Chat == "" {
			return fmt.Errorf("a %s needs the message it is about", kind)
		}
		if kind == msg.KindEdit && strings.TrimSpace(m.Text) == "" {
			return errors.New("an edit needs a new text")
		}
	default:
		return fmt.Errorf("unknown message kind %q", kind)
	}
	return nil
}

// NewMessageID implements Driver. whatsmeow's generator works without a
// client too (it then leaves the own JID out of the hash).
func (d *Whatsmeow) NewMessageID() string {
	var cli *whatsmeow.Client
	if d != nil {
		cli = d.current()
	}
	return cli.GenerateMessageID()
}

// parseRecipient accepts a user, group, LID or newsletter JID, or bare
// phone digits (with an optional "+") for a user.
func parseRecipient(s string) (types.JID, error) {
	s = strings.TrimSpace(s)
	if !strings.Contains(s, "@") {
		digits := strings.TrimPrefix(s, "+")
		if digits == "" || strings.Trim(digits, "0123456789") != "" {
			return types.JID{}, fmt.Errorf("invalid recipient %q", s)
		}
		return types.NewJID(digits, types.DefaultUserServer), nil
	}
	jid, err := types.ParseJID(s)
	if err != nil {
		return types.JID{}, fmt.Errorf("invalid recipient %q: %w", s, err)
	}
	if jid.User == "" {
		return types.JID{}, fmt.Errorf("invalid recipient %q", s)
	}
	switch jid.Server {
	case types.DefaultUserServer, types.GroupServer, types.HiddenUserServer, types.NewsletterServer:
	default:
		return types.JID{}, fmt.Errorf("invalid recipient %q: unsupported server %q", s, jid.Server)
	}
	return jid.ToNonAD(), nil
}

// classifySendError maps an error of whatsmeow's SendMessage to a SendError.
// Unknown errors are retryable: a lost message is worse than a retry.
func classifySendError(err error) *SendError {
	if err == nil {
		return nil
	}
	var se *SendError
	if errors.As(err, &se) {
		return se
	}
	reason := err.Error()
	retry := &SendError{Reason: reason, Retryable: true}
	never := &SendError{Reason: reason}
	limited := &SendError{Reason: reason, Retryable: true, RateLimited: true}

	var disc *whatsmeow.DisconnectedError
	var iqErr *whatsmeow.IQError
	var netErr net.Error
	switch {
	case errors.Is(err, whatsmeow.ErrNotConnected), errors.Is(err, whatsmeow.ErrNotLoggedIn),
		errors.Is(err, whatsmeow.ErrClientIsNil), errors.Is(err, socket.ErrSocketClosed):
		return ErrNotConnected
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded),
		errors.Is(err, whatsmeow.ErrMessageTimedOut), errors.Is(err, whatsmeow.ErrIQTimedOut),
		errors.As(err, &disc), errors.As(err, &netErr):
		return retry
	case errors.Is(err, whatsmeow.ErrRecipientADJID), errors.Is(err, whatsmeow.ErrUnknownServer),
		errors.Is(err, whatsmeow.ErrBroadcastListUnsupported), errors.Is(err, whatsmeow.ErrInvalidInlineBotID),
		errors.Is(err, socket.ErrFrameTooLarge), errors.Is(err, whatsmeow.ErrGroupNotFound),
		errors.Is(err, whatsmeow.ErrNotInGroup), strings.Contains(reason, "no LID found"):
		// Unknown recipient (no WhatsApp account), not in the group, too large.
		return never
	case errors.Is(err, whatsmeow.ErrServerReturnedError):
		code := 0
		if i := strings.LastIndexByte(reason, ' '); i >= 0 {
			code, _ = strconv.Atoi(reason[i+1:])
		}
		switch code {
		case 420, 429:
			return limited
		case 400, 404, 405, 406:
			return never
		}
		return retry // 5xx, 479 (stale session state), 463 (restriction), 403 (seen to pass later)
	case errors.As(err, &iqErr):
		switch {
		case iqErr.Code == 429 || iqErr.Code == 419:
			return limited
		case iqErr.Code >= 400 && iqErr.Code < 500 && iqErr.Code != 408:
			return never
		}
		return retry
	}
	return retry
}
