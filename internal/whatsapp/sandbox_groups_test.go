package whatsapp

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"app/internal/testutil"
)

// groupChanges are the group changes among evs, each as a line.
func groupChanges(evs []Event) []string {
	var out []string
	for _, e := range evs {
		if gc, ok := e.(*GroupChanged); ok {
			s := gc.JID[:6]
			if gc.Group != nil {
				s += " whole"
			}
			if gc.InviteReset {
				s += " reset"
			}
			if gc.Name != nil {
				s += " name=" + *gc.Name
			}
			for _, l := range []struct {
				k string
				v []string
			}{{"joined", gc.Joined}, {"left", gc.Left}, {"promoted", gc.Promoted}} {
				if len(l.v) > 0 {
					s += fmt.Sprint(" ", l.k, "=", l.v)
				}
			}
			out = append(out, s)
		}
	}
	return out
}

// The sandbox enforces membership and admin rights as WhatsApp does,
// answers each participant of a change with its outcome, and reports
// every change, ours and those made elsewhere, as a GroupChanged.
func TestSandboxGroups(t *testing.T) {
	sb, err := NewSandbox(SandboxConfig{Paired: SandboxJID, ConnectDelay: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := sb.JoinedGroups(ctx); !errors.Is(err, ErrNotConnected) {
		t.Errorf("groups before Run: %v, want ErrNotConnected", err)
	}
	const (
		alice = "491701234567@s.whatsapp.net"
		bob   = "491702345678@s.whatsapp.net"
		carol = "491703456789@s.whatsapp.net"
		gone  = "491709999999@s.whatsapp.net"
	)
	sb.SetDirectory([]NumberInfo{{Query: "+491709999999"}})
	sb.RefuseAdds(carol)
	jids := sb.SetGroups([]SandboxGroup{
		{Group: Group{JID: "120363000000000001@g.us", Name: "Members", Participants: []Participant{{JID: alice, Admin: true}}}},
		{Group: Group{JID: "120363000000000002@g.us", Name: "Old", Participants: []Participant{{JID: alice}}}, Left: true},
	})
	members, old := jids[0], jids[1]
	evs := runSandbox(t, sb)
	testutil.Eventually(t, 5*time.Second, "connected", func() (bool, string) {
		return sb.Session().State == StateConnected, string(sb.Session().State)
	})

	g, res, err := sb.CreateGroup(ctx, "Ours", []string{alice, carol, gone, alice})
	if err != nil {
		t.Fatal(err)
	}
	var outcomes []string
	for _, r := range res {
		outcomes = append(outcomes, fmt.Sprint(r.JID[:12], " ", r.OK, " ", r.Code, " ", r.Invite != ""))
	}
	want := []string{"491701234567 true 0 false", "491703456789 false 403 true", "491709999999 false 404 false", "491701234567 false 409 false"}
	if !slices.Equal(outcomes, want) {
		t.Errorf("create outcomes %q, want %q", outcomes, want)
	}
	if len(g.Participants) != 2 || g.Owner != SandboxJID {
		t.Errorf("created %+v, want us and alice, we the owner", g)
	}
	if _, err := sb.UpdateParticipants(ctx, members, ParticipantPromote, []string{bob}); !errors.Is(err, ErrNotGroupAdmin) {
		t.Errorf("promote where we are no admin: %v, want ErrNotGroupAdmin", err)
	}
	if _, err := sb.GroupInfo(ctx, old); !errors.Is(err, ErrNotInGroup) {
		t.Errorf("info of a group we left: %v, want ErrNotInGroup", err)
	}
	if _, err := sb.GroupInfo(ctx, "120363999999999999@g.us"); !errors.Is(err, ErrGroupNotFound) {
		t.Errorf("info of no group: %v, want ErrGroupNotFound", err)
	}
	link, err := sb.InviteLink(ctx, g.JID, false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sb.InviteLink(ctx, g.JID, true); err != nil {
		t.Fatal(err)
	}
	if _, err := sb.JoinGroup(ctx, link); !errors.Is(err, ErrInviteInvalid) {
		t.Errorf("join by a reset link: %v, want ErrInviteInvalid", err)
	}
	name := "Renamed"
	if err := sb.ChangeGroup(GroupChanged{JID: members, Sender: alice, Name: &name, Joined: []string{bob}}, nil); err != nil {
		t.Fatal(err)
	}
	if err := sb.LeaveGroup(ctx, members); err != nil {
		t.Fatal(err)
	}
	if gs, err := sb.JoinedGroups(ctx); err != nil || len(gs) != 1 || gs[0].JID != g.JID {
		t.Errorf("our groups %+v %v, want the one we created", gs, err)
	}
	testutil.Eventually(t, 5*time.Second, "four group changes", func() (bool, string) {
		return len(groupChanges(evs())) == 4, fmt.Sprint(groupChanges(evs()))
	})
	got := groupChanges(evs())
	wantEv := []string{"120363 whole", "120363 reset", "120363 name=Renamed joined=[" + bob + "]", "120363 left=[" + SandboxJID + "]"}
	if !slices.Equal(got, wantEv) {
		t.Errorf("changes %q, want %q", got, wantEv)
	}
}
