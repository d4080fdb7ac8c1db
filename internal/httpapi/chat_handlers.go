package httpapi

import (
	"cmp"
	"context"
	"encoding/hex"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/julienschmidt/httprouter"

	"app/internal/msg"
	"app/internal/store"
	"app/internal/whatsapp"
)

// ChatBackend is what the chat routes need from the database.
type ChatBackend interface {
	ChatsPage(ctx context.Context, beforeNS int64, beforeJID string, usersOnly bool, limit int) ([]store.Chat, error)
	IncomingPage(ctx context.Context, chat string, beforeNS int64, beforeKey string, limit int) ([]store.IncomingMessage, error)
	OutboxPage(ctx context.Context, chat, status string, beforeNS int64, beforeID string, limit int) ([]store.OutboxMessage, error)
	Blocklist(ctx context.Context) (store.Blocklist, error)
	NumberChecks(ctx context.Context, numbers []string) ([]store.NumberCheck, error)
	Profiles(ctx context.Context, jids []string) ([]store.Profile, error)
	GroupBackend // group_handlers.go
}

func (s *Server) chatRoutes(r routes) {
	r.handle("GET", "/v1/chats", s.auth(store.ScopeMessagesRead, s.listChats(false)))
	r.handle("GET", "/v1/contacts", s.auth(store.ScopeMessagesRead, s.listChats(true)))
	r.handle("GET", "/v1/chats/:jid/messages", s.auth(store.ScopeMessagesRead, s.chatMessages))
	if s.Sessions != nil {
		s.chatActionRoutes(r) // commands for the primary
		// Contact and chat changes (issue 19).
		s.contactActionRoutes(r)
		s.numberRoutes(r)  // number_handlers.go
		s.profileRoutes(r) // profile_handlers.go
		s.groupRoutes(r)   // group_handlers.go
	}
}

type chatView struct {
	JID            string    `json:"jid"`
	Kind           string    `json:"kind"` // user, group, broadcast or newsletter
	Phone          string    `json:"phone,omitempty"`
	Name           string    `json:"name,omitempty"`
	PN             string    `json:"pn,omitempty"`  // a one-to-one chat's person by number, where known
	LID            string    `json:"lid,omitempty"` // and by LID, where known
	LastMessageAt  time.Time `json:"last_message_at"`
	LastIncomingAt time.Time `json:"last_incoming_at,omitzero"`
	FirstOutgoing  time.Time `json:"first_outgoing_at,omitzero"`
	chatSettings
}

// phoneOf is the phone number ("+" and digits) of a phone-number JID;
// "" for any other JID.
func phoneOf(jid string) string {
	if n, ok := strings.CutSuffix(jid, "@s.whatsapp.net"); ok && n != "" {
		return "+" + n
	}
	return ""
}

func chatOf(c store.Chat) chatView {
	v := chatView{JID: c.JID, Name: cmp.Or(c.Name, c.PushName), PN: c.PN, LID: c.LID, LastMessageAt: c.LastMessageAt, LastIncomingAt: c.LastIncomingAt, FirstOutgoing: c.FirstOutgoing}
	switch _, server, _ := strings.Cut(c.JID, "@"); server {
	case "s.whatsapp.net":
		v.Kind, v.Phone = "user", phoneOf(c.JID)
	case "lid": // a user known by their LID, whose number WhatsApp hides
		v.Kind, v.Phone = "user", phoneOf(c.PN) // the number, once learned
	case "g.us":
		v.Kind = "group"
	case "newsletter":
		v.Kind = "newsletter"
	default: // status@broadcast and broadcast lists
		v.Kind = "broadcast"
	}
	return v
}

// pageParams reads limit and before, the parameters every list shares;
// on failure it has answered.
func pageParams(w http.ResponseWriter, r *http.Request, allowed ...string) (url.Values, int, int64, string, bool) {
	q := r.URL.Query()
	for k := range q {
		if k != "limit" && k != "before" && !slices.Contains(allowed, k) {
			writeError(w, r, http.StatusBadRequest, "invalid", "unknown query parameter "+strconv.Quote(k), k)
			return nil, 0, 0, "", false
		}
	}
	limit := 50
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > 200 {
			writeError(w, r, http.StatusBadRequest, "invalid", "limit must be an integer from 1 to 200", "limit")
			return nil, 0, 0, "", false
		}
		limit = n
	}
	var ns int64
	var id string
	if b := q.Get("before"); b != "" {
		var ok bool
		if ns, id, ok = decodeCursor(b); !ok {
			writeError(w, r, http.StatusBadRequest, "invalid", "before must be a cursor from a previous page's next", "before")
			return nil, 0, 0, "", false
		}
	}
	return q, limit, ns, id, true
}

