package cluster_test

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// BenchmarkHTTPCeiling drives /healthz with wrk (Debian's package: an
// event-loop load generator in C, so it takes less of the shared CPUs
// than a Go client would) at 8, 64 and 256 connections through three
// servers that run side by side, taking turns in each round so that
// noise falls on all of them alike:
//
//   - workers: `app run` with 2 workers on one shared socket;
//   - serve: `app serve`, the suite in one process;
//   - hello: 2 processes of a plain Go hello-world server sharing one
//     socket the same way (one CPU each, as workers get), the ceiling of
//     the design on this machine;
//   - node-cluster: a Node.js hello-world in cluster mode with 2 workers,
//     as the system this suite replaces ran (when node is installed).
//
// Each run reports req/s, p50 and p99 (wrk's), and for the workers how
// evenly the requests spread (the busiest worker's share of the requests,
// from the per-worker counts of the primary's metrics) and their RSS under load. Run with -benchtime 1x:
// every run is wrk's fixed duration (APP_BENCH_WRK_SECONDS, default 5).
func BenchmarkHTTPCeiling(b *testing.B) {
	if _, err := exec.LookPath("wrk"); err != nil {
		b.Skip("wrk is not installed (Debian package wrk; make bench installs it)")
	}
	secs := 5
	if v, err := strconv.Atoi(os.Getenv("APP_BENCH_WRK_SECONDS")); err == nil && v > 0 {
		secs = v
	}
	rounds := 3
	if v, err := strconv.Atoi(os.Getenv("APP_BENCH_ROUNDS")); err == nil && v > 0 {
		rounds = v
	}

	// The suite with 2 workers, and its metrics for the balance.
	workersAddr := freePortB(b)
	host, port := freeRun(b, 2)
	metricsURL := "http://" + host + ":" + strconv.Itoa(port) + "/metrics"
	state, err := os.MkdirTemp("", "appbench")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = os.RemoveAll(state) })
	run := exec.Command(appBinary(b), "run")
	run.Env = append(os.Environ(), "CLUSTER_WORKERS=2", "APP_LISTEN="+workersAddr, "APP_STATE_DIR="+state,
		"APP_ENV=qa", "LOG_LEVEL=warn", "MONGO_URI=", "WHATSAPP_DRIVER=sandbox",
		"APP_METRICS_LISTEN="+host+":"+strconv.Itoa(port))
	startProc(b, run)

	// The suite in one process, on its own database.
	serveAddr := freePortB(b)
	state2, err := os.MkdirTemp("", "appbench")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = os.RemoveAll(state2) })
	serve := exec.Command(appBinary(b), "serve")
	serve.Env = append(os.Environ(), "APP_LISTEN="+serveAddr, "APP_STATE_DIR="+state2,
		"APP_ENV=qa", "LOG_LEVEL=warn", "MONGO_URI=", "WHATSAPP_DRIVER=sandbox", "APP_METRICS_LISTEN=off")
	startProc(b, serve)

	// Two hello-world processes on one socket, one CPU each.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	helloAddr := ln.Addr().String()
	lf, err := ln.(*net.TCPListener).File()
	if err != nil {
		b.Fatal(err)
	}
	_ = ln.Close()
	for range 2 {
		h := exec.Command(os.Args[0])
		h.Env = append(os.Environ(), helloEnv+"=fd", "GOMAXPROCS=1")
		h.ExtraFiles = []*os.File{lf}
		startProc(b, h)
	}
	_ = lf.Close()

	// Node.js in cluster mode, as the original system ran, when node is here.
	nodeAddr := ""
	if node, err := exec.LookPath("node"); err == nil {
		nodeAddr = freePortB(b)
		_, nodePort, _ := net.SplitHostPort(nodeAddr)
		n := exec.Command(node, "testdata/node-cluster.js")
		n.Env = append(os.Environ(), "PORT="+nodePort, "NODE_WORKERS=2")
		startProc(b, n)
	}

	waitHTTP(b, "http://"+workersAddr+"/readyz", 60*time.Second)
	waitHTTP(b, "http://"+serveAddr+"/readyz", 60*time.Second)
	waitHTTP(b, "http://"+helloAddr+"/", 30*time.Second)
	keys := exec.Command(appBinary(b), "keys", "create", "--name", "bench", "--scopes", "admin")
	keys.Env = run.Env
	key, err := keys.Output()
	if err != nil {
		b.Fatalf("app keys create: %v", err)
	}
	pids := workerPIDs(b, "http://"+workersAddr, "Bearer "+strings.TrimSpace(string(key)), 2)

	targets := []struct{ name, url string }{
		{"hello", "http://" + helloAddr + "/"},
		{"workers", "http://" + workersAddr + "/healthz"},
		{"serve", "http://" + serveAddr + "/healthz"},
	}
	if nodeAddr != "" {
		waitHTTP(b, "http://"+nodeAddr+"/", 30*time.Second)
		targets = append(targets, struct{ name, url string }{"node-cluster", "http://" + nodeAddr + "/"})
	}
	for round := range rounds {
		for _, conns := range []int{8, 64, 256} {
			// Rotate who goes first, so no server always runs on a
			// machine warmed (or tired) by another.
			for i := range targets {
				t := targets[(i+round)%len(targets)]
				b.Run(fmt.Sprintf("%s/c%d", t.name, conns), func(b *testing.B) {
					var before map[string]float64
					if t.name == "workers" {
						before = healthzPerWorker(b, metricsURL)
					}
					r := runWrk(b, t.url, conns, secs)
					b.ReportMetric(r.rps, "req/s")
					b.ReportMetric(r.p50, "p50_ms")
					b.ReportMetric(r.p99, "p99_ms")
					if t.name != "workers" {
						return
					}
					after := healthzPerWorker(b, metricsURL)
					var counts []float64
					for w, n := range after {
						counts = append(counts, n-before[w])
					}
					// The busiest worker's share: 0.5 is even, 1 is all to one.
					b.Logf("requests per worker: %v", counts)
					if len(counts) == 2 && slices.Min(counts) >= 0 && counts[0]+counts[1] > 0 {
						b.ReportMetric(slices.Max(counts)/(counts[0]+counts[1]), "busiest-share")
					}
					var rss int64
					for _, pid := range pids {
						if kb, err := procStatus(pid, "VmRSS"); err == nil {
							rss = max(rss, kb)
						}
					}
					b.ReportMetric(float64(rss)/1024, "worker-RSS-MB")
				})
			}
		}
	}
}

