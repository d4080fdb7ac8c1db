package httpapi

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"app/internal/config"
	"app/internal/store"
	"app/internal/testutil"
	"app/internal/whatsapp"
)

// blockedJIDs are the JIDs GET /v1/blocklist answers.
func blockedJIDs(t *testing.T, url string, h map[string]string) []string {
	t.Helper()
	r := do(t, "GET", url+"/v1/blocklist", nil, h)
	if r.status != 200 {
		t.Fatalf("GET /v1/blocklist: %d %v", r.status, r.body)
	}
	var out []string
	for _, e := range r.body["blocklist"].([]any) {
		out = append(out, e.(map[string]any)["jid"].(string))
	}
	return out
}

// chatIn is the chat jid as GET path lists it ("chats" or "contacts").
func chatIn(t *testing.T, url, path, jid string, h map[string]string) map[string]any {
	t.Helper()
	r := do(t, "GET", url+"/v1/"+path, nil, h)
	if r.status != 200 {
		t.Fatalf("GET /v1/%s: %d %v", path, r.status, r.body)
	}
	for _, c := range r.body[path].([]any) {
		if c := c.(map[string]any); c["jid"] == jid {
			return c
		}
	}
	t.Fatalf("GET /v1/%s: no %s in %v", path, jid, r.body)
	return nil
}

// The blocklist is fetched from WhatsApp the first time it is asked for;
// a block then shows in it and on the contact, an unblock takes it away.
func TestBlockAndBlocklist(t *testing.T) {
	e := actionServer(t, config.WhatsApp{}, nil, 0)
	h := apiKey(t, e.db, store.ScopeContactsWrite, store.ScopeMessagesRead)
	e.received(t, whatsapp.Incoming{Chat: alice, Text: "hi"})
	if err := e.sb.Block(context.Background(), bob, true); err != nil { // on the phone, before
		t.Fatal(err)
	}
	if got := blockedJIDs(t, e.url, h); !slices.Equal(got, []string{bob}) {
		t.Errorf("blocklist at first %v, want %s (fetched from WhatsApp)", got, bob)
	}
	r := do(t, "POST", e.url+"/v1/blocklist/%2B491701234567", nil, h)
	if r.status != 200 || r.body["blocked"] != true || r.body["jid"] != alice {
		t.Fatalf("block: %d %v", r.status, r.body)
	}
	if got := blockedJIDs(t, e.url, h); !slices.Equal(got, []string{bob, alice}) {
		t.Errorf("blocklist after the block %v, want %s and %s", got, bob, alice)
	}
	if c := chatIn(t, e.url, "contacts", alice, h); c["blocked"] != true {
		t.Errorf("contact after the block %v, want blocked", c)
	}
	if r := do(t, "DELETE", e.url+"/v1/blocklist/"+alice, nil, h); r.status != 200 || r.body["blocked"] != false {
		t.Fatalf("unblock: %d %v", r.status, r.body)
	}
	if got := blockedJIDs(t, e.url, h); !slices.Equal(got, []string{bob}) {
		t.Errorf("blocklist after the unblock %v, want only %s", got, bob)
	}
	if c := chatIn(t, e.url, "contacts", alice, h); c["blocked"] != nil {
		t.Errorf("contact after the unblock %v, want not blocked", c)
	}
	if got, _ := e.sb.Blocklist(context.Background()); !slices.Equal(got, []string{bob}) {
		t.Errorf("WhatsApp's blocklist %v, want only %s", got, bob)
	}
	calls := e.sb.ContactCalls()
	if len(calls) != 3 || calls[1].Kind != "block" || calls[1].JID != alice || calls[2].Kind != "unblock" || calls[2].JID != alice {
		t.Errorf("calls %+v, want bob's block, then alice's block and unblock", calls)
	}
}

