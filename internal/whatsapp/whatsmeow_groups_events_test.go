package whatsapp

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/appstate"
	waBinary "go.mau.fi/whatsmeow/binary"
	"go.mau.fi/whatsmeow/proto/waServerSync"
	"go.mau.fi/whatsmeow/types/events"
)

// groupNotification is a w:gp2 notification of group as WhatsApp sends
// it, from Anna (by LID, with her number) unless attrs say otherwise.
func groupNotification(attrs waBinary.Attrs, children ...waBinary.Node) waBinary.Node {
	a := waBinary.Attrs{"from": group, "type": "w:gp2", "id": "4242", "t": "1740830600",
		"participant": annaLID, "participant_pn": anna, "notify": "Anna"}
	for k, v := range attrs {
		a[k] = v
	}
	return waBinary.Node{Tag: "notification", Attrs: a, Content: children}
}

// parsedNotification is node as whatsmeow makes it an event, with the
// number/LID pairs it carries stored first, as whatsmeow does.
func parsedNotification(t *testing.T, cli *whatsmeow.Client, node waBinary.Node) any {
	t.Helper()
	//lint:ignore SA1019 whatsmeow's own parser of group notifications, so the test starts where WhatsApp does
	ev, pairs, _, err := cli.DangerousInternals().ParseGroupNotification(&node)
	if err != nil {
		t.Fatalf("whatsmeow cannot parse the notification: %v", err)
	}
	if err := cli.Store.LIDs.PutManyLIDMappings(context.Background(), pairs); err != nil {
		t.Fatal(err)
	}
	return ev
}

type recorded struct {
	events []Event
	fail   bool
}

func (r *recorded) handler(_ context.Context, ev Event) error {
	r.events = append(r.events, ev)
	if r.fail {
		return errors.New("store away")
	}
	return nil
}

// Group changes arrive as whatsmeow parses WhatsApp's notifications and
// are reported with who made them by number, the members they concern by
// number where known; a change we do not report is not delivered; the
// driver's cache learns the new name.
func TestWhatsmeowGroupChangeEvents(t *testing.T) {
	ctx := context.Background()
	cli := ourClient(t)
	d := NewWhatsmeow(WhatsmeowConfig{StoreDir: t.TempDir(), Log: zerolog.Nop()})
	rec := &recorded{}
	handle := d.handler(ctx, rec.handler, cli, 1)
	at := time.Unix(1740830600, 0)
	str := func(s string) *string { return &s }
	yes, no := true, false

	tests := []struct {
		name string
		node waBinary.Node
		want *GroupChanged // nil: not delivered
	}{
		{"settings, name, description, invite link",
			groupNotification(waBinary.Attrs{"participant": annaLIDDev},
				waBinary.Node{Tag: "subject", Attrs: waBinary.Attrs{"subject": "Family 2025", "s_t": "1740830600", "s_o": annaLID, "s_o_pn": anna}},
				waBinary.Node{Tag: "description", Attrs: waBinary.Attrs{"id": "TOPIC2"},
					Content: []waBinary.Node{{Tag: "body", Content: []byte("Lunch moved to 1pm")}}},
				waBinary.Node{Tag: "announcement", Attrs: waBinary.Attrs{"v_id": "7"}},
				waBinary.Node{Tag: "unlocked"},
				waBinary.Node{Tag: "invite", Attrs: waBinary.Attrs{"code": "NewCode123"}},
			),
			&GroupChanged{JID: group.String(), Sender: anna.String(), Timestamp: at, Name: str("Family 2025"),
				Description: str("Lunch moved to 1pm"), Announce: &yes, Locked: &no, InviteReset: true}},
		{"joined: one by LID with number, one whose number is unknown",
			groupNotification(nil, waBinary.Node{Tag: "add", Attrs: waBinary.Attrs{"reason": "invite"}, Content: []waBinary.Node{
				participantNode(waBinary.Attrs{"jid": carolLID, "phone_number": carolPN}),
				participantNode(waBinary.Attrs{"jid": bobLID}),
			}}),
			&GroupChanged{JID: group.String(), Sender: anna.String(), Timestamp: at, Joined: []string{carolPN.String(), bobLID.String()}}},
		{"we were removed (by our LID)",
			groupNotification(nil, waBinary.Node{Tag: "remove", Content: []waBinary.Node{participantNode(waBinary.Attrs{"jid": ourLID.ToNonAD()})}}),
			&GroupChanged{JID: group.String(), Sender: anna.String(), Timestamp: at, Left: []string{ourPN.String()}}},
		{"promoted, by a sender by number",
			groupNotification(waBinary.Attrs{"participant": bobPN, "participant_pn": nil},
				waBinary.Node{Tag: "promote", Content: []waBinary.Node{participantNode(waBinary.Attrs{"jid": annaLID})}}),
			&GroupChanged{JID: group.String(), Sender: bobPN.String(), Timestamp: at, Promoted: []string{anna.String()}}},
		{"demoted",
			groupNotification(nil, waBinary.Node{Tag: "demote", Content: []waBinary.Node{participantNode(waBinary.Attrs{"jid": carolLID})}}),
			&GroupChanged{JID: group.String(), Sender: anna.String(), Timestamp: at, Demoted: []string{carolPN.String()}}},
		{"description removed",
			groupNotification(nil, waBinary.Node{Tag: "description", Attrs: waBinary.Attrs{"id": "TOPIC3"},
				Content: []waBinary.Node{{Tag: "delete"}}}),
			&GroupChanged{JID: group.String(), Sender: anna.String(), Timestamp: at, Description: str("")}},
		{"deleted",
			groupNotification(nil, waBinary.Node{Tag: "delete", Attrs: waBinary.Attrs{"reason": "delete"}}),
			&GroupChanged{JID: group.String(), Sender: anna.String(), Timestamp: at, Deleted: true}},
		{"join approval changed, and the group cannot be asked which way",
			groupNotification(nil, waBinary.Node{Tag: "membership_approval_mode",
				Content: []waBinary.Node{{Tag: "group_join", Attrs: waBinary.Attrs{"state": "off"}}}}),
			nil},
		{"disappearing messages are not ours",
			groupNotification(nil, waBinary.Node{Tag: "ephemeral", Attrs: waBinary.Attrs{"expiration": "86400"}}),
			nil},
	}
	for _, tt := range tests {
		for k, v := range tt.node.Attrs {
			if v == nil {
				delete(tt.node.Attrs, k)
			}
		}
		rec.events = nil
		ev := parsedNotification(t, cli, tt.node)
		if _, ok := ev.(*events.GroupInfo); !ok {
			t.Fatalf("%s: whatsmeow made it a %T", tt.name, ev)
		}
		if !handle(ev) {
			t.Errorf("%s: left unacknowledged although the handler stored it", tt.name)
		}
		switch {
		case tt.want == nil && len(rec.events) > 0:
			t.Errorf("%s: delivered %s", tt.name, jsonOf(t, rec.events))
		case tt.want != nil && (len(rec.events) != 1 || jsonOf(t, rec.events[0]) != jsonOf(t, tt.want)):
			t.Errorf("%s: delivered %s\nwant %s", tt.name, jsonOf(t, rec.events), jsonOf(t, tt.want))
		}
	}
	d.mu.Lock()
	name := d.group(group).name
	d.mu.Unlock()
	if name != "Family 2025" {
		t.Errorf("the cache names the group %q after its rename", name)
	}

	// A change the handler failed on is left unacknowledged: WhatsApp
	// sends the notification again.
	rec.fail = true
	ev := parsedNotification(t, cli, groupNotification(nil, waBinary.Node{Tag: "locked"}))
	if handle(ev) {
		t.Error("a group change the handler failed on was acknowledged")
	}
}

