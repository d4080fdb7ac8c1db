package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"mime"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"app/internal/msg"
	"app/internal/whatsapp"
)

// The sandbox's incoming action injects a message of any kind, and its
// call action a call (docs/SANDBOX.md). Each kind takes its own fields
// and checks them as WhatsApp's own would be, so a test or a developer
// meets a 400 naming the field rather than a message the primary could
// not have got.

// incomingCommon are the fields every kind of injected message takes;
// incomingKindFields the fields of each kind beyond them.
var (
	incomingCommon = []string{"kind", "chat", "sender", "push_name", "chat_name", "reply_to", "from_me",
		"chat_lid", "sender_lid", "pn_known", "media_expired", "media_retry_fails"}
	incomingTarget     = []string{"target_wa_id", "target_sender", "target_from_me"}
	incomingMedia      = []string{"mime_type", "size"}
	incomingKindFields = map[string][]string{
		msg.KindText:     {"text"},
		msg.KindImage:    append([]string{"caption"}, incomingMedia...),
		msg.KindVideo:    append([]string{"caption"}, incomingMedia...),
		msg.KindDocument: append([]string{"caption", "file_name"}, incomingMedia...),
		msg.KindAudio:    incomingMedia,
		msg.KindVoice:    incomingMedia,
		msg.KindSticker:  incomingMedia,
		msg.KindLocation: {"latitude", "longitude", "name", "address"},
		msg.KindContacts: {"contacts"},
		msg.KindPoll:     {"question", "options", "selectable"},
		msg.KindPollVote: append([]string{"vote"}, incomingTarget...),
		msg.KindReaction: append([]string{"emoji"}, incomingTarget...),
		msg.KindEdit:     append([]string{"text"}, incomingTarget...),
		msg.KindRevoke:   incomingTarget,
	}
	// incomingKinds in the order the documentation lists them.
	incomingKinds = []string{msg.KindText, msg.KindImage, msg.KindVideo, msg.KindAudio, msg.KindVoice, msg.KindDocument,
		msg.KindSticker, msg.KindLocation, msg.KindContacts, msg.KindPoll, msg.KindPollVote, msg.KindReaction, msg.KindEdit,
		msg.KindRevoke}
	// incomingFields are all of them, each of its type.
	incomingFields = map[string]sandboxField{
		"kind": textField, "chat": textField, "sender": textField, "push_name": textField, "chat_name": textField,
		"reply_to": textField, "from_me": flagField, "text": textField,
		"mime_type": textField, "size": numberField, "caption": textField, "file_name": textField,
		"latitude": numberField, "longitude": numberField, "name": textField, "address": textField,
		"contacts": listField, "question": textField, "options": listField, "selectable": numberField,
		"vote": listField, "emoji": textField,
		"target_wa_id": textField, "target_sender": textField, "target_from_me": flagField,
		"chat_lid": textField, "sender_lid": textField, "pn_known": flagField,
		"media_expired": flagField, "media_retry_fails": flagField,
	}
)

// sandboxMaxMedia is the largest file the sandbox makes up for an
// injected message: it holds the bytes until the primary took them.
const sandboxMaxMedia = 16 << 20

var waIDPattern = regexp.MustCompile(`^[0-9A-Za-z]{1,128}$`)

// checkIncoming checks an injected message's fields for its kind and
// normalizes its JIDs; on failure it has answered.
func checkIncoming(w http.ResponseWriter, r *http.Request, a map[string]string) bool {
	kind := a["kind"]
	if kind == "" {
		kind = msg.KindText
	}
	takes, ok := incomingKindFields[kind]
	if !ok {
		writeError(w, r, http.StatusBadRequest, "invalid", "kind must be one of "+strings.Join(incomingKinds, ", "), "kind")
		return false
	}
	keys := make([]string, 0, len(a))
	for k := range a {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if !slices.Contains(incomingCommon, k) && !slices.Contains(takes, k) {
			writeError(w, r, http.StatusBadRequest, "invalid", k+" is not a field of a message of kind "+kind+" (it takes "+strings.Join(takes, ", ")+")", k)
			return false
		}
	}
	if a["chat"] == "" {
		writeError(w, r, http.StatusBadRequest, "invalid", "chat is required", "chat")
		return false
	}
	if !normalizeIncoming(w, r, a) {
		return false
	}
	if field, why := checkIncomingKind(kind, a); field != "" {
		writeError(w, r, http.StatusBadRequest, "invalid", why, field)
		return false
	}
	return true
}

