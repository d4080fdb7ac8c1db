package storetest

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"testing/iotest"
	"time"

	"app/internal/store"
)

var _ = add(
	"MediaIsStoredInChunksAndReadsBack", testMediaIsStoredInChunksAndReadsBack,
	"MediaUploadsAtOnceKeepTheirOwnBytes", testMediaUploadsAtOnceKeepTheirOwnBytes,
	"FailedUploadLeavesNoHalfFile", testFailedUploadLeavesNoHalfFile,
	"PruneMediaRemovesOrphanedChunks", testPruneMediaRemovesOrphanedChunks,
)

func mediaInternals(t *testing.T, h Harness) MediaInternals {
	t.Helper()
	if h.Media == nil {
		t.Fatal("the harness has no Media: the media tests need the engine's records")
	}
	return h.Media
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}

// A file of several chunks is stored as it is read and reads back whole,
// by Read of any size and by Media; a chunk gone makes the read fail, not
// end early.
func testMediaIsStoredInChunksAndReadsBack(t *testing.T, h Harness) {
	mi := mediaInternals(t, h)
	st := h.Open(t)
	ctx := context.Background()
	data := randomBytes(3*mi.ChunkSize() + 17)
	id, err := st.PutMediaOf(ctx, "big.bin", "application/pdf", "key1", bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	want := store.MediaInfo{ID: id, FileName: "big.bin", MimeType: "application/pdf", Size: int64(len(data))}
	info, rd, err := st.OpenMedia(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if info != want {
		t.Errorf("OpenMedia's info = %+v, want %+v", info, want)
	}
	// Reads of every size, across the chunks' boundaries.
	if err := iotest.TestReader(rd, data); err != nil {
		t.Errorf("reading the file back: %v", err)
	}
	_ = rd.Close()
	if got, err := st.Media(ctx, id); err != nil || !bytes.Equal(got, data) {
		t.Errorf("Media read %d bytes (equal %t), %v", len(got), bytes.Equal(got, data), err)
	}
	if got, err := st.MediaInfo(ctx, id); err != nil || got != want {
		t.Errorf("MediaInfo = %+v, %v; want %+v", got, err, want)
	}
	if files, chunks := mi.Records(t, st); files != 1 || chunks != 4 {
		t.Fatalf("%d files and %d chunks; want 1 and 4", files, chunks)
	}

	// Ids that are not stored, and ones that cannot be ids.
	for _, other := range []string{"0123456789abcdef01234567", "not-an-id", ""} {
		if _, err := st.MediaInfo(ctx, other); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("MediaInfo(%q): %v, want ErrNotFound", other, err)
		}
		if _, _, err := st.OpenMedia(ctx, other); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("OpenMedia(%q): %v, want ErrNotFound", other, err)
		}
		if _, err := st.Media(ctx, other); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("Media(%q): %v, want ErrNotFound", other, err)
		}
	}

	// An empty file is a file.
	empty, err := st.PutMedia(ctx, "empty.txt", "text/plain", strings.NewReader(""))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := st.Media(ctx, empty); err != nil || len(got) != 0 {
		t.Errorf("the empty file read back as %d bytes, %v", len(got), err)
	}

	// A chunk gone makes the read fail, not end early.
	mi.DropChunk(t, st, id, 2)
	_, rd, err = st.OpenMedia(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(rd)
	_ = rd.Close()
	if err == nil || !strings.Contains(err.Error(), "chunk 2 is missing") {
		t.Errorf("with chunk 2 gone: read %d bytes, %v; want an error naming chunk 2", len(got), err)
	}
	if got, err := st.Media(ctx, id); err == nil || !strings.Contains(err.Error(), "chunk 2 is missing") {
		t.Errorf("with chunk 2 gone: Media read %d bytes, %v; want an error naming chunk 2", len(got), err)
	}
}

