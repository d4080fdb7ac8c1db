package httpapi

import (
	"encoding/json"
	"errors"
	_ "image/gif" // to name what a picture is instead
	_ "image/png"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/julienschmidt/httprouter"

	"app/internal/store"
	"app/internal/whatsapp"
)

// Profiles (issue 19): what WhatsApp tells of a user (about text, picture,
// business profile) and our own profile. Lookups are served from the
// store while fresh (store.ProfileFresh, a day; ?refresh=true asks
// again); the rest is asked of the primary as a command with a deadline,
// paced with the number checks (WHATSAPP_CHECKS_PER_MINUTE): a lookup the
// pace holds back is a 429 with Retry-After. A picture's image is kept in
// the media store by the primary: the answer's media_id is fetched with
// GET /v1/media/{id}.

// profileWait is a lookup's deadline: a query to WhatsApp, and for a
// picture the download of the image.
const profileWait = 20 * time.Second

// Limits of our own profile, as WhatsApp's apps keep them: a name of 25
// characters, an about text of 139 (the picture's: picture_upload.go).
const (
	maxPushName    = 25
	maxAbout       = 139
	ownPictureName = "profile-picture.jpg"
)

func (s *Server) profileRoutes(r routes) {
	r.handle("GET", "/v1/profiles/:jid", s.auth(store.ScopeMessagesRead, s.getProfile))
	r.handle("GET", "/v1/profiles/:jid/picture", s.auth(store.ScopeMessagesRead, s.getPicture))
	r.handle("GET", "/v1/profiles/:jid/business", s.auth(store.ScopeMessagesRead, s.getBusiness))
	r.handle("GET", "/v1/profile", s.auth(store.ScopeMessagesRead, s.getOwnProfile))
	r.handle("PATCH", "/v1/profile", s.auth(store.ScopeContactsWrite, s.patchOwnProfile))
	if s.Media != nil {
		r.handle("PUT", "/v1/profile/picture", s.auth(store.ScopeContactsWrite, s.putOwnPicture))
	}
	r.handle("DELETE", "/v1/profile/picture", s.auth(store.ScopeContactsWrite, s.deleteOwnPicture))
}

type profileView struct {
	JID          string    `json:"jid"`
	LID          string    `json:"lid,omitempty"`
	About        string    `json:"about,omitempty"`
	PictureID    string    `json:"picture_id,omitempty"`
	BusinessName string    `json:"business_name,omitempty"`
	PushName     string    `json:"push_name,omitempty"`
	Cached       bool      `json:"cached"`
	CheckedAt    time.Time `json:"checked_at"`
}

type pictureView struct {
	JID       string    `json:"jid"`
	ID        string    `json:"id"`
	URL       string    `json:"url,omitempty"`
	Preview   bool      `json:"preview"`
	MediaID   string    `json:"media_id,omitempty"`
	MediaURL  string    `json:"media_url,omitempty"`
	Cached    bool      `json:"cached"`
	CheckedAt time.Time `json:"checked_at"`
}

type businessView struct {
	JID string `json:"jid"`
	store.BusinessProfile
	Cached    bool      `json:"cached"`
	CheckedAt time.Time `json:"checked_at"`
}

func viewOfProfile(p store.Profile, cached bool) profileView {
	return profileView{JID: p.JID, LID: p.LID, About: p.About, PictureID: p.PictureID, BusinessName: p.BusinessName,
		PushName: p.PushName, Cached: cached, CheckedAt: p.FetchedAt}
}

// userParam is the route's user (a number, a user JID or a LID); with
// groups, a group too. On failure it has answered.
func userParam(w http.ResponseWriter, r *http.Request, ps httprouter.Params, groups bool) (string, bool) {
	jid, err := whatsapp.NormalizeRecipient(ps.ByName("jid"))
	if err == nil && !groups && strings.HasSuffix(jid, "@g.us") {
		err = errors.New("a user: a phone number in E.164 form (+491701234567), a user JID (...@s.whatsapp.net) or a LID (...@lid), not a group")
	}
	if err != nil {
		writeError(w, r, http.StatusBadRequest, "invalid", "jid must be "+err.Error(), "jid")
		return "", false
	}
	return jid, true
}

// flagQuery is the query parameter name as true or false (absent: false);
// on failure it has answered.
func flagQuery(w http.ResponseWriter, r *http.Request, name string) (bool, bool) {
	switch r.URL.Query().Get(name) {
	case "", "false":
		return false, true
	case "true":
		return true, true
	}
	writeError(w, r, http.StatusBadRequest, "invalid", name+" must be true or false", name)
	return false, false
}