// checkIncomingKind checks the fields of kind, normalizing some in a; it
// returns the field at fault and why, or "".
func checkIncomingKind(kind string, a map[string]string) (string, string) {
	text := func(k string, required bool, max int) (string, string) {
		v := a[k]
		switch {
		case required && strings.TrimSpace(v) == "":
			return k, k + " is required"
		case len(v) > max:
			return k, k + " must be at most " + strconv.Itoa(max) + " bytes"
		}
		return "", ""
	}
	if slices.Contains(incomingKindFields[kind], "target_wa_id") {
		if !waIDPattern.MatchString(a["target_wa_id"]) {
			return "target_wa_id", "target_wa_id is required: the WhatsApp id of the message this " + kind + " is about (letters and digits)"
		}
		if s, ok := a["target_sender"]; ok {
			jid, err := userJID(s)
			if err != nil {
				return "target_sender", "target_sender must be " + err.Error()
			}
			a["target_sender"] = jid
		}
	}
	switch kind {
	case msg.KindText, msg.KindEdit:
		return text("text", true, MaxTextBytes)
	case msg.KindImage, msg.KindVideo, msg.KindAudio, msg.KindVoice, msg.KindDocument, msg.KindSticker:
		if f, why := text("caption", false, MaxTextBytes); f != "" {
			return f, why
		}
		if f, why := text("file_name", false, 255); f != "" {
			return f, why
		}
		if s, ok := a["size"]; ok {
			n, err := strconv.ParseFloat(s, 64)
			if err != nil || n < 1 || n > sandboxMaxMedia || n != float64(int64(n)) {
				return "size", "size must be a whole number of bytes from 1 to " + strconv.Itoa(sandboxMaxMedia)
			}
		}
		if mt, ok := a["mime_type"]; ok {
			if why := mediaTypeFor(kind, mt); why != "" {
				return "mime_type", why
			}
		}
	case msg.KindLocation:
		for _, c := range []struct {
			k   string
			lim float64
		}{{"latitude", 90}, {"longitude", 180}} {
			n, err := strconv.ParseFloat(a[c.k], 64)
			if err != nil || n < -c.lim || n > c.lim {
				return c.k, c.k + " is required, a number of degrees from " + strconv.Itoa(-int(c.lim)) + " to " + strconv.Itoa(int(c.lim))
			}
		}
		if f, why := text("name", false, 1024); f != "" {
			return f, why
		}
		return text("address", false, 1024)
	case msg.KindContacts:
		return checkContacts(a)
	case msg.KindPoll:
		if f, why := text("question", true, 255); f != "" {
			return f, why
		}
		options, why := names(a["options"], "options", 2, 12)
		if why != "" {
			return "options", why
		}
		if s, ok := a["selectable"]; ok {
			n, err := strconv.ParseFloat(s, 64)
			if err != nil || n < 0 || n > float64(len(options)) || n != float64(int64(n)) {
				return "selectable", "selectable must be how many options may be chosen: a whole number from 0 (any) to " + strconv.Itoa(len(options))
			}
		}
	case msg.KindPollVote:
		if _, why := names(a["vote"], "vote", 0, 12); why != "" {
			return "vote", why
		}
	case msg.KindReaction:
		e, ok := a["emoji"]
		if !ok {
			return "emoji", "emoji is required: one emoji, or empty to remove the reaction"
		}
		if e != "" && !oneEmoji(e) {
			return "emoji", "emoji must be one emoji (or empty to remove the reaction)"
		}
	}
	return "", ""
}

// names reads a JSON array of distinct, non-blank strings of at most 100
// characters, from lo to hi of them (a poll's options, a vote).
func names(list, field string, lo, hi int) ([]string, string) {
	var out []string
	if list != "" {
		if err := json.Unmarshal([]byte(list), &out); err != nil {
			return nil, field + " must be an array of strings"
		}
	}
	if len(out) < lo || len(out) > hi {
		return nil, field + " must have " + strconv.Itoa(lo) + " to " + strconv.Itoa(hi) + " entries"
	}
	for i, o := range out {
		switch {
		case strings.TrimSpace(o) == "":
			return nil, field + " must not have a blank entry"
		case utf8.RuneCountInString(o) > 100:
			return nil, field + " entries must be at most 100 characters"
		case slices.Contains(out[:i], o):
			return nil, field + " has " + strconv.Quote(o) + " twice"
		}
	}
	return out, ""
}

