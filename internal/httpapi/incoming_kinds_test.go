package httpapi

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"app/internal/config"
	"app/internal/msg"
	"app/internal/store"
	"app/internal/testdb"
	"app/internal/testutil"
	"app/internal/whatsapp"
)

// inEnv is messageServer with the sandbox's routes on, a key for them,
// and the primary configured as the test says.
type inEnv struct {
	msgEnv
}

func incomingServer(t *testing.T, wc config.WhatsApp) inEnv {
	t.Helper()
	wc.MediaMaxBytes = 1 << 20
	return inEnv{messageServerWith(t, msgOptions{maxBody: 1 << 20, apiMedia: 1 << 20, sandbox: true, wa: wc})}
}

// history is a chat's history, newest first, as GET /v1/chats/{jid}/messages answers it.
func (e inEnv) history(t *testing.T, chat string) []map[string]any {
	t.Helper()
	r := do(t, "GET", e.url+"/v1/chats/"+url.PathEscape(chat)+"/messages?limit=200", nil, e.reader)
	if r.status != 200 {
		t.Fatalf("GET the history of %s: %d %v", chat, r.status, r.body)
	}
	var out []map[string]any
	for _, m := range r.body["messages"].([]any) {
		out = append(out, m.(map[string]any))
	}
	return out
}

// item waits until the history of chat has the message waID and cond
// holds for it, and returns it.
func (e inEnv) item(t *testing.T, chat, waID string, cond func(m map[string]any) bool) map[string]any {
	t.Helper()
	var got map[string]any
	testutil.Eventually(t, 10*time.Second, "message "+waID+" in the history of "+chat, func() (bool, string) {
		got = nil
		for _, m := range e.history(t, chat) {
			if m["wa_id"] == waID {
				got = m
			}
		}
		return got != nil && (cond == nil || cond(got)), fmt.Sprint(got)
	})
	return got
}

// incomingEvent waits for the message.incoming event of waID.
func (e inEnv) incomingEvent(t *testing.T, waID string) map[string]any {
	t.Helper()
	var got map[string]any
	testutil.Eventually(t, 10*time.Second, "message.incoming of "+waID, func() (bool, string) {
		for _, d := range e.eventsOf(t, "message.incoming") {
			if d["wa_id"] == waID {
				got = d
			}
		}
		return got != nil, "none"
	})
	return got
}

// updates are the message.updated events about the message wa_id.
func (e inEnv) updates(t *testing.T, waID string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, d := range e.eventsOf(t, "message.updated") {
		if d["wa_id"] == waID {
			out = append(out, d)
		}
	}
	return out
}

