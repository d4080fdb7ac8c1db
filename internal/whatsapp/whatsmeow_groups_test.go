package whatsapp

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"go.mau.fi/whatsmeow"
	waBinary "go.mau.fi/whatsmeow/binary"
	"go.mau.fi/whatsmeow/types"
)

// More people of the group tests: Carol, whose number and LID a group
// answer gives together, and a community.
var (
	carolPN   = types.NewJID("33612345678", types.DefaultUserServer)
	carolLID  = types.NewJID("77000444", types.HiddenUserServer)
	community = types.NewJID("120363999999999999", types.GroupServer)
)

// groupNode is a <group> node as WhatsApp answers a group query.
func groupNode(id types.JID, attrs waBinary.Attrs, children ...waBinary.Node) waBinary.Node {
	a := waBinary.Attrs{"id": id.User, "creation": "1740744000"}
	for k, v := range attrs {
		a[k] = v
	}
	return waBinary.Node{Tag: "group", Attrs: a, Content: children}
}

func participantNode(attrs waBinary.Attrs, children ...waBinary.Node) waBinary.Node {
	n := waBinary.Node{Tag: "participant", Attrs: attrs}
	if len(children) > 0 {
		n.Content = children
	}
	return n
}

// parsedGroup is node as whatsmeow's own parser makes it a GroupInfo.
func parsedGroup(t *testing.T, cli *whatsmeow.Client, node waBinary.Node) *types.GroupInfo {
	t.Helper()
	//lint:ignore SA1019 whatsmeow's own parser of group answers, so the test starts where WhatsApp does
	info, err := cli.DangerousInternals().ParseGroupNode(&node)
	if err != nil {
		t.Fatalf("whatsmeow cannot parse the group node: %v", err)
	}
	return info
}

// familyNode is a LID-addressed group in a community, with every setting
// on: we are its super admin, Anna an admin (her number from the LID map),
// Bob a member whose number nobody told us.
func familyNode() waBinary.Node {
	return groupNode(group, waBinary.Attrs{
		"subject": "Family", "s_t": "1740830400", "s_o": annaLID, "s_o_pn": anna,
		"creator": ourLID.ToNonAD(), "creator_pn": ourPN, "addressing_mode": "lid", "size": "3",
	},
		participantNode(waBinary.Attrs{"jid": ourLID.ToNonAD(), "type": "superadmin", "phone_number": ourPN}),
		participantNode(waBinary.Attrs{"jid": annaLID, "type": "admin"}),
		participantNode(waBinary.Attrs{"jid": bobLID}),
		waBinary.Node{Tag: "description", Attrs: waBinary.Attrs{"id": "TOPIC1", "participant": annaLID, "t": "1740830500"},
			Content: []waBinary.Node{{Tag: "body", Content: []byte("Sunday lunch at noon")}}},
		waBinary.Node{Tag: "announcement"},
		waBinary.Node{Tag: "locked"},
		waBinary.Node{Tag: "membership_approval_mode", Content: []waBinary.Node{{Tag: "group_join", Attrs: waBinary.Attrs{"state": "on"}}}},
		waBinary.Node{Tag: "member_add_mode", Content: []byte("admin_add")},
		waBinary.Node{Tag: "linked_parent", Attrs: waBinary.Attrs{"jid": community}},
	)
}

func familyWant() Group {
	return Group{
		JID: group.String(), Name: "Family", NameSetAt: time.Unix(1740830400, 0), NameSetBy: anna.String(),
		Description: "Sunday lunch at noon", DescriptionSetAt: time.Unix(1740830500, 0), DescriptionSetBy: anna.String(),
		Owner: ourPN.String(), CreatedAt: time.Unix(1740744000, 0),
		Announce: true, Locked: true, JoinApproval: true, AdminsAddMember: true,
		Parent: community.String(),
		Participants: []Participant{
			{JID: ourPN.String(), PN: ourPN.String(), LID: ourLID.ToNonAD().String(), Admin: true, SuperAdmin: true},
			{JID: anna.String(), PN: anna.String(), LID: annaLID.String(), Admin: true},
			{JID: bobLID.String(), LID: bobLID.String()},
		},
	}
}

