package store

import (
	"bytes"
	"context"
	"fmt"
	"io"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// Media bytes live in GridFS (bucket "media"), not in the primary's state
// directory: workers on other machines serve them, and MongoDB is the only
// thing every process shares.

// PutMedia stores data under name and returns the file's id.
func (s *Store) PutMedia(ctx context.Context, name, contentType string, data io.Reader) (string, error) {
	b := s.db.GridFSBucket(options.GridFSBucket().SetName("media"))
	id, err := b.UploadFromStream(ctx, name, data, options.GridFSUpload().SetMetadata(bson.D{{Key: "content_type", Value: contentType}}))
	if err != nil {
		return "", fmt.Errorf("store: put media: %w", err)
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
		return nil, fmt.Errorf("store: read media %s: %w", id, err)
	}
	return buf.Bytes(), nil
}
