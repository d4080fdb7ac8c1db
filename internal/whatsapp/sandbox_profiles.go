package whatsapp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"strings"
)

// SandboxProfile is a user (or group, for its picture) in the sandbox's
// profile directory, which a test sets up (SetProfiles).
type SandboxProfile struct {
	JID          string           `json:"jid"`
	LID          string           `json:"lid,omitempty"`
	About        string           `json:"about,omitempty"`
	BusinessName string           `json:"business_name,omitempty"`
	Picture      []byte           `json:"picture,omitempty"` // a JPEG; none: no picture
	PictureID    string           `json:"picture_id,omitempty"`
	Hidden       bool             `json:"picture_hidden,omitempty"` // the picture is hidden from us
	Business     *BusinessProfile `json:"business,omitempty"`       // nil: not a business
}

// SandboxProfileCall is a change of our own profile the sandbox was asked
// for: "push_name", "about", "picture" (Picture the JPEG) or
// "remove_picture".
type SandboxProfileCall struct {
	Kind    string `json:"kind"`
	Text    string `json:"text,omitempty"`
	Picture []byte `json:"picture,omitempty"`
}

// sandboxProfiles is the sandbox's profile directory, our own profile and
// what was asked of them; guarded by Sandbox.mu.
type sandboxProfiles struct {
	dir      map[string]SandboxProfile
	lookups  int // users asked about: each of Profiles, each picture and business profile
	fetches  int // pictures fetched (FetchPicture)
	nextID   int
	pushName string
	about    string
	picture  []byte
	picID    string
	calls    []SandboxProfileCall
}

// sandboxPictureHost is where the sandbox's picture URLs point.
const sandboxPictureHost = "https://pps.sandbox.invalid/"

// newPictureIDLocked is a picture id as WhatsApp's look (digits).
func (s *Sandbox) newPictureIDLocked() string {
	s.profiles.nextID++
	return strconv.Itoa(1700000000 + s.profiles.nextID)
}

// SetProfiles adds entries to the profile directory, replacing those of
// the same JID; an entry with a picture and no id gets one.
func (s *Sandbox) SetProfiles(entries []SandboxProfile) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.profiles.dir == nil {
		s.profiles.dir = map[string]SandboxProfile{}
	}
	for _, e := range entries {
		if e.Picture != nil && e.PictureID == "" {
			e.PictureID = s.newPictureIDLocked()
		}
		if e.Business != nil {
			b := *e.Business
			b.JID = e.JID
			e.Business = &b
		}
		s.profiles.dir[e.JID] = e
	}
}

// ChangePicture changes a user's or group's picture as they would on
// their phone (nil removes it) and reports it with a *PictureChanged; it
// returns the new picture's id ("" when removed).
func (s *Sandbox) ChangePicture(jid, author string, jpeg []byte) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.profiles.dir == nil {
		s.profiles.dir = map[string]SandboxProfile{}
	}
	e := s.profiles.dir[jid]
	e.JID, e.Picture, e.PictureID = jid, jpeg, ""
	if jpeg != nil {
		e.PictureID = s.newPictureIDLocked()
	}
	s.profiles.dir[jid] = e
	s.emit(&PictureChanged{JID: jid, Author: author, Removed: jpeg == nil, ID: e.PictureID})
	return e.PictureID
}

// ProfileLookups is how many users the profile methods were asked about
// (Profiles counts each, ProfilePicture and BusinessProfile one).
func (s *Sandbox) ProfileLookups() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.profiles.lookups
}

// PictureFetches is how many pictures FetchPicture served.
func (s *Sandbox) PictureFetches() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.profiles.fetches
}

// ProfileCalls lists the changes of our own profile, in order.
func (s *Sandbox) ProfileCalls() []SandboxProfileCall {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]SandboxProfileCall(nil), s.profiles.calls...)
}

// ownLocked is our own directory entry; the caller holds mu.
func (s *Sandbox) ownLocked() SandboxProfile {
	return SandboxProfile{JID: s.jid, About: s.profiles.about, Picture: s.profiles.picture, PictureID: s.profiles.picID}
}

// profileLocked is jid's entry (our own included); the caller holds mu.
func (s *Sandbox) profileLocked(jid string) (SandboxProfile, bool) {
	if jid != "" && jid == s.jid {
		return s.ownLocked(), true
	}
	e, ok := s.profiles.dir[jid]
	return e, ok
}

// Profiles answers from the directory (users not in it are not answered
// for); only while connected.
func (s *Sandbox) Profiles(ctx context.Context, jids []string) ([]Profile, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.connectedLocked(ctx); err != nil {
		return nil, err
	}
	s.profiles.lookups += len(jids)
	out := make([]Profile, 0, len(jids))
	for _, j := range jids {
		e, ok := s.profileLocked(j)
		if !ok {
			continue
		}
		p := Profile{JID: j, LID: e.LID, About: e.About, BusinessName: e.BusinessName}
		if !e.Hidden {
			p.PictureID = e.PictureID
		}
		if j == s.jid {
			p.PushName = s.profiles.pushName
		}
		out = append(out, p)
	}
	return out, nil
}