// cachedProfile is jid's stored profile (found false when none is).
func (s *Server) cachedProfile(w http.ResponseWriter, r *http.Request, jid string) (store.Profile, bool, bool) {
	ctx, cancel := dbContext(r)
	defer cancel()
	got, err := s.Chats.Profiles(ctx, []string{jid})
	if err != nil {
		s.storeFailed(w, r, err)
		return store.Profile{}, false, false
	}
	for _, p := range got {
		if p.JID == jid {
			return p, true, true
		}
	}
	return store.Profile{}, false, true
}

// lookup asks the primary to look up (kind, args) and returns its result;
// otherwise it has answered, a lookup the pace held with 429.
func (s *Server) lookup(w http.ResponseWriter, r *http.Request, kind string, args map[string]string) (map[string]string, bool) {
	got, ok := s.primaryCommand(w, r, kind, args, profileWait)
	if !ok {
		return nil, false
	}
	if secs := got.Result["held_seconds"]; secs != "" {
		w.Header().Set("Retry-After", secs)
		writeError(w, r, http.StatusTooManyRequests, "paced",
			"WhatsApp lookups are paced (WHATSAPP_CHECKS_PER_MINUTE, shared with number checks): ask again in "+secs+"s", "")
		return nil, false
	}
	return got.Result, true
}

func (s *Server) getProfile(w http.ResponseWriter, r *http.Request, ps httprouter.Params) {
	jid, ok := userParam(w, r, ps, false)
	if !ok {
		return
	}
	s.serveProfile(w, r, jid)
}

// serveProfile answers with jid's profile: the stored one while fresh,
// else WhatsApp's.
func (s *Server) serveProfile(w http.ResponseWriter, r *http.Request, jid string) {
	refresh, ok := flagQuery(w, r, "refresh")
	if !ok {
		return
	}
	if !refresh {
		p, found, ok := s.cachedProfile(w, r, jid)
		if !ok {
			return
		}
		if found && p.Fresh(time.Now()) {
			writeJSON(w, http.StatusOK, viewOfProfile(p, true))
			return
		}
	}
	res, ok := s.lookup(w, r, "profiles", map[string]string{"jids": jid})
	if !ok {
		return
	}
	var got []store.Profile
	if !s.decodeResult(w, r, res, "profiles", &got) {
		return
	}
	for _, p := range got {
		if p.JID == jid {
			writeJSON(w, http.StatusOK, viewOfProfile(p, false))
			return
		}
	}
	writeError(w, r, http.StatusNotFound, "not_on_whatsapp",
		"WhatsApp told nothing of "+jid+": it has no account there (POST /v1/contacts/check tells)", "jid")
}

// missingPicture answers a picture there is none of.
func missingPicture(w http.ResponseWriter, r *http.Request, jid, why string) {
	msg := jid + " has no picture"
	if why == store.PictureHidden {
		msg = jid + " hides their picture from us (their privacy settings)"
	}
	writeError(w, r, http.StatusNotFound, why, msg, "jid")
}

func (s *Server) getPicture(w http.ResponseWriter, r *http.Request, ps httprouter.Params) {
	jid, ok := userParam(w, r, ps, true)
	if !ok {
		return
	}
	preview, ok := flagQuery(w, r, "preview")
	if !ok {
		return
	}
	refresh, ok := flagQuery(w, r, "refresh")
	if !ok {
		return
	}
	answer := func(pic store.ProfilePicture, cached bool) {
		if pic.Missing != "" {
			missingPicture(w, r, jid, pic.Missing)
			return
		}
		v := pictureView{JID: jid, ID: pic.ID, URL: pic.URL, Preview: preview, MediaID: pic.MediaID, Cached: cached, CheckedAt: pic.FetchedAt}
		if pic.MediaID != "" {
			v.MediaURL = "/v1/media/" + pic.MediaID
		}
		writeJSON(w, http.StatusOK, v)
	}
	if !refresh {
		p, found, ok := s.cachedProfile(w, r, jid)
		if !ok {
			return
		}
		kept := p.Picture
		if preview {
			kept = p.Preview
		}
		if found && kept.Fresh(time.Now()) {
			answer(*kept, true)
			return
		}
	}
	args := map[string]string{"jid": jid}
	if preview {
		args["preview"] = "true"
	}
	res, ok := s.lookup(w, r, "profile_picture", args)
	if !ok {
		return
	}
	var pic store.ProfilePicture
	if s.decodeResult(w, r, res, "picture", &pic) {
		answer(pic, false)
	}
}

