package primary

import (
	"context"
	"errors"
	"io"
	"slices"
	"strings"
	"time"

	"app/internal/msg"
	"app/internal/store"
	"app/internal/whatsapp"
)

// outgoing builds what the driver sends for the outbox message cur, of
// any kind; file, when set, is the media to close after the send. A
// SendError says why cur cannot be sent (retryable when the store failed).
func (w *WhatsApp) outgoing(ctx context.Context, cur store.OutboxMessage) (whatsapp.Outgoing, io.Closer, *whatsapp.SendError) {
	out := whatsapp.Outgoing{ID: cur.WAID, Chat: cur.Chat, Body: cur.Body, Text: cur.Text, ReplyTo: cur.ReplyTo,
		ReplyToSender: cur.ReplyToSender, ReplyToFromMe: cur.ReplyToFromMe}
	out.Kind = cur.MessageKind()
	if strings.HasPrefix(out.ReplyTo, "msg_") {
		// Quoted by our id while that message was queued: it went out
		// first (the same chat's messages go in order), with its WhatsApp id.
		q, err := w.Store.OutboxMessage(ctx, out.ReplyTo)
		switch {
		case errors.Is(err, store.ErrNotFound) || (err == nil && (q.WAID == "" || q.Status == store.StatusFailed || q.Status == store.StatusCancelled)):
			return out, nil, &whatsapp.SendError{Reason: "the message it replies to (" + out.ReplyTo + ") was never sent"}
		case err != nil:
			return out, nil, &whatsapp.SendError{Reason: "cannot read the message it replies to: " + err.Error(), Retryable: true}
		}
		out.ReplyTo, out.ReplyToFromMe = q.WAID, true
	}
	if out.Kind == msg.KindEdit {
		if se := w.editWindow(ctx, cur); se != nil {
			return out, nil, se
		}
	}
	if !msg.IsMedia(out.Kind) {
		return out, nil, nil
	}
	if cur.MediaID == "" {
		return out, nil, &whatsapp.SendError{Reason: "a " + out.Kind + " message without its file"}
	}
	// Streamed from the store as the driver reads it.
	_, file, err := w.Store.OpenMedia(ctx, cur.MediaID)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return out, nil, &whatsapp.SendError{Reason: "media " + cur.MediaID + " no longer exists"}
	case err != nil:
		return out, nil, &whatsapp.SendError{Reason: "cannot read media: " + err.Error(), Retryable: true}
	}
	out.Media = &whatsapp.OutgoingMedia{MimeType: cur.MediaType, FileName: cur.MediaName, Body: file}
	return out, file, nil
}

// editWindow fails an edit whose target was sent more than
// msg.EditWindow ago: the API checked when it was queued, but it may
// have waited (offline, paced, retried) past the window since.
func (w *WhatsApp) editWindow(ctx context.Context, cur store.OutboxMessage) *whatsapp.SendError {
	if cur.Target == nil {
		return &whatsapp.SendError{Reason: "an edit without the message it edits"}
	}
	var sentAt time.Time
	if cur.Target.ID != "" {
		t, err := w.Store.OutboxMessage(ctx, cur.Target.ID)
		if err == nil {
			sentAt = t.SentAt
		} else if !errors.Is(err, store.ErrNotFound) {
			return &whatsapp.SendError{Reason: "cannot read the message to edit: " + err.Error(), Retryable: true}
		}
	} else {
		t, err := w.incomingTarget(ctx, *cur.Target)
		if err == nil {
			sentAt = t.SentAt
		} else if !errors.Is(err, store.ErrNotFound) {
			return &whatsapp.SendError{Reason: "cannot read the message to edit: " + err.Error(), Retryable: true}
		}
	}
	if sentAt.IsZero() {
		return &whatsapp.SendError{Reason: "the message to edit is not stored, or was never sent"}
	}
	if time.Since(sentAt) > msg.EditWindow {
		return &whatsapp.SendError{Reason: "edit window passed: the message to edit was sent at " + sentAt.UTC().Format(time.RFC3339) +
			", and WhatsApp takes edits for 15 minutes after a message was sent"}
	}
	return nil
}

