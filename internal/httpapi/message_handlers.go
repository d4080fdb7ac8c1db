package httpapi

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/julienschmidt/httprouter"

	"app/internal/msg"
	"app/internal/store"
	"app/internal/whatsapp"
)

// MessageBackend is what the message routes need from the database.
type MessageBackend interface {
	EnqueueMessage(ctx context.Context, m *store.OutboxMessage) error
	OutboxMessage(ctx context.Context, id string) (store.OutboxMessage, error)
	OutboxPage(ctx context.Context, chat, status string, beforeNS int64, beforeID string, limit int) ([]store.OutboxMessage, error)
	MediaInfo(ctx context.Context, id string) (store.MediaInfo, error)
	IncomingPage(ctx context.Context, chat string, beforeNS int64, beforeKey string, limit int) ([]store.IncomingMessage, error)
	// What a message may name: the message it quotes, reacts to, edits,
	// revokes or forwards, and a voice note's file.
	OutboxByWAID(ctx context.Context, waID string) (store.OutboxMessage, error)
	IncomingMessage(ctx context.Context, key string) (store.IncomingMessage, error)
	IncomingByWAID(ctx context.Context, chat, waID string) (store.IncomingMessage, error)
	OpenMedia(ctx context.Context, id string) (store.MediaInfo, io.ReadCloser, error)
	RequestCancel(ctx context.Context, id string) error
	CancelRequest(ctx context.Context, id string) (store.CancelRequest, error)
}

// MaxTextBytes is the longest text WhatsApp takes in one message.
const MaxTextBytes = 65536

// cancelWait is how long DELETE waits for the primary's decision.
const cancelWait = 10 * time.Second

func (s *Server) messageRoutes(r routes) {
	r.handle("POST", "/v1/messages", s.auth(store.ScopeMessagesWrite, s.createMessage))
	r.handle("GET", "/v1/messages", s.auth(store.ScopeMessagesRead, s.listMessages))
	r.handle("GET", "/v1/messages/:id", s.auth(store.ScopeMessagesRead, s.getMessage))
	r.handle("DELETE", "/v1/messages/:id", s.auth(store.ScopeMessagesWrite, s.cancelMessage))
}

// messageView is a message of the outbox as the API shows it: its kind
// (always set, also for a record older than the kinds) and the parts of
// that kind (msg.Body), its edits and revoke since (msg.Changes).
type messageView struct {
	ID        string `json:"id"`
	To        string `json:"to"`
	Kind      string `json:"kind"`
	Text      string `json:"text"`
	ReplyTo   string `json:"reply_to,omitempty"`
	MediaID   string `json:"media_id,omitempty"`
	MediaType string `json:"media_type,omitempty"`
	ForwardOf string `json:"forward_of,omitempty"`
	msg.Body
	msg.Changes
	Status      string         `json:"status"`
	WAID        string         `json:"wa_id,omitempty"`
	Attempts    int            `json:"attempts"`
	Waiting     string         `json:"waiting,omitempty"`
	Error       *store.Failure `json:"error,omitempty"`
	QueuedAt    time.Time      `json:"queued_at"`
	SentAt      time.Time      `json:"sent_at,omitzero"`
	DeliveredAt time.Time      `json:"delivered_at,omitzero"`
	ReadAt      time.Time      `json:"read_at,omitzero"`
	FinishedAt  time.Time      `json:"finished_at,omitzero"`

	// Addr is the recipient by number and LID, where known (from its send).
	msg.Addr
}

func viewOf(m store.OutboxMessage) messageView {
	return messageView{ID: m.ID, To: m.Chat, Kind: m.MessageKind(), Text: m.Text, ReplyTo: m.ReplyTo, MediaID: m.MediaID, MediaType: m.MediaType,
		ForwardOf: m.ForwardOf, Body: m.Body, Changes: m.Changes, Status: m.Status, WAID: m.WAID,
		Attempts: m.Attempts, Waiting: m.Waiting, Error: m.Error, QueuedAt: m.QueuedAt, SentAt: m.SentAt,
		DeliveredAt: m.DeliveredAt, ReadAt: m.ReadAt, FinishedAt: m.FinishedAt, Addr: m.Addr}
}

// MessageRequest is a schedule's message: a text, or media with a caption
// (POST /v1/messages takes every kind: sendRequest).
type MessageRequest struct {
	To      *string `json:"to"`
	Text    *string `json:"text"`
	ReplyTo *string `json:"reply_to"`
	MediaID *string `json:"media_id"`
}

// fieldError is a request that is wrong in one field.
type fieldError struct{ field, msg string }

func (e *fieldError) Error() string { return e.field + ": " + e.msg }

