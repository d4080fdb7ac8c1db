package store

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// Outbox message statuses. A message moves only forward through them:
// queued -> sending -> sent -> delivered -> read, or to failed or
// cancelled. Only the primary changes a status (one writer); workers insert
// queued messages and record cancel requests.
const (
	StatusQueued    = "queued"
	StatusSending   = "sending"
	StatusSent      = "sent"
	StatusDelivered = "delivered"
	StatusRead      = "read"
	StatusFailed    = "failed"
	StatusCancelled = "cancelled"
)

// StatusRank orders the statuses a message passes through; receipts
// never move a message back.
func StatusRank(s string) int {
	switch s {
	case StatusQueued:
		return 0
	case StatusSending:
		return 1
	case StatusSent:
		return 2
	case StatusDelivered:
		return 3
	case StatusRead:
		return 4
	}
	return 5 // failed, cancelled: final
}

// Failure is why a send failed.
type Failure struct {
	Reason    string `bson:"reason" json:"reason"`
	Retryable bool   `bson:"retryable" json:"retryable"`
}

// OutboxMessage is a message to send, and how far it got.
type OutboxMessage struct {
	ID      string `bson:"_id"`
	Chat    string `bson:"chat"`
	Text    string `bson:"text"`
	ReplyTo string `bson:"reply_to,omitempty"`
	// Media, when set, is sent with Text as its caption.
	MediaID   string `bson:"media_id,omitempty"`
	MediaType string `bson:"media_type,omitempty"`
	MediaName string `bson:"media_name,omitempty"`
	Status    string `bson:"status"`
	// QueuedNS orders the messages of a chat: the enqueuing process's
	// clock in nanoseconds, so two messages a client sends one after the
	// other keep their order.
	QueuedNS int64     `bson:"queued_ns"`
	QueuedAt time.Time `bson:"queued_at"`
	// WAID is the WhatsApp message id, chosen and stored before the first
	// send and reused by every retry.
	WAID          string    `bson:"wa_id,omitempty"`
	Attempts      int       `bson:"attempts"`
	AttemptAt     time.Time `bson:"attempt_at,omitempty"`
	NextAttemptAt time.Time `bson:"next_attempt_at,omitempty"`
	Waiting       string    `bson:"waiting,omitempty"` // why it waits (back-off, a cap)
	Error         *Failure  `bson:"error,omitempty"`
	Epoch         int64     `bson:"epoch,omitempty"` // lease epoch of the last primary that touched it
	SentAt        time.Time `bson:"sent_at,omitempty"`
	DeliveredAt   time.Time `bson:"delivered_at,omitempty"`
	ReadAt        time.Time `bson:"read_at,omitempty"`
	FinishedAt    time.Time `bson:"finished_at,omitempty"` // failed or cancelled
	UpdatedAt     time.Time `bson:"updated_at"`
	// EventSeq is the event log position of the message.status event that
	// announces Status, stored with the status before the event is
	// appended: a primary stopped between the two leaves EventSeq past the
	// log's end, and the next one appends the event (EventLog.Start).
	// EventSteps are the statuses announced at once, ending at EventSeq,
	// when a receipt skipped some (empty: just Status).
	EventSeq   int64    `bson:"event_seq,omitempty"`
	EventSteps []string `bson:"event_steps,omitempty"`
	// KeyID is the API key that queued it; RequestHash, with an
	// Idempotency-Key, tells a retry from a different request.
	KeyID       string `bson:"key_id,omitempty"`
	RequestHash string `bson:"request_hash,omitempty"`
}

// IdempotentMessageID is the outbox id of the message an API key queues
// with an Idempotency-Key: the same key and Idempotency-Key always give
// the same id, so concurrent retries meet at one unique insert.
func IdempotentMessageID(keyID, idempotencyKey string) string {
	sum := sha256.Sum256([]byte(keyID + "\x00" + idempotencyKey))
	return "msg_i" + hex.EncodeToString(sum[:13])
}