// ProfilePicture answers with the entry's picture: its URL names the
// picture by JID and id, which FetchPicture serves.
func (s *Sandbox) ProfilePicture(ctx context.Context, jid string, preview bool) (Picture, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.connectedLocked(ctx); err != nil {
		return Picture{}, err
	}
	s.profiles.lookups++
	e, ok := s.profileLocked(jid)
	switch {
	case ok && e.Hidden:
		return Picture{}, fmt.Errorf("whatsapp: sandbox: profile picture of %s: %w", jid, ErrPictureHidden)
	case !ok || e.Picture == nil:
		return Picture{}, fmt.Errorf("whatsapp: sandbox: profile picture of %s: %w", jid, ErrNoPicture)
	}
	u := sandboxPictureHost + url.PathEscape(jid) + "/" + e.PictureID + ".jpg"
	if preview {
		u += "?type=preview"
	}
	return Picture{ID: e.PictureID, URL: u, Preview: preview}, nil
}

// FetchPicture serves the picture a URL of ProfilePicture names, while it
// is the current one (an older one is gone, as WhatsApp's are).
func (s *Sandbox) FetchPicture(ctx context.Context, p Picture, maxBytes int64) (io.ReadCloser, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.connectedLocked(ctx); err != nil {
		return nil, err
	}
	rest, ok := strings.CutPrefix(p.URL, sandboxPictureHost)
	rest, _, _ = strings.Cut(rest, "?")
	esc, file, _ := strings.Cut(rest, "/")
	jid, err := url.PathUnescape(esc)
	if !ok || err != nil {
		return nil, errors.New("whatsapp: sandbox: not a picture URL of the sandbox: " + p.URL)
	}
	e, found := s.profileLocked(jid)
	if !found || e.Picture == nil || file != e.PictureID+".jpg" {
		return nil, fmt.Errorf("whatsapp: sandbox: fetch picture: %w", ErrMediaGone)
	}
	if int64(len(e.Picture)) > maxBytes {
		return nil, fmt.Errorf("whatsapp: sandbox: the picture is %d bytes, over %d", len(e.Picture), maxBytes)
	}
	s.profiles.fetches++
	return io.NopCloser(bytes.NewReader(e.Picture)), nil
}

// BusinessProfile answers with the entry's business profile.
func (s *Sandbox) BusinessProfile(ctx context.Context, jid string) (BusinessProfile, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.connectedLocked(ctx); err != nil {
		return BusinessProfile{}, err
	}
	s.profiles.lookups++
	e, ok := s.profiles.dir[jid]
	if !ok || e.Business == nil {
		return BusinessProfile{}, fmt.Errorf("whatsapp: sandbox: business profile of %s: %w", jid, ErrNotBusiness)
	}
	return *e.Business, nil
}

// SetPushName keeps our push name and records the change.
func (s *Sandbox) SetPushName(ctx context.Context, name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.connectedLocked(ctx); err != nil {
		return err
	}
	s.profiles.pushName = name
	s.profiles.calls = append(s.profiles.calls, SandboxProfileCall{Kind: "push_name", Text: name})
	return nil
}

// SetAbout keeps our about text and records the change.
func (s *Sandbox) SetAbout(ctx context.Context, text string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.connectedLocked(ctx); err != nil {
		return err
	}
	s.profiles.about = text
	s.profiles.calls = append(s.profiles.calls, SandboxProfileCall{Kind: "about", Text: text})
	return nil
}

// SetProfilePicture keeps our picture (nil removes it) and records the
// change; it refuses what is not a JPEG, as WhatsApp does.
func (s *Sandbox) SetProfilePicture(ctx context.Context, jpeg []byte) (string, error) {
	if jpeg != nil && !bytes.HasPrefix(jpeg, []byte{0xFF, 0xD8, 0xFF}) {
		return "", errors.New("whatsapp: sandbox: the picture is not a JPEG")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.connectedLocked(ctx); err != nil {
		return "", err
	}
	if jpeg == nil {
		s.profiles.picture, s.profiles.picID = nil, ""
		s.profiles.calls = append(s.profiles.calls, SandboxProfileCall{Kind: "remove_picture"})
		return "", nil
	}
	s.profiles.picture = append([]byte(nil), jpeg...)
	s.profiles.picID = s.newPictureIDLocked()
	s.profiles.calls = append(s.profiles.calls, SandboxProfileCall{Kind: "picture", Picture: s.profiles.picture})
	return s.profiles.picID, nil
}
