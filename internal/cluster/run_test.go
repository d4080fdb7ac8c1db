package cluster_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"app/internal/cli"
	"app/internal/testdb"
	"app/internal/testutil"
)

// The test binary doubles as the app binary: `app run` starts its children
// from os.Executable(), so with asApp set they run cli.Main like cmd/app.
// With helloEnv set it is the hello-world server the benchmark compares with.
const (
	asApp    = "APP_TEST_RUN_AS_APP"
	helloEnv = "APP_TEST_HELLO_LISTEN"
)

func TestMain(m *testing.M) {
	if os.Getenv(asApp) == "1" {
		os.Exit(cli.Main(append([]string{"app"}, os.Args[1:]...), os.Stdout, os.Stderr))
	}
	if addr := os.Getenv(helloEnv); addr != "" {
		os.Exit(helloMain(addr))
	}
	os.Exit(m.Run())
}

// logLine is one JSON log line of the cluster.
type logLine map[string]any

func (l logLine) str(k string) string { s, _ := l[k].(string); return s }
func (l logLine) pid() int            { f, _ := l["pid"].(float64); return int(f) }

// logs collects the cluster's log lines and lets a test wait for one.
type logs struct {
	mu    sync.Mutex
	lines []logLine
	raw   []string
	added chan struct{}
}

func (g *logs) read(r io.Reader) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var l logLine
		_ = json.Unmarshal(sc.Bytes(), &l)
		g.mu.Lock()
		g.raw = append(g.raw, sc.Text())
		if l != nil {
			g.lines = append(g.lines, l)
		}
		g.mu.Unlock()
		select {
		case g.added <- struct{}{}:
		default:
		}
	}
}

func (g *logs) find(match func(logLine) bool) (logLine, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, l := range g.lines {
		if match(l) {
			return l, true
		}
	}
	return nil, false
}

func (g *logs) wait(t testing.TB, what string, within time.Duration, match func(logLine) bool) logLine {
	t.Helper()
	deadline := time.After(within)
	for {
		if l, ok := g.find(match); ok {
			return l
		}
		select {
		case <-g.added:
		case <-time.After(50 * time.Millisecond):
		case <-deadline:
			t.Fatalf("no log line %s within %s; the log:\n%s", what, within, g.dump())
		}
	}
}

func (g *logs) dump() string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return strings.Join(g.raw, "\n")
}

func msg(m string) func(logLine) bool { return func(l logLine) bool { return l.str("message") == m } }

