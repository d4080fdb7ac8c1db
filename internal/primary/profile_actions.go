package primary

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"strconv"
	"strings"
	"time"

	"app/internal/store"
	"app/internal/whatsapp"
)

// Profiles (issue 19): a worker answers what the cache (store.Profile)
// holds fresh and leaves the rest to the primary as a command with a
// deadline. The primary asks WhatsApp at the pace of the number checks
// (numberPace, WHATSAPP_CHECKS_PER_MINUTE; every user asked counts, a
// picture or a business profile one), keeps each answer in the cache and
// a picture's image in the media store, so a client gets it through us.
// A lookup the pace holds back is answered with held_seconds, when the
// pace frees up again.
//
// Their arguments and results (JSON of the store's types):
//   - profiles: jids, comma separated → profiles ([]store.Profile of the
//     users WhatsApp answered for).
//   - profile_picture: jid; preview "true" → picture (store.ProfilePicture,
//     with Missing when there is none to show).
//   - business_profile: jid → business (store.BusinessProfile), or
//     missing "not_business".
//   - set_profile: push_name and/or about (each set when given).
//   - set_profile_picture: media_id, a stored JPEG; none removes it →
//     picture_id.
//
// A failure's result has code not_connected when WhatsApp is not (503).
const (
	cmdProfiles          = "profiles"
	cmdProfilePicture    = "profile_picture"
	cmdBusinessProfile   = "business_profile"
	cmdSetProfile        = "set_profile"
	cmdSetProfilePicture = "set_profile_picture"

	// maxPictureBytes bounds a picture fetched from WhatsApp: they are
	// JPEGs of at most 640×640, a few hundred KB.
	maxPictureBytes = 5 << 20
)

func isProfileCommand(kind string) bool {
	switch kind {
	case cmdProfiles, cmdProfilePicture, cmdBusinessProfile, cmdSetProfile, cmdSetProfilePicture:
		return true
	}
	return false
}

// profileEvent is profile.updated's data: a user's or group's profile
// changed (change "picture": its picture, PictureID the new one, none when
// Removed).
type profileEvent struct {
	JID       string `json:"jid"`
	Change    string `json:"change"`
	PictureID string `json:"picture_id,omitempty"`
	Removed   bool   `json:"removed,omitempty"`
	Author    string `json:"author,omitempty"`
}

func (w *WhatsApp) profileAction(ctx context.Context, c *store.Command) (map[string]string, error) {
	notConnected := map[string]string{"code": "not_connected"}
	if w.Session().State != whatsapp.StateConnected {
		return notConnected, whatsapp.ErrNotConnected
	}
	var res map[string]string
	var err error
	switch c.Kind {
	case cmdProfiles:
		res, err = w.lookupProfiles(ctx, splitList(c.Args["jids"]))
	case cmdProfilePicture:
		res, err = w.lookupPicture(ctx, c.Args["jid"], c.Args["preview"] == "true")
	case cmdBusinessProfile:
		res, err = w.lookupBusiness(ctx, c.Args["jid"])
	case cmdSetProfile:
		err = w.setProfile(ctx, c.Args)
	case cmdSetProfilePicture:
		res, err = w.setProfilePicture(ctx, c.Args["media_id"])
	}
	if errors.Is(err, whatsapp.ErrNotConnected) {
		return notConnected, err
	}
	return res, err
}

// paced grants up to want lookups now; held says how many seconds until
// more are free, for those it did not grant.
func (w *WhatsApp) paced(want int) (int, map[string]string) {
	perMinute := w.Cfg.ChecksPerMinute
	if perMinute <= 0 {
		perMinute = defaultChecksPerMinute
	}
	n, wait := w.numberPace.take(time.Now(), want, perMinute)
	if n == want {
		return n, map[string]string{}
	}
	return n, map[string]string{"held_seconds": strconv.Itoa(max(1, int(math.Ceil(wait.Seconds()))))}
}

// storedProfile is jid's cached profile, or a new one.
func (w *WhatsApp) storedProfile(ctx context.Context, jid string) (store.Profile, error) {
	got, err := w.Store.Profiles(ctx, []string{jid})
	if err != nil {
		return store.Profile{}, err
	}
	for _, p := range got {
		if p.JID == jid {
			return p, nil
		}
	}
	return store.Profile{JID: jid}, nil
}

