package msg

import "time"

// EditWindow is how long after a message was sent WhatsApp takes an edit
// of it: the API refuses a later edit, and the primary fails a queued one
// whose window passed before it could be sent.
const EditWindow = 15 * time.Minute

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
