package httpapi

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"app/internal/store"
	"app/internal/testdb"
	"app/internal/testutil"
)

// smallBufferListener gives every accepted connection a small send buffer,
// so a download that outruns its client blocks in the server within a few
// KiB instead of filling megabytes of kernel buffer first.
type smallBufferListener struct{ net.Listener }

func (l smallBufferListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetWriteBuffer(16 << 10)
	}
	return c, err
}

// logLines collects a server's log lines for a test to wait on.
type logLines struct {
	mu    sync.Mutex
	lines []string
}

func (l *logLines) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, string(p))
	return len(p), nil
}

func (l *logLines) has(s string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, line := range l.lines {
		if strings.Contains(line, s) {
			return true
		}
	}
	return false
}

type mediaEnv struct {
	addr, url string
	auth      string
	log       *logLines
	srv       *Server
}

// mediaAPI serves the media routes on a loopback socket with the server's
// fixed timeouts shortened to timeout, as if 60 s had gone by.
func mediaAPI(t *testing.T, timeout time.Duration, tune func(*Server)) mediaEnv {
	t.Helper()
	st := testdb.Start(t).Connect(nil)
	key, k := store.NewAPIKey("test", []string{store.ScopeMessagesWrite, store.ScopeMessagesRead})
	if err := st.CreateAPIKey(context.Background(), k); err != nil {
		t.Fatal(err)
	}
	log := &logLines{}
	s := &Server{Backend: st, Media: st, MediaMaxBytes: 4 << 20, Keys: st, Log: zerolog.New(log), Worker: "1", MaxBodyBytes: 1 << 20}
	if tune != nil {
		tune(s)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := NewHTTPServer(s.Handler(), zerolog.Nop())
	srv.ReadTimeout, srv.WriteTimeout = timeout, timeout
	go func() { _ = srv.Serve(smallBufferListener{ln}) }()
	t.Cleanup(func() { _ = srv.Close() })
	return mediaEnv{addr: ln.Addr().String(), url: "http://" + ln.Addr().String(), auth: "Bearer " + key, log: log, srv: s}
}

func pngFile(size int) []byte {
	b := make([]byte, size)
	_, _ = rand.Read(b)
	copy(b, "\x89PNG\r\n\x1a\n")
	return b
}

// trickle is a body that gives piece bytes every every.
type trickle struct {
	data  []byte
	piece int
	every time.Duration
}

func (tr *trickle) Read(p []byte) (int, error) {
	if len(tr.data) == 0 {
		return 0, io.EOF
	}
	time.Sleep(tr.every) // the client's pace, not a wait for the server
	n := copy(p[:min(len(p), tr.piece)], tr.data)
	tr.data = tr.data[n:]
	return n, nil
}

func (e mediaEnv) upload(t *testing.T, body io.Reader, size int) (int, map[string]any) {
	t.Helper()
	status, _, v := e.uploadH(t, body, size)
	return status, v
}

func (e mediaEnv) uploadH(t *testing.T, body io.Reader, size int) (int, http.Header, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest("POST", e.url+"/v1/media", body)
	req.ContentLength = int64(size)
	req.Header.Set("Authorization", e.auth)
	req.Header.Set("Content-Type", "image/png")
	res, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		t.Fatalf("upload: %v", err)
	}
	defer res.Body.Close()
	var v map[string]any
	if err := json.NewDecoder(res.Body).Decode(&v); err != nil {
		t.Fatalf("upload answer %d is not JSON: %v", res.StatusCode, err)
	}
	return res.StatusCode, res.Header, v
}

// slowClient reads with a small receive buffer, so the server's writes
// wait for it.
func slowClient() *http.Client {
	d := &net.Dialer{}
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		DisableKeepAlives: true,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := d.DialContext(ctx, network, addr)
			if tc, ok := c.(*net.TCPConn); ok {
				_ = tc.SetReadBuffer(8 << 10)
			}
			return c, err
		}}}
}

