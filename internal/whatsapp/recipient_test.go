package whatsapp

import "testing"

func TestNormalizeRecipient(t *testing.T) {
	for in, want := range map[string]string{
		"+491701234567":                 "491701234567@s.whatsapp.net",
		"+49 170 123-4567":              "491701234567@s.whatsapp.net",
		"+1 (415) 555-0100":             "14155550100@s.whatsapp.net",
		"491701234567@s.whatsapp.net":   "491701234567@s.whatsapp.net",
		"120363025246125486@g.us":       "120363025246125486@g.us",
		"4915112345678-1441234567@g.us": "4915112345678-1441234567@g.us",
		" +491701234567 ":               "491701234567@s.whatsapp.net",
		"201001234567@lid":              "201001234567@lid",
	} {
		got, err := NormalizeRecipient(in)
		if err != nil || got != want {
			t.Errorf("%q: %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"", "491701234567", "+0123456789", "+12", "+4917012345678901", "abc",
		"@s.whatsapp.net", "49170@s.whatsapp.net", "491701234567:3@s.whatsapp.net", "x@g.us", "491701234567@example.com",
		"491701234567@broadcast", "+49170123456a", "@lid", "x1@lid", "0123456@lid", "201001234567:2@lid"} {
		if got, err := NormalizeRecipient(in); err == nil {
			t.Errorf("%q accepted as %q", in, got)
		}
	}
}
