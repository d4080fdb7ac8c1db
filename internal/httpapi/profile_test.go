package httpapi

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"io"
	"net/http"
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

// profileEnv is a worker's API (with the media routes) and a primary with
// the sandbox on one embedded database, with a reader's and a changer's
// key.
type profileEnv struct {
	actionEnv
	reader, changer map[string]string
}

func profileServer(t *testing.T, wc config.WhatsApp) profileEnv {
	t.Helper()
	db, st := testStore(t)
	now := time.Now()
	if ok, err := st.ClaimLease(context.Background(), store.Lease{Epoch: 1, Holder: "test", Host: "test", PID: 1, AcquiredAt: now, ExpiresAt: now.Add(time.Hour)}); !ok || err != nil {
		t.Fatalf("claim the lease: %v %v", ok, err)
	}
	sb, err := whatsapp.NewSandbox(whatsapp.SandboxConfig{Paired: whatsapp.SandboxJID, ConnectDelay: 20 * time.Millisecond, ReadDelay: -1})
	if err != nil {
		t.Fatal(err)
	}
	runPrimary(t, st, sb, wc, time.Hour)
	api := db.Connect(nil)
	e := profileEnv{actionEnv: actionEnv{db: st, sb: sb}}
	e.url = serve(t, &Server{Backend: api, Sessions: api, Chats: api, Keys: api, Media: api, MediaMaxBytes: 1 << 20, Sandbox: true,
		Log: zerolog.Nop(), Worker: "1", MaxBodyBytes: 1 << 20}, nil)
	e.session = apiKey(t, st, store.ScopeSession)
	e.reader = apiKey(t, st, store.ScopeMessagesRead)
	e.changer = apiKey(t, st, store.ScopeContactsWrite, store.ScopeMessagesRead)
	testutil.Eventually(t, 10*time.Second, "the session connected", func() (bool, string) {
		ws, err := st.Session(context.Background())
		return err == nil && ws.State == "connected", fmt.Sprint(ws.State, err)
	})
	return e
}

// lever posts body to the sandbox's action and returns its answer.
func (e profileEnv) lever(t *testing.T, action, body string) reply {
	t.Helper()
	r := do(t, "POST", e.url+"/v1/sandbox/"+action, strings.NewReader(body), e.session)
	if r.status != 200 {
		t.Fatalf("POST /v1/sandbox/%s: %d %v", action, r.status, r.body)
	}
	return r
}

// testJPEG is a w×h JPEG of one colour.
func testJPEG(t *testing.T, w, h int, c uint8) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for x := 0; x < w; x++ {
		for y := 0; y < h; y++ {
			img.Set(x, y, color.RGBA{c, 255 - c, 80, 255})
		}
	}
	var b bytes.Buffer
	if err := jpeg.Encode(&b, img, nil); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// fetchMedia reads a stored file through GET /v1/media/{id}.
func fetchMedia(t *testing.T, url, id string, h map[string]string) ([]byte, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", url+"/v1/media/"+id, nil)
	req.Header.Set("Authorization", h["Authorization"])
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != 200 {
		t.Fatalf("GET /v1/media/%s: %d %s", id, res.StatusCode, b)
	}
	return b, res.Header.Get("Content-Type")
}

const (
	aliceNumber = "+491701234567"
	aliceJID    = "491701234567@s.whatsapp.net"
	shopJID     = "4930123456@s.whatsapp.net"
)

