package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"mime"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/julienschmidt/httprouter"
	qrcode "github.com/skip2/go-qrcode"

	"app/internal/store"
	"app/internal/whatsapp"
)

// SessionBackend is what the session routes need from the database. The
// primary owns the WhatsApp connection: these routes read the state it
// wrote and leave commands for it.
type SessionBackend interface {
	Session(ctx context.Context) (store.WASession, error)
	InsertCommand(ctx context.Context, c *store.Command) error
	Command(ctx context.Context, id string) (store.Command, error)
}

// commandWait is how long a route waits for the primary to run a command.
const commandWait = 30 * time.Second

func (s *Server) sessionRoutes(r routes) {
	r.handle("GET", "/v1/session", s.auth(store.ScopeSession, s.session))
	r.handle("GET", "/v1/session/qr", s.auth(store.ScopeSession, s.sessionQR))
	r.handle("POST", "/v1/session/pair-code", s.auth(store.ScopeSession, s.pairCode))
	r.handle("POST", "/v1/session/logout", s.auth(store.ScopeSession, s.logout))
	if s.Sandbox {
		r.handle("POST", "/v1/sandbox/:action", s.auth(store.ScopeSession, s.sandbox))
	}
}

type sessionView struct {
	State              string    `json:"state"`
	Reason             string    `json:"reason,omitempty"`
	Until              time.Time `json:"until,omitzero"`
	JID                string    `json:"jid,omitempty"`
	QRAvailable        bool      `json:"qr_available"`
	SendingPausedUntil time.Time `json:"sending_paused_until,omitzero"`
	Driver             string    `json:"driver,omitempty"`
	UpdatedAt          time.Time `json:"updated_at,omitzero"`
	Reconnects         int64     `json:"reconnects,omitempty"`
}

func (s *Server) readSession(w http.ResponseWriter, r *http.Request) (store.WASession, bool) {
	ctx, cancel := dbContext(r)
	defer cancel()
	ws, err := s.Sessions.Session(ctx)
	if errors.Is(err, store.ErrNotFound) {
		return store.WASession{State: "unknown", Reason: "no primary has reported yet"}, true
	}
	if err != nil {
		s.storeFailed(w, r, err)
		return ws, false
	}
	return ws, true
}

func (s *Server) session(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	ws, ok := s.readSession(w, r)
	if !ok {
		return
	}
	writeJSON(w, http.StatusOK, sessionView{State: ws.State, Reason: ws.Reason, Until: ws.Until, JID: ws.JID,
		QRAvailable: ws.State == "pairing" && ws.QR != "", SendingPausedUntil: ws.SendingPausedUntil, Driver: ws.Driver, UpdatedAt: ws.UpdatedAt,
		Reconnects: ws.Reconnects})
}

// sessionQR serves the current QR code: a PNG by default, or the raw text
// as JSON when the client accepts JSON rather than images.
func (s *Server) sessionQR(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	ws, ok := s.readSession(w, r)
	if !ok {
		return
	}
	if ws.State != "pairing" || ws.QR == "" {
		writeError(w, r, http.StatusConflict, "no_qr_code", "there is no QR code to scan: the session is "+ws.State, "")
		return
	}
	if wantsJSON(r) {
		writeJSON(w, http.StatusOK, map[string]any{"qr": ws.QR, "expires": ws.QRExpires})
		return
	}
	png, err := qrcode.Encode(ws.QR, qrcode.Medium, 512)
	if err != nil {
		writeError(w, r, http.StatusInternalServerError, "internal", "cannot draw the QR code", "")
		return
	}
	h := w.Header()
	h.Set("Content-Type", "image/png")
	h.Set("Cache-Control", "no-store")
	_, _ = w.Write(png)
}

func wantsJSON(r *http.Request) bool {
	if r.URL.Query().Get("format") == "json" {
		return true
	}
	for _, part := range strings.Split(r.Header.Get("Accept"), ",") {
		mt, _, _ := mime.ParseMediaType(strings.TrimSpace(part))
		switch mt {
		case "application/json":
			return true
		case "image/png", "image/*":
			return false
		}
	}
	return false
}

var phoneNumber = regexp.MustCompile(`^\+?[1-9][0-9]{6,14}$`)

func (s *Server) pairCode(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	var req struct {
		Phone string `json:"phone"`
	}
	if !decodeJSON(w, r, &req) {
		return
	}
	phone := strings.NewReplacer(" ", "", "-", "", "(", "", ")", "").Replace(req.Phone)
	if !phoneNumber.MatchString(phone) {
		writeError(w, r, http.StatusBadRequest, "invalid", "phone must be the account's number with its country code, for example +491701234567", "phone")
		return
	}
	s.command(w, r, "pair_code", map[string]string{"phone": strings.TrimPrefix(phone, "+")})
}

func (s *Server) logout(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	s.command(w, r, "logout", nil)
}

// sandboxActions are the sandbox's levers and the fields each takes, with
// their kind (docs/SANDBOX.md).
var sandboxActions = map[string]map[string]sandboxField{
	"scan":       nil,
	"incoming":   incomingFields,
	"call":       {"from": textField, "video": flagField, "group": textField},
	"fail_next":  {"reason": textField, "retryable": flagField, "rate_limited": flagField},
	"disconnect": {"reason": textField, "seconds": secondsField},
	"logout":     {"reason": textField},
	"ban":        {"reason": textField, "seconds": secondsField},
	"replace":    nil,
	"directory":  {"numbers": listField},
	"silence":    {"seconds": secondsField},
	// Changes made on the phone (contact_action_handlers.go).
	"phone_block":        {"jid": textField, "block": flagField},
	"phone_chat_setting": {"chat": textField, "setting": textField, "on": flagField, "until": textField},
	// Profiles (sandbox_profiles.go).
	"profiles":       {"profiles": listField},
	"picture_change": {"jid": textField, "removed": flagField, "picture": textField, "author": textField},
	// Groups (sandbox_groups.go).
	"groups":       sandboxGroupsFields,
	"group_change": sandboxChangeFields,
}

