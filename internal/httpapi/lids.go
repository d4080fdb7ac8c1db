package httpapi

import (
	"errors"
	"net/http"

	"app/internal/store"
	"app/internal/whatsapp"
)

// normalizeLIDs checks the sandbox's incoming fields about LIDs and
// expired media (docs/SANDBOX.md), after chat and sender were normalized;
// on failure it has answered.
func normalizeLIDs(w http.ResponseWriter, r *http.Request, args map[string]string) bool {
	for _, f := range []string{"chat_lid", "sender_lid"} {
		v, ok := args[f]
		if !ok {
			continue
		}
		jid, err := whatsapp.NormalizeRecipient(v)
		if err == nil && !store.IsLID(jid) {
			err = errors.New("a LID: digits, then @lid (201001234567@lid)")
		}
		if err != nil {
			writeError(w, r, http.StatusBadRequest, "invalid", f+" must be "+err.Error(), f)
			return false
		}
		args[f] = jid
	}
	chat := args["chat"]
	if _, ok := args["chat_lid"]; ok && !store.IsPN(chat) {
		writeError(w, r, http.StatusBadRequest, "invalid", "chat_lid is the LID of a one-to-one chat's person: chat must then be their number", "chat_lid")
		return false
	}
	if _, ok := args["sender_lid"]; ok && args["sender"] == "" {
		writeError(w, r, http.StatusBadRequest, "invalid", "sender_lid is the LID of the sender: sender must then be their number (in a one-to-one chat, give chat_lid)", "sender_lid")
		return false
	}
	if _, ok := args["pn_known"]; ok && args["chat_lid"] == "" && args["sender_lid"] == "" {
		writeError(w, r, http.StatusBadRequest, "invalid", "pn_known applies to a message addressed by LID: give chat_lid or sender_lid", "pn_known")
		return false
	}
	if args["media_retry_fails"] == "true" && args["media_expired"] != "true" {
		writeError(w, r, http.StatusBadRequest, "invalid", "media_retry_fails applies to a file gone from WhatsApp's servers: give media_expired", "media_retry_fails")
		return false
	}
	return true
}
