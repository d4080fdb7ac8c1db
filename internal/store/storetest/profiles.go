package storetest

import (
	"context"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"app/internal/store"
)

var _ = add(
	"ProfilesAreReplacedAndReadByJID", testProfilesAreReplacedAndReadByJID,
)

// A profile is found by its JID with all it holds (the picture, the
// business profile), a second save replaces the first, and a JID never
// asked about is left out.
func testProfilesAreReplacedAndReadByJID(t *testing.T, h Harness) {
	st := h.Open(t)
	ctx := context.Background()
	at := time.Now().Add(-time.Hour).Truncate(time.Millisecond).UTC()
	alice, shop := "491701234567@s.whatsapp.net", "4930123456@s.whatsapp.net"
	if got, err := st.Profiles(ctx, []string{alice}); err != nil || len(got) != 0 {
		t.Fatalf("before any save: %+v, %v", got, err)
	}
	first := store.Profile{JID: alice, LID: aliceLID, About: "Hey there", PictureID: "1700000001", FetchedAt: at,
		Picture: &store.ProfilePicture{ID: "1700000001", URL: "https://pps.whatsapp.net/v/t61/a.jpg", MediaID: "m1", FetchedAt: at},
		Preview: &store.ProfilePicture{Missing: store.PictureHidden, FetchedAt: at}}
	biz := store.Profile{JID: shop, BusinessName: "Bäckerei", FetchedAt: at, BusinessAt: at,
		Business: &store.BusinessProfile{Address: "Hauptstr. 1", Email: "b@example.com", Description: "Brot",
			Websites: []string{"https://example.com"}, Categories: []string{"Bakery"}, TimeZone: "Europe/Berlin",
			Hours: []store.BusinessHours{{Day: "mon", Mode: "specific_hours", Open: "07:00", Close: "18:00"}, {Day: "sun", Mode: "open_24h"}}}}
	for _, p := range []store.Profile{first, biz} {
		if err := st.SaveProfile(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	later := at.Add(30 * time.Minute)
	second := store.Profile{JID: alice, About: "Busy", FetchedAt: later}
	if err := st.SaveProfile(ctx, second); err != nil {
		t.Fatal(err)
	}
	got, err := st.Profiles(ctx, []string{shop, alice, "15550009999@s.whatsapp.net"})
	if err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(got, func(a, b store.Profile) int { return strings.Compare(a.JID, b.JID) })
	want := []store.Profile{second, biz} // by JID
	if len(got) != len(want) {
		t.Fatalf("profiles %+v, want %+v", got, want)
	}
	for i := range want {
		g, w := got[i], want[i]
		g.Account, w.Account = "", ""
		// Times compared as instants; the rest as saved.
		if !g.FetchedAt.Equal(w.FetchedAt) || !g.BusinessAt.Equal(w.BusinessAt) {
			t.Errorf("profile %d: fetched %v/%v, want %v/%v", i, g.FetchedAt, g.BusinessAt, w.FetchedAt, w.BusinessAt)
		}
		g.FetchedAt, w.FetchedAt, g.BusinessAt, w.BusinessAt = time.Time{}, time.Time{}, time.Time{}, time.Time{}
		if !reflect.DeepEqual(g, w) {
			t.Errorf("profile %d:\n got %+v\nwant %+v", i, g, w)
		}
	}
	// The picture and its preview survive a save.
	if err := st.SaveProfile(ctx, first); err != nil {
		t.Fatal(err)
	}
	got, err = st.Profiles(ctx, []string{alice})
	if err != nil || len(got) != 1 {
		t.Fatalf("alice again: %+v, %v", got, err)
	}
	p := got[0]
	if p.Picture == nil || p.Picture.MediaID != "m1" || p.Picture.URL != first.Picture.URL || !p.Picture.FetchedAt.Equal(at) ||
		p.Preview == nil || p.Preview.Missing != store.PictureHidden || p.LID != aliceLID {
		t.Errorf("alice: %+v (picture %+v, preview %+v)", p, p.Picture, p.Preview)
	}
}
