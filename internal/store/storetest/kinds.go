package storetest

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"

	"app/internal/msg"
	"app/internal/store"
)

var (
	_ = add("MessageKindsKeepEveryPart", testMessageKindsKeepEveryPart)
	_ = add("IncomingFoundByChatAndWhatsAppID", testIncomingFoundByChatAndWhatsAppID)
)

// Every part a kind of message has comes back as it was stored, queued or
// received: a location's coordinates, contact cards, a poll, a reaction's
// target, mentions, the number and LID, the edits and the revoke.
func testMessageKindsKeepEveryPart(t *testing.T, h Harness) {
	st := h.Open(t)
	ctx := context.Background()
	at := ms(1_750_000_000_000)
	body := msg.Body{Kind: msg.KindPoll, Mentions: []string{bob}, Forwarded: true,
		Location: &msg.Location{Latitude: 52.520008, Longitude: -13.404954, Name: "Tor", Address: "Pariser Platz"},
		Contacts: []msg.Contact{{Name: "Bob", Phones: []string{"+4915112345678"}, VCard: "BEGIN:VCARD\nEND:VCARD"}},
		Poll:     &msg.Poll{Question: "Lunch?", Options: []string{"yes", "no"}, Selectable: 1},
		Vote:     []string{"yes"}, Reaction: "👍",
		Target: &msg.Target{ID: "msg_1", WAID: "3EB0AA", Chat: family, Sender: alice, FromMe: true}}
	addr := msg.Addr{ChatPN: alice, ChatLID: "1234567890@lid", SenderPN: alice, SenderLID: "1234567890@lid"}
	changes := msg.Changes{Edits: []msg.Edit{{Text: "old", At: at}}, EditedAt: at.Add(time.Second), RevokedAt: at.Add(2 * time.Second)}

	out := store.OutboxMessage{Chat: alice, Text: "Lunch?", Body: body, Addr: addr, Changes: changes,
		ReplyTo: "3A00", ReplyToSender: bob, ReplyToFromMe: true, ForwardOf: "msg_0"}
	if err := st.EnqueueMessage(ctx, &out); err != nil {
		t.Fatal(err)
	}
	gotOut, err := st.OutboxMessage(ctx, out.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(gotOut.Body, body) || gotOut.Addr != addr || !reflect.DeepEqual(gotOut.Changes, changes) ||
		gotOut.ReplyToSender != bob || !gotOut.ReplyToFromMe || gotOut.ForwardOf != "msg_0" {
		t.Fatalf("queued message read back as\n%+v\nwant body %+v, addr %+v, changes %+v", gotOut, body, addr, changes)
	}

	in := store.IncomingMessage{WAID: "3A01", Chat: family, Sender: alice, Body: body, Addr: addr, Changes: changes, Text: "Lunch?",
		SentAt: at, ReceivedAt: at, Media: &store.MediaRef{MimeType: "image/jpeg", Size: 3, Pending: true, Retry: []byte{1, 2, 3}}}
	if _, err := st.SaveIncoming(ctx, in); err != nil {
		t.Fatal(err)
	}
	gotIn, err := st.IncomingMessage(ctx, family+"/"+alice+"/3A01")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(gotIn.Body, body) || gotIn.Addr != addr || !reflect.DeepEqual(gotIn.Changes, changes) ||
		gotIn.Media == nil || !gotIn.Media.Pending || !reflect.DeepEqual(gotIn.Media.Retry, []byte{1, 2, 3}) {
		t.Fatalf("received message read back as\n%+v\nwant body %+v, addr %+v, changes %+v, pending media", gotIn, body, addr, changes)
	}
}

// A reaction, an edit or a revoke names its message by chat and WhatsApp
// id; the message is found by them and updated in place.
func testIncomingFoundByChatAndWhatsAppID(t *testing.T, h Harness) {
	st := h.Open(t)
	ctx := context.Background()
	at := ms(1_750_000_000_000)
	for i, chat := range []string{alice, family} {
		m := store.IncomingMessage{WAID: "3A77", Chat: chat, Sender: alice, Body: msg.Body{Kind: msg.KindText}, Text: chat,
			SentAt: at.Add(time.Duration(i) * time.Second), ReceivedAt: at}
		if _, err := st.SaveIncoming(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	got, err := st.IncomingByWAID(ctx, family, "3A77")
	if err != nil || got.Chat != family || got.Text != family {
		t.Fatalf("IncomingByWAID(family, 3A77) = %+v, %v; want the family's message", got, err)
	}
	if _, err := st.IncomingByWAID(ctx, bob, "3A77"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("IncomingByWAID in a chat without it: %v, want ErrNotFound", err)
	}
	got.Edits = []msg.Edit{{Text: got.Text, At: at}}
	got.Text, got.EditedAt = "edited", at.Add(time.Minute)
	if err := st.UpdateIncoming(ctx, got); err != nil {
		t.Fatal(err)
	}
	again, err := st.IncomingByWAID(ctx, family, "3A77")
	if err != nil || again.Text != "edited" || len(again.Edits) != 1 || again.Edits[0].Text != family || !again.EditedAt.Equal(at.Add(time.Minute)) {
		t.Fatalf("after the update: %+v, %v; want the new text and the old one kept", again, err)
	}
	if other, err := st.IncomingByWAID(ctx, alice, "3A77"); err != nil || other.Text != alice {
		t.Fatalf("the same id in another chat changed: %+v, %v", other, err)
	}
	missing := got
	missing.Key = "nobody/nobody/3A00"
	if err := st.UpdateIncoming(ctx, missing); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("UpdateIncoming of a message never stored: %v, want ErrNotFound", err)
	}
}