// OutboxPage lists messages newest first, optionally of one chat and one
// status, strictly older than the cursor (queued_ns and id of the last
// message of the previous page; zero for the first page).
func (s *Store) OutboxPage(ctx context.Context, chat, status string, beforeNS int64, beforeID string, limit int) ([]OutboxMessage, error) {
	filter := bson.D{}
	if chat != "" {
		filter = append(filter, bson.E{Key: "chat", Value: chat})
	}
	if status != "" {
		filter = append(filter, bson.E{Key: "status", Value: status})
	}
	if beforeNS != 0 {
		filter = append(filter, bson.E{Key: "$or", Value: bson.A{
			bson.D{{Key: "queued_ns", Value: bson.D{{Key: "$lt", Value: beforeNS}}}},
			bson.D{{Key: "queued_ns", Value: beforeNS}, {Key: "_id", Value: bson.D{{Key: "$lt", Value: beforeID}}}},
		}})
	}
	return findAll[OutboxMessage](ctx, s.db.Collection(colOutbox), "list messages", filter,
		options.Find().SetSort(bson.D{{Key: "queued_ns", Value: -1}, {Key: "_id", Value: -1}}).SetLimit(int64(limit)))
}

// NewMessageID returns an id for a new outbox message.
func NewMessageID() string {
	b := make([]byte, 10)
	_, _ = rand.Read(b)
	return "msg_" + strconv.FormatInt(time.Now().UnixMilli(), 36) + hex.EncodeToString(b)
}

// EnqueueMessage inserts m as queued; ID, QueuedNS and the times are set
// when empty. It is what a worker does to send a message.
func (s *Store) EnqueueMessage(ctx context.Context, m *OutboxMessage) error {
	now := time.Now()
	if m.ID == "" {
		m.ID = NewMessageID()
	}
	if m.QueuedNS == 0 {
		m.QueuedNS = now.UnixNano()
	}
	if m.QueuedAt.IsZero() {
		// Kept when set, so an insert run again writes the same document.
		m.QueuedAt, m.UpdatedAt = now, now
	}
	m.Status = StatusQueued
	if _, err := s.db.Collection(colOutbox).InsertOne(ctx, m); err != nil {
		if IsDuplicateKey(err) {
			return fmt.Errorf("store: enqueue %s: %w", m.ID, ErrExists)
		}
		return fmt.Errorf("store: enqueue: %w", err)
	}
	return nil
}

// ErrExists is returned when inserting a document whose id exists.
var ErrExists = errors.New("store: already exists")

// OutboxMessage reads one message.
func (s *Store) OutboxMessage(ctx context.Context, id string) (OutboxMessage, error) {
	var m OutboxMessage
	err := s.db.Collection(colOutbox).FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Decode(&m)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return m, ErrNotFound
	}
	if err != nil {
		return m, fmt.Errorf("store: read message %s: %w", id, err)
	}
	return m, nil
}

// OutboxUnfinished lists queued and sending messages in queue order, at
// most limit.
func (s *Store) OutboxUnfinished(ctx context.Context, limit int) ([]OutboxMessage, error) {
	return findAll[OutboxMessage](ctx, s.db.Collection(colOutbox), "list outbox",
		bson.D{{Key: "status", Value: bson.D{{Key: "$in", Value: bson.A{StatusQueued, StatusSending}}}}},
		options.Find().SetSort(bson.D{{Key: "queued_ns", Value: 1}, {Key: "_id", Value: 1}}).SetLimit(int64(limit)))
}

// OutboxByStatus lists messages with one status in queue order (tests,
// and the API's listing).
func (s *Store) OutboxByStatus(ctx context.Context, status string, limit int) ([]OutboxMessage, error) {
	return findAll[OutboxMessage](ctx, s.db.Collection(colOutbox), "list outbox", bson.D{{Key: "status", Value: status}},
		options.Find().SetSort(bson.D{{Key: "queued_ns", Value: 1}, {Key: "_id", Value: 1}}).SetLimit(int64(limit)))
}

// OutboxByWAID finds the message sent with WhatsApp id waID.
func (s *Store) OutboxByWAID(ctx context.Context, waID string) (OutboxMessage, error) {
	return findOne[OutboxMessage](ctx, s.db.Collection(colOutbox), "find message by WhatsApp id", bson.D{{Key: "wa_id", Value: waID}})
}

// SaveOutbox writes the primary's view of m (status, attempts, times): the
// primary is the only writer of a queued message's progress, so a whole
// replacement is safe and needs nothing FerretDB gets wrong. It reports
// false when m no longer exists.
func (s *Store) SaveOutbox(ctx context.Context, m *OutboxMessage) (bool, error) {
	m.UpdatedAt = time.Now()
	res, err := s.db.Collection(colOutbox).ReplaceOne(ctx, bson.D{{Key: "_id", Value: m.ID}}, m)
	if err != nil {
		return false, fmt.Errorf("store: save message %s: %w", m.ID, err)
	}
	return res.MatchedCount == 1, nil
}