// A profile is asked of WhatsApp once, then served from the store; refresh
// asks again. WhatsApp's LID for the user is learned.
func TestProfileIsServedFromTheCache(t *testing.T) {
	e := profileServer(t, config.WhatsApp{})
	e.lever(t, "profiles", `{"profiles": [{"jid": "`+aliceNumber+`", "about": "Hey there", "lid": "201001234567@lid"},
		{"jid": "`+shopJID+`", "business_name": "Bäckerei Schmidt"}]}`)
	r := do(t, "GET", e.url+"/v1/profiles/"+aliceNumber, nil, e.reader)
	if r.status != 200 || r.body["jid"] != aliceJID || r.body["about"] != "Hey there" || r.body["lid"] != "201001234567@lid" ||
		r.body["cached"] != false || r.body["checked_at"] == nil {
		t.Fatalf("first read: %d %v", r.status, r.body)
	}
	if n := e.sb.ProfileLookups(); n != 1 {
		t.Errorf("WhatsApp asked about %d users, want 1", n)
	}
	again := do(t, "GET", e.url+"/v1/profiles/"+aliceJID, nil, e.reader)
	if again.status != 200 || again.body["about"] != "Hey there" || again.body["cached"] != true || again.body["checked_at"] != r.body["checked_at"] {
		t.Errorf("second read: %d %v, want the cached answer", again.status, again.body)
	}
	if n := e.sb.ProfileLookups(); n != 1 {
		t.Errorf("the second read asked WhatsApp: %d lookups, want 1", n)
	}
	if p, err := e.db.LIDPair(context.Background(), aliceJID); err != nil || p.LID != "201001234567@lid" {
		t.Errorf("LID pair %+v, %v", p, err)
	}
	shop := do(t, "GET", e.url+"/v1/profiles/"+shopJID+"?refresh=true", nil, e.reader)
	if shop.status != 200 || shop.body["business_name"] != "Bäckerei Schmidt" || shop.body["cached"] != false {
		t.Errorf("shop: %d %v", shop.status, shop.body)
	}
	fresh := do(t, "GET", e.url+"/v1/profiles/"+aliceJID+"?refresh=true", nil, e.reader)
	if fresh.status != 200 || fresh.body["cached"] != false || e.sb.ProfileLookups() != 3 {
		t.Errorf("refresh: %d %v, %d lookups; want WhatsApp asked again", fresh.status, fresh.body, e.sb.ProfileLookups())
	}
	unknown := do(t, "GET", e.url+"/v1/profiles/+15550009999", nil, e.reader)
	if unknown.status != 404 || errorOf(t, unknown)["code"] != "not_on_whatsapp" {
		t.Errorf("a user WhatsApp does not know: %d %v", unknown.status, unknown.body)
	}
}

