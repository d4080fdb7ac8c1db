package httpapi

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"app/internal/msg"
	"app/internal/store"
	"app/internal/whatsapp"
)

// sendRequest is the body of POST /v1/messages: one object, its type
// naming the kind of message, with the fields of that kind (kindFields).
// Without a type it is a text, or media of the kind the file's type says,
// as before the kinds.
type sendRequest struct {
	To       *string           `json:"to"`
	Type     *string           `json:"type"`
	Text     *string           `json:"text"`
	ReplyTo  *string           `json:"reply_to"`
	MediaID  *string           `json:"media_id"`
	Mentions *[]string         `json:"mentions"`
	Location *locationRequest  `json:"location"`
	Contacts *[]contactRequest `json:"contacts"`
	Poll     *pollRequest      `json:"poll"`
	Emoji    *string           `json:"emoji"`
	Target   *targetRequest    `json:"target"`
	Forward  *forwardRequest   `json:"forward"`
}

type locationRequest struct {
	Latitude  *float64 `json:"latitude"`
	Longitude *float64 `json:"longitude"`
	Name      *string  `json:"name"`
	Address   *string  `json:"address"`
}

type contactRequest struct {
	Name   *string   `json:"name"`
	Phones *[]string `json:"phones"`
	VCard  *string   `json:"vcard"`
}

type pollRequest struct {
	Question   *string   `json:"question"`
	Options    *[]string `json:"options"`
	Selectable *int      `json:"selectable"`
}

// targetRequest names the message a reaction, edit or revoke is about, in
// the chat the request goes to: by our id, or by its WhatsApp id (and its
// sender, for a message of someone else's that is not stored here).
type targetRequest struct {
	ID     *string `json:"id"`
	WAID   *string `json:"wa_id"`
	Sender *string `json:"sender"`
}

// forwardRequest names a stored message to send again: by its id (ours,
// or a received message's chat/sender/wa_id), or by its WhatsApp id and chat.
type forwardRequest struct {
	ID   *string `json:"id"`
	WAID *string `json:"wa_id"`
	Chat *string `json:"chat"`
}

// forwardRef is a checked forwardRequest, the chat normalised.
type forwardRef struct {
	ID   string `json:"id,omitempty"`
	WAID string `json:"wa_id,omitempty"`
	Chat string `json:"chat,omitempty"`
}

// The kinds POST /v1/messages sends.
var sendKinds = []string{msg.KindText, msg.KindImage, msg.KindVideo, msg.KindAudio, msg.KindVoice, msg.KindDocument,
	msg.KindSticker, msg.KindLocation, msg.KindContacts, msg.KindPoll, msg.KindReaction, msg.KindEdit, msg.KindRevoke}

// kindFields are the fields each kind takes besides to and type ("" is
// media without a type, its kind the file's).
var kindFields = map[string][]string{
	msg.KindText:     {"text", "reply_to", "mentions"},
	"":               {"media_id", "text", "reply_to", "mentions"},
	msg.KindImage:    {"media_id", "text", "reply_to", "mentions"},
	msg.KindVideo:    {"media_id", "text", "reply_to", "mentions"},
	msg.KindDocument: {"media_id", "text", "reply_to", "mentions"},
	msg.KindAudio:    {"media_id", "reply_to"},
	msg.KindVoice:    {"media_id", "reply_to"},
	msg.KindSticker:  {"media_id", "reply_to"},
	msg.KindLocation: {"location", "reply_to"},
	msg.KindContacts: {"contacts", "reply_to"},
	msg.KindPoll:     {"poll", "reply_to"},
	msg.KindReaction: {"target", "emoji"},
	msg.KindEdit:     {"target", "text", "mentions"},
	msg.KindRevoke:   {"target"},
}

// fieldKinds says, for a field that belongs to some kinds only, which.
var fieldKinds = map[string]string{
	"media_id": "image, video, audio, voice, document or sticker", "location": "location", "contacts": "contacts",
	"poll": "poll", "emoji": "reaction", "target": "reaction, edit or revoke", "mentions": "text, image, video, document or edit",
	"text": "text, image, video, document (a caption) or edit",
}

