package storetest

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"app/internal/msg"
	"app/internal/store"
)

var _ = add(
	"LIDPairIsFoundByEitherForm", testLIDPairIsFoundByEitherForm,
	"LIDPairNewestMappingWins", testLIDPairNewestMappingWins,
	"ContactKeepsNumberLIDAndPushName", testContactKeepsNumberLIDAndPushName,
	"IncomingMediaPendingAreListedSince", testIncomingMediaPendingAreListedSince,
)

const (
	aliceLID = "201001234567@lid"
	bobLID   = "201009876543@lid"
)

func wantPair(t *testing.T, st store.Store, jid, pn, lid string) {
	t.Helper()
	p, err := st.LIDPair(context.Background(), jid)
	if err != nil || p.PN != pn || p.LID != lid {
		t.Fatalf("LIDPair(%s) = %+v, %v; want %s and %s", jid, p, err, pn, lid)
	}
}

func wantNoPair(t *testing.T, st store.Store, jid string) {
	t.Helper()
	if p, err := st.LIDPair(context.Background(), jid); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("LIDPair(%s) = %+v, %v; want ErrNotFound", jid, p, err)
	}
}

// A message names its sender by number or by LID: the pair is found
// from either, and saving it again changes nothing.
func testLIDPairIsFoundByEitherForm(t *testing.T, h Harness) {
	st := h.Open(t)
	ctx := context.Background()
	wantNoPair(t, st, alice)
	wantNoPair(t, st, aliceLID)
	before := time.Now().Add(-time.Second)
	for range 2 {
		if err := st.SaveLIDPair(ctx, alice, aliceLID); err != nil {
			t.Fatal(err)
		}
	}
	wantPair(t, st, alice, alice, aliceLID)
	wantPair(t, st, aliceLID, alice, aliceLID)
	if p, _ := st.LIDPair(ctx, alice); p.UpdatedAt.Before(before) {
		t.Errorf("pair stamped %v, want after %v", p.UpdatedAt, before)
	}
	wantNoPair(t, st, bob)
	wantNoPair(t, st, bobLID)
	// The forms are not interchangeable: a LID where the number goes is refused.
	if err := st.SaveLIDPair(ctx, aliceLID, alice); err == nil {
		t.Error("a pair with the number and LID swapped was saved")
	}
	if err := st.SaveLIDPair(ctx, family, bobLID); err == nil {
		t.Error("a group saved as a number")
	}
	wantNoPair(t, st, bobLID)
}

// WhatsApp may map a number to a new LID, or a LID to a new number: the
// newest pair saved wins, and the old partner of each is no longer found.
func testLIDPairNewestMappingWins(t *testing.T, h Harness) {
	st := h.Open(t)
	ctx := context.Background()
	save := func(pn, lid string) {
		t.Helper()
		if err := st.SaveLIDPair(ctx, pn, lid); err != nil {
			t.Fatal(err)
		}
	}
	save(alice, aliceLID)
	save(alice, carol) // alice's number, a new LID
	wantPair(t, st, alice, alice, carol)
	wantPair(t, st, carol, alice, carol)
	wantNoPair(t, st, aliceLID)

	save(bob, bobLID)
	save(alice, bobLID) // bob's LID now alice's number: both old pairs go
	wantPair(t, st, alice, alice, bobLID)
	wantPair(t, st, bobLID, alice, bobLID)
	wantNoPair(t, st, bob)
	wantNoPair(t, st, carol)
}

// A contact's push name comes with each message, its number and LID when
// learned: saving one keeps the others.
func testContactKeepsNumberLIDAndPushName(t *testing.T, h Harness) {
	st := h.Open(t)
	ctx := context.Background()
	if err := st.SaveContactAddr(ctx, aliceLID, "", aliceLID); err != nil {
		t.Fatal(err)
	}
	if c, err := st.Contact(ctx, aliceLID); err != nil || c.LID != aliceLID || c.PN != "" || c.PushName != "" {
		t.Fatalf("contact after its LID = %+v, %v", c, err)
	}
	if err := st.SaveContactPushName(ctx, aliceLID, "Alice"); err != nil {
		t.Fatal(err)
	}
	if err := st.SaveContactAddr(ctx, aliceLID, alice, ""); err != nil {
		t.Fatal(err)
	}
	c, err := st.Contact(ctx, aliceLID)
	if err != nil || c.JID != aliceLID || c.PushName != "Alice" || c.PN != alice || c.LID != aliceLID || c.UpdatedAt.IsZero() {
		t.Fatalf("contact = %+v, %v; want Alice with number and LID", c, err)
	}
	if err := st.SaveContactPushName(ctx, aliceLID, "Alice B."); err != nil {
		t.Fatal(err)
	}
	if c, err := st.Contact(ctx, aliceLID); err != nil || c.PushName != "Alice B." || c.PN != alice || c.LID != aliceLID {
		t.Fatalf("contact after a new push name = %+v, %v; want the number and LID kept", c, err)
	}
	// A contact known only by its push name gets its forms later.
	if err := st.SaveContactPushName(ctx, bob, "Bob"); err != nil {
		t.Fatal(err)
	}
	if err := st.SaveContactAddr(ctx, bob, bob, bobLID); err != nil {
		t.Fatal(err)
	}
	if c, err := st.Contact(ctx, bob); err != nil || c.PushName != "Bob" || c.PN != bob || c.LID != bobLID {
		t.Fatalf("bob = %+v, %v", c, err)
	}
}

