package worker

import (
	"net"
	"testing"
)

// The worker counts the connections it holds, WebSocket-style hijacked
// ones included, until they are closed, once each.
func TestBalancedListenerCountsConnections(t *testing.T) {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := &balancedListener{Listener: inner}
	defer l.Close()
	var held []net.Conn
	for range 3 {
		c, err := net.Dial("tcp", l.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		s, err := l.Accept()
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, s)
	}
	if n := l.open.Load(); n != 3 {
		t.Fatalf("holding %d, want 3", n)
	}
	_ = held[0].Close()
	_ = held[0].Close() // closing twice counts once
	if n := l.open.Load(); n != 2 {
		t.Fatalf("after a close: holding %d, want 2", n)
	}
	for _, c := range held[1:] {
		_ = c.Close()
	}
	if n := l.open.Load(); n != 0 {
		t.Fatalf("after closing all: holding %d, want 0", n)
	}
}