func (s *Server) getBusiness(w http.ResponseWriter, r *http.Request, ps httprouter.Params) {
	jid, ok := userParam(w, r, ps, false)
	if !ok {
		return
	}
	refresh, ok := flagQuery(w, r, "refresh")
	if !ok {
		return
	}
	notBusiness := func() {
		writeError(w, r, http.StatusNotFound, "not_business", jid+" is not a business account", "jid")
	}
	if !refresh {
		p, found, ok := s.cachedProfile(w, r, jid)
		if !ok {
			return
		}
		if found && p.BusinessFresh(time.Now()) {
			if p.NotBusiness {
				notBusiness()
				return
			}
			writeJSON(w, http.StatusOK, businessView{JID: jid, BusinessProfile: *p.Business, Cached: true, CheckedAt: p.BusinessAt})
			return
		}
	}
	now := time.Now()
	res, ok := s.lookup(w, r, "business_profile", map[string]string{"jid": jid})
	if !ok {
		return
	}
	if res["missing"] == "not_business" {
		notBusiness()
		return
	}
	var bp store.BusinessProfile
	if s.decodeResult(w, r, res, "business", &bp) {
		writeJSON(w, http.StatusOK, businessView{JID: jid, BusinessProfile: bp, CheckedAt: now})
	}
}

// ownJID is our own account's JID; on failure (not paired) it has
// answered.
func (s *Server) ownJID(w http.ResponseWriter, r *http.Request) (string, bool) {
	ctx, cancel := dbContext(r)
	defer cancel()
	ws, err := s.Sessions.Session(ctx)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		s.storeFailed(w, r, err)
		return "", false
	}
	if ws.JID == "" {
		if !s.primaryConnected(w, r) {
			return "", false
		}
		writeError(w, r, http.StatusConflict, "not_paired", "no account is paired yet (POST /v1/session/pair)", "")
		return "", false
	}
	return ws.JID, true
}

func (s *Server) getOwnProfile(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	jid, ok := s.ownJID(w, r)
	if !ok {
		return
	}
	s.serveProfile(w, r, jid)
}

// profileText checks one of our own profile's texts; "" when it is fine.
func profileText(name string, v string, max int) string {
	n := utf8.RuneCountInString(v)
	switch {
	case strings.TrimSpace(v) == "":
		return name + " must not be blank"
	case n > max:
		return name + " must be at most " + strconv.Itoa(max) + " characters (it has " + strconv.Itoa(n) + "), as WhatsApp allows"
	case strings.IndexFunc(v, unicode.IsControl) >= 0:
		return name + " must be one line of text, without control characters"
	}
	return ""
}

func (s *Server) patchOwnProfile(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	var req map[string]json.RawMessage
	if !decodeJSON(w, r, &req) {
		return
	}
	args := map[string]string{}
	for k, raw := range req {
		max := map[string]int{"push_name": maxPushName, "about": maxAbout}[k]
		if max == 0 {
			writeError(w, r, http.StatusBadRequest, "invalid", "unknown field "+strconv.Quote(k)+": push_name and about can be changed", k)
			return
		}
		var v string
		if err := json.Unmarshal(raw, &v); err != nil {
			writeError(w, r, http.StatusBadRequest, "invalid", k+" must be a string", k)
			return
		}
		if msg := profileText(k, v, max); msg != "" {
			writeError(w, r, http.StatusBadRequest, "invalid", msg, k)
			return
		}
		args[k] = v
	}
	if len(args) == 0 {
		writeError(w, r, http.StatusBadRequest, "invalid", "give push_name, about or both", "push_name")
		return
	}
	if _, ok := s.primaryCommand(w, r, "set_profile", args, profileWait); !ok {
		return
	}
	res := map[string]any{"ok": true}
	for k, v := range args {
		res[k] = v
	}
	writeJSON(w, http.StatusOK, res)
}

func (s *Server) putOwnPicture(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	mediaID, ok := s.pictureUpload(w, r, ownPictureName)
	if !ok {
		return
	}
	got, ok := s.primaryCommand(w, r, "set_profile_picture", map[string]string{"media_id": mediaID}, profileWait)
	if !ok {
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"ok": true, "picture_id": got.Result["picture_id"], "media_id": mediaID})
}

func (s *Server) deleteOwnPicture(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	if _, ok := s.primaryCommand(w, r, "set_profile_picture", map[string]string{}, profileWait); !ok {
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"ok": true})
}
