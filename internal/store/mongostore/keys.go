package mongostore

import (
	"app/internal/store"
	"context"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// CreateAPIKey stores k.
func (s *Store) CreateAPIKey(ctx context.Context, k store.APIKey) error {
	// Index: _id.
	if _, err := s.db.Collection(colKeys).InsertOne(ctx, k); err != nil {
		return fmt.Errorf("store: create key: %w", err)
	}
	return nil
}

// APIKey reads the key with id.
func (s *Store) APIKey(ctx context.Context, id string) (store.APIKey, error) {
	// Index: _id.
	return findOne[store.APIKey](ctx, s.db.Collection(colKeys), "read key", bson.D{{Key: "_id", Value: id}})
}

// APIKeys lists every key, oldest first.
func (s *Store) APIKeys(ctx context.Context) ([]store.APIKey, error) {
	// Index: created.
	return findAll[store.APIKey](ctx, s.db.Collection(colKeys), "list keys", bson.D{}, options.Find().SetSort(bson.D{{Key: "created_at", Value: 1}}))
}

// RevokeAPIKey marks the key revoked; ErrNotFound when there is none.
func (s *Store) RevokeAPIKey(ctx context.Context, id string) error {
	// Index: _id.
	res, err := s.db.Collection(colKeys).UpdateOne(ctx, bson.D{{Key: "_id", Value: id}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "revoked_at", Value: time.Now()}}}})
	if err != nil {
		return fmt.Errorf("store: revoke key: %w", err)
	}
	if res.MatchedCount == 0 {
		return store.ErrNotFound
	}
	return nil
}
