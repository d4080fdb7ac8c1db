package store

import (
	"context"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// MediaChunkSize is the size of the chunks media is written in.
const MediaChunkSize = mediaChunkSize

// MediaDocs counts the documents of stored media: descriptions and chunks.
func (s *Store) MediaDocs(ctx context.Context) (files, chunks int64, err error) {
	if files, err = s.db.Collection("media.files").CountDocuments(ctx, bson.D{}); err != nil {
		return 0, 0, err
	}
	chunks, err = s.db.Collection("media.chunks").CountDocuments(ctx, bson.D{})
	return files, chunks, err
}

// DropMediaChunk deletes chunk n of a stored file, as damage would.
func (s *Store) DropMediaChunk(ctx context.Context, id string, n int) error {
	oid, err := bson.ObjectIDFromHex(id)
	if err != nil {
		return err
	}
	_, err = s.db.Collection("media.chunks").DeleteOne(ctx, bson.D{{Key: "files_id", Value: oid}, {Key: "n", Value: n}})
	return err
}

// ForgetMediaFile deletes a stored file's description only, leaving its
// chunks as a process that died mid-upload leaves them.
func (s *Store) ForgetMediaFile(ctx context.Context, id string) error {
	oid, err := bson.ObjectIDFromHex(id)
	if err != nil {
		return err
	}
	_, err = s.db.Collection("media.files").DeleteOne(ctx, bson.D{{Key: "_id", Value: oid}})
	return err
}
