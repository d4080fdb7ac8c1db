package sqlitestore

import (
	"context"
	"database/sql"
	"testing"

	"app/internal/store"
)

// MediaInternals reaches into the media tables for the conformance suite
// (storetest.MediaInternals), as damage or a dead process would.
type MediaInternals struct{}

func (MediaInternals) ChunkSize() int { return mediaChunkSize }

// Records counts the rows of media_files and media_chunks.
func (MediaInternals) Records(t testing.TB, st store.Store) (files, chunks int64) {
	t.Helper()
	db := st.(*Store).rdb
	if err := db.QueryRow(`SELECT count(*) FROM media_files`).Scan(&files); err != nil {
		t.Fatal(err)
	}
	if err := db.QueryRow(`SELECT count(*) FROM media_chunks`).Scan(&chunks); err != nil {
		t.Fatal(err)
	}
	return files, chunks
}

// DropChunk deletes chunk n of file id.
func (MediaInternals) DropChunk(t testing.TB, st store.Store, id string, n int) {
	t.Helper()
	rawWrite(t, st, `DELETE FROM media_chunks WHERE file_id = ? AND n = ?`, id, n)
}

// ForgetFile deletes the description of file id only.
func (MediaInternals) ForgetFile(t testing.TB, st store.Store, id string) {
	t.Helper()
	rawWrite(t, st, `DELETE FROM media_files WHERE id = ?`, id)
}

// rawWrite runs a statement the store does not declare, in a write of its
// own, and fails t unless it changed a row.
func rawWrite(t testing.TB, st store.Store, q string, args ...any) {
	t.Helper()
	var res sql.Result
	err := st.(*Store).write(context.Background(), func(tx *wtx) error {
		var err error
		res, err = tx.tx.Exec(q, args...)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if affected(res) == 0 {
		t.Fatalf("%s %v changed nothing", q, args)
	}
}
