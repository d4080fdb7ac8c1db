package primary

import (
	"context"
	"encoding/hex"
	"errors"
	"time"

	"app/internal/msg"
	"app/internal/store"
	"app/internal/whatsapp"
)

// The incoming kinds that are about another message, their target: a
// reaction and a poll vote name it; an edit and a revoke change it. Each
// is a message of its own as well, stored and announced as
// message.incoming like any other; an edit or a revoke that changes its
// target also announces the change, message.updated, in the same step:
// the edit's record, the target's change and both events are stored with
// one AppendWith, so a primary stopped between them is reconciled by the
// next (incomingEntries).

// messageUpdated is "message.updated": a stored message changed after it
// was announced. Key names an incoming message, ID one of the outbox.
// Change says what changed: edited or revoked (Text, Edits, EditedAt,
// RevokedAt), or media (Addr and Media: a pending file arrived, in
// media.file_id, or will not, media.skipped).
type messageUpdated struct {
	Key       string          `json:"key,omitempty"`
	ID        string          `json:"id,omitempty"`
	WAID      string          `json:"wa_id"`
	Chat      string          `json:"chat"`
	Sender    string          `json:"sender,omitempty"`
	FromMe    bool            `json:"from_me"`
	msg.Addr                  // media only
	Change    string          `json:"change"`
	Text      string          `json:"text,omitempty"`
	Edits     []msg.Edit      `json:"edits,omitempty"`
	EditedAt  time.Time       `json:"edited_at,omitzero"`
	RevokedAt time.Time       `json:"revoked_at,omitzero"`
	Media     *store.MediaRef `json:"media,omitempty"`
}

// The changes message.updated tells of, by the kind that makes them.
var changeOf = map[string]string{msg.KindEdit: "edited", msg.KindRevoke: "revoked"}

// onKinds handles what an incoming message with a target needs before it
// is stored: the target's id of ours (an outbox message), a vote's option
// names. An edit or a revoke it stores and announces itself (handled).
func (w *WhatsApp) onKinds(ctx context.Context, m *whatsapp.Incoming, doc *store.IncomingMessage) (handled bool, err error) {
	if doc.Target == nil || doc.Target.WAID == "" {
		return false, nil
	}
	t := *doc.Target // the driver's event keeps its own
	doc.Target = &t
	if changeOf[doc.Kind] != "" {
		return true, w.onChange(ctx, *doc)
	}
	target, err := findTarget(ctx, w.Store, doc.Chat, t)
	if err != nil {
		return false, err
	}
	if target != nil && target.out != nil {
		doc.Target.ID = target.out.ID
	}
	if doc.Kind == msg.KindPollVote && len(m.VoteHashes) > 0 {
		w.nameVote(m, doc, target)
	}
	return false, nil
}

// nameVote names a vote's options, which WhatsApp sends as the SHA-256 of
// each name, from the poll it answers: hashing the poll's options finds
// them. A hash no option of the stored poll has (or with no poll stored:
// one sent before our history) is kept in hex.
func (w *WhatsApp) nameVote(m *whatsapp.Incoming, doc *store.IncomingMessage, poll *target) {
	names := map[string]string{}
	if poll != nil {
		if p := poll.body().Poll; p != nil {
			for _, o := range p.Options {
				names[string(whatsapp.PollOptionHash(o))] = o
			}
		}
	}
	doc.Vote = nil
	unknown := 0
	for _, h := range m.VoteHashes {
		name, ok := names[string(h)]
		if !ok {
			name, unknown = hex.EncodeToString(h), unknown+1
		}
		doc.Vote = append(doc.Vote, name)
	}
	if unknown > 0 {
		w.Log.Info().Str("chat", doc.Chat).Str("wa_id", doc.WAID).Str("poll", doc.Target.WAID).Bool("poll_stored", poll != nil).
			Int("unknown", unknown).Msg("A poll vote chose options the stored poll does not have, or the poll is not stored; kept as their hashes in hex.")
	}
}

