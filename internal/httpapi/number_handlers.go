package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/julienschmidt/httprouter"

	"app/internal/store"
)

// Number checks (issue 19): which phone numbers have a WhatsApp account.
// Each number is answered on its own: a malformed one in its entry, one
// the primary's pace held back (WHATSAPP_CHECKS_PER_MINUTE) with when to
// ask again. Answers are cached (store.NumberCheck, fresh 24 h when on
// WhatsApp, 6 h when not): only the numbers without a fresh answer go to
// the primary, as one command with a deadline, and a batch answered
// wholly from the cache needs no primary at all.

// maxCheckNumbers bounds the numbers of one check.
const maxCheckNumbers = 500

// checkWait is a check's deadline: a few queries to WhatsApp.
const checkWait = 20 * time.Second

func (s *Server) numberRoutes(r routes) {
	r.handle("POST", "/v1/contacts/check", s.auth(store.ScopeMessagesRead, s.checkNumbers))
}

// normalizeNumber is a phone number as "+" and its digits (E.164: a
// country code, 8 to 15 digits, not starting with 0), from one written
// with spaces, dashes, dots or brackets, with or without the "+".
func normalizeNumber(s string) (string, error) {
	var b strings.Builder
	for i, c := range strings.TrimSpace(s) {
		switch {
		case c >= '0' && c <= '9':
			b.WriteRune(c)
		case c == '+' && i == 0:
		case c == ' ' || c == '-' || c == '.' || c == '(' || c == ')':
		default:
			return "", errors.New("not a phone number: only digits, with an optional leading + (spaces, dashes, dots and brackets are ignored)")
		}
	}
	d := b.String()
	switch {
	case len(d) < 8 || len(d) > 15:
		return "", errors.New("not a phone number in E.164 form: 8 to 15 digits with the country code (+491701234567)")
	case d[0] == '0':
		return "", errors.New("not a phone number in E.164 form: it starts with the country code, not 0 (+491701234567)")
	}
	return "+" + d, nil
}

// numberResult is one entry of the answer.
type numberResult struct {
	Number       string     `json:"number"`
	OnWhatsApp   *bool      `json:"on_whatsapp,omitempty"`
	JID          string     `json:"jid,omitempty"`
	LID          string     `json:"lid,omitempty"`
	BusinessName string     `json:"business_name,omitempty"`
	Cached       *bool      `json:"cached,omitempty"`
	CheckedAt    *time.Time `json:"checked_at,omitempty"`
	Held         string     `json:"held,omitempty"`
	Error        string     `json:"error,omitempty"`
}

func checkedResult(c store.NumberCheck, cached bool) numberResult {
	on, at := c.OnWhatsApp, c.CheckedAt
	return numberResult{Number: c.Number, OnWhatsApp: &on, JID: c.JID, LID: c.LID, BusinessName: c.BusinessName,
		Cached: &cached, CheckedAt: &at}
}

func (s *Server) checkNumbers(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	var req struct {
		Numbers json.RawMessage `json:"numbers"`
	}
	if !decodeJSON(w, r, &req) {
		return
	}
	var list []any
	if len(req.Numbers) == 0 || json.Unmarshal(req.Numbers, &list) != nil || list == nil {
		writeError(w, r, http.StatusBadRequest, "invalid", "numbers must be an array of phone numbers (strings)", "numbers")
		return
	}
	if len(list) == 0 || len(list) > maxCheckNumbers {
		writeError(w, r, http.StatusBadRequest, "invalid", "numbers must name 1 to "+strconv.Itoa(maxCheckNumbers)+" phone numbers; check more in several requests", "numbers")
		return
	}
	results := make([]numberResult, len(list))
	var distinct []string
	seen := map[string]bool{}
	for i, v := range list {
		str, ok := v.(string)
		if !ok {
			b, _ := json.Marshal(v)
			results[i] = numberResult{Number: string(b), Error: "not a phone number: a string is expected"}
			continue
		}
		n, err := normalizeNumber(str)
		if err != nil {
			results[i] = numberResult{Number: str, Error: err.Error()}
			continue
		}
		results[i].Number = n
		if !seen[n] {
			seen[n] = true
			distinct = append(distinct, n)
		}
	}
	answers := map[string]numberResult{}
	if len(distinct) > 0 {
		ctx, cancel := dbContext(r)
		cached, err := s.Chats.NumberChecks(ctx, distinct)
		cancel()
		if err != nil {
			s.storeFailed(w, r, err)
			return
		}
		now := time.Now()
		for _, c := range cached {
			if c.Fresh(now) {
				answers[c.Number] = checkedResult(c, true)
			}
		}
	}
	var stale []string
	for _, n := range distinct {
		if _, ok := answers[n]; !ok {
			stale = append(stale, n)
		}
	}
	if len(stale) > 0 && !s.askNumbers(w, r, stale, answers) {
		return
	}
	for i, res := range results {
		if res.Error == "" {
			results[i] = answers[res.Number]
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"results": results})
}

