package store

import (
	"app/internal/msg"

	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strconv"
	"time"
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
	ID string `bson:"_id"`
	// Account is the WhatsApp account the record belongs to: always
	// DefaultAccount until an installation holds several.
	Account string `bson:"account" json:"account,omitempty"`
	Chat    string `bson:"chat"`
	// Body is the kind and what it has beyond text (empty Kind: a text,
	// or media by its type, as queued before the kinds); Addr the
	// recipient by number and by LID; Changes the edits and the revoke
	// sent for it since.
	msg.Body    `bson:",inline"`
	msg.Addr    `bson:",inline"`
	msg.Changes `bson:",inline"`
	Text        string `bson:"text"`
	ReplyTo     string `bson:"reply_to,omitempty"`
	// ReplyToSender and ReplyToFromMe name the quoted message's sender
	// (WhatsApp needs it in groups).
	ReplyToSender string `bson:"reply_to_sender,omitempty"`
	ReplyToFromMe bool   `bson:"reply_to_from_me,omitempty"`
	// ForwardOf is the id of the stored message this one forwards.
	ForwardOf string `bson:"forward_of,omitempty"`
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

// Queued makes m a newly queued message, as EnqueueMessage stores it: its
// ID, QueuedNS and times are set when empty (kept when set, so an insert
// run again writes the same record), its account when empty.
func (m *OutboxMessage) Queued() {
	now := time.Now()
	if m.ID == "" {
		m.ID = NewMessageID()
	}
	if m.QueuedNS == 0 {
		m.QueuedNS = now.UnixNano()
	}
	if m.QueuedAt.IsZero() {
		m.QueuedAt, m.UpdatedAt = now, now
	}
	m.Status = StatusQueued
	m.Account = AccountOr(m.Account)
}

// IdempotentMessageID is the outbox id of the message an API key queues
// with an Idempotency-Key: the same key and Idempotency-Key always give
// the same id, so concurrent retries meet at one unique insert.
func IdempotentMessageID(keyID, idempotencyKey string) string {
	sum := sha256.Sum256([]byte(keyID + "\x00" + idempotencyKey))
	return "msg_i" + hex.EncodeToString(sum[:13])
}

// NewMessageID returns an id for a new outbox message.
func NewMessageID() string {
	b := make([]byte, 10)
	_, _ = rand.Read(b)
	return "msg_" + strconv.FormatInt(time.Now().UnixMilli(), 36) + hex.EncodeToString(b)
}

// ErrExists is returned when inserting a document whose id exists.
var ErrExists = errors.New("store: already exists")

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
