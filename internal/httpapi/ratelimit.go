package httpapi

import (
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Rate limits hold per API key, and each worker enforces its share of the
// configured rate (APP_RATE_LIMIT / workers, burst likewise), counted in
// its own memory. Nothing is shared: a shared counter would cost a
// database round trip per request, and the embedded database loses
// concurrent increments. The share errs on the careful side: a key never
// gets more than the configured rate over all workers, and gets less when
// its requests land unevenly on the workers (TestRateLimitAcrossWorkers
// measures how much). Several machines: set APP_RATE_LIMIT to the
// per-machine figure.
type keyLimiters struct {
	mu sync.Mutex
	m  map[string]*rate.Limiter
}

func (s *Server) limiter(keyID string) *rate.Limiter {
	s.limits.mu.Lock()
	defer s.limits.mu.Unlock()
	if s.limits.m == nil {
		s.limits.m = map[string]*rate.Limiter{}
	}
	l, ok := s.limits.m[keyID]
	if !ok {
		l = rate.NewLimiter(rate.Limit(s.RateLimit), s.RateBurst)
		s.limits.m[keyID] = l
	}
	return l
}

// clock is the time the limiters go by.
func (s *Server) clock() time.Time {
	if s.now != nil {
		return s.now()
	}
	return time.Now()
}

// allow takes a token for the key, sets the RateLimit-* headers, and
// answers 429 with Retry-After when there is none.
func (s *Server) allow(w http.ResponseWriter, r *http.Request, keyID string) bool {
	if s.RateLimit <= 0 {
		return true
	}
	l := s.limiter(keyID)
	now := s.clock()
	ok := l.AllowN(now, 1)
	tokens := l.TokensAt(now)
	h := w.Header()
	h.Set("RateLimit-Limit", strconv.Itoa(s.RateBurst))
	h.Set("RateLimit-Remaining", strconv.Itoa(max(0, int(math.Floor(tokens)))))
	// Seconds until the bucket is full again; on a refusal, until the next
	// token, the moment Retry-After names: one clock, so a client reading
	// either header waits the same.
	reset := int(math.Ceil((float64(s.RateBurst) - tokens) / s.RateLimit))
	if !ok {
		reset = max(1, int(math.Ceil((1-tokens)/s.RateLimit)))
	}
	h.Set("RateLimit-Reset", strconv.Itoa(reset))
	if ok {
		return true
	}
	h.Set("Retry-After", strconv.Itoa(reset))
	writeError(w, r, http.StatusTooManyRequests, "rate_limited",
		"too many requests for this API key; retry after "+strconv.Itoa(reset)+"s", "")
	return false
}
