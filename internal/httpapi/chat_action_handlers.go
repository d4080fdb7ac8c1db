package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/julienschmidt/httprouter"

	"app/internal/store"
	"app/internal/whatsapp"
)

// Chat actions (read receipts, typing, online presence) are not queued as
// messages are: a read receipt an hour late is worthless. A worker leaves
// the primary a command with a short deadline and answers with what came
// of it: done, no primary connected to WhatsApp (503, also before the
// command is stored), or no answer by the deadline (504), after which the
// primary drops the command rather than run it late.

// The deadlines of the chat actions: a person waits on them.
const (
	readWait     = 10 * time.Second
	presenceWait = 5 * time.Second
)

// actionGrace is how long after the deadline the worker still looks for
// the outcome: the primary stops the driver at the deadline, then records
// what happened.
const actionGrace = time.Second

// maxReadIDs bounds the messages one read names.
const maxReadIDs = 1000

func (s *Server) chatActionRoutes(r routes) {
	r.handle("POST", "/v1/chats/:jid/read", s.auth(store.ScopeMessagesWrite, s.markRead))
	r.handle("POST", "/v1/chats/:jid/presence", s.auth(store.ScopeMessagesWrite, s.chatPresence))
	r.handle("POST", "/v1/presence", s.auth(store.ScopeMessagesWrite, s.presence))
}

// waID is what a WhatsApp message id looks like (3EB0..., 3A..., hex).
var waID = regexp.MustCompile(`^[0-9A-Za-z_.:-]{1,128}$`)

func (s *Server) markRead(w http.ResponseWriter, r *http.Request, ps httprouter.Params) {
	jid, ok := chatParam(w, r, ps)
	if !ok {
		return
	}
	var req struct {
		IDs    json.RawMessage `json:"ids"`
		Played bool            `json:"played"`
	}
	if r.ContentLength != 0 && !decodeJSON(w, r, &req) {
		return
	}
	var ids []string
	if len(req.IDs) > 0 {
		var list []any
		if err := json.Unmarshal(req.IDs, &list); err != nil {
			writeError(w, r, http.StatusBadRequest, "invalid", "ids must be an array of WhatsApp message ids (strings)", "ids")
			return
		}
		if len(list) > maxReadIDs {
			writeError(w, r, http.StatusBadRequest, "invalid", "ids must name at most "+strconv.Itoa(maxReadIDs)+" messages; mark more in several requests", "ids")
			return
		}
		seen := map[string]bool{}
		for _, v := range list {
			id, _ := v.(string)
			if !waID.MatchString(id) {
				writeError(w, r, http.StatusBadRequest, "invalid", "ids must be WhatsApp message ids (strings of letters and digits, as wa_id shows them)", "ids")
				return
			}
			if !seen[id] {
				seen[id] = true
				ids = append(ids, id)
			}
		}
	}
	args := map[string]string{"chat": jid}
	if len(ids) > 0 {
		args["ids"] = strings.Join(ids, ",")
	}
	if req.Played {
		args["played"] = "true"
	}
	s.chatAction(w, r, "mark_read", args, readWait)
}

func (s *Server) chatPresence(w http.ResponseWriter, r *http.Request, ps httprouter.Params) {
	jid, ok := chatParam(w, r, ps)
	if !ok {
		return
	}
	var req struct {
		State string `json:"state"`
	}
	if !decodeJSON(w, r, &req) {
		return
	}
	switch whatsapp.ChatPresence(req.State) {
	case whatsapp.ChatComposing, whatsapp.ChatRecording, whatsapp.ChatPaused:
	default:
		writeError(w, r, http.StatusBadRequest, "invalid", "state must be composing (typing), recording (a voice note) or paused", "state")
		return
	}
	s.chatAction(w, r, "chat_presence", map[string]string{"chat": jid, "state": req.State}, presenceWait)
}

func (s *Server) presence(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	var req struct {
		State string `json:"state"`
	}
	if !decodeJSON(w, r, &req) {
		return
	}
	if req.State != "available" && req.State != "unavailable" {
		writeError(w, r, http.StatusBadRequest, "invalid", "state must be available (online) or unavailable (offline)", "state")
		return
	}
	s.chatAction(w, r, "presence", map[string]string{"state": req.State}, presenceWait)
}

// chatParam is the route's chat; on failure it has answered.
func chatParam(w http.ResponseWriter, r *http.Request, ps httprouter.Params) (string, bool) {
	jid, err := whatsapp.NormalizeRecipient(ps.ByName("jid"))
	if err != nil {
		writeError(w, r, http.StatusBadRequest, "invalid", "jid must be "+err.Error(), "jid")
		return "", false
	}
	return jid, true
}

// chatAction leaves a command for the primary, due within wait, and
// answers with its outcome.
func (s *Server) chatAction(w http.ResponseWriter, r *http.Request, kind string, args map[string]string, wait time.Duration) {
	got, ok := s.primaryCommand(w, r, kind, args, wait)
	if !ok {
		return
	}
	res := map[string]any{"ok": true}
	if n, err := strconv.Atoi(got.Result["marked"]); err == nil {
		res["marked"] = n
	}
	writeJSON(w, http.StatusOK, res)
}

