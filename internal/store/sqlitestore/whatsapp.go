package sqlitestore

import (
	"context"
	"fmt"
	"math"
	"time"

	"app/internal/store"
)

// The WhatsApp account's records: the session (one row per account),
// incoming messages, receipts, chats and contacts. The primary is their
// one writer; workers read them.
//
// Incoming messages grow without bound, so each of their queries has an
// index that yields its rows in the order asked for: a chat's history
// (incoming_chat_sent), the newest over all chats (incoming_sent), the
// messages whose event is still to be appended (incoming_event_seq).
// Chats are paged by last activity (chats_latest, and chats_users_latest
// for the one-to-one chats only) and counted by their first outgoing
// message (chats_first_out), the new-contacts cap.

var _ = schema(
	`CREATE TABLE wa_session (
		account TEXT NOT NULL DEFAULT 'default' PRIMARY KEY,
		doc BLOB NOT NULL
	) STRICT`,
	`CREATE TABLE incoming (
		id TEXT PRIMARY KEY,
		account TEXT NOT NULL DEFAULT 'default',
		chat TEXT NOT NULL,
		wa_id TEXT NOT NULL,
		sent_ns INTEGER NOT NULL,
		event_seq INTEGER,
		media_pending_ns INTEGER,
		doc BLOB NOT NULL
	) STRICT`,
	`CREATE INDEX incoming_chat_sent ON incoming(chat, sent_ns, id)`,
	// Reactions, edits, revokes and votes name their message by chat and
	// WhatsApp id.
	`CREATE INDEX incoming_chat_wa_id ON incoming(chat, wa_id)`,
	`CREATE INDEX incoming_sent ON incoming(sent_ns, id)`,
	`CREATE INDEX incoming_event_seq ON incoming(event_seq) WHERE event_seq IS NOT NULL`,
	// The few whose file was asked of the sender's phone again (lids.go).
	`CREATE INDEX incoming_media_pending ON incoming(media_pending_ns) WHERE media_pending_ns IS NOT NULL`,
	`CREATE TABLE receipts (
		id TEXT PRIMARY KEY,
		account TEXT NOT NULL DEFAULT 'default',
		doc BLOB NOT NULL
	) STRICT`,
	`CREATE TABLE chats (
		jid TEXT PRIMARY KEY,
		account TEXT NOT NULL DEFAULT 'default',
		is_user INTEGER NOT NULL,
		last_ns INTEGER NOT NULL,
		first_out_ns INTEGER,
		doc BLOB NOT NULL
	) STRICT`,
	`CREATE INDEX chats_latest ON chats(last_ns, jid)`,
	`CREATE INDEX chats_users_latest ON chats(last_ns, jid) WHERE is_user = 1`,
	`CREATE INDEX chats_first_out ON chats(first_out_ns) WHERE first_out_ns IS NOT NULL`,
	`CREATE TABLE contacts (
		jid TEXT PRIMARY KEY,
		account TEXT NOT NULL DEFAULT 'default',
		doc BLOB NOT NULL
	) STRICT`,
)

// findLimit is limit as MongoDB's find takes it, in SQL: 0 is no limit,
// a negative limit is its absolute value.
func findLimit(limit int) int {
	switch {
	case limit == 0:
		return -1
	case limit < 0:
		return -limit
	}
	return limit
}

// nullIfZero stores 0 as NULL, where the MongoDB engine omits the field.
func nullIfZero(v int64) any {
	if v == 0 {
		return nil
	}
	return v
}

// nsOrNull is t's column value, NULL for the zero time (an omitted field).
func nsOrNull(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UnixNano()
}

// The first page of a list by (time, key), newest first, is the page
// before a cursor after every row.
func firstPage(beforeNS int64, beforeKey string) (int64, string) {
	if beforeNS == 0 {
		return math.MaxInt64, ""
	}
	return beforeNS, beforeKey
}

