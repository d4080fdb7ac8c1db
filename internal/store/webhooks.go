package store

import (
	"context"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// Webhook is a subscription: events of Types (all when empty) are POSTed
// to URL, signed with Secret. Workers write the definition (Version
// guards against lost edits); the primary writes only Enabled and
// DisabledReason when a receiver answers 410, and keeps its progress in
// WebhookState.
type Webhook struct {
	ID    string   `bson:"_id"`
	KeyID string   `bson:"key_id,omitempty"`
	URL   string   `bson:"url"`
	Types []string `bson:"types,omitempty"`
	// Secret signs the deliveries. It is kept as is (the primary needs it
	// to sign) and shown to the client once, when it is made.
	Secret         string `bson:"secret"`
	Description    string `bson:"description,omitempty"`
	Enabled        bool   `bson:"enabled"`
	DisabledReason string `bson:"disabled_reason,omitempty"`
	// StartSeq is the log position at creation: events after it are
	// delivered.
	StartSeq int64 `bson:"start_seq"`
	// Replay, when set, asks the primary to deliver again from FromSeq.
	Replay    *WebhookReplay `bson:"replay,omitempty"`
	Version   int            `bson:"version"`
	CreatedAt time.Time      `bson:"created_at"`
	UpdatedAt time.Time      `bson:"updated_at"`
}

// WebhookReplay is a request to deliver again from a position.
type WebhookReplay struct {
	ID          string    `bson:"id"`
	FromSeq     int64     `bson:"from_seq"`
	RequestedAt time.Time `bson:"requested_at"`
}

// Wants reports whether the subscription delivers events of type typ.
func (w Webhook) Wants(typ string) bool {
	if len(w.Types) == 0 {
		return true
	}
	for _, t := range w.Types {
		if t == typ {
			return true
		}
	}
	return false
}

// WebhookState is the primary's progress on a subscription (its one
// writer): every event up to Cursor is settled (delivered, dead, or not
// wanted).
type WebhookState struct {
	ID       string    `bson:"_id"`
	Cursor   int64     `bson:"cursor"`
	ReplayID string    `bson:"replay_id,omitempty"` // the last replay applied
	Updated  time.Time `bson:"updated_at"`
}

// Delivery statuses.
const (
	DeliveryRetrying  = "retrying"  // an attempt failed; another is due at NextAttemptAt
	DeliveryDelivered = "delivered" // the receiver answered 2xx
	DeliveryDead      = "dead"      // older than the maximum age and still not delivered
	DeliveryHalted    = "halted"    // the receiver answered 410: the subscription was disabled
)

// WebhookDelivery is the record of one event's delivery to one
// subscription, written by the primary at each attempt.
type WebhookDelivery struct {
	Key            string    `bson:"_id"` // webhook id "/" seq
	WebhookID      string    `bson:"webhook_id"`
	Seq            int64     `bson:"seq"`
	Type           string    `bson:"type"`
	EventAt        time.Time `bson:"event_at"`
	Status         string    `bson:"status"`
	Attempts       int       `bson:"attempts"`
	ResponseStatus int       `bson:"response_status,omitempty"`
	Error          string    `bson:"error,omitempty"`
	DurationMS     int64     `bson:"duration_ms"`
	FirstAttemptAt time.Time `bson:"first_attempt_at"`
	LastAttemptAt  time.Time `bson:"last_attempt_at"`
	NextAttemptAt  time.Time `bson:"next_attempt_at,omitempty"`
	DeliveredAt    time.Time `bson:"delivered_at,omitempty"`
}

// DeliveryKey is the id of the delivery of event seq to webhook id.
func DeliveryKey(id string, seq int64) string { return fmt.Sprintf("%s/%d", id, seq) }

// CreateWebhook inserts w (version 1); ErrExists when its id is taken.
func (s *Store) CreateWebhook(ctx context.Context, w *Webhook) error {
	if w.Version == 0 {
		// Set once, so an insert run again writes the same document.
		now := time.Now()
		w.Version, w.CreatedAt, w.UpdatedAt = 1, now, now
	}
	if _, err := s.db.Collection(colWebhooks).InsertOne(ctx, w); err != nil {
		if IsDuplicateKey(err) {
			return ErrExists
		}
		return fmt.Errorf("store: create webhook: %w", err)
	}
	return nil
}

// Webhook reads one subscription.
func (s *Store) Webhook(ctx context.Context, id string) (Webhook, error) {
	return findOne[Webhook](ctx, s.db.Collection(colWebhooks), "read webhook", bson.D{{Key: "_id", Value: id}})
}

// Webhooks lists every subscription, oldest first. There are few: the
// primary reads them all on each pass.
func (s *Store) Webhooks(ctx context.Context) ([]Webhook, error) {
	return findAll[Webhook](ctx, s.db.Collection(colWebhooks), "list webhooks", bson.D{},
		options.Find().SetSort(bson.D{{Key: "created_at", Value: 1}, {Key: "_id", Value: 1}}))
}

// UpdateWebhook replaces the definition if it is still at version
// w.Version, and moves it to the next version; ErrConflict otherwise.
func (s *Store) UpdateWebhook(ctx context.Context, w *Webhook) error {
	prev := w.Version
	w.Version, w.UpdatedAt = prev+1, time.Now()
	res, err := s.db.Collection(colWebhooks).ReplaceOne(ctx, bson.D{{Key: "_id", Value: w.ID}, {Key: "version", Value: prev}}, w)
	if err != nil {
		w.Version = prev
		return fmt.Errorf("store: update webhook: %w", err)
	}
	if res.MatchedCount == 0 {
		w.Version = prev
		return ErrConflict
	}
	return nil
}

// DisableWebhook turns a subscription off with a reason, if it is still
// at version (an edit made meanwhile wins: ErrConflict).
func (s *Store) DisableWebhook(ctx context.Context, id string, version int, reason string) error {
	res, err := s.db.Collection(colWebhooks).UpdateOne(ctx, bson.D{{Key: "_id", Value: id}, {Key: "version", Value: version}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "enabled", Value: false}, {Key: "disabled_reason", Value: reason},
			{Key: "updated_at", Value: time.Now()}}}, {Key: "$inc", Value: bson.D{{Key: "version", Value: 1}}}})
	if err != nil {
		return fmt.Errorf("store: disable webhook: %w", err)
	}
	if res.MatchedCount == 0 {
		return ErrConflict
	}
	return nil
}

