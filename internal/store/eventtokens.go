package store

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// colEventTokens holds browser tokens for the realtime routes. Lookups are
// by _id and the collection holds at most the tokens of the last prune
// interval, so it needs no index; FerretDB does not honour TTL indexes, so
// the primary prunes it (PruneEventTokens).
const colEventTokens = "event_tokens"

// EventToken is a short-lived stand-in for an API key on the realtime
// routes, for browsers, whose EventSource and WebSocket cannot send an
// Authorization header. Like a key, only its SHA-256 is stored.
type EventToken struct {
	Hash      string    `bson:"_id"` // hex SHA-256 of the whole token
	KeyID     string    `bson:"key_id"`
	CreatedAt time.Time `bson:"created_at"`
	ExpiresAt time.Time `bson:"expires_at"`
}

// NewEventToken makes a token for the key keyID valid for ttl: "evt_" and
// 52 characters (256 random bits). It returns the token, to hand out once,
// and what to store.
func NewEventToken(keyID string, ttl time.Duration) (string, EventToken) {
	secret := make([]byte, 32)
	_, _ = rand.Read(secret)
	token := "evt_" + strings.ToLower(b32.EncodeToString(secret))
	now := time.Now()
	return token, EventToken{Hash: EventTokenHash(token), KeyID: keyID, CreatedAt: now, ExpiresAt: now.Add(ttl)}
}

// EventTokenHash is what a token is stored and looked up by. The token has
// 256 random bits, so a fast hash is enough, and a lookup by hash leaks
// nothing through timing that would help guess one.
func EventTokenHash(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// CreateEventToken stores t; ErrExists when it is stored already.
func (s *Store) CreateEventToken(ctx context.Context, t EventToken) error {
	if _, err := s.db.Collection(colEventTokens).InsertOne(ctx, t); err != nil {
		if IsDuplicateKey(err) {
			return fmt.Errorf("store: create event token: %w", ErrExists)
		}
		return fmt.Errorf("store: create event token: %w", err)
	}
	return nil
}

// EventToken reads the token stored under hash (EventTokenHash), expired or
// not; ErrNotFound when there is none.
func (s *Store) EventToken(ctx context.Context, hash string) (EventToken, error) {
	return findOne[EventToken](ctx, s.db.Collection(colEventTokens), "read event token", bson.D{{Key: "_id", Value: hash}})
}

// PruneEventTokens deletes the tokens that expired before t.
func (s *Store) PruneEventTokens(ctx context.Context, before time.Time) (int64, error) {
	res, err := s.db.Collection(colEventTokens).DeleteMany(ctx, bson.D{{Key: "expires_at", Value: bson.D{{Key: "$lt", Value: before}}}})
	if err != nil {
		return 0, fmt.Errorf("store: prune event tokens: %w", err)
	}
	return res.DeletedCount, nil
}