// A group as WhatsApp describes it becomes our Group: members by number
// where known (from the answer or the LID map) with both forms, admins and
// the super admin, every setting, the community it belongs to; a
// community's parent says so; a number-addressed group's members come with
// the LID the answer gives.
func TestWhatsmeowGroupMapping(t *testing.T) {
	cli := ourClient(t)
	r := lidMap{ctx: context.Background(), cli: cli, log: zerolog.Nop()}

	if got, want := jsonOf(t, r.group(parsedGroup(t, cli, familyNode()))), jsonOf(t, familyWant()); got != want {
		t.Errorf("LID group:\n%s\nwant\n%s", got, want)
	}

	parent := groupNode(community, waBinary.Attrs{"subject": "Neighbours", "creator": carolPN, "addressing_mode": "pn"},
		participantNode(waBinary.Attrs{"jid": carolPN, "lid": carolLID, "type": "superadmin"}),
		participantNode(waBinary.Attrs{"jid": ourPN}),
		participantNode(waBinary.Attrs{"jid": bobPN}),
		waBinary.Node{Tag: "parent", Attrs: waBinary.Attrs{"default_membership_approval_mode": "request_required"}},
		waBinary.Node{Tag: "member_add_mode", Content: []byte("all_member_add")},
	)
	want := Group{
		JID: community.String(), Name: "Neighbours", Owner: carolPN.String(), CreatedAt: time.Unix(1740744000, 0), Community: true,
		Participants: []Participant{
			{JID: carolPN.String(), PN: carolPN.String(), LID: carolLID.String(), Admin: true, SuperAdmin: true},
			{JID: ourPN.String(), PN: ourPN.String(), LID: ourLID.ToNonAD().String()},
			{JID: bobPN.String(), PN: bobPN.String()},
		},
	}
	if got := jsonOf(t, r.group(parsedGroup(t, cli, parent))); got != jsonOf(t, want) {
		t.Errorf("community:\n%s\nwant\n%s", got, jsonOf(t, want))
	}
}

// Each participant asked for gets WhatsApp's outcome, matched across the
// two forms (a number asked for, its LID answered): done, refused for
// privacy with the invite to send instead, already a member; the ones
// refused are not members of the created group; one WhatsApp did not
// mention is not reported done.
func TestWhatsmeowParticipantResults(t *testing.T) {
	cli := ourClient(t)
	r := lidMap{ctx: context.Background(), cli: cli, log: zerolog.Nop()}
	expires := int64(1741435200)
	created := parsedGroup(t, cli, groupNode(group, waBinary.Attrs{"subject": "Team", "creator": ourPN, "addressing_mode": "lid"},
		participantNode(waBinary.Attrs{"jid": ourLID.ToNonAD(), "type": "superadmin", "phone_number": ourPN}),
		participantNode(waBinary.Attrs{"jid": annaLID, "phone_number": anna}),
		participantNode(waBinary.Attrs{"jid": bobPN, "error": "403"},
			waBinary.Node{Tag: "add_request", Attrs: waBinary.Attrs{"code": "AbCdEf12", "expiration": fmt.Sprint(expires)}}),
		participantNode(waBinary.Attrs{"jid": carolPN, "error": "409"}),
		participantNode(waBinary.Attrs{"jid": types.NewJID("4930123456", types.DefaultUserServer), "error": "200"}),
	))
	dave := types.NewJID("15550009999", types.DefaultUserServer)
	asked := []types.JID{anna, bobPN, carolPN, types.NewJID("4930123456", types.DefaultUserServer), dave}
	got := r.participantResults(asked, created.Participants)
	want := []ParticipantResult{
		{JID: anna.String(), OK: true},
		{JID: bobPN.String(), Code: 403, Reason: ParticipantReason(403), Invite: "AbCdEf12", InviteExpires: time.Unix(expires, 0)},
		{JID: carolPN.String(), Code: 409, Reason: ParticipantReason(409)},
		{JID: "4930123456@s.whatsapp.net", OK: true, Code: 200},
		{JID: dave.String(), Reason: "WhatsApp's answer did not mention them"},
	}
	if jsonOf(t, got) != jsonOf(t, want) {
		t.Errorf("results:\n%s\nwant\n%s", jsonOf(t, got), jsonOf(t, want))
	}
	g := r.group(created)
	var members []string
	for _, p := range g.Participants {
		members = append(members, p.JID)
	}
	if !slices.Equal(members, []string{ourPN.String(), anna.String(), "4930123456@s.whatsapp.net"}) {
		t.Errorf("members of the created group %v: the refused ones are not members", members)
	}
}

