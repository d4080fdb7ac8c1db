package primary_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"app/internal/msg"
	"app/internal/primary"
	"app/internal/store"
	"app/internal/testdb"
	"app/internal/whatsapp"
)

// ownMessage stores a text we sent from the phone at sentAt (ours, so it
// can be edited and revoked) and returns its key.
func ownMessage(t *testing.T, st store.Store, waID, text string, sentAt time.Time) string {
	t.Helper()
	m := store.IncomingMessage{WAID: waID, Chat: alice, Sender: whatsapp.SandboxJID, FromMe: true, Body: msg.Body{Kind: msg.KindText},
		Text: text, SentAt: sentAt, ReceivedAt: time.Now()}
	if _, err := st.SaveIncoming(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	return alice + "/" + whatsapp.SandboxJID + "/" + waID
}

// enqueueAbout queues an edit (text) or a revoke of the message waID.
func enqueueAbout(t *testing.T, st store.Store, kind, waID, text string) store.OutboxMessage {
	t.Helper()
	m := store.OutboxMessage{Chat: alice, Text: text,
		Body: msg.Body{Kind: kind, Target: &msg.Target{WAID: waID, Chat: alice, Sender: whatsapp.SandboxJID, FromMe: true}}}
	if err := st.EnqueueMessage(context.Background(), &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func incoming(t *testing.T, st store.Store, key string) store.IncomingMessage {
	t.Helper()
	m, err := st.IncomingMessage(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// updates are the message.updated events in the log.
func updates(t *testing.T, st store.Store) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, e := range events(t, st) {
		if e.Type == "message.updated" {
			var d map[string]any
			if err := e.DecodeData(&d); err != nil {
				t.Fatal(err)
			}
			out = append(out, d)
		}
	}
	return out
}

// An edit queued in time but not sent within WhatsApp's 15 minutes (the
// primary was away, say) fails when its turn comes, with the reason, and
// is never sent.
func TestEditPastItsWindowFails(t *testing.T) {
	st := waStore(t)
	sb := sandbox(t, whatsapp.SandboxConfig{DeliveredDelay: -1, ReadDelay: -1})
	key := ownMessage(t, st, "3EB0LATE", "Meet at 5", time.Now().Add(-msg.EditWindow-time.Minute))
	edit := enqueueAbout(t, st, msg.KindEdit, "3EB0LATE", "Meet at 6")
	runWA(t, &primary.WhatsApp{Cfg: waCfg(), Driver: sb, Store: st, Log: zerolog.Nop()}, 1)

	waitFor(t, "the edit failed", 10*time.Second, statusIs(t, st, edit.ID, store.StatusFailed))
	got := message(t, st, edit.ID)
	if got.Error == nil || got.Error.Retryable || !strings.Contains(got.Error.Reason, "edit window passed") || !strings.Contains(got.Error.Reason, "15 minutes") {
		t.Errorf("the failed edit's error: %+v, want a final one saying the edit window passed", got.Error)
	}
	if n := len(sb.Sent()); n != 0 {
		t.Errorf("the sandbox got %d sends, want none", n)
	}
	if m := incoming(t, st, key); m.Text != "Meet at 5" || len(m.Edits) != 0 {
		t.Errorf("the message is %q with edits %v, want it unchanged", m.Text, m.Edits)
	}
}

// A sent edit changes the stored message: the new text, the old one kept
// in its edits; a revoke marks it deleted and keeps its content. Each is
// announced as message.updated.
func TestSentEditAndRevokeChangeTheirTarget(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		st := waStoreOn(t, db)
		sb := sandbox(t, whatsapp.SandboxConfig{DeliveredDelay: -1, ReadDelay: -1})
		key := ownMessage(t, st, "3EB0MEET", "Meet at 5", time.Now().Add(-time.Minute))
		runWA(t, &primary.WhatsApp{Cfg: waCfg(), Driver: sb, Store: st, Log: zerolog.Nop()}, 1)

		enqueueAbout(t, st, msg.KindEdit, "3EB0MEET", "Meet at 6")
		second := enqueueAbout(t, st, msg.KindEdit, "3EB0MEET", "Meet at 7")
		waitFor(t, "the edits sent", 10*time.Second, statusIs(t, st, second.ID, store.StatusSent))
		m := incoming(t, st, key)
		if m.Text != "Meet at 7" || len(m.Edits) != 2 || m.Edits[0].Text != "Meet at 5" || m.Edits[1].Text != "Meet at 6" || m.EditedAt.IsZero() {
			t.Errorf("after two edits: text %q, edits %+v, edited at %v; want the new text and both old ones, oldest first", m.Text, m.Edits, m.EditedAt)
		}
		sent := sb.Sent()
		if len(sent) != 2 || sent[0].Kind != msg.KindEdit || sent[0].Text != "Meet at 6" || sent[0].Target == nil || sent[0].Target.WAID != "3EB0MEET" {
			t.Errorf("the sandbox got %+v", sent)
		}

		revoke := enqueueAbout(t, st, msg.KindRevoke, "3EB0MEET", "")
		waitFor(t, "the revoke sent", 10*time.Second, statusIs(t, st, revoke.ID, store.StatusSent))
		if m := incoming(t, st, key); m.RevokedAt.IsZero() || m.Text != "Meet at 7" {
			t.Errorf("after the revoke: revoked at %v, text %q; want it marked, its content kept", m.RevokedAt, m.Text)
		}
		// On MongoDB the status is stored before its events are appended:
		// wait for the log to tell all three.
		want := []string{"edited:Meet at 6:1", "edited:Meet at 7:2", "revoked:Meet at 7:2"}
		var got []string
		waitFor(t, "three message.updated events", 10*time.Second, func() (bool, string) {
			got = got[:0]
			for _, u := range updates(t, st) {
				if u["key"] != key || u["wa_id"] != "3EB0MEET" || u["chat"] != alice {
					t.Errorf("message.updated %v does not name the message", u)
				}
				edits, _ := u["edits"].([]any)
				got = append(got, fmt.Sprintf("%s:%s:%d", u["change"], u["text"], len(edits)))
			}
			return len(got) >= len(want), fmt.Sprint(got)
		})
		if strings.Join(got, " ") != strings.Join(want, " ") {
			t.Errorf("message.updated events %q, want %q", got, want)
		}
	})
}

// A primary stopped after it stored a sent edit (and its target's new
// text) and before it appended the events: the next primary appends both
// the status and the message.updated event, and the target is edited once.
func TestEditAnnouncedAfterAStop(t *testing.T) {
	st := waStore(t)
	sb := sandbox(t, whatsapp.SandboxConfig{DeliveredDelay: -1, ReadDelay: -1})
	key := ownMessage(t, st, "3EB0STOP", "Meet at 5", time.Now().Add(-time.Minute))
	evA := primary.NewEventLog(st, zerolog.Nop())
	a := &primary.WhatsApp{Cfg: waCfg(), Driver: sb, Store: st, Log: zerolog.Nop(), Events: evA}
	ctxA, killA := context.WithCancel(context.Background())
	crashed := make(chan int64, 1)
	var once sync.Once
	primary.SetMarkedHook(evA, func(seq int64) { once.Do(func() { killA(); crashed <- seq }) })
	if !evA.Start(ctxA, 1) {
		t.Fatal("event log did not start")
	}
	_, stopA := runWACtx(t, ctxA, a, 1)
	edit := enqueueAbout(t, st, msg.KindEdit, "3EB0STOP", "Meet at 6")
	select {
	case <-crashed:
	case <-time.After(10 * time.Second):
		t.Fatal("the edit was never stored as sent")
	}
	stopA()
	if n := len(updates(t, st)); n != 0 {
		t.Fatalf("%d message.updated events although the primary stopped before appending", n)
	}

	evB := primary.NewEventLog(st, zerolog.Nop())
	ctxB, stopB := context.WithCancel(context.Background())
	defer stopB()
	if !evB.Start(ctxB, 2) {
		t.Fatal("event log did not start")
	}
	runWACtx(t, ctxB, &primary.WhatsApp{Cfg: waCfg(), Driver: sb, Store: st, Log: zerolog.Nop(), Events: evB}, 2)
	us := updates(t, st)
	if len(us) != 1 || us[0]["key"] != key || us[0]["change"] != "edited" || us[0]["text"] != "Meet at 6" {
		t.Errorf("message.updated events after the restart: %v, want the edit's, once", us)
	}
	if story := statusStories(t, st)[edit.ID]; strings.Join(story, " ") != "sent" {
		t.Errorf("the edit's status events %v, want sent once", story)
	}
	if m := incoming(t, st, key); m.Text != "Meet at 6" || len(m.Edits) != 1 {
		t.Errorf("the message: %q with edits %+v, want edited once", m.Text, m.Edits)
	}
	if n := len(sb.Sent()); n != 1 {
		t.Errorf("the edit was sent %d times, want once", n)
	}
}