func freePort(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func alive(pid int) bool { return syscall.Kill(pid, 0) == nil }

// On both stores: the SQLite file every child opens, and MongoDB (FerretDB
// here) that the children reach through MONGO_URI.
func TestRunTwoWorkersSurviveAKilledWorkerAndStopCleanly(t *testing.T) {
	testdb.Each(t, runTwoWorkersSurviveAKilledWorkerAndStopCleanly)
}

func runTwoWorkersSurviveAKilledWorkerAndStopCleanly(t *testing.T, db *testdb.DB) {
	addr, cmd, g, exited := launchRun(t, db, "CLUSTER_WORKERS=2", "APP_LEASE_TTL=2s", "APP_SHUTDOWN_TIMEOUT=5s")

	g.wait(t, "cluster mode: 2 workers", 30*time.Second, func(l logLine) bool {
		return strings.HasPrefix(l.str("message"), "cluster mode: 2 workers (")
	})
	for _, m := range []string{"primary started", "worker 1 started", "worker 2 started"} {
		g.wait(t, m, 30*time.Second, func(l logLine) bool {
			return l.str("role") != "run" && strings.HasPrefix(l.str("message"), m+" (pid ") && strings.HasSuffix(l.str("message"), fmt.Sprintf("(pid %d)", l.pid()))
		})
	}
	base := "http://" + addr
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	get := func(path string) (int, string, error) {
		res, err := client.Get(base + path)
		if err != nil {
			return 0, "", err
		}
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
		return res.StatusCode, res.Header.Get("X-App-Worker"), nil
	}
	// Ready: both workers answered /readyz with the database up.
	seen := map[string]bool{}
	for deadline := time.Now().Add(60 * time.Second); len(seen) < 2 && time.Now().Before(deadline); {
		var wg sync.WaitGroup
		var mu sync.Mutex
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if code, w, err := get("/readyz"); err == nil && code == 200 {
					mu.Lock()
					seen[w] = true
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
	}
	if !seen["1"] || !seen["2"] {
		t.Fatalf("ready answers came from workers %v, want 1 and 2; the log:\n%s", seen, g.dump())
	}

	// SIGKILL worker 1 while clients keep connecting: the socket stays open
	// in the supervisor and worker 2 accepts, so nobody is refused.
	w1 := g.wait(t, "worker 1 accepting", 5*time.Second, func(l logLine) bool {
		return l.str("worker") == "1" && l.str("message") == "Worker is accepting connections."
	})
	// A request the killed worker had already accepted dies with it (its
	// connection is reset): at most one per client. A refused connection
	// would mean the socket was not listening, and must never happen.
	const clients = 4
	var ok, reset, refused, other atomic.Int64
	var firstErr atomic.Value
	// The clients run until the killed worker's successor has served them
	// (bounded in time and count all the same).
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 100000 && ctx.Err() == nil; i++ {
				code, _, err := get("/healthz")
				switch {
				case errors.Is(err, syscall.ECONNREFUSED):
					refused.Add(1)
				case errors.Is(err, syscall.ECONNRESET) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
					// net/http's words for a connection the dying worker had
					// accepted and closed before the request was written.
					(err != nil && strings.Contains(err.Error(), "server closed idle connection")):
					reset.Add(1)
				case err != nil || code != 200:
					other.Add(1)
					firstErr.CompareAndSwap(nil, fmt.Sprintf("status %d, error %v", code, err))
				default:
					ok.Add(1)
				}
			}
		}()
	}
	testutil.Eventually(t, 10*time.Second, "the clients under way", func() (bool, string) {
		return ok.Load() >= 10*clients, fmt.Sprint(ok.Load(), " served")
	})
	killed := time.Now()
	if err := syscall.Kill(w1.pid(), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	back := g.wait(t, "worker 1 accepting again", 10*time.Second, func(l logLine) bool {
		return l.str("worker") == "1" && l.str("message") == "Worker is accepting connections." && l.pid() != w1.pid()
	})
	backAfter := time.Since(killed)
	// Served after the successor came: the clients kept connecting through
	// the whole gap, so a refusal in it would have been counted.
	after := ok.Load()
	testutil.Eventually(t, 10*time.Second, "requests served after worker 1 came back", func() (bool, string) {
		return ok.Load() >= after+10*clients, fmt.Sprint(ok.Load()-after, " served since")
	})
	cancel()
	wg.Wait()
	if refused.Load() != 0 || other.Load() != 0 || reset.Load() > clients {
		t.Fatalf("while worker 1 was killed: %d refused, %d reset, %d other failures (first: %v), %d served; want none refused, at most %d reset",
			refused.Load(), reset.Load(), other.Load(), firstErr.Load(), ok.Load(), clients)
	}
	if ok.Load() == 0 {
		t.Fatal("no request was served during the kill")
	}
	g.wait(t, "worker 1 died", time.Second, func(l logLine) bool {
		return l.str("role") == "run" && strings.HasPrefix(l.str("message"), "worker 1 died (killed by SIGKILL)")
	})
	t.Logf("worker 1 (pid %d) was killed; its successor (pid %d) accepted connections %s later; %d served, %d in flight reset, 0 refused",
		w1.pid(), back.pid(), backAfter.Round(time.Millisecond), ok.Load(), reset.Load())
	if backAfter > time.Second {
		t.Errorf("worker 1 was back %s after SIGKILL; want within a second", backAfter)
	}

	// SIGKILL the primary: its successor takes the lease over once it
	// expires, with a higher epoch.
	holder := g.wait(t, "primary took the lease", 10*time.Second, msg("Took the primary lease."))
	if err := syscall.Kill(holder.pid(), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	next := g.wait(t, "the new primary took the lease", 15*time.Second, func(l logLine) bool {
		return l.str("message") == "Took the primary lease." && l.pid() != holder.pid()
	})
	if e1, e2 := holder["epoch"].(float64), next["epoch"].(float64); e2 <= e1 {
		t.Fatalf("epoch went from %v to %v after the primary was killed; want it to grow", e1, e2)
	}

	// Ctrl-C: everything stops, exit status 0, no process left behind.
	var pids []int
	g.mu.Lock()
	for _, l := range g.lines {
		if l.pid() != 0 && l.pid() != cmd.Process.Pid {
			pids = append(pids, l.pid())
		}
	}
	g.mu.Unlock()
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		var ee *exec.ExitError
		if errors.As(err, &ee) || err != nil {
			t.Fatalf("app run exited with %v after SIGINT, want status 0; the log:\n%s", err, g.dump())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("app run did not stop within 30s of SIGINT; the log:\n%s", g.dump())
	}
	for _, pid := range pids {
		if alive(pid) {
			t.Errorf("process %d outlived app run", pid)
		}
	}
	g.wait(t, "cluster stopped", time.Second, msg("Cluster stopped."))
}

// `app serve` is the whole suite in one process: it answers, holds the
// lease itself and stops cleanly on SIGTERM.
func TestServeIsTheSuiteInOneProcess(t *testing.T) {
	addr := freePort(t)
	state, err := os.MkdirTemp("", "appserve")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(state) })
	cmd := exec.Command(os.Args[0], "serve")
	cmd.Env = append(os.Environ(), asApp+"=1", "APP_LISTEN="+addr, "APP_STATE_DIR="+state,
		"APP_ENV=qa", "LOG_FORMAT=json", "LOG_LEVEL=info", "MONGO_URI=", "APP_HEARTBEAT_INTERVAL=200ms")
	out, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	g := &logs{added: make(chan struct{}, 1)}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	readDone := make(chan struct{})
	go func() { defer close(readDone); g.read(out) }()
	exited := make(chan error, 1)
	go func() { <-readDone; exited <- cmd.Wait() }()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			<-exited
		}
	})
	g.wait(t, "the lease taken", 30*time.Second, msg("Took the primary lease."))

	var view struct {
		Workers []struct {
			Worker string `json:"worker"`
			PID    int    `json:"pid"`
		} `json:"workers"`
		Lease struct {
			PID   int  `json:"pid"`
			Valid bool `json:"valid"`
		} `json:"lease"`
	}
	admin := "Bearer " + createKey(t, state, "admin")
	testutil.Eventually(t, 15*time.Second, "/v1/cluster showing the serving process and its lease", func() (bool, string) {
		req, _ := http.NewRequest("GET", "http://"+addr+"/v1/cluster", nil)
		req.Header.Set("Authorization", admin)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			return false, fmt.Sprintf("%v; the log:\n%s", err, g.dump())
		}
		_ = json.NewDecoder(res.Body).Decode(&view)
		res.Body.Close()
		return res.StatusCode == 200 && len(view.Workers) == 1 && view.Lease.Valid, fmt.Sprintf("%d %+v; the log:\n%s", res.StatusCode, view, g.dump())
	})
	if pid := cmd.Process.Pid; view.Workers[0].PID != pid || view.Lease.PID != pid || view.Workers[0].Worker != "serve" {
		t.Fatalf("cluster view %+v, want worker \"serve\" and the lease both in pid %d", view, pid)
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("app serve exited with %v after SIGTERM, want status 0", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("app serve did not stop within 20s of SIGTERM")
	}
}

