package whatsapp

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"go.mau.fi/whatsmeow/appstate"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"

	"app/internal/testutil"
)

// The sandbox keeps a blocklist and chat settings, records each change,
// and refuses them all while not connected.
func TestSandboxContacts(t *testing.T) {
	sb, err := NewSandbox(SandboxConfig{Paired: SandboxJID, ConnectDelay: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	anna, ben := "491701234567@s.whatsapp.net", "201001234567@lid"
	if err := sb.Block(ctx, anna, true); !errors.Is(err, ErrNotConnected) {
		t.Errorf("block before Run: %v, want ErrNotConnected", err)
	}
	runSandbox(t, sb)
	testutil.Eventually(t, 5*time.Second, "connected", func() (bool, string) {
		return sb.Session().State == StateConnected, string(sb.Session().State)
	})
	for _, j := range []string{anna, ben, anna} {
		if err := sb.Block(ctx, j, true); err != nil {
			t.Fatal(err)
		}
	}
	if err := sb.Block(ctx, "120363025246125486@g.us", true); err == nil {
		t.Error("a group was blocked")
	}
	if err := sb.Block(ctx, anna, false); err != nil {
		t.Fatal(err)
	}
	if got, err := sb.Blocklist(ctx); err != nil || !slices.Equal(got, []string{ben}) {
		t.Errorf("blocklist %v %v, want only %s", got, err, ben)
	}
	until := time.Now().Add(time.Hour)
	if err := sb.SetChatSetting(ctx, anna, ChatSetting{Kind: ChatMute, On: true, Until: until}); err != nil {
		t.Fatal(err)
	}
	if err := sb.SetChatSetting(ctx, anna, ChatSetting{Kind: "hide"}); err == nil {
		t.Error("an unknown chat setting was taken")
	}
	if s := sb.ChatSettingOf(anna, ChatMute); !s.On || !s.Until.Equal(until) {
		t.Errorf("mute %+v, want on until %s", s, until)
	}
	calls := sb.ContactCalls()
	if len(calls) != 5 || calls[3].Kind != "unblock" || calls[4].Kind != "chat_setting" || calls[4].Setting.Kind != ChatMute {
		t.Errorf("calls %+v, want 3 blocks, the unblock, the mute", calls)
	}
	sb.Disconnect("test", time.Hour)
	if _, err := sb.Blocklist(ctx); !errors.Is(err, ErrNotConnected) {
		t.Errorf("blocklist while disconnected: %v, want ErrNotConnected", err)
	}
	if err := sb.SetChatSetting(ctx, anna, ChatSetting{Kind: ChatPin, On: true}); !errors.Is(err, ErrNotConnected) {
		t.Errorf("pin while disconnected: %v, want ErrNotConnected", err)
	}
}

// Without a connection whatsmeow's contact changes say so; bad input is
// refused as such.
func TestWhatsmeowContactsOffline(t *testing.T) {
	ctx := context.Background()
	d := NewWhatsmeow(WhatsmeowConfig{StoreDir: t.TempDir(), Log: zerolog.Nop()})
	chat := "491701234567@s.whatsapp.net"
	_, blErr := d.Blocklist(ctx)
	for action, err := range map[string]error{
		"block":     d.Block(ctx, chat, true),
		"unblock":   d.Block(ctx, chat, false),
		"blocklist": blErr,
		"archive":   d.SetChatSetting(ctx, chat, ChatSetting{Kind: ChatArchive, On: true}),
	} {
		if !errors.Is(err, ErrNotConnected) {
			t.Errorf("%s: %v, want ErrNotConnected", action, err)
		}
	}
	for action, err := range map[string]error{
		"block a group": d.Block(ctx, "120363025246125486@g.us", true),
		"unknown":       d.SetChatSetting(ctx, chat, ChatSetting{Kind: "hide"}),
		"mute in past":  d.SetChatSetting(ctx, chat, ChatSetting{Kind: ChatMute, On: true, Until: time.Now().Add(-time.Hour)}),
		"bad chat":      d.SetChatSetting(ctx, "nobody@example.com", ChatSetting{Kind: ChatPin}),
	} {
		if err == nil || errors.Is(err, ErrNotConnected) {
			t.Errorf("%s: %v, want it refused", action, err)
		}
	}
}

// Each chat setting is the app-state patch WhatsApp expects: the chat as
// the mutation's index, the setting's value.
func TestChatSettingPatches(t *testing.T) {
	chat := "491701234567@s.whatsapp.net"
	now := time.Now()
	until := now.Add(8 * time.Hour)
	for name, tc := range map[string]struct {
		s     ChatSetting
		index string
		check func(p appstate.PatchInfo) bool
	}{
		"archive":   {ChatSetting{Kind: ChatArchive, On: true}, appstate.IndexArchive, func(p appstate.PatchInfo) bool { return p.Mutations[0].Value.GetArchiveChatAction().GetArchived() }},
		"unarchive": {ChatSetting{Kind: ChatArchive}, appstate.IndexArchive, func(p appstate.PatchInfo) bool { return !p.Mutations[0].Value.GetArchiveChatAction().GetArchived() }},
		"pin":       {ChatSetting{Kind: ChatPin, On: true}, appstate.IndexPin, func(p appstate.PatchInfo) bool { return p.Mutations[0].Value.GetPinAction().GetPinned() }},
		"mute until": {ChatSetting{Kind: ChatMute, On: true, Until: until}, appstate.IndexMute, func(p appstate.PatchInfo) bool {
			m := p.Mutations[0].Value.GetMuteAction()
			return m.GetMuted() && m.GetMuteEndTimestamp() == until.UnixMilli()
		}},
		"mute forever": {ChatSetting{Kind: ChatMute, On: true}, appstate.IndexMute, func(p appstate.PatchInfo) bool {
			m := p.Mutations[0].Value.GetMuteAction()
			return m.GetMuted() && m.GetMuteEndTimestamp() == -1
		}},
		"unmute": {ChatSetting{Kind: ChatMute}, appstate.IndexMute, func(p appstate.PatchInfo) bool { return !p.Mutations[0].Value.GetMuteAction().GetMuted() }},
	} {
		p, err := chatSettingPatch(chat, tc.s, now)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if len(p.Mutations) == 0 || !slices.Equal(p.Mutations[0].Index, []string{tc.index, chat}) || !tc.check(p) {
			t.Errorf("%s: patch %+v, want index %s of %s with the setting", name, p, tc.index, chat)
		}
	}
}

// A blocklist change on the phone is reported as blocks and unblocks, or
// as a change of the whole list to fetch again.
func TestWhatsmeowBlocklistEvents(t *testing.T) {
	d := NewWhatsmeow(WhatsmeowConfig{StoreDir: t.TempDir(), Log: zerolog.Nop()})
	var got []*BlocklistChanged
	handle := d.handler(context.Background(), func(_ context.Context, ev Event) error {
		if b, ok := ev.(*BlocklistChanged); ok {
			got = append(got, b)
		}
		return nil
	}, nil, 1)
	annaDev := types.JID{User: "491701234567", Device: 3, Server: types.DefaultUserServer}
	handle(&events.Blocklist{Changes: []events.BlocklistChange{
		{JID: annaDev, Action: events.BlocklistChangeActionBlock},
		{JID: types.NewJID("201001234567", types.HiddenUserServer), Action: events.BlocklistChangeActionUnblock},
	}})
	handle(&events.Blocklist{Action: events.BlocklistActionModify})
	if len(got) != 2 || !slices.Equal(got[0].Blocked, []string{"491701234567@s.whatsapp.net"}) ||
		!slices.Equal(got[0].Unblocked, []string{"201001234567@lid"}) || got[0].Whole || !got[1].Whole {
		t.Errorf("events %+v, want anna blocked and the LID unblocked, then the whole list changed", got)
	}
}