// lookupProfiles asks WhatsApp about as many of jids as the pace allows
// and caches the answers; held names those it kept back.
func (w *WhatsApp) lookupProfiles(ctx context.Context, jids []string) (map[string]string, error) {
	n, res := w.paced(len(jids))
	if held := jids[n:]; len(held) > 0 {
		res["held"] = strings.Join(held, ",")
	}
	saved := []store.Profile{}
	if n > 0 {
		got, err := w.Driver.Profiles(ctx, jids[:n])
		if err != nil {
			return nil, err
		}
		now := time.Now()
		w.profileMu.Lock()
		defer w.profileMu.Unlock()
		for _, g := range got {
			p, err := w.storedProfile(ctx, g.JID)
			if err != nil {
				return nil, err
			}
			if p.PictureID != g.PictureID {
				p.Picture, p.Preview = nil, nil // another picture than the one kept
			}
			p.LID, p.About, p.PictureID, p.BusinessName, p.FetchedAt = g.LID, g.About, g.PictureID, g.BusinessName, now
			if g.PushName != "" {
				p.PushName = g.PushName
			}
			if err := w.Store.SaveProfile(ctx, p); err != nil {
				return nil, err
			}
			if err := w.learnPair(ctx, p.JID, p.LID); err != nil {
				w.Log.Warn().Err(err).Str("pn", p.JID).Msg("Cannot record a profile's LID; the profile is kept.")
			}
			saved = append(saved, p)
		}
	}
	return withJSON(res, "profiles", saved)
}

// lookupPicture asks WhatsApp for jid's picture, fetches its image into
// the media store (unless the same picture is kept there already) and
// caches it; a picture there is none of is cached as missing.
func (w *WhatsApp) lookupPicture(ctx context.Context, jid string, preview bool) (map[string]string, error) {
	n, res := w.paced(1)
	if n == 0 {
		return res, nil
	}
	pic, err := w.Driver.ProfilePicture(ctx, jid, preview)
	now := time.Now()
	got := &store.ProfilePicture{FetchedAt: now}
	switch {
	case errors.Is(err, whatsapp.ErrNoPicture):
		got.Missing = store.PictureNone
	case errors.Is(err, whatsapp.ErrPictureHidden):
		got.Missing = store.PictureHidden
	case err != nil:
		return nil, err
	default:
		got.ID, got.URL = pic.ID, pic.URL
	}
	w.profileMu.Lock()
	p, err := w.storedProfile(ctx, jid)
	w.profileMu.Unlock()
	if err != nil {
		return nil, err
	}
	kept := p.Picture
	if preview {
		kept = p.Preview
	}
	if got.Missing == "" {
		if kept != nil && kept.ID == got.ID && kept.MediaID != "" {
			if _, err := w.Store.MediaInfo(ctx, kept.MediaID); err == nil {
				got.MediaID = kept.MediaID // the same image, kept already
			}
		}
		if got.MediaID == "" {
			if got.MediaID, err = w.fetchPicture(ctx, pic); err != nil {
				return nil, err
			}
		}
	}
	// Read again to save: a lookup of the profile may have run meanwhile.
	w.profileMu.Lock()
	defer w.profileMu.Unlock()
	if p, err = w.storedProfile(ctx, jid); err != nil {
		return nil, err
	}
	if preview {
		p.Preview = got
	} else {
		p.Picture = got
	}
	switch {
	case got.Missing == store.PictureNone:
		p.PictureID, p.Picture, p.Preview = "", got, got
	case got.Missing == "" && p.PictureID != got.ID:
		p.PictureID = got.ID
		if preview { // the other size is of the picture before
			p.Picture = nil
		} else {
			p.Preview = nil
		}
	}
	if err := w.Store.SaveProfile(ctx, p); err != nil {
		return nil, err
	}
	return withJSON(res, "picture", got)
}

// fetchPicture reads a picture's image from WhatsApp into the media
// store and returns its media id.
func (w *WhatsApp) fetchPicture(ctx context.Context, pic whatsapp.Picture) (string, error) {
	rd, err := w.Driver.FetchPicture(ctx, pic, maxPictureBytes)
	if err != nil {
		return "", err
	}
	defer rd.Close()
	name := "picture-" + pic.ID + ".jpg"
	if pic.Preview {
		name = "picture-" + pic.ID + "-preview.jpg"
	}
	id, err := w.Store.PutMedia(ctx, name, "image/jpeg", rd)
	if err != nil {
		return "", err
	}
	return id, nil
}

// lookupBusiness asks WhatsApp for jid's business profile and caches it,
// or that jid is not a business.
func (w *WhatsApp) lookupBusiness(ctx context.Context, jid string) (map[string]string, error) {
	n, res := w.paced(1)
	if n == 0 {
		return res, nil
	}
	bp, err := w.Driver.BusinessProfile(ctx, jid)
	notBusiness := errors.Is(err, whatsapp.ErrNotBusiness)
	if err != nil && !notBusiness {
		return nil, err
	}
	w.profileMu.Lock()
	defer w.profileMu.Unlock()
	p, err := w.storedProfile(ctx, jid)
	if err != nil {
		return nil, err
	}
	p.Business, p.NotBusiness, p.BusinessAt = nil, notBusiness, time.Now()
	if !notBusiness {
		p.Business = storedBusiness(bp)
	}
	if err := w.Store.SaveProfile(ctx, p); err != nil {
		return nil, err
	}
	if notBusiness {
		res["missing"] = "not_business"
		return res, nil
	}
	return withJSON(res, "business", p.Business)
}

