package whatsapp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/appstate"
	"go.mau.fi/whatsmeow/types"
)

// Profiles (issue 19): users' about text, pictures and business profiles
// (usync queries and IQs), and our own push name (an app-state patch),
// about text and picture.

// Profiles implements Driver with one usync query (GetUserInfo), which
// also fills whatsmeow's LID map. Our own profile carries our push name,
// as whatsmeow keeps it.
func (d *Whatsmeow) Profiles(ctx context.Context, jids []string) ([]Profile, error) {
	cli, err := d.connected()
	if err != nil {
		return nil, err
	}
	targets := make([]types.JID, 0, len(jids))
	for _, j := range jids {
		t, err := userTarget(j)
		if err != nil {
			return nil, fmt.Errorf("whatsapp: profiles: %w", err)
		}
		targets = append(targets, t)
	}
	got, err := cli.GetUserInfo(ctx, targets)
	if err != nil {
		return nil, fmt.Errorf("whatsapp: profiles: %w", err)
	}
	var self types.JID
	pushName := ""
	if cli.Store != nil && cli.Store.ID != nil {
		self, pushName = cli.Store.ID.ToNonAD(), cli.Store.PushName
	}
	return profiles(got, self, pushName, func(jid types.JID) string {
		if cli.Store == nil || cli.Store.Contacts == nil {
			return ""
		}
		c, err := cli.Store.Contacts.GetContact(ctx, jid)
		if err != nil {
			d.log.Warn().Err(err).Str("jid", jid.String()).Msg("Cannot read a business name from the device store; the profile goes without it.")
			return ""
		}
		return c.BusinessName
	}), nil
}

// profiles maps GetUserInfo's answers; self, our own JID, gets pushName.
// GetUserInfo parses a business's verified name but does not put it in
// UserInfo.VerifiedName (whatsmeow of 2025-12): it stores it as the
// contact's business name, which businessName reads. (A name once stored
// stays after its user stopped being a business; whatsmeow never clears
// it.)
func profiles(got map[types.JID]types.UserInfo, self types.JID, pushName string, businessName func(types.JID) string) []Profile {
	out := make([]Profile, 0, len(got))
	for jid, info := range got {
		p := Profile{JID: jid.ToNonAD().String(), About: info.Status, PictureID: info.PictureID}
		if !info.LID.IsEmpty() {
			p.LID = info.LID.ToNonAD().String()
		}
		if info.VerifiedName != nil && info.VerifiedName.Details != nil {
			p.BusinessName = info.VerifiedName.Details.GetVerifiedName()
		} else {
			p.BusinessName = businessName(jid.ToNonAD())
		}
		if !self.IsEmpty() && jid.ToNonAD() == self {
			p.PushName = pushName
		}
		out = append(out, p)
	}
	return out
}

// ProfilePicture implements Driver.
func (d *Whatsmeow) ProfilePicture(ctx context.Context, jid string, preview bool) (Picture, error) {
	cli, err := d.connected()
	if err != nil {
		return Picture{}, err
	}
	t, err := parseRecipient(jid)
	if err != nil {
		return Picture{}, fmt.Errorf("whatsapp: profile picture: %w", err)
	}
	info, err := cli.GetProfilePictureInfo(ctx, t, &whatsmeow.GetProfilePictureParams{Preview: preview})
	if err != nil {
		return Picture{}, pictureError(jid, err)
	}
	if info == nil { // only with an ExistingID, which we do not pass
		return Picture{}, fmt.Errorf("whatsapp: profile picture of %s: %w", jid, ErrNoPicture)
	}
	return Picture{ID: info.ID, URL: info.URL, Preview: preview}, nil
}

// pictureError names whatsmeow's answers for a picture there is none of.
func pictureError(jid string, err error) error {
	switch {
	case errors.Is(err, whatsmeow.ErrProfilePictureNotSet):
		return fmt.Errorf("whatsapp: profile picture of %s: %w", jid, ErrNoPicture)
	case errors.Is(err, whatsmeow.ErrProfilePictureUnauthorized):
		return fmt.Errorf("whatsapp: profile picture of %s: %w", jid, ErrPictureHidden)
	}
	return fmt.Errorf("whatsapp: profile picture of %s: %w", jid, err)
}