// `app pair` against `app serve` with the sandbox driver: it draws the QR
// code, and returns once the code is "scanned".
func TestPairShowsTheQRCodeUntilPaired(t *testing.T) {
	addr, state := startSandboxServe(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	// A key with the session scope, made the way an administrator does.
	key := createKey(t, state, "session")
	pair := exec.CommandContext(ctx, os.Args[0], "pair", "--url", "http://"+addr, "--timeout", "50s")
	pair.Env = append(os.Environ(), asApp+"=1", "APP_API_KEY="+key)
	var out testutil.Buffer
	pr, pw := io.Pipe()
	pair.Stdout, pair.Stderr = pw, pw
	if err := pair.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { err := pair.Wait(); _ = pw.Close(); done <- err }()
	// Wait for the QR code on its output, then "scan" it.
	sawQR := make(chan struct{})
	go func() {
		buf := make([]byte, 4096)
		once := false
		for {
			n, err := pr.Read(buf)
			out.Write(buf[:n])
			if !once && strings.Contains(out.String(), "Scan with the phone") {
				once = true
				close(sawQR)
			}
			if err != nil {
				return
			}
		}
	}()
	select {
	case <-sawQR:
	case err := <-done:
		t.Fatalf("app pair ended before showing a QR code: %v\n%s", err, out.String())
	case <-ctx.Done():
		t.Fatalf("no QR code shown:\n%s", out.String())
	}
	req, _ := http.NewRequest("POST", "http://"+addr+"/v1/sandbox/scan", nil)
	req.Header.Set("Authorization", "Bearer "+key)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("scan: %d", res.StatusCode)
	}
	select {
	case err := <-done:
		if err != nil || !strings.Contains(out.String(), "Paired as 15550000001@s.whatsapp.net") {
			t.Fatalf("app pair: %v\n%s", err, out.String())
		}
	case <-ctx.Done():
		t.Fatalf("app pair did not return after the scan:\n%s", out.String())
	}
	// The QR code is drawn with block characters.
	if !strings.Contains(out.String(), "█") {
		t.Errorf("no QR code drawn:\n%s", out.String())
	}
}

