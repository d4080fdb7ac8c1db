package mongostore

import (
	"app/internal/store"
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// PutMedia stores data under name and returns the file's id.
func (s *Store) PutMedia(ctx context.Context, name, contentType string, data io.Reader) (string, error) {
	return s.PutMediaOf(ctx, name, contentType, "", data)
}

// PutMediaOf stores data uploaded with API key keyID, in GridFS's layout
// (so GridFS tools read it), as data is read. The driver's own upload
// stream gathers 16 MiB before it writes anything, which is every file
// WhatsApp takes held whole in memory. The file's description is written
// last: until then no reader sees the file, and when reading data or
// writing fails the chunks written so far are deleted.
func (s *Store) PutMediaOf(ctx context.Context, name, contentType, keyID string, data io.Reader) (string, error) {
	id := bson.NewObjectID()
	chunks := s.db.Collection("media.chunks")
	buf := make([]byte, mediaChunkSize)
	var n int32
	var length int64
	for {
		k, rerr := io.ReadFull(data, buf)
		if k > 0 {
			chunk := bson.D{{Key: "_id", Value: bson.NewObjectID()}, {Key: "files_id", Value: id}, {Key: "n", Value: n},
				{Key: "data", Value: bson.Binary{Data: buf[:k]}}}
			if err := insertSettled(ctx, chunks, chunk); err != nil {
				// No description yet: whatever was written, no file is stored.
				s.abortMedia(ctx, id)
				return "", fmt.Errorf("store: put media: %w", store.NotStored(err))
			}
			n++
			length += int64(k)
		}
		if rerr == io.EOF || rerr == io.ErrUnexpectedEOF {
			break
		}
		if rerr != nil {
			s.abortMedia(ctx, id)
			return "", fmt.Errorf("store: put media: read: %w", rerr)
		}
	}
	meta := bson.D{{Key: "content_type", Value: contentType}, {Key: "account", Value: store.DefaultAccount}}
	if keyID != "" {
		meta = append(meta, bson.E{Key: "key_id", Value: keyID})
	}
	file := bson.D{{Key: "_id", Value: id}, {Key: "length", Value: length}, {Key: "chunkSize", Value: int32(mediaChunkSize)},
		{Key: "uploadDate", Value: time.Now()}, {Key: "filename", Value: name}, {Key: "metadata", Value: meta}}
	if err := insertSettled(ctx, s.db.Collection("media.files"), file); err != nil {
		// The insert may have reached the database: the description goes
		// first, so no reader finds a file whose chunks are gone. When it
		// cannot be taken back either, the file may be stored: the id
		// comes with the error, for the caller to settle (OutcomeUnknown).
		if !s.abortMedia(ctx, id) && store.OutcomeUnknown(err) {
			return id.Hex(), fmt.Errorf("store: put media: %w", err)
		}
		return "", fmt.Errorf("store: put media: %w", store.NotStored(err))
	}
	return id.Hex(), nil
}

// abortMedia deletes what an upload that failed wrote (its description
// first, in case that insert arrived, then its chunks), with a context of
// its own: the upload's may be what ended. A process that dies first
// leaves chunks without a description, which no reader sees and
// PruneMedia removes.
// insertSettled inserts doc, which has its own _id, and settles an
// unknown outcome (the answer lost) by inserting it again until the
// database answers, for at most 10 s: a duplicate then means the first
// insert was stored. An upload cannot be sent again by its caller, whose
// body is read, so its parts are settled here.
func insertSettled(ctx context.Context, c *mongo.Collection, doc any) error {
	_, err := c.InsertOne(ctx, doc)
	deadline := time.Now().Add(10 * time.Second)
	for wait := 20 * time.Millisecond; store.OutcomeUnknown(err) && time.Now().Before(deadline); wait = min(2*wait, time.Second) {
		select {
		case <-ctx.Done():
			return err
		case <-time.After(wait):
		}
		if _, err = c.InsertOne(ctx, doc); IsDuplicateKey(err) {
			return nil
		}
	}
	return err
}

func (s *Store) abortMedia(ctx context.Context, id bson.ObjectID) bool {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if _, err := s.db.Collection("media.files").DeleteOne(ctx, bson.D{{Key: "_id", Value: id}}); err != nil {
		return false
	}
	_, _ = s.db.Collection("media.chunks").DeleteMany(ctx, bson.D{{Key: "files_id", Value: id}})
	return true
}

// Media reads a stored file whole; OpenMedia streams it.
func (s *Store) Media(ctx context.Context, id string) ([]byte, error) {
	return store.ReadMedia(ctx, id, s.OpenMedia)
}

// OpenMedia describes a stored file and opens it for reading, a few chunks
// at a time. The reader fails (it does not end early) when a chunk is
// missing; ctx bounds the whole read.
//
// The chunks come from one query by files_id sorted by n (GridFS's index
// serves it on MongoDB). A lookup of each chunk by its _id would cost
// FerretDB a scan of the collection per chunk: measured on 8 files of
// 16 MiB, the newest file took 64 s that way, against seconds for this.
func (s *Store) OpenMedia(ctx context.Context, id string) (store.MediaInfo, io.ReadCloser, error) {
	info, err := s.MediaInfo(ctx, id)
	if err != nil {
		return store.MediaInfo{}, nil, err
	}
	oid, _ := bson.ObjectIDFromHex(id)
	cur, err := s.db.Collection("media.chunks").Find(ctx, bson.D{{Key: "files_id", Value: oid}},
		options.Find().SetSort(bson.D{{Key: "n", Value: 1}}).SetBatchSize(mediaBatchChunks))
	if err != nil {
		return store.MediaInfo{}, nil, fmt.Errorf("store: read media %s: %w", id, err)
	}
	return info, &mediaReader{ctx: ctx, id: id, cur: cur, left: info.Size}, nil
}

type mediaReader struct {
	ctx  context.Context
	id   string
	cur  *mongo.Cursor
	buf  []byte // the rest of the current chunk, in the cursor's batch
	n    int32  // the chunk expected next
	left int64  // bytes not yet read from the cursor
}

// MediaInfo reads a stored file's description: one round trip.
func (s *Store) MediaInfo(ctx context.Context, id string) (store.MediaInfo, error) {
	oid, err := bson.ObjectIDFromHex(id)
	if err != nil {
		return store.MediaInfo{}, store.ErrNotFound
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
		return store.MediaInfo{}, store.ErrNotFound
	}
	if err != nil {
		return store.MediaInfo{}, fmt.Errorf("store: read media %s: %w", id, err)
	}
	return store.MediaInfo{ID: id, FileName: doc.Filename, MimeType: doc.Metadata.ContentType, Size: doc.Length}, nil
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
		{colOutbox, bson.D{{Key: "status", Value: bson.D{{Key: "$in", Value: bson.A{store.StatusQueued, store.StatusSending}}}}, {Key: "media_id", Value: bson.D{{Key: "$exists", Value: true}}}}},
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
	// Chunks of uploads whose process died before it wrote the description
	// (ids are ObjectIDs: they carry the time the upload began).
	cur, err = s.db.Collection("media.chunks").Find(ctx, bson.D{{Key: "files_id", Value: bson.D{{Key: "$lt", Value: bson.NewObjectIDFromTimestamp(before)}}}, {Key: "n", Value: 0}},
		options.Find().SetProjection(bson.D{{Key: "files_id", Value: 1}}).SetLimit(10000))
	if err != nil {
		return n, fmt.Errorf("store: prune media: %w", err)
	}
	var firsts []struct {
		FilesID bson.ObjectID `bson:"files_id"`
	}
	if err := cur.All(ctx, &firsts); err != nil {
		return n, fmt.Errorf("store: prune media: %w", err)
	}
	for _, c := range firsts {
		err := s.db.Collection("media.files").FindOne(ctx, bson.D{{Key: "_id", Value: c.FilesID}}).Err()
		if !errors.Is(err, mongo.ErrNoDocuments) {
			continue // a file (kept, or the query failed: tried again next time)
		}
		if _, err := s.db.Collection("media.chunks").DeleteMany(ctx, bson.D{{Key: "files_id", Value: c.FilesID}}); err != nil {
			return n, fmt.Errorf("store: prune media: %w", err)
		}
	}
	return n, nil
}

// mediaChunkSize is the size of the chunks a file is written in as it is
// read. An upload holds a few chunks at a time (ours, and the driver's
// copies as it sends one), and a worker's collector lets garbage grow to
// five times what is live (GOGC=400): with GridFS's default of 255 KiB a
// worker grew 48 MiB under 8 uploads at once, with 64 KiB about 20 MiB.
// GridFS keeps the chunk size per file, so files written with either read
// back alike.
const mediaChunkSize = 64 * 1024

// mediaBatchChunks is how many chunks one round trip of a download brings
// (about 1 MiB): the server's default batch is up to 16 MiB.
const mediaBatchChunks = 4

func (r *mediaReader) Read(p []byte) (int, error) {
	for len(r.buf) == 0 {
		if r.left <= 0 {
			return 0, io.EOF
		}
		if !r.cur.Next(r.ctx) {
			if err := r.cur.Err(); err != nil {
				return 0, fmt.Errorf("store: read media %s: %w", r.id, err)
			}
			return 0, fmt.Errorf("store: read media %s: chunk %d is missing", r.id, r.n)
		}
		n, _ := r.cur.Current.Lookup("n").AsInt64OK()
		_, data, ok := r.cur.Current.Lookup("data").BinaryOK()
		if !ok || int64(len(data)) > r.left || len(data) == 0 {
			return 0, fmt.Errorf("store: read media %s: chunk %d is damaged", r.id, r.n)
		}
		if n != int64(r.n) {
			return 0, fmt.Errorf("store: read media %s: chunk %d is missing", r.id, r.n)
		}
		r.buf, r.left = data, r.left-int64(len(data))
		r.n++
	}
	k := copy(p, r.buf)
	r.buf = r.buf[k:]
	return k, nil
}

func (r *mediaReader) Close() error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.ctx), 5*time.Second)
	defer cancel()
	return r.cur.Close(ctx)
}
