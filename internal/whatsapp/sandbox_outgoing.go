package whatsapp

import (
	"strings"

	"app/internal/msg"
)

// refuseOutgoing is what WhatsApp would refuse of m: a kind without its parts.
// The primary checks what it queues; this is the driver's side of it, so
// a message built wrong fails in tests as it would against WhatsApp.
func refuseOutgoing(m Outgoing) *SendError {
	no := func(why string) *SendError { return &SendError{Reason: "a " + m.Kind + " message " + why} }
	target := m.Target != nil && m.Target.WAID != "" && m.Target.Chat == m.Chat
	switch m.Kind {
	case "": // queued before the kinds: a text, or media by its type
	case msg.KindText:
		if strings.TrimSpace(m.Text) == "" {
			return no("without text")
		}
	case msg.KindImage, msg.KindVideo, msg.KindAudio, msg.KindVoice, msg.KindDocument, msg.KindSticker:
		if m.Media == nil {
			return no("without its file")
		}
	case msg.KindLocation:
		if l := m.Location; l == nil || l.Latitude < -90 || l.Latitude > 90 || l.Longitude < -180 || l.Longitude > 180 {
			return no("without a point on the map")
		}
	case msg.KindContacts:
		if len(m.Contacts) == 0 {
			return no("without cards")
		}
		for _, c := range m.Contacts {
			if !msg.IsVCard(c.VCard) {
				return no("with a card that is not a vCard")
			}
		}
	case msg.KindPoll:
		if p := m.Poll; p == nil || strings.TrimSpace(p.Question) == "" || len(p.Options) < 2 || p.Selectable < 0 || p.Selectable > len(p.Options) {
			return no("without a question and two options or more")
		}
	case msg.KindReaction, msg.KindRevoke:
		if !target {
			return no("without the message it is about, in its chat")
		}
	case msg.KindEdit:
		if !target || strings.TrimSpace(m.Text) == "" {
			return no("without the message it edits, in its chat, or without the new text")
		}
	default:
		return &SendError{Reason: "a message of unknown kind " + m.Kind}
	}
	return nil
}
