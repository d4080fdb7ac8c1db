package sqlitestore

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"math"
	"strings"
	"time"

	"app/internal/store"
)

// Media: uploaded files, in the database itself (so a backup holds them),
// as a description (media_files) and the bytes in chunks (media_chunks).
//
// An upload is written chunk by chunk as it is read, each chunk in a write
// of its own, and its description last: until then no reader sees the
// file. The client's body is never read inside a write, which holds the
// database's one write lock for every process: a slow client would stop
// every writer. A download reads one chunk per query, so a slow reader
// holds no read transaction open between chunks (an open one would keep
// checkpoints from emptying the WAL for as long as the download lasts).

var _ = schema(
	`CREATE TABLE media_files (
		id TEXT PRIMARY KEY,
		account TEXT NOT NULL DEFAULT 'default',
		uploaded_ns INTEGER NOT NULL,
		size INTEGER NOT NULL,
		doc BLOB NOT NULL
	) STRICT`,
	// PruneMedia walks the files uploaded before a time, in pages.
	`CREATE INDEX media_files_uploaded ON media_files(uploaded_ns, id, size)`,
	// A rowid table: chunks are larger than a page, which WITHOUT ROWID
	// tables keep badly. The primary key's index finds a file's chunks.
	`CREATE TABLE media_chunks (
		file_id TEXT NOT NULL,
		n INTEGER NOT NULL,
		data BLOB NOT NULL,
		PRIMARY KEY (file_id, n)
	) STRICT`,
	// The first chunk of each upload, for PruneMedia's search for uploads
	// that died before their description was written.
	`CREATE INDEX media_chunks_first ON media_chunks(file_id) WHERE n = 0`,
)

var (
	sqlInsertMediaChunk = exec(`INSERT INTO media_chunks(file_id, n, data) VALUES(?, ?, ?)`)
	sqlMediaChunkCount  = exec(`SELECT count(*) FROM media_chunks WHERE file_id = ?`)
	sqlInsertMediaFile  = exec(`INSERT INTO media_files(id, uploaded_ns, size, doc) VALUES(?, ?, ?, ?)`)
	sqlDeleteMediaFile  = exec(`DELETE FROM media_files WHERE id = ?`)
	sqlDeleteMediaData  = exec(`DELETE FROM media_chunks WHERE file_id = ?`)
	sqlMediaFile        = query(`SELECT doc FROM media_files WHERE id = ?`)
	sqlMediaChunk       = query(`SELECT data FROM media_chunks WHERE file_id = ? AND n = ?`)
	sqlOldMedia         = query(`SELECT id, uploaded_ns, size FROM media_files
		WHERE uploaded_ns < ?1 AND (uploaded_ns, id) > (?2, ?3) ORDER BY uploaded_ns, id LIMIT ?4`)
	sqlOrphanedMedia = query(`SELECT file_id FROM media_chunks c WHERE n = 0 AND file_id < ?
		AND NOT EXISTS (SELECT 1 FROM media_files f WHERE f.id = c.file_id) ORDER BY file_id LIMIT ?`)
	sqlDeleteOrphanedMedia = exec(`DELETE FROM media_chunks WHERE file_id = ?1
		AND NOT EXISTS (SELECT 1 FROM media_files WHERE id = ?1)`)
)

// mediaChunkSize is the size of the chunks a file is written in as it is
// read: what an upload and a download hold at a time (with the driver's
// copies), and the size of one write. MongoDB's engine uses the same, for
// the same reason (a worker's collector lets garbage grow to five times
// what is live). Each file keeps its chunk size, so it can change.
const mediaChunkSize = 64 * 1024

// mediaFile is a file's description, media_files' doc.
type mediaFile struct {
	ID          string    `json:"id"`
	FileName    string    `json:"filename"`
	ContentType string    `json:"content_type"`
	KeyID       string    `json:"key_id,omitempty"`
	Length      int64     `json:"length"`
	ChunkSize   int       `json:"chunk_size"`
	UploadedAt  time.Time `json:"uploaded_at"`
}

