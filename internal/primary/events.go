package primary

import (
	"time"

	"app/internal/msg"
	"app/internal/store"
)

// The data of each event type in the event log (docs/EVENTS.md). Field
// names are the JSON the realtime endpoints and webhooks deliver.

// sessionEvent is "session.state".
type sessionEvent struct {
	State  string    `bson:"state" json:"state"`
	Reason string    `bson:"reason,omitempty" json:"reason,omitempty"`
	Until  time.Time `bson:"until,omitempty" json:"until,omitzero"`
	JID    string    `bson:"jid,omitempty" json:"jid,omitempty"`
}

// qrEvent is "session.qr": a new code to scan.
type qrEvent struct {
	QR      string    `bson:"qr" json:"qr"`
	Expires time.Time `bson:"expires" json:"expires"`
}

// pausedEvent is "sending.paused".
type pausedEvent struct {
	Until  time.Time `bson:"until" json:"until"`
	Reason string    `bson:"reason" json:"reason"`
}

// messageStatus is "message.status": a message of the outbox moved.
type messageStatus struct {
	ID       string         `bson:"id" json:"id"`
	Chat     string         `bson:"chat" json:"chat"`
	WAID     string         `bson:"wa_id,omitempty" json:"wa_id,omitempty"`
	Status   string         `bson:"status" json:"status"`
	Attempts int            `bson:"attempts" json:"attempts"`
	Error    *store.Failure `bson:"error,omitempty" json:"error,omitempty"`
	Waiting  string         `bson:"waiting,omitempty" json:"waiting,omitempty"`
	At       time.Time      `bson:"at" json:"at"`
}

func statusEvent(m store.OutboxMessage) messageStatus {
	return messageStatus{ID: m.ID, Chat: m.Chat, WAID: m.WAID, Status: m.Status, Attempts: m.Attempts,
		Error: m.Error, Waiting: m.Waiting, At: time.Now()}
}

// messageIncoming is "message.incoming".
type messageIncoming struct {
	Key        string `bson:"key" json:"key"`
	WAID       string `bson:"wa_id" json:"wa_id"`
	Chat       string `bson:"chat" json:"chat"`
	Sender     string `bson:"sender" json:"sender"`
	FromMe     bool   `bson:"from_me" json:"from_me"`
	PushName   string `bson:"push_name,omitempty" json:"push_name,omitempty"`
	msg.Body   `bson:",inline"`
	msg.Addr   `bson:",inline"`
	Text       string          `bson:"text,omitempty" json:"text,omitempty"`
	ReplyTo    string          `bson:"reply_to,omitempty" json:"reply_to,omitempty"`
	ReactionTo string          `bson:"reaction_to,omitempty" json:"reaction_to,omitempty"`
	Media      *store.MediaRef `bson:"media,omitempty" json:"media,omitempty"`
	SentAt     time.Time       `bson:"sent_at" json:"sent_at"`
}

func incomingEvent(m store.IncomingMessage) messageIncoming {
	media := m.Media
	if media != nil && media.Retry != nil {
		c := *media
		c.Retry = nil // the driver's, not the clients'
		media = &c
	}
	return messageIncoming{Key: m.Key, WAID: m.WAID, Chat: m.Chat, Sender: m.Sender, FromMe: m.FromMe, PushName: m.PushName,
		Body: m.Body, Addr: m.Addr, Text: m.Text, ReplyTo: m.ReplyTo, ReactionTo: m.ReactionTo, Media: media, SentAt: m.SentAt}
}
