package whatsapp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"testing"
	"time"

	"app/internal/testutil"
)

// A file made gone cannot be downloaded; asked for again, the sandbox's
// phone answers with it (or says it cannot), and the answer is held like
// an incoming message: a sandbox opened anew on the same directory, as
// after a primary was killed, still delivers it, with the file.
func TestSandboxSendsAnExpiredFileAgain(t *testing.T) {
	dir := t.TempDir()
	cfg := SandboxConfig{Dir: dir, Paired: SandboxJID, MediaRetryDelay: 200 * time.Millisecond}
	var mu sync.Mutex
	var got []*MediaRetried
	connected := make(chan struct{}, 4)
	h := func(_ context.Context, ev Event) error {
		switch e := ev.(type) {
		case *SessionChanged:
			if e.Session.State == StateConnected {
				connected <- struct{}{}
			}
		case *MediaRetried:
			mu.Lock()
			got = append(got, e)
			mu.Unlock()
		}
		return nil
	}
	run := func(sb *Sandbox) func() {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- sb.Run(ctx, h) }()
		select {
		case <-connected:
		case <-time.After(10 * time.Second):
			t.Fatal("not connected within 10s")
		}
		return func() { cancel(); <-done }
	}

	a, err := NewSandbox(cfg)
	if err != nil {
		t.Fatal(err)
	}
	in := Incoming{ID: "3AGONE", Chat: "491701234567@s.whatsapp.net", Text: "photo"}
	ExpireMedia(&in, false)
	if _, err := a.Download(context.Background(), in.Media, 1<<20); !errors.Is(err, ErrMediaGone) {
		t.Fatalf("download of an expired file: %v, want ErrMediaGone", err)
	}
	failing := Incoming{ID: "3ALOST", Chat: in.Chat, Text: "lost"}
	ExpireMedia(&failing, true)
	if err := a.RetryMedia(context.Background(), &in); !errors.Is(err, ErrNotConnected) {
		t.Fatalf("RetryMedia while not running: %v, want ErrNotConnected", err)
	}
	stopA := run(a)
	// What a primary that restarted has: no handle, the retry data.
	for _, m := range []Incoming{in, failing} {
		stored := &Incoming{ID: m.ID, Chat: m.Chat, Sender: m.Chat, Media: &Media{MimeType: m.Media.MimeType, Retry: m.Media.Retry}}
		if err := a.RetryMedia(context.Background(), stored); err != nil {
			t.Fatal(err)
		}
	}
	stopA() // before the phone's answers are due

	b, err := NewSandbox(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer run(b)()
	testutil.Eventually(t, 10*time.Second, "both answers", func() (bool, string) {
		mu.Lock()
		defer mu.Unlock()
		return len(got) == 2, fmt.Sprint(len(got), " answers")
	})
	byID := map[string]*MediaRetried{got[0].ID: got[0], got[1].ID: got[1]}
	ok := byID["3AGONE"]
	if ok == nil || ok.Error != "" || ok.Media == nil || ok.Chat != in.Chat {
		t.Fatalf("answer for the photo: %+v, want its file", ok)
	}
	file, err := b.Download(context.Background(), ok.Media, 1<<20)
	if err != nil {
		t.Fatalf("download of the file sent again: %v", err)
	}
	data, _ := io.ReadAll(file)
	if string(data) != "JPEG photo" || ok.Media.Size != int64(len(data)) || ok.Media.MimeType != "image/jpeg" {
		t.Errorf("file sent again: %q (%d, %s), want the photo", data, ok.Media.Size, ok.Media.MimeType)
	}
	if lost := byID["3ALOST"]; lost == nil || lost.Error == "" || lost.Media != nil {
		t.Errorf("answer for the lost file: %+v, want an error", lost)
	}
}
