package httpapi

import (
	"context"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"app/internal/store"
	"app/internal/testdb"
)

// What encoding/json lets through, or words in Go, in every JSON body: a
// wrong-typed or malformed time, bytes that are not UTF-8 (which it would
// store as U+FFFD), half a surrogate pair, and null. Each is a 400 naming
// the field in the API's words, and nothing is stored.
func TestBadValuesInBodiesNameTheField(t *testing.T) {
	db := testdb.Start(t)
	st := db.Connect(nil)
	key, k := store.NewAPIKey("bodies", []string{store.ScopeAdmin})
	if err := st.CreateAPIKey(context.Background(), k); err != nil {
		t.Fatal(err)
	}
	url := serve(t, &Server{Backend: st, Messages: st, Schedules: st, Webhooks: st, Sessions: st, Sandbox: true, Keys: st,
		Log: zerolog.Nop(), Worker: "1", MaxBodyBytes: 1 << 20}, nil)
	h := map[string]string{"Authorization": "Bearer " + key, "Content-Type": "application/json"}

	r := do(t, "POST", url+"/v1/schedules", strings.NewReader(`{"cron":"0 9 * * *","message":{"to":"+491701234567","text":"x"}}`), h)
	if r.status != 201 {
		t.Fatalf("a good schedule: %d %v", r.status, r.body)
	}
	sched := "/v1/schedules/" + r.body["id"].(string)
	r = do(t, "POST", url+"/v1/webhooks", strings.NewReader(`{"url":"https://hooks.example.com/in"}`), h)
	if r.status != 201 {
		t.Fatalf("a good webhook: %d %v", r.status, r.body)
	}
	hook := "/v1/webhooks/" + r.body["id"].(string)

	const msg = `"message":{"to":"+491701234567","text":"x"}`
	for _, c := range []struct{ method, path, body, field string }{
		// Times.
		{"POST", "/v1/schedules", `{"send_at":123,` + msg + `}`, "send_at"},
		{"POST", "/v1/schedules", `{"send_at":true,` + msg + `}`, "send_at"},
		{"POST", "/v1/schedules", `{"send_at":{"at":"soon"},` + msg + `}`, "send_at"},
		{"POST", "/v1/schedules", `{"send_at":"2026-13-01T00:00:00Z",` + msg + `}`, "send_at"},
		{"POST", "/v1/schedules", `{"cron":"0 9 * * *","start_at":1767225600,` + msg + `}`, "start_at"},
		{"POST", "/v1/schedules", `{"cron":"0 9 * * *","end_at":["2027-01-01T00:00:00Z"],` + msg + `}`, "end_at"},
		{"POST", "/v1/schedules", `{"cron":"0 9 * * *","start_at":"2027-01-01",` + msg + `}`, "start_at"},
		{"PATCH", sched, `{"version":1,"end_at":42}`, "end_at"},
		{"POST", hook + "/replay", `{"from_time":1767225600}`, "from_time"},
		{"POST", hook + "/replay", `{"from_time":"yesterday"}`, "from_time"},
		// Bytes that are not UTF-8, in values and in names, at any depth.
		{"POST", "/v1/messages", "{\"to\":\"+491701234567\",\"text\":\"caf\xe9\"}", "text"},
		{"POST", "/v1/messages", "{\"to\":\"+4917012\xff34567\",\"text\":\"hi\"}", "to"},
		{"POST", "/v1/messages", "{\"to\":\"+491701234567\",\"te\xffxt\":\"hi\"}", ""},
		{"POST", "/v1/schedules", "{\"cron\":\"0 9 * * *\",\"message\":{\"to\":\"+491701234567\",\"text\":\"\xc3\x28\"}}", "message.text"},
		{"POST", "/v1/webhooks", "{\"url\":\"https://hooks.example.com/in\",\"description\":\"\xed\xa0\x80\"}", "description"},
		{"POST", "/v1/webhooks", "{\"url\":\"https://hooks.example.com/in\",\"types\":[\"message.status\",\"\xfe\"]}", "types"},
		{"POST", "/v1/session/pair-code", "{\"phone\":\"+49170\x801234567\"}", "phone"},
		{"POST", "/v1/sandbox/incoming", "{\"chat\":\"+491701234567\",\"text\":\"\xff\"}", "text"},
		// Half a surrogate pair: valid JSON syntax, not Unicode.
		{"POST", "/v1/messages", `{"to":"+491701234567","text":"a\ud800b"}`, "text"},
		{"POST", "/v1/messages", `{"to":"+491701234567","text":"\udc00"}`, "text"},
		{"POST", "/v1/messages", `{"to":"+491701234567","text":"\ud800\u0041"}`, "text"},
		// null, which the document allows nowhere.
		{"POST", "/v1/messages", `{"to":"+491701234567","text":"hi","reply_to":null}`, "reply_to"},
		{"POST", "/v1/messages", `null`, ""},
		{"POST", "/v1/schedules", `{"cron":"0 9 * * *","message":{"to":null,"text":"x"}}`, "message.to"},
		{"PATCH", sched, `{"version":1,"timezone":null}`, "timezone"},
		{"PATCH", hook, `{"version":1,"description":null}`, "description"},
		{"POST", "/v1/webhooks", `{"url":"https://hooks.example.com/in","types":[null]}`, "types"},
		{"POST", "/v1/sandbox/incoming", `{"chat":"+491701234567","text":"hi","sender":null}`, "sender"},
		// The same inside a message kind's parts.
		{"POST", "/v1/messages", `{"to":"+491701234567","type":"location","location":{"latitude":null,"longitude":1}}`, "location.latitude"},
		{"POST", "/v1/messages", "{\"to\":\"+491701234567\",\"type\":\"poll\",\"poll\":{\"question\":\"q\",\"options\":[\"a\",\"\xff\"]}}", "poll.options"},
		{"POST", "/v1/messages", `{"to":"+491701234567","type":"contacts","contacts":[{"name":"\ud800","phones":["+491701234567"]}]}`, "contacts.name"},
	} {
		r := do(t, c.method, url+c.path, strings.NewReader(c.body), h)
		got := errorOf(t, r)
		msg, _ := got["message"].(string)
		if r.status != 400 || got["field"] != nilIfEmpty(c.field) {
			t.Errorf("%s %s %q: %d %v; want 400 naming %q", c.method, c.path, c.body, r.status, got, c.field)
		}
		for _, goWords := range []string{"Go ", "json:", "UnmarshalJSON", "time.Time", "parsing time", "struct"} {
			if strings.Contains(msg, goWords) {
				t.Errorf("%s %s %q: the message %q speaks Go (%q)", c.method, c.path, c.body, msg, goWords)
			}
		}
		if c.field != "" && !strings.Contains(msg, c.field) {
			t.Errorf("%s %s %q: the message %q does not say which field", c.method, c.path, c.body, msg)
		}
	}

	// Nothing of it was stored, and what is valid still goes through:
	// U+FFFD sent as such is text like any other.
	if ms, err := st.OutboxPage(context.Background(), "", "", 0, "", 10); err != nil || len(ms) != 0 {
		t.Errorf("the outbox holds %d messages after bad requests (%v)", len(ms), err)
	}
	for _, body := range []string{`{"to":"+491701234567","text":"\ufffd \ud83d\ude00"}`, "{\"to\":\"+491701234567\",\"text\":\"\xef\xbf\xbd caf\xc3\xa9\"}"} {
		if r := do(t, "POST", url+"/v1/messages", strings.NewReader(body), h); r.status != 202 {
			t.Errorf("%q: %d %v, want 202", body, r.status, r.body)
		}
	}
	r = do(t, "POST", url+"/v1/schedules", strings.NewReader(`{"cron":"0 9 * * *","start_at":"2027-01-01T00:00:00+01:00","end_at":"2027-06-01T00:00:00Z",`+msg+`}`), h)
	if r.status != 201 || r.body["start_at"] != "2026-12-31T23:00:00Z" {
		t.Errorf("a schedule with start_at and end_at: %d %v", r.status, r.body)
	}
}
