package storetest

import (
	"context"
	"testing"

	"app/internal/store"
)

var _ = add("ChatActionRecordsKeepTheirTimes", testChatActionRecordsKeepTheirTimes)

// What the chat actions and the watchdog keep comes back as stored: a
// command's deadline (pending and decided, so a primary can drop it when
// late), a chat's read mark, the session's count of reconnects.
func testChatActionRecordsKeepTheirTimes(t *testing.T, h Harness) {
	st := h.Open(t)
	ctx := context.Background()
	deadline := ms(1_750_000_010_000)
	c := &store.Command{Kind: "presence", Args: map[string]string{"state": "available"}, Deadline: deadline}
	if err := st.InsertCommand(ctx, c); err != nil {
		t.Fatal(err)
	}
	pending, err := st.PendingCommands(ctx)
	if err != nil || len(pending) != 1 || !pending[0].Deadline.Equal(deadline) {
		t.Fatalf("pending commands %+v %v, want the one with deadline %s", pending, err, deadline)
	}
	pending[0].Outcome, pending[0].Error = "expired", "late"
	if err := st.DecideCommand(ctx, pending[0]); err != nil {
		t.Fatal(err)
	}
	got, err := st.Command(ctx, c.ID)
	if err != nil || got.Outcome != "expired" || !got.Deadline.Equal(deadline) {
		t.Errorf("decided command %+v %v, want expired with deadline %s", got, err, deadline)
	}

	mark := ms(1_750_000_000_000)
	if err := st.SaveChat(ctx, store.Chat{JID: family, LastMessageAt: mark, ReadUpTo: mark}); err != nil {
		t.Fatal(err)
	}
	if chat, err := st.Chat(ctx, family); err != nil || !chat.ReadUpTo.Equal(mark) {
		t.Errorf("chat %+v %v, want read up to %s", chat, err, mark)
	}

	if err := st.SaveSession(ctx, store.WASession{State: "connected", Driver: "sandbox", Epoch: 3, Reconnects: 2}); err != nil {
		t.Fatal(err)
	}
	if ws, err := st.Session(ctx); err != nil || ws.Reconnects != 2 {
		t.Errorf("session %+v %v, want 2 reconnects", ws, err)
	}
}
