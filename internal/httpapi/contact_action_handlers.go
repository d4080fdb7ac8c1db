package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/julienschmidt/httprouter"

	"app/internal/store"
	"app/internal/whatsapp"
)

// Contact and chat changes (issue 19): block and unblock a user; archive,
// pin and mute a chat. They go to the primary as commands with a deadline,
// as the chat actions (503 when no primary is connected, 504 past the
// deadline, 502 when WhatsApp refuses); the primary keeps the outcome in
// the store, where GET /v1/blocklist, /v1/chats and /v1/contacts read it.

// contactWait is the deadline of a contact or chat change.
const contactWait = 15 * time.Second

func (s *Server) contactActionRoutes(r routes) {
	r.handle("POST", "/v1/blocklist/:jid", s.auth(store.ScopeContactsWrite, s.block(true)))
	r.handle("DELETE", "/v1/blocklist/:jid", s.auth(store.ScopeContactsWrite, s.block(false)))
	r.handle("GET", "/v1/blocklist", s.auth(store.ScopeMessagesRead, s.blocklist))
	r.handle("POST", "/v1/chats/:jid/archive", s.auth(store.ScopeContactsWrite, s.chatSetting(whatsapp.ChatArchive)))
	r.handle("POST", "/v1/chats/:jid/pin", s.auth(store.ScopeContactsWrite, s.chatSetting(whatsapp.ChatPin)))
	r.handle("POST", "/v1/chats/:jid/mute", s.auth(store.ScopeContactsWrite, s.chatSetting(whatsapp.ChatMute)))
}

func (s *Server) block(block bool) httprouter.Handle {
	return func(w http.ResponseWriter, r *http.Request, ps httprouter.Params) {
		jid, ok := chatParam(w, r, ps)
		if !ok {
			return
		}
		if !store.IsUserChat(jid) {
			writeError(w, r, http.StatusBadRequest, "invalid", "jid must be a user (a phone number, a user JID or a LID): a group cannot be blocked", "jid")
			return
		}
		if _, ok := s.primaryCommand(w, r, "block", map[string]string{"jid": jid, "block": strconv.FormatBool(block)}, contactWait); !ok {
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"ok": true, "jid": jid, "blocked": block})
	}
}

// blocklist answers the blocklist the primary last fetched or changed;
// when it never did, the primary is asked once.
func (s *Server) blocklist(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	ctx, cancel := dbContext(r)
	b, err := s.Chats.Blocklist(ctx)
	cancel()
	if errors.Is(err, store.ErrNotFound) {
		if _, ok := s.primaryCommand(w, r, "blocklist", nil, contactWait); !ok {
			return
		}
		ctx, cancel := dbContext(r)
		b, err = s.Chats.Blocklist(ctx)
		cancel()
	}
	if err != nil {
		s.storeFailed(w, r, err)
		return
	}
	type entry struct {
		JID   string `json:"jid"`
		Phone string `json:"phone,omitempty"`
	}
	list := make([]entry, 0, len(b.JIDs))
	for _, j := range b.JIDs {
		list = append(list, entry{JID: j, Phone: phoneOf(j)})
	}
	writeJSON(w, http.StatusOK, map[string]any{"blocklist": list, "updated_at": b.UpdatedAt})
}

// chatSetting archives, pins or mutes a chat, or undoes it. The bodies:
// {"archived": bool}, {"pinned": bool}, {"muted": bool, "until": an RFC
// 3339 time, only with muted true; none: without end}.
func (s *Server) chatSetting(kind whatsapp.ChatSettingKind) httprouter.Handle {
	field := map[whatsapp.ChatSettingKind]string{whatsapp.ChatArchive: "archived", whatsapp.ChatPin: "pinned", whatsapp.ChatMute: "muted"}[kind]
	return func(w http.ResponseWriter, r *http.Request, ps httprouter.Params) {
		jid, ok := chatParam(w, r, ps)
		if !ok {
			return
		}
		var req map[string]json.RawMessage
		if !decodeJSON(w, r, &req) {
			return
		}
		for k := range req {
			if k != field && (kind != whatsapp.ChatMute || k != "until") {
				writeError(w, r, http.StatusBadRequest, "invalid", "unknown field "+strconv.Quote(k)+"; the body is "+settingBody(kind), k)
				return
			}
		}
		var on bool
		if raw, ok := req[field]; !ok || json.Unmarshal(raw, &on) != nil {
			writeError(w, r, http.StatusBadRequest, "invalid", field+" must be true or false; the body is "+settingBody(kind), field)
			return
		}
		args := map[string]string{"chat": jid, "setting": string(kind), "on": strconv.FormatBool(on)}
		var until time.Time
		if raw, ok := req["until"]; ok && string(raw) != "null" {
			var u string
			if json.Unmarshal(raw, &u) != nil {
				writeError(w, r, http.StatusBadRequest, "invalid", "until must be an RFC 3339 time (2026-12-24T18:00:00Z), or left out for a mute without end", "until")
				return
			}
			t, err := time.Parse(time.RFC3339, u)
			switch {
			case err != nil:
				writeError(w, r, http.StatusBadRequest, "invalid", "until must be an RFC 3339 time (2026-12-24T18:00:00Z), or left out for a mute without end", "until")
				return
			case !on:
				writeError(w, r, http.StatusBadRequest, "invalid", "until is only for muted true", "until")
				return
			case !t.After(time.Now()):
				writeError(w, r, http.StatusBadRequest, "invalid", "until must be in the future", "until")
				return
			}
			until = t.UTC()
			args["until"] = until.Format(time.RFC3339Nano)
		}
		if _, ok := s.primaryCommand(w, r, "chat_setting", args, contactWait); !ok {
			return
		}
		res := map[string]any{"ok": true, "jid": jid, field: on}
		if !until.IsZero() {
			res["until"] = until
		}
		writeJSON(w, http.StatusOK, res)
	}
}

