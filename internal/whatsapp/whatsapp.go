// Package whatsapp is the boundary between the primary and WhatsApp: one
// small interface (Driver) with two implementations, chosen by
// WHATSAPP_DRIVER: "whatsmeow" (go.mau.fi/whatsmeow, the real network) and
// "sandbox" (a deterministic stand-in for development and tests).
//
// A driver reports everything that happens as Events, one at a time and in
// order, to the Handler given to Run. For an incoming message or a receipt
// the driver acknowledges it to WhatsApp only after the handler returned
// nil, so what the handler stored is never lost; an error leaves it
// unacknowledged and WhatsApp delivers it again.
package whatsapp

import (
	"context"
	"errors"
	"io"
	"time"
)

// State is the connection state of the one WhatsApp account.
type State string

// The states a session moves through.
const (
	StateUnpaired          State = "unpaired"           // no device: pair by QR code or phone code
	StatePairing           State = "pairing"            // a QR code is shown or a phone code was asked for
	StateConnecting        State = "connecting"         // paired, dialling WhatsApp
	StateConnected         State = "connected"          // online: sends go out
	StateDisconnected      State = "disconnected"       // paired, offline; Reason says why; the driver retries
	StateLoggedOut         State = "logged_out"         // the device was unlinked; pair again
	StateTemporarilyBanned State = "temporarily_banned" // WhatsApp refuses us until Until
	StateReplaced          State = "replaced"           // another client took the session; not retried
)

// Session is the state of the account as a driver knows it.
type Session struct {
	State  State     `json:"state"`
	Reason string    `json:"reason,omitempty"` // why disconnected, logged out or banned
	Until  time.Time `json:"until,omitzero"`   // end of a temporary ban
	JID    string    `json:"jid,omitempty"`    // our own account once paired
	// QR is the code to scan while pairing; it rotates, so it comes with
	// its expiry.
	QR        string    `json:"qr,omitempty"`
	QRExpires time.Time `json:"qr_expires,omitzero"`
}

// Event is something a driver reports: *SessionChanged, *Incoming or
// *Receipt.
type Event interface{ isEvent() }

// SessionChanged reports a new session state (a new QR code included).
type SessionChanged struct{ Session Session }

// Incoming is a message someone sent us (or we sent from another device).
type Incoming struct {
	ID        string    `json:"id"`        // WhatsApp message id
	Chat      string    `json:"chat"`      // chat JID: the user, or the group
	Sender    string    `json:"sender"`    // sender JID
	FromMe    bool      `json:"from_me"`   // sent by our account from another device
	Timestamp time.Time `json:"timestamp"` // as WhatsApp stamped it
	PushName  string    `json:"push_name,omitempty"`
	Kind      string    `json:"kind"` // text, image, video, audio, document, sticker, reaction, other
	Text      string    `json:"text,omitempty"`
	ReplyTo   string    `json:"reply_to,omitempty"` // id of the quoted message
	// Reaction: the emoji (empty removes it) and the message it is on.
	Reaction   string `json:"reaction,omitempty"`
	ReactionTo string `json:"reaction_to,omitempty"`
	Media      *Media `json:"media,omitempty"`

	// ChatName is the chat's own name where the driver knows it: a group's
	// subject, a contact's name from the phone's address book.
	ChatName string `json:"chat_name,omitempty"`
}

// Media describes the attachment of an incoming message; Download fetches it.
type Media struct {
	MimeType string `json:"mime_type"`
	Size     int64  `json:"size"`
	FileName string `json:"file_name,omitempty"`
	Caption  string `json:"caption,omitempty"`
	SHA256   []byte `json:"sha256,omitempty"`
	// Handle is what the driver needs to download it (opaque to the caller).
	Handle any `json:"-"`
}

// ReceiptType is how far a message we sent has got.
type ReceiptType string

// Receipt types, in the order a message reaches them.
const (
	ReceiptServer    ReceiptType = "server"    // WhatsApp's server has it
	ReceiptDelivered ReceiptType = "delivered" // on the recipient's device
	ReceiptRead      ReceiptType = "read"      // the recipient opened it
)

// Receipt reports that messages we sent reached a stage.
type Receipt struct {
	Chat      string      `json:"chat"`
	Sender    string      `json:"sender"` // who sent the receipt (a group member in groups)
	IDs       []string    `json:"ids"`
	Type      ReceiptType `json:"type"`
	Timestamp time.Time   `json:"timestamp"`
}

func (*SessionChanged) isEvent() {}
func (*Incoming) isEvent()       {}
func (*Receipt) isEvent()        {}

// Handler receives a driver's events in order. For *Incoming and *Receipt
// a nil return acknowledges the event to WhatsApp.
type Handler func(ctx context.Context, ev Event) error

// Outgoing is a message to send. ID is chosen before the first attempt
// (Driver.NewMessageID) and reused on every retry, so WhatsApp and the
// recipient see one message however often it is attempted.
type Outgoing struct {
	ID      string
	Chat    string // recipient JID (user or group)
	Text    string // the text, or the caption of Media
	ReplyTo string // id of the message to quote, optional
	Media   *OutgoingMedia
}

// OutgoingMedia is an attachment to send: an image, video or audio by its
// MIME type, anything else as a document.
type OutgoingMedia struct {
	MimeType string
	FileName string
	// Body is the file, read once by Send: the primary streams it from the
	// store rather than holding it.
	Body io.Reader
	// Data is what the sandbox read from Body, kept for tests to look at.
	Data []byte
}

// SendError is a failed send. Retryable says whether the same message may
// be tried again later (a network error, a rate limit) or never (an
// unknown recipient, a message WhatsApp refuses).
type SendError struct {
	Reason    string
	Retryable bool
	// RateLimited is set when WhatsApp said we send too fast: sending pauses.
	RateLimited bool
}

func (e *SendError) Error() string { return "whatsapp: send: " + e.Reason }

// ErrNotConnected is returned by Send and PairPhone while offline.
var ErrNotConnected = &SendError{Reason: "not connected", Retryable: true}

// ErrNotPaired is returned by PairPhone when already paired, and by
// actions that need a paired device when there is none.
var ErrNotPaired = errors.New("whatsapp: no paired device")

// ErrAlreadyPaired is returned by PairPhone when a device is paired.
var ErrAlreadyPaired = errors.New("whatsapp: already paired")

// Driver is one WhatsApp account. Run must be running for the other
// methods to work; all methods are safe for concurrent use.
type Driver interface {
	// Run connects (or starts pairing when unpaired), keeps the connection
	// up with back-off while ctx lives, and calls h for every event. It
	// returns when ctx ends, or with an error it cannot recover from
	// (the device store cannot be opened).
	Run(ctx context.Context, h Handler) error
	// NewMessageID returns an id for a message to send.
	NewMessageID() string
	// Send sends one message and returns when WhatsApp's server accepted it
	// (the server receipt) with its timestamp, or a *SendError.
	Send(ctx context.Context, m Outgoing) (time.Time, error)
	// PairPhone asks for a code to type on the phone (Linked devices, link
	// with phone number) for the account of phone (digits, with country
	// code). Only while unpaired or pairing.
	PairPhone(ctx context.Context, phone string) (string, error)
	// Download fetches an incoming message's media, at most maxBytes; the
	// caller reads it and closes it.
	Download(ctx context.Context, m *Media, maxBytes int64) (io.ReadCloser, error)
	// Logout unlinks the device; the session becomes logged_out, then
	// unpaired with a fresh QR code.
	Logout(ctx context.Context) error
}