// mediaTypeFor says why mt is no file of kind, "" when it is one.
func mediaTypeFor(kind, mt string) string {
	t, _, err := mime.ParseMediaType(mt)
	if err != nil || !strings.Contains(t, "/") {
		return "mime_type must be a MIME type, for example image/jpeg"
	}
	ok := map[string]bool{
		msg.KindImage:    strings.HasPrefix(t, "image/"),
		msg.KindVideo:    strings.HasPrefix(t, "video/"),
		msg.KindAudio:    strings.HasPrefix(t, "audio/"),
		msg.KindVoice:    t == "audio/ogg",
		msg.KindSticker:  t == "image/webp",
		msg.KindDocument: true,
	}[kind]
	if !ok {
		want := map[string]string{msg.KindImage: "image/...", msg.KindVideo: "video/...", msg.KindAudio: "audio/...",
			msg.KindVoice: "audio/ogg (Opus)", msg.KindSticker: "image/webp"}[kind]
		return "mime_type of a " + kind + " must be " + want
	}
	return ""
}

// checkContacts checks the contact cards, an array of {name, phones},
// and writes them back with the phones in E.164 form.
func checkContacts(a map[string]string) (string, string) {
	type card struct {
		Name   string   `json:"name"`
		Phones []string `json:"phones,omitempty"`
	}
	var cards []card
	dec := json.NewDecoder(bytes.NewReader([]byte(a["contacts"])))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&cards); err != nil {
		return "contacts", "contacts is required: an array of contact cards, each {\"name\": ..., \"phones\": [\"+491701234567\"]}"
	}
	if len(cards) < 1 || len(cards) > 100 {
		return "contacts", "contacts must have 1 to 100 cards"
	}
	for i, c := range cards {
		at := "contacts[" + strconv.Itoa(i) + "]"
		if strings.TrimSpace(c.Name) == "" || len(c.Name) > 256 {
			return "contacts", at + ".name is required, at most 256 bytes"
		}
		if len(c.Phones) > 20 {
			return "contacts", at + ".phones must have at most 20 numbers"
		}
		for j, p := range c.Phones {
			n := strings.NewReplacer(" ", "", "-", "", "(", "", ")", "").Replace(p)
			if !strings.HasPrefix(n, "+") || !phoneNumber.MatchString(n) {
				return "contacts", at + ".phones[" + strconv.Itoa(j) + "] must be a phone number in E.164 form (+491701234567)"
			}
			cards[i].Phones[j] = n
		}
	}
	b, _ := json.Marshal(cards)
	a["contacts"] = string(b)
	return "", ""
}

// oneEmoji says whether s looks like one emoji: a few code points
// (joined sequences, skin tones, flags and keycaps have several), at
// least one a symbol, none a letter or a space. Telling one emoji from
// two needs Unicode's segmentation tables, which this does not carry.
func oneEmoji(s string) bool {
	if !utf8.ValidString(s) || utf8.RuneCountInString(s) > 16 {
		return false
	}
	symbol := false
	for _, r := range s {
		switch {
		case unicode.IsLetter(r) || unicode.IsSpace(r) || unicode.IsControl(r):
			return false
		case unicode.Is(unicode.So, r) || r == 0x20E3: // a symbol, or a keycap's enclosure
			symbol = true
		}
	}
	return symbol
}

// userJID normalizes a user's number or JID; the error says what is
// accepted.
func userJID(s string) (string, error) {
	jid, err := whatsapp.NormalizeRecipient(s)
	if err == nil && !strings.HasSuffix(jid, "@s.whatsapp.net") {
		err = errors.New("a user: a phone number in E.164 form (+491701234567) or a user JID (491701234567@s.whatsapp.net)")
	}
	return jid, err
}

// checkCall checks a call's fields: from (required) a user, group a
// group JID; on failure it has answered.
func checkCall(w http.ResponseWriter, r *http.Request, a map[string]string) bool {
	jid, err := userJID(a["from"])
	if err != nil {
		why := "from must be " + err.Error()
		if a["from"] == "" {
			why = "from is required: who calls, a user"
		}
		writeError(w, r, http.StatusBadRequest, "invalid", why, "from")
		return false
	}
	a["from"] = jid
	if g, ok := a["group"]; ok {
		jid, err := whatsapp.NormalizeRecipient(g)
		if err != nil || !strings.HasSuffix(jid, "@g.us") {
			writeError(w, r, http.StatusBadRequest, "invalid", "group must be a group JID (...@g.us): the group of a group call", "group")
			return false
		}
		a["group"] = jid
	}
	return true
}
