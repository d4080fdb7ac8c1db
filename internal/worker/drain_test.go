package worker

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"app/internal/testutil"
)

// drainServer serves "ok" through a drainer on loopback.
func drainServer(t *testing.T) (*drainer, *http.Server, <-chan error, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) })}
	d := newDrainer(srv, ln)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(d.Listener()) }()
	t.Cleanup(func() { _ = srv.Close() })
	return d, srv, served, ln.Addr().String()
}

// waitConns waits until the drainer tracks n connections.
func waitConns(t *testing.T, d *drainer, n int) {
	t.Helper()
	testutil.Eventually(t, 5*time.Second, fmt.Sprintf("the drainer tracking %d connections", n), func() (bool, string) {
		d.mu.Lock()
		got := len(d.conns)
		d.mu.Unlock()
		return got == n, fmt.Sprint(got, " tracked")
	})
}

func get(t *testing.T, c net.Conn, br *bufio.Reader) *http.Response {
	t.Helper()
	if _, err := c.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	res, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("no answer: %v", err)
	}
	_, _ = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return res
}

// While a worker drains, a keep-alive connection's next request is
// answered, with Connection: close, and a connection accepted just before
// the stop gets its first request answered too: neither is closed under
// the client. http.Server.Shutdown closes both unanswered.
func TestDrainingAnswersEachConnectionsNextRequest(t *testing.T) {
	d, srv, served, addr := drainServer(t)
	idle, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	idleR := bufio.NewReader(idle)
	if res := get(t, idle, idleR); res.StatusCode != 200 || res.Close || res.Header.Get("Keep-Alive") != "timeout=5" {
		t.Fatalf("before the stop: %d, close %v, Keep-Alive %q; want 200 kept alive with timeout=5", res.StatusCode, res.Close, res.Header.Get("Keep-Alive"))
	}
	fresh, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer fresh.Close()
	waitConns(t, d, 2)

	drained := make(chan [2]int, 1)
	start := time.Now()
	go func() {
		closed, left := d.drain(served, 5*time.Second, time.Now().Add(10*time.Second))
		drained <- [2]int{closed, left}
	}()
	testutil.Eventually(t, 5*time.Second, "the drain begun", func() (bool, string) {
		return d.draining.Load(), "not draining"
	})
	// Not a wait for a condition: the clients send a little after the stop
	// began, as they would, not at its first instant.
	time.Sleep(50 * time.Millisecond)
	for name, c := range map[string]net.Conn{"idle keep-alive": idle, "just accepted": fresh} {
		br := idleR
		if c == fresh {
			br = bufio.NewReader(c)
		}
		res := get(t, c, br)
		if res.StatusCode != 200 || !res.Close {
			t.Errorf("%s connection during the drain: %d, close %v; want 200 with Connection: close", name, res.StatusCode, res.Close)
		}
	}
	select {
	case got := <-drained:
		if took := time.Since(start); got != [2]int{0, 0} || took > 2*time.Second {
			t.Errorf("drain returned (closed %d, left %d) after %s; want (0, 0) once both connections closed", got[0], got[1], took)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("drain did not return once every connection had closed")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Errorf("Shutdown after the drain: %v", err)
	}
}

// A connection that stays idle is closed once it has waited idleMax (past
// the Keep-Alive timeout its client was told), not before, and the drain
// then ends.
func TestDrainingClosesAConnectionIdleTooLong(t *testing.T) {
	d, _, served, addr := drainServer(t)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	br := bufio.NewReader(c)
	get(t, c, br)
	waitConns(t, d, 1)
	const idleMax = 300 * time.Millisecond
	start := time.Now()
	closed, left := d.drain(served, idleMax, time.Now().Add(10*time.Second))
	took := time.Since(start)
	if closed != 1 || left != 0 || took < idleMax || took > 2*time.Second {
		t.Errorf("drain: closed %d, left %d after %s; want the idle connection closed after about %s", closed, left, took, idleMax)
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := br.ReadByte(); err == nil {
		t.Error("the idle connection is still open after the drain")
	}
}
