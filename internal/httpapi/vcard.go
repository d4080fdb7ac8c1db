package httpapi

import (
	"strings"
	"unicode/utf8"
)

// buildVCard is the vCard 3.0 (RFC 2426) of a contact card given by name
// and numbers (each +digits): the name escaped, each number with its
// WhatsApp id (waid), which the apps use to offer a chat with it.
func buildVCard(name string, phones []string) string {
	var b strings.Builder
	line := func(s string) {
		b.WriteString(foldLine(s))
		b.WriteString("\r\n")
	}
	line("BEGIN:VCARD")
	line("VERSION:3.0")
	line("N:;" + vcardEscape(name) + ";;;")
	line("FN:" + vcardEscape(name))
	for _, p := range phones {
		line("TEL;type=CELL;waid=" + strings.TrimPrefix(p, "+") + ":" + p)
	}
	line("END:VCARD")
	return b.String()
}

// vcardEscape escapes a text value: backslash, comma, semicolon and line
// breaks (RFC 2426, 4).
func vcardEscape(s string) string {
	return strings.NewReplacer(`\`, `\\`, ",", `\,`, ";", `\;`, "\r\n", `\n`, "\n", `\n`, "\r", `\n`).Replace(s)
}

// foldLine folds a content line longer than 75 bytes (RFC 2425, 5.8.1):
// a line break and a space before each further piece, never inside a
// UTF-8 sequence.
func foldLine(s string) string {
	if len(s) <= 75 {
		return s
	}
	var b strings.Builder
	width := 75
	for len(s) > width {
		cut := width
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		b.WriteString(s[:cut])
		b.WriteString("\r\n ")
		s = s[cut:]
		width = 74 // the leading space counts
	}
	b.WriteString(s)
	return b.String()
}
