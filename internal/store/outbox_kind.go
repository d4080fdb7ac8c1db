package store

import "app/internal/msg"

// MessageKind is m's kind, also for a record queued before the kinds
// (empty Kind): a text, or media by the file's type.
func (m *OutboxMessage) MessageKind() string {
	switch {
	case m.Kind != "":
		return m.Kind
	case m.MediaID != "":
		return msg.MediaKind(m.MediaType)
	}
	return msg.KindText
}
