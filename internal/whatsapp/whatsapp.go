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
	"slices"
	"time"

	"app/internal/msg"
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

// Event is something a driver reports: *SessionChanged, *Incoming,
// *Receipt, *Call, *MediaRetried, *BlocklistChanged, *GroupChanged,
// *ChatSettingChanged or *PictureChanged.
type Event interface{ isEvent() }

// SessionChanged reports a new session state (a new QR code included).
type SessionChanged struct{ Session Session }

// Incoming is a message someone sent us (or we sent from another device).
// Chat and Sender are phone-number JIDs where the driver knows the number
// (a LID otherwise); Addr has both forms where known.
type Incoming struct {
	ID        string    `json:"id"`        // WhatsApp message id
	Chat      string    `json:"chat"`      // chat JID: the user, or the group
	Sender    string    `json:"sender"`    // sender JID
	FromMe    bool      `json:"from_me"`   // sent by our account from another device
	Timestamp time.Time `json:"timestamp"` // as WhatsApp stamped it
	PushName  string    `json:"push_name,omitempty"`
	// Body.Kind is one of msg's kinds (msg.KindOther for what we do not
	// read); the rest of Body as the kind has it.
	msg.Body
	msg.Addr
	Text    string `json:"text,omitempty"`     // the text, a caption, an edit's new text, a poll's question
	ReplyTo string `json:"reply_to,omitempty"` // id of the quoted message
	// ReactionTo is a reaction's Target.WAID, kept for the clients that
	// read it before Target existed.
	ReactionTo string `json:"reaction_to,omitempty"`
	Media      *Media `json:"media,omitempty"`
	// VoteHashes are a poll vote's chosen options as WhatsApp sends them
	// (SHA-256 of each option's name); the primary names them from the
	// poll it stored.
	VoteHashes [][]byte `json:"vote_hashes,omitempty"`

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
	// Retry is what the driver needs to ask the sender's phone for the
	// file again once WhatsApp's servers dropped it (RetryMedia), as
	// bytes the primary stores with the message, so a restart can still ask.
	Retry []byte `json:"retry,omitempty"`
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

// Call is a call someone offers us (the suite cannot answer calls; it can
// reject them).
type Call struct {
	ID        string    `json:"id"`
	From      string    `json:"from"`            // the caller's JID
	Chat      string    `json:"chat,omitempty"`  // the group, for a group call
	Video     bool      `json:"video,omitempty"` // a video call
	Timestamp time.Time `json:"timestamp"`
}

// MediaRetried answers RetryMedia: the sender's phone uploaded the file of
// an incoming message again (Media is downloadable), or could not (Error).
type MediaRetried struct {
	ID     string `json:"id"` // the message's WhatsApp id
	Chat   string `json:"chat"`
	Sender string `json:"sender"`
	Media  *Media `json:"media,omitempty"`
	Error  string `json:"error,omitempty"`
}

func (*SessionChanged) isEvent() {}
func (*Incoming) isEvent()       {}
func (*Receipt) isEvent()        {}
func (*Call) isEvent()           {}
func (*MediaRetried) isEvent()   {}

// BlocklistChanged reports the blocklist changed on another device (the
// phone): users blocked and unblocked, or Whole, that it changed in ways
// not told, and is to be fetched again (Blocklist).
type BlocklistChanged struct {
	Blocked   []string `json:"blocked,omitempty"`
	Unblocked []string `json:"unblocked,omitempty"`
	Whole     bool     `json:"whole,omitempty"`
}

func (*BlocklistChanged) isEvent() {}

// ChatSettingChanged reports a chat archived, pinned or muted (or undone)
// on another device (the phone).
type ChatSettingChanged struct {
	Chat    string      `json:"chat"`
	Setting ChatSetting `json:"setting"`
}

func (*ChatSettingChanged) isEvent() {}

// PictureChanged reports a user's or group's picture changed (Removed: it
// was removed); the new one is asked with ProfilePicture.
type PictureChanged struct {
	JID     string `json:"jid"`
	Author  string `json:"author,omitempty"` // who changed it (a group's member)
	Removed bool   `json:"removed,omitempty"`
	ID      string `json:"id,omitempty"` // the new picture's id
}

func (*PictureChanged) isEvent() {}

// BlocklistWith is list with jid in it (block) or not: a blocklist after
// one change, as the primary stores it and the sandbox keeps it.
func BlocklistWith(list []string, jid string, block bool) []string {
	i := slices.Index(list, jid)
	switch {
	case block && i < 0:
		return append(list, jid)
	case !block && i >= 0:
		return slices.Delete(list, i, i+1)
	}
	return list
}

// Handler receives a driver's events in order. For *Incoming, *Receipt
// and *GroupChanged a nil return acknowledges the event to WhatsApp (an
// error leaves it to be delivered again); for the others an error is
// logged.
type Handler func(ctx context.Context, ev Event) error

// Outgoing is a message to send. ID is chosen before the first attempt
// (Driver.NewMessageID) and reused on every retry, so WhatsApp and the
// recipient see one message however often it is attempted.
//
// Body.Kind says what to send (the primary always sets it); Text is the
// text, a caption, an edit's new text or a poll's question; Media is the
// file of the media kinds.
type Outgoing struct {
	ID   string
	Chat string // recipient JID (user or group)
	msg.Body
	Text    string
	ReplyTo string // id of the message to quote, optional
	// ReplyToSender is the quoted message's sender (WhatsApp names the
	// quoted message by it in groups); ReplyToFromMe when it was ours.
	ReplyToSender string
	ReplyToFromMe bool
	Media         *OutgoingMedia
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

// ErrNotConnected is returned by Send and PairPhone while offline, and
// by the chat actions (MarkRead, SendChatPresence, SendPresence) and Ping:
// the API answers 503 for it.
var ErrNotConnected = &SendError{Reason: "not connected", Retryable: true}

// ErrNotPaired is returned by PairPhone when already paired, and by
// actions that need a paired device when there is none.
var ErrNotPaired = errors.New("whatsapp: no paired device")

// ErrAlreadyPaired is returned by PairPhone when a device is paired.
var ErrAlreadyPaired = errors.New("whatsapp: already paired")

// ErrMediaGone is returned by Download when WhatsApp's servers no longer
// have the file (403, 404 or 410): RetryMedia asks the sender's phone for it.
var ErrMediaGone = errors.New("whatsapp: the media is no longer on WhatsApp's servers")

// ChatPresence is what we show in a chat.
type ChatPresence string

// Chat presences.
const (
	ChatComposing ChatPresence = "composing" // typing
	ChatRecording ChatPresence = "recording" // recording a voice note
	ChatPaused    ChatPresence = "paused"    // stopped typing or recording
)

// ReadMark marks messages of a chat read: receipts to their sender.
type ReadMark struct {
	Chat   string
	Sender string // the messages' sender (a member, in groups)
	IDs    []string
	At     time.Time
	// Played marks voice notes played rather than read.
	Played bool
}

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

	// MarkRead sends read (or played) receipts for messages of a chat.
	MarkRead(ctx context.Context, r ReadMark) error
	// SendChatPresence shows us typing, recording or neither in a chat.
	SendChatPresence(ctx context.Context, chat string, p ChatPresence) error
	// SendPresence shows the account online (available) or offline.
	SendPresence(ctx context.Context, online bool) error
	// RejectCall rejects a call offered to us.
	RejectCall(ctx context.Context, from, callID string) error
	// RetryMedia asks the sender's phone to upload an incoming message's
	// file again (after Download said ErrMediaGone); the answer comes as a
	// *MediaRetried event.
	RetryMedia(ctx context.Context, m *Incoming) error
	// Ping asks WhatsApp for an answer and returns when it came, or with
	// an error (ctx's deadline): the watchdog's check of a session that
	// says connected while nothing arrives.
	Ping(ctx context.Context) error
	// Reconnect drops the connection and dials again, reporting
	// disconnected with reason, then connecting and connected.
	Reconnect(ctx context.Context, reason string) error

	// Contacts and chats (issue 19).
	//
	// Block blocks a user (a phone-number JID or a LID), or with block
	// false unblocks them.
	Block(ctx context.Context, jid string, block bool) error
	// Blocklist fetches the account's blocked users (JIDs).
	Blocklist(ctx context.Context) ([]string, error)
	// SetChatSetting archives, pins or mutes a chat, or undoes it.
	SetChatSetting(ctx context.Context, chat string, s ChatSetting) error

	// Numbers (issue 19).
	//
	// CheckNumbers asks WhatsApp which of phones ("+" and digits, with
	// country code) have an account: one NumberInfo per phone WhatsApp
	// answered for, in no set order (match them by Query).
	CheckNumbers(ctx context.Context, phones []string) ([]NumberInfo, error)

	// Profiles (issue 19; profiles.go).
	//
	// Profiles asks WhatsApp about users (JIDs): one Profile per user it
	// answered for.
	Profiles(ctx context.Context, jids []string) ([]Profile, error)
	// ProfilePicture is a user's or group's picture (the small one with
	// preview): ErrNoPicture or ErrPictureHidden when there is none to show.
	ProfilePicture(ctx context.Context, jid string, preview bool) (Picture, error)
	// FetchPicture reads a picture's image (JPEG), at most maxBytes; the
	// caller closes it.
	FetchPicture(ctx context.Context, p Picture, maxBytes int64) (io.ReadCloser, error)
	// BusinessProfile is a business account's profile; ErrNotBusiness
	// for other users.
	BusinessProfile(ctx context.Context, jid string) (BusinessProfile, error)
	// SetPushName sets our own name, which others see beside our messages.
	SetPushName(ctx context.Context, name string) error
	// SetAbout sets our own about text.
	SetAbout(ctx context.Context, text string) error
	// SetProfilePicture sets our own picture (a JPEG) and returns its id;
	// nil removes it.
	SetProfilePicture(ctx context.Context, jpeg []byte) (string, error)

	// Groups (issue 19; groups.go). Changes of a group that need admin
	// rights we lack return ErrNotGroupAdmin; an unknown group
	// ErrGroupNotFound; one we are not in ErrNotInGroup.
	//
	// JoinedGroups lists the groups we are a member of.
	JoinedGroups(ctx context.Context) ([]Group, error)
	// GroupInfo asks WhatsApp for one group.
	GroupInfo(ctx context.Context, group string) (Group, error)
	// CreateGroup creates a group named name with participants (JIDs) and
	// us as its admin: the group, and each participant's outcome.
	CreateGroup(ctx context.Context, name string, participants []string) (Group, []ParticipantResult, error)
	// UpdateParticipants adds, removes, promotes or demotes participants,
	// or approves or rejects their requests to join: each one's outcome.
	UpdateParticipants(ctx context.Context, group string, action ParticipantAction, jids []string) ([]ParticipantResult, error)
	// GroupRequests lists who asked to join a group that needs approval.
	GroupRequests(ctx context.Context, group string) ([]GroupRequest, error)
	// InviteLink is the group's invite link (https://chat.whatsapp.com/...);
	// reset makes a new one, and the old one stops working.
	InviteLink(ctx context.Context, group string, reset bool) (string, error)
	// GroupFromLink describes the group an invite link (or its code) leads
	// to, without joining: ErrInviteInvalid for one that does not work.
	GroupFromLink(ctx context.Context, link string) (Group, error)
	// JoinGroup joins by an invite link (or its code) and returns the
	// group's JID; ErrInviteInvalid for one that does not work.
	JoinGroup(ctx context.Context, link string) (string, error)
	// LeaveGroup leaves a group.
	LeaveGroup(ctx context.Context, group string) error
	// SetGroupName sets a group's subject.
	SetGroupName(ctx context.Context, group, name string) error
	// SetGroupDescription sets a group's description ("" removes it).
	SetGroupDescription(ctx context.Context, group, text string) error
	// SetGroupPhoto sets a group's photo (a JPEG) and returns its id; nil
	// removes it.
	SetGroupPhoto(ctx context.Context, group string, jpeg []byte) (string, error)
	// SetGroupSetting turns one of a group's settings on or off.
	SetGroupSetting(ctx context.Context, group string, s GroupSetting) error
}

// NumberInfo is WhatsApp's answer about one phone number.
type NumberInfo struct {
	Query        string // the phone as asked
	OnWhatsApp   bool
	JID          string // the account's JID (...@s.whatsapp.net), when on WhatsApp
	LID          string // its LID (...@lid), where known
	BusinessName string // a business account's verified name
}

// ChatSetting is one of a chat's settings, on or off: archived, pinned, or
// muted (Until is the end of a mute; zero for one without end).
type ChatSetting struct {
	Kind  ChatSettingKind
	On    bool
	Until time.Time
}

// ChatSettingKind names a chat setting.
type ChatSettingKind string

// The chat settings.
const (
	ChatArchive ChatSettingKind = "archive"
	ChatPin     ChatSettingKind = "pin"
	ChatMute    ChatSettingKind = "mute"
)
