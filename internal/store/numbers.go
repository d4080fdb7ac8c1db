package store

import "time"

// NumberCheck is what WhatsApp last said of a phone number: whether it
// has an account, its JID, LID and business name. The primary stores one
// per number it asked about (number_checks), so a lookup repeated while
// fresh costs WhatsApp nothing.
type NumberCheck struct {
	Account      string    `bson:"account" json:"-"`
	Number       string    `bson:"_id" json:"number"` // "+" and digits
	OnWhatsApp   bool      `bson:"on_whatsapp" json:"on_whatsapp"`
	JID          string    `bson:"jid,omitempty" json:"jid,omitempty"`
	LID          string    `bson:"lid,omitempty" json:"lid,omitempty"`
	BusinessName string    `bson:"business_name,omitempty" json:"business_name,omitempty"`
	CheckedAt    time.Time `bson:"checked_at" json:"checked_at"`
}

// Freshness of a number check: a number on WhatsApp rarely leaves it,
// so its answer is kept a day; one that is not may join any hour (the
// very case a client checks for), so the answer that it is not is asked
// again after six.
const (
	NumberOnFresh  = 24 * time.Hour
	NumberOffFresh = 6 * time.Hour
)

// Fresh says whether the check may still be served at now.
func (c NumberCheck) Fresh(now time.Time) bool {
	ttl := NumberOffFresh
	if c.OnWhatsApp {
		ttl = NumberOnFresh
	}
	return now.Before(c.CheckedAt.Add(ttl))
}
