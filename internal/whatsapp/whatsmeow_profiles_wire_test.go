package whatsapp

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/appstate"
	waBinary "go.mau.fi/whatsmeow/binary"
	"go.mau.fi/whatsmeow/proto/waServerSync"
	"go.mau.fi/whatsmeow/proto/waSyncAction"
	"go.mau.fi/whatsmeow/proto/waVnameCert"
	wmstore "go.mau.fi/whatsmeow/store"
	"go.mau.fi/whatsmeow/types"
	"google.golang.org/protobuf/proto"
)

// profileGoldenPrefix starts the names of the profile calls' golden files
// in testdata/golden_iq (the group test leaves them to this one).
const profileGoldenPrefix = "profile_"

// profileNamespaces are the IQ namespaces of the profile calls.
var profileNamespaces = []string{"usync", "w:profile:picture", "w:biz", "status", "w:sync:app:state"}

// profileIQs are the IQs of profile calls the client sent since the last
// call (of this or groupIQs).
func (f *fakeWhatsApp) profileIQs() []*waBinary.Node {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []*waBinary.Node
	for _, iq := range f.iqs {
		if ns, _ := iq.Attrs["xmlns"].(string); slices.Contains(profileNamespaces, ns) {
			out = append(out, iq)
		}
	}
	f.iqs = nil
	return out
}

// profileXML is an IQ as XML as xmlOf makes it, with what whatsmeow draws
// at random in profile calls replaced too: a usync's sid, an app-state
// patch (encrypted with a random IV, stamped with the time; the test
// decrypts it instead).
func profileXML(n *waBinary.Node) string {
	c := profileNormalized(*n)
	return xmlOf(&c)
}

func profileNormalized(n waBinary.Node) waBinary.Node {
	attrs := waBinary.Attrs{}
	for k, v := range n.Attrs {
		attrs[k] = v
	}
	if _, ok := attrs["sid"]; ok && n.Tag == "usync" {
		attrs["sid"] = "SID"
	}
	n.Attrs = attrs
	if n.Tag == "patch" {
		n.Content = "PATCH"
	}
	if kids, ok := n.Content.([]waBinary.Node); ok {
		out := make([]waBinary.Node, len(kids))
		for i, k := range kids {
			out[i] = profileNormalized(k)
		}
		n.Content = out
	}
	return n
}

// fakeCDN serves pictures as WhatsApp's CDN would, on a local TLS
// listener: pictureHTTP (with its production redirect check) dials it for
// every host, so URLs keep WhatsApp's hosts and pass pictureURL as they
// are. seen lists the requests (host and path).
type fakeCDN struct {
	mu   sync.Mutex
	seen []string
}

func newFakeCDN(t *testing.T, h http.HandlerFunc) *fakeCDN {
	t.Helper()
	c := &fakeCDN{}
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.mu.Lock()
		c.seen = append(c.seen, r.Host+r.URL.Path)
		c.mu.Unlock()
		h(w, r)
	}))
	t.Cleanup(srv.Close)
	tr := srv.Client().Transport.(*http.Transport).Clone()
	addr := srv.Listener.Addr().String()
	tr.DialContext = func(ctx context.Context, network, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, network, addr)
	}
	tr.TLSClientConfig.ServerName = "example.com" // httptest's certificate
	saved := pictureHTTP
	pictureHTTP = newPictureClient(tr)
	t.Cleanup(func() { pictureHTTP = saved })
	return c
}

func (c *fakeCDN) requests() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.seen)
}

// A usync answer as WhatsApp gives it: the query's sid back, the
// protocols answered, one user element each.
func usyncAnswer(iq *waBinary.Node, users ...waBinary.Node) *waBinary.Node {
	q, _ := iq.GetOptionalChildByTag("usync")
	return iqResult(iq, waBinary.Node{Tag: "usync",
		Attrs: waBinary.Attrs{"sid": q.Attrs["sid"], "mode": "full", "context": "background", "index": "0", "last": "true"},
		Content: []waBinary.Node{
			{Tag: "result", Content: []waBinary.Node{{Tag: "business"}, {Tag: "status"}, {Tag: "picture"}, {Tag: "devices"}, {Tag: "lid"}}},
			{Tag: "list", Content: users},
		}})
}

