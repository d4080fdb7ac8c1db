package msg

import (
	"strings"
	"time"
)

// EditWindow is how long after a message was sent WhatsApp takes an edit
// of it: the API refuses a later edit, and the primary fails a queued one
// whose window passed before it could be sent.
const EditWindow = 15 * time.Minute

// MediaKind is the kind of a message that carries a file of mimeType but
// names no kind (queued before the kinds, or without a type): an image,
// a video or audio by the file's type, anything else a document.
func MediaKind(mimeType string) string {
	switch {
	case strings.HasPrefix(mimeType, "image/"):
		return KindImage
	case strings.HasPrefix(mimeType, "video/"):
		return KindVideo
	case strings.HasPrefix(mimeType, "audio/"):
		return KindAudio
	}
	return KindDocument
}

// IsContent says whether kind is a message of its own (a text, a file, a
// location, cards, a poll), as opposed to one about another message (a
// reaction, an edit, a revoke, a vote): only those are delivered and read,
// quoted, forwarded or reacted to.
func IsContent(kind string) bool {
	switch kind {
	case KindReaction, KindEdit, KindRevoke, KindPollVote, KindOther:
		return false
	}
	return true
}
