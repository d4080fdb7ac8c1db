package httpapi

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"app/internal/config"
	"app/internal/testutil"
)

// lidEnv is messageServer with the sandbox's levers, its files asked
// again after a delay.
type lidEnv struct {
	msgEnv
}

func lidServer(t *testing.T, retryDelay time.Duration) lidEnv {
	t.Helper()
	return lidEnv{messageServerWith(t, msgOptions{maxBody: 1 << 20, sandbox: true, retryDelay: retryDelay,
		wa: config.WhatsApp{MediaMaxBytes: 1 << 20}})}
}

// history waits for the chat's history to hold n messages and returns
// them, newest first.
func (e lidEnv) history(t *testing.T, jid string, n int) []map[string]any {
	t.Helper()
	var got []map[string]any
	testutil.Eventually(t, 10*time.Second, fmt.Sprintf("%d messages in %s's history", n, jid), func() (bool, string) {
		r := do(t, "GET", e.url+"/v1/chats/"+url.PathEscape(jid)+"/messages", nil, e.reader)
		got = nil
		list, _ := r.body["messages"].([]any)
		for _, m := range list {
			got = append(got, m.(map[string]any))
		}
		return r.status == 200 && len(got) == n, fmt.Sprint(r.status, r.body)
	})
	return got
}

// chats lists GET /v1/chats (or /v1/contacts) by JID.
func (e lidEnv) chats(t *testing.T, route string) map[string]map[string]any {
	t.Helper()
	r := do(t, "GET", e.url+route, nil, e.reader)
	if r.status != 200 {
		t.Fatalf("GET %s: %d %v", route, r.status, r.body)
	}
	key := strings.TrimPrefix(route, "/v1/")
	out := map[string]map[string]any{}
	list, _ := r.body[key].([]any)
	for _, c := range list {
		c := c.(map[string]any)
		out[c["jid"].(string)] = c
	}
	return out
}

func wantAddr(t *testing.T, what string, got map[string]any, want map[string]string) {
	t.Helper()
	for _, k := range []string{"chat_pn", "chat_lid", "sender_pn", "sender_lid", "pn", "lid"} {
		w, ok := want[k]
		if !ok {
			continue
		}
		if g, _ := got[k].(string); g != w {
			t.Errorf("%s: %s = %q, want %q (in %v)", what, k, g, w, got)
		}
	}
}

// Alice's and Bob's numbers (alice, bob) and their LIDs.
const (
	alicePN  = alice
	aliceLID = "201001234567@lid"
	bobPN    = bob
	bobLID   = "201009876543@lid"
)