// The picture's image comes through us, byte for byte what the user set,
// and is fetched from WhatsApp once; a change on their phone drops it
// from the cache and is announced, and the next read has the new one.
func TestProfilePictureThroughUs(t *testing.T) {
	e := profileServer(t, config.WhatsApp{})
	pic := testJPEG(t, 64, 64, 10)
	e.lever(t, "profiles", `{"profiles": [{"jid": "`+aliceJID+`", "picture": "`+base64.StdEncoding.EncodeToString(pic)+`"}]}`)
	r := do(t, "GET", e.url+"/v1/profiles/"+aliceJID+"/picture", nil, e.reader)
	id, _ := r.body["media_id"].(string)
	if r.status != 200 || r.body["id"] == "" || id == "" || r.body["media_url"] != "/v1/media/"+id || r.body["cached"] != false {
		t.Fatalf("picture: %d %v", r.status, r.body)
	}
	got, ct := fetchMedia(t, e.url, id, e.reader)
	if !bytes.Equal(got, pic) || ct != "image/jpeg" {
		t.Errorf("the image through us: %d bytes of %s, want the %d bytes set", len(got), ct, len(pic))
	}
	again := do(t, "GET", e.url+"/v1/profiles/"+aliceJID+"/picture", nil, e.reader)
	if again.status != 200 || again.body["media_id"] != id || again.body["cached"] != true {
		t.Errorf("second read: %d %v, want the cached picture", again.status, again.body)
	}
	if n, f := e.sb.ProfileLookups(), e.sb.PictureFetches(); n != 1 || f != 1 {
		t.Errorf("WhatsApp asked %d times, the picture fetched %d times; want once each", n, f)
	}
	// The profile tells the same picture id.
	if p := do(t, "GET", e.url+"/v1/profiles/"+aliceJID, nil, e.reader); p.body["picture_id"] != r.body["id"] {
		t.Errorf("profile's picture_id %v, want %v", p.body["picture_id"], r.body["id"])
	}
	preview := do(t, "GET", e.url+"/v1/profiles/"+aliceJID+"/picture?preview=true", nil, e.reader)
	if preview.status != 200 || preview.body["preview"] != true || preview.body["cached"] != false {
		t.Errorf("preview: %d %v", preview.status, preview.body)
	}

	// Alice changes her picture on her phone.
	next := testJPEG(t, 64, 64, 200)
	ch := e.lever(t, "picture_change", `{"jid": "`+aliceNumber+`", "picture": "`+base64.StdEncoding.EncodeToString(next)+`"}`)
	newID, _ := ch.body["picture_id"].(string)
	var evs []map[string]any
	testutil.Eventually(t, 10*time.Second, "profile.updated announced", func() (bool, string) {
		evs = eventData(t, e.db, "profile.updated")
		return len(evs) == 1, fmt.Sprint(evs)
	})
	if evs[0]["jid"] != aliceJID || evs[0]["change"] != "picture" || evs[0]["picture_id"] != newID || newID == "" {
		t.Errorf("event %v, want alice's picture changed to %s", evs[0], newID)
	}
	after := do(t, "GET", e.url+"/v1/profiles/"+aliceJID+"/picture", nil, e.reader)
	nid, _ := after.body["media_id"].(string)
	if after.status != 200 || after.body["cached"] != false || after.body["id"] != newID || nid == id {
		t.Fatalf("after the change: %d %v", after.status, after.body)
	}
	if got, _ := fetchMedia(t, e.url, nid, e.reader); !bytes.Equal(got, next) {
		t.Errorf("the new image through us is not the new picture")
	}

	// Removed: announced, and then there is none.
	e.lever(t, "picture_change", `{"jid": "`+aliceJID+`", "removed": true}`)
	testutil.Eventually(t, 10*time.Second, "the removal announced", func() (bool, string) {
		evs = eventData(t, e.db, "profile.updated")
		return len(evs) == 2 && evs[1]["removed"] == true, fmt.Sprint(evs)
	})
	gone := do(t, "GET", e.url+"/v1/profiles/"+aliceJID+"/picture", nil, e.reader)
	if gone.status != 404 || errorOf(t, gone)["code"] != "no_picture" {
		t.Errorf("after the removal: %d %v", gone.status, gone.body)
	}
}

// eventData are the data of the log's events of typ, in order.
func eventData(t *testing.T, st store.Store, typ string) []map[string]any {
	t.Helper()
	evs, err := st.Events(context.Background(), 0, 100000)
	if err != nil {
		t.Fatal(err)
	}
	var out []map[string]any
	for _, ev := range evs {
		if ev.Type == typ {
			var d map[string]any
			if err := ev.DecodeData(&d); err != nil {
				t.Fatal(err)
			}
			out = append(out, d)
		}
	}
	return out
}

