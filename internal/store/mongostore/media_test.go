package mongostore_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"app/internal/store/mongostore"
	"app/internal/testdb"
)

// Files are stored in GridFS's layout: the driver's own GridFS bucket
// reads what PutMedia wrote in chunks.
func TestMediaIsGridFS(t *testing.T) {
	db := testdb.StartMongo(t)
	st := db.Connect(nil)
	ctx := context.Background()
	data := make([]byte, 3*mongostore.MediaInternals{}.ChunkSize()+17)
	_, _ = rand.Read(data)
	id, err := st.PutMediaOf(ctx, "big.bin", "application/pdf", "key1", bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	cfg := db.Config(nil)
	cli, err := mongo.Connect(options.Client().ApplyURI(cfg.MongoURI))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cli.Disconnect(ctx) }()
	var buf bytes.Buffer
	oid, _ := bson.ObjectIDFromHex(id)
	if _, err := cli.Database(cfg.MongoDatabase).GridFSBucket(options.GridFSBucket().SetName("media")).DownloadToStream(ctx, oid, &buf); err != nil || !bytes.Equal(buf.Bytes(), data) {
		t.Errorf("GridFS read %d of %d bytes (equal %t), %v", buf.Len(), len(data), bytes.Equal(buf.Bytes(), data), err)
	}
}
