package store

import (
	"context"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// Command is a request from a worker to the primary for something only
// the owner of the WhatsApp connection can do (ask for a pairing code, log
// out, steer the sandbox). Workers never call the primary: they insert a
// command and read its outcome, which the primary writes.
type Command struct {
	ID        string            `bson:"_id"`
	Kind      string            `bson:"kind"`
	Args      map[string]string `bson:"args,omitempty"`
	CreatedAt time.Time         `bson:"created_at"`
	// Outcome is empty until the primary ran it: "ok", "error" or
	// "expired" (no primary took it in time).
	Outcome   string            `bson:"outcome,omitempty"`
	Result    map[string]string `bson:"result,omitempty"`
	Error     string            `bson:"error,omitempty"`
	DecidedAt time.Time         `bson:"decided_at,omitempty"`
}

// InsertCommand records c for the primary; ID and CreatedAt are set when
// empty, so that an insert run again with c finds it (ErrExists).
func (s *Store) InsertCommand(ctx context.Context, c *Command) error {
	if c.ID == "" {
		c.ID = NewMessageID()
	}
	if c.CreatedAt.IsZero() {
		c.CreatedAt = time.Now()
	}
	if _, err := s.db.Collection(colCommands).InsertOne(ctx, c); err != nil {
		if IsDuplicateKey(err) {
			return fmt.Errorf("store: insert command %s: %w", c.ID, ErrExists)
		}
		return fmt.Errorf("store: insert command: %w", err)
	}
	return nil
}

// Command reads one command.
func (s *Store) Command(ctx context.Context, id string) (Command, error) {
	return findOne[Command](ctx, s.db.Collection(colCommands), "read command", bson.D{{Key: "_id", Value: id}})
}

// PendingCommands lists commands no primary has run, oldest first.
func (s *Store) PendingCommands(ctx context.Context) ([]Command, error) {
	return findAll[Command](ctx, s.db.Collection(colCommands), "list commands", bson.D{{Key: "outcome", Value: bson.D{{Key: "$exists", Value: false}}}},
		options.Find().SetSort(bson.D{{Key: "created_at", Value: 1}}).SetLimit(100))
}

// DecideCommand records the outcome of c.
func (s *Store) DecideCommand(ctx context.Context, c Command) error {
	c.DecidedAt = time.Now()
	if _, err := s.db.Collection(colCommands).ReplaceOne(ctx, bson.D{{Key: "_id", Value: c.ID}}, c); err != nil {
		return fmt.Errorf("store: decide command: %w", err)
	}
	return nil
}

// PruneCommands deletes commands decided before t.
func (s *Store) PruneCommands(ctx context.Context, before time.Time) error {
	_, err := s.db.Collection(colCommands).DeleteMany(ctx, bson.D{{Key: "decided_at", Value: bson.D{{Key: "$lt", Value: before}}}})
	if err != nil {
		return fmt.Errorf("store: prune commands: %w", err)
	}
	return nil
}
