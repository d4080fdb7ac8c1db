package httpapi

import (
	"context"
	"errors"
	"sync"
	"time"
)

// A stream outlives the check of its key at the start, so the worker
// checks the keys of its open streams again, once per key however many
// streams it has, and ends the streams of a key that was revoked or lost
// the stream's scope: within the key cache time of the revocation, as for
// any other request.

var (
	errKeyRevoked = errors.New("the API key was revoked")
	errScopeLost  = errors.New("the API key no longer has the scope of this stream")
)

type keyStream struct {
	scope string
	end   context.CancelCauseFunc
}

type streamKeys struct {
	mu      sync.Mutex
	open    map[string]map[*keyStream]struct{} // by key id
	running bool
}

// streamRecheck is how often the keys of open streams are checked: a
// tenth of the key cache time, and the check reads what is at most the
// cache time less that old, so a revocation ends a stream within the
// cache time.
func (s *Server) streamRecheck() (every, maxAge time.Duration) {
	every = s.keyCacheTTL() / 10
	return every, s.keyCacheTTL() - every
}

// watchKey ties ctx to the key keyID keeping scope: the returned context
// ends, with errKeyRevoked or errScopeLost as its cause, when the key is
// revoked or loses scope. stop releases the watch.
func (s *Server) watchKey(ctx context.Context, keyID, scope string) (context.Context, func()) {
	ctx, end := context.WithCancelCause(ctx)
	ks := &keyStream{scope: scope, end: end}
	sk := &s.streams
	sk.mu.Lock()
	if sk.open == nil {
		sk.open = map[string]map[*keyStream]struct{}{}
	}
	if sk.open[keyID] == nil {
		sk.open[keyID] = map[*keyStream]struct{}{}
	}
	sk.open[keyID][ks] = struct{}{}
	if !sk.running {
		sk.running = true
		go s.recheckStreamKeys()
	}
	sk.mu.Unlock()
	return ctx, func() {
		sk.mu.Lock()
		delete(sk.open[keyID], ks)
		if len(sk.open[keyID]) == 0 {
			delete(sk.open, keyID)
		}
		sk.mu.Unlock()
		end(context.Canceled)
	}
}

// recheckStreamKeys runs while streams are open.
func (s *Server) recheckStreamKeys() {
	every, maxAge := s.streamRecheck()
	tick := time.NewTicker(every)
	defer tick.Stop()
	for range tick.C {
		sk := &s.streams
		sk.mu.Lock()
		if len(sk.open) == 0 {
			sk.running = false
			sk.mu.Unlock()
			return
		}
		ids := make([]string, 0, len(sk.open))
		for id := range sk.open {
			ids = append(ids, id)
		}
		sk.mu.Unlock()
		for _, id := range ids {
			ctx, cancel := context.WithTimeout(context.Background(), every)
			k, found, err := s.keyNoOlderThan(ctx, id, nil, maxAge)
			cancel()
			if err != nil {
				// The database is away: what was allowed stays allowed until
				// it can say otherwise, as for new requests with a cached key.
				continue
			}
			sk.mu.Lock()
			for ks := range sk.open[id] {
				switch {
				case !found || !k.RevokedAt.IsZero():
					ks.end(errKeyRevoked)
				case !k.Has(ks.scope):
					ks.end(errScopeLost)
				}
			}
			sk.mu.Unlock()
		}
	}
}
