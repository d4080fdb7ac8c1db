package worker

import (
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// KeepAliveIdle is how long clients are told they may keep a connection
// idle (Keep-Alive: timeout=5, as Node's own server says): a client that
// honours it (Node's fetch, Node's http.Agent) has given up an idle
// connection by the time a draining worker closes it.
const KeepAliveIdle = 5 * time.Second

// drainer lets a stopping worker answer every request its connections
// carry. http.Server.Shutdown alone fails clients in two ways:
//   - it drops a request that a connection reads after shutdown began,
//     without an answer (net/http's conn.serve checks shuttingDown right
//     after reading one), so a connection accepted just before SIGTERM got
//     an empty reply: 3 in 2,000 requests over 20 restarts of `app run`'s
//     workers, 4 in 766 in the e2e rolling restart;
//   - it closes idle keep-alive connections at once, under clients about
//     to send on them: over 6 SIGTERMs of `app run`'s workers, 26 failed
//     requests in 17,842 of Node's fetch (docs/keepalive-trial.sh), 14 and
//     26 retries in about 50,000 of Go's http.Transport (which retries a
//     GET, not a POST) in TestGracefulRestartsFailNoKeepAliveRequest.
//
// An HTTP/1.1 server cannot close an idle connection without racing a
// request the client may be sending on it. So a draining worker closes its
// listener (the socket stays open in systemd and the other workers, which
// take new connections), answers each connection's next request with
// Connection: close (the client then opens a new connection, to another
// worker), and closes a connection itself only once it has been idle for
// longer than clients were told to keep it (KeepAliveIdle and a second,
// within the shutdown timeout); only then does it shut down.
type drainer struct {
	mu       sync.Mutex
	conns    map[net.Conn]*connInfo // every open connection not hijacked
	ln       *onceCloseListener
	draining atomic.Bool
}

type connInfo struct {
	waiting bool      // accepted or idle: no request read or being served
	since   time.Time // when it started waiting
}

// newDrainer hooks srv (its ConnState and Handler) and wraps
// ln, which srv must serve.
func newDrainer(srv *http.Server, ln net.Listener) *drainer {
	d := &drainer{conns: map[net.Conn]*connInfo{}, ln: &onceCloseListener{Listener: ln}}
	prevState, next := srv.ConnState, srv.Handler
	hint := []string{"timeout=" + strconv.Itoa(int(KeepAliveIdle/time.Second))}
	srv.ConnState = func(c net.Conn, s http.ConnState) {
		d.mu.Lock()
		switch s {
		case http.StateNew, http.StateIdle:
			d.conns[c] = &connInfo{waiting: true, since: time.Now()}
		case http.StateActive:
			// net/http says so once it has read a request's header.
			if ci := d.conns[c]; ci != nil {
				ci.waiting = false
			}
		case http.StateClosed, http.StateHijacked:
			delete(d.conns, c)
		}
		d.mu.Unlock()
		if prevState != nil {
			prevState(c, s)
		}
	}
	srv.Handler = http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if d.draining.Load() {
			rw.Header()["Connection"] = []string{"close"}
		} else {
			rw.Header()["Keep-Alive"] = hint
		}
		next.ServeHTTP(rw, r)
	})
	return d
}

// Listener is what the server must serve.
func (d *drainer) Listener() net.Listener { return d.ln }

// drain stops accepting (closing the listener; served delivers Serve's
// result, after which every accepted connection is known) and returns once
// every connection has closed, or at deadline. Meanwhile every request is
// answered with Connection: close, and a connection that waits for a
// request for idleMax is closed. It returns how many connections it
// closed and how many were still open at deadline.
func (d *drainer) drain(served <-chan error, idleMax time.Duration, deadline time.Time) (closedIdle, left int) {
	d.draining.Store(true)
	_ = d.ln.Close()
	timeout := time.After(time.Until(deadline))
	select {
	case <-served:
	case <-timeout:
		return 0, -1
	}
	for {
		d.mu.Lock()
		now, n := time.Now(), len(d.conns)
		for c, ci := range d.conns {
			if ci.waiting && now.Sub(ci.since) >= idleMax {
				// Its state becomes StateClosed once net/http sees it.
				_ = c.Close()
				ci.waiting = false
				closedIdle++
			}
		}
		d.mu.Unlock()
		if n == 0 {
			return closedIdle, 0
		}
		select {
		case <-timeout:
			return closedIdle, n
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// onceCloseListener can be closed by the drainer and then by Shutdown
// without the second close reporting an error.
type onceCloseListener struct {
	net.Listener
	once sync.Once
	err  error
}

func (l *onceCloseListener) Close() error {
	l.once.Do(func() { l.err = l.Listener.Close() })
	return l.err
}