// A picture hidden from us, none at all, and a user who is no business
// are each a 404 saying why, cached as answers are.
func TestProfileNotFoundsSayWhy(t *testing.T) {
	e := profileServer(t, config.WhatsApp{})
	e.lever(t, "profiles", `{"profiles": [
		{"jid": "`+aliceJID+`", "picture": "`+base64.StdEncoding.EncodeToString(testJPEG(t, 8, 8, 1))+`", "picture_hidden": true},
		{"jid": "+4915112345678"},
		{"jid": "`+shopJID+`", "business_name": "Bäckerei", "business": {"address": "Hauptstr. 1", "categories": ["Bakery"],
			"time_zone": "Europe/Berlin", "hours": [{"day": "mon", "mode": "specific_hours", "open": "07:00", "close": "18:00"}]}}]}`)
	for i := 0; i < 2; i++ {
		for _, c := range []struct{ path, code string }{
			{"/v1/profiles/" + aliceJID + "/picture", "picture_hidden"},
			{"/v1/profiles/+4915112345678/picture", "no_picture"},
			{"/v1/profiles/" + aliceJID + "/business", "not_business"},
		} {
			r := do(t, "GET", e.url+c.path, nil, e.reader)
			if r.status != 404 || errorOf(t, r)["code"] != c.code || errorOf(t, r)["field"] != "jid" {
				t.Errorf("%s: %d %v, want 404 %s", c.path, r.status, r.body, c.code)
			}
		}
		if n := e.sb.ProfileLookups(); n != 3 {
			t.Errorf("round %d: %d lookups, want 3 (the second round from the cache)", i, n)
		}
	}
	if p := do(t, "GET", e.url+"/v1/profiles/"+aliceJID, nil, e.reader); p.status != 200 || p.body["picture_id"] != nil {
		t.Errorf("a hidden picture's id is shown: %v", p.body)
	}
	biz := do(t, "GET", e.url+"/v1/profiles/"+shopJID+"/business", nil, e.reader)
	hours, _ := biz.body["hours"].([]any)
	if biz.status != 200 || biz.body["address"] != "Hauptstr. 1" || fmt.Sprint(biz.body["categories"]) != "[Bakery]" ||
		biz.body["time_zone"] != "Europe/Berlin" || len(hours) != 1 || biz.body["cached"] != false {
		t.Errorf("business: %d %v", biz.status, biz.body)
	}
	if again := do(t, "GET", e.url+"/v1/profiles/"+shopJID+"/business", nil, e.reader); again.body["cached"] != true || again.body["address"] != "Hauptstr. 1" {
		t.Errorf("business again: %v", again.body)
	}
}

// Our own push name, about text and picture are set through WhatsApp
// (the sandbox records each) and read back; the picture is removed.
func TestOwnProfileSetAndReadBack(t *testing.T) {
	e := profileServer(t, config.WhatsApp{})
	r := do(t, "PATCH", e.url+"/v1/profile", strings.NewReader(`{"push_name": "Bäckerei Support", "about": "Mo–Fr 7–18 Uhr"}`), e.changer)
	if r.status != 200 || r.body["push_name"] != "Bäckerei Support" || r.body["about"] != "Mo–Fr 7–18 Uhr" {
		t.Fatalf("PATCH /v1/profile: %d %v", r.status, r.body)
	}
	me := do(t, "GET", e.url+"/v1/profile", nil, e.reader)
	if me.status != 200 || me.body["jid"] != whatsapp.SandboxJID || me.body["push_name"] != "Bäckerei Support" || me.body["about"] != "Mo–Fr 7–18 Uhr" {
		t.Errorf("GET /v1/profile: %d %v", me.status, me.body)
	}
	pic := testJPEG(t, 640, 640, 30)
	req, _ := http.NewRequest("PUT", e.url+"/v1/profile/picture", bytes.NewReader(pic))
	req.Header.Set("Authorization", e.changer["Authorization"])
	req.Header.Set("Content-Type", "image/jpeg")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("PUT /v1/profile/picture: %d", res.StatusCode)
	}
	// An uploaded one by its media id.
	up := do(t, "POST", e.url+"/v1/media", bytes.NewReader(testJPEG(t, 100, 100, 90)), with(e.changer, "Content-Type", "image/jpeg"))
	if up.status != 403 {
		t.Errorf("upload with contacts:write only: %d, want 403", up.status)
	}
	uploader := apiKey(t, e.db, store.ScopeMessagesWrite)
	up = do(t, "POST", e.url+"/v1/media", bytes.NewReader(testJPEG(t, 100, 100, 90)), with(uploader, "Content-Type", "image/jpeg"))
	byID := do(t, "PUT", e.url+"/v1/profile/picture", strings.NewReader(`{"media_id": "`+up.body["id"].(string)+`"}`), e.changer)
	if byID.status != 200 || byID.body["picture_id"] == "" {
		t.Errorf("PUT by media_id: %d %v", byID.status, byID.body)
	}
	own := do(t, "GET", e.url+"/v1/profile?refresh=true", nil, e.reader)
	if own.body["picture_id"] != byID.body["picture_id"] {
		t.Errorf("our picture id %v, want %v", own.body["picture_id"], byID.body["picture_id"])
	}
	if d := do(t, "DELETE", e.url+"/v1/profile/picture", nil, e.changer); d.status != 200 {
		t.Errorf("DELETE: %d %v", d.status, d.body)
	}
	calls := e.sb.ProfileCalls()
	kinds := []string{}
	for _, c := range calls {
		kinds = append(kinds, c.Kind)
	}
	if strings.Join(kinds, " ") != "push_name about picture picture remove_picture" ||
		calls[0].Text != "Bäckerei Support" || calls[1].Text != "Mo–Fr 7–18 Uhr" || !bytes.Equal(calls[2].Picture, pic) {
		t.Errorf("the sandbox was asked %v", kinds)
	}
	if own := do(t, "GET", e.url+"/v1/profile?refresh=true", nil, e.reader); own.status != 200 || own.body["picture_id"] != nil {
		t.Errorf("after the removal: %v", own.body)
	}
}

