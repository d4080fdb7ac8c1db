package httpapi

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"app/internal/config"
	"app/internal/store"
	"app/internal/testdb"
	"app/internal/whatsapp"
)

// numberEnv is actionServer's primary and API with a reader's key.
type numberEnv struct {
	actionEnv
	reader map[string]string
}

// numberServer is actionServer with wa's settings, the sandbox's
// directory set to dir (JSON entries).
func numberServer(t *testing.T, wa config.WhatsApp, dir string) numberEnv {
	t.Helper()
	e := numberEnv{actionEnv: actionServer(t, wa, nil, 0)}
	e.reader = apiKey(t, e.db, store.ScopeMessagesRead)
	if dir != "" {
		if r := do(t, "POST", e.url+"/v1/sandbox/directory", strings.NewReader(`{"numbers":`+dir+`}`), e.session); r.status != 200 {
			t.Fatalf("POST /v1/sandbox/directory: %d %v", r.status, r.body)
		}
	}
	return e
}

const numberDir = `[{"number": "+491701234567", "on_whatsapp": true, "lid": "201001234567@lid"},
	{"number": "+4930123456", "on_whatsapp": true, "business_name": "Bäckerei Schmidt"},
	{"number": "+4915112345678", "on_whatsapp": false}]`

// check posts numbers (a JSON array) to /v1/contacts/check and returns
// the results.
func check(t *testing.T, url string, h map[string]string, numbers string) []map[string]any {
	t.Helper()
	r := do(t, "POST", url+"/v1/contacts/check", strings.NewReader(`{"numbers":`+numbers+`}`), h)
	if r.status != 200 {
		t.Fatalf("check %s: %d %v", numbers, r.status, r.body)
	}
	var out []map[string]any
	for _, v := range r.body["results"].([]any) {
		out = append(out, v.(map[string]any))
	}
	return out
}

// A batch is answered entry by entry in the request's order: numbers on
// WhatsApp with their JID, LID and business name, numbers not on it
// (the directory's and unknown ones), malformed ones with an error,
// duplicates at each of their places. The second lookup comes from the
// cache: WhatsApp is not asked again.
func TestCheckNumbers(t *testing.T) {
	e := numberServer(t, config.WhatsApp{}, numberDir)
	asked := `["+49 170 1234567", "4930123456", "+4915112345678", "+15550009999", "12ab", 42, "+491701234567", "0301234567"]`
	got := check(t, e.url, e.reader, asked)
	want := []string{
		"+491701234567 on 491701234567@s.whatsapp.net 201001234567@lid  fresh",
		"+4930123456 on 4930123456@s.whatsapp.net  Bäckerei Schmidt fresh",
		"+4915112345678 off    fresh",
		"+15550009999 off    fresh",
		"12ab error",
		"42 error",
		"+491701234567 on 491701234567@s.whatsapp.net 201001234567@lid  fresh",
		"0301234567 error",
	}
	describe := func(got []map[string]any) []string {
		var out []string
		for _, g := range got {
			if g["error"] != nil {
				out = append(out, fmt.Sprint(g["number"], " error"))
				continue
			}
			on := "off"
			if g["on_whatsapp"] == true {
				on = "on"
			}
			c := "fresh"
			if g["cached"] == true {
				c = "cached"
			}
			if g["checked_at"] == nil {
				c = "no time"
			}
			s := func(k string) string { v, _ := g[k].(string); return v }
			out = append(out, strings.Join([]string{s("number"), on, s("jid"), s("lid"), s("business_name"), c}, " "))
		}
		return out
	}
	if d := describe(got); strings.Join(d, "\n") != strings.Join(want, "\n") {
		t.Errorf("first check:\n%s\nwant\n%s", strings.Join(d, "\n"), strings.Join(want, "\n"))
	}
	if n := e.sb.NumberLookups(); n != 4 {
		t.Errorf("WhatsApp was asked about %d numbers, want the 4 distinct well-formed ones", n)
	}
	// WhatsApp's LID pair is learned.
	if p, err := e.db.LIDPair(context.Background(), "491701234567@s.whatsapp.net"); err != nil || p.LID != "201001234567@lid" {
		t.Errorf("LID pair %+v, %v", p, err)
	}

	again := check(t, e.url, e.reader, asked)
	for i := range want {
		want[i] = strings.Replace(want[i], " fresh", " cached", 1)
	}
	if d := describe(again); strings.Join(d, "\n") != strings.Join(want, "\n") {
		t.Errorf("second check:\n%s\nwant\n%s", strings.Join(d, "\n"), strings.Join(want, "\n"))
	}
	if n := e.sb.NumberLookups(); n != 4 {
		t.Errorf("the second check asked WhatsApp: %d numbers asked in all, want 4", n)
	}
	if got[0]["checked_at"] != again[0]["checked_at"] {
		t.Errorf("the cached answer is stamped %v, the first %v", again[0]["checked_at"], got[0]["checked_at"])
	}
}

