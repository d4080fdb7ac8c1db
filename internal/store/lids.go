package store

import (
	"strings"
	"time"
)

// LIDPair is one person's phone-number JID and LID, as WhatsApp mapped
// them. Each is in at most one pair: WhatsApp may map a number to a new
// LID (or a LID to a new number), and the newest pair saved replaces
// every pair that had either.
type LIDPair struct {
	Account   string    `bson:"account" json:"account,omitempty"`
	PN        string    `bson:"_id" json:"pn"`
	LID       string    `bson:"lid" json:"lid"`
	UpdatedAt time.Time `bson:"updated_at" json:"updated_at"`
}

// IsLID says whether jid is a LID (...@lid), not a phone number's JID.
func IsLID(jid string) bool { return strings.HasSuffix(jid, "@lid") }

// IsPN says whether jid is a phone number's JID (...@s.whatsapp.net).
func IsPN(jid string) bool { return strings.HasSuffix(jid, "@s.whatsapp.net") }