// onChange stores an edit or a revoke, applies it to its target, and
// announces both in one step. A target that is not stored (older than
// our history, or still to arrive) or that its sender may not change is
// left as it is; the edit or revoke is stored and announced either way.
func (w *WhatsApp) onChange(ctx context.Context, doc store.IncomingMessage) error {
	switch _, err := w.Store.IncomingMessage(ctx, doc.Key); {
	case err == nil:
		// A redelivery: stored and announced (what a stopped primary did
		// not announce, the next one's Start did before any delivery).
		return nil
	case !errors.Is(err, store.ErrNotFound):
		return err
	}
	// The outbox's messages are the sender's to write as well: its status
	// and this change must not undo each other.
	w.mu.Lock()
	defer w.mu.Unlock()
	t, err := findTarget(ctx, w.Store, doc.Chat, *doc.Target)
	if err != nil {
		return err
	}
	log := w.Log.With().Str("kind", doc.Kind).Str("chat", doc.Chat).Str("sender", doc.Sender).Str("target", doc.Target.WAID).Logger()
	write := false
	switch {
	case t == nil:
		log.Info().Msg("An edit or a revoke of a message that is not stored (older than our history, or still to arrive); stored, nothing else changes.")
	case t.applied(doc):
		// This very change was stored on the target by an earlier try whose
		// record and events did not follow (MongoDB has no transaction).
	default:
		if why := t.refusal(doc); why != "" {
			log.Info().Str("reason", why).Msg("An edit or a revoke the message's target does not take; stored, the target stays as it was.")
			t = nil
			break
		}
		t.apply(doc, w.Cfg.KeepRevoked)
		write = true
	}
	if t != nil && t.out != nil {
		doc.Target.ID = t.out.ID
	}
	evs := []Entry{{"message.incoming", incomingEvent(doc)}}
	if t != nil {
		evs = append(evs, Entry{"message.updated", t.updated(changeOf[doc.Kind])})
	}
	return w.Events.AppendWith(ctx, func(ctx context.Context, seq int64) error {
		// The target first: a record stored without its target's change
		// would make a redelivery take the change as done.
		if write {
			if err := t.save(ctx, w.Store); err != nil {
				return err
			}
		}
		return w.saveIncomingAt(ctx, doc, seq)
	}, evs...)
}

// incomingEntries are the events that announce m, an incoming message
// stored with its event log position: message.incoming, and for an edit
// or a revoke that changed its target, that change (as onChange appended
// them), so a stopped primary's last step is announced whole.
func incomingEntries(ctx context.Context, st store.Store, m store.IncomingMessage) ([]Entry, error) {
	evs := []Entry{incomingEntry(m)}
	if changeOf[m.Kind] == "" || m.Target == nil || m.Target.WAID == "" {
		return evs, nil
	}
	t, err := findTarget(ctx, st, m.Chat, *m.Target)
	if err != nil {
		return nil, err
	}
	if t != nil && t.applied(m) {
		evs = append(evs, Entry{"message.updated", t.updated(changeOf[m.Kind])})
	}
	return evs, nil
}

// target is the stored message another one is about: one received, or
// one of the outbox (sent through the API).
type target struct {
	in  *store.IncomingMessage
	out *store.OutboxMessage
}

