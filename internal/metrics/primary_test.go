package metrics

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rs/zerolog"

	"app/internal/store"
	"app/internal/testdb"
)

type holder struct{ epoch int64 }

func (h holder) IsHolder() bool { return h.epoch != 0 }
func (h holder) Epoch() int64   { return h.epoch }

// The primary's series read the database at each scrape: they move as the
// outbox, the session, the lease and the webhooks do.
func TestPrimarySeriesFollowTheDatabase(t *testing.T) {
	db := testdb.Start(t)
	st, err := store.Connect(db.Config(nil), t.Name(), zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close(context.Background()) })
	ctx := context.Background()
	if err := st.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	r := NewRegistry(nil)
	Pool(r.Reg, st)
	late := Primary(r.Reg, st, holder{epoch: 3})
	const names = "app_outbox_queued_messages app_whatsapp_state app_primary_lease_holder app_webhook_backlog_events app_scheduler_lateness_seconds app_mongodb_commands_total"
	n, err := testutil.GatherAndCount(r.Gatherer, "app_mongodb_commands_total")
	if err != nil || n != 1 {
		t.Fatalf("app_mongodb_commands_total: %d series, %v", n, err)
	}

	for range 3 {
		if err := st.EnqueueMessage(ctx, &store.OutboxMessage{Chat: "491701234567@s.whatsapp.net", Text: "hi"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.SaveSession(ctx, store.WASession{State: "connected"}); err != nil {
		t.Fatal(err)
	}
	for seq := int64(1); seq <= 5; seq++ {
		if err := st.AppendEvent(ctx, seq, "message.status", 1, map[string]string{"id": "x"}); err != nil {
			t.Fatal(err)
		}
	}
	wh := store.Webhook{ID: "wh_1", URL: "https://example.com/", Secret: "whsec_x", Enabled: true, StartSeq: 1}
	if err := st.CreateWebhook(ctx, &wh); err != nil {
		t.Fatal(err)
	}
	late.Observe(0.3)
	got, err := testutil.GatherAndCount(r.Gatherer, strings.Fields(names)...)
	if err != nil {
		t.Fatal(err)
	}
	if got < 12 {
		t.Errorf("%d series, want at least 12", got)
	}
	mfs, _ := r.Gatherer.Gather()
	vals := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			key := mf.GetName()
			for _, l := range m.GetLabel() {
				key += "," + l.GetName() + "=" + l.GetValue()
			}
			switch {
			case m.GetGauge() != nil:
				vals[key] = m.GetGauge().GetValue()
			case m.GetHistogram() != nil:
				vals[key] = float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	for key, want := range map[string]float64{
		"app_outbox_queued_messages":              3,
		"app_whatsapp_state,state=connected":      1,
		"app_whatsapp_state,state=unpaired":       0,
		"app_primary_lease_holder":                1,
		"app_event_log_position":                  5,
		"app_webhook_backlog_events,webhook=wh_1": 4,
		"app_scheduler_lateness_seconds":          1,
	} {
		if vals[key] != want {
			t.Errorf("%s = %v, want %v", key, vals[key], want)
		}
	}
	if age := vals["app_outbox_oldest_queued_age_seconds"]; age <= 0 || age > 60 {
		t.Errorf("oldest queued age %v s", age)
	}
	if lag := vals["app_webhook_lag_seconds,webhook=wh_1"]; lag <= 0 || lag > 60 {
		t.Errorf("webhook lag %v s", lag)
	}
	// Caught up: no backlog, no lag.
	if err := st.SaveWebhookState(ctx, store.WebhookState{ID: "wh_1", Cursor: 5}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(10 * time.Millisecond)
	want := `
# HELP app_webhook_backlog_events Events of the log after a subscription's cursor (its backlog, counting events it does not ask for).
# TYPE app_webhook_backlog_events gauge
app_webhook_backlog_events{webhook="wh_1"} 0
`
	if err := testutil.GatherAndCompare(r.Gatherer, strings.NewReader(want), "app_webhook_backlog_events"); err != nil {
		t.Error(err)
	}
}
