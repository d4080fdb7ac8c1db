package cluster_test

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// mediaCluster is `app run` with two workers of the real app binary (built
// without the race detector, whose shadow memory would swamp the figures)
// on the embedded database, with an API key that may upload.
type mediaCluster struct {
	base, auth string
	workers    []int // pids of workers 1 and 2
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
	all = append(all, env...)
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
	waitHTTP(t, c.base+"/readyz", 60*time.Second)
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		keys := exec.Command(bin, "keys", "create", "--name", "media", "--scopes", "messages:write,messages:read")
		keys.Env = all
		b, err := keys.Output()
		if key := strings.TrimSpace(string(b)); err == nil && strings.HasPrefix(key, "app_") {
			c.auth = "Bearer " + key
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("app keys create: %v %q", err, b)
		}
	}
	return c
}

// uploadResult is one upload's answer.
type uploadResult struct {
	status     int
	retryAfter string
	code       string // the error's code, for a refusal
	id         string
	size       int64
	err        error
}

// uploadConcurrently sends n uploads of size bytes at once, each on its own
// connection, and returns their answers.
func (c mediaCluster) uploadConcurrently(n, size int) []uploadResult {
	file := make([]byte, size)
	_, _ = rand.Read(file)
	copy(file, "\x89PNG\r\n\x1a\n")
	client := &http.Client{Timeout: 5 * time.Minute, Transport: &http.Transport{DisableKeepAlives: true}}
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

// A worker streams uploads to the database: 60 uploads of 16 MB at once
// on two workers (960 MB in all) raise each worker's peak memory by far
// less than the files, and every upload is either stored whole (201, the
// file reads back at its size) or refused before it was read (503 with
// Retry-After).
func TestConcurrentUploadsDoNotHoldFilesInMemory(t *testing.T) {
	const (
		n    = 60
		size = 16<<20 - 1024
	)
	c := startMediaCluster(t, os.Getenv("APP_TEST_MEDIA_ENV"))
	before := rssKiB(t, c.workers)
	results := c.uploadConcurrently(n, size)
	growth := peakGrowthMiB(t, c.workers, before)
	stored, refused := 0, 0
	for i, r := range results {
		switch {
		case r.err != nil:
			t.Errorf("upload %d: %v", i, r.err)
		case r.status == 201 && r.size == size:
			stored++
			res, err := http.NewRequest("GET", c.base+"/v1/media/"+r.id, nil)
			if err != nil {
				t.Fatal(err)
			}
			res.Header.Set("Authorization", c.auth)
			got, err := http.DefaultClient.Do(res)
			if err != nil {
				t.Fatal(err)
			}
			m, _ := io.Copy(io.Discard, got.Body)
			got.Body.Close()
			if got.StatusCode != 200 || m != size {
				t.Errorf("upload %d stored as %s reads back %d with %d bytes", i, r.id, got.StatusCode, m)
			}
		case r.status == 503 && r.retryAfter != "" && r.code == "too_many_uploads":
			refused++
		default:
			t.Errorf("upload %d: %d %+v", i, r.status, r)
		}
	}
	t.Logf("%d uploads of %d MiB: %d stored, %d refused; peak RSS growth per worker %.0f MiB (from %.0f and %.0f MiB)",
		n, size>>20, stored, refused, growth, float64(before[0])/1024, float64(before[1])/1024)
	if stored < 30 {
		t.Errorf("only %d of %d uploads were stored", stored, n)
	}
	// Buffering the files would be at least n*size/2 = 480 MiB per worker.
	for i, g := range growth {
		if g > 150 {
			t.Errorf("worker %d grew by %.0f MiB at its peak under %d uploads of %d MiB", i+1, g, n, size>>20)
		}
	}
}
