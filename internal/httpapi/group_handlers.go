package httpapi

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/julienschmidt/httprouter"

	"app/internal/store"
	"app/internal/whatsapp"
)

// Groups (issue 19): the groups we are in, one group's info, and every
// change WhatsApp lets a member or an admin make. Reads are served from
// the store while fresh (store.GroupFresh; refresh=true asks again) and
// need no primary then; the rest goes to the primary as commands with a
// deadline (503 when no primary is connected, 504 past the deadline),
// which does them through WhatsApp and keeps the outcome in the store.
// WhatsApp's refusals are 4xx naming why: group_not_found (404, jid),
// not_in_group (409, jid), not_group_admin (403, jid), invite_invalid
// (404, code), group_reads_paced (429 with Retry-After).

// GroupBackend reads the groups the primary stored.
type GroupBackend interface {
	Group(ctx context.Context, jid string) (store.Group, error)
	GroupsPage(ctx context.Context, afterName, afterJID string, limit int) ([]store.Group, error)
	GroupListFetchedAt(ctx context.Context) (time.Time, error)
}

// groupWait is a group command's deadline: a query or two to WhatsApp.
const groupWait = 20 * time.Second

// maxGroupName is WhatsApp's limit of a group's name, in characters;
// maxGroupDescription its description's.
const (
	maxGroupName        = 100
	maxGroupDescription = 2048
)

func (s *Server) groupRoutes(r routes) {
	read, write := store.ScopeMessagesRead, store.ScopeContactsWrite
	r.handle("GET", "/v1/groups", s.auth(read, s.listGroups))
	r.handle("POST", "/v1/groups", s.auth(write, s.createGroup))
	r.handle("GET", "/v1/groups/:jid", s.auth(read, s.groupInfo))
	r.handle("PATCH", "/v1/groups/:jid", s.auth(write, s.updateGroup))
	r.handle("POST", "/v1/groups/:jid/participants", s.auth(write, s.groupParticipants(false)))
	r.handle("GET", "/v1/groups/:jid/invite", s.auth(read, s.groupInvite(false)))
	r.handle("POST", "/v1/groups/:jid/invite/reset", s.auth(write, s.groupInvite(true)))
	r.handle("POST", "/v1/groups/:jid/leave", s.auth(write, s.leaveGroup))
	if s.Media != nil {
		r.handle("PUT", "/v1/groups/:jid/photo", s.auth(write, s.groupPhoto))
	}
	r.handle("DELETE", "/v1/groups/:jid/photo", s.auth(write, s.groupPhoto))
	r.handle("GET", "/v1/groups/:jid/requests", s.auth(read, s.groupRequests))
	r.handle("POST", "/v1/groups/:jid/requests", s.auth(write, s.groupParticipants(true)))
	r.handle("GET", "/v1/invites/:code", s.auth(read, s.previewInvite))
	r.handle("POST", "/v1/invites/:code/join", s.auth(write, s.joinInvite))
}

// groupParam is the route's group JID (digits, or digits-digits, with or
// without @g.us); on failure it has answered.
func groupParam(w http.ResponseWriter, r *http.Request, ps httprouter.Params) (string, bool) {
	j := strings.TrimSpace(ps.ByName("jid"))
	if !strings.Contains(j, "@") {
		j += "@g.us"
	}
	jid, err := whatsapp.NormalizeRecipient(j)
	if err != nil || !strings.HasSuffix(jid, "@g.us") {
		writeError(w, r, http.StatusBadRequest, "invalid", "jid must be a group JID: digits (or digits-digits), then @g.us", "jid")
		return "", false
	}
	return jid, true
}

// queryFlags checks the query: only the allowed parameters, and refresh
// true or false; on failure it has answered.
func queryFlags(w http.ResponseWriter, r *http.Request, allowed ...string) (bool, bool) {
	q := r.URL.Query()
	for k := range q {
		if k != "refresh" && !containsString(allowed, k) {
			writeError(w, r, http.StatusBadRequest, "invalid", "unknown query parameter "+strconv.Quote(k), k)
			return false, false
		}
	}
	switch q.Get("refresh") {
	case "", "false":
		return false, true
	case "true":
		return true, true
	}
	writeError(w, r, http.StatusBadRequest, "invalid", "refresh must be true or false", "refresh")
	return false, false
}