// newMediaID is a new file id in MongoDB's ObjectID format (24 hex
// digits), which API clients already see: the upload's start in seconds,
// then random bytes. Ids sort by when their upload began, which is how
// PruneMedia tells old chunks without a description from an upload that
// is still running.
func newMediaID(now time.Time) string {
	var b [12]byte
	binary.BigEndian.PutUint32(b[:4], mediaSeconds(now))
	_, _ = rand.Read(b[4:])
	return hex.EncodeToString(b[:])
}

// mediaIDAt is the lowest id of an upload begun at t.
func mediaIDAt(t time.Time) string {
	var b [12]byte
	binary.BigEndian.PutUint32(b[:4], mediaSeconds(t))
	return hex.EncodeToString(b[:])
}

func mediaSeconds(t time.Time) uint32 {
	return uint32(min(max(t.Unix(), 0), math.MaxUint32))
}

// mediaID is id as stored, or false when it cannot be one (MongoDB's ids
// are read in either case, so these are too).
func mediaID(id string) (string, bool) {
	if len(id) != 24 {
		return "", false
	}
	if _, err := hex.DecodeString(id); err != nil {
		return "", false
	}
	return strings.ToLower(id), true
}

// PutMedia stores data under name and returns the file's id.
func (s *Store) PutMedia(ctx context.Context, name, contentType string, data io.Reader) (string, error) {
	return s.PutMediaOf(ctx, name, contentType, "", data)
}

