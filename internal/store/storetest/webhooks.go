package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"app/internal/store"
)

var _ = add(
	"WebhooksAreCreatedListedAndDeleted", testWebhooksAreCreatedListedAndDeleted,
	"WebhookUpdatesAreVersioned", testWebhookUpdatesAreVersioned,
	"WebhookConcurrentUpdatesOneWins", testWebhookConcurrentUpdatesOneWins,
	"WebhookDisableIsConditional", testWebhookDisableIsConditional,
	"WebhookStatesAreSavedAndForgotten", testWebhookStatesAreSavedAndForgotten,
	"WebhookDeliveriesArePagedAndPruned", testWebhookDeliveriesArePagedAndPruned,
)

func newWebhook(id string) *store.Webhook {
	return &store.Webhook{ID: id, KeyID: "key_1", URL: "https://example.com/hook/" + id, Types: []string{"message.incoming"},
		Secret: "whsec_" + id, Description: "test", Enabled: true, StartSeq: 12}
}

// A subscription is created at version 1, read back as made, listed
// oldest first (ties by id) and deleted once.
func testWebhooksAreCreatedListedAndDeleted(t *testing.T, h Harness) {
	st := h.Open(t)
	ctx := context.Background()
	before := time.Now().Add(-time.Second)
	w := newWebhook("wh_1")
	if err := st.CreateWebhook(ctx, w); err != nil {
		t.Fatal(err)
	}
	if w.Version != 1 || w.CreatedAt.Before(before) || !w.UpdatedAt.Equal(w.CreatedAt) {
		t.Fatalf("created %+v, want version 1 stamped now", w)
	}
	// An insert run again (its outcome unknown) writes the same record.
	if err := st.CreateWebhook(ctx, w); !errors.Is(err, store.ErrExists) {
		t.Fatalf("create again: %v, want ErrExists", err)
	}
	if err := st.CreateWebhook(ctx, newWebhook("wh_1")); !errors.Is(err, store.ErrExists) {
		t.Fatalf("create a taken id: %v, want ErrExists", err)
	}
	got, err := st.Webhook(ctx, "wh_1")
	if err != nil {
		t.Fatal(err)
	}
	if got.URL != w.URL || got.Secret != w.Secret || got.KeyID != "key_1" || !slices.Equal(got.Types, w.Types) || !got.Enabled ||
		got.StartSeq != 12 || got.Version != 1 || got.Description != "test" || got.CreatedAt.Sub(w.CreatedAt).Abs() > time.Millisecond {
		t.Fatalf("read %+v, want %+v", got, w)
	}
	at := time.UnixMilli(1_750_000_000_000).UTC()
	for id, created := range map[string]time.Time{"wh_b": at.Add(-time.Hour), "wh_a": at.Add(-time.Minute), "wh_c": at.Add(-time.Hour)} {
		w := newWebhook(id)
		w.Version, w.CreatedAt, w.UpdatedAt = 1, created, created
		if err := st.CreateWebhook(ctx, w); err != nil {
			t.Fatal(err)
		}
	}
	ids := func() []string {
		t.Helper()
		list, err := st.Webhooks(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, w := range list {
			out = append(out, w.ID)
		}
		return out
	}
	if got := ids(); !slices.Equal(got, []string{"wh_b", "wh_c", "wh_a", "wh_1"}) {
		t.Fatalf("webhooks listed %v, want oldest first, ties by id", got)
	}
	if err := st.DeleteWebhook(ctx, "wh_c"); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Webhook(ctx, "wh_c"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("read a deleted webhook: %v, want ErrNotFound", err)
	}
	if err := st.DeleteWebhook(ctx, "wh_c"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("delete again: %v, want ErrNotFound", err)
	}
	if got := ids(); !slices.Equal(got, []string{"wh_b", "wh_a", "wh_1"}) {
		t.Fatalf("webhooks after a delete %v", got)
	}
}

// An edit names the version it was made on: a stale one is refused and
// changes nothing, so no edit is lost.
func testWebhookUpdatesAreVersioned(t *testing.T, h Harness) {
	st := h.Open(t)
	ctx := context.Background()
	w := newWebhook("wh_1")
	if err := st.CreateWebhook(ctx, w); err != nil {
		t.Fatal(err)
	}
	a, b := *w, *w
	a.URL, a.Types = "https://example.com/a", nil
	if err := st.UpdateWebhook(ctx, &a); err != nil {
		t.Fatal(err)
	}
	if a.Version != 2 || a.UpdatedAt.Before(w.UpdatedAt) {
		t.Fatalf("after an update: version %d, updated %v; want 2, later", a.Version, a.UpdatedAt)
	}
	b.URL = "https://example.com/b"
	if err := st.UpdateWebhook(ctx, &b); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("update at a stale version: %v, want ErrConflict", err)
	}
	if b.Version != 1 {
		t.Fatalf("a refused update left the caller's version at %d, want 1", b.Version)
	}
	got, err := st.Webhook(ctx, "wh_1")
	if err != nil || got.Version != 2 || got.URL != "https://example.com/a" || len(got.Types) != 0 {
		t.Fatalf("after the refused update: %+v, %v; want a's edit at version 2", got, err)
	}
	// The refused editor reads again and edits the new version.
	got.URL = "https://example.com/b"
	if err := st.UpdateWebhook(ctx, &got); err != nil || got.Version != 3 {
		t.Fatalf("update at the current version: %v, version %d", err, got.Version)
	}
	missing := newWebhook("wh_none")
	missing.Version = 1
	if err := st.UpdateWebhook(ctx, missing); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("update of a missing webhook: %v, want ErrConflict", err)
	}
}

