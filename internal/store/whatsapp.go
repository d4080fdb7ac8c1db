package store

import (
	"app/internal/msg"

	"strings"
	"time"
)

// WASession is the WhatsApp session as the primary last saw it: one
// document, written by the primary, read by every worker.
type WASession struct {
	// Account is the WhatsApp account the record belongs to: always
	// DefaultAccount until an installation holds several.
	Account   string    `bson:"account" json:"account,omitempty"`
	State     string    `bson:"state"`
	Reason    string    `bson:"reason,omitempty"`
	Until     time.Time `bson:"until,omitempty"`
	JID       string    `bson:"jid,omitempty"`
	QR        string    `bson:"qr,omitempty"`
	QRExpires time.Time `bson:"qr_expires,omitempty"`
	// SendingPausedUntil is set after WhatsApp said we send too fast.
	SendingPausedUntil time.Time `bson:"sending_paused_until,omitempty"`
	Driver             string    `bson:"driver"`
	Epoch              int64     `bson:"epoch"`
	UpdatedAt          time.Time `bson:"updated_at"`
	// Reconnects counts the watchdog's reconnects of a silent session
	// since the primary took the lease (Epoch).
	Reconnects int64 `bson:"reconnects,omitempty"`
}

// IncomingMessage is a message someone sent to the account.
type IncomingMessage struct {
	// Account is the WhatsApp account the record belongs to: always
	// DefaultAccount until an installation holds several.
	Account string `bson:"account" json:"account,omitempty"`
	// Key is chat, sender and WhatsApp id: a message WhatsApp delivers
	// again is the same document.
	Key      string `bson:"_id"`
	WAID     string `bson:"wa_id"`
	Chat     string `bson:"chat"`
	Sender   string `bson:"sender"`
	FromMe   bool   `bson:"from_me"`
	PushName string `bson:"push_name,omitempty"`
	// Body is the kind and what it has beyond text; Addr the chat and
	// sender by number and by LID; Changes its edits and revoke.
	msg.Body    `bson:",inline"`
	msg.Addr    `bson:",inline"`
	msg.Changes `bson:",inline"`
	Text        string `bson:"text,omitempty"`
	ReplyTo     string `bson:"reply_to,omitempty"`
	// ReactionTo is a reaction's Target.WAID (what the API showed before
	// Target).
	ReactionTo string    `bson:"reaction_to,omitempty"`
	Media      *MediaRef `bson:"media,omitempty"`
	SentAt     time.Time `bson:"sent_at"`
	ReceivedAt time.Time `bson:"received_at"`
	// EventSeq is the event log position of its message.incoming event,
	// stored before the event is appended (as OutboxMessage.EventSeq); 0
	// while its media is being fetched.
	EventSeq int64 `bson:"event_seq,omitempty"`
	// EventChange says the event at EventSeq is a message.updated, of
	// this change ("media": its pending file came, or will not); empty,
	// its message.incoming.
	EventChange string `bson:"event_change,omitempty"`
}

// MediaRef describes an incoming attachment and where its bytes are.
type MediaRef struct {
	MimeType string `bson:"mime_type" json:"mime_type"`
	Size     int64  `bson:"size" json:"size"`
	FileName string `bson:"file_name,omitempty" json:"file_name,omitempty"`
	Caption  string `bson:"caption,omitempty" json:"caption,omitempty"`
	SHA256   []byte `bson:"sha256,omitempty" json:"sha256,omitempty"`
	// FileID is the GridFS file holding the bytes, empty until stored;
	// Skipped says why they were not (over the size cap, a failed download).
	FileID  string `bson:"file_id,omitempty" json:"file_id,omitempty"`
	Skipped string `bson:"skipped,omitempty" json:"skipped,omitempty"`
	// Pending is set while the file, gone from WhatsApp's servers, was
	// asked of the sender's phone again; Retry is what the driver needs
	// to ask (whatsapp.Media.Retry).
	Pending bool   `bson:"pending,omitempty" json:"pending,omitempty"`
	Retry   []byte `bson:"retry,omitempty" json:"retry,omitempty"`
}

// ReceiptRecord is one receipt as WhatsApp sent it.
type ReceiptRecord struct {
	Key        string    `bson:"_id"` // chat/sender/type/first id: a redelivery is the same document
	Chat       string    `bson:"chat"`
	Sender     string    `bson:"sender"`
	WAIDs      []string  `bson:"wa_ids"`
	Type       string    `bson:"type"`
	At         time.Time `bson:"at"`
	ReceivedAt time.Time `bson:"received_at"`
}

// Chat is a conversation the account has: the last activity and whether we
// ever wrote to it (the cap on first messages to new contacts).
type Chat struct {
	// Account is the WhatsApp account the record belongs to: always
	// DefaultAccount until an installation holds several.
	Account string `bson:"account" json:"account,omitempty"`
	JID     string `bson:"_id"`
	// Name is the chat's own: a group's subject, a contact's name in the
	// address book. PushName, in a one-to-one chat, is the name the contact
	// gave themselves (never a group member's, never ours).
	Name     string `bson:"name,omitempty"`
	PushName string `bson:"push_name,omitempty"`
	// PN and LID are a one-to-one chat's person by phone number and by
	// LID, where known (JID is one of them: the number where known).
	PN             string    `bson:"pn,omitempty"`
	LID            string    `bson:"lid,omitempty"`
	LastMessageAt  time.Time `bson:"last_message_at"`
	FirstOutgoing  time.Time `bson:"first_outgoing_at,omitempty"`
	LastIncomingAt time.Time `bson:"last_incoming_at,omitempty"`
	// ReadUpTo is the read mark: the send time of the newest incoming
	// message when the chat was last marked read as a whole.
	ReadUpTo time.Time `bson:"read_up_to,omitempty"`
	// Archived, Pinned and Muted are the chat's settings as the primary
	// last changed them (issue 19); MutedUntil is the end of a mute, zero
	// for one without end.
	Archived   bool      `bson:"archived,omitempty"`
	Pinned     bool      `bson:"pinned,omitempty"`
	Muted      bool      `bson:"muted,omitempty"`
	MutedUntil time.Time `bson:"muted_until,omitempty"`
}

// Blocklist is the account's blocked users (JIDs) as the primary last
// fetched or changed it: one record.
type Blocklist struct {
	Account   string    `bson:"account" json:"account,omitempty"`
	JIDs      []string  `bson:"jids"`
	UpdatedAt time.Time `bson:"updated_at"`
}

// IsUserChat tells a one-to-one chat (a phone number's or a LID's) from a
// group, a broadcast list, the status broadcast or a channel.
func IsUserChat(jid string) bool {
	return strings.HasSuffix(jid, "@s.whatsapp.net") || strings.HasSuffix(jid, "@lid")
}

// Contact is what a sender told us about themselves.
type Contact struct {
	// Account is the WhatsApp account the record belongs to: always
	// DefaultAccount until an installation holds several.
	Account   string    `bson:"account" json:"account,omitempty"`
	JID       string    `bson:"_id"`
	PushName  string    `bson:"push_name,omitempty"`
	PN        string    `bson:"pn,omitempty"`  // the phone-number JID, where known
	LID       string    `bson:"lid,omitempty"` // the LID, where known
	UpdatedAt time.Time `bson:"updated_at"`
}
