package mongostore

import (
	"context"
	"fmt"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"app/internal/store"
)

// colNumberChecks holds a check per number WhatsApp was asked about
// (_id: the number).
const colNumberChecks = "number_checks"

// SaveNumberChecks stores checks in one bulk write, replacing those of
// the same number.
func (s *Store) SaveNumberChecks(ctx context.Context, cs []store.NumberCheck) error {
	if len(cs) == 0 {
		return nil
	}
	models := make([]mongo.WriteModel, 0, len(cs))
	for _, c := range cs {
		c.Account = store.DefaultAccount
		// Index: _id.
		models = append(models, mongo.NewReplaceOneModel().SetFilter(bson.D{{Key: "_id", Value: c.Number}}).
			SetReplacement(c).SetUpsert(true))
	}
	if _, err := s.db.Collection(colNumberChecks).BulkWrite(ctx, models); err != nil {
		return fmt.Errorf("store: save %d number checks: %w", len(cs), err)
	}
	return nil
}

// NumberChecks reads the stored checks of numbers.
func (s *Store) NumberChecks(ctx context.Context, numbers []string) ([]store.NumberCheck, error) {
	if len(numbers) == 0 {
		return nil, nil
	}
	// Index: _id.
	return findAll[store.NumberCheck](ctx, s.db.Collection(colNumberChecks), "read number checks",
		bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: numbers}}}})
}
