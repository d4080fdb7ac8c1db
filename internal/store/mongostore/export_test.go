package mongostore

import (
	"context"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"

	"app/internal/store"
)

// MediaInternals reaches into the media.files and media.chunks
// collections for the conformance suite (storetest.MediaInternals), as
// damage or a dead process would.
type MediaInternals struct{}

func (MediaInternals) ChunkSize() int { return mediaChunkSize }

// Records counts the documents of stored media: descriptions and chunks.
func (MediaInternals) Records(t testing.TB, st store.Store) (files, chunks int64) {
	t.Helper()
	db := st.(*Store).db
	ctx := context.Background()
	var err error
	if files, err = db.Collection("media.files").CountDocuments(ctx, bson.D{}); err != nil {
		t.Fatal(err)
	}
	if chunks, err = db.Collection("media.chunks").CountDocuments(ctx, bson.D{}); err != nil {
		t.Fatal(err)
	}
	return files, chunks
}

// DropChunk deletes chunk n of a stored file.
func (MediaInternals) DropChunk(t testing.TB, st store.Store, id string, n int) {
	t.Helper()
	oid, err := bson.ObjectIDFromHex(id)
	if err != nil {
		t.Fatal(err)
	}
	res, err := st.(*Store).db.Collection("media.chunks").DeleteOne(context.Background(), bson.D{{Key: "files_id", Value: oid}, {Key: "n", Value: n}})
	if err != nil || res.DeletedCount != 1 {
		t.Fatalf("delete chunk %d of %s: %v, %d deleted", n, id, err, res.DeletedCount)
	}
}

// ForgetFile deletes a stored file's description only, leaving its
// chunks as a process that died mid-upload leaves them.
func (MediaInternals) ForgetFile(t testing.TB, st store.Store, id string) {
	t.Helper()
	oid, err := bson.ObjectIDFromHex(id)
	if err != nil {
		t.Fatal(err)
	}
	res, err := st.(*Store).db.Collection("media.files").DeleteOne(context.Background(), bson.D{{Key: "_id", Value: oid}})
	if err != nil || res.DeletedCount != 1 {
		t.Fatalf("delete the description of %s: %v, %d deleted", id, err, res.DeletedCount)
	}
}
