package httpapi

import (
	"math"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// A client sending well-formed key ids that do not exist (guessing, or
// spraying random ids to load the database) costs a database lookup per
// id: 3,000 random ids took 6.1 s against 1.6 s for one known key.
// Misses are remembered (keyCache), which helps when the same wrong key
// comes back, not against new ids. What bounds the cost is a limiter per
// client address on lookups that find nothing: a burst of
// failedAuthBurst, then failedAuthRate a second, per worker; beyond it
// the request is answered 429 with Retry-After without a lookup. Only ids
// this worker has never found are held back, so a known key keeps working
// from an address that sprays (behind a proxy every client shares the
// proxy's address: a new key waits there, a known one does not). The
// number of addresses tracked is bounded too.
const (
	failedAuthRate  = 2 // lookups a second that find nothing, per address
	failedAuthBurst = 20
	maxFailedAddrs  = 10000
)

type failedAuths struct {
	mu sync.Mutex
	m  map[string]*rate.Limiter
}

// clientAddr is the request's peer address without its port.
func clientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// reserveLookup takes one of the request's address's lookups of unknown
// key ids, or returns nil when none is left. Cancelling the reservation
// (the id was found, or the database failed) gives it back.
func (s *Server) reserveLookup(r *http.Request) *rate.Reservation {
	addr, now := clientAddr(r), s.clock()
	s.authFails.mu.Lock()
	defer s.authFails.mu.Unlock()
	l := s.authFails.m[addr]
	if l == nil {
		if s.authFails.m == nil || len(s.authFails.m) >= maxFailedAddrs {
			s.authFails.m = s.dropRestedAddrs(now)
		}
		l = rate.NewLimiter(failedAuthRate, failedAuthBurst)
		s.authFails.m[addr] = l
	}
	res := l.ReserveN(now, 1)
	if res.DelayFrom(now) > 0 {
		res.CancelAt(now)
		return nil
	}
	return res
}

// unknownKeyWait is how long the request's address must wait before an
// unknown key id of its is looked up.
func (s *Server) unknownKeyWait(r *http.Request) time.Duration {
	s.authFails.mu.Lock()
	defer s.authFails.mu.Unlock()
	l := s.authFails.m[clientAddr(r)]
	if l == nil {
		return 0
	}
	if tokens := l.TokensAt(s.clock()); tokens < 1 {
		return time.Duration((1 - tokens) / failedAuthRate * float64(time.Second))
	}
	return 0
}

// tooManyUnknownKeys answers 429 with Retry-After.
func (s *Server) tooManyUnknownKeys(w http.ResponseWriter, r *http.Request) {
	wait := strconv.Itoa(max(1, int(math.Ceil(s.unknownKeyWait(r).Seconds()))))
	w.Header().Set("Retry-After", wait)
	writeError(w, r, http.StatusTooManyRequests, "rate_limited",
		"too many requests with unknown API keys or tokens from this address; retry after "+wait+"s", "")
}

// dropRestedAddrs keeps the addresses whose limiter is not full again
// (the others are as good as new), or none when all are still spent.
func (s *Server) dropRestedAddrs(now time.Time) map[string]*rate.Limiter {
	m := map[string]*rate.Limiter{}
	for addr, l := range s.authFails.m {
		if l.TokensAt(now) < failedAuthBurst {
			m[addr] = l
		}
	}
	if len(m) >= maxFailedAddrs {
		return map[string]*rate.Limiter{}
	}
	return m
}
