package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"app/internal/config"
	"app/internal/store"
	"app/internal/testdb"
	"app/internal/testutil"
	"app/internal/whatsapp"
)

// groupEnv is actionServer with a key that reads and changes groups.
type groupEnv struct {
	actionEnv
	h map[string]string
}

// groupServer is actionServer with the sandbox's groups set up from
// groups (JSON of POST /v1/sandbox/groups); it returns their JIDs.
func groupServer(t *testing.T, groups string) (groupEnv, []string) {
	t.Helper()
	e := groupEnv{actionEnv: actionServer(t, config.WhatsApp{}, nil, 0)}
	e.h = apiKey(t, e.db, store.ScopeContactsWrite, store.ScopeMessagesRead)
	if groups == "" {
		return e, nil
	}
	r := do(t, "POST", e.url+"/v1/sandbox/groups", strings.NewReader(groups), e.session)
	if r.status != 200 {
		t.Fatalf("POST /v1/sandbox/groups: %d %v", r.status, r.body)
	}
	return e, strings.Split(r.body["jids"].(string), ",")
}

func (e groupEnv) call(t *testing.T, method, path, body string) reply {
	t.Helper()
	var rd *strings.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	if rd == nil {
		return do(t, method, e.url+path, nil, e.h)
	}
	return do(t, method, e.url+path, rd, e.h)
}

