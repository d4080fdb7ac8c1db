package worker

import (
	"bufio"
	"context"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// A connection accepted just before the worker stops, whose request
// arrives after, is answered. http.Server.Shutdown alone closes it
// unanswered (curl: "Empty reply from server").
func TestStoppingAnswersWhatItAccepted(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) })}
	d := newDrainer(srv, ln)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(d.Listener()) }()

	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
		d.mu.Lock()
		n := len(d.fresh)
		d.mu.Unlock()
		if n == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the connection was never accepted")
		}
	}
	go func() {
		time.Sleep(50 * time.Millisecond)
		_, _ = c.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"))
	}()
	start := time.Now()
	d.stopAccepting(served, time.Second)
	if took := time.Since(start); took < 40*time.Millisecond || took > 900*time.Millisecond {
		t.Errorf("stopAccepting returned after %s; want once the request reached the handler (~50ms)", took)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Errorf("Shutdown after the drainer closed the listener: %v", err)
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "HTTP/1.1 200") {
		t.Errorf("the accepted connection got %q (%v), want a 200", line, err)
	}
}
