package cluster_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// BenchmarkSSEClients connects 2,000 SSE clients to `app run` with 2 workers
// on the embedded database, has the primary append 200 events at 20/s, and
// reports the latency from each event's append to its receipt by every
// client (p50_ms, p99_ms), how many clients each worker took (the kernel
// hands the shared socket's connections to whichever worker accepts first),
// and each worker's RSS (VmRSS): idle, with the clients connected, and after
// the events, when it holds the garbage a worker's GOGC of 400 lets grow
// before a collection.
//
// The events are incoming messages injected through the sandbox driver
// (POST /v1/sandbox/incoming), so the primary stays the log's one writer.
// An event's append time is its own `at`, which the primary sets as it
// inserts the event; BSON keeps milliseconds, so a latency reads up to
// 1 ms long.
func BenchmarkSSEClients(b *testing.B) {
	const (
		clients = 2000
		events  = 200
		perSec  = 20
	)
	raiseNoFile(b, clients+1024)
	addr := freePortB(b)
	state, err := os.MkdirTemp("", "appbench")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = os.RemoveAll(state) })
	// No rate limit: the 2,000 streams share one key.
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
	api := &http.Client{Timeout: 40 * time.Second}
	post := func(path, body string) (int, error) {
		req, _ := http.NewRequest("POST", base+path, strings.NewReader(body))
		req.Header.Set("Authorization", auth)
		req.Header.Set("Content-Type", "application/json")
		res, err := api.Do(req)
		if err != nil {
			return 0, err
		}
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
		return res.StatusCode, nil
	}
	// Paired and connected, as in use; a sandbox already paired refuses (409).
	if code, err := post("/v1/sandbox/scan", ""); err != nil || code != 200 && code != 409 {
		b.Fatalf("POST /v1/sandbox/scan: %d %v", code, err)
	}

	pids := workerPIDs(b, base, auth, 2)
	time.Sleep(time.Second)
	idle := rssMiB(b, pids)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	streams := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: -1, ResponseHeaderTimeout: 30 * time.Second}}
	all := make([]*sseBenchClient, clients)
	sem := make(chan struct{}, 64)
	var wg sync.WaitGroup
	var failed atomic.Int64
	start := time.Now()
	for i := range all {
		c := &sseBenchClient{lat: make([]time.Duration, 0, events), seq: make([]int64, 0, events)}
		all[i] = c
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			err := c.open(ctx, streams, base+"/v1/events?types=message.incoming", auth)
			<-sem
			if err != nil {
				if failed.Add(1) == 1 {
					b.Errorf("client %d: %v", i, err)
				}
			}
		}()
	}
	wg.Wait()
	if n := failed.Load(); n > 0 {
		b.Fatalf("%d of %d clients could not connect", n, clients)
	}
	perWorker := map[string]int{}
	for _, c := range all {
		perWorker[c.worker]++
	}
	b.Logf("%d clients connected in %s: %v per worker", clients, time.Since(start).Round(time.Millisecond), perWorker)
	time.Sleep(time.Second)
	connected := rssMiB(b, pids)

	cpuBefore, busyBefore := cpuSeconds(b, pids), machineBusy(b)
	b.ResetTimer()
	sent := 0
	for range b.N {
		sent += injectEvents(b, post, events, perSec)
		// Every client gets every event within 30 s of the last append.
		deadline := time.Now().Add(30 * time.Second)
		for _, c := range all {
			for c.received.Load() < int64(sent) && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
			}
		}
	}
	b.StopTimer()
	cpuAfter, busyAfter := cpuSeconds(b, pids), machineBusy(b)
	b.Logf("CPU seconds while the events went out: worker 1 %.1f, worker 2 %.1f, this process (the clients) %.1f; the machine was %.0f%% busy (%d CPUs)",
		cpuAfter[0]-cpuBefore[0], cpuAfter[1]-cpuBefore[1], cpuAfter[2]-cpuBefore[2],
		100*(busyAfter[0]-busyBefore[0])/(busyAfter[1]-busyBefore[1]), runtime.NumCPU())
	var lat []time.Duration
	first := map[int64]time.Duration{} // per event, its first receipt by any client
	short := 0
	for _, c := range all {
		c.mu.Lock()
		lat = append(lat, c.lat...)
		for i, seq := range c.seq {
			if d, ok := first[seq]; !ok || c.lat[i] < d {
				first[seq] = c.lat[i]
			}
		}
		if len(c.lat) < sent {
			short++
		}
		c.mu.Unlock()
	}
	if short > 0 {
		b.Errorf("%d of %d clients got fewer than the %d events", short, clients, sent)
	}
	after := rssMiB(b, pids)
	cancel()
	if len(lat) == 0 {
		b.Fatal("no event arrived")
	}
	slices.Sort(lat)
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	// How long the worker took to notice an event, apart from handing it
	// to its clients.
	firsts := slices.Sorted(maps.Values(first))
	b.Logf("first receipt of an event by any client: p50 %.1f ms, p99 %.1f ms",
		ms(firsts[len(firsts)/2]), ms(firsts[len(firsts)*99/100]))
	b.ReportMetric(ms(lat[len(lat)/2]), "p50_ms")
	b.ReportMetric(ms(lat[len(lat)*99/100]), "p99_ms")
	b.ReportMetric(ms(lat[len(lat)-1]), "max_ms")
	for i := range pids {
		w := fmt.Sprint(i + 1)
		b.ReportMetric(float64(perWorker[w]), "w"+w+"_clients")
		b.ReportMetric(idle[i], "w"+w+"_idle_rss_MiB")
		b.ReportMetric(connected[i], "w"+w+"_rss_MiB")
		b.ReportMetric(after[i], "w"+w+"_rss_after_MiB")
	}
}

