package whatsapp

import (
	"context"
	"strings"
)

// sandboxNumbers is the sandbox's directory of numbers on WhatsApp, which
// a test sets up (SetDirectory); any other number is not on WhatsApp. It
// counts the numbers looked up, so a test sees what a cache saved.
type sandboxNumbers struct {
	dir     map[string]NumberInfo // by number, digits only
	lookups int
}

// SetDirectory adds entries to the directory (an entry's Query is its
// number, "+" and digits), replacing those of the same number.
func (s *Sandbox) SetDirectory(entries []NumberInfo) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.nums.dir == nil {
		s.nums.dir = map[string]NumberInfo{}
	}
	for _, e := range entries {
		digits := strings.TrimPrefix(e.Query, "+")
		if e.OnWhatsApp && e.JID == "" {
			e.JID = digits + "@s.whatsapp.net"
		}
		s.nums.dir[digits] = e
	}
}

// NumberLookups is how many numbers CheckNumbers was asked about.
func (s *Sandbox) NumberLookups() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.nums.lookups
}

// CheckNumbers answers from the directory; only while connected.
func (s *Sandbox) CheckNumbers(ctx context.Context, phones []string) ([]NumberInfo, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.running || s.session.State != StateConnected {
		return nil, ErrNotConnected
	}
	s.nums.lookups += len(phones)
	out := make([]NumberInfo, 0, len(phones))
	for _, p := range phones {
		e, ok := s.nums.dir[strings.TrimPrefix(p, "+")]
		if !ok || !e.OnWhatsApp {
			out = append(out, NumberInfo{Query: p})
			continue
		}
		e.Query = p
		out = append(out, e)
	}
	return out, nil
}