// startSandboxServe runs `app serve` with the sandbox driver on the
// embedded SQLite store, with extra environment; it returns its address and
// state directory.
func startSandboxServe(t *testing.T, env ...string) (addr, state string) {
	t.Helper()
	addr = freePort(t)
	state, err := os.MkdirTemp("", "appsandbox")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(state) })
	t.Cleanup(serveSandboxAt(t, addr, state, env...))
	return addr, state
}

// terminate stops cmd as systemd does: SIGTERM, then kill() if it has not
// exited within 20 s; it returns once cmd has exited.
func terminate(cmd *exec.Cmd, kill func()) {
	_ = cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		kill()
		<-done
	}
}

// createKey makes an API key with `app keys create`, as an administrator
// does, once the database answers (on SQLite: once the suite under state
// has made its file); env goes on top (MONGO_URI for MongoDB).
func createKey(t *testing.T, state, scopes string, env ...string) string {
	t.Helper()
	var key string
	testutil.Eventually(t, 30*time.Second, "app keys create", func() (bool, string) {
		keys := exec.Command(os.Args[0], "keys", "create", "--name", "test", "--scopes", scopes)
		keys.Env = append(append(os.Environ(), asApp+"=1", "APP_STATE_DIR="+state, "MONGO_URI=", "APP_ENV=qa"), env...)
		b, err := keys.Output()
		key = strings.TrimSpace(string(b))
		return err == nil && strings.HasPrefix(key, "app_"), fmt.Sprintf("%v %q", err, b)
	})
	return key
}