type wrkResult struct {
	rps, p50, p99 float64
	failed        int // non-2xx or 3xx answers
}

var (
	wrkRPS     = regexp.MustCompile(`Requests/sec:\s+([0-9.]+)`)
	wrkPercent = regexp.MustCompile(`(?m)^\s+(50|99)%\s+([0-9.]+)(us|ms|s)\s*$`)
	wrkErrors  = regexp.MustCompile(`Non-2xx or 3xx responses: (\d+)|Socket errors: .*`)
)

// runWrk runs wrk on url; extra are more of its arguments (-H, -s).
func runWrk(b *testing.B, url string, conns, secs int, extra ...string) wrkResult {
	b.Helper()
	threads := min(2, conns)
	args := append([]string{"-t", strconv.Itoa(threads), "-c", strconv.Itoa(conns),
		"-d", strconv.Itoa(secs) + "s", "--timeout", "5s", "--latency"}, extra...)
	out, err := exec.Command("wrk", append(args, url)...).CombinedOutput()
	if err != nil {
		b.Fatalf("wrk: %v\n%s", err, out)
	}
	var r wrkResult
	for _, m := range wrkErrors.FindAllStringSubmatch(string(out), -1) {
		b.Logf("wrk on %s with %d connections: %s", url, conns, m[0])
		if m[1] != "" {
			r.failed, _ = strconv.Atoi(m[1])
		}
	}
	m := wrkRPS.FindStringSubmatch(string(out))
	if m == nil {
		b.Fatalf("wrk printed no Requests/sec:\n%s", out)
	}
	r.rps, _ = strconv.ParseFloat(m[1], 64)
	for _, p := range wrkPercent.FindAllStringSubmatch(string(out), -1) {
		v, _ := strconv.ParseFloat(p[2], 64)
		switch p[3] {
		case "us":
			v /= 1000
		case "s":
			v *= 1000
		}
		if p[1] == "50" {
			r.p50 = v
		} else {
			r.p99 = v
		}
	}
	return r
}

var healthzLine = regexp.MustCompile(`(?m)^app_http_requests_total\{code="200",method="GET",route="/healthz",worker="(\d+)"\} ([0-9.e+]+)$`)

// healthzPerWorker reads each worker's count of /healthz requests from
// the primary's metrics, which gather every worker's.
func healthzPerWorker(b *testing.B, url string) map[string]float64 {
	b.Helper()
	res, err := http.Get(url)
	if err != nil {
		b.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	out := map[string]float64{"1": 0, "2": 0}
	for _, m := range healthzLine.FindAllStringSubmatch(string(body), -1) {
		out[m[1]], _ = strconv.ParseFloat(m[2], 64)
	}
	return out
}