// A media upload and a download slower than the server's fixed timeouts
// (here 500 ms standing for 60 s) but above the minimum rate succeed: each
// takes about 2 s and arrives whole.
func TestSlowMediaTransfersOutlastTheFixedTimeouts(t *testing.T) {
	e := mediaAPI(t, 500*time.Millisecond, func(s *Server) { s.MediaStall = 2 * time.Second })
	file := pngFile(320 << 10)
	start := time.Now()
	status, body := e.upload(t, &trickle{data: file, piece: 8 << 10, every: 50 * time.Millisecond}, len(file))
	sum := sha256.Sum256(file)
	if status != 201 || body["size"] != float64(len(file)) || body["sha256"] != hex.EncodeToString(sum[:]) {
		t.Fatalf("a slow upload: %d %v", status, body)
	}
	if took := time.Since(start); took < time.Second {
		t.Fatalf("the upload took %s: not slower than the server's timeout", took)
	}

	req, _ := http.NewRequest("GET", e.url+"/v1/media/"+body["id"].(string), nil)
	req.Header.Set("Authorization", e.auth)
	start = time.Now()
	res, err := slowClient().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var got bytes.Buffer
	buf := make([]byte, 8<<10)
	for {
		n, err := res.Body.Read(buf)
		got.Write(buf[:n])
		if err != nil {
			if err != io.EOF {
				t.Fatalf("the slow download broke off after %d of %d bytes in %s: %v", got.Len(), len(file), time.Since(start), err)
			}
			break
		}
		time.Sleep(50 * time.Millisecond) // the client's pace: 160 KiB/s
	}
	if !bytes.Equal(got.Bytes(), file) {
		t.Fatalf("the slow download got %d bytes, not the file", got.Len())
	}
	if took := time.Since(start); took < time.Second {
		t.Fatalf("the download took %s: not slower than the server's timeout", took)
	}
}

// A stalled upload (no byte for MediaStall) is answered 408 with a JSON
// error saying so; a stalled download is cut off, so the client sees a
// broken transfer (not a short file) and the server logs it.
func TestStalledMediaTransfersAreCutOff(t *testing.T) {
	e := mediaAPI(t, time.Minute, func(s *Server) { s.MediaStall = 500 * time.Millisecond })
	conn, err := net.Dial("tcp", e.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	file := pngFile(256 << 10)
	fmt.Fprintf(conn, "POST /v1/media HTTP/1.1\r\nHost: test\r\nAuthorization: %s\r\nContent-Type: image/png\r\nContent-Length: %d\r\n\r\n", e.auth, len(file))
	if _, err := conn.Write(file[:64<<10]); err != nil {
		t.Fatal(err)
	}
	stalled := time.Now()
	_ = conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no answer to a stalled upload: %v", err)
	}
	var v struct {
		Error struct{ Code, Message, Field string }
	}
	_ = json.NewDecoder(res.Body).Decode(&v)
	res.Body.Close()
	if res.StatusCode != 408 || v.Error.Code != "request_timeout" || v.Error.Field != "file" || !strings.Contains(v.Error.Message, "stalled") {
		t.Errorf("a stalled upload: %d %+v", res.StatusCode, v.Error)
	}
	if took := time.Since(stalled); took > 5*time.Second {
		t.Errorf("a stalled upload was answered after %s; the stall limit is 500ms", took)
	}

	big := pngFile(2 << 20)
	status, body := e.upload(t, bytes.NewReader(big), len(big))
	if status != 201 {
		t.Fatalf("upload: %d %v", status, body)
	}
	req, _ := http.NewRequest("GET", e.url+"/v1/media/"+body["id"].(string), nil)
	req.Header.Set("Authorization", e.auth)
	dl, err := slowClient().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer dl.Body.Close()
	head := make([]byte, 16<<10)
	if _, err := io.ReadFull(dl.Body, head); err != nil {
		t.Fatal(err)
	}
	// The client stops reading until the server gives up on it.
	testutil.Eventually(t, 10*time.Second, "a stalled download cut off", func() (bool, string) {
		return e.log.has("A download was cut off."), "not in the log"
	})
	n, err := io.Copy(io.Discard, dl.Body)
	if err == nil || int64(len(head))+n >= int64(len(big)) {
		t.Errorf("a cut-off download read on to %d of %d bytes, error %v", int64(len(head))+n, len(big), err)
	}
}