func usyncUser(jid types.JID, about string, pictureID string, lid types.JID, business []byte) waBinary.Node {
	kids := []waBinary.Node{{Tag: "business"}}
	if business != nil {
		kids[0].Content = []waBinary.Node{{Tag: "verified_name", Attrs: waBinary.Attrs{"v": "1"}, Content: business}}
	}
	status := waBinary.Node{Tag: "status", Attrs: waBinary.Attrs{"t": "1700000000"}}
	if about != "" {
		status.Content = []byte(about)
	}
	picture := waBinary.Node{Tag: "picture"}
	if pictureID != "" {
		picture.Attrs = waBinary.Attrs{"id": pictureID}
	}
	lidNode := waBinary.Node{Tag: "lid"}
	if !lid.IsEmpty() {
		lidNode.Attrs = waBinary.Attrs{"val": lid}
	}
	kids = append(kids, status, picture,
		waBinary.Node{Tag: "devices", Content: []waBinary.Node{{Tag: "device-list", Content: []waBinary.Node{
			{Tag: "device", Attrs: waBinary.Attrs{"id": "0"}}}}}},
		lidNode)
	return waBinary.Node{Tag: "user", Attrs: waBinary.Attrs{"jid": jid}, Content: kids}
}

// verifiedName is a business's verified-name certificate as usync carries
// it.
func verifiedName(t *testing.T, name string) []byte {
	t.Helper()
	details, err := proto.Marshal(&waVnameCert.VerifiedNameCertificate_Details{
		Serial: proto.Uint64(4242), Issuer: proto.String("smb:wa"), VerifiedName: proto.String(name)})
	if err != nil {
		t.Fatal(err)
	}
	cert, err := proto.Marshal(&waVnameCert.VerifiedNameCertificate{Details: details, Signature: make([]byte, 64)})
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

// businessAnswer is WhatsApp's business profile of a bakery (the shape of
// whatsmeow's PR #559 log, with a description and website whatsmeow does
// not read).
func businessAnswer(iq *waBinary.Node) *waBinary.Node {
	q, _ := iq.GetOptionalChildByTag("business_profile", "profile")
	text := func(tag, s string) waBinary.Node { return waBinary.Node{Tag: tag, Content: []byte(s)} }
	hours := func(day, mode, open, closing string) waBinary.Node {
		return waBinary.Node{Tag: "business_hours_config", Attrs: waBinary.Attrs{"day_of_week": day, "mode": mode, "open_time": open, "close_time": closing}}
	}
	return iqResult(iq, waBinary.Node{Tag: "business_profile", Content: []waBinary.Node{{Tag: "profile",
		Attrs: waBinary.Attrs{"jid": q.Attrs["jid"], "tag": "2815578256"},
		Content: []waBinary.Node{
			text("address", "Hauptstr. 1, 10115 Berlin"),
			text("description", "Bread since 1921"),
			text("website", "https://baeckerei.example"),
			text("email", "info@baeckerei.example"),
			{Tag: "business_hours", Attrs: waBinary.Attrs{"timezone": "Europe/Berlin"}, Content: []waBinary.Node{
				hours("mon", "specific_hours", "420", "1080"),
				hours("sat", "specific_hours", "480", "750"),
				hours("sun", "appointment_only", "0", "0"),
				hours("fri", "open_24h", "0", "0"),
			}},
			{Tag: "categories", Content: []waBinary.Node{
				{Tag: "category", Attrs: waBinary.Attrs{"id": "133436743388217"}, Content: []byte("Bakery")},
				{Tag: "category", Attrs: waBinary.Attrs{"id": "1022050661163852"}, Content: []byte("Café")},
			}},
			{Tag: "profile_options", Content: []waBinary.Node{text("commerce_experience", "none")}},
		}}}})
}

// pushNameServer is WhatsApp's side of an app-state patch: it takes the
// patch (or refuses it), then, when the client fetches the collection,
// hands the patch back numbered as the collection's next version, as
// WhatsApp hands every device the patches it took.
type pushNameServer struct {
	mu      sync.Mutex
	patch   []byte
	refuse  bool
	version uint64
}

func (s *pushNameServer) answer(iq *waBinary.Node) *waBinary.Node {
	if iq.Attrs["xmlns"] != "w:sync:app:state" {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	coll, _ := iq.GetOptionalChildByTag("sync", "collection")
	name := coll.Attrs["name"]
	if patch, ok := coll.GetOptionalChildByTag("patch"); ok {
		if s.refuse {
			return iqResult(iq, waBinary.Node{Tag: "sync", Content: []waBinary.Node{{Tag: "collection",
				Attrs:   waBinary.Attrs{"name": name, "type": "error"},
				Content: []waBinary.Node{{Tag: "error", Attrs: waBinary.Attrs{"code": "400", "text": "bad-request"}}}}}})
		}
		s.patch, _ = patch.Content.([]byte)
		s.version++
		return iqResult(iq, waBinary.Node{Tag: "sync", Content: []waBinary.Node{{Tag: "collection",
			Attrs: waBinary.Attrs{"name": name, "version": s.version}}}})
	}
	var p waServerSync.SyncdPatch
	if err := proto.Unmarshal(s.patch, &p); err != nil {
		return iqError(iq, 500, "internal-server-error")
	}
	p.Version = &waServerSync.SyncdVersion{Version: proto.Uint64(s.version)}
	raw, err := proto.Marshal(&p)
	if err != nil {
		return iqError(iq, 500, "internal-server-error")
	}
	return iqResult(iq, waBinary.Node{Tag: "sync", Content: []waBinary.Node{{Tag: "collection",
		Attrs:   waBinary.Attrs{"name": name, "version": s.version, "has_more_patches": false},
		Content: []waBinary.Node{{Tag: "patches", Content: []waBinary.Node{{Tag: "patch", Content: raw}}}}}}})
}

func (s *pushNameServer) taken() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.patch
}

// decodePatch opens an app-state patch with keyData, as another device
// of the account would: the indexes and values of its mutations.
func decodePatch(t *testing.T, keyID, keyData, raw []byte) (indexes [][]string, values []*waSyncAction.SyncActionValue) {
	t.Helper()
	var p waServerSync.SyncdPatch
	if err := proto.Unmarshal(raw, &p); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(p.GetKeyID().GetID(), keyID) {
		t.Fatalf("patch under key %x, want %x", p.GetKeyID().GetID(), keyID)
	}
	keys, err := hkdf.Key(sha256.New, keyData, nil, "WhatsApp Mutation Keys", 160)
	if err != nil {
		t.Fatal(err)
	}
	block, err := aes.NewCipher(keys[32:64])
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range p.GetMutations() {
		blob := m.GetRecord().GetValue().GetBlob()
		if len(blob) < 16+32+aes.BlockSize || m.GetOperation() != waServerSync.SyncdMutation_SET {
			t.Fatalf("mutation %v", m)
		}
		iv, sealed := blob[:16], blob[16:len(blob)-32]
		plain := make([]byte, len(sealed))
		cipher.NewCBCDecrypter(block, iv).CryptBlocks(plain, sealed)
		pad := int(plain[len(plain)-1])
		if pad == 0 || pad > aes.BlockSize {
			t.Fatalf("bad padding %d", pad)
		}
		var data waSyncAction.SyncActionData
		if err := proto.Unmarshal(plain[:len(plain)-pad], &data); err != nil {
			t.Fatal(err)
		}
		var index []string
		if err := json.Unmarshal(data.GetIndex(), &index); err != nil {
			t.Fatal(err)
		}
		indexes, values = append(indexes, index), append(values, data.GetValue())
	}
	return indexes, values
}

// Every profile call goes to WhatsApp as the golden file says, IQ for IQ
// (what whatsmeow draws at random aside), and WhatsApp's answer, a
// refusal included, comes back as the caller would expect it. The server
// is a fake (whatsmeow_fakeserver_test.go), the client and the wire are
// whatsmeow's own. -update rewrites the files.
func TestWhatsmeowProfileIQs(t *testing.T) {
	ctx := context.Background()
	cli := ourClient(t)
	cli.Store.PushName = "Support"
	f := newFakeWhatsApp(t, cli)
	d := driverWith(cli)
	shop := types.NewJID("4930123456", types.DefaultUserServer)
	jpeg := []byte{0xff, 0xd8, 0xff, 0xe0, 0, 0x10, 'J', 'F', 'I', 'F', 0, 0xff, 0xd9}
	pictureURL := "https://pps.whatsapp.net/v/t61.24694-24/11111_n.jpg?ccb=11-4&oh=01_Q5&oe=6800AAAA&_nc_cat=1"
	previewURL := "https://pps.whatsapp.net/v/t61.24694-24/11111_n.jpg?stp=dst-jpg_s96x96&ccb=11-4&oh=01_Q5&oe=6800AAAA"
	cdn := newFakeCDN(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v/t61.24694-24/11111_n.jpg" {
			http.NotFound(w, r)
			return
		}
		_, _ = w.Write(jpeg)
	})
	keyID, keyData := []byte{0, 0, 0, 0, 0x2a, 0x01}, bytes.Repeat([]byte{7}, 32)
	pushNames := &pushNameServer{}

	refuse := func(code int, text string) func(*waBinary.Node) *waBinary.Node {
		return func(iq *waBinary.Node) *waBinary.Node { return iqError(iq, code, text) }
	}
	pictureAnswer := func(iq *waBinary.Node) *waBinary.Node {
		q, _ := iq.GetOptionalChildByTag("picture")
		url := pictureURL
		if q.Attrs["type"] == "preview" {
			url = previewURL
		}
		return iqResult(iq, waBinary.Node{Tag: "picture", Attrs: waBinary.Attrs{"id": "1700000001", "type": q.Attrs["type"],
			"url": url, "direct_path": strings.TrimPrefix(url, "https://pps.whatsapp.net")}})
	}
	wantErr := func(t *testing.T, err, want error) {
		t.Helper()
		if !errors.Is(err, want) {
			t.Errorf("error %v, want %v", err, want)
		}
	}
	noErr := func(t *testing.T, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	fetch := func(t *testing.T, p Picture) []byte {
		t.Helper()
		rd, err := d.FetchPicture(ctx, p, 1<<20)
		noErr(t, err)
		defer rd.Close()
		b, err := io.ReadAll(rd)
		noErr(t, err)
		return b
	}

	cases := []struct {
		name   string
		before func(t *testing.T)
		answer func(iq *waBinary.Node) *waBinary.Node
		run    func(t *testing.T)
	}{
		{name: "profiles", answer: func(iq *waBinary.Node) *waBinary.Node {
			return usyncAnswer(iq,
				usyncUser(anna, "Hey there", "1700000001", annaLID, nil),
				usyncUser(bobPN, "", "", bobLID, nil), // about and picture hidden from us
				usyncUser(shop, "Fresh bread daily", "1700000002", types.EmptyJID, verifiedName(t, "Bäckerei Schmidt")),
				usyncUser(ourPN, "At work", "", ourLID.ToNonAD(), nil))
		}, run: func(t *testing.T) {
			got, err := d.Profiles(ctx, []string{anna.String(), bobPN.String(), shop.String(), ourPN.String()})
			noErr(t, err)
			slices.SortFunc(got, func(a, b Profile) int { return strings.Compare(a.JID, b.JID) })
			want := []Profile{
				{JID: ourPN.String(), LID: ourLID.ToNonAD().String(), About: "At work", PushName: "Support"},
				{JID: anna.String(), LID: annaLID.String(), About: "Hey there", PictureID: "1700000001"},
				{JID: bobPN.String(), LID: bobLID.String()},
				{JID: shop.String(), About: "Fresh bread daily", PictureID: "1700000002", BusinessName: "Bäckerei Schmidt"},
			}
			if jsonOf(t, got) != jsonOf(t, want) {
				t.Errorf("profiles %s", jsonOf(t, got))
			}
			// whatsmeow learns the LIDs it is told: Bob's from now on.
			if lid, err := cli.Store.LIDs.GetLIDForPN(ctx, bobPN); err != nil || lid != bobLID {
				t.Errorf("Bob's LID in whatsmeow's map: %v, %v", lid, err)
			}
		}},
		{name: "profiles_not_a_user", run: func(t *testing.T) {
			if _, err := d.Profiles(ctx, []string{group.String()}); err == nil {
				t.Error("a group's profile was asked")
			}
		}},
		{name: "profile_picture", answer: pictureAnswer, run: func(t *testing.T) {
			got, err := d.ProfilePicture(ctx, anna.String(), false)
			noErr(t, err)
			if got != (Picture{ID: "1700000001", URL: pictureURL}) {
				t.Errorf("picture %+v", got)
			}
			if b := fetch(t, got); !bytes.Equal(b, jpeg) {
				t.Errorf("fetched %x", b)
			}
		}},
		{name: "profile_picture_preview", answer: pictureAnswer, run: func(t *testing.T) {
			got, err := d.ProfilePicture(ctx, anna.String(), true)
			noErr(t, err)
			if got != (Picture{ID: "1700000001", URL: previewURL, Preview: true}) {
				t.Errorf("picture %+v", got)
			}
			if b := fetch(t, got); !bytes.Equal(b, jpeg) {
				t.Errorf("fetched %x", b)
			}
		}},
		{name: "profile_picture_group", answer: pictureAnswer, run: func(t *testing.T) {
			got, err := d.ProfilePicture(ctx, group.String(), false)
			noErr(t, err)
			if got.ID != "1700000001" {
				t.Errorf("picture %+v", got)
			}
		}},
		{name: "profile_picture_not_set", answer: refuse(404, "item-not-found"), run: func(t *testing.T) {
			_, err := d.ProfilePicture(ctx, anna.String(), false)
			wantErr(t, err, ErrNoPicture)
		}},
		{name: "profile_picture_not_set_204", answer: func(iq *waBinary.Node) *waBinary.Node {
			return iqResult(iq, waBinary.Node{Tag: "picture", Attrs: waBinary.Attrs{"status": "204"}})
		}, run: func(t *testing.T) {
			_, err := d.ProfilePicture(ctx, anna.String(), false)
			wantErr(t, err, ErrNoPicture)
		}},
		{name: "profile_picture_hidden", answer: refuse(401, "not-authorized"), run: func(t *testing.T) {
			_, err := d.ProfilePicture(ctx, bobPN.String(), false)
			wantErr(t, err, ErrPictureHidden)
		}},
		{name: "business_profile", answer: businessAnswer, run: func(t *testing.T) {
			got, err := d.BusinessProfile(ctx, shop.String())
			noErr(t, err)
			want := BusinessProfile{JID: shop.String(), Address: "Hauptstr. 1, 10115 Berlin", Email: "info@baeckerei.example",
				// whatsmeow does not read the description and website.
				Categories: []string{"Bakery", "Café"}, TimeZone: "Europe/Berlin",
				Hours: []BusinessHours{{Day: "mon", Mode: "specific_hours", Open: "07:00", Close: "18:00"},
					{Day: "sat", Mode: "specific_hours", Open: "08:00", Close: "12:30"},
					{Day: "sun", Mode: "appointment_only"}, {Day: "fri", Mode: "open_24h"}}}
			if jsonOf(t, got) != jsonOf(t, want) {
				t.Errorf("profile %s", jsonOf(t, got))
			}
		}},
		// WhatsApp answers for a user who is no business with a
		// business_profile that holds no profile.
		{name: "business_profile_not_business", answer: func(iq *waBinary.Node) *waBinary.Node {
			return iqResult(iq, waBinary.Node{Tag: "business_profile"})
		}, run: func(t *testing.T) {
			_, err := d.BusinessProfile(ctx, anna.String())
			wantErr(t, err, ErrNotBusiness)
		}},
		// A refusal is a failure, not a verdict on the account.
		{name: "business_profile_refused", answer: refuse(404, "item-not-found"), run: func(t *testing.T) {
			_, err := d.BusinessProfile(ctx, anna.String())
			if err == nil || errors.Is(err, ErrNotBusiness) {
				t.Errorf("error %v, want a failure", err)
			}
		}},
		{name: "set_about", run: func(t *testing.T) {
			noErr(t, d.SetAbout(ctx, "Open 9–17, Mon–Fri"))
		}},
		{name: "set_about_refused", answer: refuse(400, "bad-request"), run: func(t *testing.T) {
			err := d.SetAbout(ctx, strings.Repeat("x", 140))
			if err == nil || errors.Is(err, ErrNotConnected) {
				t.Errorf("error %v, want WhatsApp's refusal", err)
			}
		}},
		{name: "set_profile_picture", answer: func(iq *waBinary.Node) *waBinary.Node {
			return iqResult(iq, waBinary.Node{Tag: "picture", Attrs: waBinary.Attrs{"id": "1740831000"}})
		}, run: func(t *testing.T) {
			id, err := d.SetProfilePicture(ctx, jpeg)
			noErr(t, err)
			if id != "1740831000" {
				t.Errorf("id %q", id)
			}
		}},
		{name: "remove_profile_picture", run: func(t *testing.T) {
			id, err := d.SetProfilePicture(ctx, nil)
			noErr(t, err)
			if id != "" {
				t.Errorf("id %q after a removal", id)
			}
		}},
		{name: "set_profile_picture_not_acceptable", answer: refuse(406, "not-acceptable"), run: func(t *testing.T) {
			_, err := d.SetProfilePicture(ctx, []byte("not a jpeg"))
			wantErr(t, err, whatsmeow.ErrInvalidImageFormat)
		}},
		// Before the phone sent the app-state keys (just after pairing),
		// whatsmeow cannot write a patch: nothing goes out.
		{name: "set_push_name_no_keys", run: func(t *testing.T) {
			if err := d.SetPushName(ctx, "Lisa's Shop"); err == nil {
				t.Error("set without app-state keys")
			}
			if cli.Store.PushName != "Support" {
				t.Errorf("push name %q", cli.Store.PushName)
			}
		}},
		{name: "set_push_name", before: func(t *testing.T) {
			noErr(t, cli.Store.AppStateKeys.PutAppStateSyncKey(ctx, keyID, wmstore.AppStateSyncKey{
				Data: keyData, Fingerprint: []byte{1}, Timestamp: 1740830000}))
		}, answer: pushNames.answer, run: func(t *testing.T) {
			noErr(t, d.SetPushName(ctx, "Lisa's Shop"))
			indexes, values := decodePatch(t, keyID, keyData, pushNames.taken())
			if len(values) != 1 || !slices.Equal(indexes[0], []string{appstate.IndexSettingPushName}) ||
				values[0].GetPushNameSetting().GetName() != "Lisa's Shop" {
				t.Errorf("patch %v %v", indexes, values)
			}
			// whatsmeow took WhatsApp's copy of the patch (its MACs
			// check out) and keeps the name.
			version, _, err := cli.Store.AppState.GetAppStateVersion(ctx, string(appstate.WAPatchCriticalBlock))
			if err != nil || version != 1 {
				t.Errorf("critical_block at version %d, %v", version, err)
			}
			if cli.Store.PushName != "Lisa's Shop" {
				t.Errorf("push name %q", cli.Store.PushName)
			}
		}},
		{name: "set_push_name_refused", before: func(t *testing.T) {
			pushNames.mu.Lock()
			pushNames.refuse = true
			pushNames.mu.Unlock()
		}, answer: pushNames.answer, run: func(t *testing.T) {
			wantErr(t, d.SetPushName(ctx, "Other"), whatsmeow.ErrAppStateUpdate)
			if cli.Store.PushName != "Lisa's Shop" {
				t.Errorf("push name %q after a refusal", cli.Store.PushName)
			}
		}},
	}

	if *update {
		if err := os.MkdirAll(goldenIQDir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	names := map[string]bool{}
	for _, c := range cases {
		file := profileGoldenPrefix + c.name + ".xml"
		if strings.HasPrefix(c.name, profileGoldenPrefix) {
			file = c.name + ".xml"
		}
		names[file] = true
		t.Run(c.name, func(t *testing.T) {
			if c.before != nil {
				c.before(t)
			}
			f.answerWith(c.answer)
			f.profileIQs() // only this call's
			c.run(t)
			var lines []string
			for _, iq := range f.profileIQs() {
				lines = append(lines, profileXML(iq))
			}
			got := strings.Join(lines, "\n") + "\n"
			checkGoldenIQ(t, file, got)
		})
	}
	if reqs := cdn.requests(); len(reqs) != 2 {
		t.Errorf("CDN requests %v, want the picture and its preview", reqs)
	}
	entries, err := os.ReadDir(goldenIQDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), profileGoldenPrefix) && !names[e.Name()] {
			t.Errorf("%s/%s belongs to no case", goldenIQDir, e.Name())
		}
	}
}