// DeleteWebhook deletes a subscription; ErrNotFound when there is none.
// The primary stops delivering to it at its next pass and forgets its
// progress; its delivery records stay until housekeeping prunes them.
func (s *Store) DeleteWebhook(ctx context.Context, id string) error {
	res, err := s.db.Collection(colWebhooks).DeleteOne(ctx, bson.D{{Key: "_id", Value: id}})
	if err != nil {
		return fmt.Errorf("store: delete webhook: %w", err)
	}
	if res.DeletedCount == 0 {
		return ErrNotFound
	}
	return nil
}

// WebhookState reads the primary's progress on a subscription.
func (s *Store) WebhookState(ctx context.Context, id string) (WebhookState, error) {
	return findOne[WebhookState](ctx, s.db.Collection(colWebhookState), "read webhook state", bson.D{{Key: "_id", Value: id}})
}

// SaveWebhookState writes the primary's progress.
func (s *Store) SaveWebhookState(ctx context.Context, st WebhookState) error {
	st.Updated = time.Now()
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
	_, err := s.db.Collection(colWebhookState).DeleteMany(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$nin", Value: keep}}}})
	if err != nil {
		return fmt.Errorf("store: forget webhook states: %w", err)
	}
	return nil
}

// SaveDelivery writes the record of a delivery (one per event and
// subscription; each attempt replaces it).
func (s *Store) SaveDelivery(ctx context.Context, d WebhookDelivery) error {
	d.Key = DeliveryKey(d.WebhookID, d.Seq)
	_, err := s.db.Collection(colDeliveries).ReplaceOne(ctx, bson.D{{Key: "_id", Value: d.Key}}, d, options.Replace().SetUpsert(true))
	if err != nil {
		return fmt.Errorf("store: save delivery: %w", err)
	}
	return nil
}

// Deliveries lists a subscription's deliveries, newest event first,
// before seq (0: from the newest), of status (all when empty).
func (s *Store) Deliveries(ctx context.Context, id string, beforeSeq int64, status string, limit int) ([]WebhookDelivery, error) {
	filter := bson.D{{Key: "webhook_id", Value: id}}
	if beforeSeq > 0 {
		filter = append(filter, bson.E{Key: "seq", Value: bson.D{{Key: "$lt", Value: beforeSeq}}})
	}
	if status != "" {
		filter = append(filter, bson.E{Key: "status", Value: status})
	}
	return findAll[WebhookDelivery](ctx, s.db.Collection(colDeliveries), "list deliveries", filter,
		options.Find().SetSort(bson.D{{Key: "seq", Value: -1}}).SetLimit(int64(limit)))
}

// PruneDeliveries deletes records of deliveries settled before t.
func (s *Store) PruneDeliveries(ctx context.Context, before time.Time) (int64, error) {
	res, err := s.db.Collection(colDeliveries).DeleteMany(ctx, bson.D{{Key: "last_attempt_at", Value: bson.D{{Key: "$lt", Value: before}}},
		{Key: "status", Value: bson.D{{Key: "$ne", Value: DeliveryRetrying}}}})
	if err != nil {
		return 0, fmt.Errorf("store: prune deliveries: %w", err)
	}
	return res.DeletedCount, nil
}

// EventSeqAt is the position just before the first event written at or
// after t (a replay from t starts after it); the log's last position when
// there is none.
func (s *Store) EventSeqAt(ctx context.Context, t time.Time) (int64, error) {
	e, err := findOne[Event](ctx, s.db.Collection(colEvents), "find event by time", bson.D{{Key: "at", Value: bson.D{{Key: "$gte", Value: t}}}},
		options.FindOne().SetSort(bson.D{{Key: "_id", Value: 1}}).SetProjection(bson.D{{Key: "_id", Value: 1}}))
	if err == ErrNotFound {
		return s.LastEventSeq(ctx)
	}
	if err != nil {
		return 0, err
	}
	return e.Seq - 1, nil
}
