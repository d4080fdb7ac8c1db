package msg

import (
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestVCardEscapesTheName(t *testing.T) {
	got := VCard("Doe, Jane; CEO\\x\nline", []string{"+491701112222", "+1 (555) 010-0000", "none"})
	want := "BEGIN:VCARD\r\nVERSION:3.0\r\nN:;Doe\\, Jane\\; CEO\\\\x\\nline;;;\r\nFN:Doe\\, Jane\\; CEO\\\\x\\nline\r\n" +
		"TEL;type=CELL;waid=491701112222:+491701112222\r\nTEL;type=CELL;waid=15550100000:+15550100000\r\nEND:VCARD\r\n"
	if got != want {
		t.Errorf("VCard =\n%q\nwant\n%q", got, want)
	}
}

func TestVCardFoldsLongLinesOutsideRunes(t *testing.T) {
	name := strings.Repeat("ä", 60) // 120 bytes
	v := VCard(name, nil)
	for _, line := range strings.Split(strings.TrimSuffix(v, "\r\n"), "\r\n") {
		if len(line) > 75 {
			t.Errorf("line of %d bytes: %q", len(line), line)
		}
		if !utf8.ValidString(line) {
			t.Errorf("line cut inside a character: %q", line)
		}
	}
	if unfolded := strings.ReplaceAll(v, "\r\n ", ""); !strings.Contains(unfolded, "\r\nFN:"+name+"\r\n") {
		t.Errorf("unfolded card has no whole FN line: %q", unfolded)
	}
}

func TestVCardRoundTrip(t *testing.T) {
	phones := []string{"+491701234567", "+15550100000"}
	v := VCard("Anna Schmidt", phones)
	if !IsVCard(v) {
		t.Errorf("IsVCard(%q) = false", v)
	}
	if got := VCardPhones(v); !slices.Equal(got, phones) {
		t.Errorf("VCardPhones(VCard(...)) = %q, want %q", got, phones)
	}
}

func TestVCardPhonesReadsTELLines(t *testing.T) {
	for vcard, want := range map[string][]string{
		"BEGIN:VCARD\nTEL;type=CELL;type=VOICE;waid=4915112345678:+49 151 12345678\nEND:VCARD":              {"+49 151 12345678"},
		"BEGIN:VCARD\r\nitem1.TEL:+1 555\r\nitem2.tel;TYPE=home:tel:+1 666\r\nNOTE:TEL:+1 777\r\nEND:VCARD": {"+1 555", "+1 666"},
		"BEGIN:VCARD\r\nTEL;TYPE=work:+49 30\r\n 1234567\r\nEND:VCARD":                                      {"+49 301234567"},
		"BEGIN:VCARD\nFN:nobody\nEND:VCARD":                                                                 nil,
	} {
		if got := VCardPhones(vcard); !slices.Equal(got, want) {
			t.Errorf("VCardPhones(%q) = %q, want %q", vcard, got, want)
		}
	}
}

func TestIsVCard(t *testing.T) {
	for s, want := range map[string]bool{
		"BEGIN:VCARD\nEND:VCARD":                 true,
		"  begin:vcard\r\nFN:x\r\nend:vcard\r\n": true,
		"Jane, +49170":                           false,
		"BEGIN:VCARD\nFN:x":                      false,
		"":                                       false,
	} {
		if got := IsVCard(s); got != want {
			t.Errorf("IsVCard(%q) = %v, want %v", s, got, want)
		}
	}
}
