package store

import (
	"bytes"
	"context"
	"io"
)

// ReadMedia reads a stored file whole through open, an engine's
// OpenMedia: what both engines' Media do.
func ReadMedia(ctx context.Context, id string, open func(ctx context.Context, id string) (MediaInfo, io.ReadCloser, error)) ([]byte, error) {
	info, rd, err := open(ctx, id)
	if err != nil {
		return nil, err
	}
	defer rd.Close()
	buf := bytes.NewBuffer(make([]byte, 0, info.Size))
	if _, err := io.Copy(buf, rd); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// MediaInfo describes a stored file.
type MediaInfo struct {
	ID       string
	FileName string
	MimeType string
	Size     int64
}