// Validate checks the request and returns the outbox message it asks for.
func (req MessageRequest) Validate() (store.OutboxMessage, *fieldError) {
	var m store.OutboxMessage
	if req.To == nil {
		return m, &fieldError{"to", "to is required"}
	}
	chat, err := whatsapp.NormalizeRecipient(*req.To)
	if err != nil {
		return m, &fieldError{"to", "to must be " + err.Error()}
	}
	if req.MediaID != nil {
		if !mediaID.MatchString(*req.MediaID) {
			return m, &fieldError{"media_id", "media_id must be the id POST /v1/media returned"}
		}
		m.MediaID = *req.MediaID
		if req.Text == nil {
			req.Text = new(string) // no caption
		}
	} else if req.Text == nil || strings.TrimSpace(*req.Text) == "" {
		return m, &fieldError{"text", "text is required and not blank (or send media_id)"}
	}
	if !utf8.ValidString(*req.Text) {
		return m, &fieldError{"text", "text must be valid UTF-8"}
	}
	if len(*req.Text) > MaxTextBytes {
		return m, &fieldError{"text", "text is " + strconv.Itoa(len(*req.Text)) + " bytes; WhatsApp takes at most " + strconv.Itoa(MaxTextBytes)}
	}
	m.Chat, m.Text = chat, *req.Text
	if req.ReplyTo != nil {
		if r := *req.ReplyTo; r == "" || len(r) > 128 || strings.ContainsAny(r, " \t\r\n") {
			return m, &fieldError{"reply_to", "reply_to must be the WhatsApp id of a message in the same chat"}
		}
		m.ReplyTo = *req.ReplyTo
	}
	return m, nil
}

var mediaID = regexp.MustCompile(`^[0-9a-f]{24}$`)

// DecodeMessageRequest decodes and checks a POST /v1/messages body, each
// field on its own (what it names in the store is looked up by resolve).
// It never panics, whatever the bytes (FuzzDecodeMessageRequest).
func DecodeMessageRequest(body []byte) (sendDraft, *fieldError) {
	var req sendRequest
	if fe := decodeObject(body, &req); fe != nil {
		return sendDraft{}, fe
	}
	return req.validate()
}

// decodeObject decodes one JSON object strictly: no unknown fields, no
// null, no invalid UTF-8, nothing after it. The error names the field at
// fault when there is one.
func decodeObject(body []byte, v any) *fieldError {
	if fe := checkValues(body); fe != nil {
		return fe
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil && dec.Decode(new(json.RawMessage)) != io.EOF {
		return &fieldError{"", "the body must be one JSON object"}
	}
	if err == nil {
		return nil
	}
	return jsonFieldError(err)
}

// decodeJSON reads a request's JSON object body: the right content type,
// within the size limit, decoded by decodeObject. On failure it has
// answered (415, 413 or 400 naming the field).
func decodeJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	if !jsonContent(w, r) {
		return false
	}
	body, ok := readBody(w, r)
	if !ok {
		return false
	}
	if fe := decodeObject(body, v); fe != nil {
		writeError(w, r, http.StatusBadRequest, "invalid", fe.msg, fe.field)
		return false
	}
	return true
}

func jsonFieldError(err error) *fieldError {
	var ute *json.UnmarshalTypeError
	switch {
	case errors.As(err, &ute) && ute.Field == "":
		return &fieldError{"", "the body must be a JSON object"}
	case errors.As(err, &ute) && ute.Type == timeType:
		return &fieldError{ute.Field, ute.Field + " must be a time in RFC 3339, for example 2026-12-24T18:00:00+01:00, not " + ute.Value}
	case errors.As(err, &ute):
		return &fieldError{ute.Field, ute.Field + " must be a " + jsonKind(ute.Type.String())}
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		f := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return &fieldError{f, "unknown field " + strconv.Quote(f)}
	}
	return &fieldError{"", "the body is not a JSON object: " + err.Error()}
}

func jsonKind(goType string) string {
	switch strings.TrimPrefix(goType, "*") {
	case "string":
		return "string"
	case "bool":
		return "boolean"
	case "int", "int64", "float64":
		return "number"
	}
	return "JSON object"
}