func containsString(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// groupCursor is a page's position: the last group's name and JID.
func groupCursor(g store.Group) string {
	b, _ := json.Marshal([2]string{g.Name, g.JID})
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeGroupCursor(c string) (string, string, bool) {
	b, err := base64.RawURLEncoding.DecodeString(c)
	var v [2]string
	if err != nil || json.Unmarshal(b, &v) != nil || v[1] == "" {
		return "", "", false
	}
	return v[0], v[1], true
}

// listGroups pages through the groups we are in, by name. The first page
// asks the primary for the list when it was never fetched, is older than
// store.GroupFresh, or refresh=true.
func (s *Server) listGroups(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	refresh, ok := queryFlags(w, r, "limit", "after")
	if !ok {
		return
	}
	q := r.URL.Query()
	limit := 50
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > 200 {
			writeError(w, r, http.StatusBadRequest, "invalid", "limit must be an integer from 1 to 200", "limit")
			return
		}
		limit = n
	}
	var afterName, afterJID string
	if a := q.Get("after"); a != "" {
		if afterName, afterJID, ok = decodeGroupCursor(a); !ok {
			writeError(w, r, http.StatusBadRequest, "invalid", "after must be a cursor from a previous page's next", "after")
			return
		}
	}
	ctx, cancel := dbContext(r)
	at, err := s.Chats.GroupListFetchedAt(ctx)
	cancel()
	if err != nil {
		s.storeFailed(w, r, err)
		return
	}
	if afterJID == "" && (refresh || at.IsZero() || time.Since(at) >= store.GroupFresh) {
		if _, ok := s.primaryCommand(w, r, "groups", nil, groupWait); !ok {
			return
		}
	}
	ctx, cancel = dbContext(r)
	defer cancel()
	if at, err = s.Chats.GroupListFetchedAt(ctx); err != nil {
		s.storeFailed(w, r, err)
		return
	}
	gs, err := s.Chats.GroupsPage(ctx, afterName, afterJID, limit)
	if err != nil {
		s.storeFailed(w, r, err)
		return
	}
	page := struct {
		Groups    []store.GroupView `json:"groups"`
		Next      string            `json:"next,omitempty"`
		FetchedAt time.Time         `json:"fetched_at,omitzero"`
	}{Groups: make([]store.GroupView, 0, len(gs)), FetchedAt: at}
	for _, g := range gs {
		v := g.View()
		v.Participants = nil // a list names the groups; GET /v1/groups/{jid} has who is in each
		page.Groups = append(page.Groups, v)
	}
	if len(gs) == limit {
		page.Next = groupCursor(gs[len(gs)-1])
	}
	writeJSON(w, http.StatusOK, page)
}

// storedGroup reads the stored group jid; found is false when none is.
// On a store failure it has answered.
func (s *Server) storedGroup(w http.ResponseWriter, r *http.Request, jid string) (store.Group, bool, bool) {
	ctx, cancel := dbContext(r)
	defer cancel()
	g, err := s.Chats.Group(ctx, jid)
	if errors.Is(err, store.ErrNotFound) {
		return g, false, true
	}
	if err != nil {
		s.storeFailed(w, r, err)
		return g, false, false
	}
	return g, true, true
}

// groupAfter answers the stored group after a command changed or fetched
// it, with status.
func (s *Server) groupAfter(w http.ResponseWriter, r *http.Request, jid string, status int, extra map[string]any) {
	g, found, ok := s.storedGroup(w, r, jid)
	if !ok {
		return
	}
	if !found {
		writeError(w, r, http.StatusNotFound, "group_not_found", "no group "+jid+" is known", "jid")
		return
	}
	if extra == nil {
		writeJSON(w, status, g.View())
		return
	}
	extra["group"] = g.View()
	writeJSON(w, status, extra)
}

// groupInfo answers a group: from the store while fresh (and for a group
// we left, as we left it), otherwise asked of WhatsApp through the
// primary first.
func (s *Server) groupInfo(w http.ResponseWriter, r *http.Request, ps httprouter.Params) {
	jid, ok := groupParam(w, r, ps)
	if !ok {
		return
	}
	refresh, ok := queryFlags(w, r)
	if !ok {
		return
	}
	g, found, ok := s.storedGroup(w, r, jid)
	if !ok {
		return
	}
	if found && !refresh && (g.Fresh(time.Now()) || !g.Member) {
		writeJSON(w, http.StatusOK, g.View())
		return
	}
	args := map[string]string{"jid": jid}
	if refresh {
		args["refresh"] = "true"
	}
	if _, ok := s.primaryCommand(w, r, "group_info", args, groupWait); !ok {
		return
	}
	s.groupAfter(w, r, jid, http.StatusOK, nil)
}

// participantList checks a request's participants: 1 to max users
// (phone numbers, user JIDs or LIDs), duplicates dropped; on failure it
// has answered, naming the field (participants[i] for an entry).
func participantList(w http.ResponseWriter, r *http.Request, raw json.RawMessage, min, max int) ([]string, bool) {
	bad := func(field, msg string) ([]string, bool) {
		writeError(w, r, http.StatusBadRequest, "invalid", msg, field)
		return nil, false
	}
	var list []any
	if len(raw) > 0 && json.Unmarshal(raw, &list) != nil {
		return bad("participants", "participants must be an array of phone numbers or user JIDs")
	}
	if len(list) < min {
		return bad("participants", "participants must name at least "+strconv.Itoa(min))
	}
	if len(list) > max {
		return bad("participants", "participants must name at most "+strconv.Itoa(max)+" (a group has at most "+
			strconv.Itoa(whatsapp.MaxGroupSize)+" members, us among them)")
	}
	out := make([]string, 0, len(list))
	seen := map[string]bool{}
	for i, v := range list {
		field := "participants[" + strconv.Itoa(i) + "]"
		str, _ := v.(string)
		jid, err := whatsapp.NormalizeRecipient(str)
		if err == nil && !store.IsUserChat(jid) {
			err = errors.New("a user: a phone number in E.164 form (+491701234567), a user JID or a LID, not a group")
		}
		if err != nil {
			return bad(field, field+" must be "+err.Error())
		}
		if !seen[jid] {
			seen[jid] = true
			out = append(out, jid)
		}
	}
	return out, true
}

// checkGroupName checks a group's name; on failure it has answered.
func checkGroupName(w http.ResponseWriter, r *http.Request, name string) bool {
	switch {
	case strings.TrimSpace(name) == "":
		writeError(w, r, http.StatusBadRequest, "invalid", "name must not be empty", "name")
	case utf8.RuneCountInString(name) > maxGroupName:
		writeError(w, r, http.StatusBadRequest, "invalid", "name must be at most "+strconv.Itoa(maxGroupName)+" characters", "name")
	default:
		return true
	}
	return false
}

func (s *Server) createGroup(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	var req struct {
		Name         string          `json:"name"`
		Participants json.RawMessage `json:"participants"`
	}
	if !decodeJSON(w, r, &req) || !checkGroupName(w, r, req.Name) {
		return
	}
	jids, ok := participantList(w, r, req.Participants, 0, whatsapp.MaxGroupSize-1)
	if !ok {
		return
	}
	got, ok := s.primaryCommand(w, r, "group_create", map[string]string{"name": req.Name, "participants": strings.Join(jids, ",")}, groupWait)
	if !ok {
		return
	}
	results := []whatsapp.ParticipantResult{}
	if !s.decodeResult(w, r, got.Result, "results", &results) {
		return
	}
	w.Header().Set("Location", "/v1/groups/"+got.Result["jid"])
	s.groupAfter(w, r, got.Result["jid"], http.StatusCreated, map[string]any{"participants": results})
}

func (s *Server) updateGroup(w http.ResponseWriter, r *http.Request, ps httprouter.Params) {
	jid, ok := groupParam(w, r, ps)
	if !ok {
		return
	}
	var req struct {
		Name             *string `json:"name"`
		Description      *string `json:"description"`
		Announce         *bool   `json:"announce"`
		Locked           *bool   `json:"locked"`
		JoinApproval     *bool   `json:"join_approval"`
		AdminsAddMembers *bool   `json:"admins_add_members"`
	}
	if !decodeJSON(w, r, &req) {
		return
	}
	args := map[string]string{"jid": jid}
	if req.Name != nil {
		if !checkGroupName(w, r, *req.Name) {
			return
		}
		args["name"] = *req.Name
	}
	if req.Description != nil {
		if utf8.RuneCountInString(*req.Description) > maxGroupDescription {
			writeError(w, r, http.StatusBadRequest, "invalid", "description must be at most "+strconv.Itoa(maxGroupDescription)+" characters", "description")
			return
		}
		args["description"] = *req.Description
	}
	for k, v := range map[string]*bool{"announce": req.Announce, "locked": req.Locked, "join_approval": req.JoinApproval, "admins_add_members": req.AdminsAddMembers} {
		if v != nil {
			args[k] = strconv.FormatBool(*v)
		}
	}
	if len(args) == 1 {
		writeError(w, r, http.StatusBadRequest, "invalid", "nothing to change: give name, description, announce, locked, join_approval or admins_add_members", "")
		return
	}
	if _, ok := s.primaryCommand(w, r, "group_update", args, groupWait); !ok {
		return
	}
	s.groupAfter(w, r, jid, http.StatusOK, nil)
}

// groupParticipants changes participants (add, remove, promote, demote)
// or, with requests, answers join requests (approve, reject): each
// participant's outcome, and the group after.
func (s *Server) groupParticipants(requests bool) httprouter.Handle {
	actions := []string{"add", "remove", "promote", "demote"}
	if requests {
		actions = []string{"approve", "reject"}
	}
	return func(w http.ResponseWriter, r *http.Request, ps httprouter.Params) {
		jid, ok := groupParam(w, r, ps)
		if !ok {
			return
		}
		var req struct {
			Action       string          `json:"action"`
			Participants json.RawMessage `json:"participants"`
		}
		if !decodeJSON(w, r, &req) {
			return
		}
		if !containsString(actions, req.Action) {
			writeError(w, r, http.StatusBadRequest, "invalid", "action must be one of "+strings.Join(actions, ", "), "action")
			return
		}
		jids, ok := participantList(w, r, req.Participants, 1, whatsapp.MaxGroupSize-1)
		if !ok {
			return
		}
		got, ok := s.primaryCommand(w, r, "group_participants", map[string]string{"jid": jid, "action": req.Action,
			"participants": strings.Join(jids, ",")}, groupWait)
		if !ok {
			return
		}
		results := []whatsapp.ParticipantResult{}
		if !s.decodeResult(w, r, got.Result, "results", &results) {
			return
		}
		s.groupAfter(w, r, jid, http.StatusOK, map[string]any{"participants": results})
	}
}

// inviteView is an invite link and its code.
type inviteView struct {
	Link string `json:"link"`
	Code string `json:"code"`
}

func inviteOf(link string) inviteView {
	return inviteView{Link: link, Code: strings.TrimPrefix(link, whatsapp.InviteLinkPrefix)}
}

// groupInvite answers the group's invite link (admins only): the stored
// one unless refresh=true, or a new one (reset: the old stops working).
func (s *Server) groupInvite(reset bool) httprouter.Handle {
	return func(w http.ResponseWriter, r *http.Request, ps httprouter.Params) {
		jid, ok := groupParam(w, r, ps)
		if !ok {
			return
		}
		refresh, ok := queryFlags(w, r)
		if !ok {
			return
		}
		if !reset && !refresh {
			g, found, ok := s.storedGroup(w, r, jid)
			if !ok {
				return
			}
			if found && g.Member && g.Admin && g.InviteLink != "" {
				writeJSON(w, http.StatusOK, inviteOf(g.InviteLink))
				return
			}
		}
		got, ok := s.primaryCommand(w, r, "group_invite", map[string]string{"jid": jid, "reset": strconv.FormatBool(reset)}, groupWait)
		if !ok {
			return
		}
		writeJSON(w, http.StatusOK, inviteOf(got.Result["link"]))
	}
}

func (s *Server) leaveGroup(w http.ResponseWriter, r *http.Request, ps httprouter.Params) {
	jid, ok := groupParam(w, r, ps)
	if !ok {
		return
	}
	if _, ok := s.primaryCommand(w, r, "group_leave", map[string]string{"jid": jid}, groupWait); !ok {
		return
	}
	s.groupAfter(w, r, jid, http.StatusOK, nil)
}

// groupPhoto sets the group's photo (PUT: a JPEG body, or JSON naming an
// uploaded JPEG by media_id) or removes it (DELETE).
func (s *Server) groupPhoto(w http.ResponseWriter, r *http.Request, ps httprouter.Params) {
	jid, ok := groupParam(w, r, ps)
	if !ok {
		return
	}
	args := map[string]string{"jid": jid}
	if r.Method == http.MethodPut {
		id, ok := s.pictureUpload(w, r, "group-photo.jpg")
		if !ok {
			return
		}
		args["media_id"] = id
	}
	got, ok := s.primaryCommand(w, r, "group_photo", args, groupWait)
	if !ok {
		return
	}
	res := map[string]any{"ok": true, "jid": jid}
	if id := got.Result["photo_id"]; id != "" {
		res["photo_id"] = id
	}
	writeJSON(w, http.StatusOK, res)
}

// requestView is a request to join.
type requestView struct {
	JID         string    `json:"jid"`
	Phone       string    `json:"phone,omitempty"`
	RequestedAt time.Time `json:"requested_at,omitzero"`
}

func (s *Server) groupRequests(w http.ResponseWriter, r *http.Request, ps httprouter.Params) {
	jid, ok := groupParam(w, r, ps)
	if !ok {
		return
	}
	got, ok := s.primaryCommand(w, r, "group_requests", map[string]string{"jid": jid}, groupWait)
	if !ok {
		return
	}
	var reqs []whatsapp.GroupRequest
	if !s.decodeResult(w, r, got.Result, "requests", &reqs) {
		return
	}
	out := make([]requestView, 0, len(reqs))
	for _, q := range reqs {
		out = append(out, requestView{JID: q.JID, Phone: phoneOf(q.JID), RequestedAt: q.RequestedAt})
	}
	writeJSON(w, http.StatusOK, map[string]any{"requests": out})
}

// inviteCode is what WhatsApp's invite codes look like.
var inviteCode = regexp.MustCompile(`^[0-9A-Za-z_-]{1,64}$`)

// codeParam is the route's invite code: the part of an invite link
// after https://chat.whatsapp.com/ (a whole link cannot be given in the
// path: its slashes, even encoded, split it); on failure it has
// answered.
func codeParam(w http.ResponseWriter, r *http.Request, ps httprouter.Params) (string, bool) {
	c := strings.TrimSpace(ps.ByName("code"))
	if !inviteCode.MatchString(c) {
		writeError(w, r, http.StatusBadRequest, "invalid", "code must be an invite code: the part of the link after https://chat.whatsapp.com/", "code")
		return "", false
	}
	return c, true
}

func (s *Server) previewInvite(w http.ResponseWriter, r *http.Request, ps httprouter.Params) {
	code, ok := codeParam(w, r, ps)
	if !ok {
		return
	}
	got, ok := s.primaryCommand(w, r, "group_preview", map[string]string{"link": code}, groupWait)
	if !ok {
		return
	}
	var g store.GroupView
	if s.decodeResult(w, r, got.Result, "group", &g) {
		writeJSON(w, http.StatusOK, g)
	}
}

func (s *Server) joinInvite(w http.ResponseWriter, r *http.Request, ps httprouter.Params) {
	code, ok := codeParam(w, r, ps)
	if !ok {
		return
	}
	got, ok := s.primaryCommand(w, r, "group_join", map[string]string{"link": code}, groupWait)
	if !ok {
		return
	}
	jid := got.Result["jid"]
	if got.Result["pending"] == "true" {
		// The group's admins approve who joins: asked, not joined yet.
		writeJSON(w, http.StatusAccepted, map[string]any{"jid": jid, "pending": true})
		return
	}
	s.groupAfter(w, r, jid, http.StatusOK, map[string]any{"jid": jid, "pending": false})
}