// A primary that takes over asks again for the files still pending: the
// messages whose media is pending, received since a time, oldest first;
// once the file came (or the phone said it cannot), the message is no
// longer listed.
func testIncomingMediaPendingAreListedSince(t *testing.T, h Harness) {
	st := h.Open(t)
	ctx := context.Background()
	now := ms(1_750_000_000_000)
	pending := func() *store.MediaRef {
		return &store.MediaRef{MimeType: "image/jpeg", Size: 4, Pending: true, Retry: []byte("ticket")}
	}
	save := func(waID string, received time.Time, media *store.MediaRef) store.IncomingMessage {
		t.Helper()
		m := store.IncomingMessage{WAID: waID, Chat: alice, Sender: alice, Body: msg.Body{Kind: msg.KindImage}, Media: media,
			SentAt: received.Add(-time.Second), ReceivedAt: received, EventSeq: 1}
		if _, err := st.SaveIncoming(ctx, m); err != nil {
			t.Fatal(err)
		}
		m.Key = alice + "/" + alice + "/" + waID
		return m
	}
	list := func(since time.Time, limit int) []string {
		t.Helper()
		ms, err := st.IncomingMediaPending(ctx, since, limit)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, m := range ms {
			if m.Media == nil || !m.Media.Pending || string(m.Media.Retry) != "ticket" {
				t.Errorf("listed %s with media %+v, want it pending with its retry ticket", m.WAID, m.Media)
			}
			ids = append(ids, m.WAID)
		}
		return ids
	}
	save("old", now.Add(-30*time.Hour), pending())
	b := save("b", now.Add(-2*time.Hour), pending())
	save("a", now.Add(-3*time.Hour), pending())
	save("fetched", now.Add(-time.Hour), &store.MediaRef{MimeType: "image/jpeg", Size: 4, FileID: "f1"})
	save("text", now.Add(-time.Hour), nil)
	// Stored while being fetched, then found gone: pending from then on.
	late := save("late", now.Add(-time.Minute), &store.MediaRef{MimeType: "image/jpeg", Size: 4})
	if err := st.SetIncomingMedia(ctx, late.Key, *pending(), 2); err != nil {
		t.Fatal(err)
	}
	if got := list(now.Add(-24*time.Hour), 10); !slices.Equal(got, []string{"a", "b", "late"}) {
		t.Fatalf("pending since a day = %v, want a, b, late (oldest first)", got)
	}
	if got := list(now.Add(-24*time.Hour), 2); !slices.Equal(got, []string{"a", "b"}) {
		t.Fatalf("limited to 2 = %v, want a, b", got)
	}
	// The file came for b; the phone could not send late's.
	b.Media = &store.MediaRef{MimeType: "image/jpeg", Size: 4, FileID: "f2"}
	if err := st.UpdateIncoming(ctx, b); err != nil {
		t.Fatal(err)
	}
	if err := st.SetIncomingMedia(ctx, late.Key, store.MediaRef{MimeType: "image/jpeg", Size: 4, Skipped: "the phone no longer has it"}, 3); err != nil {
		t.Fatal(err)
	}
	if got := list(now.Add(-24*time.Hour), 10); !slices.Equal(got, []string{"a"}) {
		t.Fatalf("pending after two settled = %v, want a", got)
	}
	if got := list(time.Time{}, 10); !slices.Equal(got, []string{"old", "a"}) {
		t.Fatalf("pending ever = %v, want old, a", got)
	}
}
