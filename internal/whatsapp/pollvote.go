package whatsapp

import "crypto/sha256"

// PollOptionHash is how WhatsApp names a poll's option in a vote: the
// SHA-256 of the option's name. A vote carries these hashes, not the
// names, so a vote is named from the poll it answers.
func PollOptionHash(option string) []byte {
	sum := sha256.Sum256([]byte(option))
	return sum[:]
}
