package cluster_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"app/internal/testdb"
)

// The figures of the foundation, measured on the real app binary (built
// once, without the race detector) in one run so they can be compared:
//
//	make bench
//
// BenchmarkHTTPCeiling (ceiling_bench_test.go) compares /healthz through
// `app run` with 2 workers, `app serve` and a hello-world pair; the ratios
// of their req/s are the figures (docs/BENCHMARKS.md).

var (
	buildOnce sync.Once
	appBin    string
	buildErr  error
)

func appBinary(b testing.TB) string {
	b.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "appbench")
		if err != nil {
			buildErr = err
			return
		}
		appBin = filepath.Join(dir, "app")
		// As `make build` builds it.
		cmd := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w", "-o", appBin, "app/cmd/app")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		out, err := cmd.CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		b.Fatal(buildErr)
	}
	return appBin
}

// helloMain is the plain net/http server the suite is compared with.
func helloMain(addr string) int {
	var ln net.Listener
	var err error
	if addr == "fd" {
		// The socket is handed over as fd 3, as systemd hands app.socket
		// to the workers.
		ln, err = net.FileListener(os.NewFile(3, "socket"))
	} else {
		ln, err = net.Listen("tcp", addr)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	_ = http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		_, _ = io.WriteString(w, "hello, world\n")
	}))
	return 0
}

func waitHTTP(b testing.TB, url string, within time.Duration) {
	b.Helper()
	for deadline := time.Now().Add(within); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		res, err := http.Get(url)
		if err == nil {
			_, _ = io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if res.StatusCode == 200 {
				return
			}
		}
	}
	b.Fatalf("%s did not answer 200 within %s", url, within)
}

func startProc(b testing.TB, cmd *exec.Cmd) {
	b.Helper()
	if cmd.Stdout == nil {
		cmd.Stdout = io.Discard
	}
	if cmd.Stderr == nil {
		cmd.Stderr = io.Discard
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		terminate(cmd, func() { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) })
	})
}

func load(b *testing.B, url string) {
	loadReq(b, func() *http.Request { r, _ := http.NewRequest("GET", url, nil); return r }, 200)
}

// loadReq sends the requests newReq makes from 8 goroutines per CPU and
// reports requests per second and the 99th percentile latency.
func loadReq(b *testing.B, newReq func() *http.Request, want int) {
	tr := &http.Transport{MaxIdleConnsPerHost: 64, MaxConnsPerHost: 64}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	var mu sync.Mutex
	var lat []time.Duration
	b.SetParallelism(8)
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		var mine []time.Duration
		for pb.Next() {
			t0 := time.Now()
			res, err := client.Do(newReq())
			if err != nil {
				b.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, res.Body)
			res.Body.Close()
			mine = append(mine, time.Since(t0))
			if res.StatusCode != want {
				b.Errorf("status %d, want %d", res.StatusCode, want)
				return
			}
		}
		mu.Lock()
		lat = append(lat, mine...)
		mu.Unlock()
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "req/s")
	if len(lat) > 0 {
		slices.Sort(lat)
		b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99_ms")
	}
}

