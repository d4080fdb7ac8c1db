// Package msg is what a WhatsApp message says beyond its text, caption,
// quote and attachment: its kind, and the parts of the kinds that are not
// text (a location, contact cards, a poll, a reaction, the message an edit
// or a revoke is about). The store keeps it, the drivers build and read
// it, the HTTP API shows it: one definition for all three, so a field
// added here reaches the history, the events and the webhooks alike.
package msg

import (
	"slices"
	"time"
)

// The kinds of message. Outgoing messages are of the kinds a client can
// send; incoming ones of any kind, KindOther for what the suite does not
// read (it is stored, without content, so the history has no gap).
const (
	KindText     = "text"
	KindImage    = "image"
	KindVideo    = "video"
	KindAudio    = "audio"
	KindVoice    = "voice" // a push-to-talk voice note (Ogg/Opus)
	KindDocument = "document"
	KindSticker  = "sticker" // WebP
	KindLocation = "location"
	KindContacts = "contacts" // one or more contact cards
	KindPoll     = "poll"
	KindPollVote = "poll_vote" // incoming: someone's choice in a poll
	KindReaction = "reaction"  // an emoji on a message; empty removes it
	KindEdit     = "edit"      // a new text for a message sent earlier
	KindRevoke   = "revoke"    // a message deleted for everyone
	KindOther    = "other"
)

// MediaKinds are the kinds that carry a file.
var MediaKinds = []string{KindImage, KindVideo, KindAudio, KindVoice, KindDocument, KindSticker}

// IsMedia says whether kind carries a file.
func IsMedia(kind string) bool { return slices.Contains(MediaKinds, kind) }

// Body is the part of a message that depends on its kind. Kind is empty on
// records older than the kinds (a text, or media by the file's type).
type Body struct {
	Kind string `bson:"kind,omitempty" json:"kind,omitempty"`
	// Mentions are the JIDs the text names with "@<number>".
	Mentions []string `bson:"mentions,omitempty" json:"mentions,omitempty"`
	// Forwarded marks a message passed on from another chat.
	Forwarded bool      `bson:"forwarded,omitempty" json:"forwarded,omitempty"`
	Location  *Location `bson:"location,omitempty" json:"location,omitempty"`
	Contacts  []Contact `bson:"contacts,omitempty" json:"contacts,omitempty"`
	Poll      *Poll     `bson:"poll,omitempty" json:"poll,omitempty"`
	// Vote is a poll_vote's chosen options, by name (empty: the vote was
	// withdrawn); Target is the poll.
	Vote []string `bson:"vote,omitempty" json:"vote,omitempty"`
	// Reaction is a reaction's emoji; empty removes the sender's reaction.
	Reaction string `bson:"reaction,omitempty" json:"reaction,omitempty"`
	// Target is the message a reaction, edit, revoke or poll vote is about.
	Target *Target `bson:"target,omitempty" json:"target,omitempty"`
}

// Location is a point on the map.
type Location struct {
	Latitude  float64 `bson:"latitude" json:"latitude"`
	Longitude float64 `bson:"longitude" json:"longitude"`
	Name      string  `bson:"name,omitempty" json:"name,omitempty"`
	Address   string  `bson:"address,omitempty" json:"address,omitempty"`
}

// Contact is one contact card: its display name and the vCard WhatsApp
// carries (built from Name and Phones when a client gives no vCard).
type Contact struct {
	Name   string   `bson:"name" json:"name"`
	Phones []string `bson:"phones,omitempty" json:"phones,omitempty"`
	VCard  string   `bson:"vcard" json:"vcard"`
}

// Poll is a question with options, of which up to Selectable may be chosen
// (0: any number).
type Poll struct {
	Question   string   `bson:"question" json:"question"`
	Options    []string `bson:"options" json:"options"`
	Selectable int      `bson:"selectable" json:"selectable"`
}

// Target names a message another one is about. WAID and Chat always; ID
// when it is a message the API sent (our id); Sender and FromMe because
// WhatsApp names a message by chat, sender and id.
type Target struct {
	ID     string `bson:"id,omitempty" json:"id,omitempty"`
	WAID   string `bson:"wa_id" json:"wa_id"`
	Chat   string `bson:"chat" json:"chat"`
	Sender string `bson:"sender,omitempty" json:"sender,omitempty"`
	FromMe bool   `bson:"from_me" json:"from_me"`
}

// Addr names a message's chat and sender both ways, by phone number (PN)
// and by WhatsApp's LID, where either is known: WhatsApp increasingly
// names people by LID alone, and a client wants the number.
type Addr struct {
	ChatPN    string `bson:"chat_pn,omitempty" json:"chat_pn,omitempty"`
	ChatLID   string `bson:"chat_lid,omitempty" json:"chat_lid,omitempty"`
	SenderPN  string `bson:"sender_pn,omitempty" json:"sender_pn,omitempty"`
	SenderLID string `bson:"sender_lid,omitempty" json:"sender_lid,omitempty"`
}

// Changes is what happened to a message after it was sent: its edits
// (each the text it replaced) and its deletion for everyone.
type Changes struct {
	Edits    []Edit    `bson:"edits,omitempty" json:"edits,omitempty"`
	EditedAt time.Time `bson:"edited_at,omitempty" json:"edited_at,omitzero"`
	// RevokedAt is set once the message was deleted for everyone; its
	// content is then gone unless the operator keeps it
	// (WHATSAPP_KEEP_REVOKED).
	RevokedAt time.Time `bson:"revoked_at,omitempty" json:"revoked_at,omitzero"`
}

// Edit is one earlier text of an edited message, and when it was replaced.
type Edit struct {
	Text string    `bson:"text" json:"text"`
	At   time.Time `bson:"at" json:"at"`
}
