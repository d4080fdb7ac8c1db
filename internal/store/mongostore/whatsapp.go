package mongostore

import (
	"app/internal/store"
	"context"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// SaveSession replaces the session document.
func (s *Store) SaveSession(ctx context.Context, ws store.WASession) error {
	ws.UpdatedAt = time.Now()
	ws.Account = store.AccountOr(ws.Account)
	doc := struct {
		ID              string `bson:"_id"`
		store.WASession `bson:",inline"`
	}{sessionID, ws}
	// Index: _id.
	_, err := s.db.Collection(colSession).ReplaceOne(ctx, bson.D{{Key: "_id", Value: sessionID}}, doc, options.Replace().SetUpsert(true))
	if err != nil {
		return fmt.Errorf("store: save session: %w", err)
	}
	return nil
}

// Session reads the session document; ErrNotFound before a primary ran.
func (s *Store) Session(ctx context.Context) (store.WASession, error) {
	// Index: _id.
	return findOne[store.WASession](ctx, s.db.Collection(colSession), "read session", bson.D{{Key: "_id", Value: sessionID}})
}

// SaveIncoming stores m; WhatsApp delivering it again changes nothing.
// It reports whether m was new.
func (s *Store) SaveIncoming(ctx context.Context, m store.IncomingMessage) (bool, error) {
	if m.Key == "" {
		m.Key = m.Chat + "/" + m.Sender + "/" + m.WAID
	}
	m.Account = store.AccountOr(m.Account)
	// Index: _id (unique: a redelivery is a duplicate key).
	_, err := s.db.Collection(colMessages).InsertOne(ctx, m)
	if IsDuplicateKey(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("store: save incoming message: %w", err)
	}
	return true, nil
}

// SetIncomingMedia records where an incoming message's media went, and
// the event log position of the event that announces the message.
func (s *Store) SetIncomingMedia(ctx context.Context, key string, ref store.MediaRef, eventSeq int64) error {
	// Index: _id.
	_, err := s.db.Collection(colMessages).UpdateOne(ctx, bson.D{{Key: "_id", Value: key}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "media", Value: ref}, {Key: "event_seq", Value: eventSeq}}}})
	if err != nil {
		return fmt.Errorf("store: set media of %s: %w", key, err)
	}
	return nil
}

// IncomingMessage reads one stored incoming message by its key.
func (s *Store) IncomingMessage(ctx context.Context, key string) (store.IncomingMessage, error) {
	// Index: _id.
	return findOne[store.IncomingMessage](ctx, s.db.Collection(colMessages), "read incoming message", bson.D{{Key: "_id", Value: key}})
}

// IncomingByWAID reads the incoming message of chat with WhatsApp id waID
// (the one stored first, should two senders have used the same id).
func (s *Store) IncomingByWAID(ctx context.Context, chat, waID string) (store.IncomingMessage, error) {
	// Index: chat_wa_id.
	return findOne[store.IncomingMessage](ctx, s.db.Collection(colMessages), "read incoming message",
		bson.D{{Key: "chat", Value: chat}, {Key: "wa_id", Value: waID}}, options.FindOne().SetSort(bson.D{{Key: "received_at", Value: 1}}))
}

// UpdateIncoming replaces a stored incoming message (its edits, revoke,
// media); ErrNotFound when it is not stored.
func (s *Store) UpdateIncoming(ctx context.Context, m store.IncomingMessage) error {
	m.Account = store.AccountOr(m.Account)
	// Index: _id.
	res, err := s.db.Collection(colMessages).ReplaceOne(ctx, bson.D{{Key: "_id", Value: m.Key}}, m)
	if err != nil {
		return fmt.Errorf("store: update incoming message %s: %w", m.Key, err)
	}
	if res.MatchedCount == 0 {
		return store.ErrNotFound
	}
	return nil
}

// IncomingUnannounced lists incoming messages stored for an event log
// position after seq (the log's end): their events are missing.
func (s *Store) IncomingUnannounced(ctx context.Context, seq int64) ([]store.IncomingMessage, error) {
	// Index: event_seq (sparse: $gt never matches a missing field), a
	// range at its end.
	return findAll[store.IncomingMessage](ctx, s.db.Collection(colMessages), "list unannounced incoming messages",
		bson.D{{Key: "event_seq", Value: bson.D{{Key: "$gt", Value: seq}}}}, options.Find().SetSort(bson.D{{Key: "event_seq", Value: 1}}))
}

// IncomingMessages lists stored incoming messages of chat, oldest first.
func (s *Store) IncomingMessages(ctx context.Context, chat string, limit int) ([]store.IncomingMessage, error) {
	// Index: chat_sent.
	return findAll[store.IncomingMessage](ctx, s.db.Collection(colMessages), "list incoming messages", bson.D{{Key: "chat", Value: chat}},
		options.Find().SetSort(bson.D{{Key: "sent_at", Value: 1}}).SetLimit(int64(limit)))
}

// SaveReceipt stores r; a redelivered receipt changes nothing.
func (s *Store) SaveReceipt(ctx context.Context, r store.ReceiptRecord) error {
	if r.Key == "" && len(r.WAIDs) > 0 {
		r.Key = r.Chat + "/" + r.Sender + "/" + r.Type + "/" + r.WAIDs[0]
	}
	// Index: _id (unique: a redelivery is a duplicate key).
	if _, err := s.db.Collection(colReceipts).InsertOne(ctx, r); err != nil && !IsDuplicateKey(err) {
		return fmt.Errorf("store: save receipt: %w", err)
	}
	return nil
}

