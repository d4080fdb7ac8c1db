package store_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"app/internal/store"
	"app/internal/testdb"
)

// failingReader gives n bytes, then fails as a broken-off upload does.
type failingReader struct {
	r   io.Reader
	err error
}

func (f *failingReader) Read(p []byte) (int, error) {
	n, err := f.r.Read(p)
	if err == io.EOF {
		return n, f.err
	}
	return n, err
}

// A file of several chunks is stored as it is read and reads back whole,
// in GridFS's layout: the driver's own GridFS bucket reads it too.
func TestMediaIsStoredInChunksAndReadsBack(t *testing.T) {
	db := testdb.Start(t)
	st := db.Connect(nil)
	ctx := context.Background()
	data := make([]byte, 3*store.MediaChunkSize+17)
	_, _ = rand.Read(data)
	id, err := st.PutMediaOf(ctx, "big.bin", "application/pdf", "key1", bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	info, rd, err := st.OpenMedia(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(rd)
	_ = rd.Close()
	if err != nil || !bytes.Equal(got, data) || info.Size != int64(len(data)) || info.MimeType != "application/pdf" || info.FileName != "big.bin" {
		t.Fatalf("read back %d bytes (equal %t), %v; info %+v", len(got), bytes.Equal(got, data), err, info)
	}
	if files, chunks, err := st.MediaDocs(ctx); err != nil || files != 1 || chunks != 4 {
		t.Fatalf("%d files and %d chunks, %v; want 1 and 4", files, chunks, err)
	}

	// The driver's GridFS reads what we wrote.
	cli, err := mongo.Connect(options.Client().ApplyURI(db.Config(nil).EffectiveMongoURI()))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cli.Disconnect(ctx) }()
	var buf bytes.Buffer
	oid, _ := bson.ObjectIDFromHex(id)
	if _, err := cli.Database(db.Config(nil).MongoDatabase).GridFSBucket(options.GridFSBucket().SetName("media")).DownloadToStream(ctx, oid, &buf); err != nil || !bytes.Equal(buf.Bytes(), data) {
		t.Errorf("GridFS read %d bytes, %v", buf.Len(), err)
	}

	// A chunk gone makes the read fail, not end early.
	if err := st.DropMediaChunk(ctx, id, 2); err != nil {
		t.Fatal(err)
	}
	_, rd, err = st.OpenMedia(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	got, err = io.ReadAll(rd)
	_ = rd.Close()
	if err == nil || !strings.Contains(err.Error(), "chunk 2 is missing") {
		t.Errorf("with chunk 2 gone: %d bytes, %v", len(got), err)
	}
}

// An upload that breaks off after several chunks, or whose context ends,
// leaves nothing behind: no file, no chunks.
func TestFailedUploadLeavesNoHalfFile(t *testing.T) {
	st := testdb.Start(t).Connect(nil)
	ctx := context.Background()
	part := make([]byte, 3*store.MediaChunkSize+17)
	broken := errors.New("connection reset")
	if _, err := st.PutMediaOf(ctx, "half.png", "image/png", "", &failingReader{r: bytes.NewReader(part), err: broken}); !errors.Is(err, broken) {
		t.Fatalf("a broken read: %v", err)
	}
	cctx, cancel := context.WithCancel(ctx)
	pr, pw := io.Pipe()
	go func() {
		_, _ = pw.Write(part) // three chunks written, then the request ends
		cancel()
		// Not a wait for a condition: the body breaks off a little after
		// the context ends, as a request's does; either must leave nothing.
		time.Sleep(50 * time.Millisecond)
		_ = pw.CloseWithError(context.Canceled)
	}()
	if _, err := st.PutMediaOf(cctx, "cancelled.png", "image/png", "", pr); err == nil {
		t.Fatal("an upload whose context ended was stored")
	}
	if files, chunks, err := st.MediaDocs(ctx); err != nil || files != 0 || chunks != 0 {
		t.Errorf("after failed uploads: %d files and %d chunks, %v; want none", files, chunks, err)
	}
}

// Chunks a dead process left without a description are pruned with old
// media; a stored file's are not.
func TestPruneMediaRemovesOrphanedChunks(t *testing.T) {
	st := testdb.Start(t).Connect(nil)
	ctx := context.Background()
	data := make([]byte, 3*store.MediaChunkSize+17)
	orphan, err := st.PutMedia(ctx, "orphan", "image/png", bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if err := st.ForgetMediaFile(ctx, orphan); err != nil {
		t.Fatal(err)
	}
	if _, err := st.PutMedia(ctx, "new", "image/png", bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	if _, err := st.PruneMedia(ctx, time.Now().Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	if files, chunks, err := st.MediaDocs(ctx); err != nil || files != 1 || chunks != 8 {
		t.Fatalf("pruning before both: %d files and %d chunks, %v; want 1 and 8", files, chunks, err)
	}
	if _, err := st.PruneMedia(ctx, time.Now().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if files, chunks, err := st.MediaDocs(ctx); err != nil || files != 0 || chunks != 0 {
		t.Errorf("after pruning: %d files and %d chunks, %v; want none", files, chunks, err)
	}
}
