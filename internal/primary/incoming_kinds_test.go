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

// eventsAbout counts the log's events of typ whose data names key (as
// key, or as wa_id).
func eventsAbout(t *testing.T, st store.Store, typ, key string) []int64 {
	t.Helper()
	var at []int64
	for _, e := range events(t, st) {
		var d struct {
			Key  string `json:"key"`
			WAID string `json:"wa_id"`
		}
		_ = e.DecodeData(&d)
		if e.Type == typ && (d.Key == key || d.WAID == key) {
			at = append(at, e.Seq)
		}
	}
	return at
}

// A primary stopped after it stored an edit (the edited message's new
// text and the edit's own record) and before it appended the events
// announcing them: the next primary appends both, once each, at the
// positions they were stored for, the log stays gapless, and WhatsApp
// delivering the edit again (it was never acknowledged) changes nothing.
// Likewise for a revoke.
func TestPrimaryKilledBetweenAnEditAndItsEvents(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		for _, kind := range []string{msg.KindEdit, msg.KindRevoke} {
			t.Run(kind, func(t *testing.T) {
				st := waStoreOn(t, db)
				sb := sandbox(t, whatsapp.SandboxConfig{DeliveredDelay: -1, ReadDelay: -1})
				var armed atomic.Bool
				killed := primaryKilledAtMark(t, st, sb, armed.Load)

				orig := sb.Inject(whatsapp.Incoming{Chat: alice, Text: "See you at 5"})
				key := alice + "/" + alice + "/" + orig.ID
				waitFor(t, "the message announced", 10*time.Second, func() (bool, string) {
					n := len(eventsAbout(t, st, "message.incoming", key))
					return n == 1, fmt.Sprint(n)
				})
				armed.Store(true)
				change := sb.Inject(whatsapp.Incoming{Chat: alice, Body: msg.Body{Kind: kind, Target: &msg.Target{WAID: orig.ID, Chat: alice}},
					Text: map[string]string{msg.KindEdit: "See you at 6"}[kind]})
				seq := killed()
				if n := eventsAbout(t, st, "message.updated", orig.ID); len(n) != 0 {
					t.Fatalf("message.updated at %v although the primary stopped before appending it", n)
				}
				stored, err := st.IncomingMessage(context.Background(), key)
				if err != nil {
					t.Fatal(err)
				}
				if (kind == msg.KindEdit && (stored.Text != "See you at 6" || len(stored.Edits) != 1)) || (kind == msg.KindRevoke && stored.RevokedAt.IsZero()) {
					t.Fatalf("after the crash the message is %+v, want it changed (stored before the events)", stored)
				}

				nextPrimary(t, st, sb)
				// Once a later message is announced, the redelivery of the
				// change (never acknowledged) was handled too.
				later := sb.Inject(whatsapp.Incoming{Chat: alice, Text: "later"})
				waitFor(t, "the later message announced", 10*time.Second, func() (bool, string) {
					n := len(eventsAbout(t, st, "message.incoming", alice+"/"+alice+"/"+later.ID))
					return n == 1, fmt.Sprint(n)
				})
				gapless(t, st)
				ups := eventsAbout(t, st, "message.updated", orig.ID)
				ins := eventsAbout(t, st, "message.incoming", alice+"/"+alice+"/"+change.ID)
				if len(ups) != 1 || ups[0] != seq || len(ins) != 1 || ins[0] != seq-1 {
					t.Errorf("the change announced at %v (message.incoming) and %v (message.updated), want once each, at %d and %d where stored",
						ins, ups, seq-1, seq)
				}
				stored, _ = st.IncomingMessage(context.Background(), key)
				if kind == msg.KindEdit && (stored.Text != "See you at 6" || len(stored.Edits) != 1) {
					t.Errorf("after the redelivery the message is %+v, want the one edit", stored)
				}
			})
		}
	})
}

// On MongoDB an edit's steps are separate writes: a primary can stop
// after the edited message was written and before the edit's own record
// was. WhatsApp delivers the edit again; it is recognised as applied
// (one old text, not two), and both events are appended then.
func TestEditStoredOnItsTargetOnlyIsNotAppliedTwice(t *testing.T) {
	st := waStore(t)
	sb := sandbox(t, whatsapp.SandboxConfig{DeliveredDelay: -1, ReadDelay: -1})
	w := &primary.WhatsApp{Cfg: waCfg(), Driver: sb, Store: st, Log: zerolog.Nop()}
	runWA(t, w, 1)
	orig := sb.Inject(whatsapp.Incoming{Chat: alice, Text: "See you at 5"})
	key := alice + "/" + alice + "/" + orig.ID
	waitFor(t, "the message stored", 10*time.Second, func() (bool, string) {
		_, err := st.IncomingMessage(context.Background(), key)
		return err == nil, fmt.Sprint(err)
	})
	// What the first try wrote before it stopped: the target, edited.
	at := time.Now().Truncate(time.Second)
	m, _ := st.IncomingMessage(context.Background(), key)
	m.Edits, m.EditedAt, m.Text = []msg.Edit{{Text: "See you at 5", At: at}}, at, "See you at 6"
	if err := st.UpdateIncoming(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	edit := sb.Inject(whatsapp.Incoming{Chat: alice, Timestamp: at, Text: "See you at 6",
		Body: msg.Body{Kind: msg.KindEdit, Target: &msg.Target{WAID: orig.ID, Chat: alice}}})
	waitFor(t, "the edit announced", 10*time.Second, func() (bool, string) {
		n := len(eventsAbout(t, st, "message.incoming", alice+"/"+alice+"/"+edit.ID))
		return n == 1, fmt.Sprint(n)
	})
	m, _ = st.IncomingMessage(context.Background(), key)
	if len(m.Edits) != 1 || m.Text != "See you at 6" {
		t.Errorf("the edited message: %q with %d old texts, want the new text and one old", m.Text, len(m.Edits))
	}
	if ups := eventsAbout(t, st, "message.updated", orig.ID); len(ups) != 1 {
		t.Errorf("message.updated at %v, want one", ups)
	}
}
