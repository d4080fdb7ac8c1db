package httpapi

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// timeValue is a time in a request body (RFC 3339). A wrong one is a
// json.UnmarshalTypeError, which encoding/json fills with the field's path,
// so the answer can name the field; time.Time's own error says neither.
type timeValue struct{ time.Time }

var timeType = reflect.TypeFor[timeValue]()

func (t *timeValue) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return &json.UnmarshalTypeError{Value: jsonKindOf(b), Type: timeType}
	}
	if err := t.Time.UnmarshalText([]byte(s)); err != nil {
		return &json.UnmarshalTypeError{Value: "the string " + strconv.Quote(s), Type: timeType}
	}
	return nil
}

// jsonKindOf names the kind of a JSON value by its first byte.
func jsonKindOf(b []byte) string {
	switch b = bytes.TrimSpace(b); {
	case len(b) == 0:
		return "nothing"
	case b[0] == '{':
		return "an object"
	case b[0] == '[':
		return "an array"
	case b[0] == 't' || b[0] == 'f':
		return "a boolean"
	case b[0] == 'n':
		return "null"
	}
	return "a number"
}

// checkValues walks a body's tokens before it is decoded, for what
// encoding/json lets through: a string (a field name included) that is not
// valid UTF-8, which it would replace with U+FFFD without a word, and null,
// which no field of ours takes (a field is left out instead). The error
// names the field. A body that is not JSON passes: the decoder says why.
func checkValues(body []byte) *fieldError {
	type level struct {
		object  bool
		wantKey bool   // an object's next string is a name
		name    string // the name of the object's current member
	}
	var stack []level
	path := func() string {
		var names []string
		for _, l := range stack {
			if l.object && l.name != "" {
				names = append(names, l.name)
			}
		}
		return strings.Join(names, ".")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	for {
		start := dec.InputOffset()
		tok, err := dec.Token()
		if err != nil {
			return nil
		}
		// The token's bytes as sent; what precedes it since the last
		// token is white space and punctuation, ASCII.
		raw := body[start:dec.InputOffset()]
		if len(stack) == 0 && tok != json.Delim('{') {
			if tok == nil {
				return &fieldError{"", "the body must be a JSON object"}
			}
			return nil // not an object: the decoder says so
		}
		isKey := len(stack) > 0 && stack[len(stack)-1].object && stack[len(stack)-1].wantKey
		switch tok := tok.(type) {
		case json.Delim:
			switch tok {
			case '{':
				stack = append(stack, level{object: true, wantKey: true})
				continue
			case '[':
				stack = append(stack, level{})
				continue
			default:
				if stack = stack[:len(stack)-1]; len(stack) == 0 {
					return nil // the object's end: what follows is the decoder's to judge
				}
			}
		case string:
			if isKey {
				stack[len(stack)-1].name = "" // the previous member's
			}
			if msg := invalidString(raw, tok); msg != "" {
				if isKey {
					return &fieldError{path(), "field names " + msg}
				}
				return &fieldError{path(), path() + " " + msg}
			}
			if isKey {
				stack[len(stack)-1].name, stack[len(stack)-1].wantKey = tok, false
				continue
			}
		case nil:
			return &fieldError{path(), path() + " must not be null; leave it out instead"}
		}
		// A value ended: an object's next string is a name again.
		if n := len(stack); n > 0 && stack[n-1].object {
			stack[n-1].wantKey = true
		}
	}
}

// invalidString says what is wrong with a string token, given its bytes as
// sent: invalid UTF-8, or a \u escape of half a UTF-16 surrogate pair, both
// of which the decoder turns into U+FFFD.
func invalidString(raw []byte, decoded string) string {
	if !utf8.Valid(raw) {
		return "must be valid UTF-8"
	}
	if !strings.ContainsRune(decoded, utf8.RuneError) {
		return ""
	}
	for i := 0; i < len(raw); i++ {
		if raw[i] != '\\' || i+1 >= len(raw) {
			continue
		}
		if raw[i+1] != 'u' || i+6 > len(raw) {
			i++ // a two-character escape: skip what it escapes
			continue
		}
		r, err := strconv.ParseUint(string(raw[i+2:i+6]), 16, 16)
		switch {
		case err != nil:
		case r >= 0xD800 && r < 0xDC00:
			// A high surrogate must be followed by a low one.
			if i+12 > len(raw) || raw[i+6] != '\\' || raw[i+7] != 'u' {
				return "must be valid Unicode (a \\u escape holds half a surrogate pair)"
			}
			lo, err := strconv.ParseUint(string(raw[i+8:i+12]), 16, 16)
			if err != nil || lo < 0xDC00 || lo > 0xDFFF {
				return "must be valid Unicode (a \\u escape holds half a surrogate pair)"
			}
			i += 11
			continue
		case r >= 0xDC00 && r <= 0xDFFF:
			return "must be valid Unicode (a \\u escape holds half a surrogate pair)"
		}
		i += 5
	}
	return ""
}
