package mongostore

import (
	"app/internal/store"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// The log's queries are on _id, its position (LastEventSeq, FirstEventSeq,
// Events, PruneEventsBeyond, the appends' unique insert), except those by
// time, which index "at" serves (PruneEvents, EventSeqAt); the head is one
// document by _id.

// eventDoc is a store.Event as its document: the data, JSON to the
// store's callers, is kept as a BSON document, so it reads as one in the
// database's own tools.
type eventDoc struct {
	Seq   int64     `bson:"_id"`
	Type  string    `bson:"type"`
	At    time.Time `bson:"at"`
	Epoch int64     `bson:"epoch"`
	// Account is the WhatsApp account the event is about (DefaultAccount).
	Account string   `bson:"account,omitempty"`
	Data    bson.Raw `bson:"data"`
}

func (d eventDoc) event() (store.Event, error) {
	e := store.Event{Seq: d.Seq, Type: d.Type, At: d.At, Epoch: d.Epoch}
	if len(d.Data) == 0 {
		e.Data = json.RawMessage("{}")
		return e, nil
	}
	// Written from JSON, the document holds only JSON's types, which
	// relaxed Extended JSON writes as plain JSON.
	b, err := bson.MarshalExtJSON(d.Data, false, false)
	if err != nil {
		return e, fmt.Errorf("store: event %d: %w", d.Seq, err)
	}
	e.Data = b
	return e, nil
}

// AppendEvent inserts e at e.Seq. An insert whose outcome was unknown and
// is repeated finds its own document: ErrExists, which the writer treats as
// done.
func (s *Store) AppendEvent(ctx context.Context, seq int64, typ string, epoch int64, data any) error {
	js, err := store.EventData(typ, data)
	if err != nil {
		return err
	}
	var raw bson.Raw
	if err := bson.UnmarshalExtJSON(js, false, &raw); err != nil {
		return fmt.Errorf("store: event %s: %w", typ, err)
	}
	_, err = s.db.Collection(colEvents).InsertOne(ctx, eventDoc{Seq: seq, Type: typ, At: time.Now(), Epoch: epoch, Account: store.DefaultAccount, Data: raw})
	if IsDuplicateKey(err) {
		return store.ErrExists
	}
	if err != nil {
		return fmt.Errorf("store: append event %d: %w", seq, err)
	}
	return nil
}

// LastEventSeq is the highest sequence number in the log, 0 when empty.
func (s *Store) LastEventSeq(ctx context.Context) (int64, error) {
	var e eventDoc
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
func (s *Store) Events(ctx context.Context, after int64, limit int) ([]store.Event, error) {
	docs, err := findAll[eventDoc](ctx, s.db.Collection(colEvents), "read events", bson.D{{Key: "_id", Value: bson.D{{Key: "$gt", Value: after}}}},
		options.Find().SetSort(bson.D{{Key: "_id", Value: 1}}).SetLimit(int64(limit)))
	if err != nil {
		return nil, err
	}
	out := make([]store.Event, 0, len(docs))
	for _, d := range docs {
		e, err := d.event()
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, nil
}

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

// FirstEventSeq is the lowest sequence number still in the log, 0 when
// the log is empty.
func (s *Store) FirstEventSeq(ctx context.Context) (int64, error) {
	var e eventDoc
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

// WatchEvents returns a channel that receives when the log's head moves,
// from a change stream on the head document: a worker then reads the log
// when there is something to read, instead of polling the head. Servers
// without change streams (a standalone MongoDB, FerretDB) refuse it, and
// the caller polls. The channel closes when the stream ends.
func (s *Store) WatchEvents(ctx context.Context) (<-chan struct{}, error) {
	cs, err := s.db.Collection(colEventHead).Watch(ctx, mongo.Pipeline{})
	if err != nil {
		return nil, fmt.Errorf("store: watch the event log: %w", err)
	}
	ch := make(chan struct{}, 1)
	go func() {
		defer close(ch)
		defer func() {
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			_ = cs.Close(cctx)
		}()
		for cs.Next(ctx) {
			select {
			case ch <- struct{}{}:
			default:
			}
		}
	}()
	return ch, nil
}
