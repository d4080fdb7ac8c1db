package primary

import (
	"context"
	"errors"
	"time"

	"app/internal/store"
	"app/internal/whatsapp"
)

// Contact and chat changes (issue 19): a worker leaves them as commands
// with a deadline, as the chat actions. The primary does them through the
// driver, then keeps the outcome in the store, where the API reads it:
// the blocklist record, a chat's archived, pinned and muted settings.
//
// Their arguments:
//   - block: jid (a user: phone-number JID or LID); block, "true" or
//     "false" (unblock).
//   - blocklist: none; fetches the blocklist into the store.
//   - chat_setting: chat; setting, a whatsapp.ChatSettingKind; on, "true"
//     or "false"; until, a mute's end (RFC 3339; none: without end).
//
// A failure's result has code not_connected when WhatsApp is not (503).
const (
	cmdBlock       = "block"
	cmdBlocklist   = "blocklist"
	cmdChatSetting = "chat_setting"
)

func (w *WhatsApp) contactAction(ctx context.Context, c *store.Command) (map[string]string, error) {
	notConnected := map[string]string{"code": "not_connected"}
	if w.Session().State != whatsapp.StateConnected {
		return notConnected, whatsapp.ErrNotConnected
	}
	var err error
	switch c.Kind {
	case cmdBlock:
		err = w.block(ctx, c.Args["jid"], c.Args["block"] == "true")
	case cmdBlocklist:
		err = w.fetchBlocklist(ctx)
	case cmdChatSetting:
		err = w.setChatSetting(ctx, c.Args)
	}
	if errors.Is(err, whatsapp.ErrNotConnected) {
		return notConnected, err
	}
	return nil, err
}

// block blocks or unblocks jid, then records it in the stored blocklist
// (fetched whole when none was stored yet).
func (w *WhatsApp) block(ctx context.Context, jid string, block bool) error {
	if err := w.Driver.Block(ctx, jid, block); err != nil {
		return err
	}
	w.chatMu.Lock()
	defer w.chatMu.Unlock()
	b, err := w.Store.Blocklist(ctx)
	if errors.Is(err, store.ErrNotFound) {
		return w.fetchBlocklistLocked(ctx)
	}
	if err != nil {
		return err
	}
	b.JIDs = whatsapp.BlocklistWith(b.JIDs, jid, block)
	return w.Store.SaveBlocklist(ctx, b)
}

func (w *WhatsApp) fetchBlocklist(ctx context.Context) error {
	w.chatMu.Lock()
	defer w.chatMu.Unlock()
	return w.fetchBlocklistLocked(ctx)
}

// fetchBlocklistLocked stores the blocklist as WhatsApp has it; the
// caller holds chatMu.
func (w *WhatsApp) fetchBlocklistLocked(ctx context.Context) error {
	jids, err := w.Driver.Blocklist(ctx)
	if err != nil {
		return err
	}
	return w.Store.SaveBlocklist(ctx, store.Blocklist{JIDs: jids})
}

// setChatSetting changes a chat's setting, then records it on the stored
// chat (a chat not stored yet is left: it shows nowhere).
func (w *WhatsApp) setChatSetting(ctx context.Context, args map[string]string) error {
	s, err := chatSettingArgs(args)
	if err != nil {
		return err
	}
	chat := args["chat"]
	if err := w.Driver.SetChatSetting(ctx, chat, s); err != nil {
		return err
	}
	return w.keepChatSetting(ctx, chat, s)
}

// chatSettingArgs is the setting a command names: setting, on ("true")
// and until (RFC 3339; none: without end).
func chatSettingArgs(args map[string]string) (whatsapp.ChatSetting, error) {
	s := whatsapp.ChatSetting{Kind: whatsapp.ChatSettingKind(args["setting"]), On: args["on"] == "true"}
	if u := args["until"]; u != "" {
		t, err := time.Parse(time.RFC3339Nano, u)
		if err != nil {
			return s, errors.New("until is not an RFC 3339 time: " + u)
		}
		s.Until = t
	}
	return s, nil
}

// keepChatSetting records a chat's setting on the stored chat (a chat not
// stored yet is left: it shows nowhere).
func (w *WhatsApp) keepChatSetting(ctx context.Context, chat string, s whatsapp.ChatSetting) error {
	w.chatMu.Lock()
	defer w.chatMu.Unlock()
	c, err := w.Store.Chat(ctx, chat)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	switch s.Kind {
	case whatsapp.ChatArchive:
		c.Archived = s.On
		if s.On { // WhatsApp unpins an archived chat
			c.Pinned = false
		}
	case whatsapp.ChatPin:
		c.Pinned = s.On
	case whatsapp.ChatMute:
		c.Muted, c.MutedUntil = s.On, time.Time{}
		if s.On {
			c.MutedUntil = s.Until
		}
	default:
		return nil
	}
	return w.Store.SaveChat(ctx, c)
}

// onChatSettingChanged keeps a chat archived, pinned or muted on the
// phone, as one changed through the API.
func (w *WhatsApp) onChatSettingChanged(ctx context.Context, e *whatsapp.ChatSettingChanged) error {
	return w.keepChatSetting(ctx, e.Chat, e.Setting)
}

// onBlocklistChanged keeps a blocklist changed on the phone: the changes
// applied to the stored list, or the list fetched again when the driver
// says it changed in ways not told. None stored: nothing to keep (the
// first GET /v1/blocklist fetches it). A fetch that fails is logged, not
// retried: the next change or block fetches it.
func (w *WhatsApp) onBlocklistChanged(ctx context.Context, e *whatsapp.BlocklistChanged) error {
	w.chatMu.Lock()
	defer w.chatMu.Unlock()
	b, err := w.Store.Blocklist(ctx)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if e.Whole {
		fctx, cancel := context.WithTimeout(ctx, blocklistFetchWait)
		defer cancel()
		if err := w.fetchBlocklistLocked(fctx); err != nil {
			w.Log.Warn().Err(err).Msg("Cannot fetch the blocklist after it changed on the phone; it is fetched again at the next change.")
		}
		return nil
	}
	for _, j := range e.Blocked {
		b.JIDs = whatsapp.BlocklistWith(b.JIDs, j, true)
	}
	for _, j := range e.Unblocked {
		b.JIDs = whatsapp.BlocklistWith(b.JIDs, j, false)
	}
	return w.Store.SaveBlocklist(ctx, b)
}

// blocklistFetchWait bounds the fetch of a blocklist changed on the phone.
const blocklistFetchWait = 15 * time.Second