// BenchmarkAPI measures the messages API through `app run` with 2 workers
// on the embedded database, next to /healthz in the same run: requests
// per second and p99 (round trips per request: TestRoundTripsPerRequest).
func BenchmarkAPI(b *testing.B) {
	addr := freePortB(b)
	state, err := os.MkdirTemp("", "appbench")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = os.RemoveAll(state) })
	env := append(os.Environ(), "CLUSTER_WORKERS=2", "APP_LISTEN="+addr, "APP_STATE_DIR="+state,
		"APP_ENV=qa", "LOG_LEVEL=warn", "MONGO_URI=", "WHATSAPP_DRIVER=sandbox", "APP_RATE_LIMIT=0")
	cmd := exec.Command(appBinary(b), "run")
	cmd.Env = env
	startProc(b, cmd)
	base := "http://" + addr
	waitHTTP(b, base+"/readyz", 60*time.Second)
	keys := exec.Command(appBinary(b), "keys", "create", "--name", "bench", "--scopes", "admin")
	keys.Env = env
	out, err := keys.Output()
	if err != nil {
		b.Fatalf("app keys create: %v", err)
	}
	auth := "Bearer " + strings.TrimSpace(string(out))
	post := func() *http.Request {
		r, _ := http.NewRequest("POST", base+"/v1/messages", strings.NewReader(`{"to":"+491701234567","text":"benchmark"}`))
		r.Header.Set("Authorization", auth)
		r.Header.Set("Content-Type", "application/json")
		return r
	}
	res, err := http.DefaultClient.Do(post())
	if err != nil || res.StatusCode != 202 {
		b.Fatalf("POST /v1/messages: %v %v", err, res)
	}
	id := strings.TrimPrefix(res.Header.Get("Location"), "/v1/messages/")
	res.Body.Close()
	b.Run("healthz", func(b *testing.B) { load(b, base+"/healthz") })
	b.Run("get-message", func(b *testing.B) {
		loadReq(b, func() *http.Request {
			r, _ := http.NewRequest("GET", base+"/v1/messages/"+id, nil)
			r.Header.Set("Authorization", auth)
			return r
		}, 200)
	})
	b.Run("post-message", func(b *testing.B) { loadReq(b, post, 202) })
}

// BenchmarkWorkerStartToReady starts `app worker` against a running
// database and times it from exec to READY=1 on its NOTIFY_SOCKET (the
// sd_notify protocol systemd uses), then reports the worker's resident
// memory after a second of idling.
func BenchmarkWorkerStartToReady(b *testing.B) {
	bin := appBinary(b)
	db := testdb.Start(b)
	dir, err := os.MkdirTemp("", "appnotify")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = os.RemoveAll(dir) })
	notify := filepath.Join(dir, "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: notify, Net: "unixgram"})
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()

	var total time.Duration
	var rss, anon int64
	b.ResetTimer()
	for range b.N {
		cmd := exec.Command(bin, "worker")
		cmd.Env = append(append(os.Environ(), "APP_LISTEN=127.0.0.1:0", "MONGO_URI="), db.Env()...)
		cmd.Env = append(cmd.Env, "APP_ENV=qa", "LOG_LEVEL=warn", "NOTIFY_SOCKET="+notify, "CLUSTER_WORKERS=2")
		cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
		start := time.Now()
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		if err := waitReady(conn, 30*time.Second); err != nil {
			_ = cmd.Process.Kill()
			b.Fatal(err)
		}
		total += time.Since(start)
		b.StopTimer()
		time.Sleep(time.Second)
		kb, err := procStatus(cmd.Process.Pid, "VmRSS")
		if err != nil {
			b.Fatal(err)
		}
		rss = max(rss, kb)
		if kb, err = procStatus(cmd.Process.Pid, "RssAnon"); err != nil {
			b.Fatal(err)
		}
		anon = max(anon, kb)
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
		b.StartTimer()
	}
	b.ReportMetric(float64(total.Microseconds())/1000/float64(b.N), "ms-to-READY")
	// VmRSS counts the binary's pages, which every worker shares through
	// the page cache; RssAnon is what each further worker adds.
	b.ReportMetric(float64(rss)/1024, "idle-RSS-MB")
	b.ReportMetric(float64(anon)/1024, "idle-private-MB")
}

func waitReady(conn *net.UnixConn, within time.Duration) error {
	buf := make([]byte, 4096)
	deadline := time.Now().Add(within)
	for {
		_ = conn.SetReadDeadline(deadline)
		n, err := conn.Read(buf)
		if err != nil {
			return fmt.Errorf("no READY=1 on NOTIFY_SOCKET: %w", err)
		}
		for _, line := range strings.Split(string(buf[:n]), "\n") {
			if line == "READY=1" {
				return nil
			}
		}
	}
}

// procStatus reads one kB figure of /proc/<pid>/status.
func procStatus(pid int, field string) (int64, error) {
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
			return strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		}
	}
	return 0, fmt.Errorf("no %s for pid %d", field, pid)
}

func freePortB(b *testing.B) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}