var (
	sqlSaveSession = exec(`INSERT INTO wa_session(account, doc) VALUES(?, ?)
		ON CONFLICT(account) DO UPDATE SET doc = excluded.doc`)
	sqlSession = query(`SELECT doc FROM wa_session WHERE account = ?`)
)

// SaveSession replaces the session record.
func (s *Store) SaveSession(ctx context.Context, ws store.WASession) error {
	ws.UpdatedAt = time.Now()
	ws.Account = store.AccountOr(ws.Account)
	d, err := doc(ws)
	if err != nil {
		return err
	}
	if err := s.write(ctx, func(t *wtx) error {
		_, err := t.exec(sqlSaveSession, store.DefaultAccount, d)
		return err
	}); err != nil {
		return fmt.Errorf("store: save session: %w", err)
	}
	return nil
}

// Session reads the session record; ErrNotFound before a primary ran.
func (s *Store) Session(ctx context.Context) (store.WASession, error) {
	return one[store.WASession](ctx, s, "read session", sqlSession, store.DefaultAccount)
}

var (
	sqlSaveIncoming = exec(`INSERT INTO incoming(id, chat, wa_id, sent_ns, event_seq, media_pending_ns, doc) VALUES(?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT(id) DO NOTHING`)
	sqlIncomingByWAID = query(`SELECT doc FROM incoming WHERE chat = ? AND wa_id = ? ORDER BY rowid LIMIT 1`)
	sqlIncomingW      = exec(`SELECT doc FROM incoming WHERE id = ?`)
	sqlSetIncoming    = exec(`UPDATE incoming SET event_seq = ?, media_pending_ns = ?, doc = ? WHERE id = ?`)
	sqlIncoming       = query(`SELECT doc FROM incoming WHERE id = ?`)
	// Unannounced messages are the few at the log's end: a range of
	// incoming_event_seq.
	sqlIncomingUnannounced = query(`SELECT doc FROM incoming WHERE event_seq > ? ORDER BY event_seq`)
	sqlIncomingOfChat      = query(`SELECT doc FROM incoming WHERE chat = ? ORDER BY sent_ns, id LIMIT ?`)
	// Pages read incoming_chat_sent (a chat's) or incoming_sent (all
	// chats') backwards from the cursor.
	sqlIncomingPageOfChat = query(`SELECT doc FROM incoming WHERE chat = ? AND (sent_ns, id) < (?, ?)
		ORDER BY sent_ns DESC, id DESC LIMIT ?`)
	sqlIncomingPage = query(`SELECT doc FROM incoming WHERE (sent_ns, id) < (?, ?)
		ORDER BY sent_ns DESC, id DESC LIMIT ?`)
)

// SaveIncoming stores m; WhatsApp delivering it again changes nothing.
// It reports whether m was new.
func (s *Store) SaveIncoming(ctx context.Context, m store.IncomingMessage) (bool, error) {
	if m.Key == "" {
		m.Key = m.Chat + "/" + m.Sender + "/" + m.WAID
	}
	m.Account = store.AccountOr(m.Account)
	d, err := doc(m)
	if err != nil {
		return false, err
	}
	var added bool
	if err := s.write(ctx, func(t *wtx) error {
		res, err := t.exec(sqlSaveIncoming, m.Key, m.Chat, m.WAID, ns(m.SentAt), nullIfZero(m.EventSeq), mediaPendingNS(m), d)
		if err == nil {
			added = affected(res) == 1
		}
		return err
	}); err != nil {
		return false, fmt.Errorf("store: save incoming message: %w", err)
	}
	return added, nil
}

// SetIncomingMedia records where an incoming message's media went, and
// the event log position of the event that announces the message. A key
// that is not stored is no error (nothing to update), as on MongoDB.
func (s *Store) SetIncomingMedia(ctx context.Context, key string, ref store.MediaRef, eventSeq int64) error {
	err := s.write(ctx, func(t *wtx) error {
		m, err := txOne[store.IncomingMessage](t, "read incoming message", sqlIncomingW, key)
		if err == store.ErrNotFound {
			return nil
		}
		if err != nil {
			return err
		}
		m.Media, m.EventSeq = &ref, eventSeq
		d, err := doc(m)
		if err != nil {
			return err
		}
		_, err = t.exec(sqlSetIncoming, nullIfZero(eventSeq), mediaPendingNS(m), d, key)
		return err
	})
	if err != nil {
		return fmt.Errorf("store: set media of %s: %w", key, err)
	}
	return nil
}

