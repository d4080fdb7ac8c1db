package httpapi

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/julienschmidt/httprouter"

	"app/internal/store"
)

// MediaBackend is what the media routes need from the database.
type MediaBackend interface {
	PutMediaOf(ctx context.Context, name, contentType, keyID string, data io.Reader) (string, error)
	MediaInfo(ctx context.Context, id string) (store.MediaInfo, error)
	Media(ctx context.Context, id string) ([]byte, error)
}

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
// type must be one WhatsApp takes and match what the bytes are.
func (s *Server) uploadMedia(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	mt, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil {
		writeError(w, r, http.StatusUnsupportedMediaType, "unsupported_media_type", "send the file with its Content-Type, or as multipart/form-data", "")
		return
	}
	name := r.URL.Query().Get("filename")
	var body io.Reader = r.Body
	if mt == "multipart/form-data" {
		mr := multipartReader(r, params["boundary"])
		if mr == nil {
			writeError(w, r, http.StatusBadRequest, "invalid", "multipart/form-data without a boundary", "")
			return
		}
		for {
			part, err := mr.NextPart()
			if err != nil {
				writeError(w, r, http.StatusBadRequest, "invalid", "no part named \"file\" in the form", "file")
				return
			}
			if part.FormName() == "file" {
				body = part
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
	data, err := io.ReadAll(body)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			writeError(w, r, http.StatusRequestEntityTooLarge, "too_large", "the file is over "+strconv.FormatInt(mbe.Limit, 10)+" bytes", "file")
			return
		}
		writeError(w, r, http.StatusBadRequest, "invalid", "cannot read the file: "+err.Error(), "file")
		return
	}
	if len(data) == 0 {
		writeError(w, r, http.StatusBadRequest, "invalid", "the file is empty", "file")
		return
	}
	if s.MediaMaxBytes > 0 && int64(len(data)) > s.MediaMaxBytes {
		writeError(w, r, http.StatusRequestEntityTooLarge, "too_large", "the file is over "+strconv.FormatInt(s.MediaMaxBytes, 10)+" bytes", "file")
		return
	}
	sniffed := http.DetectContentType(data)
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
	if len(name) > 255 || strings.ContainsAny(name, "/\\\x00") {
		writeError(w, r, http.StatusBadRequest, "invalid", "filename must be a plain file name of at most 255 bytes", "filename")
		return
	}
	name = path.Base("/" + name)
	if name == "/" {
		name = ""
	}
	k, _ := KeyOf(r)
	ctx, cancel := context.WithTimeout(r.Context(), time.Minute)
	defer cancel()
	id, err := s.Media.PutMediaOf(ctx, name, mt, k.ID, bytes.NewReader(data))
	if store.OutcomeUnknown(err) && id != "" && s.readBack(r, func(ctx context.Context) error { _, err := s.Media.MediaInfo(ctx, id); return err }) {
		err = nil // stored: a file's description is written last
	}
	if err != nil {
		s.writeFailed(w, r, err, id, "/v1/media/"+id)
		return
	}
	sum := sha256.Sum256(data)
	w.Header().Set("Location", "/v1/media/"+id)
	writeJSON(w, http.StatusCreated, mediaView{ID: id, MimeType: mt, Size: int64(len(data)), FileName: name, SHA256: hex.EncodeToString(sum[:])})
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
func (s *Server) getMedia(w http.ResponseWriter, r *http.Request, ps httprouter.Params) {
	ctx, cancel := context.WithTimeout(r.Context(), time.Minute)
	defer cancel()
	id := ps.ByName("id")
	info, err := s.Media.MediaInfo(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		writeError(w, r, http.StatusNotFound, "not_found", "no media "+strconv.Quote(id), "id")
		return
	}
	if err != nil {
		s.storeFailed(w, r, err)
		return
	}
	data, err := s.Media.Media(ctx, id)
	if err != nil {
		s.storeFailed(w, r, err)
		return
	}
	h := w.Header()
	h.Set("Content-Type", info.MimeType)
	h.Set("Content-Length", strconv.Itoa(len(data)))
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "private, max-age=86400, immutable")
	if info.FileName != "" {
		h.Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": info.FileName}))
	}
	_, _ = w.Write(data)
}

func multipartReader(r *http.Request, boundary string) *multipart.Reader {
	if boundary == "" {
		return nil
	}
	return multipart.NewReader(r.Body, boundary)
}
