// Package console is the web console every worker serves at /: a page to
// pair the WhatsApp account and to watch the suite (session, processes,
// backlogs, messages). It is plain HTML, CSS and JavaScript embedded in
// the binary; the page talks to the API with the key a person types in,
// which stays in the browser tab.
package console

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"time"
)

//go:embed static
var static embed.FS

// AssetPrefix is where the assets are served; the page itself is at /.
const AssetPrefix = "/console/"

// ContentSecurityPolicy admits only this server's own scripts, styles and
// API, and images from blob: (the QR code, fetched with the key) and
// data:. No inline script can run, so injected markup cannot act.
const ContentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; " +
	"connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

type asset struct {
	body  []byte
	ctype string
	etag  string
	hash  string // what ?v= carries in the page's links
}

// Handler serves the console's page and assets.
type Handler struct {
	index  asset
	assets map[string]asset
}

// New reads the embedded files. The page links each asset with its
// content hash (?v=...), so an asset can be cached for good while the page
// itself is revalidated on every load and a new binary's files are seen.
func New() *Handler {
	h := &Handler{assets: map[string]asset{}}
	entries, err := fs.ReadDir(static, "static")
	if err != nil {
		panic("console: the embedded files are missing: " + err.Error())
	}
	var page []byte
	for _, e := range entries {
		b, err := static.ReadFile("static/" + e.Name())
		if err != nil {
			panic("console: " + err.Error())
		}
		if e.Name() == "index.html" {
			page = b
			continue
		}
		h.assets[e.Name()] = newAsset(e.Name(), b)
	}
	for name, a := range h.assets {
		page = bytes.ReplaceAll(page, []byte(`"`+AssetPrefix+name+`"`), []byte(`"`+AssetPrefix+name+"?v="+a.hash+`"`))
	}
	h.index = newAsset("index.html", page)
	return h
}

// contentTypes are the console's files' types, fixed here rather than
// read from the machine's mime tables, which differ between systems.
var contentTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".svg":  "image/svg+xml",
}

func newAsset(name string, b []byte) asset {
	sum := sha256.Sum256(b)
	hash := hex.EncodeToString(sum[:8])
	ctype, ok := contentTypes[path.Ext(name)]
	if !ok {
		panic("console: no content type for " + name)
	}
	return asset{body: b, ctype: ctype, etag: `"` + hash + `"`, hash: hash}
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hd := w.Header()
	hd.Set("Content-Security-Policy", ContentSecurityPolicy)
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Referrer-Policy", "no-referrer")
	hd.Set("X-Frame-Options", "DENY")
	a, cache, ok := h.lookup(r)
	if !ok {
		hd.Set("Cache-Control", "no-store")
		http.Error(w, "not found", http.StatusNotFound)
		return
	}
	hd.Set("Content-Type", a.ctype)
	hd.Set("Cache-Control", cache)
	hd.Set("ETag", a.etag)
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(a.body))
}

// lookup finds what r asks for and how long it may be cached: the page
// and unversioned links are revalidated (no-cache, answered 304 by ETag),
// an asset asked for with its current hash is immutable.
func (h *Handler) lookup(r *http.Request) (asset, string, bool) {
	if r.URL.Path == "/" {
		return h.index, "no-cache", true
	}
	name, ok := strings.CutPrefix(r.URL.Path, AssetPrefix)
	a, found := h.assets[name]
	if !ok || !found {
		return asset{}, "", false
	}
	if r.URL.Query().Get("v") == a.hash {
		return a, "public, max-age=31536000, immutable", true
	}
	return a, "no-cache", true
}