// PutMediaOf stores data uploaded with API key keyID, as data is read: a
// chunk is read, then written in a write of its own (which the group
// commit shares with other writes), so the upload is never held whole and
// the write lock never waits for the client. The description is written
// last, and only when every chunk is still there; when reading data or
// writing fails, what was written is deleted.
func (s *Store) PutMediaOf(ctx context.Context, name, contentType, keyID string, data io.Reader) (string, error) {
	id := newMediaID(time.Now())
	buf := make([]byte, mediaChunkSize)
	var n, length int64
	for {
		k, rerr := io.ReadFull(data, buf)
		if k > 0 {
			chunk := buf[:k]
			if err := s.write(ctx, func(t *wtx) error {
				_, err := t.exec(sqlInsertMediaChunk, id, n, chunk)
				return err
			}); err != nil {
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
	now := time.Now()
	d, err := doc(mediaFile{ID: id, FileName: name, ContentType: contentType, KeyID: keyID,
		Length: length, ChunkSize: mediaChunkSize, UploadedAt: now})
	if err != nil {
		s.abortMedia(ctx, id)
		return "", err
	}
	err = s.write(ctx, func(t *wtx) error {
		// A prune that took this upload, still without description, for
		// one a process left behind has deleted chunks: no file then.
		var have int64
		if err := t.queryRow(sqlMediaChunkCount, id).Scan(&have); err != nil {
			return err
		}
		if have != n {
			return fmt.Errorf("%d of the %d chunks written are stored", have, n)
		}
		_, err := t.exec(sqlInsertMediaFile, id, ns(now), length, d)
		return err
	})
	if err != nil {
		// The commit may have reached the disk: the description goes first,
		// so no reader finds a file whose chunks are gone. When it cannot be
		// taken back either, the file may be stored: the id comes with the
		// error, for the caller to settle (OutcomeUnknown).
		if !s.abortMedia(ctx, id) && store.OutcomeUnknown(err) {
			return id, fmt.Errorf("store: put media: %w", err)
		}
		return "", fmt.Errorf("store: put media: %w", store.NotStored(err))
	}
	return id, nil
}

// abortMedia deletes what an upload that failed wrote, description and
// chunks in one write, with a context of its own: the upload's may be
// what ended. A process that dies first leaves chunks without a
// description, which no reader sees and PruneMedia removes.
func (s *Store) abortMedia(ctx context.Context, id string) bool {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	err := s.write(ctx, func(t *wtx) error {
		if _, err := t.exec(sqlDeleteMediaFile, id); err != nil {
			return err
		}
		_, err := t.exec(sqlDeleteMediaData, id)
		return err
	})
	if err != nil {
		s.log.Warn().Err(err).Str("media", id).Msg("Cannot delete what a failed upload wrote; pruning media will.")
		return false
	}
	return true
}

// Media reads a stored file whole; OpenMedia streams it.
func (s *Store) Media(ctx context.Context, id string) ([]byte, error) {
	return store.ReadMedia(ctx, id, s.OpenMedia)
}

// OpenMedia describes a stored file and opens it for reading, one chunk
// at a time, each read by a query of its own. The reader fails (it does
// not end early) when a chunk is missing, as when the file was pruned
// while it was read; ctx bounds the whole read.
func (s *Store) OpenMedia(ctx context.Context, id string) (store.MediaInfo, io.ReadCloser, error) {
	f, err := s.mediaFile(ctx, id)
	if err != nil {
		return store.MediaInfo{}, nil, err
	}
	return f.info(), &mediaReader{ctx: ctx, s: s, id: f.ID, left: f.Length}, nil
}

// MediaInfo reads a stored file's description.
func (s *Store) MediaInfo(ctx context.Context, id string) (store.MediaInfo, error) {
	f, err := s.mediaFile(ctx, id)
	if err != nil {
		return store.MediaInfo{}, err
	}
	return f.info(), nil
}

func (s *Store) mediaFile(ctx context.Context, id string) (mediaFile, error) {
	id, ok := mediaID(id)
	if !ok {
		return mediaFile{}, store.ErrNotFound
	}
	return one[mediaFile](ctx, s, "read media "+id, sqlMediaFile, id)
}

func (f mediaFile) info() store.MediaInfo {
	return store.MediaInfo{ID: f.ID, FileName: f.FileName, MimeType: f.ContentType, Size: f.Length}
}

type mediaReader struct {
	ctx    context.Context
	s      *Store
	id     string
	chunk  []byte // the current chunk's buffer, reused
	buf    []byte // the rest of the current chunk
	n      int64  // the chunk expected next
	left   int64  // bytes not yet read from the database
	closed bool
}

func (r *mediaReader) Read(p []byte) (int, error) {
	for len(r.buf) == 0 {
		if err := r.next(); err != nil {
			return 0, err
		}
	}
	k := copy(p, r.buf)
	r.buf = r.buf[k:]
	return k, nil
}

// WriteTo hands each chunk to w as it is read (io.Copy uses it), one copy
// fewer than Read.
func (r *mediaReader) WriteTo(w io.Writer) (int64, error) {
	var total int64
	for {
		if len(r.buf) == 0 {
			if err := r.next(); err == io.EOF {
				return total, nil
			} else if err != nil {
				return total, err
			}
		}
		k, err := w.Write(r.buf)
		r.buf = r.buf[k:]
		total += int64(k)
		if err != nil {
			return total, err
		}
	}
}

// next reads the next chunk into r.buf; io.EOF after the last.
func (r *mediaReader) next() error {
	if r.closed {
		return fmt.Errorf("store: read media %s: the reader is closed", r.id)
	}
	if r.left <= 0 {
		return io.EOF
	}
	rows, err := r.s.queryRows(r.ctx, sqlMediaChunk, r.id, r.n)
	if err != nil {
		return fmt.Errorf("store: read media %s: %w", r.id, err)
	}
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return fmt.Errorf("store: read media %s: %w", r.id, err)
		}
		return fmt.Errorf("store: read media %s: chunk %d is missing", r.id, r.n)
	}
	var data sql.RawBytes
	if err := rows.Scan(&data); err != nil {
		return fmt.Errorf("store: read media %s: %w", r.id, err)
	}
	if len(data) == 0 || int64(len(data)) > r.left {
		return fmt.Errorf("store: read media %s: chunk %d is damaged", r.id, r.n)
	}
	r.chunk = append(r.chunk[:0], data...)
	if err := rows.Close(); err != nil {
		return fmt.Errorf("store: read media %s: %w", r.id, err)
	}
	r.buf, r.left = r.chunk, r.left-int64(len(r.chunk))
	r.n++
	return nil
}

// Close lets the chunk go; the reader holds nothing else between reads.
func (r *mediaReader) Close() error {
	r.closed, r.chunk, r.buf = true, nil, nil
	return nil
}

// How PruneMedia goes through old files: a page of candidates at a time,
// deleted in writes of at most pruneMediaFiles files or about
// pruneMediaBytes (freeing a file reads its chunks: a write must not hold
// the lock long), at most pruneMediaMax candidates per call (variables
// for the tests).
var (
	pruneMediaPage  = 500
	pruneMediaMax   = 10000
	pruneMediaFiles = 64
	pruneMediaBytes = int64(16 << 20)
)

// PruneMedia deletes stored files uploaded before t, except those a live
// schedule or an unsent message still needs (checked in the write that
// deletes, so a message enqueued meanwhile keeps its file), and the
// chunks of uploads begun before t whose process died before it wrote
// the description. It returns how many files it deleted.
func (s *Store) PruneMedia(ctx context.Context, before time.Time) (int, error) {
	type candidate struct {
		id   string
		size int64
	}
	n := 0
	afterNS, afterID := int64(math.MinInt64), ""
	for seen := 0; seen < pruneMediaMax; {
		rows, err := s.queryRows(ctx, sqlOldMedia, ns(before), afterNS, afterID, pruneMediaPage)
		if err != nil {
			return n, fmt.Errorf("store: prune media: %w", err)
		}
		var page []candidate
		for rows.Next() {
			var c candidate
			if err := rows.Scan(&c.id, &afterNS, &c.size); err != nil {
				rows.Close()
				return n, fmt.Errorf("store: prune media: %w", err)
			}
			afterID = c.id
			page = append(page, c)
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return n, fmt.Errorf("store: prune media: %w", err)
		}
		seen += len(page)
		for i := 0; i < len(page); {
			var ids []string
			var size int64
			for ; i < len(page) && len(ids) < pruneMediaFiles && size < pruneMediaBytes; i++ {
				ids, size = append(ids, page[i].id), size+page[i].size
			}
			k, err := s.dropMedia(ctx, ids)
			n += k
			if err != nil {
				return n, fmt.Errorf("store: prune media: %w", err)
			}
		}
		if len(page) < pruneMediaPage {
			break
		}
	}
	// Chunks of uploads whose process died before it wrote the description.
	orphans, err := s.orphanedMedia(ctx, before)
	if err != nil {
		return n, fmt.Errorf("store: prune media: %w", err)
	}
	for _, id := range orphans {
		if err := s.write(ctx, func(t *wtx) error {
			_, err := t.exec(sqlDeleteOrphanedMedia, id)
			return err
		}); err != nil {
			return n, fmt.Errorf("store: prune media: %w", err)
		}
	}
	return n, nil
}

// orphanedMedia lists uploads begun before t that have chunks and no
// description.
func (s *Store) orphanedMedia(ctx context.Context, before time.Time) ([]string, error) {
	rows, err := s.queryRows(ctx, sqlOrphanedMedia, mediaIDAt(before), pruneMediaPage)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	return ids, rows.Err()
}

// dropMedia deletes the files ids that nothing needs, in one write, and
// says how many it deleted.
func (s *Store) dropMedia(ctx context.Context, ids []string) (int, error) {
	var k int
	err := s.write(ctx, func(t *wtx) error {
		k = 0
		for _, id := range ids {
			used, err := mediaInUse(t, id)
			if err != nil {
				return err
			}
			if used {
				continue
			}
			res, err := t.exec(sqlDeleteMediaFile, id)
			if err != nil {
				return err
			}
			if affected(res) == 0 {
				continue // another process pruned it
			}
			if _, err := t.exec(sqlDeleteMediaData, id); err != nil {
				return err
			}
			k++
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	return k, nil
}

// sqlMediaInUse finds a live schedule or an unsent message that sends the
// file: their tables keep media_id in a column with an index.
var sqlMediaInUse = exec(`SELECT EXISTS (SELECT 1 FROM outbox WHERE media_id = ?1 AND status IN ('` +
	store.StatusQueued + `', '` + store.StatusSending + `'))
	OR EXISTS (SELECT 1 FROM schedules WHERE media_id = ?1 AND deleted = 0)`)

// mediaInUse reports whether a live schedule or an unsent message needs
// the file id.
func mediaInUse(t *wtx, id string) (bool, error) {
	var used bool
	if err := t.queryRow(sqlMediaInUse, id).Scan(&used); err != nil {
		return false, err
	}
	return used, nil
}