func js(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// Each kind a sandbox can be told to receive reaches the history and the
// event log with its kind and its parts.
func TestEveryIncomingKindInTheHistoryAndTheLog(t *testing.T) {
	e := incomingServer(t, config.WhatsApp{})
	const chat = "491701234567@s.whatsapp.net"
	for _, c := range []struct {
		kind, body string
		check      func(m map[string]any) string
	}{
		{"text", `{"chat":"+491701234567","text":"Hello","push_name":"Alice"}`, func(m map[string]any) string {
			return want(m["text"] == "Hello" && m["push_name"] == "Alice", "text Hello from Alice")
		}},
		{"image", `{"chat":"+491701234567","kind":"image","caption":"look","size":2000}`, func(m map[string]any) string {
			media, _ := m["media"].(map[string]any)
			return want(m["text"] == "look" && media["mime_type"] == "image/jpeg" && media["caption"] == "look" && media["size"] == float64(2000) &&
				media["file_id"] != nil, "caption look, a stored JPEG of 2000 bytes")
		}},
		{"video", `{"chat":"+491701234567","kind":"video","mime_type":"video/mp4"}`, mediaOf("video/mp4")},
		{"audio", `{"chat":"+491701234567","kind":"audio"}`, mediaOf("audio/mpeg")},
		{"voice", `{"chat":"+491701234567","kind":"voice"}`, mediaOf("audio/ogg; codecs=opus")},
		{"sticker", `{"chat":"+491701234567","kind":"sticker"}`, mediaOf("image/webp")},
		{"document", `{"chat":"+491701234567","kind":"document","file_name":"terms.pdf","caption":"the terms"}`, func(m map[string]any) string {
			media, _ := m["media"].(map[string]any)
			return want(media["file_name"] == "terms.pdf" && media["mime_type"] == "application/pdf" && m["text"] == "the terms", "terms.pdf")
		}},
		{"location", `{"chat":"+491701234567","kind":"location","latitude":52.52,"longitude":13.405,"name":"Berlin","address":"Unter den Linden"}`,
			func(m map[string]any) string {
				l, _ := m["location"].(map[string]any)
				return want(l["latitude"] == 52.52 && l["longitude"] == 13.405 && l["name"] == "Berlin" && l["address"] == "Unter den Linden", "Berlin's location")
			}},
		{"contacts", `{"chat":"+491701234567","kind":"contacts","contacts":[{"name":"Carol","phones":["+49 30 1234567"]},{"name":"Dan"}]}`,
			func(m map[string]any) string {
				cs, _ := m["contacts"].([]any)
				if len(cs) != 2 {
					return "two cards"
				}
				carol := cs[0].(map[string]any)
				vcard, _ := carol["vcard"].(string)
				return want(carol["name"] == "Carol" && js(carol["phones"]) == `["+49301234567"]` && strings.Contains(vcard, "FN:Carol") &&
					strings.Contains(vcard, "waid=49301234567") && cs[1].(map[string]any)["name"] == "Dan", "Carol's card with her number, and Dan's")
			}},
		{"poll", `{"chat":"+491701234567","kind":"poll","question":"Lunch?","options":["Pizza","Sushi","Salad"],"selectable":2}`,
			func(m map[string]any) string {
				p, _ := m["poll"].(map[string]any)
				return want(p["question"] == "Lunch?" && js(p["options"]) == `["Pizza","Sushi","Salad"]` && p["selectable"] == float64(2) &&
					m["text"] == "Lunch?", "the poll Lunch? with three options, two selectable")
			}},
	} {
		t.Run(c.kind, func(t *testing.T) {
			id := e.inject(t, c.body)
			// Announced once stored whole (a file included).
			ev := e.incomingEvent(t, id)
			m := e.item(t, chat, id, nil)
			if m["kind"] != c.kind || m["direction"] != "in" {
				t.Errorf("%s: kind %v direction %v", c.kind, m["kind"], m["direction"])
			}
			if why := c.check(m); why != "" {
				t.Errorf("%s in the history: %v, want %s", c.kind, m, why)
			}
			if ev["kind"] != c.kind {
				t.Errorf("%s: message.incoming %v has kind %v", c.kind, ev, ev["kind"])
			}
			// The same in the list of received messages.
			r := do(t, "GET", e.url+"/v1/messages?direction=incoming&limit=200&chat="+url.QueryEscape(chat), nil, e.reader)
			found := false
			for _, it := range r.body["messages"].([]any) {
				if it := it.(map[string]any); it["wa_id"] == id {
					found = it["kind"] == c.kind && c.check(it) == ""
				}
			}
			if !found {
				t.Errorf("%s: GET /v1/messages?direction=incoming does not show it so: %v", c.kind, r.body)
			}
		})
	}
	// The file of a voice note is what the sandbox sent: stored, served.
	for _, m := range e.history(t, chat) {
		if m["kind"] != "voice" {
			continue
		}
		id := m["media"].(map[string]any)["file_id"].(string)
		data, err := e.st.Media(context.Background(), id)
		if err != nil || len(data) != 1024 || !strings.HasPrefix(string(data), "sandbox voice ") {
			t.Errorf("the voice note's file: %d bytes %q..., %v", len(data), data[:min(len(data), 20)], err)
		}
	}
}

func want(ok bool, what string) string {
	if ok {
		return ""
	}
	return what
}

func mediaOf(mt string) func(m map[string]any) string {
	return func(m map[string]any) string {
		media, _ := m["media"].(map[string]any)
		return want(media["mime_type"] == mt && media["size"] == float64(1024) && media["file_id"] != nil, "a stored file of 1024 bytes, "+mt)
	}
}

// The sandbox's incoming action takes the fields of the kind it is told,
// each checked as WhatsApp's would be: a 400 names the field at fault.
func TestSandboxIncomingKindsAreChecked(t *testing.T) {
	st := testdb.Start(t).Connect(nil)
	u := serve(t, &Server{Backend: st, Sessions: st, Keys: st, Sandbox: true, Log: zerolog.Nop(), Worker: "1", MaxBodyBytes: 1 << 16}, nil)
	key, k := store.NewAPIKey("sandbox", []string{store.ScopeSession})
	if err := st.CreateAPIKey(context.Background(), k); err != nil {
		t.Fatal(err)
	}
	h := map[string]string{"Content-Type": "application/json", "Authorization": "Bearer " + key}
	const to = `"chat":"+491701234567",`
	for _, c := range []struct{ body, field string }{
		{`{"text":"hi"}`, "chat"},
		{`{` + to + `"kind":"gif"}`, "kind"},
		{`{` + to + `"text":" "}`, "text"},
		{`{` + to + `"text":"hi","latitude":1}`, "latitude"},
		{`{` + to + `"kind":"image","text":"hi"}`, "text"},
		{`{` + to + `"kind":"image","mime_type":"video/mp4"}`, "mime_type"},
		{`{` + to + `"kind":"sticker","mime_type":"image/png"}`, "mime_type"},
		{`{` + to + `"kind":"voice","mime_type":"audio/mpeg"}`, "mime_type"},
		{`{` + to + `"kind":"document","mime_type":"pdf"}`, "mime_type"},
		{`{` + to + `"kind":"image","size":0}`, "size"},
		{`{` + to + `"kind":"image","size":1.5}`, "size"},
		{`{` + to + `"kind":"image","size":"big"}`, "size"},
		{`{` + to + `"kind":"audio","caption":"no"}`, "caption"},
		{`{` + to + `"kind":"location","latitude":91,"longitude":0}`, "latitude"},
		{`{` + to + `"kind":"location","latitude":0,"longitude":-180.5}`, "longitude"},
		{`{` + to + `"kind":"location","latitude":0}`, "longitude"},
		{`{` + to + `"kind":"location","latitude":"north","longitude":0}`, "latitude"},
		{`{` + to + `"kind":"contacts"}`, "contacts"},
		{`{` + to + `"kind":"contacts","contacts":[]}`, "contacts"},
		{`{` + to + `"kind":"contacts","contacts":[{"phones":["+491701234567"]}]}`, "contacts"},
		{`{` + to + `"kind":"contacts","contacts":[{"name":"Carol","phones":["0301234567"]}]}`, "contacts"},
		{`{` + to + `"kind":"contacts","contacts":[{"name":"Carol","email":"c@example.com"}]}`, "contacts"},
		{`{` + to + `"kind":"contacts","contacts":{"name":"Carol"}}`, "contacts"},
		{`{` + to + `"kind":"poll","options":["a","b"]}`, "question"},
		{`{` + to + `"kind":"poll","question":"?","options":["only"]}`, "options"},
		{`{` + to + `"kind":"poll","question":"?","options":["a","a"]}`, "options"},
		{`{` + to + `"kind":"poll","question":"?","options":["a",""]}`, "options"},
		{`{` + to + `"kind":"poll","question":"?","options":["a","b",3]}`, "options"},
		{`{` + to + `"kind":"poll","question":"?","options":["1","2","3","4","5","6","7","8","9","10","11","12","13"]}`, "options"},
		{`{` + to + `"kind":"poll","question":"?","options":["a","b"],"selectable":3}`, "selectable"},
		{`{` + to + `"kind":"poll_vote","vote":["a"]}`, "target_wa_id"},
		{`{` + to + `"kind":"poll_vote","target_wa_id":"3EB0AB","vote":"a"}`, "vote"},
		{`{` + to + `"kind":"reaction","target_wa_id":"3EB0AB"}`, "emoji"},
		{`{` + to + `"kind":"reaction","target_wa_id":"3EB0AB","emoji":"ok"}`, "emoji"},
		{`{` + to + `"kind":"reaction","target_wa_id":"3EB0/AB","emoji":"👍"}`, "target_wa_id"},
		{`{` + to + `"kind":"reaction","target_wa_id":"3EB0AB","emoji":"👍","target_sender":"bob"}`, "target_sender"},
		{`{` + to + `"kind":"reaction","target_wa_id":"3EB0AB","emoji":"👍","target_from_me":"yes"}`, "target_from_me"},
		{`{` + to + `"kind":"edit","target_wa_id":"3EB0AB"}`, "text"},
		{`{` + to + `"kind":"edit","text":"new"}`, "target_wa_id"},
		{`{` + to + `"kind":"revoke","target_wa_id":"3EB0AB","text":"x"}`, "text"},
		{`{` + to + `"text":"hi","from_me":"true"}`, "from_me"},
	} {
		r := do(t, "POST", u+"/v1/sandbox/incoming", strings.NewReader(c.body), h)
		if r.status != 400 || errorOf(t, r)["field"] != c.field {
			t.Errorf("POST /v1/sandbox/incoming %s: %d %v, want 400 naming %s", c.body, r.status, r.body, c.field)
		}
	}
	for _, c := range []struct{ body, field string }{
		{`{}`, "from"},
		{`{"from":"120363025246125486@g.us"}`, "from"},
		{`{"from":"+491701234567","group":"+4915112345678"}`, "group"},
		{`{"from":"+491701234567","video":"yes"}`, "video"},
		{`{"from":"+491701234567","text":"hi"}`, "text"},
	} {
		r := do(t, "POST", u+"/v1/sandbox/call", strings.NewReader(c.body), h)
		if r.status != 400 || errorOf(t, r)["field"] != c.field {
			t.Errorf("POST /v1/sandbox/call %s: %d %v, want 400 naming %s", c.body, r.status, r.body, c.field)
		}
	}
}

// A vote names the options chosen, by the names of the poll it answers:
// ours (sent through the outbox) or one we received. WhatsApp sends the
// choices as hashes; one the poll does not have stays a hash.
func TestPollVotesNameTheOptions(t *testing.T) {
	e := incomingServer(t, config.WhatsApp{})
	const chat = "491701234567@s.whatsapp.net"
	poll := store.OutboxMessage{Chat: chat, Body: msg.Body{Kind: msg.KindPoll, Poll: &msg.Poll{Question: "Tea or coffee?",
		Options: []string{"Tea", "Coffee"}, Selectable: 1}}, Text: "Tea or coffee?", WAID: "3EB0POLL0001"}
	if err := e.st.EnqueueMessage(context.Background(), &poll); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 10*time.Second, "our poll sent", func() (bool, string) {
		m, err := e.st.OutboxMessage(context.Background(), poll.ID)
		return err == nil && m.Status != store.StatusQueued && m.Status != store.StatusSending, m.Status
	})

	id := e.inject(t, `{"chat":"+491701234567","kind":"poll_vote","target_wa_id":"3EB0POLL0001","target_from_me":true,"vote":["Coffee","Tea"]}`)
	v := e.item(t, chat, id, nil)
	target, _ := v["target"].(map[string]any)
	if v["kind"] != "poll_vote" || js(v["vote"]) != `["Coffee","Tea"]` || target["wa_id"] != "3EB0POLL0001" || target["id"] != poll.ID {
		t.Errorf("a vote on our poll: %v, want the options Coffee and Tea, the poll by WhatsApp id and our id %s", v, poll.ID)
	}
	if ev := e.incomingEvent(t, id); js(ev["vote"]) != `["Coffee","Tea"]` || ev["kind"] != "poll_vote" {
		t.Errorf("message.incoming of the vote: %v", ev)
	}
	juice := sha256.Sum256([]byte("Juice"))
	id = e.inject(t, `{"chat":"+491701234567","kind":"poll_vote","target_wa_id":"3EB0POLL0001","target_from_me":true,"vote":["Tea","Juice"]}`)
	if v := e.item(t, chat, id, nil); js(v["vote"]) != js([]string{"Tea", hex.EncodeToString(juice[:])}) {
		t.Errorf("a vote for an option the poll has not: %v, want Tea and the other's hash in hex", v["vote"])
	}
	id = e.inject(t, `{"chat":"+491701234567","kind":"poll_vote","target_wa_id":"3EB0POLL0001","target_from_me":true,"vote":[]}`)
	if v := e.item(t, chat, id, nil); v["vote"] != nil || v["kind"] != "poll_vote" {
		t.Errorf("a vote withdrawn: %v, want a poll_vote without options", v)
	}

	// A poll Alice sent, and our vote on it from the phone.
	pollID := e.inject(t, `{"chat":"+491701234567","kind":"poll","question":"When?","options":["Monday","Friday"]}`)
	id = e.inject(t, `{"chat":"+491701234567","kind":"poll_vote","from_me":true,"target_wa_id":"`+pollID+`","vote":["Friday"]}`)
	v = e.item(t, chat, id, nil)
	if js(v["vote"]) != `["Friday"]` || v["from_me"] != true || v["sender"] != whatsapp.SandboxJID {
		t.Errorf("our vote on Alice's poll: %v, want Friday, from us", v)
	}
}

