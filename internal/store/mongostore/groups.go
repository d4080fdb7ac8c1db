package mongostore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"app/internal/store"
)

// Groups (issue 19): a document per group the primary stored (_id: the
// JID), and one per account saying when the list of our groups was last
// fetched.
const (
	colGroups    = "wa_groups"
	colGroupList = "wa_group_list"
)

// groupIndexes are the indexes of this file's queries (EnsureIndexes): made
// anew for each call, as the driver writes to their options.
func groupIndexes() []indexSpec {
	return []indexSpec{
		{colGroups, mongo.IndexModel{Keys: bson.D{{Key: "member", Value: 1}, {Key: "name", Value: 1}, {Key: "_id", Value: 1}}, Options: options.Index().SetName("member_name")}},
		// Sparse: event_seq is stored only once a change was announced.
		{colGroups, mongo.IndexModel{Keys: bson.D{{Key: "event_seq", Value: 1}}, Options: options.Index().SetName("event_seq").SetSparse(true)}},
	}
}

func groupDoc(g store.Group) store.Group {
	g.Account = store.AccountOr(g.Account)
	if g.UpdatedAt.IsZero() {
		g.UpdatedAt = time.Now()
	}
	if g.Participants == nil {
		g.Participants = []store.GroupParticipant{}
	}
	return g
}

// SaveGroup stores g, replacing the document of its JID.
func (s *Store) SaveGroup(ctx context.Context, g store.Group) error {
	// Index: _id.
	_, err := s.db.Collection(colGroups).ReplaceOne(ctx, bson.D{{Key: "_id", Value: g.JID}}, groupDoc(g), options.Replace().SetUpsert(true))
	if err != nil {
		return fmt.Errorf("store: save group %s: %w", g.JID, err)
	}
	return nil
}

// Group reads one stored group.
func (s *Store) Group(ctx context.Context, jid string) (store.Group, error) {
	// Index: _id.
	return findOne[store.Group](ctx, s.db.Collection(colGroups), "read group", bson.D{{Key: "_id", Value: jid}})
}

// GroupsPage lists our groups by (name, jid) after the cursor.
func (s *Store) GroupsPage(ctx context.Context, afterName, afterJID string, limit int) ([]store.Group, error) {
	filter := bson.D{{Key: "member", Value: true}, {Key: "$or", Value: bson.A{
		bson.D{{Key: "name", Value: bson.D{{Key: "$gt", Value: afterName}}}},
		bson.D{{Key: "name", Value: afterName}, {Key: "_id", Value: bson.D{{Key: "$gt", Value: afterJID}}}},
	}}}
	opts := options.Find().SetSort(bson.D{{Key: "member", Value: 1}, {Key: "name", Value: 1}, {Key: "_id", Value: 1}})
	if limit > 0 {
		opts.SetLimit(int64(limit))
	}
	// Index: member_name.
	return findAll[store.Group](ctx, s.db.Collection(colGroups), "list groups", filter, opts)
}

// SaveGroupList stores each group, marks the others stored as ours left,
// then records the list's time: one after the other (a stop between
// leaves a list that the next fetch saves again).
func (s *Store) SaveGroupList(ctx context.Context, gs []store.Group, at time.Time) error {
	jids := make([]string, 0, len(gs))
	models := make([]mongo.WriteModel, 0, len(gs))
	for _, g := range gs {
		jids = append(jids, g.JID)
		// Index: _id.
		models = append(models, mongo.NewReplaceOneModel().SetFilter(bson.D{{Key: "_id", Value: g.JID}}).
			SetReplacement(groupDoc(g)).SetUpsert(true))
	}
	fail := func(err error) error { return fmt.Errorf("store: save the list of %d groups: %w", len(gs), err) }
	if len(models) > 0 {
		if _, err := s.db.Collection(colGroups).BulkWrite(ctx, models); err != nil {
			return fail(err)
		}
	}
	// Index: member_name (its prefix).
	if _, err := s.db.Collection(colGroups).UpdateMany(ctx,
		bson.D{{Key: "member", Value: true}, {Key: "_id", Value: bson.D{{Key: "$nin", Value: jids}}}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "member", Value: false}, {Key: "updated_at", Value: time.Now()}}}}); err != nil {
		return fail(err)
	}
	// Index: _id.
	if _, err := s.db.Collection(colGroupList).UpdateOne(ctx, bson.D{{Key: "_id", Value: store.DefaultAccount}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "fetched_at", Value: at}}}}, options.UpdateOne().SetUpsert(true)); err != nil {
		return fail(err)
	}
	return nil
}

// GroupListFetchedAt is when the list of our groups was last saved.
func (s *Store) GroupListFetchedAt(ctx context.Context) (time.Time, error) {
	type listDoc struct {
		FetchedAt time.Time `bson:"fetched_at"`
	}
	// Index: _id.
	d, err := findOne[listDoc](ctx, s.db.Collection(colGroupList), "read the group list's time", bson.D{{Key: "_id", Value: store.DefaultAccount}})
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return time.Time{}, err
	}
	return d.FetchedAt, nil
}

// GroupsUnannounced lists the groups stored for a log position after seq.
func (s *Store) GroupsUnannounced(ctx context.Context, seq int64) ([]store.Group, error) {
	// Index: event_seq.
	return findAll[store.Group](ctx, s.db.Collection(colGroups), "list unannounced groups",
		bson.D{{Key: "event_seq", Value: bson.D{{Key: "$gt", Value: seq}}}}, options.Find().SetSort(bson.D{{Key: "event_seq", Value: 1}}))
}