// groupEvents are the group events of the log, each as "type changes".
func (e groupEnv) groupEvents(t *testing.T) []string {
	t.Helper()
	evs, err := e.db.Events(context.Background(), 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, ev := range evs {
		if !strings.HasPrefix(ev.Type, "group.") {
			continue
		}
		var d struct {
			Changes map[string]any `json:"changes"`
			Removed bool           `json:"removed"`
			Group   struct {
				Name   string `json:"name"`
				Member bool   `json:"member"`
			} `json:"group"`
		}
		if err := ev.DecodeData(&d); err != nil {
			t.Fatal(err)
		}
		s := ev.Type + " " + d.Group.Name
		if d.Changes != nil {
			b, _ := json.Marshal(d.Changes)
			s += " " + string(b)
		}
		if d.Removed {
			s += " removed"
		}
		out = append(out, s)
	}
	return out
}

// waitEvents waits until the log's group events are want.
func (e groupEnv) waitEvents(t *testing.T, want ...string) {
	t.Helper()
	testutil.Eventually(t, 10*time.Second, "the group events", func() (bool, string) {
		got := e.groupEvents(t)
		return slices.Equal(got, want), strings.Join(got, "\n")
	})
}

func outcomes(t *testing.T, r reply) []string {
	t.Helper()
	var out []string
	ps, _ := r.body["participants"].([]any)
	for _, p := range ps {
		p := p.(map[string]any)
		s := fmt.Sprint(p["jid"], " ", p["ok"])
		if c, ok := p["code"]; ok {
			s += fmt.Sprint(" ", c)
		}
		if p["invite"] != nil && p["invite"] != "" {
			s += " invite"
		}
		out = append(out, s)
	}
	return out
}

// members are a group's participants as "jid" or "jid admin".
func members(g map[string]any) []string {
	var out []string
	ps, _ := g["participants"].([]any)
	for _, p := range ps {
		p := p.(map[string]any)
		s := p["jid"].(string)
		if p["admin"] == true {
			s += " admin"
		}
		out = append(out, s)
	}
	slices.Sort(out)
	return out
}

// A group created through the API comes back with each participant's
// outcome (one refused for their privacy, with an invite to send them);
// it is read back from the store without asking WhatsApp, listed among
// ours, and participants are added (one already in), promoted and
// demoted with their outcomes; each change is announced once.
func TestGroupCreateReadAndParticipants(t *testing.T) {
	e, _ := groupServer(t, `{"refuse_adds": ["+4915187654321"]}`)
	r := e.call(t, "POST", "/v1/groups", `{"name": "Launch", "participants": ["+491701234567", "4915187654321@s.whatsapp.net", "+491701234567"]}`)
	if r.status != 201 {
		t.Fatalf("create: %d %v", r.status, r.body)
	}
	if got, want := outcomes(t, r), []string{alice + " true", carol + " false 403 invite"}; !slices.Equal(got, want) {
		t.Errorf("create outcomes %q, want %q", got, want)
	}
	g := r.body["group"].(map[string]any)
	jid := g["jid"].(string)
	if g["name"] != "Launch" || g["member"] != true || g["admin"] != true || g["size"] != 2.0 || r.header.Get("Location") != "/v1/groups/"+jid {
		t.Errorf("created %v (Location %q), want Launch with us as admin and alice", g, r.header.Get("Location"))
	}
	if got, want := members(g), []string{whatsapp.SandboxJID + " admin", alice}; !slices.Equal(got, want) {
		t.Errorf("members %q, want %q", got, want)
	}

	reads := e.sb.GroupReads()
	r = e.call(t, "GET", "/v1/groups/"+jid, "")
	if r.status != 200 || r.body["name"] != "Launch" || len(members(r.body)) != 2 {
		t.Errorf("GET the group: %d %v", r.status, r.body)
	}
	r = e.call(t, "GET", "/v1/groups/"+strings.TrimSuffix(jid, "@g.us"), "")
	if r.status != 200 || r.body["jid"] != jid {
		t.Errorf("GET the group without @g.us: %d %v", r.status, r.body)
	}
	if n := e.sb.GroupReads(); n != reads {
		t.Errorf("reading a stored group asked WhatsApp %d times", n-reads)
	}
	r = e.call(t, "GET", "/v1/groups", "")
	if r.status != 200 || len(r.body["groups"].([]any)) != 1 {
		t.Fatalf("GET /v1/groups: %d %v", r.status, r.body)
	}
	if l := r.body["groups"].([]any)[0].(map[string]any); l["jid"] != jid || l["participants"] != nil || l["size"] != 2.0 {
		t.Errorf("listed %v, want the group without its participants", l)
	}

	r = e.call(t, "POST", "/v1/groups/"+jid+"/participants", `{"action": "add", "participants": ["+491701234567", "+4915112345678", "+4915187654321"]}`)
	if r.status != 200 {
		t.Fatalf("add: %d %v", r.status, r.body)
	}
	if got, want := outcomes(t, r), []string{alice + " false 409", bob + " true", carol + " false 403 invite"}; !slices.Equal(got, want) {
		t.Errorf("add outcomes %q, want %q", got, want)
	}
	r = e.call(t, "POST", "/v1/groups/"+jid+"/participants", `{"action": "promote", "participants": ["+4915112345678", "+4915199999999"]}`)
	if got, want := outcomes(t, r), []string{bob + " true", "4915199999999@s.whatsapp.net false 404"}; r.status != 200 || !slices.Equal(got, want) {
		t.Errorf("promote: %d %q, want %q", r.status, got, want)
	}
	if got, want := members(r.body["group"].(map[string]any)), []string{whatsapp.SandboxJID + " admin", bob + " admin", alice}; !slices.Equal(got, want) {
		t.Errorf("members after promote %q, want %q", got, want)
	}
	r = e.call(t, "POST", "/v1/groups/"+jid+"/participants", `{"action": "demote", "participants": ["+4915112345678"]}`)
	if got := outcomes(t, r); r.status != 200 || !slices.Equal(got, []string{bob + " true"}) {
		t.Errorf("demote: %d %q", r.status, got)
	}
	r = e.call(t, "POST", "/v1/groups/"+jid+"/participants", `{"action": "remove", "participants": ["+491701234567"]}`)
	if got := outcomes(t, r); r.status != 200 || !slices.Equal(got, []string{alice + " true"}) {
		t.Errorf("remove: %d %q", r.status, got)
	}
	if got, want := members(e.call(t, "GET", "/v1/groups/"+jid, "").body), []string{whatsapp.SandboxJID + " admin", bob}; !slices.Equal(got, want) {
		t.Errorf("members at the end %q, want %q", got, want)
	}
	// WhatsApp tells each change back; by then it is stored: one event each.
	e.waitEvents(t, "group.joined Launch",
		`group.updated Launch {"joined":["`+bob+`"]}`,
		`group.updated Launch {"promoted":["`+bob+`"]}`,
		`group.updated Launch {"demoted":["`+bob+`"]}`,
		`group.updated Launch {"left":["`+alice+`"]}`)
}

// Changes need the rights WhatsApp asks for, on a group that exists and
// that we are in: each refusal a 4xx naming why; malformed input is a
// 400 naming the field, and WhatsApp is not asked.
func TestGroupRefusals(t *testing.T) {
	e, jids := groupServer(t, `{"groups": [
		{"name": "Members", "participants": [{"jid": "+491701234567", "admin": true}]},
		{"name": "Old", "participants": ["+491701234567"], "left": true}]}`)
	members, old := jids[0], jids[1]
	for _, c := range []struct {
		method, path, body string
		status             int
		code, field        string
	}{
		{"GET", "/v1/groups/120363999999999999@g.us", "", 404, "group_not_found", "jid"},
		{"PATCH", "/v1/groups/120363999999999999", `{"name": "x"}`, 404, "group_not_found", "jid"},
		{"PATCH", "/v1/groups/" + members, `{"announce": true}`, 403, "not_group_admin", "jid"},
		{"POST", "/v1/groups/" + members + "/participants", `{"action": "promote", "participants": ["+491701234567"]}`, 403, "not_group_admin", "jid"},
		{"GET", "/v1/groups/" + members + "/invite", "", 403, "not_group_admin", "jid"},
		{"GET", "/v1/groups/" + members + "/requests", "", 403, "not_group_admin", "jid"},
		{"GET", "/v1/groups/" + old, "", 409, "not_in_group", "jid"},
		{"POST", "/v1/groups/" + old + "/leave", "", 409, "not_in_group", "jid"},
		{"GET", "/v1/groups/491701234567@s.whatsapp.net", "", 400, "invalid", "jid"},
		{"POST", "/v1/groups/" + members + "/participants", `{"action": "kick", "participants": ["+491701234567"]}`, 400, "invalid", "action"},
		{"POST", "/v1/groups/" + members + "/participants", `{"action": "add", "participants": ["+491701234567", "12ab"]}`, 400, "invalid", "participants[1]"},
		{"POST", "/v1/groups/" + members + "/participants", `{"action": "add", "participants": ["` + team + `"]}`, 400, "invalid", "participants[0]"},
		{"POST", "/v1/groups/" + members + "/participants", `{"action": "add", "participants": []}`, 400, "invalid", "participants"},
		{"POST", "/v1/groups", `{"name": "", "participants": []}`, 400, "invalid", "name"},
		{"POST", "/v1/groups", `{"name": "` + strings.Repeat("n", 101) + `"}`, 400, "invalid", "name"},
		{"POST", "/v1/groups", `{"name": "x", "participants": "+491701234567"}`, 400, "invalid", "participants"},
		{"PATCH", "/v1/groups/" + members, `{}`, 400, "invalid", ""},
		{"PATCH", "/v1/groups/" + members, `{"colour": "red"}`, 400, "invalid", "colour"},
		{"GET", "/v1/invites/not%20a%20code", "", 400, "invalid", "code"},
		{"GET", "/v1/groups?refresh=maybe", "", 400, "invalid", "refresh"},
		{"GET", "/v1/groups?after=zzz", "", 400, "invalid", "after"},
		{"PUT", "/v1/groups/" + members + "/photo", `{"media_id": ""}`, 400, "invalid", "media_id"},
	} {
		r := e.call(t, c.method, c.path, c.body)
		if r.status != c.status || errorOf(t, r)["code"] != c.code || errorOf(t, r)["field"] != nilIfEmpty(c.field) {
			t.Errorf("%s %s %s: %d %v, want %d %s naming %q", c.method, c.path, c.body, r.status, r.body, c.status, c.code, c.field)
		}
	}
	// A participant list over WhatsApp's limit.
	many := make([]string, whatsapp.MaxGroupSize)
	for i := range many {
		many[i] = fmt.Sprintf(`"+49170%07d"`, i)
	}
	list := "[" + strings.Join(many, ",") + "]"
	for path, body := range map[string]string{"/v1/groups": `{"name": "Big", "participants": ` + list + `}`,
		"/v1/groups/" + members + "/participants": `{"action": "add", "participants": ` + list + `}`} {
		r := e.call(t, "POST", path, body)
		if r.status != 400 || errorOf(t, r)["field"] != "participants" {
			t.Errorf("POST %s with %d participants: %d %v, want 400 naming participants", path, len(many), r.status, r.body)
		}
	}
	if n := e.sb.GroupChanges(); n != 0 {
		t.Errorf("refused changes reached WhatsApp %d times", n)
	}
}

// An invite link is got and reset by an admin (the old one then leads
// nowhere); another group's link is previewed and joined, given whole;
// leaving keeps the group readable as one we are no longer in.
func TestGroupInviteJoinAndLeave(t *testing.T) {
	e, jids := groupServer(t, `{"groups": [
		{"name": "Ours", "admin": true, "participants": ["+491701234567"], "invite": "OursCode1"},
		{"name": "Club", "left": true, "participants": [{"jid": "+4915112345678", "admin": true}], "invite": "ClubCode1"}]}`)
	ours, club := jids[0], jids[1]
	r := e.call(t, "GET", "/v1/groups/"+ours+"/invite", "")
	if r.status != 200 || r.body["link"] != "https://chat.whatsapp.com/OursCode1" || r.body["code"] != "OursCode1" {
		t.Fatalf("invite: %d %v", r.status, r.body)
	}
	r = e.call(t, "POST", "/v1/groups/"+ours+"/invite/reset", "")
	if r.status != 200 || r.body["code"] == "OursCode1" || r.body["code"] == "" {
		t.Fatalf("reset: %d %v", r.status, r.body)
	}
	fresh := r.body["code"].(string)
	for _, p := range []struct{ method, path string }{{"GET", "/v1/invites/OursCode1"}, {"POST", "/v1/invites/OursCode1/join"}} {
		if r := e.call(t, p.method, p.path, ""); r.status != 404 || errorOf(t, r)["code"] != "invite_invalid" || errorOf(t, r)["field"] != "code" {
			t.Errorf("%s %s after the reset: %d %v, want 404 invite_invalid", p.method, p.path, r.status, r.body)
		}
	}
	if r := e.call(t, "GET", "/v1/groups/"+ours+"/invite", ""); r.status != 200 || r.body["code"] != fresh {
		t.Errorf("invite after the reset: %d %v, want %s", r.status, r.body, fresh)
	}

	r = e.call(t, "GET", "/v1/invites/ClubCode1", "")
	if r.status != 200 || r.body["name"] != "Club" || r.body["member"] != false || r.body["jid"] != club {
		t.Errorf("preview: %d %v, want Club, not a member", r.status, r.body)
	}
	r = e.call(t, "POST", "/v1/invites/ClubCode1/join", "")
	if r.status != 200 || r.body["jid"] != club || r.body["pending"] != false {
		t.Fatalf("join: %d %v", r.status, r.body)
	}
	if g := r.body["group"].(map[string]any); g["member"] != true || g["admin"] != false || len(members(g)) != 2 {
		t.Errorf("joined %v, want us a member beside bob", g)
	}
	r = e.call(t, "POST", "/v1/groups/"+club+"/leave", "")
	if r.status != 200 || r.body["member"] != false {
		t.Fatalf("leave: %d %v", r.status, r.body)
	}
	if r := e.call(t, "GET", "/v1/groups/"+club, ""); r.status != 200 || r.body["member"] != false {
		t.Errorf("GET after leaving: %d %v, want the group with member false", r.status, r.body)
	}
	r = e.call(t, "GET", "/v1/groups?refresh=true", "")
	if r.status != 200 || len(r.body["groups"].([]any)) != 1 || r.body["groups"].([]any)[0].(map[string]any)["jid"] != ours {
		t.Errorf("our groups after leaving: %d %v, want only Ours", r.status, r.body)
	}
	if sg, _ := e.sb.SandboxGroupOf(club); !sg.Left {
		t.Errorf("WhatsApp still has us in %s", club)
	}
	e.waitEvents(t, `group.updated Ours {"invite_reset":true}`, "group.joined Club", "group.left Club")
}

// The name, description and settings are set in one PATCH; the photo is
// set from a JPEG body (anything else refused) and removed; join
// requests are listed, approved and rejected.
func TestGroupSettingsPhotoAndRequests(t *testing.T) {
	e, jids := groupServer(t, `{"groups": [{"name": "Ours", "admin": true, "join_approval": true,
		"participants": ["+491701234567"], "requests": ["+4915112345678", "+4915187654321"]}]}`)
	jid := jids[0]
	r := e.call(t, "PATCH", "/v1/groups/"+jid, `{"name": "Renamed", "description": "Sundays at ten", "announce": true, "locked": true, "admins_add_members": true}`)
	if r.status != 200 || r.body["name"] != "Renamed" || r.body["description"] != "Sundays at ten" || r.body["announce"] != true ||
		r.body["locked"] != true || r.body["admins_add_members"] != true || r.body["join_approval"] != true {
		t.Errorf("PATCH: %d %v", r.status, r.body)
	}
	if sg, _ := e.sb.SandboxGroupOf(jid); sg.Name != "Renamed" || sg.Description != "Sundays at ten" || !sg.Announce || !sg.Locked || !sg.AdminsAddMember {
		t.Errorf("WhatsApp has %+v", sg.Group)
	}

	jpeg := testJPEG(t, 64, 64, 10)
	put := func(ct string, body []byte) reply {
		h := map[string]string{"Authorization": e.h["Authorization"], "Content-Type": ct}
		return do(t, "PUT", e.url+"/v1/groups/"+jid+"/photo", bytes.NewReader(body), h)
	}
	if r := put("image/jpeg", jpeg); r.status != 200 || r.body["photo_id"] == nil || e.sb.GroupPhoto(jid) != r.body["photo_id"] {
		t.Errorf("PUT photo: %d %v (WhatsApp's photo %q)", r.status, r.body, e.sb.GroupPhoto(jid))
	}
	if r := put("image/png", []byte("\x89PNG\r\n\x1a\n")); r.status != 415 {
		t.Errorf("PUT a PNG: %d %v, want 415", r.status, r.body)
	}
	if r := put("image/jpeg", []byte("not a jpeg")); r.status != 415 {
		t.Errorf("PUT a body that is no JPEG: %d %v, want 415", r.status, r.body)
	}
	if r := put("image/jpeg", testJPEG(t, 64, 48, 10)); r.status != 422 || errorOf(t, r)["code"] != "picture_not_square" {
		t.Errorf("PUT a photo that is not square: %d %v, want 422 picture_not_square", r.status, r.body)
	}
	if r := e.call(t, "DELETE", "/v1/groups/"+jid+"/photo", ""); r.status != 200 || e.sb.GroupPhoto(jid) != "" {
		t.Errorf("DELETE photo: %d %v (WhatsApp's photo %q)", r.status, r.body, e.sb.GroupPhoto(jid))
	}

	requests := func() []string {
		r := e.call(t, "GET", "/v1/groups/"+jid+"/requests", "")
		if r.status != 200 {
			t.Fatalf("requests: %d %v", r.status, r.body)
		}
		var out []string
		for _, q := range r.body["requests"].([]any) {
			out = append(out, q.(map[string]any)["phone"].(string))
		}
		return out
	}
	if got := requests(); !slices.Equal(got, []string{"+4915112345678", "+4915187654321"}) {
		t.Errorf("requests %q", got)
	}
	r = e.call(t, "POST", "/v1/groups/"+jid+"/requests", `{"action": "approve", "participants": ["+4915112345678", "+491709999999"]}`)
	if got, want := outcomes(t, r), []string{bob + " true", "491709999999@s.whatsapp.net false 404"}; r.status != 200 || !slices.Equal(got, want) {
		t.Errorf("approve: %d %q, want %q", r.status, got, want)
	}
	if got := members(r.body["group"].(map[string]any)); !slices.Contains(got, bob) {
		t.Errorf("members after approving bob: %q", got)
	}
	if r := e.call(t, "POST", "/v1/groups/"+jid+"/requests", `{"action": "reject", "participants": ["+4915187654321"]}`); r.status != 200 || !slices.Equal(outcomes(t, r), []string{carol + " true"}) {
		t.Errorf("reject: %d %v", r.status, r.body)
	}
	if got := requests(); len(got) != 0 {
		t.Errorf("requests after answering them: %q", got)
	}
	if r := e.call(t, "POST", "/v1/groups/"+jid+"/requests", `{"action": "add", "participants": ["+4915187654321"]}`); r.status != 400 || errorOf(t, r)["field"] != "action" {
		t.Errorf("requests with action add: %d %v, want 400 naming action", r.status, r.body)
	}
}

// A change made elsewhere (someone joins, is promoted, the name changes)
// arrives as events on the log, updates the stored group (read back
// without asking WhatsApp) and renames the group's chat.
func TestGroupChangesMadeElsewhere(t *testing.T) {
	e, jids := groupServer(t, `{"groups": [{"jid": "`+team+`", "name": "Team", "participants": [{"jid": "+491701234567", "admin": true}]}]}`)
	jid := jids[0]
	e.received(t, whatsapp.Incoming{Chat: jid, Sender: alice, PushName: "Alice", Text: "hello"})
	if c := chatIn(t, e.url, "chats", jid, e.h); c["name"] != "Team" {
		t.Errorf("the group's chat is named %v, want Team (the group's name)", c["name"])
	}
	if r := e.call(t, "GET", "/v1/groups/"+jid, ""); r.status != 200 || r.body["name"] != "Team" {
		t.Fatalf("GET: %d %v", r.status, r.body)
	}
	change := func(body string) {
		t.Helper()
		if r := do(t, "POST", e.url+"/v1/sandbox/group_change", strings.NewReader(body), e.session); r.status != 200 {
			t.Fatalf("group_change %s: %d %v", body, r.status, r.body)
		}
	}
	change(`{"group": "` + jid + `", "sender": "+491701234567", "name": "Team 2026", "joined": ["+4915112345678"]}`)
	change(`{"group": "` + jid + `", "sender": "+491701234567", "promoted": ["+4915112345678"]}`)
	change(`{"group": "` + jid + `", "sender": "+491701234567", "left": ["` + whatsapp.SandboxJID + `"]}`)
	e.waitEvents(t, `group.updated Team 2026 {"joined":["`+bob+`"],"name":"Team 2026"}`,
		`group.updated Team 2026 {"promoted":["`+bob+`"]}`,
		"group.left Team 2026 removed")
	reads := e.sb.GroupReads()
	r := e.call(t, "GET", "/v1/groups/"+jid, "")
	if r.status != 200 || r.body["name"] != "Team 2026" || r.body["member"] != false || !slices.Contains(members(r.body), bob+" admin") {
		t.Errorf("the stored group after the changes: %d %v", r.status, r.body)
	}
	if n := e.sb.GroupReads(); n != reads {
		t.Errorf("reading the changed group asked WhatsApp %d times", n-reads)
	}
	if c := chatIn(t, e.url, "chats", jid, e.h); c["name"] != "Team 2026" {
		t.Errorf("the group's chat is named %v after the rename, want Team 2026", c["name"])
	}
	// The next message keeps the chat named after the group.
	e.received(t, whatsapp.Incoming{Chat: jid, Sender: bob, PushName: "Bob", Text: "hi", ChatName: "stale name"})
	if c := chatIn(t, e.url, "chats", jid, e.h); c["name"] != "Team 2026" {
		t.Errorf("the group's chat is named %v after a message, want Team 2026", c["name"])
	}
}

// Without a connected primary a group read that the store cannot answer
// and every change are a 503 with Retry-After; a stored fresh group is
// still served.
func TestGroupsWithoutPrimary(t *testing.T) {
	db := testdb.Start(t).Connect(nil)
	u := serve(t, &Server{Backend: db, Sessions: db, Chats: db, Keys: db, Log: zerolog.Nop(), Worker: "1", MaxBodyBytes: 1 << 16}, nil)
	h := apiKey(t, db, store.ScopeMessagesRead, store.ScopeContactsWrite)
	for _, c := range []struct{ method, path, body string }{
		{"GET", "/v1/groups", ""},
		{"GET", "/v1/groups/" + team, ""},
		{"POST", "/v1/groups", `{"name": "x"}`},
		{"PATCH", "/v1/groups/" + team, `{"name": "x"}`},
		{"POST", "/v1/groups/" + team + "/leave", ""},
		{"POST", "/v1/invites/AbC/join", ""},
	} {
		var body *strings.Reader
		if c.body != "" {
			body = strings.NewReader(c.body)
		}
		var r reply
		if body != nil {
			r = do(t, c.method, u+c.path, body, h)
		} else {
			r = do(t, c.method, u+c.path, nil, h)
		}
		if r.status != 503 || errorOf(t, r)["code"] != "no_primary" || r.header.Get("Retry-After") == "" {
			t.Errorf("%s %s without a primary: %d %v, want 503 no_primary with Retry-After", c.method, c.path, r.status, r.body)
		}
	}
	if err := db.SaveGroup(context.Background(), store.Group{JID: team, Name: "Team", Member: true, FetchedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if r := do(t, "GET", u+"/v1/groups/"+team, nil, h); r.status != 200 || r.body["name"] != "Team" {
		t.Errorf("a fresh stored group without a primary: %d %v, want 200", r.status, r.body)
	}
}