// The pace holds the numbers over WHATSAPP_CHECKS_PER_MINUTE, saying when
// to ask again; the batch is answered, the others checked.
func TestCheckNumbersPaced(t *testing.T) {
	e := numberServer(t, config.WhatsApp{ChecksPerMinute: 3}, numberDir)
	got := check(t, e.url, e.reader, `["+491701234567", "+4930123456", "+4915112345678", "+15550009999", "+15550008888"]`)
	for i, g := range got {
		checked := g["checked_at"] != nil && g["on_whatsapp"] != nil && g["held"] == nil
		held := strings.HasPrefix(fmt.Sprint(g["held"]), "paced: ask again in ") && g["on_whatsapp"] == nil
		if i < 3 && !checked {
			t.Errorf("entry %d: %v, want it checked", i, g)
		}
		if i >= 3 && !held {
			t.Errorf("entry %d: %v, want it held by the pace", i, g)
		}
	}
	if n := e.sb.NumberLookups(); n != 3 {
		t.Errorf("WhatsApp asked about %d numbers, want 3", n)
	}
	// The checked ones come from the cache, which the pace does not count.
	again := check(t, e.url, e.reader, `["+491701234567", "+15550009999"]`)
	if again[0]["cached"] != true || again[1]["held"] == nil {
		t.Errorf("within the minute: %v, want the first cached and the second held", again)
	}
	if got[3]["held"] != "paced: ask again in 60s" {
		t.Errorf("held note %q, want a minute to wait", got[3]["held"])
	}
}

// Without a primary a check of numbers not cached is a 503 with
// Retry-After; one answered wholly from the cache needs none.
func TestCheckNumbersWithoutPrimary(t *testing.T) {
	db := testdb.Start(t).Connect(nil)
	url := serve(t, &Server{Backend: db, Sessions: db, Chats: db, Keys: db, Log: zerolog.Nop(), Worker: "1", MaxBodyBytes: 1 << 16}, nil)
	h := apiKey(t, db, store.ScopeMessagesRead)
	ask := func() reply {
		return do(t, "POST", url+"/v1/contacts/check", strings.NewReader(`{"numbers":["+491701234567","bad", "+4915112345678"]}`), h)
	}
	if r := ask(); r.status != 503 || errorOf(t, r)["code"] != "no_primary" || r.header.Get("Retry-After") == "" {
		t.Errorf("nothing cached, no primary: %d %v Retry-After %q, want 503", r.status, r.body, r.header.Get("Retry-After"))
	}
	now := time.Now()
	if err := db.SaveNumberChecks(context.Background(), []store.NumberCheck{
		{Number: "+491701234567", OnWhatsApp: true, JID: "491701234567@s.whatsapp.net", CheckedAt: now.Add(-time.Hour)},
		{Number: "+4915112345678", CheckedAt: now.Add(-7 * time.Hour)}, // not on WhatsApp: stale after 6 h
	}); err != nil {
		t.Fatal(err)
	}
	if r := ask(); r.status != 503 {
		t.Errorf("one cached answer stale, no primary: %d %v, want 503", r.status, r.body)
	}
	if err := db.SaveNumberChecks(context.Background(), []store.NumberCheck{{Number: "+4915112345678", CheckedAt: now.Add(-5 * time.Hour)}}); err != nil {
		t.Fatal(err)
	}
	r := ask()
	if r.status != 200 {
		t.Fatalf("all cached, no primary: %d %v, want 200", r.status, r.body)
	}
	res := r.body["results"].([]any)
	first, bad, third := res[0].(map[string]any), res[1].(map[string]any), res[2].(map[string]any)
	if first["on_whatsapp"] != true || first["cached"] != true || bad["error"] == nil || third["on_whatsapp"] != false || third["cached"] != true {
		t.Errorf("all cached: %v", res)
	}
}

