package metrics

import (
	"context"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rs/zerolog"

	"app/internal/config"
	"app/internal/store"
	"app/internal/testdb"
)

type holder struct{ epoch int64 }

func (h holder) IsHolder() bool { return h.epoch != 0 }
func (h holder) Epoch() int64   { return h.epoch }

// connect starts the embedded database and connects to it with env's
// configuration.
func connect(t *testing.T, env map[string]string) store.Store {
	t.Helper()
	return testdb.Start(t).Connect(env)
}

// unreachable is a MongoDB store whose server socket does not exist.
func unreachable(t *testing.T) store.Store {
	t.Helper()
	dir := t.TempDir()
	cfg, err := config.LoadFrom(func(k string) (string, bool) {
		v, ok := map[string]string{"APP_STATE_DIR": dir, "MONGO_URI": config.SocketURI(filepath.Join(dir, "none.sock"))}[k]
		return v, ok
	})
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Connect(cfg, t.Name(), zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close(context.Background()) })
	return st
}

// gathered is every series of g by name and labels ("name,label=value"):
// a gauge's or counter's value, a histogram's sample count.
func gathered(t *testing.T, g prometheus.Gatherer) map[string]float64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
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
			case m.GetCounter() != nil:
				vals[key] = m.GetCounter().GetValue()
			case m.GetHistogram() != nil:
				vals[key] = float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	return vals
}