// askNumbers leaves the primary a check_numbers command for numbers and
// adds its answers; on failure it has answered.
func (s *Server) askNumbers(w http.ResponseWriter, r *http.Request, numbers []string, answers map[string]numberResult) bool {
	wait := checkWait
	if s.actionWait > 0 {
		wait = s.actionWait
	}
	if !s.primaryConnected(w, r) {
		return false
	}
	deadline := time.Now().Add(wait)
	ctx, cancel := context.WithDeadline(r.Context(), deadline.Add(actionGrace))
	defer cancel()
	c := &store.Command{ID: store.NewMessageID(), Kind: "check_numbers", Args: map[string]string{"numbers": strings.Join(numbers, ",")}, Deadline: deadline}
	_, again, err := s.insertSettled(ctx, r, func(ctx context.Context) error { return s.Sessions.InsertCommand(ctx, c) })
	if errors.Is(err, store.ErrExists) && again {
		err = nil // the first try stored it
	}
	if err != nil {
		s.writeFailed(w, r, err, "", "")
		return false
	}
	timedOut := func(why string) {
		writeError(w, r, http.StatusGatewayTimeout, "primary_timeout", "the primary did not check the numbers within "+wait.String()+why+"; ask again", "")
	}
	for pause := 5 * time.Millisecond; ; pause = min(2*pause, 50*time.Millisecond) {
		select {
		case <-ctx.Done():
			timedOut("")
			return false
		case <-time.After(pause):
		}
		got, err := s.Sessions.Command(ctx, c.ID)
		if err != nil || got.Outcome == "" {
			continue
		}
		switch {
		case got.Outcome == "expired":
			timedOut(" (" + got.Error + ")")
			return false
		case got.Result["code"] == "not_connected":
			notConnected(w, r, "not_connected", "the primary is not connected to WhatsApp", 5*time.Second)
			return false
		case got.Outcome != "ok":
			writeError(w, r, http.StatusBadGateway, "whatsapp_failed", "WhatsApp did not answer the check: "+got.Error, "")
			return false
		}
		var checks []store.NumberCheck
		if !s.decodeResult(w, r, got.Result, "checks", &checks) {
			return false
		}
		for _, ch := range checks {
			answers[ch.Number] = checkedResult(ch, false)
		}
		if got.Result["held"] != "" {
			note := "paced: ask again in " + got.Result["held_seconds"] + "s"
			for _, n := range strings.Split(got.Result["held"], ",") {
				answers[n] = numberResult{Number: n, Held: note}
			}
		}
		return true
	}
}

// checkDirectory checks the sandbox directory's entries (docs/SANDBOX.md)
// and gives each number its normalized form; on failure it has answered.
func checkDirectory(w http.ResponseWriter, r *http.Request, args map[string]string) bool {
	var entries []map[string]any
	bad := func(msg string) bool {
		writeError(w, r, http.StatusBadRequest, "invalid", "numbers "+msg, "numbers")
		return false
	}
	if err := json.Unmarshal([]byte(args["numbers"]), &entries); err != nil || len(entries) == 0 {
		return bad(`must be an array of entries: {"number": "+491701234567", "on_whatsapp": true, "lid": "...@lid", "business_name": "..."}`)
	}
	for i, e := range entries {
		at := "[" + strconv.Itoa(i) + "]"
		for k, v := range e {
			var ok bool
			switch k {
			case "number", "business_name":
				_, ok = v.(string)
			case "lid":
				l, _ := v.(string)
				ok = store.IsLID(l)
			case "on_whatsapp":
				_, ok = v.(bool)
			default:
				return bad(at + ": unknown field " + strconv.Quote(k))
			}
			if !ok {
				return bad(at + "." + k + " must be " + map[string]string{"number": "a string", "business_name": "a string",
					"lid": "a LID (...@lid)", "on_whatsapp": "true or false"}[k])
			}
		}
		num, _ := e["number"].(string)
		n, err := normalizeNumber(num)
		if err != nil {
			return bad(at + ".number is " + err.Error())
		}
		e["number"] = n
	}
	b, _ := json.Marshal(entries)
	args["numbers"] = string(b)
	return true
}