// whatsmeow's errors become ours, as the call means them: an unknown
// group, one we are not in, a change without admin rights, an invite link
// that does not work; a lost connection is ErrNotConnected; the rest stay
// wrapped as they are.
func TestWhatsmeowGroupErrors(t *testing.T) {
	iq := func(code int, text string) error { return &whatsmeow.IQError{Code: code, Text: text} }
	tests := []struct {
		name string
		kind groupOp
		err  error
		want error // nil: none of ours
	}{
		{"group not found", groupRead, fmt.Errorf("query: %w", whatsmeow.ErrGroupNotFound), ErrGroupNotFound},
		{"not in group", groupRead, whatsmeow.ErrNotInGroup, ErrNotInGroup},
		{"read 404", groupRead, iq(404, "item-not-found"), ErrGroupNotFound},
		{"read 403", groupRead, iq(403, "forbidden"), ErrNotInGroup},
		{"change 403", groupChange, iq(403, "forbidden"), ErrNotGroupAdmin},
		{"change 401", groupChange, iq(401, "not-authorized"), ErrNotGroupAdmin},
		{"change 404", groupChange, iq(404, "item-not-found"), ErrGroupNotFound},
		{"invite link of a group we do not admin", groupChange, whatsmeow.ErrGroupInviteLinkUnauthorized, ErrNotGroupAdmin},
		{"change 406", groupChange, iq(406, "not-acceptable"), nil},
		{"link invalid", groupLink, whatsmeow.ErrInviteLinkInvalid, ErrInviteInvalid},
		{"link revoked", groupLink, whatsmeow.ErrInviteLinkRevoked, ErrInviteInvalid},
		{"link 404", groupLink, iq(404, "item-not-found"), ErrInviteInvalid},
		{"link 406", groupLink, iq(406, "not-acceptable"), ErrInviteInvalid},
		{"link 410", groupLink, iq(410, "gone"), ErrInviteInvalid},
		{"link 403", groupLink, iq(403, "forbidden"), nil},
		{"leave 403", groupLeave, iq(403, "forbidden"), ErrNotInGroup},
		{"leave 404", groupLeave, iq(404, "item-not-found"), ErrGroupNotFound},
		{"rate limit", groupChange, iq(429, "rate-overlimit"), nil},
		{"disconnected", groupChange, &whatsmeow.DisconnectedError{Action: "info query"}, ErrNotConnected},
		{"not connected", groupRead, whatsmeow.ErrNotConnected, ErrNotConnected},
		{"timeout", groupChange, whatsmeow.ErrIQTimedOut, nil},
	}
	ours := []error{ErrGroupNotFound, ErrNotInGroup, ErrNotGroupAdmin, ErrInviteInvalid, ErrNotConnected}
	for _, tt := range tests {
		got := groupError("op", tt.kind, tt.err)
		for _, e := range ours {
			if errors.Is(got, e) != (e == tt.want) {
				t.Errorf("%s: %v; errors.Is %v: %v, want %v", tt.name, got, e, errors.Is(got, e), e == tt.want)
			}
		}
		if tt.want != ErrNotConnected && !errors.Is(got, tt.err) {
			t.Errorf("%s: %v lost whatsmeow's error", tt.name, got)
		}
	}
}

