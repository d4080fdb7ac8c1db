package store

import "app/internal/msg"

// MessageKind is m's kind, also for a record queued before the kinds
// (empty Kind): a text, or media by the file's type (a file of a type
// not recorded: a document).
func (m *OutboxMessage) MessageKind() string {
	if m.Kind == "" && m.MediaID != "" && m.MediaType == "" {
		return msg.KindDocument
	}
	return msg.KindOf(m.Kind, m.MediaType)
}
