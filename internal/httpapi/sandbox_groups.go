package httpapi

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"

	"app/internal/store"
	"app/internal/whatsapp"
)

// The sandbox's group levers (docs/SANDBOX.md): POST /v1/sandbox/groups
// sets up groups and the users whose privacy refuses adds;
// POST /v1/sandbox/group_change makes a change elsewhere.
var (
	sandboxGroupsFields = map[string]sandboxField{"groups": listField, "refuse_adds": listField}
	sandboxChangeFields = map[string]sandboxField{"group": textField, "sender": textField, "name": textField,
		"description": textField, "announce": flagField, "locked": flagField, "join_approval": flagField,
		"invite_reset": flagField, "joined": listField, "left": listField, "promoted": listField,
		"demoted": listField, "requested": listField}
)

// sandboxUser is a user given as a number or a JID, as its JID.
func sandboxUser(v any) (string, error) {
	s, _ := v.(string)
	jid, err := whatsapp.NormalizeRecipient(s)
	if err == nil && !store.IsUserChat(jid) {
		err = errors.New("a user, not a group")
	}
	if err != nil {
		return "", errors.New("must be a phone number or user JID: " + err.Error())
	}
	return jid, nil
}

// sandboxUsers normalizes a JSON list of users in args[k].
func sandboxUsers(args map[string]string, k string) error {
	if args[k] == "" {
		return nil
	}
	var list []any
	if err := json.Unmarshal([]byte(args[k]), &list); err != nil {
		return errors.New(k + " must be an array of phone numbers or user JIDs")
	}
	out := make([]string, 0, len(list))
	for i, v := range list {
		jid, err := sandboxUser(v)
		if err != nil {
			return errors.New(k + "[" + strconv.Itoa(i) + "] " + err.Error())
		}
		out = append(out, jid)
	}
	b, _ := json.Marshal(out)
	args[k] = string(b)
	return nil
}

// checkSandboxGroups checks the groups to set up and gives every user
// its JID; on failure it has answered.
func checkSandboxGroups(w http.ResponseWriter, r *http.Request, args map[string]string) bool {
	bad := func(field, msg string) bool {
		writeError(w, r, http.StatusBadRequest, "invalid", msg, field)
		return false
	}
	if err := sandboxUsers(args, "refuse_adds"); err != nil {
		return bad("refuse_adds", err.Error())
	}
	var entries []map[string]any
	if args["groups"] == "" {
		return true
	}
	if err := json.Unmarshal([]byte(args["groups"]), &entries); err != nil {
		return bad("groups", `groups must be an array of groups: {"name": "...", "participants": ["+491701234567"], "admin": true}`)
	}
	kinds := map[string]string{"jid": "string", "name": "string", "description": "string", "owner": "string",
		"participants": "array", "requests": "array", "left": "bool", "admin": "bool", "announce": "bool",
		"locked": "bool", "join_approval": "bool", "admins_add_members": "bool", "invite": "string"}
	for i, e := range entries {
		at := "groups[" + strconv.Itoa(i) + "]"
		for k, v := range e {
			kind, known := kinds[k]
			if !known {
				return bad("groups", at+": unknown field "+strconv.Quote(k))
			}
			ok := false
			switch v.(type) {
			case string:
				ok = kind == "string"
			case bool:
				ok = kind == "bool"
			case []any:
				ok = kind == "array"
			}
			if !ok {
				return bad("groups", at+"."+k+" must be a "+kind)
			}
		}
		if j, ok := e["jid"].(string); ok {
			if !strings.Contains(j, "@") {
				j += "@g.us"
			}
			jid, err := whatsapp.NormalizeRecipient(j)
			if err != nil || !strings.HasSuffix(jid, "@g.us") {
				return bad("groups", at+".jid must be a group JID (digits, then @g.us)")
			}
			e["jid"] = jid
		}
		if o, ok := e["owner"].(string); ok {
			jid, err := sandboxUser(o)
			if err != nil {
				return bad("groups", at+".owner "+err.Error())
			}
			e["owner"] = jid
		}
		var ps []any
		list, _ := e["participants"].([]any)
		for n, p := range list {
			entry, isObj := p.(map[string]any)
			if !isObj {
				entry = map[string]any{"jid": p}
			}
			jid, err := sandboxUser(entry["jid"])
			if err != nil {
				return bad("groups", at+".participants["+strconv.Itoa(n)+"] "+err.Error())
			}
			entry["jid"] = jid
			ps = append(ps, entry)
		}
		if ps != nil {
			e["participants"] = ps
		}
		if rs, ok := e["requests"].([]any); ok {
			for n, q := range rs {
				jid, err := sandboxUser(q)
				if err != nil {
					return bad("groups", at+".requests["+strconv.Itoa(n)+"] "+err.Error())
				}
				rs[n] = jid
			}
		}
	}
	b, _ := json.Marshal(entries)
	args["groups"] = string(b)
	return true
}

// checkGroupChange checks a change made elsewhere; on failure it has
// answered.
func checkGroupChange(w http.ResponseWriter, r *http.Request, args map[string]string) bool {
	g := args["group"]
	if g != "" && !strings.Contains(g, "@") {
		g += "@g.us"
	}
	jid, err := whatsapp.NormalizeRecipient(g)
	if err != nil || !strings.HasSuffix(jid, "@g.us") {
		writeError(w, r, http.StatusBadRequest, "invalid", "group must be a group JID (digits, then @g.us)", "group")
		return false
	}
	args["group"] = jid
	if s, ok := args["sender"]; ok {
		if args["sender"], err = sandboxUser(s); err != nil {
			writeError(w, r, http.StatusBadRequest, "invalid", "sender "+err.Error(), "sender")
			return false
		}
	}
	for _, k := range []string{"joined", "left", "promoted", "demoted", "requested"} {
		if err := sandboxUsers(args, k); err != nil {
			writeError(w, r, http.StatusBadRequest, "invalid", err.Error(), k)
			return false
		}
	}
	return true
}
