package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// Event is one entry of the event log. Seq is its position: the primary is
// the log's one writer and appends in order, so a reader that has seen
// Seq n never later finds an event below n appear.
type Event struct {
	Seq   int64     `bson:"_id" json:"seq"`
	Type  string    `bson:"type" json:"type"`
	At    time.Time `bson:"at" json:"at"`
	Epoch int64     `bson:"epoch" json:"-"`
	// Data is the event's JSON object, kept as a BSON document.
	Data bson.Raw `bson:"data" json:"-"`
}

// AppendEvent inserts e at e.Seq. An insert whose outcome was unknown and
// is repeated finds its own document: ErrExists, which the writer treats as
// done.
func (s *Store) AppendEvent(ctx context.Context, seq int64, typ string, epoch int64, data any) error {
	raw, err := bson.Marshal(data)
	if err != nil {
		return fmt.Errorf("store: event %s: %w", typ, err)
	}
	_, err = s.db.Collection(colEvents).InsertOne(ctx, Event{Seq: seq, Type: typ, At: time.Now(), Epoch: epoch, Data: raw})
	if IsDuplicateKey(err) {
		return ErrExists
	}
	if err != nil {
		return fmt.Errorf("store: append event %d: %w", seq, err)
	}
	return nil
}

// LastEventSeq is the highest sequence number in the log, 0 when empty.
func (s *Store) LastEventSeq(ctx context.Context) (int64, error) {
	var e Event
	err := s.db.Collection(colEvents).FindOne(ctx, bson.D{}, options.FindOne().SetSort(bson.D{{Key: "_id", Value: -1}}).
		SetProjection(bson.D{{Key: "_id", Value: 1}})).Decode(&e)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("store: last event: %w", err)
	}
	return e.Seq, nil
}

// Events lists events after seq, in order, at most limit.
func (s *Store) Events(ctx context.Context, after int64, limit int) ([]Event, error) {
	return findAll[Event](ctx, s.db.Collection(colEvents), "read events", bson.D{{Key: "_id", Value: bson.D{{Key: "$gt", Value: after}}}},
		options.Find().SetSort(bson.D{{Key: "_id", Value: 1}}).SetLimit(int64(limit)))
}

// DecodeData decodes an event's data into v.
func (e Event) DecodeData(v any) error { return bson.Unmarshal(e.Data, v) }

// PruneEvents deletes events written before t (the log's retention). The
// newest event always stays: it holds the log's position, from which the
// next primary continues, so numbers never start over.
func (s *Store) PruneEvents(ctx context.Context, before time.Time) (int64, error) {
	last, err := s.LastEventSeq(ctx)
	if err != nil {
		return 0, err
	}
	res, err := s.db.Collection(colEvents).DeleteMany(ctx, bson.D{{Key: "at", Value: bson.D{{Key: "$lt", Value: before}}},
		{Key: "_id", Value: bson.D{{Key: "$lt", Value: last}}}})
	if err != nil {
		return 0, fmt.Errorf("store: prune events: %w", err)
	}
	return res.DeletedCount, nil
}

// PruneEventsBeyond deletes the oldest events so that at most keep
// remain (the log's size limit). Numbers are contiguous, so this is a
// range on _id.
func (s *Store) PruneEventsBeyond(ctx context.Context, keep int64) (int64, error) {
	last, err := s.LastEventSeq(ctx)
	if err != nil || keep <= 0 || last <= keep {
		return 0, err
	}
	res, err := s.db.Collection(colEvents).DeleteMany(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$lte", Value: last - keep}}}})
	if err != nil {
		return 0, fmt.Errorf("store: prune events beyond %d: %w", keep, err)
	}
	return res.DeletedCount, nil
}

// The log's head: one document holding the newest seq, which the primary
// writes after its appends (coalesced). Readers poll it: a one-document
// read costs the same on any server, where a query of the log costs a
// scan of it on the embedded database; they read the log only when the
// head moved.
const headID = "head"

// SetEventHead records seq as the log's newest position.
func (s *Store) SetEventHead(ctx context.Context, seq int64) error {
	_, err := s.db.Collection(colEventHead).UpdateOne(ctx, bson.D{{Key: "_id", Value: headID}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "seq", Value: seq}, {Key: "at", Value: time.Now()}}}}, options.UpdateOne().SetUpsert(true))
	if err != nil {
		return fmt.Errorf("store: set event head: %w", err)
	}
	return nil
}

// EventHead is the newest position the primary recorded; ErrNotFound
// before any (a log written by an older version).
func (s *Store) EventHead(ctx context.Context) (int64, error) {
	h, err := findOne[eventHead](ctx, s.db.Collection(colEventHead), "read event head", bson.D{{Key: "_id", Value: headID}})
	return h.Seq, err
}

type eventHead struct {
	Seq int64 `bson:"seq"`
}

// FirstEventSeq is the lowest sequence number still in the log, 0 when
// the log is empty.
func (s *Store) FirstEventSeq(ctx context.Context) (int64, error) {
	var e Event
	err := s.db.Collection(colEvents).FindOne(ctx, bson.D{}, options.FindOne().SetSort(bson.D{{Key: "_id", Value: 1}}).
		SetProjection(bson.D{{Key: "_id", Value: 1}})).Decode(&e)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("store: first event: %w", err)
	}
	return e.Seq, nil
}

// EventTypes are the types the log holds (docs/EVENTS.md).
var EventTypes = []string{"session.state", "session.qr", "message.status", "message.incoming", "sending.paused",
	"schedule.run", "webhook.disabled"}
