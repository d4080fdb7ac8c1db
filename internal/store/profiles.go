package store

import "time"

// Profile is what WhatsApp last told of a user (or of a group's picture):
// the about text, the picture's id, a business's verified name, and where
// asked, the picture itself (kept in the media store) and the business
// profile. The primary stores one per JID it asked about (profiles), so a
// lookup repeated while fresh costs WhatsApp nothing. Our own account has
// one too, under its JID, with the push name we set.
type Profile struct {
	Account      string `bson:"account" json:"-"`
	JID          string `bson:"_id" json:"jid"`
	LID          string `bson:"lid,omitempty" json:"lid,omitempty"`
	About        string `bson:"about,omitempty" json:"about,omitempty"`
	PictureID    string `bson:"picture_id,omitempty" json:"picture_id,omitempty"`
	BusinessName string `bson:"business_name,omitempty" json:"business_name,omitempty"`
	// PushName is our own account's name (only on our own record).
	PushName string `bson:"push_name,omitempty" json:"push_name,omitempty"`
	// FetchedAt is when WhatsApp told the fields above; zero when only the
	// picture or the business profile was asked.
	FetchedAt time.Time `bson:"fetched_at,omitzero" json:"fetched_at,omitzero"`

	// Picture and Preview are the full and the small picture as last
	// fetched; nil when not asked since the picture changed.
	Picture *ProfilePicture `bson:"picture,omitempty" json:"picture,omitempty"`
	Preview *ProfilePicture `bson:"preview,omitempty" json:"preview,omitempty"`

	// Business is the business profile as last asked (NotBusiness: WhatsApp
	// said it is not a business), at BusinessAt.
	Business    *BusinessProfile `bson:"business,omitempty" json:"business,omitempty"`
	NotBusiness bool             `bson:"not_business,omitempty" json:"not_business,omitempty"`
	BusinessAt  time.Time        `bson:"business_at,omitzero" json:"business_at,omitzero"`
}

// ProfilePicture is a picture as fetched: its id and WhatsApp's URL, and
// MediaID, the image kept in the media store; or Missing, why there is
// none to show (PictureNone, PictureHidden).
type ProfilePicture struct {
	ID        string    `bson:"id,omitempty" json:"id,omitempty"`
	URL       string    `bson:"url,omitempty" json:"url,omitempty"`
	MediaID   string    `bson:"media_id,omitempty" json:"media_id,omitempty"`
	Missing   string    `bson:"missing,omitempty" json:"missing,omitempty"`
	FetchedAt time.Time `bson:"fetched_at" json:"fetched_at"`
}

// Why a picture is missing.
const (
	PictureNone   = "no_picture"
	PictureHidden = "picture_hidden"
)

// BusinessProfile is a business account's profile (whatsapp.BusinessProfile
// as stored).
type BusinessProfile struct {
	Address     string          `bson:"address,omitempty" json:"address,omitempty"`
	Email       string          `bson:"email,omitempty" json:"email,omitempty"`
	Description string          `bson:"description,omitempty" json:"description,omitempty"`
	Websites    []string        `bson:"websites,omitempty" json:"websites,omitempty"`
	Categories  []string        `bson:"categories,omitempty" json:"categories,omitempty"`
	TimeZone    string          `bson:"time_zone,omitempty" json:"time_zone,omitempty"`
	Hours       []BusinessHours `bson:"hours,omitempty" json:"hours,omitempty"`
}

// BusinessHours is when a business is open on one day of the week.
type BusinessHours struct {
	Day   string `bson:"day" json:"day"`
	Mode  string `bson:"mode" json:"mode"`
	Open  string `bson:"open,omitempty" json:"open,omitempty"`
	Close string `bson:"close,omitempty" json:"close,omitempty"`
}

// ProfileFresh is how long what WhatsApp told of a profile is served
// from the store: people change their about text and picture now and
// then, not hourly, and a picture change WhatsApp tells us of
// (whatsapp.PictureChanged) drops the stored picture at once. A day, as
// a number check on WhatsApp (NumberOnFresh).
const ProfileFresh = 24 * time.Hour

// Fresh says whether the profile's fields may still be served at now.
func (p Profile) Fresh(now time.Time) bool {
	return !p.FetchedAt.IsZero() && now.Before(p.FetchedAt.Add(ProfileFresh))
}

// Fresh says whether the picture may still be served at now.
func (p *ProfilePicture) Fresh(now time.Time) bool {
	return p != nil && now.Before(p.FetchedAt.Add(ProfileFresh))
}

// BusinessFresh says whether the business profile (or that there is
// none) may still be served at now.
func (p Profile) BusinessFresh(now time.Time) bool {
	return (p.Business != nil || p.NotBusiness) && now.Before(p.BusinessAt.Add(ProfileFresh))
}
