package cluster_test

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"app/internal/testutil"
)

// freeRun is a loopback address whose port and the n after it are free.
func freeRun(t testing.TB, n int) (string, int) {
	t.Helper()
	for range 50 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := ln.Addr().(*net.TCPAddr).Port
		_ = ln.Close()
		ok := port+n <= 65535
		for i := 1; ok && i <= n; i++ {
			l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port+i))
			if err != nil {
				ok = false
				break
			}
			_ = l.Close()
		}
		if ok {
			return "127.0.0.1", port
		}
	}
	t.Fatal("no run of free ports")
	return "", 0
}

// `app run` with 2 workers: one scrape of the primary's metrics listener
// has the primary's series and both workers', and they move with traffic.
func TestMetricsOfTheMachine(t *testing.T) {
	host, port := freeRun(t, 2)
	metricsAddr := host + ":" + strconv.Itoa(port)
	addr := freePort(t)
	state, err := os.MkdirTemp("", "appmetrics")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(state) })
	cmd := exec.Command(os.Args[0], "run")
	cmd.Env = append(os.Environ(), asApp+"=1", "CLUSTER_WORKERS=2", "APP_LISTEN="+addr, "APP_STATE_DIR="+state,
		"APP_ENV=qa", "LOG_LEVEL=warn", "MONGO_URI=", "WHATSAPP_DRIVER=sandbox", "APP_METRICS_LISTEN="+metricsAddr,
		"APP_LEASE_TTL=2s", "APP_HEARTBEAT_INTERVAL=200ms")
	startProc(t, cmd)
	waitHTTP(t, "http://"+addr+"/readyz", 60*time.Second)
	for range 50 {
		res, err := http.Get("http://" + addr + "/healthz")
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
	}
	scrape := func() string {
		res, err := http.Get("http://" + metricsAddr + "/metrics")
		if err != nil {
			return err.Error()
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return string(b)
	}
	var out string
	want := []string{
		`go_goroutines{worker="1"}`, `go_goroutines{worker="2"}`, "\ngo_goroutines ",
		`process_resident_memory_bytes{worker="1"}`, "\nprocess_resident_memory_bytes ",
		"\napp_primary_lease_holder 1\n", `app_whatsapp_state{state="pairing"} 1`, // the sandbox shows a QR code
		"\napp_outbox_queued_messages 0\n", "\napp_database_up 1\n",
		`app_cluster_processes{role="worker",state="alive"} 2`, `app_cluster_processes{role="primary",state="alive"} 1`,
		`app_cluster_processes{role="worker",state="stale"} 0`,
	}
	testutil.Eventually(t, 30*time.Second, "the machine's metrics complete", func() (bool, string) {
		out = scrape()
		var missing []string
		for _, w := range want {
			if !strings.Contains(out, w) {
				missing = append(missing, w)
			}
		}
		return len(missing) == 0, fmt.Sprintf("they lack %q", missing)
	})
	// The 50 requests, wherever the kernel sent them, are all counted once.
	total := 0
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, `app_http_requests_total{code="200",method="GET",route="/healthz",worker="`) {
			n, _ := strconv.Atoi(line[strings.LastIndex(line, " ")+1:])
			total += n
		}
	}
	if total != 50 {
		t.Errorf("/healthz counted %d times over the workers, want 50:\n%s", total, out)
	}
}
