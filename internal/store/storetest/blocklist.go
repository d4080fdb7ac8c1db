package storetest

import (
	"context"
	"errors"
	"slices"
	"testing"

	"app/internal/store"
)

var _ = add("BlocklistAndChatSettingsComeBackAsSaved", testBlocklistAndChatSettings)

// The blocklist is not found before it was saved, then comes back as last
// saved (an empty one too); a chat keeps its archived, pinned and muted
// settings.
func testBlocklistAndChatSettings(t *testing.T, h Harness) {
	st := h.Open(t)
	ctx := context.Background()
	if _, err := st.Blocklist(ctx); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("blocklist before any saved: %v, want ErrNotFound", err)
	}
	want := []string{"491701234567@s.whatsapp.net", "201001234567@lid"}
	if err := st.SaveBlocklist(ctx, store.Blocklist{JIDs: want}); err != nil {
		t.Fatal(err)
	}
	if b, err := st.Blocklist(ctx); err != nil || !slices.Equal(b.JIDs, want) || b.UpdatedAt.IsZero() {
		t.Errorf("blocklist %+v %v, want %v with its time", b, err, want)
	}
	if err := st.SaveBlocklist(ctx, store.Blocklist{}); err != nil {
		t.Fatal(err)
	}
	if b, err := st.Blocklist(ctx); err != nil || len(b.JIDs) != 0 {
		t.Errorf("blocklist %+v %v, want it empty", b, err)
	}

	until := ms(1_750_000_100_000)
	if err := st.SaveChat(ctx, store.Chat{JID: family, LastMessageAt: ms(1_750_000_000_000), Archived: true, Pinned: true, Muted: true, MutedUntil: until}); err != nil {
		t.Fatal(err)
	}
	if c, err := st.Chat(ctx, family); err != nil || !c.Archived || !c.Pinned || !c.Muted || !c.MutedUntil.Equal(until) {
		t.Errorf("chat %+v %v, want archived, pinned, muted until %s", c, err, until)
	}
}