// The primary's series read the database at each scrape: they move as the
// outbox, the session, the lease and the webhooks do.
func TestPrimarySeriesFollowTheDatabase(t *testing.T) {
	st := connect(t, nil)
	ctx := context.Background()
	r := NewRegistry(nil)
	Pool(r.Reg, st)
	late := Primary(r.Reg, st, holder{epoch: 3}, time.Second)
	const names = "app_outbox_queued_messages app_whatsapp_state app_primary_lease_holder app_webhook_backlog_events app_scheduler_lateness_seconds"
	// On SQLite there is no connection pool to show.
	if n, err := testutil.GatherAndCount(r.Gatherer, "app_mongodb_commands_total", "app_mongodb_pool_connections"); err != nil || n != 0 {
		t.Fatalf("MongoDB pool series on SQLite: %d, %v; want none", n, err)
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
	now := time.Now()
	for _, hb := range []store.Heartbeat{
		{ID: "a/worker-1", Role: "worker", Worker: "1", Host: "a", LastSeen: now, State: "serving"},
		{ID: "a/worker-2", Role: "worker", Worker: "2", Host: "a", LastSeen: now.Add(-5 * time.Second), State: "serving"}, // 5 beats late
		{ID: "b/primary", Role: "primary", Host: "b", LastSeen: now.Add(-5 * time.Second), State: "stopped"},
		{ID: "a/primary", Role: "primary", Host: "a", LastSeen: now, State: "holder"},
	} {
		if err := st.WriteHeartbeat(ctx, hb); err != nil {
			t.Fatal(err)
		}
	}
	late.Observe(0.3)
	got, err := testutil.GatherAndCount(r.Gatherer, strings.Fields(names)...)
	if err != nil {
		t.Fatal(err)
	}
	if got < 11 {
		t.Errorf("%d series, want at least 11", got)
	}
	vals := gathered(t, r.Gatherer)
	for key, want := range map[string]float64{
		"app_outbox_queued_messages":                     3,
		"app_whatsapp_state,state=connected":             1,
		"app_whatsapp_state,state=unpaired":              0,
		"app_primary_lease_holder":                       1,
		"app_event_log_position":                         5,
		"app_webhook_backlog_events,webhook=wh_1":        4,
		"app_scheduler_lateness_seconds":                 1,
		"app_database_up":                                1,
		"app_cluster_processes,role=worker,state=alive":  1,
		"app_cluster_processes,role=worker,state=stale":  1,
		"app_cluster_processes,role=primary,state=alive": 1,
		"app_cluster_processes,role=primary,state=stale": 0,
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
	want := `
# HELP app_webhook_backlog_events Events of the log after a subscription's cursor (its backlog, counting events it does not ask for).
# TYPE app_webhook_backlog_events gauge
app_webhook_backlog_events{webhook="wh_1"} 0
`
	if err := testutil.GatherAndCompare(r.Gatherer, strings.NewReader(want), "app_webhook_backlog_events"); err != nil {
		t.Error(err)
	}
}

// The MongoDB pool's series follow the driver's pool: connections open and in use
// rise under concurrent queries and the in-use count falls back to 0 after;
// an operation that cannot get a connection in time is counted.
func TestPoolSeriesMove(t *testing.T) {
	// Two connections for this process, so concurrent queries queue.
	st := testdb.StartMongo(t).Connect(map[string]string{"MONGO_MAX_POOL_SIZE": "2", "MONGO_MIN_POOL_SIZE": "0"})
	ctx := context.Background()
	r := NewRegistry(nil)
	Pool(r.Reg, st)
	value := func(name string) float64 {
		t.Helper()
		v, ok := gathered(t, r.Gatherer)[name]
		if !ok {
			t.Fatalf("%s is not in the exposition", name)
		}
		return v
	}
	if v := value("app_mongodb_pool_connections_in_use"); v != 0 {
		t.Errorf("in use while idle: %v", v)
	}
	if v := value("app_mongodb_pool_max_connections"); v != 2 {
		t.Errorf("pool max %v, want 2", v)
	}
	commands := value("app_mongodb_commands_total")

	// Sixteen goroutines ping until told to stop (at most 20,000 times
	// each) while the scrapes watch.
	done := make(chan struct{})
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 20000; i++ {
				select {
				case <-done:
					return
				default:
				}
				_ = st.Ping(ctx)
			}
		}()
	}
	// Sampled every millisecond, not with testutil.Eventually's 10 ms: the
	// peak is what is looked for, and it may be brief.
	var peakInUse float64
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline) && peakInUse < 2; time.Sleep(time.Millisecond) {
		peakInUse = max(peakInUse, value("app_mongodb_pool_connections_in_use"))
	}
	// With the pool full, an operation allowed 100 µs cannot always get a
	// connection.
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline) && value("app_mongodb_pool_checkout_failures_total") == 0; {
		short, cancel := context.WithTimeout(ctx, 100*time.Microsecond)
		_ = st.Ping(short)
		cancel()
	}
	close(done)
	wg.Wait()
	if peakInUse < 2 {
		t.Errorf("in use under load peaked at %v, want 2 (the pool's size)", peakInUse)
	}
	if v := value("app_mongodb_pool_checkout_failures_total"); v == 0 {
		t.Error("no checkout failure counted with the pool full and a 100 µs deadline")
	}
	if v := value("app_mongodb_pool_connections_in_use"); v != 0 {
		t.Errorf("in use after the load: %v, want 0", v)
	}
	if open, peak := value("app_mongodb_pool_connections"), value("app_mongodb_pool_connections_peak"); open < 1 || open > 2 || peak != 2 {
		t.Errorf("open %v, peak %v; want 1-2 open and a peak of 2", open, peak)
	}
	if v := value("app_mongodb_commands_total"); v <= commands {
		t.Errorf("commands %v, not more than the %v before the load", v, commands)
	}
}

// With the database away, the primary's metrics say so in app_database_up
// and leave out what they would have read from it; the scrape still
// answers.
func TestPrimarySeriesWithoutTheDatabase(t *testing.T) {
	st := unreachable(t)
	r := NewRegistry(nil)
	Primary(r.Reg, st, holder{}, time.Second)
	want := `
# HELP app_database_up 1 when the database answered this scrape's ping within 2 s, 0 when not (the series read from it are then left out).
# TYPE app_database_up gauge
app_database_up 0
# HELP app_primary_lease_holder 1 when this process holds the primary lease, 0 when it stands by.
# TYPE app_primary_lease_holder gauge
app_primary_lease_holder 0
`
	if err := testutil.GatherAndCompare(r.Gatherer, strings.NewReader(want), "app_database_up", "app_primary_lease_holder"); err != nil {
		t.Error(err)
	}
	if n, err := testutil.GatherAndCount(r.Gatherer, "app_outbox_queued_messages", "app_whatsapp_state", "app_cluster_processes"); err != nil || n != 0 {
		t.Errorf("%d series read from a database that is away (%v), want none", n, err)
	}
}