// Archive, pin and mute reach WhatsApp and show on the chat; undone, they
// go.
func TestChatSettings(t *testing.T) {
	e := actionServer(t, config.WhatsApp{}, nil, 0)
	h := apiKey(t, e.db, store.ScopeContactsWrite, store.ScopeMessagesRead)
	e.received(t, whatsapp.Incoming{Chat: team, Sender: alice, Text: "hi all"})
	post := func(path, body string) {
		t.Helper()
		if r := do(t, "POST", e.url+"/v1/chats/"+team+"/"+path, strings.NewReader(body), h); r.status != 200 || r.body["ok"] != true {
			t.Fatalf("POST %s %s: %d %v", path, body, r.status, r.body)
		}
	}
	until := time.Now().Add(8 * time.Hour).UTC().Truncate(time.Second)
	post("pin", `{"pinned":true}`)
	post("mute", `{"muted":true,"until":"`+until.Format(time.RFC3339)+`"}`)
	c := chatIn(t, e.url, "chats", team, h)
	if c["pinned"] != true || c["muted"] != true || c["muted_until"] != until.Format(time.RFC3339) || c["archived"] != nil {
		t.Errorf("chat %v, want pinned, muted until %s", c, until)
	}
	if s := e.sb.ChatSettingOf(team, whatsapp.ChatMute); !s.On || !s.Until.Equal(until) {
		t.Errorf("WhatsApp's mute %+v, want until %s", s, until)
	}
	post("archive", `{"archived":true}`)
	post("mute", `{"muted":true}`)
	c = chatIn(t, e.url, "chats", team, h)
	if c["archived"] != true || c["pinned"] != nil || c["muted"] != true || c["muted_until"] != nil {
		t.Errorf("chat %v, want archived (which unpins), muted without end", c)
	}
	post("archive", `{"archived":false}`)
	post("mute", `{"muted":false}`)
	c = chatIn(t, e.url, "chats", team, h)
	if c["archived"] != nil || c["muted"] != nil {
		t.Errorf("chat %v, want neither archived nor muted", c)
	}
	for kind, on := range map[whatsapp.ChatSettingKind]bool{whatsapp.ChatArchive: false, whatsapp.ChatPin: true, whatsapp.ChatMute: false} {
		if s := e.sb.ChatSettingOf(team, kind); s.Kind != kind || s.On != on {
			t.Errorf("WhatsApp's %s %+v, want on %v", kind, s, on)
		}
	}
	if n := len(e.sb.ContactCalls()); n != 6 {
		t.Errorf("%d calls reached WhatsApp, want 6", n)
	}
}

func TestBadContactActionRequests(t *testing.T) {
	e := actionServer(t, config.WhatsApp{}, nil, 0)
	h := apiKey(t, e.db, store.ScopeContactsWrite)
	past := time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)
	for _, c := range []struct{ path, body, field string }{
		{"/v1/blocklist/" + team, ``, "jid"},
		{"/v1/blocklist/bob@example.com", ``, "jid"},
		{"/v1/blocklist/491701234567", ``, "jid"},
		{"/v1/chats/bob@example.com/archive", `{"archived":true}`, "jid"},
		{"/v1/chats/" + team + "/archive", `{}`, "archived"},
		{"/v1/chats/" + team + "/archive", `{"archived":"yes"}`, "archived"},
		{"/v1/chats/" + team + "/pin", `{"pinned":true,"until":"2030-01-01T00:00:00Z"}`, "until"},
		{"/v1/chats/" + team + "/pin", `{"archived":true}`, "archived"},
		{"/v1/chats/" + team + "/mute", `{"until":"2030-01-01T00:00:00Z"}`, "muted"},
		{"/v1/chats/" + team + "/mute", `{"muted":true,"until":"tomorrow"}`, "until"},
		{"/v1/chats/" + team + "/mute", `{"muted":true,"until":8}`, "until"},
		{"/v1/chats/" + team + "/mute", `{"muted":true,"until":"` + past + `"}`, "until"},
		{"/v1/chats/" + team + "/mute", `{"muted":false,"until":"2030-01-01T00:00:00Z"}`, "until"},
	} {
		r := do(t, "POST", e.url+c.path, strings.NewReader(c.body), h)
		if r.status != 400 || errorOf(t, r)["field"] != c.field {
			t.Errorf("POST %s %s: %d %v, want 400 naming %s", c.path, c.body, r.status, r.body, c.field)
		}
	}
	if calls := e.sb.ContactCalls(); len(calls) != 0 {
		t.Errorf("bad requests reached WhatsApp: %+v", calls)
	}
	// The key must be allowed to change contacts: writing messages is not.
	for _, path := range []string{"/v1/blocklist/" + alice, "/v1/chats/" + alice + "/pin"} {
		if r := do(t, "POST", e.url+path, strings.NewReader(`{"pinned":true}`), e.writer); r.status != 403 {
			t.Errorf("POST %s with a messages:write key: %d %v, want 403", path, r.status, r.body)
		}
	}
}

