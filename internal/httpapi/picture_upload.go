package httpapi

import (
	"bytes"
	"context"
	"errors"
	"image"
	"image/jpeg"
	"io"
	"mime"
	"net/http"
	"strconv"
	"time"

	"app/internal/store"
)

// Pictures we set, our own profile's and a group's photo: WhatsApp takes
// a square JPEG of at most 640×640 pixels (what it serves as the full
// picture), here at most 2 MiB. Others are refused rather than cropped or
// scaled: which part to keep is the client's choice.
const (
	maxPictureSide    = 640
	maxPictureBytes   = 2 << 20
	pictureSideAdvice = "; crop and scale it first"
)

// pictureUpload is the stored JPEG a request to set a picture gives: its
// body (image/jpeg), stored now under name, or an upload its media_id
// names (application/json); on failure it has answered.
func (s *Server) pictureUpload(w http.ResponseWriter, r *http.Request, name string) (string, bool) {
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	var mediaID string
	var pic []byte
	field := "picture"
	switch mt {
	case "image/jpeg":
		b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxPictureBytes))
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			writeError(w, r, http.StatusRequestEntityTooLarge, "too_large", "the picture is over "+strconv.Itoa(maxPictureBytes)+" bytes", "picture")
			return "", false
		}
		if err != nil {
			writeError(w, r, http.StatusBadRequest, "invalid", "cannot read the picture: "+err.Error(), "picture")
			return "", false
		}
		pic = b
	case "application/json":
		var req struct {
			MediaID string `json:"media_id"`
		}
		if !decodeJSON(w, r, &req) {
			return "", false
		}
		if req.MediaID == "" {
			writeError(w, r, http.StatusBadRequest, "invalid", "media_id is required: the id POST /v1/media returned for a JPEG", "media_id")
			return "", false
		}
		field, mediaID = "media_id", req.MediaID
		b, ok := s.readPicture(w, r, mediaID)
		if !ok {
			return "", false
		}
		pic = b
	default:
		writeError(w, r, http.StatusUnsupportedMediaType, "unsupported_media_type",
			"send the picture as image/jpeg, or application/json with the media_id of an uploaded JPEG", "")
		return "", false
	}
	if status, code, msg := checkPicture(pic); status != 0 {
		writeError(w, r, status, code, msg, field)
		return "", false
	}
	if mediaID != "" {
		return mediaID, true
	}
	k, _ := KeyOf(r)
	ctx, cancel := dbContext(r)
	defer cancel()
	id, err := s.Media.PutMediaOf(ctx, name, "image/jpeg", k.ID, bytes.NewReader(pic))
	if err != nil {
		s.writeFailed(w, r, err, "", "")
		return "", false
	}
	return id, true
}

// checkPicture says what keeps b from being a picture WhatsApp takes;
// status 0 when nothing.
func checkPicture(b []byte) (status int, code, msg string) {
	cfg, err := jpeg.DecodeConfig(bytes.NewReader(b))
	if err != nil {
		if _, format, err := image.DecodeConfig(bytes.NewReader(b)); err == nil {
			return http.StatusUnsupportedMediaType, "unsupported_media_type", "the picture must be a JPEG, not " + format
		}
		return http.StatusUnsupportedMediaType, "unsupported_media_type", "the picture must be a JPEG image"
	}
	size := strconv.Itoa(cfg.Width) + "×" + strconv.Itoa(cfg.Height)
	switch {
	case cfg.Width != cfg.Height:
		return http.StatusUnprocessableEntity, "picture_not_square", "the picture must be square (it is " + size + ")" + pictureSideAdvice
	case cfg.Width > maxPictureSide:
		return http.StatusUnprocessableEntity, "picture_too_large", "the picture must be at most " +
			strconv.Itoa(maxPictureSide) + "×" + strconv.Itoa(maxPictureSide) + " (it is " + size + ")" + pictureSideAdvice
	}
	return 0, "", ""
}

// readPicture reads an uploaded file to become a picture; on failure it
// has answered.
func (s *Server) readPicture(w http.ResponseWriter, r *http.Request, id string) ([]byte, bool) {
	ctx, cancel := context.WithTimeout(r.Context(), time.Minute)
	defer cancel()
	info, rd, err := s.Media.OpenMedia(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		notFound(w, r, "no media "+strconv.Quote(id)+": media_id must be the id POST /v1/media returned", "media_id")
		return nil, false
	}
	if err != nil {
		s.storeFailed(w, r, err)
		return nil, false
	}
	defer rd.Close()
	if info.Size > maxPictureBytes {
		writeError(w, r, http.StatusRequestEntityTooLarge, "too_large", "the picture is over "+strconv.Itoa(maxPictureBytes)+" bytes", "media_id")
		return nil, false
	}
	b, err := io.ReadAll(rd)
	if err != nil {
		s.storeFailed(w, r, err)
		return nil, false
	}
	return b, true
}
