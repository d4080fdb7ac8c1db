package store

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base32"
	"encoding/hex"
	"strings"
	"time"
)

// API key scopes. admin implies every other.
const (
	ScopeMessagesRead  = "messages:read"
	ScopeMessagesWrite = "messages:write"
	ScopeSession       = "session"
	// ScopeContactsWrite changes contacts, chats, groups and our own
	// profile: block, archive, pin, mute; create and manage groups, join
	// and leave them; set our push name, about text and picture.
	ScopeContactsWrite = "contacts:write"
	ScopeAdmin         = "admin"
)

// Scopes lists the scopes a key may have.
var Scopes = []string{ScopeMessagesRead, ScopeMessagesWrite, ScopeContactsWrite, ScopeSession, ScopeAdmin}

// APIKey is a stored key: never the key itself, only its SHA-256. A key
// has 256 random bits, so a fast hash is enough: there is nothing to
// guess by brute force.
type APIKey struct {
	ID        string    `bson:"_id"` // the visible prefix: app_<id>_...
	Name      string    `bson:"name"`
	Scopes    []string  `bson:"scopes"`
	Hash      string    `bson:"hash"` // hex SHA-256 of the whole key
	CreatedAt time.Time `bson:"created_at"`
	RevokedAt time.Time `bson:"revoked_at,omitempty"`
}

// Has reports whether the key grants scope.
func (k APIKey) Has(scope string) bool {
	for _, s := range k.Scopes {
		if s == scope || s == ScopeAdmin {
			return true
		}
	}
	return false
}

// Matches compares key with the stored hash in constant time.
func (k APIKey) Matches(key string) bool {
	sum := sha256.Sum256([]byte(key))
	want, err := hex.DecodeString(k.Hash)
	return err == nil && subtle.ConstantTimeCompare(sum[:], want) == 1
}

var b32 = base32.StdEncoding.WithPadding(base32.NoPadding)

// NewAPIKey makes a key: "app_" + an 8-character id + "_" + 52 characters
// of secret (256 bits). It returns the key, to show once, and what to store.
func NewAPIKey(name string, scopes []string) (string, APIKey) {
	id := make([]byte, 5)
	secret := make([]byte, 32)
	_, _ = rand.Read(id)
	_, _ = rand.Read(secret)
	k := APIKey{ID: strings.ToLower(b32.EncodeToString(id)), Name: name, Scopes: scopes, CreatedAt: time.Now()}
	key := "app_" + k.ID + "_" + strings.ToLower(b32.EncodeToString(secret))
	sum := sha256.Sum256([]byte(key))
	k.Hash = hex.EncodeToString(sum[:])
	return key, k
}

// KeyID is the id part of a key as clients send it, or "" when the key is
// not shaped like one of ours.
func KeyID(key string) string {
	rest, ok := strings.CutPrefix(key, "app_")
	if !ok {
		return ""
	}
	id, secret, ok := strings.Cut(rest, "_")
	if !ok || len(id) != 8 || len(secret) != 52 {
		return ""
	}
	return id
}