// The suite as installed delivers webhooks: a subscription made through
// the API gets the session's events from the primary, signed with the
// secret it was given.
func TestWebhookFromTheRunningSuite(t *testing.T) {
	type got struct {
		body   []byte
		header http.Header
	}
	arrived := make(chan got, 100)
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		arrived <- got{b, r.Header.Clone()}
	}))
	defer rcv.Close()
	addr, state := startSandboxServe(t, "APP_WEBHOOK_ALLOWED_NETWORKS=127.0.0.1/32")
	key := createKey(t, state, "admin")
	call := func(method, path, body string) (int, map[string]any) {
		req, _ := http.NewRequest(method, "http://"+addr+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+key)
		req.Header.Set("Content-Type", "application/json")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var v map[string]any
		_ = json.NewDecoder(res.Body).Decode(&v)
		return res.StatusCode, v
	}
	status, wh := call("POST", "/v1/webhooks", `{"url":"`+rcv.URL+`/hook","types":["session.state"]}`)
	if status != 201 {
		t.Fatalf("subscribe: %d %v", status, wh)
	}
	// Pair the sandbox account: the session goes to connected.
	testutil.Eventually(t, 30*time.Second, "the sandbox scan accepted", func() (bool, string) {
		status, body := call("POST", "/v1/sandbox/scan", "")
		return status == 200, fmt.Sprint(status, " ", body)
	})
	verifier, err := standardwebhooks.NewWebhook(wh["secret"].(string))
	if err != nil {
		t.Fatal(err)
	}
	timeout := time.After(30 * time.Second)
	for {
		select {
		case g := <-arrived:
			if err := verifier.Verify(g.body, g.header); err != nil {
				t.Fatalf("signature: %v", err)
			}
			var ev struct {
				Type string `json:"type"`
				Data struct {
					State string `json:"state"`
				} `json:"data"`
			}
			if err := json.Unmarshal(g.body, &ev); err != nil || ev.Type != "session.state" {
				t.Fatalf("delivery %s: %v", g.body, err)
			}
			if ev.Data.State == "connected" {
				return
			}
		case <-timeout:
			t.Fatal("no session.state connected delivered within 30s")
		}
	}
}

