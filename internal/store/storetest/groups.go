package storetest

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"app/internal/store"
)

var _ = add(
	"GroupsComeBackAsSavedAndListByName", testGroupsComeBackAsSavedAndListByName,
	"GroupListMarksTheGroupsNotInItLeft", testGroupListMarksTheGroupsNotInItLeft,
	"GroupsUnannouncedAreThosePastTheLogEnd", testGroupsUnannounced,
)

const (
	groupA = "120363000000000001@g.us"
	groupB = "120363000000000002@g.us"
	groupC = "120363000000000003@g.us"
)

func names(gs []store.Group) []string {
	var out []string
	for _, g := range gs {
		out = append(out, g.Name)
	}
	return out
}

// A group comes back as saved, by its JID; the list holds only the groups
// we are in, by name then JID, in pages after a cursor.
func testGroupsComeBackAsSavedAndListByName(t *testing.T, h Harness) {
	st := h.Open(t)
	ctx := context.Background()
	if _, err := st.Group(ctx, family); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("group before any saved: %v, want ErrNotFound", err)
	}
	at := ms(1_750_000_000_000)
	fam := store.Group{JID: family, Name: "Family", NameSetAt: at, NameSetBy: alice, Description: "Sundays",
		Owner: alice, CreatedAt: at, Announce: true, JoinApproval: true, Member: true, FetchedAt: at,
		InviteLink:   "https://chat.whatsapp.com/AbC123",
		Participants: []store.GroupParticipant{{JID: alice, LID: aliceLID, Admin: true, SuperAdmin: true}, {JID: bob}}}
	for _, g := range []store.Group{fam,
		{JID: groupB, Name: "Book club", Member: true},
		{JID: groupA, Name: "Book club", Member: true},
		{JID: groupC, Name: "Archive", Member: false}} {
		if err := st.SaveGroup(ctx, g); err != nil {
			t.Fatal(err)
		}
	}
	got, err := st.Group(ctx, family)
	if err != nil {
		t.Fatal(err)
	}
	if got.Name != "Family" || !got.NameSetAt.Equal(at) || got.NameSetBy != alice || got.Description != "Sundays" ||
		got.Owner != alice || !got.CreatedAt.Equal(at) || !got.Announce || got.Locked || !got.JoinApproval ||
		!got.Member || !got.FetchedAt.Equal(at) || got.InviteLink != fam.InviteLink || got.UpdatedAt.IsZero() ||
		!slices.Equal(got.Participants, fam.Participants) {
		t.Errorf("group %+v, want %+v", got, fam)
	}
	all, err := st.GroupsPage(ctx, "", "", 0)
	if err != nil {
		t.Fatal(err)
	}
	var jids []string
	for _, g := range all {
		jids = append(jids, g.JID)
	}
	if want := []string{groupA, groupB, family}; !slices.Equal(jids, want) {
		t.Errorf("groups %v (%v), want %v: ours only, by name then JID", jids, names(all), want)
	}
	first, err := st.GroupsPage(ctx, "", "", 1)
	if err != nil || len(first) != 1 || first[0].JID != groupA {
		t.Fatalf("first page %v %v, want %s", names(first), err, groupA)
	}
	rest, err := st.GroupsPage(ctx, first[0].Name, first[0].JID, 5)
	if err != nil || len(rest) != 2 || rest[0].JID != groupB || rest[1].JID != family {
		t.Errorf("the page after %s: %v %v, want %s and %s", groupA, names(rest), err, groupB, family)
	}
	// We left: off the list, still readable.
	fam.Member = false
	if err := st.SaveGroup(ctx, fam); err != nil {
		t.Fatal(err)
	}
	if g, err := st.Group(ctx, family); err != nil || g.Member {
		t.Errorf("group after we left: %+v %v, want it kept, not a member", g, err)
	}
	if gs, err := st.GroupsPage(ctx, "", "", 0); err != nil || len(gs) != 2 {
		t.Errorf("groups after we left one: %v %v, want 2", names(gs), err)
	}
}

// The list WhatsApp gives replaces the groups in it, marks the others we
// were in as left, and is dated.
func testGroupListMarksTheGroupsNotInItLeft(t *testing.T, h Harness) {
	st := h.Open(t)
	ctx := context.Background()
	if at, err := st.GroupListFetchedAt(ctx); err != nil || !at.IsZero() {
		t.Fatalf("list time before any: %v %v, want zero", at, err)
	}
	for _, g := range []store.Group{{JID: groupA, Name: "A", Member: true}, {JID: groupB, Name: "B", Member: true}} {
		if err := st.SaveGroup(ctx, g); err != nil {
			t.Fatal(err)
		}
	}
	at := ms(1_750_000_000_000)
	if err := st.SaveGroupList(ctx, []store.Group{{JID: groupA, Name: "A renamed", Member: true, FetchedAt: at},
		{JID: groupC, Name: "C", Member: true, FetchedAt: at}}, at); err != nil {
		t.Fatal(err)
	}
	gs, err := st.GroupsPage(ctx, "", "", 0)
	if err != nil {
		t.Fatal(err)
	}
	if got := names(gs); !slices.Equal(got, []string{"A renamed", "C"}) {
		t.Errorf("groups %v, want [A renamed C]", got)
	}
	if b, err := st.Group(ctx, groupB); err != nil || b.Member || b.Name != "B" {
		t.Errorf("group not in the list: %+v %v, want kept as left", b, err)
	}
	if got, err := st.GroupListFetchedAt(ctx); err != nil || !got.Equal(at) {
		t.Errorf("list time %v %v, want %v", got, err, at)
	}
	if err := st.SaveGroupList(ctx, nil, at.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if gs, err := st.GroupsPage(ctx, "", "", 0); err != nil || len(gs) != 0 {
		t.Errorf("groups after an empty list: %v %v, want none", names(gs), err)
	}
}

// A group stored for a position past the log's end is found with the
// events it announces; one at or before it is not.
func testGroupsUnannounced(t *testing.T, h Harness) {
	st := h.Open(t)
	ctx := context.Background()
	evs := []store.GroupEvent{{Type: "group.updated", Data: `{"jid":"` + groupA + `"}`}}
	if err := st.SaveGroup(ctx, store.Group{JID: groupA, Name: "A", Member: true, EventSeq: 12, Announced: evs}); err != nil {
		t.Fatal(err)
	}
	if err := st.SaveGroup(ctx, store.Group{JID: groupB, Name: "B", Member: true}); err != nil {
		t.Fatal(err)
	}
	got, err := st.GroupsUnannounced(ctx, 11)
	if err != nil || len(got) != 1 || got[0].JID != groupA || !slices.Equal(got[0].Announced, evs) {
		t.Errorf("unannounced after 11: %+v %v, want %s with its events", got, err, groupA)
	}
	if got, err := st.GroupsUnannounced(ctx, 12); err != nil || len(got) != 0 {
		t.Errorf("unannounced after 12: %+v %v, want none", got, err)
	}
}