// An edit changes the text the history shows and keeps the one it
// replaced; only the message's sender edits it; WhatsApp delivering the
// same edit again changes nothing more.
func TestEditsChangeTheHistoryAndKeepTheOldText(t *testing.T) {
	e := incomingServer(t, config.WhatsApp{})
	const chat = "491701234567@s.whatsapp.net"
	orig := e.inject(t, `{"chat":"+491701234567","text":"See you at 5"}`)
	e.item(t, chat, orig, nil)
	edit := e.inject(t, `{"chat":"+491701234567","kind":"edit","target_wa_id":"`+orig+`","text":"See you at 6"}`)
	m := e.item(t, chat, orig, func(m map[string]any) bool { return m["text"] == "See you at 6" })
	edits, _ := m["edits"].([]any)
	if len(edits) != 1 || edits[0].(map[string]any)["text"] != "See you at 5" || edits[0].(map[string]any)["at"] == nil || m["edited_at"] == nil {
		t.Errorf("the edited message: %v, want the old text kept with its time, and edited_at", m)
	}
	// The edit is a message of its own too, about its target.
	if em := e.item(t, chat, edit, nil); em["kind"] != "edit" || em["text"] != "See you at 6" || em["target"].(map[string]any)["wa_id"] != orig {
		t.Errorf("the edit in the history: %v", em)
	}
	if ev := e.incomingEvent(t, edit); ev["kind"] != "edit" || ev["target"].(map[string]any)["wa_id"] != orig {
		t.Errorf("message.incoming of the edit: %v", ev)
	}
	ups := e.updates(t, orig)
	if len(ups) != 1 || ups[0]["change"] != "edited" || ups[0]["text"] != "See you at 6" || ups[0]["key"] != chat+"/"+chat+"/"+orig ||
		len(ups[0]["edits"].([]any)) != 1 {
		t.Errorf("message.updated: %v, want one, edited, with the new text and the old", ups)
	}

	// WhatsApp delivers an edit again (the same message, id and time):
	// one old text, one update.
	again := whatsapp.Incoming{ID: "3ABEEF0001", Chat: chat, Body: msg.Body{Kind: msg.KindEdit, Target: &msg.Target{WAID: orig, Chat: chat}},
		Text: "See you at 7", Timestamp: time.Now()}
	e.sb.Inject(again)
	e.sb.Inject(again)
	later := e.inject(t, `{"chat":"+491701234567","text":"after the redelivery"}`)
	e.item(t, chat, later, nil) // delivered in order: the redeliveries were handled before
	m = e.item(t, chat, orig, nil)
	if m["text"] != "See you at 7" || len(m["edits"].([]any)) != 2 {
		t.Errorf("after an edit delivered twice: %v, want the text of 7 and two old texts (5 and 6)", m)
	}
	if ups := e.updates(t, orig); len(ups) != 2 {
		t.Errorf("message.updated after an edit delivered twice: %d events, want 2", len(ups))
	}
	n := 0
	for _, ev := range e.eventsOf(t, "message.incoming") {
		if ev["wa_id"] == again.ID {
			n++
		}
	}
	if n != 1 {
		t.Errorf("the redelivered edit was announced %d times, want once", n)
	}

	// In a group, one member cannot edit another's message.
	const group = "120363025246125486@g.us"
	gm := e.inject(t, `{"chat":"`+group+`","sender":"+491701234567","text":"I bring the cake"}`)
	e.item(t, group, gm, nil)
	forged := e.inject(t, `{"chat":"`+group+`","sender":"+4915112345678","kind":"edit","target_wa_id":"`+gm+`","text":"I bring nothing"}`)
	e.item(t, group, forged, nil)
	if m := e.item(t, group, gm, nil); m["text"] != "I bring the cake" || m["edits"] != nil {
		t.Errorf("a message another member edited: %v, want it unchanged", m)
	}
	if ups := e.updates(t, gm); len(ups) != 0 {
		t.Errorf("message.updated for an edit by someone else: %v", ups)
	}

	// An edit of a message we do not have: stored and announced, nothing else.
	lost := e.inject(t, `{"chat":"+491701234567","kind":"edit","target_wa_id":"3A0000NOTHERE","text":"?"}`)
	e.item(t, chat, lost, nil)
	e.incomingEvent(t, lost)
	if ups := e.updates(t, "3A0000NOTHERE"); len(ups) != 0 {
		t.Errorf("message.updated for a message not stored: %v", ups)
	}

	// We edit, on the phone, a message the API sent.
	r := do(t, "POST", e.url+"/v1/messages", strings.NewReader(`{"to":"+491701234567","text":"Teh order shipped."}`), e.writer)
	if r.status != 202 {
		t.Fatalf("POST /v1/messages: %d %v", r.status, r.body)
	}
	out := r.body["id"].(string)
	var sent store.OutboxMessage
	testutil.Eventually(t, 10*time.Second, "our message sent", func() (bool, string) {
		sent, _ = e.st.OutboxMessage(context.Background(), out)
		return sent.WAID != "" && store.StatusRank(sent.Status) >= store.StatusRank(store.StatusSent), sent.Status
	})
	e.inject(t, `{"chat":"+491701234567","kind":"edit","from_me":true,"target_wa_id":"`+sent.WAID+`","target_from_me":true,"text":"The order shipped."}`)
	testutil.Eventually(t, 10*time.Second, "our message edited", func() (bool, string) {
		sent, _ = e.st.OutboxMessage(context.Background(), out)
		return sent.Text == "The order shipped.", sent.Text
	})
	if len(sent.Edits) != 1 || sent.Edits[0].Text != "Teh order shipped." || sent.EditedAt.IsZero() {
		t.Errorf("our edited message: %+v, want the old text kept", sent.Changes)
	}
	if ups := e.updates(t, sent.WAID); len(ups) != 1 || ups[0]["id"] != out || ups[0]["text"] != "The order shipped." {
		t.Errorf("message.updated of our message: %v, want it by our id", ups)
	}
}