// A group we joined (or were added to, or created) is reported whole,
// with who added us, and teaches the cache its name and addressing.
func TestWhatsmeowJoinedGroupEvent(t *testing.T) {
	ctx := context.Background()
	cli := ourClient(t)
	d := NewWhatsmeow(WhatsmeowConfig{StoreDir: t.TempDir(), Log: zerolog.Nop()})
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	d.clock = func() time.Time { return now }
	rec := &recorded{}
	handle := d.handler(ctx, rec.handler, cli, 1)

	node := groupNotification(nil, waBinary.Node{Tag: "create", Attrs: waBinary.Attrs{"type": "new", "key": "ABCDEF"},
		Content: []waBinary.Node{familyNode()}})
	ev := parsedNotification(t, cli, node)
	if _, ok := ev.(*events.JoinedGroup); !ok {
		t.Fatalf("whatsmeow made it a %T", ev)
	}
	if !handle(ev) {
		t.Error("left unacknowledged although the handler stored it")
	}
	g := familyWant()
	want := &GroupChanged{JID: group.String(), Sender: anna.String(), Timestamp: now, Group: &g}
	if len(rec.events) != 1 || jsonOf(t, rec.events[0]) != jsonOf(t, want) {
		t.Errorf("delivered %s\nwant %s", jsonOf(t, rec.events), jsonOf(t, want))
	}
	d.mu.Lock()
	meta := *d.group(group)
	d.mu.Unlock()
	if meta.name != "Family" || !meta.named || meta.mode != "lid" {
		t.Errorf("cache %+v, want the group named Family, addressed by LID", meta)
	}
	rec.fail = true
	if handle(parsedNotification(t, cli, node)) {
		t.Error("a joined group the handler failed on was acknowledged")
	}
}

