package store

import (
	"fmt"
	"time"
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
