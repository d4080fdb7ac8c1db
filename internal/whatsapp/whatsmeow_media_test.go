package whatsapp

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/proto/waMmsRetry"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"
	"go.mau.fi/whatsmeow/util/cbcutil"
	"go.mau.fi/whatsmeow/util/gcmutil"
	"go.mau.fi/whatsmeow/util/hkdfutil"
	"google.golang.org/protobuf/proto"
)

// encryptMedia encrypts plain as WhatsApp's media servers hold a file of
// type mt under mediaKey: AES-CBC, then a 10-byte HMAC.
func encryptMedia(t *testing.T, plain, mediaKey []byte, mt whatsmeow.MediaType) (file, encSHA, sha []byte) {
	t.Helper()
	keys := hkdfutil.SHA256(mediaKey, nil, []byte(mt), 112)
	iv, cipherKey, macKey := keys[:16], keys[16:48], keys[48:80]
	ciphertext, err := cbcutil.Encrypt(cipherKey, iv, plain)
	if err != nil {
		t.Fatal(err)
	}
	mac := hmac.New(sha256.New, macKey)
	mac.Write(iv)
	mac.Write(ciphertext)
	file = append(ciphertext, mac.Sum(nil)[:10]...)
	e, s := sha256.Sum256(file), sha256.Sum256(plain)
	return file, e[:], s[:]
}

