package mongostore

import (
	"context"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"app/internal/store"
)

// colBlocklist holds the blocklist (issue 19): one document, by _id.
const (
	colBlocklist = "wa_blocklist"
	blocklistID  = "blocklist"
)

// SaveBlocklist replaces the blocklist document.
func (s *Store) SaveBlocklist(ctx context.Context, b store.Blocklist) error {
	b.UpdatedAt = time.Now()
	b.Account = store.AccountOr(b.Account)
	if b.JIDs == nil {
		b.JIDs = []string{}
	}
	doc := struct {
		ID              string `bson:"_id"`
		store.Blocklist `bson:",inline"`
	}{blocklistID, b}
	// Index: _id.
	_, err := s.db.Collection(colBlocklist).ReplaceOne(ctx, bson.D{{Key: "_id", Value: blocklistID}}, doc, options.Replace().SetUpsert(true))
	if err != nil {
		return fmt.Errorf("store: save blocklist: %w", err)
	}
	return nil
}

// Blocklist reads the blocklist document; ErrNotFound before it was first
// saved.
func (s *Store) Blocklist(ctx context.Context) (store.Blocklist, error) {
	// Index: _id.
	return findOne[store.Blocklist](ctx, s.db.Collection(colBlocklist), "read blocklist", bson.D{{Key: "_id", Value: blocklistID}})
}