// A body that is not a list of 1 to 500 numbers is a 400 naming numbers;
// so is a sandbox directory that is not a list of entries.
func TestCheckNumbersBadBody(t *testing.T) {
	e := numberServer(t, config.WhatsApp{}, "")
	many := `["+491701234567"` + strings.Repeat(`, "+491701234567"`, 500) + `]`
	for _, body := range []string{`{}`, `{"numbers": "+491701234567"}`, `{"numbers": []}`, `{"numbers": null}`, `{"numbers": ` + many + `}`} {
		r := do(t, "POST", e.url+"/v1/contacts/check", strings.NewReader(body), e.reader)
		if r.status != 400 || errorOf(t, r)["field"] != "numbers" {
			t.Errorf("%.60s: %d %v, want 400 on numbers", body, r.status, r.body)
		}
	}
	for _, body := range []string{`{"numbers": []}`, `{"numbers": ["+491701234567"]}`, `{"numbers": [{"number": "12"}]}`,
		`{"numbers": [{"number": "+491701234567", "lid": "4917@s.whatsapp.net"}]}`, `{"numbers": [{"number": "+491701234567", "name": "x"}]}`} {
		r := do(t, "POST", e.url+"/v1/sandbox/directory", strings.NewReader(body), e.session)
		if r.status != 400 || errorOf(t, r)["field"] != "numbers" {
			t.Errorf("directory %s: %d %v, want 400 on numbers", body, r.status, r.body)
		}
	}
	if n := e.sb.NumberLookups(); n != 0 {
		t.Errorf("bad requests asked WhatsApp about %d numbers", n)
	}
}

// stuckNumbers is the sandbox with a WhatsApp that does not answer
// number checks.
type stuckNumbers struct{ *whatsapp.Sandbox }

func (stuckNumbers) CheckNumbers(ctx context.Context, _ []string) ([]whatsapp.NumberInfo, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}

// WhatsApp not answering by the deadline is a 504, and nothing is cached.
func TestCheckNumbersDeadline(t *testing.T) {
	e := actionServer(t, config.WhatsApp{}, func(sb *whatsapp.Sandbox) whatsapp.Driver { return stuckNumbers{sb} }, 300*time.Millisecond)
	h := apiKey(t, e.db, store.ScopeMessagesRead)
	r := do(t, "POST", e.url+"/v1/contacts/check", strings.NewReader(`{"numbers":["+491701234567"]}`), h)
	if r.status != 504 || errorOf(t, r)["code"] != "primary_timeout" {
		t.Errorf("WhatsApp silent: %d %v, want 504 primary_timeout", r.status, r.body)
	}
	if got, err := e.db.NumberChecks(context.Background(), []string{"+491701234567"}); err != nil || len(got) != 0 {
		t.Errorf("cached after a timeout: %+v, %v", got, err)
	}
}