// pictureHTTP fetches pictures from WhatsApp's CDN: whatsmeow keeps its
// media client to itself, and a picture is a plain GET of a signed URL.
var pictureHTTP = newPictureClient(cloneDefaultTransport())

// newPictureClient is the client of pictureHTTP over transport: it
// follows a redirect only to WhatsApp's CDN, as FetchPicture takes a URL
// only of it.
func newPictureClient(transport http.RoundTripper) *http.Client {
	return &http.Client{Transport: transport, Timeout: time.Minute,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= 5 {
				return errors.New("whatsapp: fetch picture: too many redirects")
			}
			return pictureURL(req.URL.String())
		}}
}

// errPictureTooLarge is what a picture's reader fails with past maxBytes.
var errPictureTooLarge = errors.New("whatsapp: the picture is larger than allowed")

// FetchPicture implements Driver: a GET of the picture's URL, which must
// be WhatsApp's (https, a host under whatsapp.net), read to at most
// maxBytes.
func (d *Whatsmeow) FetchPicture(ctx context.Context, p Picture, maxBytes int64) (io.ReadCloser, error) {
	if err := pictureURL(p.URL); err != nil {
		return nil, err
	}
	if maxBytes <= 0 {
		return nil, errors.New("whatsapp: fetch picture: no byte limit")
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.URL, nil)
	if err != nil {
		return nil, fmt.Errorf("whatsapp: fetch picture: %w", err)
	}
	resp, err := pictureHTTP.Do(req)
	if err != nil {
		return nil, fmt.Errorf("whatsapp: fetch picture: %w", err)
	}
	switch {
	case resp.StatusCode != http.StatusOK:
		_ = resp.Body.Close()
		if resp.StatusCode == http.StatusForbidden || resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusGone {
			// The signed URL expired: ProfilePicture gives a new one.
			return nil, fmt.Errorf("whatsapp: fetch picture: %s: %w", resp.Status, ErrMediaGone)
		}
		return nil, fmt.Errorf("whatsapp: fetch picture: %s", resp.Status)
	case resp.ContentLength > maxBytes:
		_ = resp.Body.Close()
		return nil, fmt.Errorf("%w: %d bytes, limit %d", errPictureTooLarge, resp.ContentLength, maxBytes)
	}
	return &pictureBody{limitedBody{ReadCloser: resp.Body, left: maxBytes}}, nil
}

// pictureBody is a picture's body, read to at most its limit: past it,
// errPictureTooLarge (as when the length said so before).
type pictureBody struct{ limitedBody }

func (b *pictureBody) Read(p []byte) (int, error) {
	n, err := b.limitedBody.Read(p)
	if errors.Is(err, errMediaTooLarge) {
		err = errPictureTooLarge
	}
	return n, err
}

// pictureURL refuses a URL that is not WhatsApp's CDN: the fetch runs
// inside our network.
func pictureURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || u.Scheme != "https" || !(u.Hostname() == "whatsapp.net" || strings.HasSuffix(u.Hostname(), ".whatsapp.net")) {
		return fmt.Errorf("whatsapp: fetch picture: %q is not a picture on WhatsApp's servers", s)
	}
	return nil
}

// BusinessProfile implements Driver.
func (d *Whatsmeow) BusinessProfile(ctx context.Context, jid string) (BusinessProfile, error) {
	cli, err := d.connected()
	if err != nil {
		return BusinessProfile{}, err
	}
	t, err := userTarget(jid)
	if err != nil {
		return BusinessProfile{}, fmt.Errorf("whatsapp: business profile: %w", err)
	}
	bp, err := cli.GetBusinessProfile(ctx, t)
	if err != nil {
		return BusinessProfile{}, businessError(jid, err)
	}
	out, ok := businessProfile(jid, bp)
	if !ok {
		return BusinessProfile{}, fmt.Errorf("whatsapp: business profile of %s: %w", jid, ErrNotBusiness)
	}
	return out, nil
}