// Ten clients PATCH the same version at once: one wins, nine are told
// of the conflict.
func testWebhookConcurrentUpdatesOneWins(t *testing.T, h Harness) {
	skipOnFerretDB(t, h, "a conditional replace is not atomic under concurrency")
	a, b := h.OpenTwo(t)
	ctx := context.Background()
	w := newWebhook("wh_1")
	if err := a.CreateWebhook(ctx, w); err != nil {
		t.Fatal(err)
	}
	const n = 10
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st := a
			if i%2 == 1 {
				st = b // as another process would
			}
			edit := *w
			edit.URL = fmt.Sprint("https://example.com/", i)
			errs[i] = st.UpdateWebhook(ctx, &edit)
		}()
	}
	wg.Wait()
	winner := -1
	for i, err := range errs {
		switch {
		case err == nil && winner == -1:
			winner = i
		case err == nil:
			t.Fatalf("updates %d and %d both succeeded at version 1", winner, i)
		case !errors.Is(err, store.ErrConflict):
			t.Fatalf("update %d: %v, want ErrConflict", i, err)
		}
	}
	if winner == -1 {
		t.Fatal("no update succeeded")
	}
	got, err := a.Webhook(ctx, "wh_1")
	if err != nil || got.Version != 2 || got.URL != fmt.Sprint("https://example.com/", winner) {
		t.Fatalf("after the race: %+v, %v; want update %d's at version 2", got, err, winner)
	}
}

// The primary disables a subscription on a 410 only if no edit came in
// meanwhile; the disable moves the version, so an edit made on the old
// one is refused.
func testWebhookDisableIsConditional(t *testing.T, h Harness) {
	st := h.Open(t)
	ctx := context.Background()
	w := newWebhook("wh_1")
	if err := st.CreateWebhook(ctx, w); err != nil {
		t.Fatal(err)
	}
	edit := *w
	edit.Description = "edited"
	if err := st.UpdateWebhook(ctx, &edit); err != nil {
		t.Fatal(err)
	}
	if err := st.DisableWebhook(ctx, "wh_1", 1, "the receiver answered 410"); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("disable at a stale version: %v, want ErrConflict", err)
	}
	if got, err := st.Webhook(ctx, "wh_1"); err != nil || !got.Enabled || got.Version != 2 {
		t.Fatalf("after a refused disable: %+v, %v; want enabled at version 2", got, err)
	}
	if err := st.DisableWebhook(ctx, "wh_1", 2, "the receiver answered 410"); err != nil {
		t.Fatal(err)
	}
	got, err := st.Webhook(ctx, "wh_1")
	if err != nil || got.Enabled || got.DisabledReason != "the receiver answered 410" || got.Version != 3 ||
		got.Description != "edited" || got.URL != w.URL || got.Secret != w.Secret {
		t.Fatalf("after the disable: %+v, %v; want the edited subscription disabled at version 3", got, err)
	}
	if err := st.UpdateWebhook(ctx, &edit); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("an edit made before the disable: %v, want ErrConflict", err)
	}
	if err := st.DisableWebhook(ctx, "wh_none", 1, "gone"); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("disable a missing webhook: %v, want ErrConflict", err)
	}
}

