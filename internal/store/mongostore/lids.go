package mongostore

import (
	"context"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"app/internal/store"
)

// colLIDs holds the pairs of phone-number JID (_id) and LID (unique
// index lid) WhatsApp told us.
const colLIDs = "lids"

// lidIndexes are the indexes of this file's queries (EnsureIndexes): made
// anew for each call, as the driver writes to their options.
func lidIndexes() []indexSpec {
	return []indexSpec{
		{colLIDs, mongo.IndexModel{Keys: bson.D{{Key: "lid", Value: 1}}, Options: options.Index().SetName("lid").SetUnique(true)}},
		// Sparse: media.pending is stored only while true, so the index holds
		// just the few messages whose file was asked for again.
		{colMessages, mongo.IndexModel{Keys: bson.D{{Key: "media.pending", Value: 1}}, Options: options.Index().SetName("media_pending").SetSparse(true)}},
	}
}

// SaveLIDPair records that pn and lid are one person, replacing any pair
// that had either: the pair with lid under another number goes first,
// then pn's is replaced. The primary is the one writer, so no other save
// comes between the two.
func (s *Store) SaveLIDPair(ctx context.Context, pn, lid string) error {
	if !store.IsPN(pn) || !store.IsLID(lid) {
		return fmt.Errorf("store: save LID pair: %q and %q are not a phone number's JID and a LID", pn, lid)
	}
	c := s.db.Collection(colLIDs)
	// Index: lid.
	if _, err := c.DeleteMany(ctx, bson.D{{Key: "lid", Value: lid}, {Key: "_id", Value: bson.D{{Key: "$ne", Value: pn}}}}); err != nil {
		return fmt.Errorf("store: save LID pair %s %s: %w", pn, lid, err)
	}
	p := store.LIDPair{Account: store.DefaultAccount, PN: pn, LID: lid, UpdatedAt: time.Now()}
	// Index: _id.
	if _, err := c.ReplaceOne(ctx, bson.D{{Key: "_id", Value: pn}}, p, options.Replace().SetUpsert(true)); err != nil {
		return fmt.Errorf("store: save LID pair %s %s: %w", pn, lid, err)
	}
	return nil
}

// LIDPair reads the pair that has jid, a number's JID or a LID.
func (s *Store) LIDPair(ctx context.Context, jid string) (store.LIDPair, error) {
	// Index: lid, or _id.
	filter := bson.D{{Key: "_id", Value: jid}}
	if store.IsLID(jid) {
		filter = bson.D{{Key: "lid", Value: jid}}
	}
	return findOne[store.LIDPair](ctx, s.db.Collection(colLIDs), "read LID pair", filter)
}

// SaveContactAddr records a contact's number and LID; an empty one is
// left as it was.
func (s *Store) SaveContactAddr(ctx context.Context, jid, pn, lid string) error {
	set := bson.D{{Key: "updated_at", Value: time.Now()}, {Key: "account", Value: store.DefaultAccount}}
	if pn != "" {
		set = append(set, bson.E{Key: "pn", Value: pn})
	}
	if lid != "" {
		set = append(set, bson.E{Key: "lid", Value: lid})
	}
	// Index: _id.
	_, err := s.db.Collection(colContacts).UpdateOne(ctx, bson.D{{Key: "_id", Value: jid}},
		bson.D{{Key: "$set", Value: set}}, options.UpdateOne().SetUpsert(true))
	if err != nil {
		return fmt.Errorf("store: save number and LID of %s: %w", jid, err)
	}
	return nil
}

// IncomingMediaPending lists the messages whose media is pending received
// since since, oldest first.
func (s *Store) IncomingMediaPending(ctx context.Context, since time.Time, limit int) ([]store.IncomingMessage, error) {
	// Index: media_pending (sparse: the pending ones only); the few it
	// holds are filtered and sorted.
	return findAll[store.IncomingMessage](ctx, s.db.Collection(colMessages), "list messages with pending media",
		bson.D{{Key: "media.pending", Value: true}, {Key: "received_at", Value: bson.D{{Key: "$gte", Value: since}}}},
		options.Find().SetSort(bson.D{{Key: "received_at", Value: 1}}).SetLimit(int64(limit)).SetHint("media_pending"))
}