// sseBenchClient is one stream: which worker serves it, and the latency of
// every event it got.
type sseBenchClient struct {
	worker   string
	received atomic.Int64
	mu       sync.Mutex
	lat      []time.Duration
	seq      []int64 // of the event of lat[i]
}

// open connects and, once the stream is open (the server has its position),
// reads it in the background until ctx ends.
func (c *sseBenchClient) open(ctx context.Context, hc *http.Client, url, auth string) error {
	req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
	req.Header.Set("Authorization", auth)
	res, err := hc.Do(req)
	if err != nil {
		return err
	}
	if res.StatusCode != 200 {
		res.Body.Close()
		return fmt.Errorf("GET %s: %s", url, res.Status)
	}
	c.worker = res.Header.Get("X-App-Worker")
	go func() {
		defer res.Body.Close()
		sc := bufio.NewScanner(res.Body)
		for sc.Scan() {
			data, ok := strings.CutPrefix(sc.Text(), "data: ")
			if !ok {
				continue
			}
			now := time.Now()
			// {"seq":1,"type":"message.incoming","at":"...","data":{...}}
			seq, rest, _ := strings.Cut(strings.TrimPrefix(data, `{"seq":`), ",")
			_, at, _ := strings.Cut(rest, `"at":"`)
			at, _, _ = strings.Cut(at, `"`)
			t, err := time.Parse(time.RFC3339Nano, at)
			n, err2 := strconv.ParseInt(seq, 10, 64)
			if err != nil || err2 != nil {
				continue
			}
			c.mu.Lock()
			c.lat = append(c.lat, now.Sub(t))
			c.seq = append(c.seq, n)
			c.mu.Unlock()
			c.received.Add(1)
		}
	}()
	return nil
}