// Uploads beyond MediaMaxUploads at once are refused before their body is
// read, with 503, Retry-After and a JSON error; those in progress finish,
// and a slot that frees is taken again.
func TestUploadsBeyondTheBoundAreRefused(t *testing.T) {
	e := mediaAPI(t, time.Minute, func(s *Server) { s.MediaMaxUploads = 2 })
	file := pngFile(64 << 10)
	type answer struct {
		status int
		body   map[string]any
	}
	var wg sync.WaitGroup
	answers := make([]answer, 2)
	writers := make([]*io.PipeWriter, 2)
	for i := range writers {
		pr, pw := io.Pipe()
		writers[i] = pw
		wg.Add(1)
		go func() {
			defer wg.Done()
			answers[i].status, answers[i].body = e.upload(t, pr, len(file))
		}()
		if _, err := pw.Write(file[:1024]); err != nil {
			t.Fatal(err)
		}
	}
	testutil.Eventually(t, 10*time.Second, "the two uploads begun", func() (bool, string) {
		n := e.srv.uploads.n.Load()
		return n >= 2, fmt.Sprint(n, " in progress")
	})
	status, h, body := e.uploadH(t, bytes.NewReader(file), len(file))
	if status != 503 || errorCode(body) != "too_many_uploads" || h.Get("Retry-After") == "" {
		t.Errorf("a third upload at once: %d Retry-After %q %v", status, h.Get("Retry-After"), body)
	}
	for _, pw := range writers {
		_, _ = pw.Write(file[1024:])
		_ = pw.Close()
	}
	wg.Wait()
	for i, a := range answers {
		if a.status != 201 {
			t.Errorf("upload %d in progress: %d %v", i, a.status, a.body)
		}
	}
	if status, body := e.upload(t, bytes.NewReader(file), len(file)); status != 201 {
		t.Errorf("an upload once the others finished: %d %v", status, body)
	}
}

func errorCode(body map[string]any) string {
	e, _ := body["error"].(map[string]any)
	c, _ := e["code"].(string)
	return c
}

// HEAD on a stored file answers its headers from the file's description,
// without reading the file from the database (a balancer's or a client's
// probe of a 16 MB file cost a 16 MB read).
func TestHeadOfMediaReadsNoChunk(t *testing.T) {
	e := mediaAPI(t, time.Minute, nil)
	file := pngFile(4<<20 - 1024) // 64 chunks
	status, body := e.upload(t, bytes.NewReader(file), len(file))
	if status != 201 {
		t.Fatalf("upload: %d %v", status, body)
	}
	id := body["id"].(string)
	st := e.srv.Media.(store.Store)
	fetch := func(method string) (*http.Response, int64, int64) {
		t.Helper()
		before := st.Stats().Commands()
		req, _ := http.NewRequest(method, e.url+"/v1/media/"+id, nil)
		req.Header.Set("Authorization", e.auth)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		n, _ := io.Copy(io.Discard, res.Body)
		res.Body.Close()
		return res, n, st.Stats().Commands() - before
	}
	get, n, getCommands := fetch("GET")
	if get.StatusCode != 200 || n != int64(len(file)) {
		t.Fatalf("GET: %d, %d bytes", get.StatusCode, n)
	}
	head, n, headCommands := fetch("HEAD")
	if head.StatusCode != 200 || n != 0 || head.Header.Get("Content-Length") != fmt.Sprint(len(file)) || head.Header.Get("Content-Type") != "image/png" {
		t.Errorf("HEAD: %d, %d bytes, Content-Length %q, Content-Type %q", head.StatusCode, n, head.Header.Get("Content-Length"), head.Header.Get("Content-Type"))
	}
	// One command reads the description; the GET's cursor may be closed
	// (killCursors) just after its body reached the client, counted here.
	if headCommands > 2 || getCommands < 10 {
		t.Errorf("HEAD took %d database commands and GET %d; want HEAD to read the description only (1, and the GET's cursor closing), GET the 64 chunks", headCommands, getCommands)
	}
	req, _ := http.NewRequest("HEAD", e.url+"/v1/media/nope", nil)
	req.Header.Set("Authorization", e.auth)
	if res, err := http.DefaultClient.Do(req); err != nil || res.StatusCode != 404 {
		t.Errorf("HEAD of an unknown id: %v %v, want 404", res, err)
	}
}
