package whatsapp

import (
	"time"

	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"
)

// Changes made on another device that whatsmeow does not wait for:
// a chat archived, pinned or muted (app-state patches, which whatsmeow
// applies to its own store before telling us, our own SetChatSetting's
// among them, and every chat's state on a full sync), a user's or group's
// picture (a notification whatsmeow acknowledged already). A failed
// Handler is logged (clientEvents.notify).

func (c *clientEvents) handleArchive(e *events.Archive) {
	if ev, ok := chatSettingChanged(e.JID, ChatSetting{Kind: ChatArchive, On: e.Action.GetArchived()}, c.lids()); ok {
		c.notify(ev, "chat archived")
	}
}

func (c *clientEvents) handlePin(e *events.Pin) {
	if ev, ok := chatSettingChanged(e.JID, ChatSetting{Kind: ChatPin, On: e.Action.GetPinned()}, c.lids()); ok {
		c.notify(ev, "chat pinned")
	}
}

func (c *clientEvents) handleMute(e *events.Mute) {
	if ev, ok := chatSettingChanged(e.JID, muteSetting(e), c.lids()); ok {
		c.notify(ev, "chat muted")
	}
}

// muteSetting is a mute as we report it: its end in milliseconds (-1,
// or none, for a mute without end).
func muteSetting(e *events.Mute) ChatSetting {
	s := ChatSetting{Kind: ChatMute, On: e.Action.GetMuted()}
	if end := e.Action.GetMuteEndTimestamp(); s.On && end > 0 {
		s.Until = time.UnixMilli(end)
	}
	return s
}

// chatSettingChanged is s set on chat (by number where known); false for
// a patch without a chat.
func chatSettingChanged(chat types.JID, s ChatSetting, r lidMap) (*ChatSettingChanged, bool) {
	if chat.IsEmpty() {
		return nil, false
	}
	return &ChatSettingChanged{Chat: r.userOf(chat, types.EmptyJID), Setting: s}, true
}

func (c *clientEvents) handlePicture(e *events.Picture) {
	if e.JID.IsEmpty() {
		return
	}
	c.notify(pictureChanged(e, c.lids()), "picture")
}

// pictureChanged is e as we report it: users by number where known.
func pictureChanged(e *events.Picture, r lidMap) *PictureChanged {
	return &PictureChanged{
		JID:     r.userOf(e.JID, types.EmptyJID),
		Author:  r.userOf(e.Author, types.EmptyJID),
		Removed: e.Remove,
		ID:      e.PictureID,
	}
}
