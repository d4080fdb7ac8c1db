package whatsapp

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.mau.fi/whatsmeow/appstate"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"
)

// Contacts and chats (issue 19): the blocklist, and a chat's archive, pin
// and mute, which are app-state patches synced to the account's devices.

// Block implements Driver.
func (d *Whatsmeow) Block(ctx context.Context, jid string, block bool) error {
	target, err := blockTarget(jid)
	if err != nil {
		return fmt.Errorf("whatsapp: block: %w", err)
	}
	cli, err := d.loggedIn()
	if err != nil {
		return err
	}
	action := events.BlocklistChangeActionBlock
	if !block {
		action = events.BlocklistChangeActionUnblock
	}
	if _, err := cli.UpdateBlocklist(ctx, target, action); err != nil {
		return fmt.Errorf("whatsapp: %s %s: %w", action, jid, err)
	}
	return nil
}

// blockTarget is jid as a user whatsmeow can block: a phone-number JID
// or a LID, never a group.
func blockTarget(jid string) (types.JID, error) {
	t, err := parseRecipient(jid)
	if err != nil {
		return types.JID{}, err
	}
	if t.Server != types.DefaultUserServer && t.Server != types.HiddenUserServer {
		return types.JID{}, errors.New("only a user can be blocked, not " + jid)
	}
	return t, nil
}

// Blocklist implements Driver.
func (d *Whatsmeow) Blocklist(ctx context.Context) ([]string, error) {
	cli, err := d.loggedIn()
	if err != nil {
		return nil, err
	}
	b, err := cli.GetBlocklist(ctx)
	if err != nil {
		return nil, fmt.Errorf("whatsapp: get blocklist: %w", err)
	}
	out := make([]string, 0, len(b.JIDs))
	for _, j := range b.JIDs {
		out = append(out, j.ToNonAD().String())
	}
	return out, nil
}

// SetChatSetting implements Driver.
func (d *Whatsmeow) SetChatSetting(ctx context.Context, chat string, s ChatSetting) error {
	patch, err := chatSettingPatch(chat, s, time.Now())
	if err != nil {
		return fmt.Errorf("whatsapp: chat setting: %w", err)
	}
	cli, err := d.loggedIn()
	if err != nil {
		return err
	}
	if err := cli.SendAppState(ctx, patch); err != nil {
		return fmt.Errorf("whatsapp: %s %s: %w", s.Kind, chat, err)
	}
	return nil
}

// chatSettingPatch is the app-state patch that sets s on chat; now
// bounds a mute's end (one in the past is refused).
func chatSettingPatch(chat string, s ChatSetting, now time.Time) (appstate.PatchInfo, error) {
	target, err := parseRecipient(chat)
	if err != nil {
		return appstate.PatchInfo{}, err
	}
	switch s.Kind {
	case ChatArchive:
		return appstate.BuildArchive(target, s.On, time.Time{}, nil), nil
	case ChatPin:
		return appstate.BuildPin(target, s.On), nil
	case ChatMute:
		if !s.On || s.Until.IsZero() {
			return appstate.BuildMuteAbs(target, s.On, nil), nil // no end: -1
		}
		if !s.Until.After(now) {
			return appstate.PatchInfo{}, errors.New("a mute's end must be in the future")
		}
		end := s.Until.UnixMilli()
		return appstate.BuildMuteAbs(target, true, &end), nil
	}
	return appstate.PatchInfo{}, fmt.Errorf("no chat setting %q", s.Kind)
}

// handleBlocklist reports a blocklist changed on the phone. whatsmeow
// acknowledged the notification already (account_sync): a failed Handler
// is logged, not answered with a redelivery.
func (c *clientEvents) handleBlocklist(e *events.Blocklist) {
	c.notify(blocklistChanged(e), "blocklist change")
}

// blocklistChanged is e as the driver reports it.
func blocklistChanged(e *events.Blocklist) *BlocklistChanged {
	ev := &BlocklistChanged{Whole: e.Action == events.BlocklistActionModify || len(e.Changes) == 0}
	for _, ch := range e.Changes {
		jid := ch.JID.ToNonAD().String()
		switch ch.Action {
		case events.BlocklistChangeActionBlock:
			ev.Blocked = append(ev.Blocked, jid)
		case events.BlocklistChangeActionUnblock:
			ev.Unblocked = append(ev.Unblocked, jid)
		default:
			ev.Whole = true
		}
	}
	return ev
}
