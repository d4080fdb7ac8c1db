package mongostore

import (
	"app/internal/store"
	"context"
	"errors"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// OutboxPage lists messages newest first, optionally of one chat and one
// status, strictly older than the cursor (queued_ns and id of the last
// message of the previous page; zero for the first page).
//
// Index: newest (everything), chat_newest_id (a chat),
// status_queued_id read backwards (a status), chat_status_newest (both);
// each also gives the order, so a page reads its own documents only.
func (s *Store) OutboxPage(ctx context.Context, chat, status string, beforeNS int64, beforeID string, limit int) ([]store.OutboxMessage, error) {
	filter := bson.D{}
	if chat != "" {
		filter = append(filter, bson.E{Key: "chat", Value: chat})
	}
	if status != "" {
		filter = append(filter, bson.E{Key: "status", Value: status})
	}
	if beforeNS != 0 {
		// The $lte, implied by the $or, bounds the index scan at the
		// cursor whether or not the planner pushes the $or into it.
		filter = append(filter, bson.E{Key: "queued_ns", Value: bson.D{{Key: "$lte", Value: beforeNS}}}, bson.E{Key: "$or", Value: bson.A{
			bson.D{{Key: "queued_ns", Value: bson.D{{Key: "$lt", Value: beforeNS}}}},
			bson.D{{Key: "queued_ns", Value: beforeNS}, {Key: "_id", Value: bson.D{{Key: "$lt", Value: beforeID}}}},
		}})
	}
	return findAll[store.OutboxMessage](ctx, s.db.Collection(colOutbox), "list messages", filter,
		options.Find().SetSort(bson.D{{Key: "queued_ns", Value: -1}, {Key: "_id", Value: -1}}).SetLimit(int64(limit)))
}

// EnqueueMessage inserts m as queued; ID, QueuedNS and the times are set
// when empty. It is what a worker does to send a message.
func (s *Store) EnqueueMessage(ctx context.Context, m *store.OutboxMessage) error {
	m.Queued()
	// Index: _id, unique (a taken id is ErrExists).
	if _, err := s.db.Collection(colOutbox).InsertOne(ctx, m); err != nil {
		if IsDuplicateKey(err) {
			return fmt.Errorf("store: enqueue %s: %w", m.ID, store.ErrExists)
		}
		return fmt.Errorf("store: enqueue: %w", err)
	}
	return nil
}

// OutboxMessage reads one message.
func (s *Store) OutboxMessage(ctx context.Context, id string) (store.OutboxMessage, error) {
	var m store.OutboxMessage
	// Index: _id.
	err := s.db.Collection(colOutbox).FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Decode(&m)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return m, store.ErrNotFound
	}
	if err != nil {
		return m, fmt.Errorf("store: read message %s: %w", id, err)
	}
	return m, nil
}

// OutboxUnfinished lists queued and sending messages in queue order, at
// most limit.
//
// Index: status_queued_id, its two ranges merged in order (SORT_MERGE).
func (s *Store) OutboxUnfinished(ctx context.Context, limit int) ([]store.OutboxMessage, error) {
	return findAll[store.OutboxMessage](ctx, s.db.Collection(colOutbox), "list outbox",
		bson.D{{Key: "status", Value: bson.D{{Key: "$in", Value: bson.A{store.StatusQueued, store.StatusSending}}}}},
		options.Find().SetSort(bson.D{{Key: "queued_ns", Value: 1}, {Key: "_id", Value: 1}}).SetLimit(int64(limit)))
}

// OutboxByStatus lists messages with one status in queue order (tests,
// and the API's listing).
//
// Index: status_queued_id.
func (s *Store) OutboxByStatus(ctx context.Context, status string, limit int) ([]store.OutboxMessage, error) {
	return findAll[store.OutboxMessage](ctx, s.db.Collection(colOutbox), "list outbox", bson.D{{Key: "status", Value: status}},
		options.Find().SetSort(bson.D{{Key: "queued_ns", Value: 1}, {Key: "_id", Value: 1}}).SetLimit(int64(limit)))
}

// OutboxByWAID finds the message sent with WhatsApp id waID (receipt
// matching).
//
// Index: wa_id (sparse: a message gets its id before its first send).
func (s *Store) OutboxByWAID(ctx context.Context, waID string) (store.OutboxMessage, error) {
	return findOne[store.OutboxMessage](ctx, s.db.Collection(colOutbox), "find message by WhatsApp id", bson.D{{Key: "wa_id", Value: waID}})
}