// Offline (never connected, or the connection lost), every profile call
// is ErrNotConnected, and nothing goes to WhatsApp.
func TestWhatsmeowProfilesOffline(t *testing.T) {
	ctx := context.Background()
	calls := map[string]func(d *Whatsmeow) error{
		"Profiles":       func(d *Whatsmeow) error { _, err := d.Profiles(ctx, []string{anna.String()}); return err },
		"ProfilePicture": func(d *Whatsmeow) error { _, err := d.ProfilePicture(ctx, anna.String(), false); return err },
		"BusinessProfile": func(d *Whatsmeow) error {
			_, err := d.BusinessProfile(ctx, anna.String())
			return err
		},
		"SetPushName":       func(d *Whatsmeow) error { return d.SetPushName(ctx, "x") },
		"SetAbout":          func(d *Whatsmeow) error { return d.SetAbout(ctx, "x") },
		"SetProfilePicture": func(d *Whatsmeow) error { _, err := d.SetProfilePicture(ctx, nil); return err },
	}
	lost := ourClient(t)
	f := newFakeWhatsApp(t, lost)
	lost.Disconnect()
	drivers := map[string]*Whatsmeow{
		"no client":       NewWhatsmeow(WhatsmeowConfig{}),
		"never connected": driverWith(ourClient(t)),
		"connection lost": driverWith(lost),
	}
	f.profileIQs()
	for dn, d := range drivers {
		for cn, call := range calls {
			if err := call(d); !errors.Is(err, ErrNotConnected) {
				t.Errorf("%s, %s: %v, want ErrNotConnected", dn, cn, err)
			}
		}
	}
	if sent := f.profileIQs(); len(sent) > 0 {
		t.Errorf("sent while offline: %v", sent)
	}
}

