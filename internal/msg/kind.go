package msg

import "strings"

// KindOf is a stored message's kind: kind itself, or, for a record older
// than the kinds (empty kind), a text, or media by its file's MIME type
// (empty: none).
func KindOf(kind, mimeType string) string {
	switch {
	case kind != "":
		return kind
	case mimeType == "":
		return KindText
	case strings.HasPrefix(mimeType, "image/"):
		return KindImage
	case strings.HasPrefix(mimeType, "video/"):
		return KindVideo
	case strings.HasPrefix(mimeType, "audio/"):
		return KindAudio
	}
	return KindDocument
}