// launchRun starts `app run` on a free port on db (its state directory,
// and MONGO_URI for MongoDB), env on top of the settings every cluster
// test uses. It returns the address, the process, its log, and its exit
// once the log is read to the end. A cluster still running when the test
// ends gets SIGTERM (and is killed after 20 s).
func launchRun(t *testing.T, db *testdb.DB, env ...string) (string, *exec.Cmd, *logs, <-chan error) {
	t.Helper()
	if _, err := os.Stat("/bin/sh"); err != nil {
		t.Skip("app run hands the socket over through /bin/sh, which this machine lacks")
	}
	addr := freePort(t)
	cmd := exec.Command(os.Args[0], "run")
	cmd.Env = append(append(append(os.Environ(), asApp+"=1", "APP_LISTEN="+addr, "APP_ENV=qa",
		"LOG_FORMAT=json", "LOG_LEVEL=info", "MONGO_URI=", "APP_HEARTBEAT_INTERVAL=500ms"), db.Env()...), env...)
	out, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout = io.Discard
	g := &logs{added: make(chan struct{}, 1)}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	readDone, done := make(chan struct{}), make(chan struct{})
	var exitErr error
	go func() { defer close(readDone); g.read(out) }()
	go func() { <-readDone; exitErr = cmd.Wait(); close(done) }()
	exited := make(chan error, 1)
	go func() { <-done; exited <- exitErr }()
	t.Cleanup(func() {
		select {
		case <-done:
			return
		default:
		}
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	return addr, cmd, g, exited
}

// startRun starts `app run` with workers workers on the embedded SQLite
// store and extra environment; it returns the address and the cluster's
// log once every worker answers /readyz.
func startRun(t *testing.T, workers int, env ...string) (string, *logs) {
	t.Helper()
	addr, _, g, _ := launchRun(t, testdb.Start(t), append([]string{fmt.Sprintf("CLUSTER_WORKERS=%d", workers)}, env...)...)
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	seen := map[string]bool{}
	testutil.Eventually(t, 60*time.Second, fmt.Sprintf("ready answers from %d workers", workers), func() (bool, string) {
		if res, err := client.Get("http://" + addr + "/readyz"); err == nil {
			_, _ = io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if res.StatusCode == 200 {
				seen[res.Header.Get("X-App-Worker")] = true
			}
		}
		return len(seen) >= workers, fmt.Sprintf("from workers %v; the log:\n%s", seen, g.dump())
	})
	return addr, g
}

// Workers stopped one at a time with SIGTERM (what `app restart --rolling`
// and systemd send) under a keep-alive client fail none of its requests:
// not one needs the client's retry either. Go's http.Transport retries a
// GET sent on a connection the server closed under it; Node's fetch and
// most other clients do not, so a retried request counts as failed.
func TestGracefulRestartsFailNoKeepAliveRequest(t *testing.T) {
	addr, g := startRun(t, 2, "APP_SHUTDOWN_TIMEOUT=10s")
	tr := &http.Transport{MaxIdleConnsPerHost: 8, MaxConnsPerHost: 8}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	var served, reused, retried, failed atomic.Int64
	var firstErr atomic.Value
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	for range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 200000 && ctx.Err() == nil; i++ {
				attempts, wasReused := 0, false
				trace := &httptrace.ClientTrace{GotConn: func(c httptrace.GotConnInfo) { attempts++; wasReused = c.Reused }}
				req, _ := http.NewRequestWithContext(httptrace.WithClientTrace(ctx, trace), "GET", "http://"+addr+"/healthz", nil)
				res, err := client.Do(req)
				if ctx.Err() != nil {
					return
				}
				if err == nil {
					_, err = io.Copy(io.Discard, res.Body)
					res.Body.Close()
					if err == nil && res.StatusCode != 200 {
						err = fmt.Errorf("status %d", res.StatusCode)
					}
				}
				switch {
				case err != nil:
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
				case attempts > 1:
					retried.Add(1)
				default:
					served.Add(1)
					if wasReused {
						reused.Add(1)
					}
				}
			}
		}()
	}
	// Six SIGTERMs, workers 1 and 2 in turn, each once the one before is
	// back (what app restart --rolling does).
	const restarts = 6
	// The pid of worker w's newest process, and every worker pid so far.
	current := func(w string) (int, map[int]bool) {
		pid, all := 0, map[int]bool{}
		g.mu.Lock()
		defer g.mu.Unlock()
		for _, l := range g.lines {
			if l.str("role") == "worker" && l.str("message") == "Worker is accepting connections." {
				all[l.pid()] = true
				if l.str("worker") == w {
					pid = l.pid()
				}
			}
		}
		return pid, all
	}
	// Let the load run on every connection before each stop.
	moreServed := func() {
		start := served.Load()
		testutil.Eventually(t, 20*time.Second, "500 more requests served", func() (bool, string) {
			n := served.Load()
			return n >= start+500, fmt.Sprintf("%d served, %d failed (first: %v)", n-start, failed.Load(), firstErr.Load())
		})
	}
	for i := range restarts {
		w := fmt.Sprint(i%2 + 1)
		pid, before := current(w)
		moreServed()
		if err := syscall.Kill(pid, syscall.SIGTERM); pid == 0 || err != nil {
			t.Fatalf("SIGTERM to worker %s (pid %d): %v; the log:\n%s", w, pid, err, g.dump())
		}
		g.wait(t, "worker "+w+" back after SIGTERM", 30*time.Second, func(l logLine) bool {
			return l.str("worker") == w && l.str("message") == "Worker is accepting connections." && !before[l.pid()]
		})
	}
	moreServed()
	cancel()
	wg.Wait()
	t.Logf("%d SIGTERMs of workers: %d requests served (%d on a reused connection), %d retried by the client, %d failed (first: %v)",
		restarts, served.Load(), reused.Load(), retried.Load(), failed.Load(), firstErr.Load())
	if failed.Load() != 0 || retried.Load() != 0 {
		t.Errorf("%d requests failed and %d needed a retry through %d graceful worker restarts; want none", failed.Load(), retried.Load(), restarts)
	}
	if reused.Load() < served.Load()/2 {
		t.Errorf("only %d of %d requests reused a connection: the client did not keep connections alive", reused.Load(), served.Load())
	}
}