// primaryCommand leaves a command for the primary, due within wait, and
// returns it done; otherwise it has answered with what came of it.
func (s *Server) primaryCommand(w http.ResponseWriter, r *http.Request, kind string, args map[string]string, wait time.Duration) (store.Command, bool) {
	if s.actionWait > 0 {
		wait = s.actionWait
	}
	if !s.primaryConnected(w, r) {
		return store.Command{}, false
	}
	deadline := time.Now().Add(wait)
	ctx, cancel := context.WithDeadline(r.Context(), deadline.Add(actionGrace))
	defer cancel()
	c := &store.Command{ID: store.NewMessageID(), Kind: kind, Args: args, Deadline: deadline}
	_, again, err := s.insertSettled(ctx, r, func(ctx context.Context) error { return s.Sessions.InsertCommand(ctx, c) })
	if errors.Is(err, store.ErrExists) && again {
		err = nil // the first try stored it
	}
	if err != nil {
		s.writeFailed(w, r, err, "", "")
		return store.Command{}, false
	}
	// The primary answers within milliseconds: looked for often at first.
	for pause := 5 * time.Millisecond; ; pause = min(2*pause, 50*time.Millisecond) {
		select {
		case <-ctx.Done():
			writeError(w, r, http.StatusGatewayTimeout, "primary_timeout",
				"the primary did not do it within "+wait.String()+"; it will not be done later", "")
			return store.Command{}, false
		case <-time.After(pause):
		}
		got, err := s.Sessions.Command(ctx, c.ID)
		if err != nil || got.Outcome == "" {
			continue
		}
		switch {
		case got.Outcome == "ok":
			return got, true
		case got.Outcome == "expired":
			writeError(w, r, http.StatusGatewayTimeout, "primary_timeout",
				"the primary did not do it within "+wait.String()+" ("+got.Error+"); it will not be done later", "")
		case got.Result["code"] == "not_connected":
			notConnected(w, r, "not_connected", "the primary is not connected to WhatsApp", 5*time.Second)
		case got.Result["code"] == "unknown_message":
			notFound(w, r, "ids: "+got.Error, "ids")
		case got.Result["status"] != "":
			// A refusal the primary sorted (groups): its status, code and field.
			status, err := strconv.Atoi(got.Result["status"])
			if err != nil || status < 400 || status > 499 {
				status = http.StatusBadGateway
			}
			if ra := got.Result["retry_after"]; ra != "" {
				w.Header().Set("Retry-After", ra)
			}
			writeError(w, r, status, got.Result["code"], got.Error, got.Result["field"])
		default:
			writeError(w, r, http.StatusBadGateway, "whatsapp_failed", "WhatsApp did not take it: "+got.Error, "")
		}
		return store.Command{}, false
	}
}

// primaryConnected says whether a primary is connected to WhatsApp: one
// holds the lease (it has not expired), and the session it reported under
// that lease is connected. The session record alone does not tell: it
// keeps saying connected after its primary stopped, until the next one
// writes it. Otherwise it has answered 503 with Retry-After.
func (s *Server) primaryConnected(w http.ResponseWriter, r *http.Request) bool {
	ctx, cancel := dbContext(r)
	defer cancel()
	l, err := s.Backend.CurrentLease(ctx)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		s.storeFailed(w, r, err)
		return false
	}
	now := time.Now()
	if err != nil || !now.Before(l.ExpiresAt) {
		notConnected(w, r, "no_primary", "no primary is running (none holds the lease); is app-primary running?", 5*time.Second)
		return false
	}
	ws, err := s.Sessions.Session(ctx)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		s.storeFailed(w, r, err)
		return false
	}
	switch {
	case err != nil || ws.Epoch != l.Epoch:
		notConnected(w, r, "not_connected", "the primary has not connected to WhatsApp yet", 5*time.Second)
		return false
	case ws.State != string(whatsapp.StateConnected):
		msg := "the primary is not connected to WhatsApp: the session is " + ws.State
		if ws.Reason != "" {
			msg += " (" + ws.Reason + ")"
		}
		retry := 5 * time.Second
		if ws.State == string(whatsapp.StateTemporarilyBanned) && ws.Until.After(now) {
			retry = ws.Until.Sub(now)
		}
		notConnected(w, r, "not_connected", msg, retry)
		return false
	}
	return true
}

// notConnected answers 503 with Retry-After: the action was not done, and
// may be asked again then.
func notConnected(w http.ResponseWriter, r *http.Request, code, msg string, retry time.Duration) {
	w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(retry.Seconds()))))
	writeError(w, r, http.StatusServiceUnavailable, code, msg, "")
}

// decodeResult reads the JSON of a command's result key into v; on
// failure it has answered.
func (s *Server) decodeResult(w http.ResponseWriter, r *http.Request, res map[string]string, key string, v any) bool {
	if err := json.Unmarshal([]byte(res[key]), v); err != nil {
		s.storeFailed(w, r, errors.New("the primary's answer ("+key+") is not JSON: "+err.Error()))
		return false
	}
	return true
}
