package mongostore

import (
	"app/internal/store"
	"context"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// WriteHeartbeat records hb, creating the document on first use.
func (s *Store) WriteHeartbeat(ctx context.Context, hb store.Heartbeat) error {
	// Index: _id.
	_, err := s.db.Collection(colHeartbeats).ReplaceOne(ctx, bson.D{{Key: "_id", Value: hb.ID}}, hb,
		options.Replace().SetUpsert(true))
	if err != nil {
		return fmt.Errorf("store: write heartbeat: %w", err)
	}
	return nil
}

// Heartbeats lists the processes seen since since, oldest id first.
func (s *Store) Heartbeats(ctx context.Context, since time.Time) ([]store.Heartbeat, error) {
	// Index: last_seen (a handful of documents: one per process).
	return findAll[store.Heartbeat](ctx, s.db.Collection(colHeartbeats), "list heartbeats", bson.D{{Key: "last_seen", Value: bson.D{{Key: "$gte", Value: since}}}},
		options.Find().SetSort(bson.D{{Key: "_id", Value: 1}}).SetLimit(1000))
}

// PruneHeartbeats deletes the records of processes not seen since before.
// Only the primary calls it.
func (s *Store) PruneHeartbeats(ctx context.Context, before time.Time) (int64, error) {
	// Index: last_seen.
	res, err := s.db.Collection(colHeartbeats).DeleteMany(ctx, bson.D{{Key: "last_seen", Value: bson.D{{Key: "$lt", Value: before}}}})
	if err != nil {
		return 0, fmt.Errorf("store: prune heartbeats: %w", err)
	}
	return res.DeletedCount, nil
}
