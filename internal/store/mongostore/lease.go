package mongostore

import (
	"app/internal/store"
	"context"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// CurrentLease returns the highest epoch, or ErrNotFound before the first.
func (s *Store) CurrentLease(ctx context.Context) (store.Lease, error) {
	// Index: _id (the highest epoch).
	return findOne[store.Lease](ctx, s.db.Collection(colLease), "read lease", bson.D{}, options.FindOne().SetSort(bson.D{{Key: "_id", Value: -1}}))
}

// ClaimLease inserts epoch l.Epoch. It reports false, without error, when
// another contender claimed that epoch first.
func (s *Store) ClaimLease(ctx context.Context, l store.Lease) (bool, error) {
	_, err := s.db.Collection(colLease).InsertOne(ctx, l)
	if IsDuplicateKey(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("store: claim lease: %w", err)
	}
	return true, nil
}

// RenewLease moves the expiry of the holder's epoch. It reports false when
// the epoch is not (or no longer) held by holder, or a higher epoch exists.
func (s *Store) RenewLease(ctx context.Context, epoch int64, holder string, expires time.Time) (bool, error) {
	res, err := s.db.Collection(colLease).UpdateOne(ctx,
		bson.D{{Key: "_id", Value: epoch}, {Key: "holder", Value: holder}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "expires_at", Value: expires}}}})
	if err != nil {
		return false, fmt.Errorf("store: renew lease: %w", err)
	}
	if res.MatchedCount == 0 {
		return false, nil
	}
	// Index: _id (a range above epoch).
	n, err := s.db.Collection(colLease).CountDocuments(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$gt", Value: epoch}}}})
	if err != nil {
		return false, fmt.Errorf("store: renew lease: %w", err)
	}
	return n == 0, nil
}

// PruneLeases deletes epochs below keepFrom; the holder calls it.
func (s *Store) PruneLeases(ctx context.Context, keepFrom int64) error {
	_, err := s.db.Collection(colLease).DeleteMany(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$lt", Value: keepFrom}}}})
	if err != nil {
		return fmt.Errorf("store: prune leases: %w", err)
	}
	return nil
}
