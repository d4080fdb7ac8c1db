package whatsapp

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/proto/waVnameCert"
	"go.mau.fi/whatsmeow/types"
	"google.golang.org/protobuf/proto"
)

// GetUserInfo's answers become Profiles: the about text, the picture id,
// a business's verified name and the LID, each JID without its device;
// our own carries our push name, nobody else's.
func TestProfilesFromUserInfo(t *testing.T) {
	alice := types.NewJID("491701234567", types.DefaultUserServer)
	shop := types.NewJID("4930123456", types.DefaultUserServer)
	self := types.NewJID("15550000001", types.DefaultUserServer)
	other := types.NewJID("4930999999", types.DefaultUserServer)
	got := profiles(map[types.JID]types.UserInfo{
		alice: {Status: "Hey there", PictureID: "1700000001", LID: types.NewJID("201001234567", types.HiddenUserServer)},
		shop: {VerifiedName: &types.VerifiedName{Details: &waVnameCert.VerifiedNameCertificate_Details{
			VerifiedName: proto.String("Bäckerei Schmidt")}}},
		self:  {Status: "At work"},
		other: {},
	}, self, "Support", func(jid types.JID) string {
		if jid == other {
			return "Stored GmbH" // whatsmeow's copy, where UserInfo has none
		}
		return ""
	})
	slices.SortFunc(got, func(a, b Profile) int { return strings.Compare(a.JID, b.JID) })
	want := []Profile{
		{JID: "15550000001@s.whatsapp.net", About: "At work", PushName: "Support"},
		{JID: "491701234567@s.whatsapp.net", LID: "201001234567@lid", About: "Hey there", PictureID: "1700000001"},
		{JID: "4930123456@s.whatsapp.net", BusinessName: "Bäckerei Schmidt"},
		{JID: "4930999999@s.whatsapp.net", BusinessName: "Stored GmbH"},
	}
	if !slices.Equal(got, want) {
		t.Errorf("got %+v\nwant %+v", got, want)
	}
}

// whatsmeow's picture errors become ours (ErrNoPicture, ErrPictureHidden);
// others stay what they were.
func TestPictureErrors(t *testing.T) {
	wrapped := fmt.Errorf("%w: %w", whatsmeow.ErrProfilePictureUnauthorized, whatsmeow.ErrIQNotAuthorized)
	if err := pictureError("a", wrapped); !errors.Is(err, ErrPictureHidden) {
		t.Errorf("unauthorized: %v", err)
	}
	if err := pictureError("a", whatsmeow.ErrProfilePictureNotSet); !errors.Is(err, ErrNoPicture) {
		t.Errorf("not set: %v", err)
	}
	other := pictureError("a", whatsmeow.ErrIQTimedOut)
	if errors.Is(other, ErrNoPicture) || errors.Is(other, ErrPictureHidden) || !errors.Is(other, whatsmeow.ErrIQTimedOut) {
		t.Errorf("timeout: %v", other)
	}
}

// whatsmeow's answer for a user who is no business (its parser's error
// for a business_profile without a profile) is ErrNotBusiness; other
// failures stay what they were; a business's profile is mapped with its
// hours as HH:MM.
func TestBusinessProfiles(t *testing.T) {
	if got := businessError("a", errors.New("missing jid in business profile")); !errors.Is(got, ErrNotBusiness) {
		t.Errorf("no profile element: %v", got)
	}
	for _, err := range []error{whatsmeow.ErrIQTimedOut, whatsmeow.ErrIQNotFound,
		&whatsmeow.ElementMissingError{Tag: "business_profile", In: "response"}} {
		if got := businessError("a", err); errors.Is(got, ErrNotBusiness) || !errors.Is(got, err) {
			t.Errorf("%v is not 'not a business': %v", err, got)
		}
	}
	if _, ok := businessProfile("a", nil); ok {
		t.Error("no profile is a business")
	}
	got, ok := businessProfile("4930123456@s.whatsapp.net", &types.BusinessProfile{
		Address: "Hauptstr. 1", Email: "b@example.com", BusinessHoursTimeZone: "Europe/Berlin",
		Categories: []types.Category{{ID: "1", Name: "Bakery"}},
		BusinessHours: []types.BusinessHoursConfig{
			{DayOfWeek: "mon", Mode: "specific_hours", OpenTime: "420", CloseTime: "1080"},
			{DayOfWeek: "sun", Mode: "open_24h", OpenTime: "0", CloseTime: "0"},
		}})
	want := BusinessProfile{JID: "4930123456@s.whatsapp.net", Address: "Hauptstr. 1", Email: "b@example.com",
		TimeZone: "Europe/Berlin", Categories: []string{"Bakery"},
		Hours: []BusinessHours{{Day: "mon", Mode: "specific_hours", Open: "07:00", Close: "18:00"}, {Day: "sun", Mode: "open_24h"}}}
	if !ok || fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("got %+v, %v\nwant %+v", got, ok, want)
	}
}

// Only WhatsApp's CDN is fetched from.
func TestPictureURL(t *testing.T) {
	for _, u := range []string{"https://pps.whatsapp.net/v/t61.24694-24/1.jpg?oe=1", "https://whatsapp.net/x"} {
		if err := pictureURL(u); err != nil {
			t.Errorf("%s: %v", u, err)
		}
	}
	for _, u := range []string{"http://pps.whatsapp.net/x", "https://evilwhatsapp.net/x", "https://169.254.169.254/",
		"https://pps.whatsapp.net.example.com/x", "file:///etc/passwd", ""} {
		if err := pictureURL(u); err == nil {
			t.Errorf("%s: taken", u)
		}
	}
}