// A person WhatsApp names by LID, whose number it tells: their messages,
// those by LID alone afterwards included, land in the number's chat, and
// the history, the chat, the contact and the events carry both forms; a
// message sent to the number carries them too.
func TestMessagesByLIDMeetInTheNumbersChat(t *testing.T) {
	e := lidServer(t, 0)
	first := e.inject(t, `{"chat":"+491701234567","chat_lid":"`+aliceLID+`","pn_known":true,"text":"hi","push_name":"Alice"}`)
	e.history(t, alicePN, 1)
	// By LID alone now, as WhatsApp often does: the number is known here.
	second := e.inject(t, `{"chat":"+491701234567","chat_lid":"`+aliceLID+`","text":"me again"}`)
	both := map[string]string{"chat_pn": alicePN, "chat_lid": aliceLID, "sender_pn": alicePN, "sender_lid": aliceLID}
	h := e.history(t, alicePN, 2)
	for i, id := range []string{second, first} {
		if h[i]["wa_id"] != id || h[i]["sender"] != alicePN {
			t.Errorf("history[%d] = %v, want %s from %s", i, h[i], id, alicePN)
		}
		wantAddr(t, "history", h[i], both)
	}
	if h := e.history(t, aliceLID, 0); len(h) != 0 {
		t.Errorf("the LID's chat has messages: %v", h)
	}
	chats := e.chats(t, "/v1/chats")
	if len(chats) != 1 || chats[alicePN] == nil {
		t.Fatalf("chats %v, want the number's only", chats)
	}
	wantAddr(t, "chat", chats[alicePN], map[string]string{"pn": alicePN, "lid": aliceLID})
	wantAddr(t, "contact", e.chats(t, "/v1/contacts")[alicePN], map[string]string{"pn": alicePN, "lid": aliceLID})
	if c, err := e.st.Contact(context.Background(), alicePN); err != nil || c.PushName != "Alice" || c.PN != alicePN || c.LID != aliceLID {
		t.Errorf("contact record %+v, %v; want Alice with both forms", c, err)
	}
	r := do(t, "GET", e.url+"/v1/messages?direction=incoming", nil, e.reader)
	list, _ := r.body["messages"].([]any)
	if len(list) != 2 {
		t.Fatalf("GET /v1/messages?direction=incoming: %d %v", r.status, r.body)
	}
	wantAddr(t, "incoming list", list[0].(map[string]any), both)
	evs := e.eventsOf(t, "message.incoming")
	if len(evs) != 2 {
		t.Fatalf("%d message.incoming events, want 2", len(evs))
	}
	for _, ev := range evs {
		if ev["chat"] != alicePN || ev["sender"] != alicePN {
			t.Errorf("event %v, want chat and sender the number", ev)
		}
		wantAddr(t, "message.incoming", ev, both)
	}

	// A send to the number: the recipient stays the number, with its LID.
	r = do(t, "POST", e.url+"/v1/messages", strings.NewReader(`{"to":"+491701234567","text":"hello Alice"}`), e.writer)
	if r.status != 202 {
		t.Fatalf("POST /v1/messages: %d %v", r.status, r.body)
	}
	id := r.body["id"].(string)
	var got reply
	testutil.Eventually(t, 10*time.Second, "the message delivered", func() (bool, string) {
		got = do(t, "GET", e.url+"/v1/messages/"+id, nil, e.reader)
		return got.body["status"] == "delivered", fmt.Sprint(got.status, got.body)
	})
	wantAddr(t, "sent message", got.body, map[string]string{"chat_pn": alicePN, "chat_lid": aliceLID})
	if sent := e.sb.Sent(); len(sent) != 1 || sent[0].Chat != alicePN {
		t.Errorf("sent %+v, want one to the number", sent)
	}
	out := e.history(t, alicePN, 3)[0]
	if out["direction"] != "out" {
		t.Fatalf("newest in the history: %v, want the sent message", out)
	}
	wantAddr(t, "sent message in the history", out, map[string]string{"chat_pn": alicePN, "chat_lid": aliceLID})
	for _, ev := range e.eventsOf(t, "message.status") {
		wantAddr(t, "message.status", ev, map[string]string{"chat_pn": alicePN, "chat_lid": aliceLID})
	}
}

