package httpapi

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"hash"
	"io"
	"mime"
	"mime/multipart"
	"net"
	"net/http"
	"path"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/julienschmidt/httprouter"

	"app/internal/store"
)

// MediaBackend is what the media routes need from the database.
type MediaBackend interface {
	PutMediaOf(ctx context.Context, name, contentType, keyID string, data io.Reader) (string, error)
	MediaInfo(ctx context.Context, id string) (store.MediaInfo, error)
	OpenMedia(ctx context.Context, id string) (store.MediaInfo, io.ReadCloser, error)
}

// Media transfers get connection deadlines that fit their size instead of
// the server's fixed ones: the whole transfer may take mediaGrace plus its
// size at MediaMinRate, and a transfer that moves no byte for MediaStall is
// cut off.
const (
	defaultMediaMinRate = 32 << 10 // bytes a second: 256 kbit/s, a poor mobile link
	defaultMediaStall   = 30 * time.Second
	mediaGrace          = 30 * time.Second
	// defaultMediaMaxUploads is a worker's concurrent uploads when
	// MediaMaxUploads is not set (APP_MEDIA_MAX_UPLOADS).
	defaultMediaMaxUploads = 16
)

// mediaTypes are the types WhatsApp takes, and what Go's content sniffing
// calls each when it recognises it ("" when it cannot tell).
var mediaTypes = map[string][]string{
	"image/jpeg":      {"image/jpeg"},
	"image/png":       {"image/png"},
	"image/webp":      {"image/webp"},
	"video/mp4":       {"video/mp4"},
	"video/3gpp":      {""},
	"audio/ogg":       {"application/ogg", "audio/ogg"},
	"audio/mpeg":      {"audio/mpeg"},
	"audio/mp4":       {"video/mp4", "audio/mp4"},
	"audio/aac":       {"audio/aac", ""},
	"application/pdf": {"application/pdf"},
	"text/plain":      {"text/plain; charset=utf-8", "text/plain; charset=utf-16be", "text/plain; charset=utf-16le"},
	"application/zip": {"application/zip"},
	"application/vnd.openxmlformats-officedocument.wordprocessingml.document":   {"application/zip"},
	"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet":         {"application/zip"},
	"application/vnd.openxmlformats-officedocument.presentationml.presentation": {"application/zip"},
}

func (s *Server) mediaRoutes(r routes) {
	r.handle("POST", "/v1/media", s.auth(store.ScopeMessagesWrite, s.uploadMedia))
	r.handle("GET", "/v1/media/:id", s.auth(store.ScopeMessagesRead, s.getMedia))
}

type mediaView struct {
	ID       string `json:"id"`
	MimeType string `json:"mime_type"`
	Size     int64  `json:"size"`
	FileName string `json:"file_name,omitempty"`
	SHA256   string `json:"sha256,omitempty"`
}

