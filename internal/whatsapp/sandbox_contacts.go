package whatsapp

import (
	"context"
	"errors"
	"strings"
)

// SandboxContactCall is a contact or chat change the sandbox was asked
// for: a block or unblock, or a chat setting.
type SandboxContactCall struct {
	Kind    string       `json:"kind"` // "block", "unblock" or "chat_setting"
	JID     string       `json:"jid"`
	Setting *ChatSetting `json:"setting,omitempty"`
}

// sandboxContacts is the sandbox's blocklist, chat settings and record of
// changes; guarded by Sandbox.mu.
type sandboxContacts struct {
	blocked  []string
	settings map[string]map[ChatSettingKind]ChatSetting
	calls    []SandboxContactCall
}

// connectedLocked refuses while offline; the caller holds mu.
func (s *Sandbox) connectedLocked(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if !s.running || s.session.State != StateConnected {
		return ErrNotConnected
	}
	return nil
}

// Block adds jid to the sandbox's blocklist, or removes it.
func (s *Sandbox) Block(ctx context.Context, jid string, block bool) error {
	if !strings.HasSuffix(jid, "@s.whatsapp.net") && !strings.HasSuffix(jid, "@lid") {
		return errors.New("whatsapp: sandbox: only a user can be blocked, not " + jid)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.connectedLocked(ctx); err != nil {
		return err
	}
	c := &s.contacts
	c.blocked = BlocklistWith(c.blocked, jid, block)
	kind := "block"
	if !block {
		kind = "unblock"
	}
	c.calls = append(c.calls, SandboxContactCall{Kind: kind, JID: jid})
	return nil
}

// Blocklist is the sandbox's blocklist, in the order blocked.
func (s *Sandbox) Blocklist(ctx context.Context) ([]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.connectedLocked(ctx); err != nil {
		return nil, err
	}
	return append([]string{}, s.contacts.blocked...), nil
}

// SetChatSetting records a chat's setting.
func (s *Sandbox) SetChatSetting(ctx context.Context, chat string, set ChatSetting) error {
	switch set.Kind {
	case ChatArchive, ChatPin, ChatMute:
	default:
		return errors.New("whatsapp: sandbox: no chat setting " + string(set.Kind))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.connectedLocked(ctx); err != nil {
		return err
	}
	s.setChatLocked(chat, set)
	s.contacts.calls = append(s.contacts.calls, SandboxContactCall{Kind: "chat_setting", JID: chat, Setting: &set})
	return nil
}

// setChatLocked keeps a chat's setting; the caller holds mu.
func (s *Sandbox) setChatLocked(chat string, set ChatSetting) {
	c := &s.contacts
	if c.settings == nil {
		c.settings = map[string]map[ChatSettingKind]ChatSetting{}
	}
	if c.settings[chat] == nil {
		c.settings[chat] = map[ChatSettingKind]ChatSetting{}
	}
	c.settings[chat][set.Kind] = set
}

// ChatSettingOf is a chat's setting of kind as last set (zero: never).
func (s *Sandbox) ChatSettingOf(chat string, kind ChatSettingKind) ChatSetting {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.contacts.settings[chat][kind]
}

// ContactCalls lists the blocks, unblocks and chat settings done, in order.
func (s *Sandbox) ContactCalls() []SandboxContactCall {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]SandboxContactCall(nil), s.contacts.calls...)
}

// BlockOnPhone blocks or unblocks jid as the phone would: the blocklist
// changes and a *BlocklistChanged reports it.
func (s *Sandbox) BlockOnPhone(jid string, block bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := &s.contacts
	c.blocked = BlocklistWith(c.blocked, jid, block)
	ev := &BlocklistChanged{Unblocked: []string{jid}}
	if block {
		ev = &BlocklistChanged{Blocked: []string{jid}}
	}
	s.emit(ev)
}

// ChatSettingOnPhone archives, pins or mutes a chat (or undoes it) as the
// phone would: the setting changes and a *ChatSettingChanged reports it.
func (s *Sandbox) ChatSettingOnPhone(chat string, set ChatSetting) error {
	switch set.Kind {
	case ChatArchive, ChatPin, ChatMute:
	default:
		return errors.New("whatsapp: sandbox: no chat setting " + string(set.Kind))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.setChatLocked(chat, set)
	s.emit(&ChatSettingChanged{Chat: chat, Setting: set})
	return nil
}
