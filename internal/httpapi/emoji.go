package httpapi

import (
	"strings"

	"github.com/rivo/uniseg"
)

// isOneEmoji says whether s is one emoji as a person sees it (one
// grapheme cluster: 👍, 👍🏽, ❤️, 👨‍👩‍👧, 🇩🇪, 1️⃣), or empty: what WhatsApp
// takes as a reaction.
func isOneEmoji(s string) bool {
	if s == "" {
		return true
	}
	cluster, rest, _, _ := uniseg.FirstGraphemeClusterInString(s, -1)
	if rest != "" {
		return false
	}
	runes := []rune(cluster)
	switch r := runes[0]; {
	case isRegionalIndicator(r): // a flag is two of them
		return len(runes) == 2 && isRegionalIndicator(runes[1])
	case r >= '0' && r <= '9' || r == '#' || r == '*': // a keycap: 1️⃣
		return strings.HasSuffix(cluster, "\u20e3")
	}
	return pictographic(runes[0])
}

func isRegionalIndicator(r rune) bool { return r >= 0x1F1E6 && r <= 0x1F1FF }

// pictographic says whether r has Unicode's Extended_Pictographic
// property, the base of every other emoji. uniseg keeps that table but does
// not export it; its grapheme rules tell it: after a pictograph and a
// zero-width joiner, only a pictograph continues the cluster (UAX #29,
// GB11), unless it joins anything, as a combining mark does (GB9), which
// the second test rules out.
func pictographic(r rune) bool {
	return uniseg.GraphemeClusterCount("\U0001F600\u200d"+string(r)) == 1 && uniseg.GraphemeClusterCount("a"+string(r)) == 2
}