func (s *Server) listChats(usersOnly bool) httprouter.Handle {
	return func(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
		_, limit, ns, jid, ok := pageParams(w, r)
		if !ok {
			return
		}
		ctx, cancel := dbContext(r)
		defer cancel()
		chats, err := s.Chats.ChatsPage(ctx, ns, jid, usersOnly, limit)
		if err != nil {
			s.storeFailed(w, r, err)
			return
		}
		blocked, ok := s.blockedSet(ctx, w, r)
		if !ok {
			return
		}
		list := make([]chatView, 0, len(chats))
		for _, c := range chats {
			list = append(list, withSettings(chatOf(c), c, blocked, time.Now()))
		}
		var next string
		if len(chats) == limit {
			last := chats[len(chats)-1]
			next = encodeCursor(last.LastMessageAt.UnixNano(), last.JID)
		}
		// The list is named after the route: /v1/contacts answers contacts.
		if usersOnly {
			writeJSON(w, http.StatusOK, struct {
				Contacts []chatView `json:"contacts"`
				Next     string     `json:"next,omitempty"`
			}{list, next})
			return
		}
		writeJSON(w, http.StatusOK, struct {
			Chats []chatView `json:"chats"`
			Next  string     `json:"next,omitempty"`
		}{list, next})
	}
}

// chatItem is one message of a chat's history, either direction.
type chatItem struct {
	Direction string `json:"direction"` // in or out
	ID        string `json:"id"`        // outbox id (out) or chat/sender/wa_id (in)
	WAID      string `json:"wa_id,omitempty"`
	Sender    string `json:"sender,omitempty"`
	FromMe    bool   `json:"from_me,omitempty"` // in: written by our account on another device
	PushName  string `json:"push_name,omitempty"`
	Kind      string `json:"kind"` // always, where Body's is left out when empty
	Text      string `json:"text,omitempty"`
	ReplyTo   string `json:"reply_to,omitempty"`
	// Body is the kind's parts (location, contacts, poll, vote, reaction,
	// target, mentions); Addr the chat and sender by number and LID;
	// Changes the edits and the revoke.
	msg.Body
	msg.Addr
	msg.Changes
	Media  *attachmentView `json:"media,omitempty"`
	Status string          `json:"status,omitempty"`
	At     time.Time       `json:"at"`
	ns     int64
}

// attachmentView is a received attachment as the API shows it, in the names
// the message.incoming event uses.
type attachmentView struct {
	MimeType string `json:"mime_type"`
	Size     int64  `json:"size"`
	FileName string `json:"file_name,omitempty"`
	Caption  string `json:"caption,omitempty"`
	SHA256   string `json:"sha256,omitempty"`
	FileID   string `json:"file_id,omitempty"`
	Skipped  string `json:"skipped,omitempty"`
	// Pending: the file was gone from WhatsApp's servers and is asked of
	// the sender's phone (message.updated tells when it came).
	Pending bool `json:"pending,omitempty"`
}

func attachmentOf(m *store.MediaRef) *attachmentView {
	if m == nil {
		return nil
	}
	return &attachmentView{MimeType: m.MimeType, Size: m.Size, FileName: m.FileName, Caption: m.Caption,
		SHA256: hex.EncodeToString(m.SHA256), FileID: m.FileID, Skipped: m.Skipped, Pending: m.Pending}
}

// chatMessages is a chat's history, both directions, newest first: the
// outbox by when a message was queued, incoming by when it was sent.
func (s *Server) chatMessages(w http.ResponseWriter, r *http.Request, ps httprouter.Params) {
	jid, err := whatsapp.NormalizeRecipient(ps.ByName("jid"))
	if err != nil {
		writeError(w, r, http.StatusBadRequest, "invalid", "jid must be "+err.Error(), "jid")
		return
	}
	_, limit, ns, id, ok := pageParams(w, r)
	if !ok {
		return
	}
	ctx, cancel := dbContext(r)
	defer cancel()
	// Both directions are read strictly before the cursor, one more than a
	// page each: whatever the merge keeps, the page is full when more exist.
	in, err := s.Chats.IncomingPage(ctx, jid, ns, id, limit+1)
	if err != nil {
		s.storeFailed(w, r, err)
		return
	}
	out, err := s.Chats.OutboxPage(ctx, jid, "", ns, id, limit+1)
	if err != nil {
		s.storeFailed(w, r, err)
		return
	}
	var items []chatItem
	for _, m := range in {
		items = append(items, incomingItem(m))
	}
	for _, m := range out {
		items = append(items, chatItem{Direction: "out", ID: m.ID, WAID: m.WAID, Kind: m.MessageKind(), Text: m.Text, ReplyTo: m.ReplyTo,
			Body: m.Body, Addr: m.Addr, Changes: m.Changes, Status: m.Status, At: m.QueuedAt, ns: m.QueuedNS})
	}
	// Newest first, in the order both store cursors use.
	slices.SortFunc(items, func(a, b chatItem) int {
		return cmp.Or(cmp.Compare(b.ns, a.ns), strings.Compare(b.ID, a.ID))
	})
	page := struct {
		Messages []chatItem `json:"messages"`
		Next     string     `json:"next,omitempty"`
	}{Messages: []chatItem{}}
	if len(items) > limit {
		items = items[:limit]
		last := items[len(items)-1]
		page.Next = encodeCursor(last.ns, last.ID)
	}
	page.Messages = append(page.Messages, items...)
	writeJSON(w, http.StatusOK, page)
}
