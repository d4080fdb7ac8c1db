package mongostore

import (
	"app/internal/store"
	"context"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// CreateWebhook inserts w (version 1); ErrExists when its id is taken.
func (s *Store) CreateWebhook(ctx context.Context, w *store.Webhook) error {
	if w.Version == 0 {
		// Set once, so an insert run again writes the same document.
		now := time.Now()
		w.Version, w.CreatedAt, w.UpdatedAt = 1, now, now
	}
	// Index: _id (unique: a taken id is a duplicate key).
	if _, err := s.db.Collection(colWebhooks).InsertOne(ctx, w); err != nil {
		if IsDuplicateKey(err) {
			return store.ErrExists
		}
		return fmt.Errorf("store: create webhook: %w", err)
	}
	return nil
}

// Webhook reads one subscription.
func (s *Store) Webhook(ctx context.Context, id string) (store.Webhook, error) {
	// Index: _id.
	return findOne[store.Webhook](ctx, s.db.Collection(colWebhooks), "read webhook", bson.D{{Key: "_id", Value: id}})
}

// Webhooks lists every subscription, oldest first. There are few: the
// primary reads them all on each pass.
func (s *Store) Webhooks(ctx context.Context) ([]store.Webhook, error) {
	// Index: created (the sort).
	return findAll[store.Webhook](ctx, s.db.Collection(colWebhooks), "list webhooks", bson.D{},
		options.Find().SetSort(bson.D{{Key: "created_at", Value: 1}, {Key: "_id", Value: 1}}))
}

// UpdateWebhook replaces the definition if it is still at version
// w.Version, and moves it to the next version; ErrConflict otherwise.
func (s *Store) UpdateWebhook(ctx context.Context, w *store.Webhook) error {
	prev := w.Version
	w.Version, w.UpdatedAt = prev+1, time.Now()
	// Index: _id.
	res, err := s.db.Collection(colWebhooks).ReplaceOne(ctx, bson.D{{Key: "_id", Value: w.ID}, {Key: "version", Value: prev}}, w)
	if err != nil {
		w.Version = prev
		return fmt.Errorf("store: update webhook: %w", err)
	}
	if res.MatchedCount == 0 {
		w.Version = prev
		return store.ErrConflict
	}
	return nil
}

// DisableWebhook turns a subscription off with a reason, if it is still
// at version (an edit made meanwhile wins: ErrConflict).
func (s *Store) DisableWebhook(ctx context.Context, id string, version int, reason string) error {
	// Index: _id.
	res, err := s.db.Collection(colWebhooks).UpdateOne(ctx, bson.D{{Key: "_id", Value: id}, {Key: "version", Value: version}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "enabled", Value: false}, {Key: "disabled_reason", Value: reason},
			{Key: "updated_at", Value: time.Now()}}}, {Key: "$inc", Value: bson.D{{Key: "version", Value: 1}}}})
	if err != nil {
		return fmt.Errorf("store: disable webhook: %w", err)
	}
	if res.MatchedCount == 0 {
		return store.ErrConflict
	}
	return nil
}

// DeleteWebhook deletes a subscription; ErrNotFound when there is none.
// The primary stops delivering to it at its next pass and forgets its
// progress; its delivery records stay until housekeeping prunes them.
func (s *Store) DeleteWebhook(ctx context.Context, id string) error {
	// Index: _id.
	res, err := s.db.Collection(colWebhooks).DeleteOne(ctx, bson.D{{Key: "_id", Value: id}})
	if err != nil {
		return fmt.Errorf("store: delete webhook: %w", err)
	}
	if res.DeletedCount == 0 {
		return store.ErrNotFound
	}
	return nil
}

// WebhookState reads the primary's progress on a subscription.
func (s *Store) WebhookState(ctx context.Context, id string) (store.WebhookState, error) {
	// Index: _id.
	return findOne[store.WebhookState](ctx, s.db.Collection(colWebhookState), "read webhook state", bson.D{{Key: "_id", Value: id}})
}