// findTarget reads the message of chat that t names; nil when it is not
// stored. WhatsApp's from_me in a key is the hint which side to read
// first, not trusted to exclude the other.
func findTarget(ctx context.Context, st store.Store, chat string, t msg.Target) (*target, error) {
	if t.Chat != "" {
		chat = t.Chat
	}
	incoming := func() (*target, error) {
		m, err := st.IncomingByWAID(ctx, chat, t.WAID)
		if errors.Is(err, store.ErrNotFound) {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		return &target{in: &m}, nil
	}
	outbox := func() (*target, error) {
		m, err := st.OutboxByWAID(ctx, t.WAID)
		if errors.Is(err, store.ErrNotFound) || (err == nil && m.Chat != chat) {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		return &target{out: &m}, nil
	}
	first, second := incoming, outbox
	if t.FromMe {
		first, second = outbox, incoming
	}
	if found, err := first(); found != nil || err != nil {
		return found, err
	}
	return second()
}

func (t *target) body() *msg.Body {
	if t.in != nil {
		return &t.in.Body
	}
	return &t.out.Body
}

func (t *target) changes() *msg.Changes {
	if t.in != nil {
		return &t.in.Changes
	}
	return &t.out.Changes
}

func (t *target) text() *string {
	if t.in != nil {
		return &t.in.Text
	}
	return &t.out.Text
}

func (t *target) kind() string {
	if t.in != nil {
		mt := ""
		if t.in.Media != nil {
			mt = t.in.Media.MimeType
		}
		return msg.KindOf(t.in.Kind, mt)
	}
	return msg.KindOf(t.out.Kind, t.out.MediaType)
}

// sameTime compares times to the millisecond, as MongoDB keeps them.
func sameTime(a, b time.Time) bool { return a.UnixMilli() == b.UnixMilli() }

// applied says whether the edit or revoke doc has changed t already.
// An edit: an old text replaced at doc's time by doc's text (the next old
// text, or the current one); a revoke: revoked at doc's time.
func (t *target) applied(doc store.IncomingMessage) bool {
	c := t.changes()
	if doc.Kind == msg.KindRevoke {
		return !c.RevokedAt.IsZero() && sameTime(c.RevokedAt, doc.SentAt)
	}
	for i, e := range c.Edits {
		if !sameTime(e.At, doc.SentAt) {
			continue
		}
		next := *t.text()
		if i+1 < len(c.Edits) {
			next = c.Edits[i+1].Text
		}
		if next == doc.Text {
			return true
		}
	}
	return false
}

// refusal says why doc may not change t, "" when it may. Only a
// message's sender edits it. A revoke in a one-to-one chat is its
// sender's; in a group an admin may delete anyone's message, and without
// the group's admins at hand every member's revoke is taken.
func (t *target) refusal(doc store.IncomingMessage) string {
	fromMe, sender := true, ""
	if t.in != nil {
		fromMe, sender = t.in.FromMe, t.in.Sender
	}
	c := t.changes()
	if !c.RevokedAt.IsZero() {
		return "the message was deleted for everyone already"
	}
	group := !store.IsUserChat(doc.Chat)
	if !(doc.Kind == msg.KindRevoke && group) && (doc.FromMe != fromMe || (!fromMe && doc.Sender != sender)) {
		return "not the message's sender"
	}
	if doc.Kind == msg.KindEdit {
		switch k := t.kind(); k {
		case msg.KindText, msg.KindImage, msg.KindVideo, msg.KindDocument:
		default:
			return "a message of kind " + k + " has no text to edit"
		}
		if !c.EditedAt.IsZero() && doc.SentAt.Before(c.EditedAt) {
			return "older than the message's last edit, whose text stays"
		}
	}
	return ""
}

// apply changes t as doc says: an edit replaces the text (a caption) and
// keeps the old one; a revoke marks it deleted and, unless keep, removes
// its content, as its sender asked. The media file of a received
// message is no longer named by it; the store keeps it until
// APP_MEDIA_RETENTION prunes it (the store has no deletion of one file).
// An outbox message keeps its media id: the file is the client's upload.
func (t *target) apply(doc store.IncomingMessage, keep bool) {
	c, text := t.changes(), t.text()
	if doc.Kind == msg.KindEdit {
		old := *text
		if old == "" && t.in != nil && t.in.Media != nil {
			old = t.in.Media.Caption
		}
		c.Edits = append(c.Edits, msg.Edit{Text: old, At: doc.SentAt})
		c.EditedAt = doc.SentAt
		*text = doc.Text
		if t.in != nil && t.in.Media != nil {
			t.in.Media.Caption = doc.Text
		}
		return
	}
	c.RevokedAt = doc.SentAt
	if keep {
		return
	}
	b := t.body()
	b.Kind = t.kind() // known from the media, which goes
	b.Location, b.Contacts, b.Poll, b.Mentions, b.Vote = nil, nil, nil, nil, nil
	c.Edits = nil
	*text = ""
	if t.in != nil {
		t.in.Media = nil
	}
}

func (t *target) save(ctx context.Context, st store.Store) error {
	if t.in != nil {
		return st.UpdateIncoming(ctx, *t.in)
	}
	_, err := st.SaveOutbox(ctx, t.out)
	return err
}

// updated is t's message.updated event after its change (edited or
// revoked), as it is now.
func (t *target) updated(change string) messageUpdated {
	c := t.changes()
	e := messageUpdated{Change: change, Text: *t.text(), Edits: c.Edits, EditedAt: c.EditedAt, RevokedAt: c.RevokedAt}
	if t.in != nil {
		e.Key, e.WAID, e.Chat, e.Sender, e.FromMe = t.in.Key, t.in.WAID, t.in.Chat, t.in.Sender, t.in.FromMe
	} else {
		e.ID, e.WAID, e.Chat, e.FromMe = t.out.ID, t.out.WAID, t.out.Chat, true
	}
	return e
}