type sandboxField int

const (
	textField    sandboxField = iota // a string
	flagField                        // true or false
	secondsField                     // a whole number of seconds, 0 to a day
	numberField                      // a number (each action checks its range)
	listField                        // a JSON array, passed on as its JSON
)

func (s *Server) sandbox(w http.ResponseWriter, r *http.Request, ps httprouter.Params) {
	action := ps.ByName("action")
	allowed, ok := sandboxActions[action]
	if !ok {
		writeError(w, r, http.StatusNotFound, "not_found", "no sandbox action "+strconv.Quote(action), "")
		return
	}
	args := map[string]any{}
	if r.ContentLength != 0 && !decodeJSON(w, r, &args) {
		return
	}
	out := map[string]string{}
	for k, v := range args {
		kind, known := allowed[k]
		if !known {
			writeError(w, r, http.StatusBadRequest, "invalid", "unknown field "+strconv.Quote(k)+" for "+action, k)
			return
		}
		switch v := v.(type) {
		case string:
			if kind == textField {
				out[k] = v
				continue
			}
		case bool:
			if kind == flagField {
				out[k] = strconv.FormatBool(v)
				continue
			}
		case float64:
			if kind == secondsField && v >= 0 && v <= 86400 && v == float64(int64(v)) {
				out[k] = strconv.FormatInt(int64(v), 10)
				continue
			}
			if kind == numberField {
				out[k] = strconv.FormatFloat(v, 'f', -1, 64)
				continue
			}
		case []any:
			if kind == listField {
				b, _ := json.Marshal(v)
				out[k] = string(b)
				continue
			}
		}
		msg := map[sandboxField]string{textField: " must be a string", flagField: " must be true or false",
			secondsField: " must be a whole number of seconds from 0 to 86400", numberField: " must be a number",
			listField: " must be an array"}[kind]
		writeError(w, r, http.StatusBadRequest, "invalid", k+msg, k)
		return
	}
	if action == "incoming" && !checkIncoming(w, r, out) {
		return
	}
	if action == "call" && !checkCall(w, r, out) {
		return
	}
	if action == "directory" && !checkDirectory(w, r, out) {
		return
	}
	if (action == "phone_block" || action == "phone_chat_setting") && !checkPhoneChange(w, r, action, out) {
		return
	}
	if (action == "profiles" && !checkSandboxProfiles(w, r, out)) || (action == "picture_change" && !checkPictureChange(w, r, out)) {
		return
	}
	if action == "groups" && !checkSandboxGroups(w, r, out) {
		return
	}
	if action == "group_change" && !checkGroupChange(w, r, out) {
		return
	}
	s.command(w, r, "sandbox."+action, out)
}

// normalizeIncoming gives an injected message's chat and sender the JIDs a
// send to the same recipient uses, so "+491701234567" lands in that
// number's conversation and not in a chat of its own; on failure it has
// answered.
func normalizeIncoming(w http.ResponseWriter, r *http.Request, args map[string]string) bool {
	chat, err := whatsapp.NormalizeRecipient(args["chat"])
	if err != nil {
		writeError(w, r, http.StatusBadRequest, "invalid", "chat must be "+err.Error(), "chat")
		return false
	}
	args["chat"] = chat
	if sender, ok := args["sender"]; ok {
		jid, err := whatsapp.NormalizeRecipient(sender)
		if err == nil && !strings.HasSuffix(jid, "@s.whatsapp.net") {
			err = errors.New("a user: a phone number in E.164 form (+491701234567) or a user JID (491701234567@s.whatsapp.net)")
		}
		if err != nil {
			writeError(w, r, http.StatusBadRequest, "invalid", "sender must be "+err.Error(), "sender")
			return false
		}
		args["sender"] = jid
	}
	return normalizeLIDs(w, r, args)
}

// command leaves a command for the primary and answers with its outcome.
func (s *Server) command(w http.ResponseWriter, r *http.Request, kind string, args map[string]string) {
	ctx, cancel := context.WithTimeout(r.Context(), commandWait)
	defer cancel()
	c := &store.Command{ID: store.NewMessageID(), Kind: kind, Args: args}
	_, again, err := s.insertSettled(ctx, r, func(ctx context.Context) error { return s.Sessions.InsertCommand(ctx, c) })
	if errors.Is(err, store.ErrExists) && again {
		err = nil // the first try stored it
	}
	if err != nil {
		s.writeFailed(w, r, err, "", "")
		return
	}
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			writeError(w, r, http.StatusGatewayTimeout, "primary_timeout", "the primary did not answer within "+commandWait.String()+"; is app-primary running?", "")
			return
		case <-tick.C:
		}
		got, err := s.Sessions.Command(ctx, c.ID)
		if err != nil || got.Outcome == "" {
			continue
		}
		switch got.Outcome {
		case "ok":
			res := map[string]any{"ok": true}
			for k, v := range got.Result {
				res[k] = v
			}
			writeJSON(w, http.StatusOK, res)
		default:
			writeError(w, r, http.StatusConflict, "refused", got.Error, "")
		}
		return
	}
}