// IncomingMessage reads one stored incoming message by its key.
func (s *Store) IncomingMessage(ctx context.Context, key string) (store.IncomingMessage, error) {
	return one[store.IncomingMessage](ctx, s, "read incoming message", sqlIncoming, key)
}

// IncomingByWAID reads the incoming message of chat with WhatsApp id waID
// (the one stored first, should two senders have used the same id).
func (s *Store) IncomingByWAID(ctx context.Context, chat, waID string) (store.IncomingMessage, error) {
	return one[store.IncomingMessage](ctx, s, "read incoming message", sqlIncomingByWAID, chat, waID)
}

// UpdateIncoming replaces a stored incoming message (its edits, revoke,
// media); ErrNotFound when it is not stored. Its chat, WhatsApp id and
// time are the key's and do not change.
func (s *Store) UpdateIncoming(ctx context.Context, m store.IncomingMessage) error {
	m.Account = store.AccountOr(m.Account)
	d, err := doc(m)
	if err != nil {
		return err
	}
	err = s.write(ctx, func(t *wtx) error {
		res, err := t.exec(sqlSetIncoming, nullIfZero(m.EventSeq), mediaPendingNS(m), d, m.Key)
		if err == nil && affected(res) == 0 {
			return store.ErrNotFound
		}
		return err
	})
	if err != nil && err != store.ErrNotFound {
		return fmt.Errorf("store: update incoming message %s: %w", m.Key, err)
	}
	return err
}

// IncomingUnannounced lists incoming messages stored for an event log
// position after seq (the log's end): their events are missing.
func (s *Store) IncomingUnannounced(ctx context.Context, seq int64) ([]store.IncomingMessage, error) {
	return all[store.IncomingMessage](ctx, s, "list unannounced incoming messages", sqlIncomingUnannounced, seq)
}

// IncomingMessages lists stored incoming messages of chat, oldest first.
func (s *Store) IncomingMessages(ctx context.Context, chat string, limit int) ([]store.IncomingMessage, error) {
	return all[store.IncomingMessage](ctx, s, "list incoming messages", sqlIncomingOfChat, chat, findLimit(limit))
}

// IncomingPage lists incoming messages (of chat, or all when chat is
// empty) newest first by (sent_at, key), strictly before the cursor:
// beforeNS in nanoseconds and the key of the last message of the previous
// page (zero for the first page). Times are kept to the nanosecond here,
// so a cursor taken from an outgoing message (in a chat's mixed history)
// falls exactly between the incoming ones, as the merged page sorts them.
func (s *Store) IncomingPage(ctx context.Context, chat string, beforeNS int64, beforeKey string, limit int) ([]store.IncomingMessage, error) {
	beforeNS, beforeKey = firstPage(beforeNS, beforeKey)
	if chat == "" {
		return all[store.IncomingMessage](ctx, s, "list incoming messages", sqlIncomingPage, beforeNS, beforeKey, findLimit(limit))
	}
	return all[store.IncomingMessage](ctx, s, "list incoming messages", sqlIncomingPageOfChat, chat, beforeNS, beforeKey, findLimit(limit))
}

var sqlSaveReceipt = exec(`INSERT INTO receipts(id, doc) VALUES(?, ?) ON CONFLICT(id) DO NOTHING`)

// SaveReceipt stores r; a redelivered receipt changes nothing.
func (s *Store) SaveReceipt(ctx context.Context, r store.ReceiptRecord) error {
	if r.Key == "" && len(r.WAIDs) > 0 {
		r.Key = r.Chat + "/" + r.Sender + "/" + r.Type + "/" + r.WAIDs[0]
	}
	d, err := doc(r)
	if err != nil {
		return err
	}
	if err := s.write(ctx, func(t *wtx) error {
		_, err := t.exec(sqlSaveReceipt, r.Key, d)
		return err
	}); err != nil {
		return fmt.Errorf("store: save receipt: %w", err)
	}
	return nil
}