// CountSentSince counts messages sent since t (the daily cap).
func (s *Store) CountSentSince(ctx context.Context, t time.Time) (int64, error) {
	n, err := s.db.Collection(colOutbox).CountDocuments(ctx, bson.D{{Key: "sent_at", Value: bson.D{{Key: "$gte", Value: t}}}})
	if err != nil {
		return 0, fmt.Errorf("store: count sent messages: %w", err)
	}
	return n, nil
}

// CancelRequest is a client's wish to cancel a queued message. A worker
// inserts it; the primary decides (cancelled, or too late) and records
// the outcome, so the message itself keeps one writer.
type CancelRequest struct {
	MessageID   string    `bson:"_id"`
	RequestedAt time.Time `bson:"requested_at"`
	// Outcome is empty until the primary decided: "cancelled" or
	// "too_late" with the status the message had.
	Outcome   string    `bson:"outcome,omitempty"`
	Status    string    `bson:"status,omitempty"`
	DecidedAt time.Time `bson:"decided_at,omitempty"`
}

// RequestCancel records a cancel request; a second request for the same
// message is the same request.
func (s *Store) RequestCancel(ctx context.Context, id string) error {
	_, err := s.db.Collection(colCancels).InsertOne(ctx, CancelRequest{MessageID: id, RequestedAt: time.Now()})
	if err != nil && !IsDuplicateKey(err) {
		return fmt.Errorf("store: request cancel of %s: %w", id, err)
	}
	return nil
}

// CancelRequest reads the request for message id.
func (s *Store) CancelRequest(ctx context.Context, id string) (CancelRequest, error) {
	return findOne[CancelRequest](ctx, s.db.Collection(colCancels), "read cancel request", bson.D{{Key: "_id", Value: id}})
}

// PendingCancels lists requests the primary has not decided.
func (s *Store) PendingCancels(ctx context.Context) ([]CancelRequest, error) {
	return findAll[CancelRequest](ctx, s.db.Collection(colCancels), "list cancel requests", bson.D{{Key: "outcome", Value: bson.D{{Key: "$exists", Value: false}}}},
		options.Find().SetLimit(1000))
}

// DecideCancel records the primary's decision on a request.
func (s *Store) DecideCancel(ctx context.Context, c CancelRequest) error {
	c.DecidedAt = time.Now()
	if _, err := s.db.Collection(colCancels).ReplaceOne(ctx, bson.D{{Key: "_id", Value: c.MessageID}}, c); err != nil {
		return fmt.Errorf("store: decide cancel of %s: %w", c.MessageID, err)
	}
	return nil
}

// OutboxBacklog counts the messages not sent yet (queued or sending) and
// gives when the oldest of them was queued (zero when none).
func (s *Store) OutboxBacklog(ctx context.Context) (int64, time.Time, error) {
	filter := bson.D{{Key: "status", Value: bson.D{{Key: "$in", Value: bson.A{StatusQueued, StatusSending}}}}}
	n, err := s.db.Collection(colOutbox).CountDocuments(ctx, filter)
	if err != nil || n == 0 {
		return n, time.Time{}, err
	}
	oldest, err := findOne[OutboxMessage](ctx, s.db.Collection(colOutbox), "oldest queued message", filter,
		options.FindOne().SetSort(bson.D{{Key: "queued_ns", Value: 1}}).SetProjection(bson.D{{Key: "queued_at", Value: 1}}))
	if err != nil {
		return n, time.Time{}, err
	}
	return n, oldest.QueuedAt, nil
}

// OutboxUnannounced lists messages whose status change was stored for an
// event log position after seq (the log's end): their events are missing.
func (s *Store) OutboxUnannounced(ctx context.Context, seq int64) ([]OutboxMessage, error) {
	return findAll[OutboxMessage](ctx, s.db.Collection(colOutbox), "list unannounced messages",
		bson.D{{Key: "event_seq", Value: bson.D{{Key: "$gt", Value: seq}}}}, options.Find().SetSort(bson.D{{Key: "event_seq", Value: 1}}))
}