// Bad input is a 4xx naming the field and the reason, and nothing is
// asked of WhatsApp; a reader cannot change our profile.
func TestProfileBadInput(t *testing.T) {
	e := profileServer(t, config.WhatsApp{})
	var pngBuf bytes.Buffer
	_ = png.Encode(&pngBuf, image.NewRGBA(image.Rect(0, 0, 8, 8)))
	for _, c := range []struct {
		method, path, ctype string
		body                []byte
		status              int
		code, field         string
	}{
		{"GET", "/v1/profiles/12ab", "", nil, 400, "invalid", "jid"},
		{"GET", "/v1/profiles/120363025246125486@g.us", "", nil, 400, "invalid", "jid"},
		{"GET", "/v1/profiles/120363025246125486@g.us/business", "", nil, 400, "invalid", "jid"},
		{"GET", "/v1/profiles/" + aliceJID + "?refresh=yes", "", nil, 400, "invalid", "refresh"},
		{"GET", "/v1/profiles/" + aliceJID + "/picture?preview=1", "", nil, 400, "invalid", "preview"},
		{"PATCH", "/v1/profile", "application/json", []byte(`{}`), 400, "invalid", "push_name"},
		{"PATCH", "/v1/profile", "application/json", []byte(`{"push_name": "` + strings.Repeat("ä", 26) + `"}`), 400, "invalid", "push_name"},
		{"PATCH", "/v1/profile", "application/json", []byte(`{"push_name": "  "}`), 400, "invalid", "push_name"},
		{"PATCH", "/v1/profile", "application/json", []byte(`{"push_name": 7}`), 400, "invalid", "push_name"},
		{"PATCH", "/v1/profile", "application/json", []byte(`{"about": "` + strings.Repeat("x", 140) + `"}`), 400, "invalid", "about"},
		{"PATCH", "/v1/profile", "application/json", []byte(`{"about": "two\nlines"}`), 400, "invalid", "about"},
		{"PATCH", "/v1/profile", "application/json", []byte(`{"status": "x"}`), 400, "invalid", "status"},
		{"PUT", "/v1/profile/picture", "image/jpeg", pngBuf.Bytes(), 415, "unsupported_media_type", "picture"},
		{"PUT", "/v1/profile/picture", "image/jpeg", []byte("not an image"), 415, "unsupported_media_type", "picture"},
		{"PUT", "/v1/profile/picture", "image/jpeg", testJPEG(t, 64, 32, 1), 422, "picture_not_square", "picture"},
		{"PUT", "/v1/profile/picture", "image/jpeg", testJPEG(t, 700, 700, 1), 422, "picture_too_large", "picture"},
		{"PUT", "/v1/profile/picture", "image/png", pngBuf.Bytes(), 415, "unsupported_media_type", ""},
		{"PUT", "/v1/profile/picture", "application/json", []byte(`{}`), 400, "invalid", "media_id"},
		{"PUT", "/v1/profile/picture", "application/json", []byte(`{"media_id": "0123456789abcdef01234567"}`), 404, "not_found", "media_id"},
	} {
		var body io.Reader
		if c.body != nil {
			body = bytes.NewReader(c.body)
		}
		h := e.changer
		if c.ctype != "" {
			h = with(h, "Content-Type", c.ctype)
		}
		r := do(t, c.method, e.url+c.path, body, h)
		if r.status != c.status || errorOf(t, r)["code"] != c.code || (errorOf(t, r)["field"] != nil && errorOf(t, r)["field"] != c.field) ||
			(c.field != "" && errorOf(t, r)["field"] != c.field) {
			t.Errorf("%s %s %.40q: %d %v, want %d %s naming %q", c.method, c.path, c.body, r.status, r.body, c.status, c.code, c.field)
		}
	}
	if n := e.sb.ProfileLookups(); n != 0 || len(e.sb.ProfileCalls()) != 0 {
		t.Errorf("bad input reached WhatsApp: %d lookups, %v", n, e.sb.ProfileCalls())
	}
	if r := do(t, "PATCH", e.url+"/v1/profile", strings.NewReader(`{"about": "hi"}`), e.reader); r.status != 403 {
		t.Errorf("a reader changed our profile: %d %v", r.status, r.body)
	}
}