// Archive, pin and mute set on the phone arrive as whatsmeow applies the
// app-state patches (the very patches SetChatSetting sends) and are
// reported on the chat by number; a mute's end is its Until, a mute
// without end has none. whatsmeow does not wait for them: a failed
// handler leaves nothing unacknowledged.
func TestWhatsmeowChatSettingEvents(t *testing.T) {
	ctx := context.Background()
	cli := ourClient(t)
	d := NewWhatsmeow(WhatsmeowConfig{StoreDir: t.TempDir(), Log: zerolog.Nop()})
	rec := &recorded{}
	handle := d.handler(ctx, rec.handler, cli, 1)
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	end := now.Add(8 * time.Hour)

	tests := []struct {
		chat string // as SetChatSetting is given it
		s    ChatSetting
		want ChatSettingChanged
	}{
		{annaLID.String(), ChatSetting{Kind: ChatArchive, On: true}, ChatSettingChanged{Chat: anna.String(), Setting: ChatSetting{Kind: ChatArchive, On: true}}},
		{annaLID.String(), ChatSetting{Kind: ChatArchive}, ChatSettingChanged{Chat: anna.String(), Setting: ChatSetting{Kind: ChatArchive}}},
		{group.String(), ChatSetting{Kind: ChatPin, On: true}, ChatSettingChanged{Chat: group.String(), Setting: ChatSetting{Kind: ChatPin, On: true}}},
		{group.String(), ChatSetting{Kind: ChatPin}, ChatSettingChanged{Chat: group.String(), Setting: ChatSetting{Kind: ChatPin}}},
		{bobPN.String(), ChatSetting{Kind: ChatMute, On: true, Until: end},
			ChatSettingChanged{Chat: bobPN.String(), Setting: ChatSetting{Kind: ChatMute, On: true, Until: end}}},
		{bobPN.String(), ChatSetting{Kind: ChatMute, On: true}, ChatSettingChanged{Chat: bobPN.String(), Setting: ChatSetting{Kind: ChatMute, On: true}}},
		{bobPN.String(), ChatSetting{Kind: ChatMute}, ChatSettingChanged{Chat: bobPN.String(), Setting: ChatSetting{Kind: ChatMute}}},
	}
	for _, tt := range tests {
		patch, err := chatSettingPatch(tt.chat, tt.s, now)
		if err != nil {
			t.Fatal(err)
		}
		rec.events = nil
		m := patch.Mutations[0]
		//lint:ignore SA1019 whatsmeow's own dispatch of an app-state mutation, so the test starts where WhatsApp does
		ev := cli.DangerousInternals().DispatchAppState(ctx, appstate.Mutation{Operation: waServerSync.SyncdMutation_SET,
			Action: m.Value, Index: m.Index, Version: m.Version}, false)
		if !handle(ev) {
			t.Errorf("%s %+v: left unacknowledged", tt.chat, tt.s)
		}
		got, ok := singleEvent[*ChatSettingChanged](rec.events)
		if !ok || got.Chat != tt.want.Chat || got.Setting.Kind != tt.want.Setting.Kind || got.Setting.On != tt.want.Setting.On ||
			!got.Setting.Until.Equal(tt.want.Setting.Until) {
			t.Errorf("%s %+v (a %T): delivered %s, want %+v", tt.chat, tt.s, ev, jsonOf(t, rec.events), tt.want)
		}
	}
	rec.fail = true
	if !handle(&events.Pin{JID: anna}) || len(rec.events) == 0 {
		t.Error("a chat setting the handler failed on was not delivered, or left unacknowledged")
	}
}

func singleEvent[E Event](evs []Event) (E, bool) {
	var zero E
	if len(evs) != 1 {
		return zero, false
	}
	e, ok := evs[0].(E)
	return e, ok
}

// A picture set or removed is reported on the user (by number where
// known) or group, with who changed it and the new picture's id.
func TestWhatsmeowPictureEvents(t *testing.T) {
	ctx := context.Background()
	cli := ourClient(t)
	d := NewWhatsmeow(WhatsmeowConfig{StoreDir: t.TempDir(), Log: zerolog.Nop()})
	rec := &recorded{}
	handle := d.handler(ctx, rec.handler, cli, 1)
	ts := time.Unix(1740830700, 0)
	// As whatsmeow's handlePictureNotification builds them.
	for _, tt := range []struct {
		in   *events.Picture
		want PictureChanged
	}{
		{&events.Picture{JID: annaLID, Author: annaLID, Timestamp: ts, PictureID: "1740830700"},
			PictureChanged{JID: anna.String(), Author: anna.String(), ID: "1740830700"}},
		{&events.Picture{JID: group, Author: bobLID, Timestamp: ts, Remove: true},
			PictureChanged{JID: group.String(), Author: bobLID.String(), Removed: true}},
		{&events.Picture{JID: ourPN, Timestamp: ts}, PictureChanged{JID: ourPN.String()}}, // our own, from another device
	} {
		rec.events = nil
		if !handle(tt.in) {
			t.Errorf("%+v: left unacknowledged", tt.in)
		}
		if got, ok := singleEvent[*PictureChanged](rec.events); !ok || *got != tt.want {
			t.Errorf("%+v: delivered %s, want %+v", tt.in, jsonOf(t, rec.events), tt.want)
		}
	}
	rec.fail = true
	if !handle(&events.Picture{JID: anna, PictureID: "1"}) || len(rec.events) == 0 {
		t.Error("a picture the handler failed on was not delivered, or left unacknowledged")
	}
}