// injectEvents has the primary store n incoming messages, perSec a second
// (each waits for the primary in its own request), and returns how many it
// took.
func injectEvents(b *testing.B, post func(path, body string) (int, error), n, perSec int) int {
	var wg sync.WaitGroup
	var ok atomic.Int64
	tick := time.NewTicker(time.Second / time.Duration(perSec))
	defer tick.Stop()
	for i := range n {
		<-tick.C
		wg.Add(1)
		go func() {
			defer wg.Done()
			code, err := post("/v1/sandbox/incoming", fmt.Sprintf(`{"chat":"491701234567@s.whatsapp.net","text":"bench %d"}`, i))
			if err != nil || code != 200 {
				b.Errorf("POST /v1/sandbox/incoming: %d %v", code, err)
				return
			}
			ok.Add(1)
		}()
	}
	wg.Wait()
	return int(ok.Load())
}

// workerPIDs reads the pids of workers 1..n from /v1/cluster (their
// heartbeats; auth is an admin key's Authorization), waiting up to 30 s
// for all of them.
func workerPIDs(b *testing.B, base, auth string, n int) []int {
	b.Helper()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		req, _ := http.NewRequest("GET", base+"/v1/cluster", nil)
		req.Header.Set("Authorization", auth)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			continue
		}
		var view struct {
			Workers []struct {
				Worker string `json:"worker"`
				PID    int    `json:"pid"`
				Alive  bool   `json:"alive"`
			} `json:"workers"`
		}
		err = json.NewDecoder(res.Body).Decode(&view)
		res.Body.Close()
		if err != nil {
			continue
		}
		pids := make([]int, n)
		found := 0
		for _, w := range view.Workers {
			for i := range pids {
				if w.Alive && w.Worker == fmt.Sprint(i+1) && pids[i] == 0 {
					pids[i] = w.PID
					found++
				}
			}
		}
		if found == n {
			return pids
		}
	}
	b.Fatalf("/v1/cluster did not list %d live workers within 30s", n)
	return nil
}

// rssMiB is each process's resident memory (VmRSS).
func rssMiB(b *testing.B, pids []int) []float64 {
	b.Helper()
	out := make([]float64, len(pids))
	for i, pid := range pids {
		kb, err := procStatus(pid, "VmRSS")
		if err != nil {
			b.Fatal(err)
		}
		out[i] = float64(kb) / 1024
	}
	return out
}

// cpuSeconds is the user and system CPU time of each process in pids, then
// of this one.
func cpuSeconds(b *testing.B, pids []int) []float64 {
	b.Helper()
	var out []float64
	for _, pid := range pids {
		stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if err != nil {
			b.Fatal(err)
		}
		// The fields after the command name (which may hold spaces); utime
		// and stime are the 14th and 15th, in clock ticks (100 a second).
		_, rest, _ := strings.Cut(string(stat), ") ")
		f := strings.Fields(rest)
		ut, _ := strconv.ParseFloat(f[11], 64)
		st, _ := strconv.ParseFloat(f[12], 64)
		out = append(out, (ut+st)/100)
	}
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return append(out, time.Duration(ru.Utime.Nano()+ru.Stime.Nano()).Seconds())
}

// machineBusy is the machine's busy and total CPU time so far (/proc/stat).
func machineBusy(b *testing.B) [2]float64 {
	b.Helper()
	stat, err := os.ReadFile("/proc/stat")
	if err != nil {
		b.Fatal(err)
	}
	line, _, _ := strings.Cut(string(stat), "\n")
	var busy, total float64
	for i, v := range strings.Fields(line)[1:] {
		n, _ := strconv.ParseFloat(v, 64)
		total += n
		if i != 3 && i != 4 { // idle, iowait
			busy += n
		}
	}
	return [2]float64{busy, total}
}

// raiseNoFile makes room for need open files in this process: the clients'
// connections are all here.
func raiseNoFile(b *testing.B, need uint64) {
	b.Helper()
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		b.Fatal(err)
	}
	if lim.Cur >= need {
		return
	}
	if lim.Max < need {
		b.Skipf("needs %d open files; the hard limit is %d (ulimit -Hn)", need, lim.Max)
	}
	lim.Cur = need
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		b.Fatalf("raise the open file limit to %d: %v", need, err)
	}
}
