package whatsapp

import "errors"

// Profiles (issue 19): what WhatsApp tells of users and of our own account.

// Profile is what WhatsApp tells of a user.
type Profile struct {
	JID          string `json:"jid"`
	LID          string `json:"lid,omitempty"`
	About        string `json:"about,omitempty"`         // the about text (whatsmeow's Status)
	PictureID    string `json:"picture_id,omitempty"`    // the current picture's id; empty when none is shown to us
	BusinessName string `json:"business_name,omitempty"` // a business account's verified name
	// PushName is our own account's name, in our own Profile only (others'
	// push names come with their messages).
	PushName string `json:"push_name,omitempty"`
}

// Picture is a user's profile picture or a group's photo: its id, and
// where WhatsApp serves it for a while (FetchPicture reads it).
type Picture struct {
	ID      string `json:"id"`
	URL     string `json:"url"`
	Preview bool   `json:"preview,omitempty"` // the small version
}

// BusinessProfile is a business account's profile.
type BusinessProfile struct {
	JID         string          `json:"jid"`
	Address     string          `json:"address,omitempty"`
	Email       string          `json:"email,omitempty"`
	Description string          `json:"description,omitempty"`
	Websites    []string        `json:"websites,omitempty"`
	Categories  []string        `json:"categories,omitempty"`
	TimeZone    string          `json:"time_zone,omitempty"`
	Hours       []BusinessHours `json:"hours,omitempty"`
}

// BusinessHours is when a business is open on one day of the week.
type BusinessHours struct {
	Day   string `json:"day"`             // mon, tue, ...
	Mode  string `json:"mode"`            // specific_hours, open_24h, appointment_only
	Open  string `json:"open,omitempty"`  // HH:MM, with specific_hours
	Close string `json:"close,omitempty"` // HH:MM, with specific_hours
}

// The profile errors a driver returns (wrapped).
var (
	// ErrNoPicture: the user or group has no picture.
	ErrNoPicture = errors.New("whatsapp: no picture is set")
	// ErrPictureHidden: the user's privacy settings hide their picture
	// from us.
	ErrPictureHidden = errors.New("whatsapp: the picture is hidden from us by their privacy settings")
	// ErrNotBusiness: the user is not a business account.
	ErrNotBusiness = errors.New("whatsapp: not a business account")
)
