package httpapi

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/julienschmidt/httprouter"
	"golang.org/x/time/rate"

	"app/internal/store"
)

// KeyBackend looks up API keys.
type KeyBackend interface {
	APIKey(ctx context.Context, id string) (store.APIKey, error)
}

// DefaultKeyCacheTTL is how long a worker trusts what it read about a key:
// a revoked key stops working within this time.
const DefaultKeyCacheTTL = 10 * time.Second

// maxCachedKeys bounds the cache: ids that do not exist (a client trying
// keys) are cached too, apart, so they cannot push out the keys that do.
const maxCachedKeys = 10000

type cachedKey struct {
	key store.APIKey
	at  time.Time
}

type keyCache struct {
	mu     sync.Mutex
	m      map[string]cachedKey // keys found
	misses map[string]time.Time // ids not found, and when
}

// errLookupsSpent: the id is unknown to this worker and its client's
// address has used up its lookups of unknown ids (authguard.go).
var errLookupsSpent = errors.New("httpapi: too many lookups of unknown key ids from this address")

func (s *Server) keyCacheTTL() time.Duration {
	if s.KeyCacheTTL > 0 {
		return s.KeyCacheTTL
	}
	return DefaultKeyCacheTTL
}

// key returns the stored key with id, from the cache when it is fresh.
// When the id comes from a client (from is its request; nil for an id the
// server stored itself), an id this worker never found is looked up only
// while the client's address has lookups left, and a lookup that finds
// nothing spends one (authguard.go).
func (s *Server) key(ctx context.Context, id string, from *http.Request) (store.APIKey, bool, error) {
	return s.keyNoOlderThan(ctx, id, from, s.keyCacheTTL())
}

// keyNoOlderThan is key with what the cache holds trusted for ttl.
func (s *Server) keyNoOlderThan(ctx context.Context, id string, from *http.Request, ttl time.Duration) (store.APIKey, bool, error) {
	s.keys.mu.Lock()
	c, known := s.keys.m[id]
	missedAt, missed := s.keys.misses[id]
	s.keys.mu.Unlock()
	switch {
	case known && time.Since(c.at) < ttl:
		return c.key, true, nil
	case !known && missed && time.Since(missedAt) < ttl:
		return store.APIKey{}, false, nil
	}
	var spent *rate.Reservation
	if !known && from != nil {
		if spent = s.reserveLookup(from); spent == nil {
			return store.APIKey{}, false, errLookupsSpent
		}
	}
	k, err := s.Keys.APIKey(ctx, id)
	found := err == nil
	if spent != nil && !errors.Is(err, store.ErrNotFound) {
		spent.CancelAt(s.clock()) // found, or the database's fault
	}
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return k, false, err
	}
	now := time.Now()
	s.keys.mu.Lock()
	if found {
		if s.keys.m == nil || len(s.keys.m) >= maxCachedKeys {
			s.keys.m = map[string]cachedKey{}
		}
		s.keys.m[id] = cachedKey{key: k, at: now}
		delete(s.keys.misses, id)
	} else {
		if s.keys.misses == nil || len(s.keys.misses) >= maxCachedKeys {
			s.keys.misses = map[string]time.Time{}
		}
		s.keys.misses[id] = now
		// A key deleted from the store is no longer known.
		delete(s.keys.m, id)
	}
	s.keys.mu.Unlock()
	return k, found, nil
}

type keyCtx struct{}

// KeyOf is the API key that authenticated r (its id and name for logs).
func KeyOf(r *http.Request) (store.APIKey, bool) {
	k, ok := r.Context().Value(keyCtx{}).(store.APIKey)
	return k, ok
}

// auth admits requests with a valid, unrevoked API key that has scope
// (any valid key when scope is empty): 401 without one, 403 when the key
// lacks the scope.
func (s *Server) auth(scope string, h httprouter.Handle) httprouter.Handle {
	return func(w http.ResponseWriter, r *http.Request, ps httprouter.Params) {
		unauthorized := func(msg string) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="app"`)
			writeError(w, r, http.StatusUnauthorized, "unauthorized", msg, "")
		}
		raw, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		raw = strings.TrimSpace(raw)
		if !ok || raw == "" {
			unauthorized("send an API key: Authorization: Bearer app_... (app keys create)")
			return
		}
		id := store.KeyID(raw)
		if id == "" {
			unauthorized("the Authorization header does not hold an API key of this server")
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
		k, found, err := s.key(ctx, id, r)
		cancel()
		if errors.Is(err, errLookupsSpent) {
			s.tooManyUnknownKeys(w, r)
			return
		}
		if err != nil {
			s.storeFailed(w, r, err)
			return
		}
		if !found || !k.Matches(raw) || !k.RevokedAt.IsZero() {
			unauthorized("the API key is unknown or revoked")
			return
		}
		if scope != "" && !k.Has(scope) {
			writeError(w, r, http.StatusForbidden, "forbidden", "the API key "+k.ID+" lacks the scope "+scope, "")
			return
		}
		if !s.allow(w, r, k.ID) {
			return
		}
		h(w, r.WithContext(context.WithValue(r.Context(), keyCtx{}, k)), ps)
	}
}

// currentKey tells a client what its key is and may do, so a client (the
// console) shows only what the key allows instead of learning it from 403s.
func (s *Server) currentKey(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	k, _ := KeyOf(r)
	writeJSON(w, http.StatusOK, struct {
		ID        string    `json:"id"`
		Name      string    `json:"name"`
		Scopes    []string  `json:"scopes"`
		CreatedAt time.Time `json:"created_at"`
	}{k.ID, k.Name, append([]string{}, k.Scopes...), k.CreatedAt.UTC()})
}
