package whatsapp

import (
	"context"
	"encoding/json"
	"errors"
	"time"
)

// Expired media in the sandbox: a message can carry a file WhatsApp's
// servers no longer have (Download says ErrMediaGone), which its sender's
// phone sends again when asked (RetryMedia), or cannot.

// mediaRetryDelay is how long the sandbox's phone takes to answer
// RetryMedia unless SandboxConfig.MediaRetryDelay says otherwise.
const mediaRetryDelay = 100 * time.Millisecond

// sandboxRetry is the sandbox's Media.Retry: what its phone needs to send
// the file again (the file itself: the sandbox has no phone to keep it).
type sandboxRetry struct {
	Gone     bool   `json:"gone"`            // not on the servers: Download fails with ErrMediaGone
	Fails    bool   `json:"fails,omitempty"` // the phone cannot send it again either
	MimeType string `json:"mime_type"`
	Data     []byte `json:"data"`
}

// ExpireMedia makes m's file gone from WhatsApp's servers: its download
// fails with ErrMediaGone until the sender's phone sent it again
// (RetryMedia), which fails too when retryFails. A message without a file
// gets one: an image of its text.
func ExpireMedia(m *Incoming, retryFails bool) {
	if m.Media == nil {
		data := []byte("JPEG " + m.Text)
		m.Media = &Media{MimeType: "image/jpeg", Size: int64(len(data)), Caption: m.Text, Handle: data}
		if m.Kind == "" || m.Kind == "text" {
			m.Kind = "image"
		}
	}
	data, _ := m.Media.Handle.([]byte)
	m.Media.Retry, _ = json.Marshal(sandboxRetry{Gone: true, Fails: retryFails, MimeType: m.Media.MimeType, Data: data})
}

// goneMedia says ErrMediaGone for a file ExpireMedia made gone.
func goneMedia(m *Media) error {
	var r sandboxRetry
	if len(m.Retry) > 0 && json.Unmarshal(m.Retry, &r) == nil && r.Gone {
		return ErrMediaGone
	}
	return nil
}

// RetryMedia asks the sandbox's phone for the file of m again (m needs
// only its id, chat, sender and Media.Retry, as a primary that restarted
// has them): a MediaRetried follows after a moment, held like an incoming
// message until the primary acknowledged it, with the file or, when the
// message was made so, an error.
func (s *Sandbox) RetryMedia(ctx context.Context, m *Incoming) error {
	if m == nil || m.Media == nil {
		return errors.New("whatsapp: sandbox: no media to ask for")
	}
	var r sandboxRetry
	if err := json.Unmarshal(m.Media.Retry, &r); err != nil {
		return errors.New("whatsapp: sandbox: the media's retry data is not the sandbox's")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.running || s.session.State != StateConnected {
		return ErrNotConnected
	}
	ev := &MediaRetried{ID: m.ID, Chat: m.Chat, Sender: m.Sender}
	if r.Fails {
		ev.Error = "the phone no longer has the file"
	} else {
		ev.Media = &Media{MimeType: r.MimeType, Size: int64(len(r.Data)), FileName: m.Media.FileName, Caption: m.Media.Caption, Handle: r.Data}
	}
	delay := s.cfg.MediaRetryDelay
	if delay == 0 {
		delay = mediaRetryDelay
	}
	return s.holdLocked(&held{At: time.Now().Add(delay), Retried: ev})
}
