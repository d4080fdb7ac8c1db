package whatsapp

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// SandboxAction is a chat action the sandbox was asked for: read receipts,
// a chat presence (typing, recording, paused) or our online presence.
type SandboxAction struct {
	Kind         string       `json:"kind"` // "read", "chat_presence" or "presence"
	Read         *ReadMark    `json:"read,omitempty"`
	Chat         string       `json:"chat,omitempty"`
	ChatPresence ChatPresence `json:"chat_presence,omitempty"`
	Online       bool         `json:"online,omitempty"`
}

// sandboxActs is the sandbox's record of chat actions and its silence;
// guarded by Sandbox.mu.
type sandboxActs struct {
	done  []SandboxAction
	pings int
	// silentUntil is the end of a silence of the Run numbered silentGen
	// (a new Run is a new connection, which is not silent); ended is
	// closed when it ends, early or not.
	silentUntil time.Time
	silentGen   int
	ended       chan struct{}
}

// actionLocked records a, or refuses it while offline; the caller holds mu.
func (s *Sandbox) actionLocked(ctx context.Context, a SandboxAction) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if !s.running || s.session.State != StateConnected {
		return ErrNotConnected
	}
	s.acts.done = append(s.acts.done, a)
	return nil
}

// MarkRead records read (or played) receipts for messages of a chat.
func (s *Sandbox) MarkRead(ctx context.Context, r ReadMark) error {
	if r.Chat == "" || r.Sender == "" || len(r.IDs) == 0 {
		return errors.New("whatsapp: sandbox: a read mark needs a chat, a sender and ids")
	}
	r.IDs = append([]string(nil), r.IDs...)
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.actionLocked(ctx, SandboxAction{Kind: "read", Read: &r, Chat: r.Chat})
}

// SendChatPresence records us typing, recording or neither in a chat.
func (s *Sandbox) SendChatPresence(ctx context.Context, chat string, p ChatPresence) error {
	switch p {
	case ChatComposing, ChatRecording, ChatPaused:
	default:
		return fmt.Errorf("whatsapp: sandbox: no chat presence %q", p)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.actionLocked(ctx, SandboxAction{Kind: "chat_presence", Chat: chat, ChatPresence: p})
}

// SendPresence records us shown online or offline.
func (s *Sandbox) SendPresence(ctx context.Context, online bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.actionLocked(ctx, SandboxAction{Kind: "presence", Online: online})
}

// Actions lists the chat actions done, in order.
func (s *Sandbox) Actions() []SandboxAction {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]SandboxAction(nil), s.acts.done...)
}

// Pings counts the pings asked of the sandbox while connected, answered
// or not.
func (s *Sandbox) Pings() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.acts.pings
}

// Silence makes the connection go quiet for d, as a half-dead one does:
// the session keeps saying connected, but no event is delivered (they
// wait, as WhatsApp keeps them) and Ping gets no answer, until d passed
// or Reconnect.
func (s *Sandbox) Silence(d time.Duration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.running || s.session.State != StateConnected {
		return ErrNotConnected
	}
	s.endSilenceLocked()
	until := time.Now().Add(d)
	s.acts.silentUntil, s.acts.silentGen, s.acts.ended = until, s.gen, make(chan struct{})
	s.after(d, func() {
		if s.acts.silentUntil.Equal(until) {
			s.endSilenceLocked()
		}
	})
	return nil
}

// silentLocked says whether this Run's connection is silent now.
func (s *Sandbox) silentLocked(now time.Time) bool {
	return s.acts.silentGen == s.gen && now.Before(s.acts.silentUntil)
}

func (s *Sandbox) endSilenceLocked() {
	if s.acts.ended != nil {
		close(s.acts.ended)
	}
	s.acts.silentUntil, s.acts.ended = time.Time{}, nil
	s.poke()
}

// deliverableLocked is nextLocked while the connection is not silent;
// while it is, nothing, until the silence ends.
func (s *Sandbox) deliverableLocked(now time.Time) (Event, *held, time.Time) {
	if s.silentLocked(now) {
		return nil, nil, s.acts.silentUntil
	}
	return s.nextLocked(now)
}

// Ping answers at once while connected; while silent, when the silence
// ends or ctx does.
func (s *Sandbox) Ping(ctx context.Context) error {
	s.mu.Lock()
	if !s.running || s.session.State != StateConnected {
		s.mu.Unlock()
		return ErrNotConnected
	}
	s.acts.pings++
	if !s.silentLocked(time.Now()) {
		s.mu.Unlock()
		return nil
	}
	ended := s.acts.ended
	s.mu.Unlock()
	select {
	case <-ctx.Done():
		return fmt.Errorf("whatsapp: sandbox: ping: no answer: %w", ctx.Err())
	case <-ended:
		return nil
	}
}

// Reconnect drops the connection and dials again: disconnected with
// reason, then connecting and connected. It ends a silence.
func (s *Sandbox) Reconnect(ctx context.Context, reason string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.jid == "" {
		return ErrNotPaired
	}
	if !s.running {
		return ErrNotConnected
	}
	s.endSilenceLocked()
	s.setSession(Session{State: StateDisconnected, Reason: reason, JID: s.jid})
	s.after(s.cfg.ConnectDelay, func() {
		if s.running && s.session.State == StateDisconnected {
			s.connectLocked()
		}
	})
	return nil
}