// Limits WhatsApp's apps keep to.
const (
	maxPollQuestion = 255 // characters
	maxPollOption   = 100 // characters
	maxPollOptions  = 12
	maxContacts     = 10
	maxPhones       = 10
	maxPlaceText    = 1024 // bytes of a location's name or address
	maxMentions     = 1024 // a group's members at most
)

// sendDraft is a request checked on its own, before what it names is
// looked up: the message to queue (Body.Target naming the target as the
// request did), the message to forward, and the hash that tells an
// Idempotency-Key's retry from another request.
type sendDraft struct {
	store.OutboxMessage
	forward *forwardRef
	hash    string
}

var (
	outboxID = regexp.MustCompile(`^msg_[0-9a-z]{1,80}$`)
	// mentionAt finds "@<digits>" in a text, the digits whole.
	mentionAt = regexp.MustCompile(`@([0-9]+)`)
)

func fe(field, message string) *fieldError { return &fieldError{field, message} }

// present lists the fields the request has, besides to and type.
func (req *sendRequest) present() []string {
	var fs []string
	for _, f := range []struct {
		name string
		set  bool
	}{
		{"text", req.Text != nil}, {"reply_to", req.ReplyTo != nil}, {"media_id", req.MediaID != nil},
		{"mentions", req.Mentions != nil}, {"location", req.Location != nil}, {"contacts", req.Contacts != nil},
		{"poll", req.Poll != nil}, {"emoji", req.Emoji != nil}, {"target", req.Target != nil}, {"forward", req.Forward != nil},
	} {
		if f.set {
			fs = append(fs, f.name)
		}
	}
	return fs
}

// validate checks the request field by field and returns the message it
// asks for; the error names the first field at fault.
func (req *sendRequest) validate() (sendDraft, *fieldError) {
	var d sendDraft
	if req.To == nil {
		return d, fe("to", "to is required")
	}
	chat, err := whatsapp.NormalizeRecipient(*req.To)
	if err != nil {
		return d, fe("to", "to must be "+err.Error())
	}
	d.Chat = chat
	typed := req.Type != nil
	kind := ""
	if typed {
		if !slices.Contains(sendKinds, *req.Type) {
			return d, fe("type", "type must be one of "+strings.Join(sendKinds, ", "))
		}
		kind = *req.Type
	} else if req.MediaID == nil && req.Forward == nil {
		kind = msg.KindText
	}
	if req.Forward != nil {
		return d, req.validateForward(&d, kind)
	}
	for _, f := range req.present() {
		if slices.Contains(kindFields[kind], f) {
			continue
		}
		switch {
		case f == "forward":
			return d, fe(f, "forward takes no other content: to, forward and optionally type")
		case !typed && fieldKinds[f] != "":
			return d, fe(f, f+" is for a message of type "+fieldKinds[f]+": set type")
		case kind == "":
			return d, fe(f, f+" does not apply to media")
		}
		return d, fe(f, f+" does not apply to a message of type "+kind)
	}
	d.Kind = kind
	switch kind {
	case msg.KindText:
		if ferr := checkText(req.Text, "text", true); ferr != nil {
			return d, ferr
		}
	case "", msg.KindImage, msg.KindVideo, msg.KindDocument, msg.KindAudio, msg.KindVoice, msg.KindSticker:
		if req.MediaID == nil {
			return d, fe("media_id", "media_id is required for "+kind+": the id POST /v1/media returned")
		}
		if req.Text != nil {
			if ferr := checkText(req.Text, "text", false); ferr != nil {
				return d, ferr
			}
		}
	case msg.KindLocation:
		loc, ferr := req.Location.check()
		if ferr != nil {
			return d, ferr
		}
		d.Location = loc
	case msg.KindContacts:
		cs, ferr := contactCards(req.Contacts)
		if ferr != nil {
			return d, ferr
		}
		d.Contacts = cs
	case msg.KindPoll:
		p, ferr := req.Poll.check()
		if ferr != nil {
			return d, ferr
		}
		d.Poll, d.Text = p, p.Question
	case msg.KindReaction:
		if req.Emoji == nil {
			return d, fe("emoji", "emoji is required: one emoji, or \"\" to remove the reaction")
		}
		if !isOneEmoji(*req.Emoji) {
			return d, fe("emoji", "emoji must be exactly one emoji (or \"\" to remove the reaction), not "+strconv.Quote(*req.Emoji))
		}
		d.Reaction = *req.Emoji
	case msg.KindEdit:
		if ferr := checkText(req.Text, "text", true); ferr != nil {
			return d, ferr
		}
	}
	if req.Text != nil && d.Text == "" {
		d.Text = *req.Text
	}
	if req.MediaID != nil {
		if !mediaID.MatchString(*req.MediaID) {
			return d, fe("media_id", "media_id must be the id POST /v1/media returned")
		}
		d.MediaID = *req.MediaID
	}
	if req.ReplyTo != nil {
		r := *req.ReplyTo
		if r == "" || len(r) > 128 || strings.ContainsAny(r, " \t\r\n/") {
			return d, fe("reply_to", "reply_to must be the WhatsApp id of a message in the same chat, or our id of one (msg_...)")
		}
		d.ReplyTo = r
	}
	if req.Mentions != nil {
		ms, ferr := checkMentions(*req.Mentions, d.Text)
		if ferr != nil {
			return d, ferr
		}
		d.Mentions = ms
	}
	if kind == msg.KindReaction || kind == msg.KindEdit || kind == msg.KindRevoke {
		if req.Target == nil {
			return d, fe("target", "target is required: {\"id\": our message id} or {\"wa_id\": its WhatsApp id} in the chat to")
		}
		t, ferr := req.Target.check(chat)
		if ferr != nil {
			return d, ferr
		}
		d.Target = t
	}
	d.hash = draftHash(d)
	return d, nil
}

