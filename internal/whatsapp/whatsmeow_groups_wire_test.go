package whatsapp

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	waBinary "go.mau.fi/whatsmeow/binary"
	"go.mau.fi/whatsmeow/types"

	"app/internal/testutil"
)

const goldenIQDir = "testdata/golden_iq"

// firstTag is the tag of an IQ's first child: what it asks.
func firstTag(iq *waBinary.Node) string {
	if kids := iq.GetChildren(); len(kids) > 0 {
		return kids[0].Tag
	}
	return ""
}

// Every group call goes to WhatsApp as the golden file says, IQ for IQ
// (what whatsmeow draws at random aside), and WhatsApp's answer, a
// refusal included, comes back as the caller would expect it. The server
// is a fake (whatsmeow_fakeserver_test.go), the client and the wire are
// whatsmeow's own. -update rewrites the files.
func TestWhatsmeowGroupIQs(t *testing.T) {
	ctx := context.Background()
	cli := ourClient(t)
	f := newFakeWhatsApp(t, cli)
	d := driverWith(cli)
	g := group.String()
	link := "https://chat.whatsapp.com/GbKdW3aZ0x1Yq9Rt8Uv7Ab"
	joinedAnswer := func(iq *waBinary.Node) *waBinary.Node {
		return iqResult(iq, waBinary.Node{Tag: "groups", Content: []waBinary.Node{familyNode()}})
	}
	refuse := func(code int, text string) func(*waBinary.Node) *waBinary.Node {
		return func(iq *waBinary.Node) *waBinary.Node { return iqError(iq, code, text) }
	}
	withFamily := func(tag string, answer func(*waBinary.Node) *waBinary.Node) func(*waBinary.Node) *waBinary.Node {
		return func(iq *waBinary.Node) *waBinary.Node {
			if firstTag(iq) == "query" {
				return iqResult(iq, familyNode())
			}
			if answer != nil && firstTag(iq) == tag {
				return answer(iq)
			}
			return nil
		}
	}
	wantErr := func(t *testing.T, err, want error) {
		t.Helper()
		if !errors.Is(err, want) {
			t.Errorf("error %v, want %v", err, want)
		}
	}
	noErr := func(t *testing.T, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	addressedByLID := func() { d.setGroupMode(group, types.AddressingModeLID) }
	addressedByPN := func() { d.setGroupMode(group, types.AddressingModePN) }

	cases := []struct {
		name   string
		before func()
		answer func(iq *waBinary.Node) *waBinary.Node
		run    func(t *testing.T)
	}{
		{name: "joined_groups", answer: joinedAnswer, run: func(t *testing.T) {
			got, err := d.JoinedGroups(ctx)
			noErr(t, err)
			if len(got) != 1 || jsonOf(t, got[0]) != jsonOf(t, familyWant()) {
				t.Errorf("groups %s", jsonOf(t, got))
			}
		}},
		{name: "group_info", answer: withFamily("", nil), run: func(t *testing.T) {
			got, err := d.GroupInfo(ctx, g)
			noErr(t, err)
			if jsonOf(t, got) != jsonOf(t, familyWant()) {
				t.Errorf("group %s", jsonOf(t, got))
			}
		}},
		{name: "group_info_not_found", answer: refuse(404, "item-not-found"), run: func(t *testing.T) {
			_, err := d.GroupInfo(ctx, g)
			wantErr(t, err, ErrGroupNotFound)
		}},
		{name: "group_info_not_in_group", answer: refuse(403, "forbidden"), run: func(t *testing.T) {
			_, err := d.GroupInfo(ctx, g)
			wantErr(t, err, ErrNotInGroup)
		}},
		{name: "create_group", answer: func(iq *waBinary.Node) *waBinary.Node {
			return iqResult(iq, groupNode(types.NewJID("120363111111111111", types.GroupServer),
				waBinary.Attrs{"subject": "Team", "creator": ourPN, "addressing_mode": "lid"},
				participantNode(waBinary.Attrs{"jid": ourLID.ToNonAD(), "type": "superadmin", "phone_number": ourPN}),
				participantNode(waBinary.Attrs{"jid": annaLID, "phone_number": anna}),
				participantNode(waBinary.Attrs{"jid": bobPN, "error": "403"},
					waBinary.Node{Tag: "add_request", Attrs: waBinary.Attrs{"code": "AbCdEf12", "expiration": "1741435200"}}),
			))
		}, run: func(t *testing.T) {
			got, results, err := d.CreateGroup(ctx, "Team", []string{anna.String(), "+4917600000001"})
			noErr(t, err)
			if got.JID != "120363111111111111@g.us" || got.Name != "Team" || len(got.Participants) != 2 {
				t.Errorf("group %s", jsonOf(t, got))
			}
			want := []ParticipantResult{{JID: anna.String(), OK: true},
				{JID: bobPN.String(), Code: 403, Reason: ParticipantReason(403), Invite: "AbCdEf12", InviteExpires: time.Unix(1741435200, 0)}}
			if jsonOf(t, results) != jsonOf(t, want) {
				t.Errorf("results %s", jsonOf(t, results))
			}
			d.mu.Lock()
			meta := *d.group(types.NewJID("120363111111111111", types.GroupServer))
			d.mu.Unlock()
			if meta.name != "Team" || meta.mode != types.AddressingModeLID {
				t.Errorf("cache %+v after the creation", meta)
			}
		}},
		{name: "add_participants_lid_group", before: addressedByLID, answer: func(iq *waBinary.Node) *waBinary.Node {
			return iqResult(iq, waBinary.Node{Tag: "add", Content: []waBinary.Node{
				participantNode(waBinary.Attrs{"jid": annaLID, "phone_number": anna}),
				participantNode(waBinary.Attrs{"jid": bobPN, "error": "403"},
					waBinary.Node{Tag: "add_request", Attrs: waBinary.Attrs{"code": "XyZ987", "expiration": "1741435200"}}),
				participantNode(waBinary.Attrs{"jid": carolPN, "error": "409"}),
			}})
		}, run: func(t *testing.T) {
			got, err := d.UpdateParticipants(ctx, g, ParticipantAdd, []string{anna.String(), bobPN.String(), carolPN.String()})
			noErr(t, err)
			want := []ParticipantResult{{JID: anna.String(), OK: true},
				{JID: bobPN.String(), Code: 403, Reason: ParticipantReason(403), Invite: "XyZ987", InviteExpires: time.Unix(1741435200, 0)},
				{JID: carolPN.String(), Code: 409, Reason: ParticipantReason(409)}}
			if jsonOf(t, got) != jsonOf(t, want) {
				t.Errorf("results %s", jsonOf(t, got))
			}
		}},
		{name: "remove_participants_not_admin", before: addressedByPN, answer: refuse(403, "forbidden"), run: func(t *testing.T) {
			_, err := d.UpdateParticipants(ctx, g, ParticipantRemove, []string{anna.String()})
			wantErr(t, err, ErrNotGroupAdmin)
		}},
		{name: "promote_participants", before: addressedByPN, answer: func(iq *waBinary.Node) *waBinary.Node {
			return iqResult(iq, waBinary.Node{Tag: "promote", Content: []waBinary.Node{participantNode(waBinary.Attrs{"jid": anna})}})
		}, run: func(t *testing.T) {
			got, err := d.UpdateParticipants(ctx, g, ParticipantPromote, []string{anna.String()})
			noErr(t, err)
			if len(got) != 1 || !got[0].OK {
				t.Errorf("results %s", jsonOf(t, got))
			}
		}},
		{name: "demote_participants", before: addressedByPN, answer: func(iq *waBinary.Node) *waBinary.Node {
			return iqResult(iq, waBinary.Node{Tag: "demote", Content: []waBinary.Node{participantNode(waBinary.Attrs{"jid": anna, "error": "406"})}})
		}, run: func(t *testing.T) {
			got, err := d.UpdateParticipants(ctx, g, ParticipantDemote, []string{anna.String()})
			noErr(t, err)
			if len(got) != 1 || got[0].OK || got[0].Code != 406 || got[0].Reason != ParticipantReason(406) {
				t.Errorf("results %s", jsonOf(t, got))
			}
		}},
		{name: "approve_requests", before: addressedByLID, answer: func(iq *waBinary.Node) *waBinary.Node {
			return iqResult(iq, waBinary.Node{Tag: "membership_requests_action", Content: []waBinary.Node{{Tag: "approve",
				Content: []waBinary.Node{participantNode(waBinary.Attrs{"jid": annaLID})}}}})
		}, run: func(t *testing.T) {
			got, err := d.UpdateParticipants(ctx, g, ParticipantApprove, []string{anna.String()})
			noErr(t, err)
			if len(got) != 1 || !got[0].OK || got[0].JID != anna.String() {
				t.Errorf("results %s", jsonOf(t, got))
			}
		}},
		{name: "reject_requests", before: addressedByPN, answer: func(iq *waBinary.Node) *waBinary.Node {
			return iqResult(iq, waBinary.Node{Tag: "membership_requests_action", Content: []waBinary.Node{{Tag: "reject",
				Content: []waBinary.Node{participantNode(waBinary.Attrs{"jid": bobPN})}}}})
		}, run: func(t *testing.T) {
			got, err := d.UpdateParticipants(ctx, g, ParticipantReject, []string{bobPN.String()})
			noErr(t, err)
			if len(got) != 1 || !got[0].OK {
				t.Errorf("results %s", jsonOf(t, got))
			}
		}},
		{name: "group_requests", answer: func(iq *waBinary.Node) *waBinary.Node {
			return iqResult(iq, waBinary.Node{Tag: "membership_approval_requests", Content: []waBinary.Node{
				{Tag: "membership_approval_request", Attrs: waBinary.Attrs{"jid": annaLID, "request_time": "1740830800"}},
				{Tag: "membership_approval_request", Attrs: waBinary.Attrs{"jid": bobLID, "request_time": "1740830900"}},
			}})
		}, run: func(t *testing.T) {
			got, err := d.GroupRequests(ctx, g)
			noErr(t, err)
			want := []GroupRequest{{JID: anna.String(), RequestedAt: time.Unix(1740830800, 0)}, {JID: bobLID.String(), RequestedAt: time.Unix(1740830900, 0)}}
			if jsonOf(t, got) != jsonOf(t, want) {
				t.Errorf("requests %s", jsonOf(t, got))
			}
		}},
		{name: "group_requests_not_admin", answer: refuse(403, "forbidden"), run: func(t *testing.T) {
			_, err := d.GroupRequests(ctx, g)
			wantErr(t, err, ErrNotGroupAdmin)
		}},
		{name: "invite_link", answer: func(iq *waBinary.Node) *waBinary.Node {
			return iqResult(iq, waBinary.Node{Tag: "invite", Attrs: waBinary.Attrs{"code": "GbKdW3aZ0x1Yq9Rt8Uv7Ab"}})
		}, run: func(t *testing.T) {
			got, err := d.InviteLink(ctx, g, false)
			noErr(t, err)
			if got != link {
				t.Errorf("link %q", got)
			}
		}},
		{name: "invite_link_reset", answer: func(iq *waBinary.Node) *waBinary.Node {
			return iqResult(iq, waBinary.Node{Tag: "invite", Attrs: waBinary.Attrs{"code": "NewCode123"}})
		}, run: func(t *testing.T) {
			got, err := d.InviteLink(ctx, g, true)
			noErr(t, err)
			if got != "https://chat.whatsapp.com/NewCode123" {
				t.Errorf("link %q", got)
			}
		}},
		{name: "invite_link_not_admin", answer: refuse(401, "not-authorized"), run: func(t *testing.T) {
			_, err := d.InviteLink(ctx, g, false)
			wantErr(t, err, ErrNotGroupAdmin)
		}},
		{name: "group_from_link", answer: withFamily("invite", func(iq *waBinary.Node) *waBinary.Node {
			return iqResult(iq, familyNode())
		}), run: func(t *testing.T) {
			got, err := d.GroupFromLink(ctx, link)
			noErr(t, err)
			if got.JID != g || got.Name != "Family" {
				t.Errorf("group %s", jsonOf(t, got))
			}
		}},
		{name: "group_from_link_revoked", answer: refuse(410, "gone"), run: func(t *testing.T) {
			_, err := d.GroupFromLink(ctx, "GbKdW3aZ0x1Yq9Rt8Uv7Ab")
			wantErr(t, err, ErrInviteInvalid)
		}},
		{name: "join_group", answer: func(iq *waBinary.Node) *waBinary.Node {
			return iqResult(iq, waBinary.Node{Tag: "group", Attrs: waBinary.Attrs{"jid": group}})
		}, run: func(t *testing.T) {
			got, err := d.JoinGroup(ctx, link)
			noErr(t, err)
			if got != g {
				t.Errorf("joined %q", got)
			}
		}},
		{name: "join_group_invalid", answer: refuse(406, "not-acceptable"), run: func(t *testing.T) {
			_, err := d.JoinGroup(ctx, link)
			wantErr(t, err, ErrInviteInvalid)
		}},
		{name: "leave_group", run: func(t *testing.T) { noErr(t, d.LeaveGroup(ctx, g)) }},
		{name: "set_group_name", run: func(t *testing.T) {
			noErr(t, d.SetGroupName(ctx, g, "Family 2025"))
			if name := d.chatName(ctx, nil, group); name != "Family 2025" {
				t.Errorf("the cache names the group %q", name)
			}
		}},
		{name: "set_group_name_not_admin", answer: refuse(403, "forbidden"), run: func(t *testing.T) {
			wantErr(t, d.SetGroupName(ctx, g, "Mine"), ErrNotGroupAdmin)
		}},
		{name: "set_group_description", answer: withFamily("", nil), run: func(t *testing.T) {
			noErr(t, d.SetGroupDescription(ctx, g, "Lunch moved to 1pm"))
		}},
		{name: "remove_group_description", answer: withFamily("", nil), run: func(t *testing.T) {
			noErr(t, d.SetGroupDescription(ctx, g, ""))
		}},
		{name: "set_group_description_not_found", answer: refuse(404, "item-not-found"), run: func(t *testing.T) {
			wantErr(t, d.SetGroupDescription(ctx, g, "x"), ErrGroupNotFound)
		}},
		{name: "set_group_photo", answer: func(iq *waBinary.Node) *waBinary.Node {
			return iqResult(iq, waBinary.Node{Tag: "picture", Attrs: waBinary.Attrs{"id": "1740830950"}})
		}, run: func(t *testing.T) {
			id, err := d.SetGroupPhoto(ctx, g, []byte{0xff, 0xd8, 0xff, 0xe0, 0, 0x10, 'J', 'F', 'I', 'F', 0, 0xff, 0xd9})
			noErr(t, err)
			if id != "1740830950" {
				t.Errorf("id %q", id)
			}
		}},
		{name: "remove_group_photo", run: func(t *testing.T) {
			id, err := d.SetGroupPhoto(ctx, g, nil)
			noErr(t, err)
			if id != "" {
				t.Errorf("id %q after a removal", id)
			}
		}},
		{name: "set_group_photo_not_admin", answer: refuse(401, "not-authorized"), run: func(t *testing.T) {
			_, err := d.SetGroupPhoto(ctx, g, []byte{0xff, 0xd8, 0xff, 0xd9})
			wantErr(t, err, ErrNotGroupAdmin)
		}},
		{name: "group_settings", run: func(t *testing.T) {
			for _, s := range []GroupSetting{{GroupAnnounce, true}, {GroupAnnounce, false}, {GroupLocked, true}, {GroupLocked, false},
				{GroupJoinApproval, true}, {GroupJoinApproval, false}, {GroupAdminsAddMember, true}, {GroupAdminsAddMember, false}} {
				noErr(t, d.SetGroupSetting(ctx, g, s))
			}
		}},
	}

	if *update {
		if err := os.MkdirAll(goldenIQDir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	names := map[string]bool{}
	for _, c := range cases {
		names[c.name+".xml"] = true
		t.Run(c.name, func(t *testing.T) {
			if c.before != nil {
				c.before()
			}
			f.answerWith(c.answer)
			f.groupIQs() // only this call's
			c.run(t)
			var lines []string
			for _, iq := range f.groupIQs() {
				lines = append(lines, xmlOf(iq))
			}
			got := strings.Join(lines, "\n") + "\n"
			checkGoldenIQ(t, c.name+".xml", got)
		})
	}
	entries, err := os.ReadDir(goldenIQDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if !names[e.Name()] && !strings.HasPrefix(e.Name(), profileGoldenPrefix) { // the profile calls' files are TestWhatsmeowProfileIQs's
			t.Errorf("%s/%s belongs to no case", goldenIQDir, e.Name())
		}
	}
}

// Through the wire: a group notification is acknowledged only once the
// handler stored the change (WhatsApp sends it again otherwise), and a
// change of join approval is told the way the group now is, asked of
// WhatsApp, whichever way whatsmeow's event says.
func TestWhatsmeowGroupNotificationsOverTheWire(t *testing.T) {
	ctx := context.Background()
	cli := ourClient(t)
	cli.SynchronousAck = true
	d := driverWith(cli)
	rec := &recorded{}
	// The handler runs on whatsmeow's goroutine, under the driver's
	// handler lock: the test reads and steers it under the same.
	mu := &d.hmu
	cli.AddEventHandlerWithSuccessStatus(d.handler(ctx, rec.handler, cli, 1))
	f := newFakeWhatsApp(t, cli)
	events := func() []Event {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(rec.events)
	}

	off := familyNode()
	off.Content = slices.DeleteFunc(slices.Clone(off.GetChildren()), func(n waBinary.Node) bool { return n.Tag == "membership_approval_mode" })
	f.answerWith(func(iq *waBinary.Node) *waBinary.Node {
		if firstTag(iq) == "query" {
			return iqResult(iq, off)
		}
		return nil
	})
	f.send(groupNotification(waBinary.Attrs{"id": "N1"}, waBinary.Node{Tag: "membership_approval_mode",
		Content: []waBinary.Node{{Tag: "group_join", Attrs: waBinary.Attrs{"state": "off"}}}}))
	testutil.Eventually(t, 10*time.Second, "the change delivered and acknowledged", func() (bool, string) {
		return len(events()) == 1 && f.acked("N1"), jsonOf(t, events())
	})
	ch, ok := events()[0].(*GroupChanged)
	if !ok || ch.JoinApproval == nil || *ch.JoinApproval || ch.Sender != anna.String() {
		t.Errorf("delivered %s, want join approval off, by Anna", jsonOf(t, events()))
	}

	mu.Lock()
	rec.fail = true
	mu.Unlock()
	f.send(groupNotification(waBinary.Attrs{"id": "N2"}, waBinary.Node{Tag: "locked"}))
	testutil.Eventually(t, 10*time.Second, "the second change handed over", func() (bool, string) {
		return len(events()) == 2, jsonOf(t, events())
	})
	mu.Lock()
	rec.fail = false
	mu.Unlock()
	// Notifications are handled in order: once N3 is acknowledged, N2's
	// acknowledgement would have been sent.
	f.send(groupNotification(waBinary.Attrs{"id": "N3"}, waBinary.Node{Tag: "unlocked"}))
	testutil.Eventually(t, 10*time.Second, "the third change acknowledged", func() (bool, string) {
		return f.acked("N3"), jsonOf(t, events())
	})
	if f.acked("N2") {
		t.Error("a group change the handler failed on was acknowledged")
	}
}

// checkGoldenIQ compares what was sent with its golden file in
// testdata/golden_iq (-update writes it instead).
func checkGoldenIQ(t *testing.T, name, got string) {
	t.Helper()
	file := filepath.Join(goldenIQDir, name)
	if *update {
		if err := os.WriteFile(file, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("no golden file (run with -update): %v", err)
	}
	if got != string(want) {
		t.Errorf("sent\n%s\nwant (%s)\n%s", got, file, want)
	}
}