// A revoke marks the message deleted and removes its content, as its
// sender asked; WHATSAPP_KEEP_REVOKED keeps the content. Only the sender
// deletes a message in a one-to-one chat; in a group any member's revoke
// is taken (an admin may delete anyone's; the suite has no admin list).
func TestRevokesRemoveTheContent(t *testing.T) {
	for _, keep := range []bool{false, true} {
		t.Run(fmt.Sprintf("keep=%t", keep), func(t *testing.T) {
			e := incomingServer(t, config.WhatsApp{KeepRevoked: keep})
			const chat = "491701234567@s.whatsapp.net"
			photo := e.inject(t, `{"chat":"+491701234567","kind":"image","caption":"my address is 1 Main St"}`)
			before := e.item(t, chat, photo, func(m map[string]any) bool {
				media, _ := m["media"].(map[string]any)
				return media["file_id"] != nil
			})
			fileID := before["media"].(map[string]any)["file_id"]
			e.inject(t, `{"chat":"+491701234567","kind":"revoke","target_wa_id":"`+photo+`"}`)
			m := e.item(t, chat, photo, func(m map[string]any) bool { return m["revoked_at"] != nil })
			if m["kind"] != "image" {
				t.Errorf("a revoked image: kind %v, want image still", m["kind"])
			}
			if keep {
				if m["text"] != "my address is 1 Main St" || m["media"].(map[string]any)["file_id"] != fileID {
					t.Errorf("a revoked image with WHATSAPP_KEEP_REVOKED: %v, want its caption and file kept", m)
				}
			} else if m["text"] != nil || m["media"] != nil {
				t.Errorf("a revoked image: %v, want its caption and file gone", m)
			}
			ups := e.updates(t, photo)
			if len(ups) != 1 || ups[0]["change"] != "revoked" || ups[0]["revoked_at"] == nil || (!keep && ups[0]["text"] != nil) {
				t.Errorf("message.updated: %v, want one, revoked", ups)
			}

			// A poll, and a location, revoked: their parts go too.
			poll := e.inject(t, `{"chat":"+491701234567","kind":"poll","question":"Lunch?","options":["Pizza","Sushi"]}`)
			e.item(t, chat, poll, nil)
			e.inject(t, `{"chat":"+491701234567","kind":"revoke","target_wa_id":"`+poll+`"}`)
			m = e.item(t, chat, poll, func(m map[string]any) bool { return m["revoked_at"] != nil })
			if (m["poll"] == nil) != !keep {
				t.Errorf("a revoked poll: %v, want the poll kept only with WHATSAPP_KEEP_REVOKED", m)
			}

			// We cannot delete Alice's message in her chat.
			text := e.inject(t, `{"chat":"+491701234567","text":"mine"}`)
			e.item(t, chat, text, nil)
			e.inject(t, `{"chat":"+491701234567","kind":"revoke","from_me":true,"target_wa_id":"`+text+`"}`)
			later := e.inject(t, `{"chat":"+491701234567","text":"later"}`)
			e.item(t, chat, later, nil)
			if m := e.item(t, chat, text, nil); m["revoked_at"] != nil || m["text"] != "mine" {
				t.Errorf("Alice's message revoked by us in her chat: %v, want it kept", m)
			}

			// In a group, another member's revoke is taken.
			const group = "120363025246125486@g.us"
			gm := e.inject(t, `{"chat":"`+group+`","sender":"+491701234567","text":"spam"}`)
			e.item(t, group, gm, nil)
			e.inject(t, `{"chat":"`+group+`","sender":"+4915112345678","kind":"revoke","target_wa_id":"`+gm+`"}`)
			e.item(t, group, gm, func(m map[string]any) bool { return m["revoked_at"] != nil })
		})
	}
}

