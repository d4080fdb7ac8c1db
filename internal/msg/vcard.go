package msg

import (
	"strings"
	"unicode/utf8"
)

// VCard is the vCard 3.0 (RFC 2426) of a contact card given by name and
// numbers: the name escaped, each number as +digits with its WhatsApp id
// (waid), which the apps use to offer a chat with it; lines end in CRLF
// and are folded at 75 bytes. A number without digits is left out.
func VCard(name string, phones []string) string {
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
		digits := strings.Map(func(r rune) rune {
			if r >= '0' && r <= '9' {
				return r
			}
			return -1
		}, p)
		if digits != "" {
			line("TEL;type=CELL;waid=" + digits + ":+" + digits)
		}
	}
	line("END:VCARD")
	return b.String()
}

// IsVCard says whether s is a vCard: BEGIN:VCARD ... END:VCARD, in any
// case, around white space.
func IsVCard(s string) bool {
	s = strings.ToUpper(strings.TrimSpace(s))
	return strings.HasPrefix(s, "BEGIN:VCARD") && strings.HasSuffix(s, "END:VCARD")
}

// VCardPhones are the values of a vCard's TEL lines
// ("item1.TEL;waid=49151…:+49 151 …"), as written.
func VCardPhones(vcard string) []string {
	// Folded lines (RFC 6350 3.2) continue with a space or a tab.
	vcard = strings.NewReplacer("\r\n ", "", "\r\n\t", "", "\n ", "", "\n\t", "").Replace(vcard)
	var phones []string
	for _, line := range strings.Split(vcard, "\n") {
		line = strings.TrimRight(line, "\r")
		name, value, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		prop, _, _ := strings.Cut(name, ";")
		if i := strings.LastIndexByte(prop, '.'); i >= 0 {
			prop = prop[i+1:] // a group prefix (item1.TEL)
		}
		if !strings.EqualFold(prop, "TEL") {
			continue
		}
		value = strings.TrimPrefix(strings.TrimSpace(value), "tel:")
		if value != "" {
			phones = append(phones, value)
		}
	}
	return phones
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