func (s *Server) createMessage(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	if !jsonContent(w, r) {
		return
	}
	body, ok := readBody(w, r)
	if !ok {
		return
	}
	d, ferr := DecodeMessageRequest(body)
	if ferr != nil {
		writeError(w, r, http.StatusBadRequest, "invalid", ferr.msg, ferr.field)
		return
	}
	idem := r.Header.Get("Idempotency-Key")
	if len(idem) > 255 {
		writeError(w, r, http.StatusBadRequest, "invalid", "Idempotency-Key is at most 255 characters", "Idempotency-Key")
		return
	}
	k, _ := KeyOf(r)
	ctx, cancel := dbContext(r)
	defer cancel()
	if rf, err := s.resolve(ctx, &d); err != nil {
		s.storeFailed(w, r, err)
		return
	} else if rf != nil {
		// What the request names may have changed since its first try
		// queued it (an edit's window passed): a retry gets that message.
		if idem != "" {
			if prev, err := s.Messages.OutboxMessage(ctx, store.IdempotentMessageID(k.ID, idem)); err == nil && prev.RequestHash == d.hash {
				w.Header().Set("Location", "/v1/messages/"+prev.ID)
				writeJSON(w, http.StatusAccepted, viewOf(prev))
				return
			}
		}
		writeError(w, r, rf.status, rf.code, rf.msg, rf.field)
		return
	}
	m := d.OutboxMessage
	m.KeyID = k.ID
	if idem != "" {
		m.ID, m.RequestHash = store.IdempotentMessageID(k.ID, idem), d.hash
	}
	ctx, again, err := s.insertSettled(ctx, r, func(ctx context.Context) error { return s.Messages.EnqueueMessage(ctx, &m) })
	if errors.Is(err, store.ErrExists) && (idem != "" || again) {
		// A retry, or this request's first try: the message queued.
		prev, perr := s.Messages.OutboxMessage(ctx, m.ID)
		switch {
		case perr != nil && idem == "":
			prev = m // this request's own, stored
		case perr != nil:
			s.storeFailed(w, r, perr)
			return
		}
		if prev.RequestHash != m.RequestHash {
			writeError(w, r, http.StatusUnprocessableEntity, "idempotency_key_reused",
				"this Idempotency-Key was used for a different message", "Idempotency-Key")
			return
		}
		w.Header().Set("Location", "/v1/messages/"+prev.ID)
		writeJSON(w, http.StatusAccepted, viewOf(prev))
		return
	}
	if err != nil {
		s.writeFailed(w, r, err, m.ID, "/v1/messages/"+m.ID)
		return
	}
	w.Header().Set("Location", "/v1/messages/"+m.ID)
	writeJSON(w, http.StatusAccepted, viewOf(m))
}

// jsonContent answers 415 unless the body is declared as JSON.
func jsonContent(w http.ResponseWriter, r *http.Request) bool {
	ct := r.Header.Get("Content-Type")
	if mt, _, _ := strings.Cut(ct, ";"); strings.TrimSpace(strings.ToLower(mt)) != "application/json" {
		writeError(w, r, http.StatusUnsupportedMediaType, "unsupported_media_type", "send the body as application/json", "")
		return false
	}
	return true
}

// readBody reads the whole body (the middleware caps it); over the limit
// it answers 413.
func readBody(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	b, err := io.ReadAll(r.Body)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			writeError(w, r, http.StatusRequestEntityTooLarge, "too_large", "the body is over "+strconv.FormatInt(mbe.Limit, 10)+" bytes", "")
		} else {
			writeError(w, r, http.StatusBadRequest, "invalid", "cannot read the body: "+err.Error(), "")
		}
		return nil, false
	}
	return b, true
}

func (s *Server) getMessage(w http.ResponseWriter, r *http.Request, ps httprouter.Params) {
	ctx, cancel := dbContext(r)
	defer cancel()
	m, err := s.Messages.OutboxMessage(ctx, ps.ByName("id"))
	if errors.Is(err, store.ErrNotFound) {
		writeError(w, r, http.StatusNotFound, "not_found", "no message "+strconv.Quote(ps.ByName("id")), "id")
		return
	}
	if err != nil {
		s.storeFailed(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, viewOf(m))
}

// cancelMessage asks the primary to cancel a queued message and waits for
// its decision: 200 cancelled, 409 when it already went out.
func (s *Server) cancelMessage(w http.ResponseWriter, r *http.Request, ps httprouter.Params) {
	id := ps.ByName("id")
	ctx, cancel := context.WithTimeout(r.Context(), cancelWait)
	defer cancel()
	m, err := s.Messages.OutboxMessage(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		writeError(w, r, http.StatusNotFound, "not_found", "no message "+strconv.Quote(id), "id")
		return
	}
	if err != nil {
		s.storeFailed(w, r, err)
		return
	}
	if m.Status != store.StatusQueued {
		writeError(w, r, http.StatusConflict, "too_late", "the message is "+m.Status+"; only a queued message can be cancelled", "")
		return
	}
	if _, _, err := s.insertSettled(ctx, r, func(ctx context.Context) error { return s.Messages.RequestCancel(ctx, id) }); err != nil {
		s.writeFailed(w, r, err, id, "/v1/messages/"+id)
		return
	}
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			writeJSON(w, http.StatusAccepted, map[string]string{"id": id, "cancel": "requested",
				"message": "the primary has not decided yet; GET the message to see its status"})
			return
		case <-tick.C:
		}
		c, err := s.Messages.CancelRequest(ctx, id)
		if err != nil || c.Outcome == "" {
			continue
		}
		if c.Outcome != "cancelled" {
			writeError(w, r, http.StatusConflict, "too_late", "the message is "+c.Status+"; only a queued message can be cancelled", "")
			return
		}
		m, err := s.Messages.OutboxMessage(ctx, id)
		if err != nil {
			s.storeFailed(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, viewOf(m))
		return
	}
}

