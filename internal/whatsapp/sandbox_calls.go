package whatsapp

import (
	"context"
	"time"
)

// RejectedCall is a call the sandbox was told to reject (RejectCall).
type RejectedCall struct {
	From   string
	CallID string
	At     time.Time
}

// OfferCall is someone calling us: a *Call event, held until the handler
// acknowledges it like a message, filling in what is missing (the id,
// the time).
func (s *Sandbox) OfferCall(c Call) (Call, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c.ID == "" {
		c.ID = randomHex(16)
	}
	if c.Timestamp.IsZero() {
		c.Timestamp = time.Now()
	}
	return c, s.holdLocked(&held{Call: &c})
}

// RejectCall records the rejection, as WhatsApp would pass it to the
// caller; only while connected, like a send.
func (s *Sandbox) RejectCall(ctx context.Context, from, callID string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.running || s.session.State != StateConnected {
		return ErrNotConnected
	}
	s.rejected = append(s.rejected, RejectedCall{From: from, CallID: callID, At: time.Now()})
	return nil
}

// RejectedCalls lists the calls rejected so far, in order.
func (s *Sandbox) RejectedCalls() []RejectedCall {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]RejectedCall(nil), s.rejected...)
}
