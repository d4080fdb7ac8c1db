package httpapi

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"

	"app/internal/store"
	"app/internal/whatsapp"
)

// The sandbox's profile levers (docs/SANDBOX.md): profiles sets up its
// directory of profiles, picture_change changes a picture as its owner
// would on their phone.

// sandboxJID is a lever's user or group, normalized; "" with the reason
// when it is none.
func sandboxJID(v string) (string, string) {
	jid, err := whatsapp.NormalizeRecipient(v)
	if err != nil {
		return "", "must be " + err.Error()
	}
	return jid, ""
}

// sandboxPicture is a lever's base64 JPEG; nil with the reason when it is
// none.
func sandboxPicture(v string) ([]byte, string) {
	b, err := base64.StdEncoding.DecodeString(v)
	if err != nil || !bytes.HasPrefix(b, []byte{0xFF, 0xD8, 0xFF}) {
		return nil, "must be a JPEG, base64-encoded"
	}
	return b, ""
}

// checkSandboxProfiles checks the profiles lever's entries and passes
// them on as whatsapp.SandboxProfile JSON; on failure it has answered.
func checkSandboxProfiles(w http.ResponseWriter, r *http.Request, args map[string]string) bool {
	bad := func(msg string) bool {
		writeError(w, r, http.StatusBadRequest, "invalid", "profiles"+msg, "profiles")
		return false
	}
	var entries []map[string]json.RawMessage
	if err := json.Unmarshal([]byte(args["profiles"]), &entries); err != nil || len(entries) == 0 {
		return bad(` must be an array of entries: {"jid": "+491701234567", "about": "...", "picture": "<base64 JPEG>", ...}`)
	}
	out := make([]whatsapp.SandboxProfile, 0, len(entries))
	for i, e := range entries {
		at := "[" + strconv.Itoa(i) + "]"
		var p whatsapp.SandboxProfile
		for k, raw := range e {
			var str string
			isString := json.Unmarshal(raw, &str) == nil
			why := ""
			switch k {
			case "jid":
				if !isString {
					why = "must be a string"
				} else {
					p.JID, why = sandboxJID(str)
				}
			case "lid":
				if p.LID = str; !isString || !store.IsLID(str) {
					why = "must be a LID (...@lid)"
				}
			case "about", "business_name", "picture_id":
				if !isString {
					why = "must be a string"
				}
				switch k {
				case "about":
					p.About = str
				case "business_name":
					p.BusinessName = str
				default:
					p.PictureID = str
				}
			case "picture":
				if !isString {
					why = "must be a JPEG, base64-encoded"
				} else {
					p.Picture, why = sandboxPicture(str)
				}
			case "picture_hidden":
				if json.Unmarshal(raw, &p.Hidden) != nil {
					why = "must be true or false"
				}
			case "business":
				var b whatsapp.BusinessProfile
				dec := json.NewDecoder(bytes.NewReader(raw))
				dec.DisallowUnknownFields()
				if err := dec.Decode(&b); err != nil || bytes.Equal(bytes.TrimSpace(raw), []byte("null")) {
					why = "must be an object of address, email, description, websites, categories, time_zone and hours ({day, mode, open, close})"
				}
				p.Business = &b
			default:
				return bad(at + ": unknown field " + strconv.Quote(k))
			}
			if why != "" {
				return bad(at + "." + k + " " + why)
			}
		}
		if p.JID == "" {
			return bad(at + ".jid is required")
		}
		if strings.HasSuffix(p.JID, "@g.us") && (p.About != "" || p.BusinessName != "" || p.Business != nil) {
			return bad(at + ": a group has a picture only")
		}
		out = append(out, p)
	}
	b, _ := json.Marshal(out)
	args["profiles"] = string(b)
	return true
}

// checkPictureChange checks the picture_change lever's fields; on
// failure it has answered.
func checkPictureChange(w http.ResponseWriter, r *http.Request, args map[string]string) bool {
	jid, why := sandboxJID(args["jid"])
	if why != "" {
		writeError(w, r, http.StatusBadRequest, "invalid", "jid "+why, "jid")
		return false
	}
	args["jid"] = jid
	if a, ok := args["author"]; ok {
		if args["author"], why = sandboxJID(a); why != "" {
			writeError(w, r, http.StatusBadRequest, "invalid", "author "+why, "author")
			return false
		}
	}
	removed := args["removed"] == "true"
	if _, ok := args["picture"]; ok == removed {
		writeError(w, r, http.StatusBadRequest, "invalid", "give picture (a base64 JPEG) for a new picture, or removed: true", "picture")
		return false
	}
	if !removed {
		if _, why := sandboxPicture(args["picture"]); why != "" {
			writeError(w, r, http.StatusBadRequest, "invalid", "picture "+why, "picture")
			return false
		}
	}
	return true
}