type messagePage struct {
	Messages []messageView `json:"messages"`
	Next     string        `json:"next,omitempty"` // cursor of the next (older) page
}

// listMessages pages through messages newest first. The cursor is the
// last message's position, so messages queued meanwhile (newer) never
// shift a page: no gaps, no repeats.
func (s *Server) listMessages(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	q := r.URL.Query()
	for k := range q {
		switch k {
		case "chat", "status", "before", "limit", "direction":
		default:
			writeError(w, r, http.StatusBadRequest, "invalid", "unknown query parameter "+strconv.Quote(k), k)
			return
		}
	}
	var chat string
	if c := q.Get("chat"); c != "" {
		var err error
		if chat, err = whatsapp.NormalizeRecipient(c); err != nil {
			writeError(w, r, http.StatusBadRequest, "invalid", "chat must be "+err.Error(), "chat")
			return
		}
	}
	status := q.Get("status")
	if status != "" && store.StatusRank(status) == 5 && status != store.StatusFailed && status != store.StatusCancelled {
		writeError(w, r, http.StatusBadRequest, "invalid", "status must be one of queued, sending, sent, delivered, read, failed, cancelled", "status")
		return
	}
	direction := q.Get("direction")
	switch direction {
	case "", "outgoing":
	case "incoming":
		if status != "" {
			writeError(w, r, http.StatusBadRequest, "invalid", "status applies to outgoing messages only", "status")
			return
		}
	default:
		writeError(w, r, http.StatusBadRequest, "invalid", "direction must be outgoing (the default) or incoming", "direction")
		return
	}
	limit := 50
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > 200 {
			writeError(w, r, http.StatusBadRequest, "invalid", "limit must be an integer from 1 to 200", "limit")
			return
		}
		limit = n
	}
	var beforeNS int64
	var beforeID string
	if b := q.Get("before"); b != "" {
		var ok bool
		if beforeNS, beforeID, ok = decodeCursor(b); !ok {
			writeError(w, r, http.StatusBadRequest, "invalid", "before must be a cursor from a previous page's next", "before")
			return
		}
	}
	ctx, cancel := dbContext(r)
	defer cancel()
	if direction == "incoming" {
		s.listIncoming(ctx, w, r, chat, beforeNS, beforeID, limit)
		return
	}
	ms, err := s.Messages.OutboxPage(ctx, chat, status, beforeNS, beforeID, limit)
	if err != nil {
		s.storeFailed(w, r, err)
		return
	}
	page := messagePage{Messages: make([]messageView, 0, len(ms))}
	for _, m := range ms {
		page.Messages = append(page.Messages, viewOf(m))
	}
	if len(ms) == limit {
		last := ms[len(ms)-1]
		page.Next = encodeCursor(last.QueuedNS, last.ID)
	}
	writeJSON(w, http.StatusOK, page)
}

func encodeCursor(ns int64, id string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(ns, 10) + ":" + id))
}

func decodeCursor(c string) (int64, string, bool) {
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return 0, "", false
	}
	nsText, id, ok := strings.Cut(string(b), ":")
	ns, err := strconv.ParseInt(nsText, 10, 64)
	if !ok || err != nil || ns <= 0 || id == "" || len(id) > 256 {
		return 0, "", false
	}
	return ns, id, true
}

// listIncoming pages through received messages, newest first (by when
// they were sent), with the same cursor as the outgoing list.
func (s *Server) listIncoming(ctx context.Context, w http.ResponseWriter, r *http.Request, chat string, beforeNS int64, beforeID string, limit int) {
	ms, err := s.Messages.IncomingPage(ctx, chat, beforeNS, beforeID, limit+1)
	if err != nil {
		s.storeFailed(w, r, err)
		return
	}
	page := struct {
		Messages []chatItem `json:"messages"`
		Next     string     `json:"next,omitempty"`
	}{Messages: []chatItem{}}
	for i, m := range ms {
		if i == limit {
			last := page.Messages[len(page.Messages)-1]
			page.Next = encodeCursor(last.ns, last.ID)
			break
		}
		page.Messages = append(page.Messages, incomingItem(m))
	}
	writeJSON(w, http.StatusOK, page)
}
