package httpapi

import (
	"testing"

	"app/internal/store"
)

// A chat's kind follows its JID's server: only @g.us is a group; users
// come by number or by LID; the status broadcast and channels are neither.
func TestChatKinds(t *testing.T) {
	for _, c := range []struct {
		chat              store.Chat
		kind, phone, name string
	}{
		{store.Chat{JID: "491701234567@s.whatsapp.net", PushName: "Alice"}, "user", "+491701234567", "Alice"},
		{store.Chat{JID: "491701234567@s.whatsapp.net", Name: "Alice Smith", PushName: "Ali"}, "user", "+491701234567", "Alice Smith"},
		{store.Chat{JID: "99887766554433@lid", PushName: "Dana"}, "user", "", "Dana"},
		{store.Chat{JID: "120363000000000000@g.us", Name: "Family"}, "group", "", "Family"},
		{store.Chat{JID: "status@broadcast"}, "broadcast", "", ""},
		{store.Chat{JID: "1234567890@broadcast"}, "broadcast", "", ""},
		{store.Chat{JID: "120363111111111111@newsletter"}, "newsletter", "", ""},
	} {
		v := chatOf(c.chat)
		if v.Kind != c.kind || v.Phone != c.phone || v.Name != c.name {
			t.Errorf("%s: kind %q, phone %q, name %q; want %q, %q, %q", c.chat.JID, v.Kind, v.Phone, v.Name, c.kind, c.phone, c.name)
		}
	}
}