// businessError names whatsmeow's answer for a user who is no business.
// WhatsApp answers them with a business_profile holding no profile
// element, and whatsmeow's parser fails on the profile's missing jid with
// errNoBusinessProfile's text (a plain errors.New of its own, so matched
// by text; the wire test pins it). Anything else (an IQ error, an answer
// without business_profile) is a failure, not a verdict.
func businessError(jid string, err error) error {
	if err.Error() == errNoBusinessProfile {
		return fmt.Errorf("whatsapp: business profile of %s: %w", jid, ErrNotBusiness)
	}
	return fmt.Errorf("whatsapp: business profile of %s: %w", jid, err)
}

// errNoBusinessProfile is the text of whatsmeow's parseBusinessProfile
// error for an answer without a profile element.
const errNoBusinessProfile = "missing jid in business profile"

// businessProfile maps GetBusinessProfile's answer: a profile element,
// which WhatsApp sends for businesses only (what it holds is what the
// business filled in). whatsmeow does not read the description and
// websites, which stay empty.
func businessProfile(jid string, bp *types.BusinessProfile) (BusinessProfile, bool) {
	if bp == nil {
		return BusinessProfile{}, false
	}
	out := BusinessProfile{JID: jid, Address: bp.Address, Email: bp.Email, TimeZone: bp.BusinessHoursTimeZone}
	for _, c := range bp.Categories {
		if c.Name != "" {
			out.Categories = append(out.Categories, c.Name)
		}
	}
	for _, h := range bp.BusinessHours {
		bh := BusinessHours{Day: h.DayOfWeek, Mode: h.Mode}
		if h.Mode == "specific_hours" {
			bh.Open, bh.Close = clockTime(h.OpenTime), clockTime(h.CloseTime)
		}
		out.Hours = append(out.Hours, bh)
	}
	return out, true
}

// clockTime is WhatsApp's time of day (minutes after midnight) as HH:MM;
// anything else as it came.
func clockTime(minutes string) string {
	m, err := strconv.Atoi(minutes)
	if err != nil || m < 0 || m > 24*60 {
		return minutes
	}
	return fmt.Sprintf("%02d:%02d", m/60, m%60)
}

// SetPushName implements Driver: an app-state patch, which whatsmeow
// syncs to the account's devices; whatsmeow's own copy (sent with our
// presence) is updated after WhatsApp took it.
func (d *Whatsmeow) SetPushName(ctx context.Context, name string) error {
	cli, err := d.connected()
	if err != nil {
		return err
	}
	if err := cli.SendAppState(ctx, appstate.BuildSettingPushName(name)); err != nil {
		return fmt.Errorf("whatsapp: set push name: %w", err)
	}
	if cli.Store != nil {
		cli.Store.PushName = name
		if err := cli.Store.Save(ctx); err != nil {
			d.log.Warn().Err(err).Msg("Cannot save the new push name in the device store; WhatsApp has it.")
		}
	}
	return nil
}

// SetAbout implements Driver.
func (d *Whatsmeow) SetAbout(ctx context.Context, text string) error {
	cli, err := d.connected()
	if err != nil {
		return err
	}
	if err := cli.SetStatusMessage(ctx, text); err != nil {
		return fmt.Errorf("whatsapp: set about: %w", err)
	}
	return nil
}

// SetProfilePicture implements Driver: whatsmeow's SetGroupPhoto with no
// group sets our own; nil removes it (whatsmeow then answers "remove",
// not an id).
func (d *Whatsmeow) SetProfilePicture(ctx context.Context, jpeg []byte) (string, error) {
	cli, err := d.connected()
	if err != nil {
		return "", err
	}
	id, err := cli.SetGroupPhoto(ctx, types.JID{}, jpeg)
	if err != nil {
		return "", fmt.Errorf("whatsapp: set profile picture: %w", err)
	}
	if jpeg == nil {
		return "", nil
	}
	return id, nil
}

// userTarget is jid as a user (a phone-number JID or a LID), never a group.
func userTarget(jid string) (types.JID, error) {
	t, err := parseRecipient(jid)
	if err != nil {
		return types.JID{}, err
	}
	if t.Server != types.DefaultUserServer && t.Server != types.HiddenUserServer {
		return types.JID{}, errors.New("not a user: " + jid)
	}
	return t, nil
}
