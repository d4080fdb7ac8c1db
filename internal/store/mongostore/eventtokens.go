package mongostore

import (
	"app/internal/store"
	"context"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// CreateEventToken stores t; ErrExists when it is stored already.
func (s *Store) CreateEventToken(ctx context.Context, t store.EventToken) error {
	// Index: _id.
	if _, err := s.db.Collection(colEventTokens).InsertOne(ctx, t); err != nil {
		if IsDuplicateKey(err) {
			return fmt.Errorf("store: create event token: %w", store.ErrExists)
		}
		return fmt.Errorf("store: create event token: %w", err)
	}
	return nil
}

// EventToken reads the token stored under hash (EventTokenHash), expired or
// not; ErrNotFound when there is none.
func (s *Store) EventToken(ctx context.Context, hash string) (store.EventToken, error) {
	// Index: _id.
	return findOne[store.EventToken](ctx, s.db.Collection(colEventTokens), "read event token", bson.D{{Key: "_id", Value: hash}})
}

// PruneEventTokens deletes the tokens that expired before t.
func (s *Store) PruneEventTokens(ctx context.Context, before time.Time) (int64, error) {
	// Index: expires.
	res, err := s.db.Collection(colEventTokens).DeleteMany(ctx, bson.D{{Key: "expires_at", Value: bson.D{{Key: "$lt", Value: before}}}})
	if err != nil {
		return 0, fmt.Errorf("store: prune event tokens: %w", err)
	}
	return res.DeletedCount, nil
}
