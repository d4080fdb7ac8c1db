package primary_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"app/internal/msg"
	"app/internal/primary"
	"app/internal/store"
	"app/internal/testdb"
	"app/internal/whatsapp"
)

// expired is an incoming photo whose file is gone from WhatsApp's servers.
func expired(text string) whatsapp.Incoming {
	in := whatsapp.Incoming{Chat: alice, Text: text}
	whatsapp.ExpireMedia(&in, false)
	return in
}

// mediaUpdates are the message.updated events about key's media.
func mediaUpdates(t *testing.T, st store.Store, key string) []store.Event {
	t.Helper()
	var out []store.Event
	for _, e := range events(t, st) {
		var d struct{ Key, Change string }
		_ = e.DecodeData(&d)
		if e.Type == "message.updated" && d.Key == key && d.Change == "media" {
			out = append(out, e)
		}
	}
	return out
}

// A primary that stopped while a file was asked of the sender's phone
// asks again when the next one connects, from what it stored (this
// sandbox never saw the message); a file pending for over a day is left.
func TestPendingMediaIsAskedForAgainAfterARestart(t *testing.T) {
	st := waStore(t)
	ctx := context.Background()
	// This phone never answers.
	sbA := sandbox(t, whatsapp.SandboxConfig{MediaRetryDelay: time.Hour})
	a := &primary.WhatsApp{Cfg: waCfg(), Driver: sbA, Store: st, Log: zerolog.Nop()}
	_, stopA := runWA(t, a, 1)
	in := sbA.Inject(expired("the photo"))
	key := alice + "/" + alice + "/" + in.ID
	waitFor(t, "stored with its media pending", 10*time.Second, func() (bool, string) {
		m, err := st.IncomingMessage(ctx, key)
		return err == nil && m.Media != nil && m.Media.Pending && m.EventSeq != 0, fmt.Sprint(m.Media, err)
	})
	stopA()
	old := store.IncomingMessage{WAID: "3AOLD", Chat: alice, Sender: alice, Body: msg.Body{Kind: msg.KindImage},
		Media:  &store.MediaRef{MimeType: "image/jpeg", Size: 3, Pending: true, Retry: in.Media.Retry},
		SentAt: time.Now().Add(-49 * time.Hour), ReceivedAt: time.Now().Add(-48 * time.Hour)}
	if _, err := st.SaveIncoming(ctx, old); err != nil {
		t.Fatal(err)
	}

	sbB := sandbox(t, whatsapp.SandboxConfig{})
	b := &primary.WhatsApp{Cfg: waCfg(), Driver: sbB, Store: st, Log: zerolog.Nop()}
	runWA(t, b, 2)
	var m store.IncomingMessage
	waitFor(t, "the file stored", 10*time.Second, func() (bool, string) {
		m = incoming(t, st, key)
		return m.Media.FileID != "", fmt.Sprint(m.Media)
	})
	if m.Media.Pending || m.Media.Skipped != "" || m.Media.Retry != nil || m.Media.Size != int64(len("JPEG the photo")) {
		t.Errorf("media after the phone answered: %+v, want the file only", m.Media)
	}
	if data, err := st.Media(ctx, m.Media.FileID); err != nil || string(data) != "JPEG the photo" {
		t.Errorf("stored file %q, %v", data, err)
	}
	if n := len(mediaUpdates(t, st, key)); n != 1 {
		t.Errorf("%d message.updated events, want 1", n)
	}
	if o := incoming(t, st, alice+"/"+alice+"/3AOLD"); !o.Media.Pending || o.Media.FileID != "" {
		t.Errorf("the file pending for two days: %+v, want it left as it was", o.Media)
	}
}