// incomingTarget reads the stored incoming message t names.
func (w *WhatsApp) incomingTarget(ctx context.Context, t msg.Target) (store.IncomingMessage, error) {
	if t.Sender != "" {
		return w.Store.IncomingMessage(ctx, t.Chat+"/"+t.Sender+"/"+t.WAID)
	}
	return w.Store.IncomingByWAID(ctx, t.Chat, t.WAID)
}

// changesTarget says whether m, once sent, changes the message it is
// about: an edit or a revoke.
func changesTarget(m store.OutboxMessage) bool {
	return m.Target != nil && (m.Kind == msg.KindEdit || m.Kind == msg.KindRevoke)
}

// updatedEvent is the message.updated event of the change m made to its
// target, from m alone, so that the event log's reconciliation makes the
// same one.
func updatedEvent(m store.OutboxMessage) messageUpdated {
	t := m.Target
	e := messageUpdated{ID: t.ID, WAID: t.WAID, Chat: t.Chat, By: m.ID, At: m.SentAt}
	if t.ID == "" {
		e.Key = t.Chat + "/" + t.Sender + "/" + t.WAID
	}
	switch m.Kind {
	case msg.KindEdit:
		e.Change, e.Text = "edited", m.Text
	case msg.KindRevoke:
		e.Change = "revoked"
	}
	return e
}

// withTargetChange adds to a status change of m what a sent edit or
// revoke does, when m has just reached "sent" (reached): mark also
// stores the change in the target's record, and the target's
// message.updated event follows evs. Anything else passes as it is.
// The caller holds w.mu (the target may be in the outbox).
func (w *WhatsApp) withTargetChange(m *store.OutboxMessage, reached bool, mark func(context.Context, int64) error, evs []Entry) (func(context.Context, int64) error, []Entry) {
	if !reached || !changesTarget(*m) {
		return mark, evs
	}
	evs = append(evs, Entry{"message.updated", updatedEvent(*m)})
	return func(ctx context.Context, seq int64) error {
		if err := w.changeTarget(ctx, *m); err != nil {
			return err
		}
		return mark(ctx, seq)
	}, evs
}

// targetUpdates are the message.updated events that follow m's status
// events when the log is reconciled (steps: the statuses they announce):
// those of withTargetChange, when they announced "sent".
func targetUpdates(m store.OutboxMessage, steps []string) []Entry {
	if !changesTarget(m) || !slices.Contains(steps, store.StatusSent) {
		return nil
	}
	return []Entry{{"message.updated", updatedEvent(m)}}
}

// changeTarget stores what the sent edit or revoke m did to its target:
// an edit's new text, the old one kept in Edits; a revoke's time (the
// content is kept). Done again (a mark retried), it changes nothing.
func (w *WhatsApp) changeTarget(ctx context.Context, m store.OutboxMessage) error {
	at := m.SentAt
	apply := func(text *string, caption *string, c *msg.Changes) bool {
		switch m.Kind {
		case msg.KindEdit:
			if *text == m.Text && !c.EditedAt.IsZero() {
				return false // done before
			}
			c.Edits = append(c.Edits, msg.Edit{Text: *text, At: at})
			*text, c.EditedAt = m.Text, at
			if caption != nil {
				*caption = m.Text
			}
		case msg.KindRevoke:
			if !c.RevokedAt.IsZero() {
				return false
			}
			c.RevokedAt = at
		}
		return true
	}
	t := *m.Target
	if t.ID != "" {
		q, err := w.Store.OutboxMessage(ctx, t.ID)
		if errors.Is(err, store.ErrNotFound) {
			w.Log.Warn().Str("id", m.ID).Str("target", t.ID).Msg("The message an edit or revoke was about is no longer stored; its change is not recorded.")
			return nil
		}
		if err != nil || !apply(&q.Text, nil, &q.Changes) {
			return err
		}
		_, err = w.Store.SaveOutbox(ctx, &q)
		return err
	}
	in, err := w.incomingTarget(ctx, t)
	if errors.Is(err, store.ErrNotFound) {
		w.Log.Warn().Str("id", m.ID).Str("target", t.WAID).Msg("The message an edit or revoke was about is no longer stored; its change is not recorded.")
		return nil
	}
	var caption *string
	if in.Media != nil {
		caption = &in.Media.Caption
	}
	if err != nil || !apply(&in.Text, caption, &in.Changes) {
		return err
	}
	return w.Store.UpdateIncoming(ctx, in)
}