// uploadMedia stores a file to send: the raw body with its Content-Type,
// or multipart/form-data with the file in the field "file". The declared
// type must be one WhatsApp takes and match what the bytes are. The file
// goes to the database as it arrives; only its first 512 bytes (to tell
// its type) and one chunk are held.
func (s *Server) uploadMedia(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	if !s.uploads.acquire(s.mediaMaxUploads()) {
		// Refused before a byte of the file is read: nothing was stored.
		w.Header().Set("Retry-After", "5")
		writeError(w, r, http.StatusServiceUnavailable, "too_many_uploads",
			"this worker is receiving "+strconv.Itoa(s.mediaMaxUploads())+" uploads already; try again shortly", "")
		return
	}
	defer s.uploads.release()
	size := r.ContentLength
	if size < 0 {
		size = s.MediaMaxBytes
	}
	clock := s.mediaClock(w, size, true)
	_ = clock.rc.SetWriteDeadline(clock.end.Add(mediaGrace)) // the answer comes after the whole body
	body := &clockedBody{ReadCloser: r.Body, clock: clock}
	r.Body = body

	mt, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil {
		writeError(w, r, http.StatusUnsupportedMediaType, "unsupported_media_type", "send the file with its Content-Type, or as multipart/form-data", "")
		return
	}
	name := r.URL.Query().Get("filename")
	var file io.Reader = r.Body
	if mt == "multipart/form-data" {
		mr := multipartReader(r, params["boundary"])
		if mr == nil {
			writeError(w, r, http.StatusBadRequest, "invalid", "multipart/form-data without a boundary", "")
			return
		}
		for {
			part, err := mr.NextPart()
			if err != nil {
				if body.err != nil {
					s.mediaReadFailed(w, r, clock, body.err)
					return
				}
				writeError(w, r, http.StatusBadRequest, "invalid", "no part named \"file\" in the form", "file")
				return
			}
			if part.FormName() == "file" {
				file = part
				if name == "" {
					name = part.FileName()
				}
				mt, _, err = mime.ParseMediaType(part.Header.Get("Content-Type"))
				if err != nil {
					mt = ""
				}
				break
			}
		}
	}
	if len(name) > 255 || strings.ContainsAny(name, "/\\\x00") {
		writeError(w, r, http.StatusBadRequest, "invalid", "filename must be a plain file name of at most 255 bytes", "filename")
		return
	}
	name = path.Base("/" + name)
	if name == "/" {
		name = ""
	}
	counted := &countedFile{r: file, max: s.MediaMaxBytes, sum: sha256.New()}
	head := make([]byte, 512) // all that content sniffing looks at
	n, err := io.ReadFull(counted, head)
	head = head[:n]
	if err != nil && err != io.EOF && err != io.ErrUnexpectedEOF {
		s.mediaReadFailed(w, r, clock, err)
		return
	}
	if n == 0 {
		writeError(w, r, http.StatusBadRequest, "invalid", "the file is empty", "file")
		return
	}
	sniffed := http.DetectContentType(head)
	if mt == "" || mt == "application/octet-stream" {
		mt, _, _ = strings.Cut(sniffed, ";")
	}
	want, ok := mediaTypes[mt]
	if !ok {
		writeError(w, r, http.StatusUnsupportedMediaType, "unsupported_media_type", "WhatsApp does not take "+mt+" files", "file")
		return
	}
	if !matchesSniff(want, sniffed) {
		writeError(w, r, http.StatusUnsupportedMediaType, "unsupported_media_type", "the file is "+sniffed+", not the declared "+mt, "file")
		return
	}
	k, _ := KeyOf(r)
	ctx, cancel := context.WithDeadline(r.Context(), clock.end.Add(mediaGrace))
	defer cancel()
	id, err := s.Media.PutMediaOf(ctx, name, mt, k.ID, io.MultiReader(bytes.NewReader(head), counted))
	if counted.err != nil {
		s.mediaReadFailed(w, r, clock, counted.err) // the store deleted what it had written
		return
	}
	if store.OutcomeUnknown(err) && id != "" && s.readBack(r, func(ctx context.Context) error { _, err := s.Media.MediaInfo(ctx, id); return err }) {
		err = nil // stored: a file's description is written last
	}
	if err != nil {
		s.writeFailed(w, r, err, id, "/v1/media/"+id)
		return
	}
	w.Header().Set("Location", "/v1/media/"+id)
	writeJSON(w, http.StatusCreated, mediaView{ID: id, MimeType: mt, Size: counted.n, FileName: name, SHA256: hex.EncodeToString(counted.sum.Sum(nil))})
}

// mediaReadFailed answers an upload whose body could not be read whole:
// too large, too slow, stalled or broken off.
func (s *Server) mediaReadFailed(w http.ResponseWriter, r *http.Request, clock *mediaClock, err error) {
	var mbe *http.MaxBytesError
	var ne net.Error
	switch {
	case errors.As(err, &mbe):
		writeError(w, r, http.StatusRequestEntityTooLarge, "too_large", "the file is over "+strconv.FormatInt(s.MediaMaxBytes, 10)+" bytes", "file")
	case errors.Is(err, errFileTooLarge):
		writeError(w, r, http.StatusRequestEntityTooLarge, "too_large", "the file is over "+strconv.FormatInt(s.MediaMaxBytes, 10)+" bytes", "file")
	case errors.As(err, &ne) && ne.Timeout():
		msg := "the upload stalled: no data for " + clock.stall.String()
		if !time.Now().Before(clock.end) {
			msg = "the upload was too slow: it may take " + clock.end.Sub(clock.start).Round(time.Second).String() +
				" (" + strconv.Itoa(clock.rate>>10) + " KiB/s)"
		}
		s.logFor(r).Info().Int64("bytes", clock.moved).Msg("An upload was cut off: " + msg + ".")
		writeError(w, r, http.StatusRequestTimeout, "request_timeout", msg+"; nothing was stored", "file")
	default:
		writeError(w, r, http.StatusBadRequest, "invalid", "cannot read the file: "+err.Error(), "file")
	}
}

var errFileTooLarge = errors.New("the file is over the limit")

// countedFile reads an uploaded file, counting and hashing it, and fails
// past max bytes (the request's limit also counts a multipart envelope).
// err keeps the read error, so a failed store write can be told from a
// failed upload.
type countedFile struct {
	r   io.Reader
	n   int64
	max int64
	sum hash.Hash
	err error
}

func (f *countedFile) Read(p []byte) (int, error) {
	n, err := f.r.Read(p)
	f.n += int64(n)
	f.sum.Write(p[:n])
	if f.max > 0 && f.n > f.max {
		err = errFileTooLarge
	}
	if err != nil && err != io.EOF {
		f.err = err
	}
	return n, err
}

// mediaClock moves a media transfer's connection deadline with its
// progress: at most stall ahead of the last byte moved, never past end.
type mediaClock struct {
	rc         *http.ResponseController
	start, end time.Time
	stall      time.Duration
	rate       int
	moved      int64
	last       time.Time // when the deadline last moved
	read       bool      // the read deadline moves (uploads), else the write deadline
}

