package mongostore

import (
	"context"
	"fmt"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"app/internal/store"
)

// colProfiles holds a profile per JID WhatsApp was asked about (_id: the
// JID).
const colProfiles = "wa_profiles"

// SaveProfile stores p, replacing the profile of the same JID.
func (s *Store) SaveProfile(ctx context.Context, p store.Profile) error {
	p.Account = store.DefaultAccount
	// Index: _id.
	if _, err := s.db.Collection(colProfiles).ReplaceOne(ctx, bson.D{{Key: "_id", Value: p.JID}}, p,
		options.Replace().SetUpsert(true)); err != nil {
		return fmt.Errorf("store: save the profile of %s: %w", p.JID, err)
	}
	return nil
}

// Profiles reads the stored profiles of jids.
func (s *Store) Profiles(ctx context.Context, jids []string) ([]store.Profile, error) {
	if len(jids) == 0 {
		return nil, nil
	}
	// Index: _id.
	return findAll[store.Profile](ctx, s.db.Collection(colProfiles), "read profiles",
		bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: jids}}}})
}
