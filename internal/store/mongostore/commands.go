package mongostore

import (
	"app/internal/store"
	"context"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// InsertCommand records c for the primary; ID and CreatedAt are set when
// empty, so that an insert run again with c finds it (ErrExists).
func (s *Store) InsertCommand(ctx context.Context, c *store.Command) error {
	if c.ID == "" {
		c.ID = store.NewMessageID()
	}
	if c.CreatedAt.IsZero() {
		c.CreatedAt = time.Now()
	}
	// Index: _id, unique (a taken id is ErrExists).
	if _, err := s.db.Collection(colCommands).InsertOne(ctx, c); err != nil {
		if IsDuplicateKey(err) {
			return fmt.Errorf("store: insert command %s: %w", c.ID, store.ErrExists)
		}
		return fmt.Errorf("store: insert command: %w", err)
	}
	return nil
}

// Command reads one command.
func (s *Store) Command(ctx context.Context, id string) (store.Command, error) {
	// Index: _id.
	return findOne[store.Command](ctx, s.db.Collection(colCommands), "read command", bson.D{{Key: "_id", Value: id}})
}

// PendingCommands lists commands no primary has run, oldest first.
func (s *Store) PendingCommands(ctx context.Context) ([]store.Command, error) {
	// Index: pending (outcome missing, by created_at).
	return findAll[store.Command](ctx, s.db.Collection(colCommands), "list commands", bson.D{{Key: "outcome", Value: bson.D{{Key: "$exists", Value: false}}}},
		options.Find().SetSort(bson.D{{Key: "created_at", Value: 1}}).SetLimit(100))
}

// DecideCommand records the outcome of c.
func (s *Store) DecideCommand(ctx context.Context, c store.Command) error {
	c.DecidedAt = time.Now()
	// Index: _id.
	if _, err := s.db.Collection(colCommands).ReplaceOne(ctx, bson.D{{Key: "_id", Value: c.ID}}, c); err != nil {
		return fmt.Errorf("store: decide command: %w", err)
	}
	return nil
}

// PruneCommands deletes commands decided before t.
func (s *Store) PruneCommands(ctx context.Context, before time.Time) error {
	// Index: decided.
	_, err := s.db.Collection(colCommands).DeleteMany(ctx, bson.D{{Key: "decided_at", Value: bson.D{{Key: "$lt", Value: before}}}})
	if err != nil {
		return fmt.Errorf("store: prune commands: %w", err)
	}
	return nil
}
