package cluster_test

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"app/internal/testutil"
)

// mediaCluster is `app run` with two workers of the real app binary (built
// without the race detector, whose shadow memory would swamp the figures)
// on the embedded SQLite store, with an API key that may upload.
type mediaCluster struct {
	base, auth string
	workers    []int // pids of workers 1 and 2
	others     []int // pid of the primary
}

func startMediaCluster(t testing.TB, env ...string) mediaCluster {
	t.Helper()
	addr := freePort(t)
	state, err := os.MkdirTemp("", "appmedia")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(state) })
	bin := appBinary(t)
	all := append(os.Environ(), "CLUSTER_WORKERS=2", "APP_LISTEN="+addr, "APP_STATE_DIR="+state,
		"APP_ENV=qa", "LOG_FORMAT=json", "LOG_LEVEL=info", "MONGO_URI=", "WHATSAPP_DRIVER=sandbox",
		"APP_RATE_LIMIT=0", "APP_METRICS_LISTEN=off")
	for _, e := range env {
		if e != "" {
			all = append(all, e)
		}
	}
	cmd := exec.Command(bin, "run")
	cmd.Env = all
	out, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout = io.Discard
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	g := &logs{added: make(chan struct{}, 1)}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go g.read(out)
	t.Cleanup(func() {
		terminate(cmd, func() { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) })
	})
	t.Cleanup(func() {
		if t.Failed() {
			lines := strings.Split(g.dump(), "\n")
			t.Logf("the last lines of the log:\n%s", strings.Join(lines[max(0, len(lines)-40):], "\n"))
		}
	})
	c := mediaCluster{base: "http://" + addr}
	for _, n := range []string{"1", "2"} {
		l := g.wait(t, "worker "+n+" started", 60*time.Second, func(l logLine) bool {
			return l.str("role") == "worker" && strings.HasPrefix(l.str("message"), "worker "+n+" started (pid ")
		})
		c.workers = append(c.workers, l.pid())
	}
	for _, role := range []string{"primary"} {
		if l, ok := g.find(func(l logLine) bool { return l.str("role") == role && l.pid() != 0 }); ok {
			c.others = append(c.others, l.pid())
		}
	}
	waitHTTP(t, c.base+"/readyz", 60*time.Second)
	testutil.Eventually(t, 30*time.Second, "app keys create", func() (bool, string) {
		keys := exec.Command(bin, "keys", "create", "--name", "media", "--scopes", "messages:write,messages:read")
		keys.Env = all
		b, err := keys.Output()
		key := strings.TrimSpace(string(b))
		c.auth = "Bearer " + key
		return err == nil && strings.HasPrefix(key, "app_"), fmt.Sprintf("%v %q", err, b)
	})
	return c
}

// uploadResult is one upload's answer.
type uploadResult struct {
	status     int
	retryAfter string
	code       string // the error's code, for a refusal
	id         string
	size       int64
	worker     string // X-App-Worker
	err        error
}

// uploadConcurrently sends n uploads of size bytes at once, each on its own
// connection, and returns their answers.
func (c mediaCluster) uploadConcurrently(n, size int) []uploadResult {
	file := make([]byte, size)
	_, _ = rand.Read(file)
	copy(file, "\x89PNG\r\n\x1a\n")
	// Expect: 100-continue, as curl sends it for large bodies: a refused
	// upload is answered before its body is sent.
	client := &http.Client{Timeout: 5 * time.Minute, Transport: &http.Transport{DisableKeepAlives: true, ExpectContinueTimeout: time.Minute}}
	results := make([]uploadResult, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			req, _ := http.NewRequest("POST", c.base+"/v1/media", bytes.NewReader(file))
			req.Header.Set("Authorization", c.auth)
			req.Header.Set("Content-Type", "image/png")
			req.Header.Set("Expect", "100-continue")
			res, err := client.Do(req)
			if err != nil {
				results[i].err = err
				return
			}
			defer res.Body.Close()
			var body struct {
				ID    string `json:"id"`
				Size  int64  `json:"size"`
				Error struct {
					Code string `json:"code"`
				} `json:"error"`
			}
			results[i].err = json.NewDecoder(res.Body).Decode(&body)
			results[i].status, results[i].retryAfter = res.StatusCode, res.Header.Get("Retry-After")
			results[i].worker = res.Header.Get("X-App-Worker")
			results[i].id, results[i].size, results[i].code = body.ID, body.Size, body.Error.Code
		}()
	}
	close(start)
	wg.Wait()
	return results
}

// peakGrowthMiB is how far each worker's peak resident memory (VmHWM) rose
// above its resident memory before (in MiB).
func peakGrowthMiB(t testing.TB, pids []int, before []int64) []float64 {
	t.Helper()
	out := make([]float64, len(pids))
	for i, pid := range pids {
		hwm, err := procStatus(pid, "VmHWM")
		if err != nil {
			t.Fatal(err)
		}
		out[i] = float64(hwm-before[i]) / 1024
	}
	return out
}

func rssKiB(t testing.TB, pids []int) []int64 {
	t.Helper()
	out := make([]int64, len(pids))
	for i, pid := range pids {
		kb, err := procStatus(pid, "VmRSS")
		if err != nil {
			t.Fatal(err)
		}
		out[i] = kb
	}
	return out
}