// A LID whose number WhatsApp does not tell stays a chat of its own, which
// can be read and answered by the LID; once a message tells the number,
// the new messages are in the number's chat and the LID's chat names the
// number, so a client finds both.
func TestALIDWithoutNumberIsAChatUntilTheNumberIsLearned(t *testing.T) {
	e := lidServer(t, 0)
	first := e.inject(t, `{"chat":"+4915112345678","chat_lid":"`+bobLID+`","text":"guess who","push_name":"Bob"}`)
	h := e.history(t, bobLID, 1)
	if h[0]["wa_id"] != first || h[0]["sender"] != bobLID {
		t.Fatalf("the LID's history: %v", h)
	}
	wantAddr(t, "history", h[0], map[string]string{"chat_pn": "", "chat_lid": bobLID, "sender_pn": "", "sender_lid": bobLID})
	chats := e.chats(t, "/v1/chats")
	if len(chats) != 1 || chats[bobLID] == nil || chats[bobLID]["kind"] != "user" {
		t.Fatalf("chats %v, want the LID's, a user", chats)
	}
	wantAddr(t, "LID chat", chats[bobLID], map[string]string{"pn": "", "lid": bobLID})
	if chats[bobLID]["phone"] != nil {
		t.Errorf("the LID's chat shows phone %v before the number is known", chats[bobLID]["phone"])
	}
	wantAddr(t, "message.incoming", e.eventsOf(t, "message.incoming")[0], map[string]string{"chat_pn": "", "chat_lid": bobLID})

	// Answered by the LID, which the driver sends to as it is.
	r := do(t, "POST", e.url+"/v1/messages", strings.NewReader(`{"to":"`+bobLID+`","text":"who is this?"}`), e.writer)
	if r.status != 202 || r.body["to"] != bobLID {
		t.Fatalf("POST /v1/messages to a LID: %d %v", r.status, r.body)
	}
	testutil.Eventually(t, 10*time.Second, "the answer sent", func() (bool, string) {
		s := e.sb.Sent()
		return len(s) == 1 && s[0].Chat == bobLID, fmt.Sprint(s)
	})

	// The number is told: the chat is the number's from now on.
	second := e.inject(t, `{"chat":"+4915112345678","chat_lid":"`+bobLID+`","pn_known":true,"text":"it is Bob"}`)
	h = e.history(t, bobPN, 1)
	if h[0]["wa_id"] != second || h[0]["sender"] != bobPN {
		t.Fatalf("the number's history: %v", h)
	}
	wantAddr(t, "history", h[0], map[string]string{"chat_pn": bobPN, "chat_lid": bobLID, "sender_pn": bobPN, "sender_lid": bobLID})
	if h := e.history(t, bobLID, 2); h[1]["wa_id"] != first {
		t.Errorf("the LID's chat lost its message: %v", h)
	}
	chats = e.chats(t, "/v1/chats")
	wantAddr(t, "LID chat", chats[bobLID], map[string]string{"pn": bobPN, "lid": bobLID})
	if chats[bobLID]["phone"] != "+4915112345678" {
		t.Errorf("the LID's chat shows phone %v, want the number learned", chats[bobLID]["phone"])
	}
	wantAddr(t, "number's chat", chats[bobPN], map[string]string{"pn": bobPN, "lid": bobLID})
	contacts := e.chats(t, "/v1/contacts")
	wantAddr(t, "LID contact", contacts[bobLID], map[string]string{"pn": bobPN, "lid": bobLID})
	if c, err := e.st.Contact(context.Background(), bobLID); err != nil || c.PushName != "Bob" || c.PN != bobPN {
		t.Errorf("the LID's contact %+v, %v; want Bob, with the number learned", c, err)
	}
}

// attachmentIn is a history item's attachment.
func attachmentIn(t *testing.T, m map[string]any) map[string]any {
	t.Helper()
	a, ok := m["media"].(map[string]any)
	if !ok {
		t.Fatalf("message %v has no media", m)
	}
	return a
}

