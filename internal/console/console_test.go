package console

import (
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
)

func get(t *testing.T, h http.Handler, path string, header ...string) *http.Response {
	t.Helper()
	req := httptest.NewRequest("GET", path, nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Result()
}

// The page and its assets come with the security headers; the page links
// each asset by its content hash, so the asset can be cached for good.
func TestPageAndAssets(t *testing.T) {
	h := New()
	res := get(t, h, "/")
	body, _ := io.ReadAll(res.Body)
	if res.StatusCode != 200 || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("GET /: %d %s", res.StatusCode, res.Header.Get("Content-Type"))
	}
	for k, want := range map[string]string{
		"Content-Security-Policy": ContentSecurityPolicy,
		"X-Content-Type-Options":  "nosniff",
		"Referrer-Policy":         "no-referrer",
		"Cache-Control":           "no-cache",
	} {
		if got := res.Header.Get(k); got != want {
			t.Errorf("GET / %s: %q, want %q", k, got, want)
		}
	}
	// No inline script: every <script> has a src, and no element has an
	// on... handler (the policy would block them, breaking the page).
	if m := regexp.MustCompile(`<script(\s[^>]*)?>`).FindAllString(string(body), -1); len(m) != 1 || !strings.Contains(m[0], "src=") {
		t.Errorf("scripts in the page: %q, want one with src", m)
	}
	if regexp.MustCompile(`\son[a-z]+=`).Match(body) {
		t.Error("the page has an inline event handler")
	}
	links := regexp.MustCompile(`"/console/([a-z]+\.[a-z]+)\?v=([0-9a-f]{16})"`).FindAllStringSubmatch(string(body), -1)
	if len(links) != 3 {
		t.Fatalf("versioned asset links in the page: %q, want app.js, style.css and icon.svg", links)
	}
	types := map[string]string{"app.js": "text/javascript", "style.css": "text/css", "icon.svg": "image/svg+xml"}
	for _, l := range links {
		name, v := l[1], l[2]
		res := get(t, h, "/console/"+name+"?v="+v)
		if res.StatusCode != 200 || !strings.HasPrefix(res.Header.Get("Content-Type"), types[name]) {
			t.Errorf("%s: %d %q", name, res.StatusCode, res.Header.Get("Content-Type"))
		}
		if cc := res.Header.Get("Cache-Control"); cc != "public, max-age=31536000, immutable" {
			t.Errorf("%s with its hash: Cache-Control %q", name, cc)
		}
		if res.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("%s: no nosniff", name)
		}
		// Without the current hash (an old page's link): revalidated.
		old := get(t, h, "/console/"+name+"?v=0000000000000000")
		if cc := old.Header.Get("Cache-Control"); cc != "no-cache" {
			t.Errorf("%s with another hash: Cache-Control %q", name, cc)
		}
		if again := get(t, h, "/console/"+name, "If-None-Match", old.Header.Get("ETag")); again.StatusCode != http.StatusNotModified {
			t.Errorf("%s revalidated with its ETag: %d, want 304", name, again.StatusCode)
		}
	}
	for _, p := range []string{"/console/index.html", "/console/nope.js", "/console/", "/console/../console.go"} {
		if res := get(t, h, p); res.StatusCode != 404 {
			t.Errorf("GET %s: %d, want 404", p, res.StatusCode)
		}
	}
}

// The key must never be submitted as a form field (a GET form would put
// it in the URL): its input has no name, and the policy forbids forms to
// submit anywhere.
func TestKeyInputIsNeverSubmitted(t *testing.T) {
	b, err := static.ReadFile("static/index.html")
	if err != nil {
		t.Fatal(err)
	}
	input := regexp.MustCompile(`<input id="key"[^>]*>`).FindString(string(b))
	if input == "" || strings.Contains(input, "name=") || !strings.Contains(input, `type="password"`) {
		t.Errorf("key input %q: want a password field without a name", input)
	}
	if !strings.Contains(ContentSecurityPolicy, "form-action 'none'") {
		t.Error("the policy lets forms submit")
	}
	js, _ := static.ReadFile("static/app.js")
	if strings.Contains(string(js), "localStorage") || strings.Contains(string(js), "console.log") {
		t.Error("app.js keeps the key beyond the tab or logs")
	}
}