// uploadRun is what n concurrent uploads of size bytes did to a cluster.
type uploadRun struct {
	results          []uploadResult
	before           []int64   // each worker's VmRSS before, in KiB
	growth           []float64 // each worker's peak (VmHWM) over that, in MiB
	stored, refused  int
	unavailable, bad int
	storedBy         map[string]int // uploads each worker stored
}

// runUploads sends n uploads of size bytes at once and checks each answer:
// a 201 whose file reads back whole at its size, or a 503 with Retry-After
// (too_many_uploads before the body was read, or database_unavailable when
// the store gave up under the load).
func runUploads(t testing.TB, c mediaCluster, n, size int) uploadRun {
	t.Helper()
	run := uploadRun{before: rssKiB(t, c.workers), storedBy: map[string]int{}}
	// The most threads each worker ran, sampled while the uploads go on.
	threads := make([]int64, len(c.workers))
	sampled := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(sampled)
		for tick := time.NewTicker(100 * time.Millisecond); ; {
			for i, pid := range c.workers {
				if n, err := procStatus(pid, "Threads"); err == nil {
					threads[i] = max(threads[i], n)
				}
			}
			select {
			case <-done:
				tick.Stop()
				return
			case <-tick.C:
			}
		}
	}()
	run.results = c.uploadConcurrently(n, size)
	close(done)
	<-sampled
	run.growth = peakGrowthMiB(t, c.workers, run.before)
	for i, pid := range c.others {
		if hwm, err := procStatus(pid, "VmHWM"); err == nil {
			t.Logf("%s (pid %d) peak RSS %.0f MiB", []string{"primary"}[i], pid, float64(hwm)/1024)
		}
	}
	t.Logf("most threads a worker ran: %v", threads)
	for i, r := range run.results {
		switch {
		case r.err != nil:
			t.Errorf("upload %d: %v", i, r.err)
			run.bad++
		case r.status == 201 && r.size == int64(size):
			run.stored++
			run.storedBy[r.worker]++
			if run.stored > 3 {
				continue // a few read back show it
			}
			req, _ := http.NewRequest("GET", c.base+"/v1/media/"+r.id, nil)
			req.Header.Set("Authorization", c.auth)
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Errorf("upload %d stored as %s does not read back: %v", i, r.id, err)
				continue
			}
			m, err := io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if res.StatusCode != 200 || m != int64(size) || err != nil {
				t.Errorf("upload %d stored as %s reads back %d with %d bytes (%v)", i, r.id, res.StatusCode, m, err)
			}
		case r.status == 503 && r.retryAfter != "" && r.code == "too_many_uploads":
			run.refused++
		case r.status == 503 && r.retryAfter != "" && r.code == "database_unavailable":
			run.unavailable++
		default:
			t.Errorf("upload %d: %d %+v", i, r.status, r)
			run.bad++
		}
	}
	t.Logf("%d uploads of %.1f MiB at once: %d stored (by worker: %v), %d refused (too many), %d database unavailable; peak RSS growth per worker %.0f MiB (from %.0f and %.0f MiB)",
		n, float64(size)/(1<<20), run.stored, run.storedBy, run.refused, run.unavailable, run.growth, float64(run.before[0])/1024, float64(run.before[1])/1024)
	return run
}

// A worker streams uploads to the database: 24 uploads of 16 MB at once on
// two workers, each taking 8 at once, raise each worker's peak memory by
// far less than the files it receives (8 of 16 MB: 128 MB; about 20 MiB
// measured), each upload is stored whole (the first three read back) or
// refused with Retry-After, and the bound refuses what is beyond it before
// reading it.
func TestConcurrentUploadsDoNotHoldFilesInMemory(t *testing.T) {
	const (
		n    = 24
		size = 16<<20 - 1024
	)
	run := runUploads(t, startMediaCluster(t, "APP_MEDIA_MAX_UPLOADS=8"), n, size)
	if run.stored < 4 {
		t.Errorf("only %d of %d uploads were stored", run.stored, n)
	}
	if run.refused < n-16 {
		t.Errorf("%d of %d uploads at once on 2 workers taking 8 each were refused; want at least %d", run.refused, n, n-16)
	}
	for i, g := range run.growth {
		if g > 48 {
			t.Errorf("worker %d grew by %.0f MiB at its peak under %d uploads of 16 MB (it took 8 at most)", i+1, g, n)
		}
	}
}

// BenchmarkUploadMemory measures the workers' peak memory under 60
// concurrent uploads of 16 MB on two workers (the figure MemoryMax= in
// systemd/app-worker@.service is chosen from), with the default bound and
// with a bound above 60 (every upload received at once):
//
//	go test ./internal/cluster/ -run '^$' -bench BenchmarkUploadMemory -benchtime 1x
func BenchmarkUploadMemory(b *testing.B) {
	const (
		n    = 60
		size = 16<<20 - 1024
	)
	for _, bc := range []struct{ name, env string }{{"bound=16", ""}, {"bound=64", "APP_MEDIA_MAX_UPLOADS=64"}} {
		b.Run(bc.name, func(b *testing.B) {
			var peak float64
			for range b.N {
				run := runUploads(b, startMediaCluster(b, bc.env), n, size)
				peak = max(peak, run.growth[0], run.growth[1])
				b.ReportMetric(float64(run.stored), "stored")
			}
			b.ReportMetric(peak, "peak-growth-MiB")
		})
	}
}
