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
	t, err := loadSentTarget(ctx, w.Store, cur)
	switch {
	case err != nil:
		return &whatsapp.SendError{Reason: "cannot read the message to edit: " + err.Error(), Retryable: true}
	case t != nil && t.out != nil:
		sentAt = t.out.SentAt
	case t != nil:
		sentAt = t.in.SentAt
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

// changesTarget says whether m, once sent, changes the message it is
// about: an edit or a revoke.
func changesTarget(m store.OutboxMessage) bool {
	return m.Target != nil && (m.Kind == msg.KindEdit || m.Kind == msg.KindRevoke)
}

// loadSentTarget reads the message the sent edit or revoke m is about:
// one of the outbox, or one received (ours, sent from the phone); nil
// when it is not stored.
func loadSentTarget(ctx context.Context, st store.Store, m store.OutboxMessage) (*target, error) {
	t := *m.Target
	if t.ID != "" {
		q, err := st.OutboxMessage(ctx, t.ID)
		if errors.Is(err, store.ErrNotFound) {
			return nil, nil
		}
		return &target{out: &q}, err
	}
	var in store.IncomingMessage
	var err error
	if t.Sender != "" {
		in, err = st.IncomingMessage(ctx, t.Chat+"/"+t.Sender+"/"+t.WAID)
	} else {
		in, err = st.IncomingByWAID(ctx, t.Chat, t.WAID)
	}
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	return &target{in: &in}, err
}

// applySent makes the change of the sent edit or revoke m, at m.SentAt: an
// edit's new text, the old one kept in Edits (a caption too); a revoke's
// time, the content kept (it is ours). It reports false when the change
// is there already: an earlier try stored it and stopped before the
// edit's own record (MongoDB's writes are separate), then the edit was
// sent again.
func (t *target) applySent(m store.OutboxMessage) bool {
	text, c := t.text(), t.changes()
	if m.Kind == msg.KindRevoke {
		if !c.RevokedAt.IsZero() {
			return false
		}
		c.RevokedAt = m.SentAt
		return true
	}
	if *text == m.Text && !c.EditedAt.IsZero() {
		return false
	}
	c.Edits = append(c.Edits, msg.Edit{Text: *text, At: m.SentAt})
	*text, c.EditedAt = m.Text, m.SentAt
	if t.in != nil && t.in.Media != nil {
		t.in.Media.Caption = m.Text
	}
	return true
}

// withTargetChange adds to a status change of m what a sent edit or
// revoke does, when m has just reached "sent" (reached): the target's
// record changed within mark, before m's own, and its message.updated
// event after evs, in the same step. A target not stored is left alone
// (logged). Anything else passes as it is. The caller holds w.mu (the
// target may be in the outbox, which the sender writes too).
func (w *WhatsApp) withTargetChange(ctx context.Context, m *store.OutboxMessage, reached bool, mark func(context.Context, int64) error,
	evs []Entry) (func(context.Context, int64) error, []Entry, error) {
	if !reached || !changesTarget(*m) {
		return mark, evs, nil
	}
	t, err := loadSentTarget(ctx, w.Store, *m)
	if err != nil || t == nil {
		if t == nil && err == nil {
			w.Log.Warn().Str("id", m.ID).Str("target", m.Target.WAID).Msg("The message an edit or revoke was about is not stored; its change is not recorded.")
		}
		return mark, evs, err
	}
	changed := t.applySent(*m)
	evs = append(evs, Entry{"message.updated", t.updated(changeOf[m.Kind])})
	return func(ctx context.Context, seq int64) error {
		if changed {
			if err := t.save(ctx, w.Store); err != nil {
				return err
			}
		}
		return mark(ctx, seq)
	}, evs, nil
}

// targetUpdates are the events that follow m's status events when the
// log is reconciled (steps: the statuses they announce): the target's
// message.updated, as withTargetChange appended it, when they announced
// "sent" and the target is stored (its change stored before m's record).
func targetUpdates(ctx context.Context, st store.Store, m store.OutboxMessage, steps []string) ([]Entry, error) {
	if !changesTarget(m) || !slices.Contains(steps, store.StatusSent) {
		return nil, nil
	}
	t, err := loadSentTarget(ctx, st, m)
	if err != nil || t == nil {
		return nil, err
	}
	return []Entry{{"message.updated", t.updated(changeOf[m.Kind])}}, nil
}