// mediaServer serves files by path, or a status for /status/<code>.
func mediaServer(t *testing.T, files map[string][]byte) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if code, ok := strings.CutPrefix(r.URL.Path, "/status/"); ok {
			n, _ := strconv.Atoi(code)
			w.WriteHeader(n)
			return
		}
		f, ok := files[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		_, _ = w.Write(f)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// driverWith is a driver whose current client is cli (never connected:
// media come over HTTP all the same).
func driverWith(cli *whatsmeow.Client) *Whatsmeow {
	d := NewWhatsmeow(WhatsmeowConfig{Log: zerolog.Nop()})
	d.client = cli
	return d
}

// A file WhatsApp's servers no longer have (403, 404, 410) is
// ErrMediaGone, so the primary asks the sender's phone; other failures
// are not.
func TestWhatsmeowDownloadGoneIsErrMediaGone(t *testing.T) {
	srv := mediaServer(t, nil)
	d := driverWith(ourClient(t))
	for code, gone := range map[int]bool{403: true, 404: true, 410: true, 500: false, 401: false} {
		img := &waE2E.ImageMessage{URL: proto.String(srv.URL + "/status/" + strconv.Itoa(code)), MediaKey: bytes.Repeat([]byte{1}, 32),
			FileEncSHA256: make([]byte, 32), FileSHA256: make([]byte, 32), FileLength: proto.Uint64(10), Mimetype: proto.String("image/jpeg")}
		_, err := d.Download(context.Background(), &Media{Size: 10, Handle: img}, 1<<20)
		if err == nil {
			t.Fatalf("%d: downloaded", code)
		}
		if errors.Is(err, ErrMediaGone) != gone {
			t.Errorf("%d: %v; ErrMediaGone %v, want %v", code, err, errors.Is(err, ErrMediaGone), gone)
		}
		if gone && !errors.Is(err, whatsmeow.DownloadHTTPError{Response: &http.Response{StatusCode: code}}) {
			t.Errorf("%d: whatsmeow's error is not kept: %v", code, err)
		}
	}
}

// What Media.Retry keeps is enough, after a restart (no handle), to
// download the file and to ask for it again; thumbnails and quotes are
// not kept.
func TestWhatsmeowMediaRetryRoundTrip(t *testing.T) {
	ctx := context.Background()
	cli := ourClient(t)
	plain := bytes.Repeat([]byte("a photo "), 300)
	key := bytes.Repeat([]byte{7}, 32)
	file, encSHA, sha := encryptMedia(t, plain, key, whatsmeow.MediaImage)
	srv := mediaServer(t, map[string][]byte{"/v/photo.enc": file})
	img := &waE2E.ImageMessage{URL: proto.String(srv.URL + "/v/photo.enc"), DirectPath: proto.String("/v/photo.enc"), MediaKey: key,
		FileEncSHA256: encSHA, FileSHA256: sha, FileLength: proto.Uint64(uint64(len(plain))), Mimetype: proto.String("image/jpeg"),
		JPEGThumbnail: bytes.Repeat([]byte{0xff}, 5000), ContextInfo: &waE2E.ContextInfo{StanzaID: proto.String("3EB0Q")}}
	info := types.MessageInfo{MessageSource: types.MessageSource{Chat: group, Sender: annaLIDDev, SenderAlt: annaPhone, IsGroup: true},
		ID: "3EB0PIC", Timestamp: time.Now()}
	d := driverWith(cli)
	in, ok := d.mapMessage(ctx, cli, delivered(info, &waE2E.Message{ImageMessage: img}))
	if !ok || in.Media == nil || len(in.Media.Retry) == 0 {
		t.Fatalf("mapped %+v", in)
	}
	if len(in.Media.Retry) > 1000 {
		t.Errorf("retry data of %d bytes: the thumbnail was kept", len(in.Media.Retry))
	}

	// After a restart: the stored record has the retry data, no handle.
	stored := &Media{MimeType: in.Media.MimeType, Size: in.Media.Size, Retry: in.Media.Retry}
	rc, err := d.Download(ctx, stored, 1<<20)
	if err != nil {
		t.Fatalf("download from the retry data: %v", err)
	}
	got, _ := io.ReadAll(rc)
	_ = rc.Close()
	if !bytes.Equal(got, plain) {
		t.Fatalf("downloaded %d bytes, want the %d of the photo", len(got), len(plain))
	}

	r, err := decodeMediaRetry(in.Media.Retry)
	if err != nil {
		t.Fatal(err)
	}
	ri, err := r.info()
	if err != nil {
		t.Fatal(err)
	}
	// The phone finds the message as WhatsApp named it: by LID here.
	if ri.ID != "3EB0PIC" || ri.Chat != group || ri.Sender != annaLIDDev || !ri.IsGroup || ri.IsFromMe {
		t.Errorf("retry names the message %+v", ri.MessageSource)
	}
	if !bytes.Equal(r.handle.GetMediaKey(), key) || r.handle.(*waE2E.ImageMessage).JPEGThumbnail != nil ||
		r.handle.(*waE2E.ImageMessage).ContextInfo != nil {
		t.Errorf("retry keeps %v", r.handle)
	}
	for _, bad := range [][]byte{nil, []byte("{"), []byte(`{"v":2}`), []byte(`{"v":1,"type":"PollCreationMessage"}`)} {
		if _, err := decodeMediaRetry(bad); err == nil {
			t.Errorf("decodeMediaRetry(%q) accepted", bad)
		}
	}
}

// The phone's answer to a media retry becomes a MediaRetried with a new
// handle at the new path (or the reason it could not); an answer we did
// not ask for is acknowledged and dropped.
func TestWhatsmeowMediaRetried(t *testing.T) {
	ctx := context.Background()
	cli := ourClient(t)
	d := driverWith(cli)
	key := bytes.Repeat([]byte{5}, 32)
	doc := &waE2E.DocumentMessage{URL: proto.String("https://mmg.whatsapp.net/old"), DirectPath: proto.String("/v/old"), MediaKey: key,
		FileName: proto.String("invoice.pdf"), Mimetype: proto.String("application/pdf"), FileLength: proto.Uint64(999), FileSHA256: []byte{9}}
	info := types.MessageInfo{MessageSource: types.MessageSource{Chat: annaLID, Sender: annaLIDDev}, ID: "3EB0DOC", Timestamp: time.Now()}
	in, _ := d.mapMessage(ctx, cli, delivered(info, &waE2E.Message{DocumentMessage: doc}))

	if err := d.RetryMedia(ctx, in); !errors.Is(err, ErrNotConnected) {
		t.Errorf("RetryMedia offline: %v, want ErrNotConnected", err)
	}
	if err := d.RetryMedia(ctx, &Incoming{ID: "x", Media: &Media{}}); err == nil {
		t.Error("RetryMedia without retry data succeeded")
	}

	answer := func(id string, n *waMmsRetry.MediaRetryNotification) *events.MediaRetry {
		plain, err := proto.Marshal(n)
		if err != nil {
			t.Fatal(err)
		}
		iv := bytes.Repeat([]byte{3}, 12)
		ct, err := gcmutil.Encrypt(hkdfutil.SHA256(key, nil, []byte("WhatsApp Media Retry Notification"), 32), iv, plain, []byte(id))
		if err != nil {
			t.Fatal(err)
		}
		return &events.MediaRetry{Ciphertext: ct, IV: iv, MessageID: types.MessageID(id), ChatID: annaLID, Timestamp: time.Now()}
	}
	var mu sync.Mutex
	var got []*MediaRetried
	fail := false
	handle := d.handler(ctx, func(_ context.Context, ev Event) error {
		mu.Lock()
		defer mu.Unlock()
		if fail {
			return errors.New("store away")
		}
		if r, ok := ev.(*MediaRetried); ok {
			got = append(got, r)
		}
		return nil
	}, cli, 1)

	if !handle(answer("3EB0DOC", &waMmsRetry.MediaRetryNotification{StanzaID: proto.String("3EB0DOC"), DirectPath: proto.String("/v/new"),
		Result: waMmsRetry.MediaRetryNotification_SUCCESS.Enum()})) || len(got) != 0 {
		t.Fatalf("an answer we did not ask for: %+v", got)
	}

	if _, _, err := d.expectRetry(in); err != nil {
		t.Fatal(err)
	}
	ok := answer("3EB0DOC", &waMmsRetry.MediaRetryNotification{StanzaID: proto.String("3EB0DOC"), DirectPath: proto.String("/v/new"),
		Result: waMmsRetry.MediaRetryNotification_SUCCESS.Enum()})
	fail = true
	if handle(ok) {
		t.Error("an answer the handler failed on was acknowledged")
	}
	fail = false
	if !handle(ok) || len(got) != 1 {
		t.Fatalf("the answer again: %+v", got)
	}
	r := got[0]
	if r.ID != "3EB0DOC" || r.Chat != anna.String() || r.Sender != anna.String() || r.Error != "" || r.Media == nil {
		t.Fatalf("got %+v", r)
	}
	h, isDoc := r.Media.Handle.(*waE2E.DocumentMessage)
	if !isDoc || h.GetDirectPath() != "/v/new" || h.URL != nil || !bytes.Equal(h.GetMediaKey(), key) {
		t.Errorf("new handle %v: want the new path, no old URL, the same key", r.Media.Handle)
	}
	if r.Media.MimeType != "application/pdf" || r.Media.FileName != "invoice.pdf" || r.Media.Size != 999 {
		t.Errorf("media %+v", r.Media)
	}
	again, err := decodeMediaRetry(r.Media.Retry)
	if err != nil || again.handle.GetDirectPath() != "/v/new" || again.Chat != annaLID.String() {
		t.Errorf("the new retry data: %+v, %v", again, err)
	}
	if doc.GetDirectPath() != "/v/old" {
		t.Error("the original message was changed")
	}
	if handle(ok); len(got) != 1 {
		t.Error("an answer delivered twice")
	}

	// The phone no longer has it, or cannot say.
	for _, e := range []*events.MediaRetry{
		{MessageID: "3EB0DOC", Error: &events.MediaRetryError{Code: 2}},
		answer("3EB0DOC", &waMmsRetry.MediaRetryNotification{StanzaID: proto.String("3EB0DOC"), Result: waMmsRetry.MediaRetryNotification_NOT_FOUND.Enum()}),
		{MessageID: "3EB0DOC", Ciphertext: []byte("not encrypted with the key"), IV: make([]byte, 12)},
	} {
		if _, _, err := d.expectRetry(in); err != nil {
			t.Fatal(err)
		}
		got = nil
		if !handle(e) || len(got) != 1 || got[0].Error == "" || got[0].Media != nil {
			t.Errorf("answer %+v: got %+v", e, got)
		}
	}
}

// A file sent again is downloaded from its new path, for every kind of
// media message, the message it was asked for left as it was.
func TestWithDirectPathEveryMediaKind(t *testing.T) {
	old, url := proto.String("/v/old"), proto.String("https://mmg.whatsapp.net/old")
	for _, x := range []whatsmeow.DownloadableMessage{
		&waE2E.ImageMessage{URL: url, DirectPath: old}, &waE2E.VideoMessage{URL: url, DirectPath: old},
		&waE2E.AudioMessage{URL: url, DirectPath: old}, &waE2E.DocumentMessage{URL: url, DirectPath: old},
		&waE2E.StickerMessage{URL: url, DirectPath: old},
	} {
		h := withDirectPath(x, "/v/new")
		u, _ := h.(interface{ GetURL() string })
		if h.GetDirectPath() != "/v/new" || u == nil || u.GetURL() != "" {
			t.Errorf("%T: path %q, URL %v; want /v/new and none", h, h.GetDirectPath(), u)
		}
		if x.GetDirectPath() != "/v/old" {
			t.Errorf("%T: the original's path became %q", x, x.GetDirectPath())
		}
	}
}