// Chat reads one chat.
func (s *Store) Chat(ctx context.Context, jid string) (store.Chat, error) {
	// Index: _id.
	return findOne[store.Chat](ctx, s.db.Collection(colChats), "read chat", bson.D{{Key: "_id", Value: jid}})
}

// SaveChat writes the primary's view of a chat (the primary is its one
// writer), whole. The document also says whether the chat is one-to-one
// (user), which the contacts list selects by (index users_latest): a
// pattern on the JID can use no index.
func (s *Store) SaveChat(ctx context.Context, c store.Chat) error {
	c.Account = store.AccountOr(c.Account)
	doc := struct {
		store.Chat `bson:",inline"`
		User       bool `bson:"user"`
	}{c, store.IsUserChat(c.JID)}
	// Index: _id.
	_, err := s.db.Collection(colChats).ReplaceOne(ctx, bson.D{{Key: "_id", Value: c.JID}}, doc, options.Replace().SetUpsert(true))
	if err != nil {
		return fmt.Errorf("store: save chat: %w", err)
	}
	return nil
}

// CountNewContactsSince counts chats first written to since t.
func (s *Store) CountNewContactsSince(ctx context.Context, t time.Time) (int64, error) {
	// Index: first_outgoing (sparse: chats never written to are not in
	// it), a range of the chats first written to since t.
	n, err := s.db.Collection(colChats).CountDocuments(ctx, bson.D{{Key: "first_outgoing_at", Value: bson.D{{Key: "$gte", Value: t}}}})
	if err != nil {
		return 0, fmt.Errorf("store: count new contacts: %w", err)
	}
	return n, nil
}

// ChatsPage lists chats by latest activity, newest first, strictly before
// the cursor (last_message_at in nanoseconds and the JID); users only
// lists one-to-one chats (the contacts, by number or by LID).
func (s *Store) ChatsPage(ctx context.Context, beforeNS int64, beforeJID string, usersOnly bool, limit int) ([]store.Chat, error) {
	// Index: latest, or users_latest for the contacts.
	filter := bson.D{}
	if usersOnly {
		filter = append(filter, bson.E{Key: "user", Value: true})
	}
	if beforeNS != 0 {
		t := time.Unix(0, beforeNS)
		filter = append(filter, bson.E{Key: "$or", Value: bson.A{
			bson.D{{Key: "last_message_at", Value: bson.D{{Key: "$lt", Value: t}}}},
			bson.D{{Key: "last_message_at", Value: t}, {Key: "_id", Value: bson.D{{Key: "$lt", Value: beforeJID}}}},
		}})
	}
	return findAll[store.Chat](ctx, s.db.Collection(colChats), "list chats", filter,
		options.Find().SetSort(bson.D{{Key: "last_message_at", Value: -1}, {Key: "_id", Value: -1}}).SetLimit(int64(limit)))
}

// IncomingPage lists incoming messages (of chat, or all when chat is
// empty) newest first by (sent_at, key), strictly before the cursor:
// beforeNS in nanoseconds and the key of the last message of the previous
// page (zero for the first page). Stored times have millisecond precision,
// so a cursor that is not on a millisecond (one taken from the outbox in a
// chat's mixed history) is after every message of its millisecond.
func (s *Store) IncomingPage(ctx context.Context, chat string, beforeNS int64, beforeKey string, limit int) ([]store.IncomingMessage, error) {
	// Index: chat_newest for a chat's, newest for all chats': each gives
	// the sort, (sent_at, _id) descending, so a page reads only its rows.
	filter := bson.D{}
	if chat != "" {
		filter = append(filter, bson.E{Key: "chat", Value: chat})
	}
	if beforeNS != 0 {
		ms := time.UnixMilli(beforeNS / int64(time.Millisecond))
		if beforeNS%int64(time.Millisecond) != 0 {
			filter = append(filter, bson.E{Key: "sent_at", Value: bson.D{{Key: "$lte", Value: ms}}})
		} else {
			filter = append(filter, bson.E{Key: "$or", Value: bson.A{
				bson.D{{Key: "sent_at", Value: bson.D{{Key: "$lt", Value: ms}}}},
				bson.D{{Key: "sent_at", Value: ms}, {Key: "_id", Value: bson.D{{Key: "$lt", Value: beforeKey}}}},
			}})
		}
	}
	return findAll[store.IncomingMessage](ctx, s.db.Collection(colMessages), "list incoming messages", filter,
		options.Find().SetSort(bson.D{{Key: "sent_at", Value: -1}, {Key: "_id", Value: -1}}).SetLimit(int64(limit)))
}

// SaveContactPushName records the push name jid sent a message with (the
// primary is the one writer).
func (s *Store) SaveContactPushName(ctx context.Context, jid, name string) error {
	// Index: _id.
	_, err := s.db.Collection(colContacts).UpdateOne(ctx, bson.D{{Key: "_id", Value: jid}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "push_name", Value: name}, {Key: "updated_at", Value: time.Now()},
			{Key: "account", Value: store.DefaultAccount}}}},
		options.UpdateOne().SetUpsert(true))
	if err != nil {
		return fmt.Errorf("store: save push name of %s: %w", jid, err)
	}
	return nil
}

// Contact reads what jid told us about themselves.
func (s *Store) Contact(ctx context.Context, jid string) (store.Contact, error) {
	// Index: _id.
	return findOne[store.Contact](ctx, s.db.Collection(colContacts), "read contact", bson.D{{Key: "_id", Value: jid}})
}