// Without a connected primary a change is a 503 with Retry-After, and so
// is a blocklist never fetched; one fetched before is served from the
// store.
func TestContactActionsNeedAConnectedPrimary(t *testing.T) {
	e := actionServer(t, config.WhatsApp{}, nil, 0)
	h := apiKey(t, e.db, store.ScopeContactsWrite, store.ScopeMessagesRead)
	e.sb.Disconnect("test", time.Hour)
	testutil.Eventually(t, 10*time.Second, "the session disconnected", func() (bool, string) {
		ws, _ := e.db.Session(context.Background())
		return ws.State == "disconnected", ws.State
	})
	for _, c := range []struct{ method, path, body string }{
		{"POST", "/v1/blocklist/" + alice, ``},
		{"POST", "/v1/chats/" + alice + "/archive", `{"archived":true}`},
		{"GET", "/v1/blocklist", ``},
	} {
		r := do(t, c.method, e.url+c.path, strings.NewReader(c.body), h)
		if r.status != 503 || r.header.Get("Retry-After") == "" {
			t.Errorf("%s %s while disconnected: %d %v, want 503 with Retry-After", c.method, c.path, r.status, r.body)
		}
	}
	if err := e.db.SaveBlocklist(context.Background(), store.Blocklist{JIDs: []string{carol}}); err != nil {
		t.Fatal(err)
	}
	if got := blockedJIDs(t, e.url, h); !slices.Equal(got, []string{carol}) {
		t.Errorf("stored blocklist while disconnected: %v, want %s", got, carol)
	}
	if calls := e.sb.ContactCalls(); len(calls) != 0 {
		t.Errorf("calls while disconnected: %+v", calls)
	}
}

// A block or unblock on the phone reaches the stored blocklist and the
// contact.
func TestBlocklistChangedOnThePhone(t *testing.T) {
	e := actionServer(t, config.WhatsApp{}, nil, 0)
	h := apiKey(t, e.db, store.ScopeMessagesRead)
	e.received(t, whatsapp.Incoming{Chat: carol, Text: "hi"})
	if got := blockedJIDs(t, e.url, h); len(got) != 0 {
		t.Fatalf("blocklist at first %v, want it empty", got)
	}
	e.sb.BlockOnPhone(carol, true)
	testutil.Eventually(t, 10*time.Second, "carol blocked", func() (bool, string) {
		got := blockedJIDs(t, e.url, h)
		return slices.Equal(got, []string{carol}), strings.Join(got, ",")
	})
	if c := chatIn(t, e.url, "contacts", carol, h); c["blocked"] != true {
		t.Errorf("contact %v, want blocked", c)
	}
	e.sb.BlockOnPhone(carol, false)
	testutil.Eventually(t, 10*time.Second, "carol unblocked", func() (bool, string) {
		got := blockedJIDs(t, e.url, h)
		return len(got) == 0, strings.Join(got, ",")
	})
}

// refusingContacts is the sandbox with a WhatsApp that refuses every
// block and chat setting.
type refusingContacts struct{ *whatsapp.Sandbox }

func (refusingContacts) Block(context.Context, string, bool) error {
	return errors.New("not-authorized")
}

func (refusingContacts) SetChatSetting(context.Context, string, whatsapp.ChatSetting) error {
	return errors.New("conflict")
}

// A change WhatsApp refuses is a 502 saying why, and nothing is stored.
func TestContactActionsWhatsAppRefuses(t *testing.T) {
	e := actionServer(t, config.WhatsApp{}, func(sb *whatsapp.Sandbox) whatsapp.Driver { return refusingContacts{sb} }, 0)
	h := apiKey(t, e.db, store.ScopeContactsWrite, store.ScopeMessagesRead)
	e.received(t, whatsapp.Incoming{Chat: alice, Text: "hi"})
	for _, c := range []struct{ path, body, why string }{
		{"/v1/blocklist/" + alice, ``, "not-authorized"},
		{"/v1/chats/" + alice + "/pin", `{"pinned":true}`, "conflict"},
	} {
		r := do(t, "POST", e.url+c.path, strings.NewReader(c.body), h)
		if r.status != 502 || errorOf(t, r)["code"] != "whatsapp_failed" || !strings.Contains(errorOf(t, r)["message"].(string), c.why) {
			t.Errorf("POST %s: %d %v, want 502 whatsapp_failed saying %s", c.path, r.status, r.body, c.why)
		}
	}
	if c := chatIn(t, e.url, "contacts", alice, h); c["blocked"] != nil || c["pinned"] != nil {
		t.Errorf("contact %v, want neither blocked nor pinned", c)
	}
}