// A primary stopped after it stored a file sent again and before it
// appended the message.updated announcing it: the next primary appends
// it, once, where it was stored, and the phone's answer, delivered again,
// changes nothing.
func TestPrimaryKilledBetweenMediaAndItsEvent(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		st := waStoreOn(t, db)
		sb := sandbox(t, whatsapp.SandboxConfig{})
		// The first mark is the message's (message.incoming, pending), the
		// second its file's.
		var marks atomic.Int32
		killed := primaryKilledAtMark(t, st, sb, func() bool { return marks.Add(1) == 2 })
		in := sb.Inject(expired("the photo"))
		key := alice + "/" + alice + "/" + in.ID
		seq := killed()
		if n := len(mediaUpdates(t, st, key)); n != 0 {
			t.Fatalf("%d message.updated events although the primary stopped before appending", n)
		}
		if m := incoming(t, st, key); m.Media.FileID == "" || m.Media.Pending {
			t.Fatalf("after the crash the media is %+v, want the file stored (before the event)", m.Media)
		}

		nextPrimary(t, st, sb)
		// A later message: once it is announced, the answer delivered
		// again before it was handled too.
		later := sb.Inject(whatsapp.Incoming{Chat: alice, Text: "later"})
		waitFor(t, "the later message announced", 10*time.Second, func() (bool, string) {
			for _, e := range events(t, st) {
				var d struct{ Key string }
				_ = e.DecodeData(&d)
				if e.Type == "message.incoming" && d.Key == alice+"/"+alice+"/"+later.ID {
					return true, ""
				}
			}
			return false, "not yet"
		})
		gapless(t, st)
		up := mediaUpdates(t, st, key)
		if len(up) != 1 || up[0].Seq != seq {
			t.Fatalf("message.updated events %v, want one, at %d where the file was stored", up, seq)
		}
		var d struct {
			Media store.MediaRef
		}
		if err := up[0].DecodeData(&d); err != nil || d.Media.FileID != incoming(t, st, key).Media.FileID {
			t.Errorf("the event's media %+v, %v; want the stored file", d.Media, err)
		}
	})
}

// Pairs the driver reports are learned; a remapping replaces the old one
// (the newest wins), and a message by the old LID alone is no longer
// taken for the number.
func TestNewestLIDMappingWins(t *testing.T) {
	st := waStore(t)
	ctx := context.Background()
	sb := sandbox(t, whatsapp.SandboxConfig{DeliveredDelay: -1, ReadDelay: -1})
	w := &primary.WhatsApp{Cfg: waCfg(), Driver: sb, Store: st, Log: zerolog.Nop()}
	runWA(t, w, 1)
	const oldLID, newLID = "201001234567@lid", "201005555555@lid"
	send := func(m whatsapp.Incoming) string {
		m = sb.Inject(m)
		return m.ID
	}
	send(whatsapp.Incoming{Chat: alice, Addr: msg.Addr{ChatPN: alice, ChatLID: oldLID, SenderPN: alice, SenderLID: oldLID}, Text: "one"})
	send(whatsapp.Incoming{Chat: alice, Addr: msg.Addr{ChatPN: alice, ChatLID: newLID, SenderPN: alice, SenderLID: newLID}, Text: "two"})
	id := send(whatsapp.Incoming{Chat: oldLID, Text: "by the old LID"})
	waitFor(t, "the third message stored", 10*time.Second, func() (bool, string) {
		_, err := st.IncomingMessage(ctx, oldLID+"/"+oldLID+"/"+id)
		return err == nil, fmt.Sprint(err)
	})
	if p, err := st.LIDPair(ctx, alice); err != nil || p.LID != newLID {
		t.Errorf("alice's pair %+v, %v; want the new LID", p, err)
	}
	if c, err := st.Chat(ctx, alice); err != nil || c.LID != newLID || c.PN != alice {
		t.Errorf("alice's chat %+v, %v; want the new LID", c, err)
	}
	m := incoming(t, st, oldLID+"/"+oldLID+"/"+id)
	if m.ChatPN != "" || m.ChatLID != oldLID {
		t.Errorf("the old LID's message %+v, want it by the LID alone", m.Addr)
	}
	// A reaction naming alice's message by her LID names it by the number,
	// as the message was stored.
	two, err := st.IncomingMessages(ctx, alice, 10)
	if err != nil || len(two) != 2 {
		t.Fatalf("alice's chat holds %d messages, %v", len(two), err)
	}
	r := send(whatsapp.Incoming{Chat: newLID, Body: msg.Body{Kind: msg.KindReaction, Reaction: "👍",
		Target: &msg.Target{WAID: two[1].WAID, Chat: newLID, Sender: newLID}}})
	waitFor(t, "the reaction stored", 10*time.Second, func() (bool, string) {
		_, err := st.IncomingMessage(ctx, alice+"/"+alice+"/"+r)
		return err == nil, fmt.Sprint(err)
	})
	if got := incoming(t, st, alice+"/"+alice+"/"+r).Target; got == nil || got.Chat != alice || got.Sender != alice {
		t.Errorf("the reaction's target %+v, want alice's message by her number", got)
	}
}
