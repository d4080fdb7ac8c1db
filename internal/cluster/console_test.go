package cluster_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"github.com/rs/zerolog"

	"app/internal/config"
	"app/internal/store"
	"app/internal/testutil"
)

// chromiumPath is where Debian's chromium package puts the browser.
const chromiumPath = "/usr/bin/chromium"

// The web console as a person uses it, in headless Chromium against `app
// serve` with the sandbox driver: sign in with a key, see the QR code,
// pair, watch the state turn connected through the live stream, and send a
// message with the form. Screenshots go to $APP_TEST_ARTIFACTS.
func TestConsoleInChromium(t *testing.T) {
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Skipf("%s is missing: install Debian's chromium package (apt-get install chromium) to test the web console", chromiumPath)
	}
	artifacts := os.Getenv("APP_TEST_ARTIFACTS")
	if artifacts == "" {
		artifacts = t.TempDir()
	} else if err := os.MkdirAll(artifacts, 0o755); err != nil {
		t.Fatal(err)
	}
	// No pacing: the test message goes out at once.
	env := []string{"WHATSAPP_SEND_PER_MINUTE=0"}
	addr := freePort(t)
	state, err := os.MkdirTemp("", "appconsole")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(state) })
	stopServe := serveSandboxAt(t, addr, state, env...)
	t.Cleanup(func() { stopServe() })
	key := createKey(t, state, "admin")
	base := "http://" + addr

	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(chromiumPath), chromedp.WindowSize(1280, 900))
	if os.Geteuid() == 0 {
		opts = append(opts, chromedp.NoSandbox) // Chromium refuses to run as root with its sandbox
	}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	ctx, cancel := chromedp.NewContext(allocCtx)
	defer cancel()

	// What the page says in its console: a script error or a blocked
	// resource (the Content-Security-Policy) fails the test.
	var mu sync.Mutex
	var problems, consoleLines []string
	if err := chromedp.Listen(ctx, func(ev any) {
		mu.Lock()
		defer mu.Unlock()
		switch ev := ev.(type) {
		case *runtime.EventExceptionThrown:
			d := ev.ExceptionDetails
			text := d.Text
			if d.Exception != nil {
				text += " " + d.Exception.Description
			}
			problems = append(problems, "exception: "+text)
		case *log.EventEntryAdded:
			line := fmt.Sprintf("%s %s: %s %s", ev.Entry.Source, ev.Entry.Level, ev.Entry.Text, ev.Entry.URL)
			consoleLines = append(consoleLines, line)
			if ev.Entry.Source == "security" || strings.Contains(ev.Entry.Text, "Content Security Policy") {
				problems = append(problems, line)
			}
		}
	}); err != nil {
		t.Fatalf("start %s: %v", chromiumPath, err)
	}
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		for _, l := range consoleLines {
			t.Logf("browser console: %s", l)
		}
	})

	screenshot := func(name string) {
		t.Helper()
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatalf("screenshot %s: %v", name, err)
		}
		path := filepath.Join(artifacts, name)
		if err := os.WriteFile(path, png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("screenshot: %s", path)
	}
	// waitFor polls a JavaScript predicate; on timeout the test fails with
	// what the page shows, and a screenshot of it.
	waitFor := func(what, predicate string, within time.Duration) {
		t.Helper()
		if _, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](predicate,
			chromedp.WithPollingInterval(100*time.Millisecond), chromedp.WithPollingTimeout(within))); err != nil {
			body, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body.innerText`))
			screenshot("console-failed.png")
			t.Fatalf("%s: %v; the page shows:\n%s", what, err, body)
		}
	}
	text := func(sel string) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector(`+jsString(sel)+`).textContent`))
		if err != nil {
			t.Fatalf("read %s: %v", sel, err)
		}
		return strings.TrimSpace(s)
	}

	// Sign in with the keyboard: type the key, press Enter.
	if err := chromedp.Do(ctx,
		chromedp.Navigate(base+"/"),
		chromedp.WaitVisible(chromedp.ID("key")),
	); err != nil {
		t.Fatal(err)
	}
	screenshot("console-signin.png")
	if err := chromedp.Do(ctx, chromedp.SendKeys(chromedp.ID("key"), key+kb.Enter)); err != nil {
		t.Fatal(err)
	}
	waitFor("the dashboard after signing in", `!document.getElementById('dashboard').hidden`, 20*time.Second)

	// The sandbox's QR code: an <img> showing a loaded blob: URL.
	waitFor("the QR code", `(() => { const i = document.getElementById('qr');
		return !i.hidden && i.src.startsWith('blob:') && i.complete && i.naturalWidth > 0; })()`, 60*time.Second)
	waitFor("the live stream", `document.getElementById('live').textContent === 'Live'`, 20*time.Second)
	if s := text("#session-state"); s != "pairing" {
		t.Errorf("session state shown while the QR code is up: %q, want pairing", s)
	}
	// The key is in this tab's sessionStorage, nowhere else: not in the
	// URL, not in localStorage, not in a cookie.
	where, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`[location.href, document.cookie,
		String(localStorage.length), sessionStorage.getItem('app.console.key') || '']`))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(where[0], key) || strings.Contains(where[1], key) || where[2] != "0" || where[3] != key {
		t.Errorf("where the key is kept: url %q, cookie %q, localStorage items %s, sessionStorage has it: %v",
			where[0], where[1], where[2], where[3] == key)
	}
	screenshot("console-qr.png")

	// Phone-code pairing: a number WhatsApp cannot take is refused with
	// the API's message (a good one would pair the sandbox at once).
	if err := chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.ID("pair-phone"), "12"),
		chromedp.Click(chromedp.CSS("#pair-form button")),
	); err != nil {
		t.Fatal(err)
	}
	waitFor("the pair-code error", `(() => { const r = document.getElementById('pair-result');
		return r.className === 'error' && r.textContent.startsWith('phone must be'); })()`, 15*time.Second)

	// Pair: the sandbox's QR code is "scanned"; the page learns of it from
	// the event stream (it does not poll the session while the stream is up).
	testutil.Eventually(t, 30*time.Second, "the sandbox scan accepted", func() (bool, string) {
		req, _ := http.NewRequest("POST", base+"/v1/sandbox/scan", nil)
		req.Header.Set("Authorization", "Bearer "+key)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			return false, err.Error()
		}
		res.Body.Close()
		return res.StatusCode == 200, fmt.Sprint(res.StatusCode)
	})
	waitFor("the state connected", `document.getElementById('session-state').textContent === 'connected'`, 30*time.Second)
	if live := text("#live"); live != "Live" {
		t.Errorf("the stream indicator says %q after pairing, want Live", live)
	}
	if img, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.getElementById('pairing').hidden`)); err != nil || !img {
		t.Errorf("the pairing panel is still shown once connected (%v)", err)
	}
	if jid := text("#session-jid"); jid != "15550000001@s.whatsapp.net" {
		t.Errorf("account shown: %q", jid)
	}
	waitFor("the process table", `document.querySelector('#cluster-table tbody').textContent.includes('(lease holder)')`, 15*time.Second)
	waitFor("the webhook panel", `document.getElementById('webhooks-note').textContent === 'No webhook subscription.'`, 15*time.Second)
	screenshot("console-connected.png")

	// The stream fails: `app serve` stops (its streams end) and starts
	// again. The page says so, and reconnects with a new token once the
	// server is back.
	stopServe()
	waitFor("the interruption shown", `document.getElementById('live').textContent.startsWith('Live updates')`, 15*time.Second)
	stopServe = serveSandboxAt(t, addr, state, env...)
	waitFor("the stream back", `document.getElementById('live').textContent === 'Live'`, 60*time.Second)
	waitFor("the state after the restart", `document.getElementById('session-state').textContent === 'connected'`, 30*time.Second)
	if n, err := chromedp.Run(ctx, chromedp.Evaluate[int](`performance.getEntriesByType('resource').filter((e) =>
		e.name.endsWith('/v1/events/token')).length`)); err != nil || n < 2 {
		t.Errorf("event tokens asked for: %d (%v), want a new one after the stream failed", n, err)
	}

	// send clicks the form's button. The page answers a click at once
	// ("Sending…"); a click that never reached the form (the page moved
	// under the pointer: seen once in a loaded CI run, the form filled and
	// no request made) is made again, which cannot send twice, as a send
	// that started shows its text first.
	send := func() {
		t.Helper()
		for try := 0; ; try++ {
			if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS("#send-form button"))); err != nil {
				t.Fatal(err)
			}
			_, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](`document.getElementById('send-result').textContent !== ''`,
				chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(5*time.Second)))
			if err == nil {
				return
			}
			if try == 2 {
				screenshot("console-failed.png")
				t.Fatalf("three clicks on Send did not reach the form: %v", err)
			}
			t.Logf("the click on Send did not reach the form; clicking again")
		}
	}
	clearResult := func() {
		t.Helper()
		if _, err := chromedp.Run(ctx, chromedp.Evaluate[chromedp.Void](`document.getElementById('send-result').textContent = ''`)); err != nil {
			t.Fatal(err)
		}
	}

	// An error from the API is shown with its message.
	clearResult()
	if err := chromedp.Do(ctx,
		chromedp.SetValue(chromedp.ID("send-to"), "not a number"),
		chromedp.SetValue(chromedp.ID("send-text"), "Hello"),
	); err != nil {
		t.Fatal(err)
	}
	send()
	waitFor("the API's error message", `(() => { const r = document.getElementById('send-result');
		return r.className === 'error' && r.textContent.startsWith('to must be'); })()`, 15*time.Second)

	// Send a message with the form: it is listed, and its status follows
	// the events to sent (or beyond).
	const hello = "Hello from the web console"
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[chromedp.Void](`document.getElementById('send-to').value = '';
		document.getElementById('send-text').value = ''`)); err != nil {
		t.Fatal(err)
	}
	clearResult()
	if err := chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.ID("send-to"), "+15550001234"),
		chromedp.SendKeys(chromedp.ID("send-text"), hello),
	); err != nil {
		t.Fatal(err)
	}
	send()
	waitFor("the message queued", `document.getElementById('send-result').textContent.startsWith('Message ')`, 15*time.Second)
	waitFor("the message sent", `[...document.querySelectorAll('#sent-table tbody tr')].some((tr) =>
		tr.textContent.includes(`+jsString(hello)+`) && ['sent', 'delivered', 'read'].includes(tr.querySelector('.status').textContent))`,
		60*time.Second)
	waitFor("the result's status", `/: (sent|delivered|read)\.$/.test(document.getElementById('send-result').textContent)`, 30*time.Second)
	waitFor("an empty outbox", `document.getElementById('outbox-queued').textContent === '0'`, 15*time.Second)

	// A worker on another machine whose heartbeat stopped 30 s ago (three
	// intervals are 15 s) without saying it stopped: the table marks it.
	lostHeartbeat(t, state)
	waitFor("the late worker marked", `[...document.querySelectorAll('#cluster-table tbody tr.late')].some((tr) =>
		tr.textContent.includes('lost-machine') && tr.textContent.includes('— late'))`, 15*time.Second)
	if n, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll('#cluster-table tbody tr.late').length`)); err != nil || n != 1 {
		t.Errorf("%d processes marked late (%v), want only the lost one", n, err)
	}
	screenshot("console.png")

	// Signing out forgets the key.
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.ID("signout"))); err != nil {
		t.Fatal(err)
	}
	waitFor("the sign-in form again", `!document.getElementById('login-view').hidden && sessionStorage.length === 0`, 10*time.Second)

	// A key that may only read: the page offers no send form, says what
	// the other panels need in one wording, and asks nothing of the routes
	// the key cannot use while it polls what it can.
	reader := createKey(t, state, "messages:read")
	count := func(path string) int {
		t.Helper()
		n, err := chromedp.Run(ctx, chromedp.Evaluate[int](`performance.getEntriesByType('resource').filter((e) =>
			new URL(e.name).pathname === `+jsString(path)+`).length`))
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	// Count from here, in a buffer that holds them all (the default keeps 250).
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[chromedp.Void](`performance.setResourceTimingBufferSize(100000); performance.clearResourceTimings()`)); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(ctx, chromedp.SendKeys(chromedp.ID("key"), reader+kb.Enter)); err != nil {
		t.Fatal(err)
	}
	waitFor("the dashboard for the reading key", `!document.getElementById('dashboard').hidden`, 20*time.Second)
	waitFor("the sent message listed for the reading key", `document.querySelector('#sent-table tbody').textContent.includes(`+jsString(hello)+`)`, 15*time.Second)
	for panel, scope := range map[string]string{"send": "messages:write", "webhooks": "admin", "cluster": "admin", "session": "session"} {
		note := text("#" + panel + " .scope-note")
		if note != "Needs a key with the "+scope+" scope; this key has messages:read." {
			t.Errorf("the %s panel says %q to a messages:read key", panel, note)
		}
		if visible, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`[...document.querySelectorAll('#`+panel+` form, #`+panel+` table')].some((e) => e.offsetParent !== null)`)); err != nil || visible {
			t.Errorf("the %s panel still shows its form or table to a messages:read key (%v)", panel, err)
		}
	}
	// Two polls of the outbox later, the routes the key cannot use were
	// never asked.
	waitFor("two polls", `performance.getEntriesByType('resource').filter((e) => new URL(e.name).pathname === '/v1/messages').length >= 8`, 30*time.Second)
	if h, c, s := count("/v1/webhooks"), count("/v1/cluster"), count("/v1/session"); h+c+s != 0 {
		t.Errorf("a messages:read key's page asked /v1/webhooks %d, /v1/cluster %d and /v1/session %d times; want none", h, c, s)
	}
	screenshot("console-reader.png")

	mu.Lock()
	defer mu.Unlock()
	for _, p := range problems {
		t.Errorf("browser: %s", p)
	}
}