// FetchPicture reads only from WhatsApp's CDN over https (a redirect
// included) and at most maxBytes, however the CDN sends it; a picture the
// CDN no longer has is ErrMediaGone.
func TestWhatsmeowFetchPicture(t *testing.T) {
	ctx := context.Background()
	d := driverWith(ourClient(t))
	img := bytes.Repeat([]byte{0xab}, 1000)
	cdn := newFakeCDN(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/pic.jpg":
			_, _ = w.Write(img)
		case "/streamed.jpg": // no length: chunked
			_, _ = w.Write(img[:10])
			w.(http.Flusher).Flush()
			_, _ = w.Write(img[10:])
		case "/moved.jpg":
			http.Redirect(w, r, "https://mmg.whatsapp.net/pic.jpg", http.StatusFound)
		case "/away.jpg":
			http.Redirect(w, r, "https://evil.example.com/pic.jpg", http.StatusFound)
		case "/plain.jpg":
			http.Redirect(w, r, "http://pps.whatsapp.net/pic.jpg", http.StatusFound)
		default:
			http.NotFound(w, r)
		}
	})
	read := func(url string, maxBytes int64) ([]byte, error) {
		rd, err := d.FetchPicture(ctx, Picture{ID: "1", URL: url}, maxBytes)
		if err != nil {
			return nil, err
		}
		defer rd.Close()
		return io.ReadAll(rd)
	}

	for _, url := range []string{"https://pps.whatsapp.net/pic.jpg", "https://pps.whatsapp.net/streamed.jpg", "https://pps.whatsapp.net/moved.jpg"} {
		if got, err := read(url, int64(len(img))); err != nil || !bytes.Equal(got, img) {
			t.Errorf("%s: %d bytes, %v", url, len(got), err)
		}
	}
	for _, url := range []string{"https://pps.whatsapp.net/pic.jpg", "https://pps.whatsapp.net/streamed.jpg"} {
		if _, err := read(url, int64(len(img))-1); !errors.Is(err, errPictureTooLarge) {
			t.Errorf("%s one byte over: %v, want errPictureTooLarge", url, err)
		}
	}
	if _, err := read("https://pps.whatsapp.net/expired.jpg", 1<<20); !errors.Is(err, ErrMediaGone) {
		t.Errorf("expired: %v, want ErrMediaGone", err)
	}
	if _, err := read("https://pps.whatsapp.net/pic.jpg", 0); err == nil {
		t.Error("read without a limit")
	}
	before := len(cdn.requests())
	for _, url := range []string{"http://pps.whatsapp.net/pic.jpg", "https://evil.example.com/pic.jpg",
		"https://pps.whatsapp.net.evil.example.com/pic.jpg", "https://127.0.0.1/pic.jpg"} {
		if _, err := read(url, 1<<20); err == nil {
			t.Errorf("%s: fetched", url)
		}
	}
	if reqs := cdn.requests(); len(reqs) != before {
		t.Errorf("refused URLs were asked for: %v", reqs[before:])
	}
	for _, url := range []string{"https://pps.whatsapp.net/away.jpg", "https://pps.whatsapp.net/plain.jpg"} {
		if _, err := read(url, 1<<20); err == nil {
			t.Errorf("%s: followed the redirect", url)
		}
	}
	for _, r := range cdn.requests() {
		if !strings.HasSuffix(strings.Split(r, "/")[0], "whatsapp.net") {
			t.Errorf("asked %s", r)
		}
	}
}