// A chat archived, pinned, muted or a user blocked on the phone (the
// sandbox's levers, through HTTP) shows in GET /v1/chats, /v1/contacts and
// /v1/blocklist; bad levers are a 400 naming the field.
func TestChatChangedOnThePhone(t *testing.T) {
	e := actionServer(t, config.WhatsApp{}, nil, 0)
	h := apiKey(t, e.db, store.ScopeMessagesRead)
	e.received(t, whatsapp.Incoming{Chat: alice, Text: "hi"})
	if got := blockedJIDs(t, e.url, h); len(got) != 0 { // fetched, so kept from now on
		t.Fatalf("blocklist at first %v, want it empty", got)
	}
	until := time.Now().Add(8 * time.Hour).UTC().Truncate(time.Second)
	for _, c := range []struct{ action, body string }{
		{"phone_chat_setting", `{"chat":"+491701234567","setting":"pin","on":true}`},
		{"phone_chat_setting", `{"chat":"+491701234567","setting":"mute","on":true,"until":"` + until.Format(time.RFC3339) + `"}`},
		{"phone_block", `{"jid":"+491701234567","block":true}`},
	} {
		if r := do(t, "POST", e.url+"/v1/sandbox/"+c.action, strings.NewReader(c.body), e.session); r.status != 200 {
			t.Fatalf("POST /v1/sandbox/%s %s: %d %v", c.action, c.body, r.status, r.body)
		}
	}
	testutil.Eventually(t, 10*time.Second, "pinned, muted and blocked from the phone", func() (bool, string) {
		c := chatIn(t, e.url, "chats", alice, h)
		return c["pinned"] == true && c["muted"] == true && c["muted_until"] == until.Format(time.RFC3339) && c["blocked"] == true, fmt.Sprint(c)
	})
	if c := chatIn(t, e.url, "contacts", alice, h); c["blocked"] != true {
		t.Errorf("contact %v, want blocked", c)
	}
	// Archived on the phone: WhatsApp unpins it.
	if r := do(t, "POST", e.url+"/v1/sandbox/phone_chat_setting", strings.NewReader(`{"chat":"`+alice+`","setting":"archive","on":true}`), e.session); r.status != 200 {
		t.Fatalf("archive on the phone: %d %v", r.status, r.body)
	}
	testutil.Eventually(t, 10*time.Second, "archived and unpinned from the phone", func() (bool, string) {
		c := chatIn(t, e.url, "chats", alice, h)
		return c["archived"] == true && c["pinned"] == nil, fmt.Sprint(c)
	})
	for _, c := range []struct{ action, body, field string }{
		{"phone_chat_setting", `{"chat":"nobody!","setting":"pin","on":true}`, "chat"},
		{"phone_chat_setting", `{"chat":"+491701234567","setting":"star","on":true}`, "setting"},
		{"phone_chat_setting", `{"chat":"+491701234567","setting":"pin","on":true,"until":"2030-01-01T00:00:00Z"}`, "until"},
		{"phone_chat_setting", `{"chat":"+491701234567","setting":"mute","on":true,"until":"tomorrow"}`, "until"},
		{"phone_block", `{"jid":"120363025246125486@g.us","block":true}`, "jid"},
		{"phone_block", `{"jid":"+491701234567","block":"yes"}`, "block"},
	} {
		r := do(t, "POST", e.url+"/v1/sandbox/"+c.action, strings.NewReader(c.body), e.session)
		if r.status != 400 || errorOf(t, r)["field"] != c.field {
			t.Errorf("POST /v1/sandbox/%s %s: %d %v, want 400 naming %s", c.action, c.body, r.status, r.body, c.field)
		}
	}
}