func storedBusiness(bp whatsapp.BusinessProfile) *store.BusinessProfile {
	out := &store.BusinessProfile{Address: bp.Address, Email: bp.Email, Description: bp.Description,
		Websites: bp.Websites, Categories: bp.Categories, TimeZone: bp.TimeZone}
	for _, h := range bp.Hours {
		out.Hours = append(out.Hours, store.BusinessHours{Day: h.Day, Mode: h.Mode, Open: h.Open, Close: h.Close})
	}
	return out
}

// setProfile sets our push name and about text (those given), then keeps
// them on our own cached profile.
func (w *WhatsApp) setProfile(ctx context.Context, args map[string]string) error {
	name, setName := args["push_name"]
	about, setAbout := args["about"]
	if setName {
		if err := w.Driver.SetPushName(ctx, name); err != nil {
			return err
		}
	}
	if setAbout {
		if err := w.Driver.SetAbout(ctx, about); err != nil {
			return err
		}
	}
	return w.updateOwn(ctx, func(p *store.Profile) {
		if setName {
			p.PushName = name
		}
		if setAbout {
			p.About = about
		}
	})
}

// setProfilePicture sets our picture to the stored JPEG mediaID, or
// removes it, then keeps it on our own cached profile.
func (w *WhatsApp) setProfilePicture(ctx context.Context, mediaID string) (map[string]string, error) {
	var jpeg []byte
	if mediaID != "" {
		var err error
		if jpeg, err = w.Store.Media(ctx, mediaID); err != nil {
			return nil, err
		}
	}
	id, err := w.Driver.SetProfilePicture(ctx, jpeg)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	if err := w.updateOwn(ctx, func(p *store.Profile) {
		p.PictureID, p.Preview = id, nil
		p.Picture = &store.ProfilePicture{ID: id, MediaID: mediaID, FetchedAt: now}
		if mediaID == "" {
			p.Picture = &store.ProfilePicture{Missing: store.PictureNone, FetchedAt: now}
			p.Preview = p.Picture
		}
	}); err != nil {
		return nil, err
	}
	return map[string]string{"picture_id": id}, nil
}

// updateOwn changes our own cached profile.
func (w *WhatsApp) updateOwn(ctx context.Context, f func(p *store.Profile)) error {
	self := w.Session().JID
	if self == "" {
		return nil
	}
	w.profileMu.Lock()
	defer w.profileMu.Unlock()
	p, err := w.storedProfile(ctx, self)
	if err != nil {
		return err
	}
	f(&p)
	return w.Store.SaveProfile(ctx, p)
}

// onPictureChanged drops a changed picture from the cache (the next
// lookup asks WhatsApp for the new one) and announces the change.
func (w *WhatsApp) onPictureChanged(ctx context.Context, e *whatsapp.PictureChanged) error {
	ev := Entry{"profile.updated", profileEvent{JID: e.JID, Change: "picture", PictureID: e.ID, Removed: e.Removed, Author: e.Author}}
	w.profileMu.Lock()
	defer w.profileMu.Unlock()
	p, err := w.storedProfile(ctx, e.JID)
	if err != nil {
		return err
	}
	if p.FetchedAt.IsZero() && p.Picture == nil && p.Preview == nil && p.Business == nil && !p.NotBusiness && p.PushName == "" {
		return w.Events.Append(ctx, ev.Type, ev.Data) // nothing cached to drop
	}
	p.PictureID, p.Picture, p.Preview = e.ID, nil, nil
	if e.Removed {
		p.PictureID = ""
	}
	// The cache changed and the event appended in one step where the
	// store can (SQLite); a redelivery drops the picture again.
	return w.Events.AppendWith(ctx, func(ctx context.Context, _ int64) error {
		return w.Store.SaveProfile(ctx, p)
	}, ev)
}

// sandboxProfiles sets up the sandbox's profile directory from the JSON
// the worker checked: [{"jid", "lid", "about", "business_name",
// "picture" (base64), "picture_hidden", "business"}].
func sandboxProfiles(sb *whatsapp.Sandbox, list string) error {
	var entries []whatsapp.SandboxProfile
	if err := json.Unmarshal([]byte(list), &entries); err != nil {
		return err
	}
	sb.SetProfiles(entries)
	return nil
}