// A file gone from WhatsApp's servers is asked of the sender's phone: the
// history shows it pending, then the file once the phone sent it again;
// when the phone cannot, the reason.
func TestExpiredMediaComesFromTheSendersPhone(t *testing.T) {
	e := lidServer(t, 2*time.Second)
	id := e.inject(t, `{"chat":"+491701234567","text":"the photo","media_expired":true}`)
	h := e.history(t, alicePN, 1)
	if a := attachmentIn(t, h[0]); a["pending"] != true || a["file_id"] != nil || a["skipped"] != nil || h[0]["kind"] != "image" {
		t.Fatalf("before the phone answered: %v, want an image with its media pending", h[0])
	}
	evs := e.eventsOf(t, "message.incoming")
	if len(evs) != 1 || evs[0]["wa_id"] != id || evs[0]["media"].(map[string]any)["pending"] != true || evs[0]["media"].(map[string]any)["retry"] != nil {
		t.Fatalf("message.incoming %v, want the message with its media pending (and no driver data)", evs)
	}
	var fileID string
	testutil.Eventually(t, 10*time.Second, "the file sent again", func() (bool, string) {
		h := e.history(t, alicePN, 1)
		fileID, _ = attachmentIn(t, h[0])["file_id"].(string)
		return fileID != "", fmt.Sprint(h[0])
	})
	if a := attachmentIn(t, e.history(t, alicePN, 1)[0]); a["pending"] != nil || a["skipped"] != nil {
		t.Errorf("after the file came: %v, want neither pending nor skipped", a)
	}
	req, _ := http.NewRequest("GET", e.url+"/v1/media/"+fileID, nil)
	req.Header.Set("Authorization", e.reader["Authorization"])
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || string(body) != "JPEG the photo" || res.Header.Get("Content-Type") != "image/jpeg" {
		t.Errorf("GET /v1/media/%s: %d %s %q", fileID, res.StatusCode, res.Header.Get("Content-Type"), body)
	}
	up := e.eventsOf(t, "message.updated")
	if len(up) != 1 || up[0]["change"] != "media" || up[0]["wa_id"] != id || up[0]["chat"] != alicePN ||
		up[0]["media"].(map[string]any)["file_id"] != fileID || up[0]["media"].(map[string]any)["pending"] != nil {
		t.Errorf("message.updated %v, want one, change media, with the file", up)
	}

	// The phone cannot send it again: the reason, and nothing pending.
	lost := e.inject(t, `{"chat":"+491701234567","text":"lost","media_expired":true,"media_retry_fails":true}`)
	var a map[string]any
	testutil.Eventually(t, 10*time.Second, "the phone's answer", func() (bool, string) {
		a = attachmentIn(t, e.history(t, alicePN, 2)[0])
		return a["pending"] == nil, fmt.Sprint(a)
	})
	if s, _ := a["skipped"].(string); !strings.Contains(s, "cannot send the file again") || a["file_id"] != nil {
		t.Errorf("after a failed retry: %v, want skipped with the reason", a)
	}
	up = e.eventsOf(t, "message.updated")
	if len(up) != 2 || up[1]["wa_id"] != lost || up[1]["media"].(map[string]any)["skipped"] != a["skipped"] {
		t.Errorf("message.updated %v, want a second, with the reason", up)
	}
}

// The sandbox's LID and expired-media fields are checked like the others:
// a LID that is not one, a chat_lid for a group, flags that apply to
// nothing, each a 400 naming the field.
func TestSandboxLIDFieldsAreChecked(t *testing.T) {
	e := lidServer(t, 0)
	for _, c := range []struct{ body, field string }{
		{`{"chat":"+491701234567","text":"x","chat_lid":"+491701234567"}`, "chat_lid"},
		{`{"chat":"+491701234567","text":"x","chat_lid":"abc@lid"}`, "chat_lid"},
		{`{"chat":"120363025246125486@g.us","text":"x","chat_lid":"` + aliceLID + `"}`, "chat_lid"},
		{`{"chat":"` + aliceLID + `","text":"x","chat_lid":"` + aliceLID + `"}`, "chat_lid"},
		{`{"chat":"120363025246125486@g.us","text":"x","sender_lid":"` + aliceLID + `"}`, "sender_lid"},
		{`{"chat":"+491701234567","text":"x","pn_known":true}`, "pn_known"},
		{`{"chat":"+491701234567","text":"x","pn_known":"yes","chat_lid":"` + aliceLID + `"}`, "pn_known"},
		{`{"chat":"+491701234567","text":"x","media_retry_fails":true}`, "media_retry_fails"},
		{`{"chat":"+491701234567","text":"x","media_expired":1}`, "media_expired"},
	} {
		r := do(t, "POST", e.url+"/v1/sandbox/incoming", strings.NewReader(c.body), e.session)
		if r.status != 400 || errorOf(t, r)["field"] != c.field {
			t.Errorf("POST /v1/sandbox/incoming %s: %d %v, want 400 naming %s", c.body, r.status, r.body, c.field)
		}
	}
	// A group member by LID, the number told.
	e.inject(t, `{"chat":"120363025246125486@g.us","sender":"+491701234567","sender_lid":"`+aliceLID+`","pn_known":true,"text":"in the group"}`)
	h := e.history(t, "120363025246125486@g.us", 1)
	if h[0]["sender"] != alicePN {
		t.Errorf("group message from %v, want the number", h[0]["sender"])
	}
	wantAddr(t, "group message", h[0], map[string]string{"chat_pn": "", "chat_lid": "", "sender_pn": alicePN, "sender_lid": aliceLID})
	b, _ := json.Marshal(h[0])
	if strings.Contains(string(b), `"pn"`) {
		t.Errorf("a group message carries a chat's pn: %s", b)
	}
}