// SaveWebhookState writes the primary's progress.
func (s *Store) SaveWebhookState(ctx context.Context, st store.WebhookState) error {
	st.Updated = time.Now()
	// Index: _id.
	_, err := s.db.Collection(colWebhookState).ReplaceOne(ctx, bson.D{{Key: "_id", Value: st.ID}}, st, options.Replace().SetUpsert(true))
	if err != nil {
		return fmt.Errorf("store: save webhook state: %w", err)
	}
	return nil
}

// ForgetWebhookStates deletes the progress of subscriptions not in keep
// (deleted ones).
func (s *Store) ForgetWebhookStates(ctx context.Context, keep []string) error {
	if keep == nil {
		keep = []string{}
	}
	// Index: _id; one document per subscription, so all but some is
	// nearly all of a small collection.
	_, err := s.db.Collection(colWebhookState).DeleteMany(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$nin", Value: keep}}}})
	if err != nil {
		return fmt.Errorf("store: forget webhook states: %w", err)
	}
	return nil
}

// SaveDelivery writes the record of a delivery (one per event and
// subscription; each attempt replaces it).
func (s *Store) SaveDelivery(ctx context.Context, d store.WebhookDelivery) error {
	d.Key = store.DeliveryKey(d.WebhookID, d.Seq)
	// Index: _id.
	_, err := s.db.Collection(colDeliveries).ReplaceOne(ctx, bson.D{{Key: "_id", Value: d.Key}}, d, options.Replace().SetUpsert(true))
	if err != nil {
		return fmt.Errorf("store: save delivery: %w", err)
	}
	return nil
}

// Deliveries lists a subscription's deliveries, newest event first,
// before seq (0: from the newest), of status (all when empty).
func (s *Store) Deliveries(ctx context.Context, id string, beforeSeq int64, status string, limit int) ([]store.WebhookDelivery, error) {
	// Index: webhook_seq, or webhook_status_seq with a status: either
	// gives the sort, so a page reads only its rows.
	filter := bson.D{{Key: "webhook_id", Value: id}}
	if beforeSeq > 0 {
		filter = append(filter, bson.E{Key: "seq", Value: bson.D{{Key: "$lt", Value: beforeSeq}}})
	}
	if status != "" {
		filter = append(filter, bson.E{Key: "status", Value: status})
	}
	return findAll[store.WebhookDelivery](ctx, s.db.Collection(colDeliveries), "list deliveries", filter,
		options.Find().SetSort(bson.D{{Key: "seq", Value: -1}}).SetLimit(int64(limit)))
}

// PruneDeliveries deletes records of deliveries settled before t.
func (s *Store) PruneDeliveries(ctx context.Context, before time.Time) (int64, error) {
	// Index: last_attempt, the range before t (the few still retrying in
	// it are read and kept).
	res, err := s.db.Collection(colDeliveries).DeleteMany(ctx, bson.D{{Key: "last_attempt_at", Value: bson.D{{Key: "$lt", Value: before}}},
		{Key: "status", Value: bson.D{{Key: "$ne", Value: store.DeliveryRetrying}}}})
	if err != nil {
		return 0, fmt.Errorf("store: prune deliveries: %w", err)
	}
	return res.DeletedCount, nil
}

// EventSeqAt is the position just before the first event written at or
// after t (a replay from t starts after it); the log's last position when
// there is none.
func (s *Store) EventSeqAt(ctx context.Context, t time.Time) (int64, error) {
	// The one writer appends in time order, so the first event at or
	// after t by time is the first by position (index "at").
	e, err := findOne[eventDoc](ctx, s.db.Collection(colEvents), "find event by time", bson.D{{Key: "at", Value: bson.D{{Key: "$gte", Value: t}}}},
		options.FindOne().SetSort(bson.D{{Key: "at", Value: 1}}).SetProjection(bson.D{{Key: "_id", Value: 1}}))
	if err == store.ErrNotFound {
		return s.LastEventSeq(ctx)
	}
	if err != nil {
		return 0, err
	}
	return e.Seq - 1, nil
}
