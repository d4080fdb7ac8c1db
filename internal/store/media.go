package store

// MediaInfo describes a stored file.
type MediaInfo struct {
	ID       string
	FileName string
	MimeType string
	Size     int64
}