// A reaction is a message about another; its removal is a reaction
// without an emoji.
func TestReactionsAndTheirRemoval(t *testing.T) {
	e := incomingServer(t, config.WhatsApp{})
	const chat = "491701234567@s.whatsapp.net"
	text := e.inject(t, `{"chat":"+491701234567","text":"Lunch at noon?"}`)
	e.item(t, chat, text, nil)
	like := e.inject(t, `{"chat":"+491701234567","kind":"reaction","target_wa_id":"`+text+`","emoji":"👍"}`)
	m := e.item(t, chat, like, nil)
	if m["kind"] != "reaction" || m["reaction"] != "👍" || m["target"].(map[string]any)["wa_id"] != text {
		t.Errorf("a reaction: %v", m)
	}
	if ev := e.incomingEvent(t, like); ev["reaction"] != "👍" || ev["reaction_to"] != text || ev["target"].(map[string]any)["wa_id"] != text {
		t.Errorf("message.incoming of a reaction: %v", ev)
	}
	unlike := e.inject(t, `{"chat":"+491701234567","kind":"reaction","target_wa_id":"`+text+`","emoji":""}`)
	m = e.item(t, chat, unlike, nil)
	if m["kind"] != "reaction" || m["reaction"] != nil || m["target"].(map[string]any)["wa_id"] != text {
		t.Errorf("a reaction removed: %v, want a reaction without an emoji, about the same message", m)
	}
	// A keycap and a flag are one emoji each.
	for _, emoji := range []string{"1️⃣", "🇩🇪", "👍🏽", "👨‍👩‍👧"} {
		e.inject(t, `{"chat":"+491701234567","kind":"reaction","target_wa_id":"`+text+`","emoji":"`+emoji+`"}`)
	}
}