// The primary's progress per subscription is saved, replaced, and
// forgotten for the subscriptions that are gone.
func testWebhookStatesAreSavedAndForgotten(t *testing.T, h Harness) {
	st := h.Open(t)
	ctx := context.Background()
	if _, err := st.WebhookState(ctx, "wh_a"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("state before any: %v, want ErrNotFound", err)
	}
	before := time.Now().Add(-time.Second)
	for i, id := range []string{"wh_a", "wh_b", "wh_c"} {
		if err := st.SaveWebhookState(ctx, store.WebhookState{ID: id, Cursor: int64(10 * (i + 1))}); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.SaveWebhookState(ctx, store.WebhookState{ID: "wh_a", Cursor: 15, ReplayID: "rp_1"}); err != nil {
		t.Fatal(err)
	}
	if got, err := st.WebhookState(ctx, "wh_a"); err != nil || got.Cursor != 15 || got.ReplayID != "rp_1" || got.Updated.Before(before) {
		t.Fatalf("state of wh_a = %+v, %v; want cursor 15 after replay rp_1, stamped", got, err)
	}
	kept := func(ids ...string) {
		t.Helper()
		for _, id := range []string{"wh_a", "wh_b", "wh_c"} {
			_, err := st.WebhookState(ctx, id)
			if want := slices.Contains(ids, id); (err == nil) != want {
				t.Errorf("state of %s kept: %v, want %t", id, err, want)
			}
		}
	}
	if err := st.ForgetWebhookStates(ctx, []string{"wh_a", "wh_c", "wh_never"}); err != nil {
		t.Fatal(err)
	}
	kept("wh_a", "wh_c")
	if err := st.ForgetWebhookStates(ctx, nil); err != nil {
		t.Fatal(err)
	}
	kept()
}

// Each attempt replaces its delivery's record (one per event and
// subscription); a subscription's records are listed newest event first,
// paged by position, filtered by status; settled ones are pruned by age.
func testWebhookDeliveriesArePagedAndPruned(t *testing.T, h Harness) {
	st := h.Open(t)
	ctx := context.Background()
	old := time.UnixMilli(1_750_000_000_000).UTC()
	recent := old.Add(48 * time.Hour)
	statuses := map[int64]string{1: store.DeliveryDelivered, 2: store.DeliveryDead, 3: store.DeliveryDelivered,
		4: store.DeliveryRetrying, 5: store.DeliveryDelivered, 6: store.DeliveryHalted}
	for seq := int64(1); seq <= 6; seq++ {
		at := old
		if seq >= 5 {
			at = recent
		}
		d := store.WebhookDelivery{WebhookID: "wh_1", Seq: seq, Type: "message.incoming", EventAt: at, Status: store.DeliveryRetrying,
			Attempts: 1, Error: "connection refused", FirstAttemptAt: at, LastAttemptAt: at, NextAttemptAt: at.Add(time.Minute)}
		if err := st.SaveDelivery(ctx, d); err != nil {
			t.Fatal(err)
		}
		// The second attempt settles it (4 stays retrying).
		d.Status, d.Attempts, d.Error, d.ResponseStatus, d.DurationMS = statuses[seq], 2, "", 200, 31
		if err := st.SaveDelivery(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.SaveDelivery(ctx, store.WebhookDelivery{WebhookID: "wh_2", Seq: 3, Status: store.DeliveryDelivered, LastAttemptAt: recent}); err != nil {
		t.Fatal(err)
	}
	seqs := func(id string, before int64, status string, limit int) []int64 {
		t.Helper()
		list, err := st.Deliveries(ctx, id, before, status, limit)
		if err != nil {
			t.Fatal(err)
		}
		var out []int64
		for _, d := range list {
			if d.WebhookID != id || d.Key != store.DeliveryKey(id, d.Seq) || d.Attempts != 2 && id == "wh_1" {
				t.Fatalf("delivery %+v listed for %s", d, id)
			}
			if status != "" && d.Status != status {
				t.Fatalf("delivery %+v listed for status %s", d, status)
			}
			out = append(out, d.Seq)
		}
		return out
	}
	for _, c := range []struct {
		before int64
		status string
		limit  int
		want   []int64
	}{
		{0, "", 10, []int64{6, 5, 4, 3, 2, 1}},
		{0, "", 2, []int64{6, 5}},
		{5, "", 2, []int64{4, 3}},
		{3, "", 2, []int64{2, 1}},
		{1, "", 2, nil},
		{0, store.DeliveryDelivered, 10, []int64{5, 3, 1}},
		{0, store.DeliveryDelivered, 1, []int64{5}},
		{5, store.DeliveryDelivered, 1, []int64{3}},
		{3, store.DeliveryDelivered, 10, []int64{1}},
		{0, store.DeliveryRetrying, 10, []int64{4}},
	} {
		if got := seqs("wh_1", c.before, c.status, c.limit); !slices.Equal(got, c.want) {
			t.Errorf("deliveries before %d of status %q, limit %d: %v, want %v", c.before, c.status, c.limit, got, c.want)
		}
	}
	if got := seqs("wh_2", 0, "", 10); !slices.Equal(got, []int64{3}) {
		t.Errorf("wh_2's deliveries: %v", got)
	}
	list, err := st.Deliveries(ctx, "wh_1", 0, store.DeliveryDead, 10)
	if err != nil || len(list) != 1 || list[0].ResponseStatus != 200 || list[0].DurationMS != 31 || list[0].Error != "" ||
		!list[0].EventAt.Equal(old) || !list[0].NextAttemptAt.Equal(old.Add(time.Minute)) {
		t.Fatalf("the dead delivery: %+v, %v; want the second attempt's record", list, err)
	}
	// Settled before a day after old: 1, 2, 3; 4 is still being retried.
	n, err := st.PruneDeliveries(ctx, old.Add(24*time.Hour))
	if err != nil || n != 3 {
		t.Fatalf("pruned %d, %v; want 3", n, err)
	}
	if got := seqs("wh_1", 0, "", 10); !slices.Equal(got, []int64{6, 5, 4}) {
		t.Errorf("after pruning: %v, want 6 5 4", got)
	}
	if got := seqs("wh_2", 0, "", 10); !slices.Equal(got, []int64{3}) {
		t.Errorf("wh_2's after pruning: %v", got)
	}
}