// serveSandboxAt runs `app serve` with the sandbox driver on addr and the
// embedded SQLite store in state (unless env sets MONGO_URI); stop ends it
// with SIGTERM, as systemd does, and waits for it.
func serveSandboxAt(t *testing.T, addr, state string, env ...string) (stop func()) {
	t.Helper()
	serve := exec.Command(os.Args[0], "serve")
	serve.Env = append(append(os.Environ(), asApp+"=1", "APP_LISTEN="+addr, "APP_STATE_DIR="+state,
		"APP_ENV=qa", "WHATSAPP_DRIVER=sandbox", "LOG_FORMAT=json", "LOG_LEVEL=warn", "MONGO_URI="), env...)
	serve.Stdout, serve.Stderr = io.Discard, io.Discard
	if err := serve.Start(); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	return func() {
		once.Do(func() { terminate(serve, func() { _ = serve.Process.Kill() }) })
	}
}

// jsString quotes s for JavaScript (JSON's string syntax is a subset).
func jsString(s string) string {
	return fmt.Sprintf("%q", s)
}

// lostHeartbeat records, in the suite's SQLite store under state, a
// worker on another machine last heard of 30 s ago, still serving.
func lostHeartbeat(t *testing.T, state string) {
	t.Helper()
	cfg, err := config.LoadFrom(func(k string) (string, bool) {
		v, ok := map[string]string{"APP_STATE_DIR": state, "MONGO_URI": "", "APP_ENV": "qa"}[k]
		return v, ok
	})
	if err != nil {
		t.Fatal(err)
	}
	// Not testdb's Connect: this is the file of the suite that runs on
	// state, not one of testdb's.
	st, err := store.Connect(cfg, "console-test", zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = st.Close(context.Background()) }()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	seen := time.Now().Add(-30 * time.Second)
	if err := st.WriteHeartbeat(ctx, store.Heartbeat{ID: "lost-machine/worker-1", Role: "worker", Worker: "1", Host: "lost-machine",
		PID: 4242, Version: "dev", StartedAt: seen.Add(-time.Hour), LastSeen: seen, State: "serving"}); err != nil {
		t.Fatal(err)
	}
}