// A call is announced; with WHATSAPP_REJECT_CALLS it is rejected and
// WHATSAPP_REJECT_CALLS_MESSAGE goes to the caller, once per call however
// often WhatsApp tells of it.
func TestCallsRejectedWithTheirMessageOnce(t *testing.T) {
	e := incomingServer(t, config.WhatsApp{RejectCalls: true, RejectCallsMessage: "We cannot take calls; please write."})
	// A call is rejected over the connection, as WhatsApp tells of it
	// only over one.
	testutil.Eventually(t, 10*time.Second, "the sandbox connected", func() (bool, string) {
		return e.sb.Session().State == whatsapp.StateConnected, string(e.sb.Session().State)
	})
	r := do(t, "POST", e.url+"/v1/sandbox/call", strings.NewReader(`{"from":"+491701234567","video":true}`), e.session)
	callID, _ := r.body["call_id"].(string)
	if r.status != 200 || callID == "" {
		t.Fatalf("POST /v1/sandbox/call: %d %v", r.status, r.body)
	}
	var calls []map[string]any
	testutil.Eventually(t, 10*time.Second, "call.offered", func() (bool, string) {
		calls = e.eventsOf(t, "call.offered")
		return len(calls) == 1, fmt.Sprint(calls)
	})
	if c := calls[0]; c["id"] != callID || c["from"] != "491701234567@s.whatsapp.net" || c["video"] != true || c["rejected"] != true || c["at"] == nil {
		t.Errorf("call.offered: %v", c)
	}
	if rc := e.sb.RejectedCalls(); len(rc) != 1 || rc[0].CallID != callID || rc[0].From != "491701234567@s.whatsapp.net" {
		t.Errorf("the sandbox's rejections: %+v, want the call", rc)
	}
	// WhatsApp tells of the same call again.
	if _, err := e.sb.OfferCall(whatsapp.Call{ID: callID, From: "491701234567@s.whatsapp.net", Video: true}); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 10*time.Second, "the call offered again", func() (bool, string) {
		calls = e.eventsOf(t, "call.offered")
		return len(calls) == 2, fmt.Sprint(calls)
	})
	testutil.Eventually(t, 10*time.Second, "the message to the caller sent", func() (bool, string) {
		n := 0
		for _, s := range e.sb.Sent() {
			if s.Chat == "491701234567@s.whatsapp.net" && s.Text == "We cannot take calls; please write." {
				n++
			}
		}
		return n == 1, fmt.Sprint(n, " sent")
	})
	ms, err := e.st.OutboxPage(context.Background(), "491701234567@s.whatsapp.net", "", 0, "", 10)
	if err != nil || len(ms) != 1 {
		t.Errorf("the outbox to the caller: %d messages (%v), want the one message, once", len(ms), err)
	}

	// Without WHATSAPP_REJECT_CALLS a call rings on: announced, not rejected.
	quiet := incomingServer(t, config.WhatsApp{})
	r = do(t, "POST", quiet.url+"/v1/sandbox/call", strings.NewReader(`{"from":"+491701234567","group":"120363025246125486@g.us"}`), quiet.session)
	if r.status != 200 {
		t.Fatalf("POST /v1/sandbox/call: %d %v", r.status, r.body)
	}
	testutil.Eventually(t, 10*time.Second, "call.offered", func() (bool, string) {
		calls = quiet.eventsOf(t, "call.offered")
		return len(calls) == 1, fmt.Sprint(calls)
	})
	if c := calls[0]; c["rejected"] != false || c["video"] != false || c["chat"] != "120363025246125486@g.us" {
		t.Errorf("call.offered without WHATSAPP_REJECT_CALLS: %v, want a group call, not rejected", c)
	}
	if rc := quiet.sb.RejectedCalls(); len(rc) != 0 {
		t.Errorf("rejections without WHATSAPP_REJECT_CALLS: %+v", rc)
	}
}