// SaveOutbox writes the primary's view of m (status, attempts, times): the
// primary is the only writer of a queued message's progress, so a whole
// replacement is safe and needs nothing FerretDB gets wrong. It reports
// false when m no longer exists.
func (s *Store) SaveOutbox(ctx context.Context, m *store.OutboxMessage) (bool, error) {
	m.UpdatedAt = time.Now()
	// Index: _id.
	res, err := s.db.Collection(colOutbox).ReplaceOne(ctx, bson.D{{Key: "_id", Value: m.ID}}, m)
	if err != nil {
		return false, fmt.Errorf("store: save message %s: %w", m.ID, err)
	}
	return res.MatchedCount == 1, nil
}

// CountSentSince counts messages sent since t (the daily cap).
//
// Index: sent_at (sparse), a count of the range since t.
func (s *Store) CountSentSince(ctx context.Context, t time.Time) (int64, error) {
	n, err := s.db.Collection(colOutbox).CountDocuments(ctx, bson.D{{Key: "sent_at", Value: bson.D{{Key: "$gte", Value: t}}}})
	if err != nil {
		return 0, fmt.Errorf("store: count sent messages: %w", err)
	}
	return n, nil
}

// RequestCancel records a cancel request; a second request for the same
// message is the same request.
func (s *Store) RequestCancel(ctx context.Context, id string) error {
	// Index: _id, unique (the second request is the first).
	_, err := s.db.Collection(colCancels).InsertOne(ctx, store.CancelRequest{MessageID: id, RequestedAt: time.Now()})
	if err != nil && !IsDuplicateKey(err) {
		return fmt.Errorf("store: request cancel of %s: %w", id, err)
	}
	return nil
}

// CancelRequest reads the request for message id.
//
// Index: _id.
func (s *Store) CancelRequest(ctx context.Context, id string) (store.CancelRequest, error) {
	return findOne[store.CancelRequest](ctx, s.db.Collection(colCancels), "read cancel request", bson.D{{Key: "_id", Value: id}})
}

// PendingCancels lists requests the primary has not decided.
//
// Index: outcome (not sparse: a missing outcome is indexed as null, the
// bounds of $exists: false).
func (s *Store) PendingCancels(ctx context.Context) ([]store.CancelRequest, error) {
	return findAll[store.CancelRequest](ctx, s.db.Collection(colCancels), "list cancel requests", bson.D{{Key: "outcome", Value: bson.D{{Key: "$exists", Value: false}}}},
		options.Find().SetLimit(1000))
}

// DecideCancel records the primary's decision on a request.
func (s *Store) DecideCancel(ctx context.Context, c store.CancelRequest) error {
	c.DecidedAt = time.Now()
	// Index: _id.
	if _, err := s.db.Collection(colCancels).ReplaceOne(ctx, bson.D{{Key: "_id", Value: c.MessageID}}, c); err != nil {
		return fmt.Errorf("store: decide cancel of %s: %w", c.MessageID, err)
	}
	return nil
}

// OutboxBacklog counts the messages not sent yet (queued or sending) and
// gives when the oldest of them was queued (zero when none).
//
// Index: status_queued_id, for the count (its two ranges) and the oldest
// (their first entries, merged).
func (s *Store) OutboxBacklog(ctx context.Context) (int64, time.Time, error) {
	filter := bson.D{{Key: "status", Value: bson.D{{Key: "$in", Value: bson.A{store.StatusQueued, store.StatusSending}}}}}
	n, err := s.db.Collection(colOutbox).CountDocuments(ctx, filter)
	if err != nil || n == 0 {
		return n, time.Time{}, err
	}
	oldest, err := findOne[store.OutboxMessage](ctx, s.db.Collection(colOutbox), "oldest queued message", filter,
		options.FindOne().SetSort(bson.D{{Key: "queued_ns", Value: 1}}).SetProjection(bson.D{{Key: "queued_at", Value: 1}}))
	if err != nil {
		return n, time.Time{}, err
	}
	return n, oldest.QueuedAt, nil
}

// OutboxUnannounced lists messages whose status change was stored for an
// event log position after seq (the log's end): their events are missing.
//
// Index: event_seq (sparse).
func (s *Store) OutboxUnannounced(ctx context.Context, seq int64) ([]store.OutboxMessage, error) {
	return findAll[store.OutboxMessage](ctx, s.db.Collection(colOutbox), "list unannounced messages",
		bson.D{{Key: "event_seq", Value: bson.D{{Key: "$gt", Value: seq}}}}, options.Find().SetSort(bson.D{{Key: "event_seq", Value: 1}}))
}