// Lookups share the number checks' pace: one held back is a 429 saying
// when to ask again, and the cache still answers.
func TestProfileLookupsArePaced(t *testing.T) {
	e := profileServer(t, config.WhatsApp{ChecksPerMinute: 1})
	e.lever(t, "profiles", `{"profiles": [{"jid": "`+aliceJID+`", "about": "a"}, {"jid": "`+shopJID+`", "about": "b"}]}`)
	if r := do(t, "GET", e.url+"/v1/profiles/"+aliceJID, nil, e.reader); r.status != 200 {
		t.Fatalf("first: %d %v", r.status, r.body)
	}
	r := do(t, "GET", e.url+"/v1/profiles/"+shopJID, nil, e.reader)
	if r.status != 429 || errorOf(t, r)["code"] != "paced" || r.header.Get("Retry-After") == "" {
		t.Errorf("over the pace: %d %v Retry-After %q, want 429 paced", r.status, r.body, r.header.Get("Retry-After"))
	}
	if r := do(t, "GET", e.url+"/v1/profiles/"+aliceJID, nil, e.reader); r.status != 200 || r.body["cached"] != true {
		t.Errorf("the cached one while paced: %d %v", r.status, r.body)
	}
	if n := e.sb.ProfileLookups(); n != 1 {
		t.Errorf("%d lookups, want 1", n)
	}
}

// Without a primary a lookup or a change is a 503 with Retry-After; one
// answered from the cache needs none.
func TestProfilesNeedAPrimary(t *testing.T) {
	db := testdb.Start(t).Connect(nil)
	url := serve(t, &Server{Backend: db, Sessions: db, Chats: db, Keys: db, Media: db, Log: zerolog.Nop(), Worker: "1", MaxBodyBytes: 1 << 16}, nil)
	h := apiKey(t, db, store.ScopeMessagesRead, store.ScopeContactsWrite)
	for _, c := range []struct{ method, path, body string }{
		{"GET", "/v1/profiles/" + aliceJID, ""},
		{"GET", "/v1/profiles/" + aliceJID + "/picture", ""},
		{"GET", "/v1/profiles/" + aliceJID + "/business", ""},
		{"GET", "/v1/profile", ""},
		{"PATCH", "/v1/profile", `{"about": "hi"}`},
		{"DELETE", "/v1/profile/picture", ""},
	} {
		var body io.Reader
		if c.body != "" {
			body = strings.NewReader(c.body)
		}
		r := do(t, c.method, url+c.path, body, h)
		if r.status != 503 || errorOf(t, r)["code"] != "no_primary" || r.header.Get("Retry-After") == "" {
			t.Errorf("%s %s: %d %v, want 503 no_primary", c.method, c.path, r.status, r.body)
		}
	}
	if err := db.SaveProfile(context.Background(), store.Profile{JID: aliceJID, About: "cached", FetchedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if r := do(t, "GET", url+"/v1/profiles/"+aliceJID, nil, h); r.status != 200 || r.body["about"] != "cached" {
		t.Errorf("a cached profile without a primary: %d %v", r.status, r.body)
	}
}