// An invite is taken as a whole link, without its scheme, or its code;
// anything else is ErrInviteInvalid before WhatsApp is asked.
func TestWhatsmeowInviteCode(t *testing.T) {
	for in, want := range map[string]string{
		"https://chat.whatsapp.com/GbKdW3aZ0x1Yq9Rt8Uv7Ab":     "GbKdW3aZ0x1Yq9Rt8Uv7Ab",
		" http://chat.whatsapp.com/GbKdW3aZ0x1Yq9Rt8Uv7Ab/ ":   "GbKdW3aZ0x1Yq9Rt8Uv7Ab",
		"HTTPS://Chat.WhatsApp.com/GbKdW3aZ0x1Yq9Rt8Uv7Ab?x=1": "GbKdW3aZ0x1Yq9Rt8Uv7Ab",
		"chat.whatsapp.com/invite/GbKdW3aZ0x1Yq9Rt8Uv7Ab":      "GbKdW3aZ0x1Yq9Rt8Uv7Ab",
		"GbKdW3aZ0x1Yq9Rt8Uv7Ab":                               "GbKdW3aZ0x1Yq9Rt8Uv7Ab",
	} {
		if got, err := inviteCode(in); err != nil || got != want {
			t.Errorf("inviteCode(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"", "https://chat.whatsapp.com/", "https://example.com/GbKdW3aZ0x1Yq9Rt8Uv7Ab", "Gb Kd", "abc/def"} {
		if got, err := inviteCode(in); !errors.Is(err, ErrInviteInvalid) {
			t.Errorf("inviteCode(%q) = %q, %v; want ErrInviteInvalid", in, got, err)
		}
	}
}

// Without a connection every group call says so (the API answers 503);
// bad input is refused as such first.
func TestWhatsmeowGroupsOffline(t *testing.T) {
	ctx := context.Background()
	g := group.String()
	link := "https://chat.whatsapp.com/GbKdW3aZ0x1Yq9Rt8Uv7Ab"
	for name, d := range map[string]*Whatsmeow{
		"not running":   NewWhatsmeow(WhatsmeowConfig{StoreDir: t.TempDir(), Log: zerolog.Nop()}),
		"not connected": driverWith(ourClient(t)),
	} {
		calls := map[string]error{}
		_, calls["joined groups"] = d.JoinedGroups(ctx)
		_, calls["group info"] = d.GroupInfo(ctx, g)
		_, _, calls["create"] = d.CreateGroup(ctx, "Team", []string{anna.String()})
		_, calls["add"] = d.UpdateParticipants(ctx, g, ParticipantAdd, []string{anna.String()})
		_, calls["approve"] = d.UpdateParticipants(ctx, g, ParticipantApprove, []string{anna.String()})
		_, calls["requests"] = d.GroupRequests(ctx, g)
		_, calls["invite link"] = d.InviteLink(ctx, g, true)
		_, calls["from link"] = d.GroupFromLink(ctx, link)
		_, calls["join"] = d.JoinGroup(ctx, link)
		calls["leave"] = d.LeaveGroup(ctx, g)
		calls["name"] = d.SetGroupName(ctx, g, "Family")
		calls["description"] = d.SetGroupDescription(ctx, g, "")
		_, calls["photo"] = d.SetGroupPhoto(ctx, g, nil)
		calls["setting"] = d.SetGroupSetting(ctx, g, GroupSetting{Kind: GroupLocked, On: true})
		for call, err := range calls {
			if !errors.Is(err, ErrNotConnected) {
				t.Errorf("%s: %s: %v, want ErrNotConnected", name, call, err)
			}
		}
		bad := map[string]error{}
		_, bad["info of a user"] = d.GroupInfo(ctx, anna.String())
		_, _, bad["create without name"] = d.CreateGroup(ctx, " ", []string{anna.String()})
		_, _, bad["create with a group"] = d.CreateGroup(ctx, "Team", []string{g})
		_, bad["unknown action"] = d.UpdateParticipants(ctx, g, "kick", []string{anna.String()})
		_, bad["no participants"] = d.UpdateParticipants(ctx, g, ParticipantRemove, nil)
		_, bad["bad participant"] = d.UpdateParticipants(ctx, g, ParticipantRemove, []string{"anna"})
		_, bad["bad link"] = d.JoinGroup(ctx, "https://example.com/x")
		bad["empty name"] = d.SetGroupName(ctx, g, "")
		bad["unknown setting"] = d.SetGroupSetting(ctx, g, GroupSetting{Kind: "slow_mode"})
		for call, err := range bad {
			if err == nil || errors.Is(err, ErrNotConnected) {
				t.Errorf("%s: %s: %v, want it refused", name, call, err)
			}
		}
	}
}
