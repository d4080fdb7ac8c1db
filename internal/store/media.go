package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// Media bytes live in GridFS (bucket "media"), not in the primary's state
// directory: workers on other machines serve them, and MongoDB is the only
// thing every process shares.

// PutMedia stores data under name and returns the file's id.
func (s *Store) PutMedia(ctx context.Context, name, contentType string, data io.Reader) (string, error) {
	return s.PutMediaOf(ctx, name, contentType, "", data)
}

// PutMediaOf stores data uploaded with API key keyID. The id is chosen
// before the upload and returned with an error too: after an unknown
// outcome (OutcomeUnknown), MediaInfo tells whether the file was stored.
func (s *Store) PutMediaOf(ctx context.Context, name, contentType, keyID string, data io.Reader) (string, error) {
	b := s.db.GridFSBucket(options.GridFSBucket().SetName("media"))
	meta := bson.D{{Key: "content_type", Value: contentType}}
	if keyID != "" {
		meta = append(meta, bson.E{Key: "key_id", Value: keyID})
	}
	id, err := b.UploadFromStream(ctx, name, data, options.GridFSUpload().SetMetadata(meta))
	if err != nil {
		return id.Hex(), fmt.Errorf("store: put media: %w", err)
	}
	return id.Hex(), nil
}

// Media reads a stored file whole.
func (s *Store) Media(ctx context.Context, id string) ([]byte, error) {
	oid, err := bson.ObjectIDFromHex(id)
	if err != nil {
		return nil, ErrNotFound
	}
	var buf bytes.Buffer
	b := s.db.GridFSBucket(options.GridFSBucket().SetName("media"))
	if _, err := b.DownloadToStream(ctx, oid, &buf); err != nil {
		if errors.Is(err, mongo.ErrFileNotFound) {
			return nil, ErrNotFound
		}
		return nil, fmt.Errorf("store: read media %s: %w", id, err)
	}
	return buf.Bytes(), nil
}

// MediaInfo describes a stored file.
type MediaInfo struct {
	ID       string
	FileName string
	MimeType string
	Size     int64
}

// MediaInfo reads a stored file's description: one round trip.
func (s *Store) MediaInfo(ctx context.Context, id string) (MediaInfo, error) {
	oid, err := bson.ObjectIDFromHex(id)
	if err != nil {
		return MediaInfo{}, ErrNotFound
	}
	var doc struct {
		Length   int64  `bson:"length"`
		Filename string `bson:"filename"`
		Metadata struct {
			ContentType string `bson:"content_type"`
		} `bson:"metadata"`
	}
	err = s.db.Collection("media.files").FindOne(ctx, bson.D{{Key: "_id", Value: oid}}).Decode(&doc)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return MediaInfo{}, ErrNotFound
	}
	if err != nil {
		return MediaInfo{}, fmt.Errorf("store: read media %s: %w", id, err)
	}
	return MediaInfo{ID: id, FileName: doc.Filename, MimeType: doc.Metadata.ContentType, Size: doc.Length}, nil
}

// PruneMedia deletes stored files uploaded before t, except those a live
// schedule or an unsent message still needs.
func (s *Store) PruneMedia(ctx context.Context, before time.Time) (int, error) {
	keep := map[string]bool{}
	for _, q := range []struct {
		coll   string
		filter bson.D
	}{
		{colSchedules, bson.D{{Key: "deleted", Value: false}, {Key: "media_id", Value: bson.D{{Key: "$exists", Value: true}}}}},
		{colOutbox, bson.D{{Key: "status", Value: bson.D{{Key: "$in", Value: bson.A{StatusQueued, StatusSending}}}}, {Key: "media_id", Value: bson.D{{Key: "$exists", Value: true}}}}},
	} {
		cur, err := s.db.Collection(q.coll).Find(ctx, q.filter, options.Find().SetProjection(bson.D{{Key: "media_id", Value: 1}}))
		if err != nil {
			return 0, fmt.Errorf("store: prune media: %w", err)
		}
		var docs []struct {
			MediaID string `bson:"media_id"`
		}
		if err := cur.All(ctx, &docs); err != nil {
			return 0, fmt.Errorf("store: prune media: %w", err)
		}
		for _, d := range docs {
			keep[d.MediaID] = true
		}
	}
	cur, err := s.db.Collection("media.files").Find(ctx, bson.D{{Key: "uploadDate", Value: bson.D{{Key: "$lt", Value: before}}}},
		options.Find().SetProjection(bson.D{{Key: "_id", Value: 1}}).SetLimit(10000))
	if err != nil {
		return 0, fmt.Errorf("store: prune media: %w", err)
	}
	var old []struct {
		ID bson.ObjectID `bson:"_id"`
	}
	if err := cur.All(ctx, &old); err != nil {
		return 0, fmt.Errorf("store: prune media: %w", err)
	}
	b := s.db.GridFSBucket(options.GridFSBucket().SetName("media"))
	n := 0
	for _, f := range old {
		if keep[f.ID.Hex()] {
			continue
		}
		if err := b.Delete(ctx, f.ID); err != nil && !errors.Is(err, mongo.ErrFileNotFound) {
			return n, fmt.Errorf("store: prune media: %w", err)
		}
		n++
	}
	return n, nil
}