// validateForward checks a forward: to, forward and at most a type, which
// must be the forwarded message's (checked once it is found).
func (req *sendRequest) validateForward(d *sendDraft, kind string) *fieldError {
	for _, f := range req.present() {
		if f != "forward" {
			return fe(f, f+" does not go with forward: a forward sends the stored message's content as it is")
		}
	}
	f := forwardRef{ID: deref(req.Forward.ID), WAID: deref(req.Forward.WAID), Chat: deref(req.Forward.Chat)}
	switch {
	case f.ID != "" && (f.WAID != "" || f.Chat != ""):
		return fe("forward", "forward names a message by id, or by wa_id and chat, not both")
	case f.ID != "":
		if !outboxID.MatchString(f.ID) && strings.Count(f.ID, "/") != 2 || len(f.ID) > 300 || strings.ContainsAny(f.ID, " \t\r\n") {
			return fe("forward.id", "forward.id must be our message id (msg_...) or a received message's id (chat/sender/wa_id)")
		}
	case f.WAID == "":
		return fe("forward", "forward needs id (ours or a received message's) or wa_id and chat")
	default:
		if len(f.WAID) > 128 || strings.ContainsAny(f.WAID, " \t\r\n/") {
			return fe("forward.wa_id", "forward.wa_id must be a WhatsApp message id")
		}
		if f.Chat == "" {
			return fe("forward.chat", "forward.chat is required with forward.wa_id: the chat the message is in")
		}
		c, err := whatsapp.NormalizeRecipient(f.Chat)
		if err != nil {
			return fe("forward.chat", "forward.chat must be "+err.Error())
		}
		f.Chat = c
	}
	d.Kind, d.forward, d.Forwarded = kind, &f, true
	d.hash = draftHash(*d)
	return nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// draftHash covers every field of the request as checked, so an
// Idempotency-Key sent again with anything different is told apart.
func draftHash(d sendDraft) string {
	b, _ := json.Marshal(struct {
		Chat, Kind, Text, ReplyTo, MediaID string
		Body                               msg.Body
		Forward                            *forwardRef
	}{d.Chat, d.Kind, d.Text, d.ReplyTo, d.MediaID, d.Body, d.forward})
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// checkText checks a text (or caption): valid UTF-8, within WhatsApp's
// limit, and not blank where required.
func checkText(s *string, field string, required bool) *fieldError {
	if s == nil || (required && strings.TrimSpace(*s) == "") {
		if !required {
			return nil
		}
		return fe(field, field+" is required and not blank")
	}
	if !utf8.ValidString(*s) {
		return fe(field, field+" must be valid UTF-8")
	}
	if len(*s) > MaxTextBytes {
		return fe(field, field+" is "+strconv.Itoa(len(*s))+" bytes; WhatsApp takes at most "+strconv.Itoa(MaxTextBytes))
	}
	return nil
}

// checkMentions turns the mentioned numbers or JIDs into user JIDs, each
// of which the text must name as @<digits>, as WhatsApp shows a mention.
func checkMentions(list []string, text string) ([]string, *fieldError) {
	if len(list) == 0 {
		return nil, fe("mentions", "mentions, when given, lists at least one number or JID")
	}
	if len(list) > maxMentions {
		return nil, fe("mentions", "mentions lists at most "+strconv.Itoa(maxMentions)+" people")
	}
	named := map[string]bool{}
	for _, m := range mentionAt.FindAllStringSubmatch(text, -1) {
		named[m[1]] = true
	}
	var jids []string
	for _, m := range list {
		jid, err := whatsapp.NormalizeRecipient(m)
		if err != nil || strings.HasSuffix(jid, "@g.us") {
			return nil, fe("mentions", "mentions must be phone numbers (+491701234567) or user JIDs, not "+strconv.Quote(m))
		}
		user, _, _ := strings.Cut(jid, "@")
		if !named[user] {
			return nil, fe("mentions", "mentions: "+strconv.Quote(m)+" is not named in text; write @"+user+" where the mention goes")
		}
		if !slices.Contains(jids, jid) {
			jids = append(jids, jid)
		}
	}
	return jids, nil
}

func (l *locationRequest) check() (*msg.Location, *fieldError) {
	if l == nil {
		return nil, fe("location", "location is required: {\"latitude\": ..., \"longitude\": ...}")
	}
	switch {
	case l.Latitude == nil:
		return nil, fe("location.latitude", "location.latitude is required")
	case *l.Latitude < -90 || *l.Latitude > 90:
		return nil, fe("location.latitude", "location.latitude must be from -90 to 90, not "+strconv.FormatFloat(*l.Latitude, 'g', -1, 64))
	case l.Longitude == nil:
		return nil, fe("location.longitude", "location.longitude is required")
	case *l.Longitude < -180 || *l.Longitude > 180:
		return nil, fe("location.longitude", "location.longitude must be from -180 to 180, not "+strconv.FormatFloat(*l.Longitude, 'g', -1, 64))
	}
	loc := &msg.Location{Latitude: *l.Latitude, Longitude: *l.Longitude, Name: deref(l.Name), Address: deref(l.Address)}
	if len(loc.Name) > maxPlaceText {
		return nil, fe("location.name", "location.name is at most "+strconv.Itoa(maxPlaceText)+" bytes")
	}
	if len(loc.Address) > maxPlaceText {
		return nil, fe("location.address", "location.address is at most "+strconv.Itoa(maxPlaceText)+" bytes")
	}
	return loc, nil
}

func contactCards(list *[]contactRequest) ([]msg.Contact, *fieldError) {
	if list == nil || len(*list) == 0 || len(*list) > maxContacts {
		return nil, fe("contacts", "contacts is 1 to "+strconv.Itoa(maxContacts)+" cards, each {\"name\", \"phones\": [...]} or {\"name\", \"vcard\"}")
	}
	var cs []msg.Contact
	for i, c := range *list {
		at := "contacts[" + strconv.Itoa(i) + "]."
		if c.Name == nil || strings.TrimSpace(*c.Name) == "" {
			return nil, fe(at+"name", at+"name is required and not blank")
		}
		if utf8.RuneCountInString(*c.Name) > 256 {
			return nil, fe(at+"name", at+"name is at most 256 characters")
		}
		card := msg.Contact{Name: *c.Name}
		switch {
		case c.Phones != nil && c.VCard != nil:
			return nil, fe(at+"vcard", "a card is built from phones or given as vcard, not both")
		case c.VCard != nil:
			if !msg.IsVCard(*c.VCard) {
				return nil, fe(at+"vcard", at+"vcard must be a vCard: BEGIN:VCARD ... END:VCARD")
			}
			card.VCard = *c.VCard
		case c.Phones == nil || len(*c.Phones) == 0 || len(*c.Phones) > maxPhones:
			return nil, fe(at+"phones", at+"phones is 1 to "+strconv.Itoa(maxPhones)+" numbers in E.164 form (+491701234567), or give vcard")
		default:
			for _, p := range *c.Phones {
				jid, err := whatsapp.NormalizeRecipient(p)
				if err != nil || strings.Contains(p, "@") {
					return nil, fe(at+"phones", at+"phones must be numbers in E.164 form (+491701234567), not "+strconv.Quote(p))
				}
				card.Phones = append(card.Phones, "+"+strings.TrimSuffix(jid, "@s.whatsapp.net"))
			}
			card.VCard = msg.VCard(card.Name, card.Phones)
		}
		cs = append(cs, card)
	}
	return cs, nil
}

func (p *pollRequest) check() (*msg.Poll, *fieldError) {
	if p == nil {
		return nil, fe("poll", "poll is required: {\"question\", \"options\": [...], \"selectable\"}")
	}
	if p.Question == nil || strings.TrimSpace(*p.Question) == "" {
		return nil, fe("poll.question", "poll.question is required and not blank")
	}
	if utf8.RuneCountInString(*p.Question) > maxPollQuestion {
		return nil, fe("poll.question", "poll.question is at most "+strconv.Itoa(maxPollQuestion)+" characters")
	}
	if p.Options == nil || len(*p.Options) < 2 || len(*p.Options) > maxPollOptions {
		n := 0
		if p.Options != nil {
			n = len(*p.Options)
		}
		return nil, fe("poll.options", "poll.options is 2 to "+strconv.Itoa(maxPollOptions)+" options, not "+strconv.Itoa(n))
	}
	seen := map[string]bool{}
	for _, o := range *p.Options {
		key := strings.ToLower(strings.TrimSpace(o))
		switch {
		case key == "":
			return nil, fe("poll.options", "poll.options must not be blank")
		case utf8.RuneCountInString(o) > maxPollOption:
			return nil, fe("poll.options", "each of poll.options is at most "+strconv.Itoa(maxPollOption)+" characters")
		case seen[key]:
			return nil, fe("poll.options", "poll.options has "+strconv.Quote(o)+" twice (options are told apart without case)")
		}
		seen[key] = true
	}
	poll := &msg.Poll{Question: *p.Question, Options: *p.Options}
	if p.Selectable != nil {
		if *p.Selectable < 0 || *p.Selectable > len(poll.Options) {
			return nil, fe("poll.selectable", "poll.selectable is how many options one may choose: 0 (any number) to "+strconv.Itoa(len(poll.Options)))
		}
		poll.Selectable = *p.Selectable
	}
	return poll, nil
}

func (t *targetRequest) check(chat string) (*msg.Target, *fieldError) {
	switch {
	case (t.ID == nil) == (t.WAID == nil):
		return nil, fe("target", "target names one message: {\"id\": our message id} or {\"wa_id\": its WhatsApp id}")
	case t.ID != nil:
		if !outboxID.MatchString(*t.ID) {
			return nil, fe("target.id", "target.id must be our message id (msg_...); name a received message by wa_id")
		}
		if t.Sender != nil {
			return nil, fe("target.sender", "target.sender goes with wa_id; our messages are ours")
		}
		return &msg.Target{ID: *t.ID, Chat: chat, FromMe: true}, nil
	}
	if w := *t.WAID; w == "" || len(w) > 128 || strings.ContainsAny(w, " \t\r\n/") {
		return nil, fe("target.wa_id", "target.wa_id must be a WhatsApp message id")
	}
	tg := &msg.Target{WAID: *t.WAID, Chat: chat}
	if t.Sender != nil {
		s, err := whatsapp.NormalizeRecipient(*t.Sender)
		if err != nil || strings.HasSuffix(s, "@g.us") {
			return nil, fe("target.sender", "target.sender must be the sender's number or user JID")
		}
		tg.Sender = s
	}
	return tg, nil
}
