package store

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"time"
)

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