// Uploads that arrive at once, their chunks written in between each
// other's, each read back as their own.
func testMediaUploadsAtOnceKeepTheirOwnBytes(t *testing.T, h Harness) {
	mi := mediaInternals(t, h)
	st := h.Open(t)
	ctx := context.Background()
	const uploads = 6
	datas := make([][]byte, uploads)
	ids := make([]string, uploads)
	var wg sync.WaitGroup
	for i := range uploads {
		datas[i] = randomBytes(2*mi.ChunkSize() + 100*i + 1)
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Half a chunk per read, as a network body arrives.
			var err error
			ids[i], err = st.PutMedia(ctx, fmt.Sprint("f", i), "image/png", iotest.HalfReader(bytes.NewReader(datas[i])))
			if err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	for i, id := range ids {
		got, err := st.Media(ctx, id)
		if err != nil || !bytes.Equal(got, datas[i]) {
			t.Errorf("upload %d read back %d of %d bytes (equal %t), %v", i, len(got), len(datas[i]), bytes.Equal(got, datas[i]), err)
		}
	}
	if files, chunks := mi.Records(t, st); files != uploads || chunks != 3*uploads {
		t.Errorf("%d files and %d chunks; want %d and %d", files, chunks, uploads, 3*uploads)
	}
}

// failingReader gives what r has, then fails as a broken-off upload does.
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

// An upload that breaks off after several chunks, or whose context ends,
// leaves nothing behind: no file, no chunks; and its failure is a
// definite one (nothing was stored), without an id.
func testFailedUploadLeavesNoHalfFile(t *testing.T, h Harness) {
	mi := mediaInternals(t, h)
	st := h.Open(t)
	ctx := context.Background()
	part := make([]byte, 3*mi.ChunkSize()+17)
	broken := errors.New("connection reset")
	id, err := st.PutMediaOf(ctx, "half.png", "image/png", "", &failingReader{r: bytes.NewReader(part), err: broken})
	if !errors.Is(err, broken) || id != "" || store.OutcomeUnknown(err) {
		t.Fatalf("a broken read: id %q, %v (outcome unknown: %t); want the read's error, no id", id, err, store.OutcomeUnknown(err))
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
	id, err = st.PutMediaOf(cctx, "cancelled.png", "image/png", "", pr)
	if err == nil || id != "" || store.OutcomeUnknown(err) {
		t.Fatalf("an upload whose context ended: id %q, %v (outcome unknown: %t); want an error, no id", id, err, store.OutcomeUnknown(err))
	}
	if files, chunks := mi.Records(t, st); files != 0 || chunks != 0 {
		t.Errorf("after failed uploads: %d files and %d chunks; want none", files, chunks)
	}
}

// Chunks a dead process left without a description are pruned with old
// media; a stored file's are not.
func testPruneMediaRemovesOrphanedChunks(t *testing.T, h Harness) {
	mi := mediaInternals(t, h)
	st := h.Open(t)
	ctx := context.Background()
	data := make([]byte, 3*mi.ChunkSize()+17)
	orphan, err := st.PutMedia(ctx, "orphan", "image/png", bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	mi.ForgetFile(t, st, orphan)
	if _, err := st.PutMedia(ctx, "new", "image/png", bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	if n, err := st.PruneMedia(ctx, time.Now().Add(-time.Hour)); err != nil || n != 0 {
		t.Fatalf("pruning media older than both: %d files, %v; want 0", n, err)
	}
	if files, chunks := mi.Records(t, st); files != 1 || chunks != 8 {
		t.Fatalf("pruning before both: %d files and %d chunks; want 1 and 8", files, chunks)
	}
	if n, err := st.PruneMedia(ctx, time.Now().Add(time.Minute)); err != nil || n != 1 {
		t.Fatalf("pruning media older than a minute from now: %d files, %v; want 1", n, err)
	}
	if files, chunks := mi.Records(t, st); files != 0 || chunks != 0 {
		t.Errorf("after pruning: %d files and %d chunks; want none", files, chunks)
	}
}