func settingBody(kind whatsapp.ChatSettingKind) string {
	switch kind {
	case whatsapp.ChatArchive:
		return `{"archived": true|false}`
	case whatsapp.ChatPin:
		return `{"pinned": true|false}`
	}
	return `{"muted": true|false, "until": "2026-12-24T18:00:00Z" (optional, with muted true; none: without end)}`
}

// chatSettings are a chat's settings as GET /v1/chats and /v1/contacts
// show them.
type chatSettings struct {
	Archived   bool      `json:"archived,omitempty"`
	Pinned     bool      `json:"pinned,omitempty"`
	Muted      bool      `json:"muted,omitempty"`
	MutedUntil time.Time `json:"muted_until,omitzero"`
	Blocked    bool      `json:"blocked,omitempty"` // a user on the blocklist
}

// withSettings adds c's settings to v: a mute that ended shows as none.
func withSettings(v chatView, c store.Chat, blocked map[string]bool, now time.Time) chatView {
	v.Archived, v.Pinned = c.Archived, c.Pinned
	if c.Muted && (c.MutedUntil.IsZero() || c.MutedUntil.After(now)) {
		v.Muted, v.MutedUntil = true, c.MutedUntil
	}
	v.Blocked = blocked[c.JID] || (c.PN != "" && blocked[c.PN]) || (c.LID != "" && blocked[c.LID])
	return v
}

// blockedSet is the stored blocklist as a set (empty when none is
// stored); on failure it has answered.
func (s *Server) blockedSet(ctx context.Context, w http.ResponseWriter, r *http.Request) (map[string]bool, bool) {
	b, err := s.Chats.Blocklist(ctx)
	if errors.Is(err, store.ErrNotFound) {
		return nil, true
	}
	if err != nil {
		s.storeFailed(w, r, err)
		return nil, false
	}
	set := make(map[string]bool, len(b.JIDs))
	for _, j := range b.JIDs {
		set[j] = true
	}
	return set, true
}

// checkPhoneChange checks the sandbox levers of changes made on the phone
// (phone_block, phone_chat_setting), giving their JIDs the form a send to
// the same recipient uses; on failure it has answered.
func checkPhoneChange(w http.ResponseWriter, r *http.Request, action string, args map[string]string) bool {
	field := "chat"
	if action == "phone_block" {
		field = "jid"
	}
	jid, err := whatsapp.NormalizeRecipient(args[field])
	if err != nil {
		writeError(w, r, http.StatusBadRequest, "invalid", field+" must be "+err.Error(), field)
		return false
	}
	args[field] = jid
	if action == "phone_block" {
		if !store.IsUserChat(jid) {
			writeError(w, r, http.StatusBadRequest, "invalid", "jid must be a user (a phone number, a user JID or a LID): a group cannot be blocked", "jid")
			return false
		}
		return true
	}
	switch whatsapp.ChatSettingKind(args["setting"]) {
	case whatsapp.ChatArchive, whatsapp.ChatPin, whatsapp.ChatMute:
	default:
		writeError(w, r, http.StatusBadRequest, "invalid", "setting must be archive, pin or mute", "setting")
		return false
	}
	if u, ok := args["until"]; ok {
		t, err := time.Parse(time.RFC3339, u)
		if err != nil || args["setting"] != string(whatsapp.ChatMute) || args["on"] != "true" {
			writeError(w, r, http.StatusBadRequest, "invalid", "until must be an RFC 3339 time, and only with setting mute and on true", "until")
			return false
		}
		args["until"] = t.UTC().Format(time.RFC3339Nano)
	}
	return true
}
