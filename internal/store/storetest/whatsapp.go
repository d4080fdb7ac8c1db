package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"app/internal/msg"
	"app/internal/store"
)

var _ = add(
	"SessionIsOneRecordReplaced", testSessionIsOneRecordReplaced,
	"IncomingRedeliveredIsOneRecord", testIncomingRedeliveredIsOneRecord,
	"IncomingMediaIsRecorded", testIncomingMediaIsRecorded,
	"IncomingUnannouncedAreAfterThePosition", testIncomingUnannouncedAreAfterThePosition,
	"IncomingMessagesOfAChatOldestFirst", testIncomingMessagesOfAChatOldestFirst,
	"ReceiptRedeliveredIsNoError", testReceiptRedeliveredIsNoError,
	"ChatsArePagedByLastActivity", testChatsArePagedByLastActivity,
	"SaveChatReplacesTheChat", testSaveChatReplacesTheChat,
	"NewContactsAreCountedSince", testNewContactsAreCountedSince,
	"ContactPushNamesAreKept", testContactPushNamesAreKept,
)

// ms is a time MongoDB keeps as is (it stores milliseconds).
func ms(v int64) time.Time { return time.UnixMilli(v).UTC() }

const (
	alice  = "491701234567@s.whatsapp.net"
	bob    = "491709876543@s.whatsapp.net"
	carol  = "118206924726501@lid"
	family = "120363025246125486@g.us"
)