func (s *Server) mediaClock(w http.ResponseWriter, size int64, read bool) *mediaClock {
	rate, stall := s.MediaMinRate, s.MediaStall
	if rate <= 0 {
		rate = defaultMediaMinRate
	}
	if stall <= 0 {
		stall = defaultMediaStall
	}
	now := time.Now()
	c := &mediaClock{rc: http.NewResponseController(w), start: now, stall: stall, rate: rate, read: read,
		end: now.Add(mediaGrace + time.Duration(float64(size)/float64(rate)*float64(time.Second)))}
	c.move(now)
	return c
}

// progress records n bytes moved and moves the deadline; it moves it at
// most every stall/8, which keeps a chunk's work to one comparison.
func (c *mediaClock) progress(n int) {
	c.moved += int64(n)
	if now := time.Now(); n > 0 && now.Sub(c.last) >= c.stall/8 {
		c.move(now)
	}
}

func (c *mediaClock) move(now time.Time) {
	c.last = now
	d := now.Add(c.stall)
	if d.After(c.end) {
		d = c.end
	}
	if c.read {
		_ = c.rc.SetReadDeadline(d)
	} else {
		_ = c.rc.SetWriteDeadline(d)
	}
}

// clockedBody is an upload's body on the clock. At its end the read
// deadline goes to the transfer's end: the server then watches the idle
// connection, and an expired deadline there would cancel the request
// while the file is being finished.
type clockedBody struct {
	io.ReadCloser
	clock *mediaClock
	err   error
}

func (b *clockedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.clock.progress(n)
	if err == io.EOF {
		_ = b.clock.rc.SetReadDeadline(b.clock.end.Add(mediaGrace))
	} else if err != nil {
		b.err = err
	}
	return n, err
}

// clockedWriter is a download's response on the clock.
type clockedWriter struct {
	w     io.Writer
	clock *mediaClock
}

func (c clockedWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.clock.progress(n)
	return n, err
}

// uploadSlots bounds a worker's concurrent uploads.
type uploadSlots struct{ n atomic.Int64 }

func (u *uploadSlots) acquire(max int) bool {
	if u.n.Add(1) > int64(max) {
		u.n.Add(-1)
		return false
	}
	return true
}

func (u *uploadSlots) release() { u.n.Add(-1) }

func (s *Server) mediaMaxUploads() int {
	if s.MediaMaxUploads > 0 {
		return s.MediaMaxUploads
	}
	return defaultMediaMaxUploads
}

func matchesSniff(want []string, sniffed string) bool {
	for _, w := range want {
		if w == sniffed || (w == "" && sniffed == "application/octet-stream") {
			return true
		}
	}
	return false
}

// getMedia serves a stored file: one uploaded to send, or one received.
// It is streamed from the database a few chunks at a time.
func (s *Server) getMedia(w http.ResponseWriter, r *http.Request, ps httprouter.Params) {
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	// A minute for the database to find the file; the transfer after it
	// is bounded by the clock's write deadline.
	opening := time.AfterFunc(time.Minute, cancel)
	id := ps.ByName("id")
	if r.Method == http.MethodHead {
		// The headers come from the file's description: no chunk is read.
		info, err := s.Media.MediaInfo(ctx, id)
		opening.Stop()
		switch {
		case errors.Is(err, store.ErrNotFound):
			writeError(w, r, http.StatusNotFound, "not_found", "no media "+strconv.Quote(id), "id")
		case err != nil:
			s.storeFailed(w, r, err)
		default:
			mediaHeaders(w.Header(), info)
			w.WriteHeader(http.StatusOK)
		}
		return
	}
	info, rd, err := s.Media.OpenMedia(ctx, id)
	opening.Stop()
	if errors.Is(err, store.ErrNotFound) {
		writeError(w, r, http.StatusNotFound, "not_found", "no media "+strconv.Quote(id), "id")
		return
	}
	if err != nil {
		s.storeFailed(w, r, err)
		return
	}
	clock := s.mediaClock(w, info.Size, false)
	// The server watches the idle request side: its deadline would cancel
	// the request mid-file.
	_ = clock.rc.SetReadDeadline(clock.end.Add(mediaGrace))
	defer rd.Close()
	mediaHeaders(w.Header(), info)
	if n, err := io.Copy(clockedWriter{w, clock}, rd); err != nil {
		// The length is sent: a short body makes the server close the
		// connection, so the client sees a broken download, not a file.
		s.logFor(r).Warn().Err(err).Str("media_id", id).Int64("bytes", n).Int64("size", info.Size).
			Msg("A download was cut off.")
	}
}

// mediaHeaders describe a stored file to the client that fetches it.
func mediaHeaders(h http.Header, info store.MediaInfo) {
	h.Set("Content-Type", info.MimeType)
	h.Set("Content-Length", strconv.FormatInt(info.Size, 10))
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "private, max-age=86400, immutable")
	if info.FileName != "" {
		h.Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": info.FileName}))
	}
}

func multipartReader(r *http.Request, boundary string) *multipart.Reader {
	if boundary == "" {
		return nil
	}
	return multipart.NewReader(r.Body, boundary)
}
