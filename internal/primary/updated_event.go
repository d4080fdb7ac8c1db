package primary

import (
	"time"

	"app/internal/msg"
)

// messageUpdated is "message.updated": a stored message changed after it
// was announced. Key names an incoming message, ID one of the outbox.
type messageUpdated struct {
	Key       string     `json:"key,omitempty"`
	ID        string     `json:"id,omitempty"`
	WAID      string     `json:"wa_id"`
	Chat      string     `json:"chat"`
	Sender    string     `json:"sender,omitempty"`
	FromMe    bool       `json:"from_me"`
	Change    string     `json:"change"` // edited or revoked
	Text      string     `json:"text,omitempty"`
	Edits     []msg.Edit `json:"edits,omitempty"`
	EditedAt  time.Time  `json:"edited_at,omitzero"`
	RevokedAt time.Time  `json:"revoked_at,omitzero"`
}