var (
	sqlChat     = query(`SELECT doc FROM chats WHERE jid = ?`)
	sqlSaveChat = exec(`INSERT INTO chats(jid, is_user, last_ns, first_out_ns, doc) VALUES(?, ?, ?, ?, ?)
		ON CONFLICT(jid) DO UPDATE SET is_user = excluded.is_user, last_ns = excluded.last_ns,
			first_out_ns = excluded.first_out_ns, doc = excluded.doc`)
	sqlChatsPage = query(`SELECT doc FROM chats WHERE (last_ns, jid) < (?, ?)
		ORDER BY last_ns DESC, jid DESC LIMIT ?`)
	sqlUserChatsPage = query(`SELECT doc FROM chats WHERE is_user = 1 AND (last_ns, jid) < (?, ?)
		ORDER BY last_ns DESC, jid DESC LIMIT ?`)
	sqlCountNewContacts = query(`SELECT count(*) FROM chats WHERE first_out_ns >= ?`)
)

// Chat reads one chat.
func (s *Store) Chat(ctx context.Context, jid string) (store.Chat, error) {
	return one[store.Chat](ctx, s, "read chat", sqlChat, jid)
}

// SaveChat writes the primary's view of a chat, replacing what was stored
// (the primary is its one writer and merges before it saves).
func (s *Store) SaveChat(ctx context.Context, c store.Chat) error {
	c.Account = store.AccountOr(c.Account)
	d, err := doc(c)
	if err != nil {
		return err
	}
	user := 0
	if store.IsUserChat(c.JID) {
		user = 1
	}
	if err := s.write(ctx, func(t *wtx) error {
		_, err := t.exec(sqlSaveChat, c.JID, user, ns(c.LastMessageAt), nsOrNull(c.FirstOutgoing), d)
		return err
	}); err != nil {
		return fmt.Errorf("store: save chat: %w", err)
	}
	return nil
}

// CountNewContactsSince counts chats first written to since t: a range of
// chats_first_out, as long as the chats first written to since t.
func (s *Store) CountNewContactsSince(ctx context.Context, t time.Time) (int64, error) {
	from := int64(math.MinInt64)
	if !t.IsZero() {
		from = t.UnixNano()
	}
	return scalar[int64](ctx, s, "count new contacts", sqlCountNewContacts, from)
}

// ChatsPage lists chats by latest activity, newest first, strictly before
// the cursor (last_message_at in nanoseconds and the JID); users only
// lists one-to-one chats (the contacts, by number or by LID).
func (s *Store) ChatsPage(ctx context.Context, beforeNS int64, beforeJID string, usersOnly bool, limit int) ([]store.Chat, error) {
	beforeNS, beforeJID = firstPage(beforeNS, beforeJID)
	st := sqlChatsPage
	if usersOnly {
		st = sqlUserChatsPage
	}
	return all[store.Chat](ctx, s, "list chats", st, beforeNS, beforeJID, findLimit(limit))
}

var (
	sqlSaveContact = exec(`INSERT INTO contacts(jid, doc) VALUES(?, ?)
		ON CONFLICT(jid) DO UPDATE SET doc = excluded.doc`)
	sqlContact = query(`SELECT doc FROM contacts WHERE jid = ?`)
)

// SaveContactPushName records the push name jid sent a message with (the
// primary is the one writer), keeping the rest of the contact.
func (s *Store) SaveContactPushName(ctx context.Context, jid, name string) error {
	return s.editContact(ctx, jid, "save push name", func(c *store.Contact) { c.PushName = name })
}

// Contact reads what jid told us about themselves.
func (s *Store) Contact(ctx context.Context, jid string) (store.Contact, error) {
	return one[store.Contact](ctx, s, "read contact", sqlContact, jid)
}
