package worker

import (
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// balancedListener evens out how the workers sharing one socket take its
// connections. Every worker waits for the socket in its own epoll, the
// kernel wakes them all for a new connection, and whichever calls accept
// first takes it: when a client opens its connections all at once, one
// worker took about twice the other's share (docs/BENCHMARKS.md has the
// figures before and after). So before accepting, a worker steps back in
// proportion to the connections it already holds: the one holding fewer
// is back first and takes the next. No state is shared between workers,
// and a worker alone loses at most maxStepBack on a new connection.
type balancedListener struct {
	net.Listener
	open atomic.Int64 // connections this worker holds now
}

const (
	stepBack    = 20 * time.Microsecond // per connection held
	maxStepBack = time.Millisecond
)

func (l *balancedListener) Accept() (net.Conn, error) {
	if d := time.Duration(l.open.Load()) * stepBack; d > 0 {
		time.Sleep(min(d, maxStepBack))
	}
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	l.open.Add(1)
	return &countedConn{Conn: c, open: &l.open}, nil
}

// countedConn is counted among the worker's connections until it is
// closed (a hijacked one too: a WebSocket).
type countedConn struct {
	net.Conn
	once sync.Once
	open *atomic.Int64
}

func (c *countedConn) Close() error {
	c.once.Do(func() { c.open.Add(-1) })
	return c.Conn.Close()
}
