package httpapi

import (
	"app/internal/msg"
	"app/internal/store"
)

// incomingItem is a received message as the history shows it: its kind
// (a record older than the kinds: a text, or media by the file's type),
// the kind's parts, its edits and its revoke.
func incomingItem(m store.IncomingMessage) chatItem {
	mt := ""
	if m.Media != nil {
		mt = m.Media.MimeType
	}
	it := chatItem{Direction: "in", ID: m.Key, WAID: m.WAID, Sender: m.Sender, FromMe: m.FromMe, PushName: m.PushName,
		Kind: msg.KindOf(m.Kind, mt), Text: m.Text, ReplyTo: m.ReplyTo, Body: m.Body, Addr: m.Addr, Changes: m.Changes,
		Media: attachmentOf(m.Media), At: m.SentAt, ns: m.SentAt.UnixNano()}
	if it.Target == nil && m.ReactionTo != "" {
		// A reaction stored before targets: its target by WhatsApp id.
		it.Target = &msg.Target{WAID: m.ReactionTo, Chat: m.Chat}
	}
	return it
}