// The primary saves the session as it changes; workers read the latest,
// whole: what a save leaves out is gone.
func testSessionIsOneRecordReplaced(t *testing.T, h Harness) {
	st := h.Open(t)
	ctx := context.Background()
	if _, err := st.Session(ctx); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("session before any save: %v, want ErrNotFound", err)
	}
	before := time.Now().Add(-time.Second)
	qrExp := ms(1_750_000_060_000)
	if err := st.SaveSession(ctx, store.WASession{State: "qr", QR: "2@abc", QRExpires: qrExp, Driver: "sandbox", Epoch: 3}); err != nil {
		t.Fatal(err)
	}
	got, err := st.Session(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got.State != "qr" || got.QR != "2@abc" || !got.QRExpires.Equal(qrExp) || got.Driver != "sandbox" || got.Epoch != 3 || got.UpdatedAt.Before(before) {
		t.Fatalf("session = %+v, want the qr state saved, stamped after %v", got, before)
	}
	if err := st.SaveSession(ctx, store.WASession{State: "connected", JID: alice, Driver: "sandbox", Epoch: 4}); err != nil {
		t.Fatal(err)
	}
	got, err = st.Session(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got.State != "connected" || got.JID != alice || got.Epoch != 4 || got.QR != "" || !got.QRExpires.IsZero() {
		t.Fatalf("session after a second save = %+v, want connected with no QR left", got)
	}
}

// WhatsApp delivers a message again after a reconnect: the store keeps
// the first record and says the second was not new.
func testIncomingRedeliveredIsOneRecord(t *testing.T, h Harness) {
	st := h.Open(t)
	ctx := context.Background()
	at := ms(1_750_000_000_000)
	m := store.IncomingMessage{WAID: "3A01", Chat: alice, Sender: alice, PushName: "Alice", Body: msg.Body{Kind: "text"}, Text: "hello",
		ReplyTo: "3A00", SentAt: at, ReceivedAt: at.Add(time.Second), EventSeq: 7}
	if added, err := st.SaveIncoming(ctx, m); err != nil || !added {
		t.Fatalf("first delivery: added %t, %v; want true", added, err)
	}
	again := m
	again.Text, again.EventSeq = "hello again", 9
	if added, err := st.SaveIncoming(ctx, again); err != nil || added {
		t.Fatalf("redelivery: added %t, %v; want false, no error", added, err)
	}
	key := alice + "/" + alice + "/3A01"
	got, err := st.IncomingMessage(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	if got.Key != key || got.Text != "hello" || got.EventSeq != 7 || got.PushName != "Alice" || got.ReplyTo != "3A00" ||
		!got.SentAt.Equal(at) || !got.ReceivedAt.Equal(at.Add(time.Second)) {
		t.Fatalf("stored message = %+v, want the first delivery under %s", got, key)
	}
	if list, err := st.IncomingMessages(ctx, alice, 10); err != nil || len(list) != 1 {
		t.Fatalf("chat holds %d messages, %v; want 1", len(list), err)
	}
	// The same WhatsApp id from another sender (in a group) is another message.
	inGroup := store.IncomingMessage{WAID: "3A01", Chat: family, Sender: alice, Body: msg.Body{Kind: "text"}, SentAt: at}
	if added, err := st.SaveIncoming(ctx, inGroup); err != nil || !added {
		t.Fatalf("same id in another chat: added %t, %v; want true", added, err)
	}
	// A key given is kept.
	own := store.IncomingMessage{Key: "k1", WAID: "3A02", Chat: bob, Sender: bob, Body: msg.Body{Kind: "text"}, SentAt: at}
	if added, err := st.SaveIncoming(ctx, own); err != nil || !added {
		t.Fatalf("message with its own key: added %t, %v", added, err)
	}
	if got, err := st.IncomingMessage(ctx, "k1"); err != nil || got.WAID != "3A02" {
		t.Fatalf("message k1 = %+v, %v", got, err)
	}
	if _, err := st.IncomingMessage(ctx, "nobody/nobody/3A99"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unknown key: %v, want ErrNotFound", err)
	}
}

// A message with media is stored first (event position 0) while its
// bytes are fetched; then where they went and its event's position.
func testIncomingMediaIsRecorded(t *testing.T, h Harness) {
	st := h.Open(t)
	ctx := context.Background()
	m := store.IncomingMessage{WAID: "3A10", Chat: alice, Sender: alice, Body: msg.Body{Kind: "image"}, SentAt: ms(1_750_000_000_000),
		Media: &store.MediaRef{MimeType: "image/jpeg", Size: 12345, Caption: "look"}}
	if _, err := st.SaveIncoming(ctx, m); err != nil {
		t.Fatal(err)
	}
	key := alice + "/" + alice + "/3A10"
	if un, err := st.IncomingUnannounced(ctx, 0); err != nil || len(un) != 0 {
		t.Fatalf("unannounced while its media is fetched: %d, %v; want none", len(un), err)
	}
	ref := store.MediaRef{MimeType: "image/jpeg", Size: 12000, Caption: "look", SHA256: []byte{1, 2, 3}, FileID: "f_1"}
	if err := st.SetIncomingMedia(ctx, key, ref, 42); err != nil {
		t.Fatal(err)
	}
	got, err := st.IncomingMessage(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	if got.Media == nil || got.Media.FileID != "f_1" || got.Media.Size != 12000 || got.Media.Caption != "look" ||
		string(got.Media.SHA256) != "\x01\x02\x03" || got.EventSeq != 42 || got.Kind != "image" {
		t.Fatalf("after SetIncomingMedia: %+v (media %+v), want file f_1 at position 42", got, got.Media)
	}
	if un, err := st.IncomingUnannounced(ctx, 41); err != nil || len(un) != 1 || un[0].Key != key {
		t.Fatalf("unannounced after 41: %v, %v; want the message", un, err)
	}
	// Skipped media is recorded as such.
	if err := st.SetIncomingMedia(ctx, key, store.MediaRef{MimeType: "image/jpeg", Size: 12345, Skipped: "over the cap"}, 43); err != nil {
		t.Fatal(err)
	}
	if got, err := st.IncomingMessage(ctx, key); err != nil || got.Media == nil || got.Media.Skipped != "over the cap" || got.Media.FileID != "" || got.EventSeq != 43 {
		t.Fatalf("after a skip: %+v, %v", got, err)
	}
}

// After a primary stopped between storing messages and appending their
// events, the next one finds the messages stored for positions past the
// log's end, in position order.
func testIncomingUnannouncedAreAfterThePosition(t *testing.T, h Harness) {
	st := h.Open(t)
	ctx := context.Background()
	for i, seq := range []int64{7, 3, 0, 5} {
		m := store.IncomingMessage{WAID: fmt.Sprintf("3A2%d", i), Chat: bob, Sender: bob, Body: msg.Body{Kind: "text"}, SentAt: ms(1_750_000_000_000 + int64(i)), EventSeq: seq}
		if _, err := st.SaveIncoming(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	seqs := func(after int64) []int64 {
		t.Helper()
		un, err := st.IncomingUnannounced(ctx, after)
		if err != nil {
			t.Fatal(err)
		}
		var out []int64
		for _, m := range un {
			out = append(out, m.EventSeq)
		}
		return out
	}
	for after, want := range map[int64][]int64{0: {3, 5, 7}, 3: {5, 7}, 4: {5, 7}, 6: {7}, 7: nil, 100: nil} {
		if got := seqs(after); !slices.Equal(got, want) {
			t.Errorf("unannounced after %d: positions %v, want %v", after, got, want)
		}
	}
}

// A chat's messages, oldest first, at most limit, none of another chat.
func testIncomingMessagesOfAChatOldestFirst(t *testing.T, h Harness) {
	st := h.Open(t)
	ctx := context.Background()
	base := int64(1_750_000_000_000)
	for i, off := range []int64{3000, 1000, 4000, 2000} {
		for _, chat := range []string{alice, bob} {
			m := store.IncomingMessage{WAID: fmt.Sprintf("3A3%d", i), Chat: chat, Sender: chat, Body: msg.Body{Kind: "text"}, Text: fmt.Sprint(off), SentAt: ms(base + off)}
			if _, err := st.SaveIncoming(ctx, m); err != nil {
				t.Fatal(err)
			}
		}
	}
	texts := func(limit int) []string {
		t.Helper()
		list, err := st.IncomingMessages(ctx, alice, limit)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, m := range list {
			if m.Chat != alice {
				t.Fatalf("alice's messages hold one of %s", m.Chat)
			}
			out = append(out, m.Text)
		}
		return out
	}
	if got := texts(10); !slices.Equal(got, []string{"1000", "2000", "3000", "4000"}) {
		t.Errorf("alice's messages: %v, want all 4 oldest first", got)
	}
	if got := texts(2); !slices.Equal(got, []string{"1000", "2000"}) {
		t.Errorf("alice's 2 first messages: %v, want the 2 oldest", got)
	}
	if list, err := st.IncomingMessages(ctx, carol, 10); err != nil || len(list) != 0 {
		t.Errorf("a chat with no messages: %d, %v", len(list), err)
	}
}

// Receipts come again after a reconnect too: no error, nothing to decide.
func testReceiptRedeliveredIsNoError(t *testing.T, h Harness) {
	st := h.Open(t)
	ctx := context.Background()
	r := store.ReceiptRecord{Chat: alice, Sender: alice, WAIDs: []string{"3EB0A1", "3EB0A2"}, Type: "read", At: ms(1_750_000_000_000), ReceivedAt: time.Now()}
	for i := range 2 {
		if err := st.SaveReceipt(ctx, r); err != nil {
			t.Fatalf("receipt delivery %d: %v", i+1, err)
		}
	}
	r.Type = "delivered" // another receipt of the same messages
	if err := st.SaveReceipt(ctx, r); err != nil {
		t.Fatal(err)
	}
}

// Chats are listed by last activity, newest first, the JID breaking ties,
// each exactly once across pages; the contacts list holds the one-to-one
// chats only (by number or by LID).
func testChatsArePagedByLastActivity(t *testing.T, h Harness) {
	st := h.Open(t)
	ctx := context.Background()
	base := int64(1_750_000_000_000)
	chats := []store.Chat{
		{JID: alice, LastMessageAt: ms(base + 5000)},
		{JID: bob, LastMessageAt: ms(base + 3000)},
		{JID: carol, LastMessageAt: ms(base + 3000)},
		{JID: family, Name: "Family", LastMessageAt: ms(base + 3000)},
		{JID: "status@broadcast", LastMessageAt: ms(base + 6000)},
		{JID: "120363144038483540@newsletter", LastMessageAt: ms(base + 1000)},
		{JID: "4915112345678@s.whatsapp.net", LastMessageAt: ms(base + 1000)},
	}
	for _, c := range chats {
		if err := st.SaveChat(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	// By time, newest first; among equal times by JID, descending.
	wantAll := []string{"status@broadcast", alice, bob, family, carol, "4915112345678@s.whatsapp.net", "120363144038483540@newsletter"}
	wantUsers := []string{alice, bob, carol, "4915112345678@s.whatsapp.net"}
	for _, usersOnly := range []bool{false, true} {
		want := wantAll
		if usersOnly {
			want = wantUsers
		}
		for _, limit := range []int{1, 2, 3, 10} {
			var got []string
			var ns int64
			var jid string
			for pages := 0; pages < 10; pages++ {
				page, err := st.ChatsPage(ctx, ns, jid, usersOnly, limit)
				if err != nil {
					t.Fatal(err)
				}
				if len(page) > limit {
					t.Fatalf("a page of %d chats for limit %d", len(page), limit)
				}
				for _, c := range page {
					got = append(got, c.JID)
				}
				if len(page) < limit {
					break
				}
				last := page[len(page)-1]
				ns, jid = last.LastMessageAt.UnixNano(), last.JID
			}
			if !slices.Equal(got, want) {
				t.Errorf("users only %t, limit %d: pages %v, want %v", usersOnly, limit, got, want)
			}
		}
	}
	// New activity moves a chat to the top.
	if err := st.SaveChat(ctx, store.Chat{JID: bob, LastMessageAt: ms(base + 7000)}); err != nil {
		t.Fatal(err)
	}
	for _, usersOnly := range []bool{false, true} {
		page, err := st.ChatsPage(ctx, 0, "", usersOnly, 2)
		if err != nil || len(page) != 2 || page[0].JID != bob {
			t.Errorf("users only %t, after bob wrote: %v, %v; want bob first", usersOnly, page, err)
		}
	}
}

// SaveChat stores the chat as given, whole: the primary merges what it
// learnt into what it read (names, push names, first outgoing) before
// saving, so a save carries every field and a field left out is gone.
func testSaveChatReplacesTheChat(t *testing.T, h Harness) {
	st := h.Open(t)
	ctx := context.Background()
	if _, err := st.Chat(ctx, alice); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("chat before any save: %v, want ErrNotFound", err)
	}
	c := store.Chat{JID: alice, Name: "Alice (address book)", PushName: "Ali", LastMessageAt: ms(1_750_000_003_000),
		FirstOutgoing: ms(1_750_000_001_000), LastIncomingAt: ms(1_750_000_003_000)}
	if err := st.SaveChat(ctx, c); err != nil {
		t.Fatal(err)
	}
	got, err := st.Chat(ctx, alice)
	if err != nil {
		t.Fatal(err)
	}
	if got.JID != c.JID || got.Name != c.Name || got.PushName != c.PushName || !got.LastMessageAt.Equal(c.LastMessageAt) ||
		!got.FirstOutgoing.Equal(c.FirstOutgoing) || !got.LastIncomingAt.Equal(c.LastIncomingAt) {
		t.Fatalf("chat = %+v, want %+v", got, c)
	}
	// The read-merge-save the primary does keeps the names.
	got.LastMessageAt, got.PushName = ms(1_750_000_009_000), "Alice"
	if err := st.SaveChat(ctx, got); err != nil {
		t.Fatal(err)
	}
	if got, err := st.Chat(ctx, alice); err != nil || got.Name != c.Name || got.PushName != "Alice" || !got.FirstOutgoing.Equal(c.FirstOutgoing) ||
		!got.LastMessageAt.Equal(ms(1_750_000_009_000)) {
		t.Fatalf("after a merged save: %+v, %v", got, err)
	}
	// A save without them replaces them.
	if err := st.SaveChat(ctx, store.Chat{JID: alice, LastMessageAt: ms(1_750_000_010_000)}); err != nil {
		t.Fatal(err)
	}
	if got, err := st.Chat(ctx, alice); err != nil || got.Name != "" || got.PushName != "" || !got.FirstOutgoing.IsZero() {
		t.Fatalf("after a bare save: %+v, %v; want the names and the first outgoing gone", got, err)
	}
	if n, err := st.CountNewContactsSince(ctx, time.Time{}); err != nil || n != 0 {
		t.Fatalf("new contacts after the first outgoing was dropped: %d, %v; want 0", n, err)
	}
}

// The new-contacts cap counts chats first written to since a time; chats
// only written from, and later activity, do not count.
func testNewContactsAreCountedSince(t *testing.T, h Harness) {
	st := h.Open(t)
	ctx := context.Background()
	day := ms(1_750_000_000_000)
	for i, first := range []time.Duration{-48 * time.Hour, -time.Hour, 0, time.Millisecond, 2 * time.Hour, -1} {
		c := store.Chat{JID: fmt.Sprintf("49170000000%d@s.whatsapp.net", i), LastMessageAt: day.Add(3 * time.Hour)}
		if first != -1 {
			c.FirstOutgoing = day.Add(first)
		}
		if err := st.SaveChat(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.SaveChat(ctx, store.Chat{JID: family, LastMessageAt: day, LastIncomingAt: day}); err != nil {
		t.Fatal(err)
	}
	for since, want := range map[time.Duration]int64{-72 * time.Hour: 5, -24 * time.Hour: 4, 0: 3, time.Millisecond: 2, 3 * time.Hour: 0} {
		if n, err := st.CountNewContactsSince(ctx, day.Add(since)); err != nil || n != want {
			t.Errorf("new contacts since day%+v: %d, %v; want %d", since, n, err, want)
		}
	}
	if n, err := st.CountNewContactsSince(ctx, time.Time{}); err != nil || n != 5 {
		t.Errorf("new contacts ever: %d, %v; want 5", n, err)
	}
	// Another message to a contact already written to is not a new contact.
	c, err := st.Chat(ctx, "491700000002@s.whatsapp.net")
	if err != nil {
		t.Fatal(err)
	}
	c.LastMessageAt = day.Add(4 * time.Hour)
	if err := st.SaveChat(ctx, c); err != nil {
		t.Fatal(err)
	}
	if n, err := st.CountNewContactsSince(ctx, day); err != nil || n != 3 {
		t.Errorf("new contacts since day after more activity: %d, %v; want 3", n, err)
	}
}

// The push name a contact last sent is kept, the latest winning.
func testContactPushNamesAreKept(t *testing.T, h Harness) {
	st := h.Open(t)
	ctx := context.Background()
	if _, err := st.Contact(ctx, alice); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("contact before any message: %v, want ErrNotFound", err)
	}
	before := time.Now().Add(-time.Second)
	if err := st.SaveContactPushName(ctx, alice, "Ali"); err != nil {
		t.Fatal(err)
	}
	if err := st.SaveContactPushName(ctx, bob, "Bob"); err != nil {
		t.Fatal(err)
	}
	if err := st.SaveContactPushName(ctx, alice, "Alice"); err != nil {
		t.Fatal(err)
	}
	for jid, name := range map[string]string{alice: "Alice", bob: "Bob"} {
		c, err := st.Contact(ctx, jid)
		if err != nil || c.JID != jid || c.PushName != name || c.UpdatedAt.Before(before) {
			t.Errorf("contact %s = %+v, %v; want push name %q, stamped after %v", jid, c, err, name, before)
		}
	}
}
