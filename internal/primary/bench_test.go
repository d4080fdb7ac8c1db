package primary_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"app/internal/primary"
	"app/internal/store"
	"app/internal/whatsapp"
)

// BenchmarkOutboxThroughput queues a burst of 500 messages over 10 chats and
// measures how fast the primary sends them through the sandbox driver, with
// the embedded database: messages per second.
func BenchmarkOutboxThroughput(b *testing.B) {
	st := benchStore(b)
	sb, _ := whatsapp.NewSandbox(whatsapp.SandboxConfig{Paired: whatsapp.SandboxJID, DeliveredDelay: -1, ReadDelay: -1})
	w := &primary.WhatsApp{Cfg: waCfg(), Driver: sb, Store: st, Log: zerolog.Nop(), Poll: 10 * time.Millisecond}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = w.Run(ctx, 1) }()
	const burst, chats = 500, 10
	var elapsed time.Duration
	for b.Loop() {
		before := len(sb.Sent())
		start := time.Now()
		var wg sync.WaitGroup
		for c := range chats {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range burst / chats {
					m := store.OutboxMessage{Chat: fmt.Sprintf("4916%08d@s.whatsapp.net", c), Text: fmt.Sprint(i)}
					if err := st.EnqueueMessage(ctx, &m); err != nil {
						b.Error(err)
						return
					}
				}
			}()
		}
		wg.Wait()
		for deadline := time.Now().Add(5 * time.Minute); len(sb.Sent()) < before+burst; time.Sleep(5 * time.Millisecond) {
			if time.Now().After(deadline) {
				b.Fatalf("%d of %d sent in 5 minutes", len(sb.Sent())-before, burst)
			}
		}
		elapsed += time.Since(start)
	}
	b.ReportMetric(float64(burst*b.N)/elapsed.Seconds(), "msgs/s")
}

// BenchmarkOutboxLatency queues 200 messages at 20 per second (below the
// throughput) and measures each one's time from queued to sent: p50 and p99.
func BenchmarkOutboxLatency(b *testing.B) {
	st := benchStore(b)
	sb, _ := whatsapp.NewSandbox(whatsapp.SandboxConfig{Paired: whatsapp.SandboxJID, DeliveredDelay: -1, ReadDelay: -1})
	w := &primary.WhatsApp{Cfg: waCfg(), Driver: sb, Store: st, Log: zerolog.Nop()}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = w.Run(ctx, 1) }()
	const n, rate = 200, 20
	var lat []time.Duration
	for b.Loop() {
		var ids []string
		tick := time.NewTicker(time.Second / rate)
		for i := range n {
			<-tick.C
			m := store.OutboxMessage{Chat: fmt.Sprintf("4917%08d@s.whatsapp.net", i%5), Text: fmt.Sprint(i)}
			if err := st.EnqueueMessage(ctx, &m); err != nil {
				b.Fatal(err)
			}
			ids = append(ids, m.ID)
		}
		tick.Stop()
		for _, id := range ids {
			for deadline := time.Now().Add(time.Minute); ; time.Sleep(5 * time.Millisecond) {
				m, err := st.OutboxMessage(ctx, id)
				if err == nil && !m.SentAt.IsZero() {
					lat = append(lat, m.SentAt.Sub(time.Unix(0, m.QueuedNS)))
					break
				}
				if time.Now().After(deadline) {
					b.Fatalf("message %s not sent within a minute", id)
				}
			}
		}
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50_ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99_ms")
}

func benchStore(b *testing.B) store.Store {
	b.Helper()
	return waStoreTB(b)
}

// BenchmarkScheduler10k keeps 10,000 recurring schedules (each on one
// minute of the hour, so about 167 fall due each minute) and reports how
// long a pass with nothing due takes, and, over one real minute boundary,
// how late the runs of that minute were enqueued (p50, p99 and the
// latest), with the scheduler's real 250ms tick.
func BenchmarkScheduler10k(b *testing.B) {
	if b.N > 1 {
		b.Skip("one run measures it; use -benchtime 1x")
	}
	st := benchStore(b)
	ctx := context.Background()
	const n = 10000
	scs := make([]store.Schedule, n)
	for i := range scs {
		scs[i] = store.Schedule{ID: fmt.Sprintf("sch_bench%05d", i), Kind: "cron", Cron: fmt.Sprintf("%d * * * *", i%60),
			Timezone: "Europe/Berlin", Missed: "skip", Chat: fmt.Sprintf("4917%08d@s.whatsapp.net", i), Text: "tick"}
	}
	for i := 0; i < n; i += 1000 {
		if err := st.CreateSchedules(ctx, scs[i:i+1000]); err != nil {
			b.Fatal(err)
		}
	}
	s := &primary.Scheduler{Store: st, Log: zerolog.Nop()}
	if err := s.Start(ctx, 1); err != nil {
		b.Fatal(err)
	}
	t0 := time.Now()
	if err := s.Pass(ctx); err != nil { // reads and plans all 10,000
		b.Fatal(err)
	}
	firstPass := time.Since(t0)
	// Idle passes: nothing due until the next minute.
	if time.Until(time.Now().Truncate(time.Minute).Add(time.Minute)) < 5*time.Second {
		time.Sleep(6 * time.Second)
	}
	var idle []time.Duration
	for range 20 {
		t := time.Now()
		if err := s.Pass(ctx); err != nil {
			b.Fatal(err)
		}
		idle = append(idle, time.Since(t))
	}
	slices.Sort(idle)
	b.ReportMetric(float64(idle[len(idle)/2].Microseconds())/1000, "idle_pass_ms")
	// One minute boundary with the real loop.
	boundary := time.Now().Truncate(time.Minute).Add(time.Minute)
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); _ = s.Run(runCtx, 1) }()
	time.Sleep(time.Until(boundary) + 20*time.Second)
	cancel()
	<-done
	minute := boundary.UTC().Minute()
	var lat []time.Duration
	for i := minute % 60; i < n; i += 60 {
		runs, err := st.ScheduleRuns(ctx, scs[i].ID, 0, 10)
		if err != nil {
			b.Fatal(err)
		}
		for _, r := range runs {
			if r.DueAt.Equal(boundary) {
				lat = append(lat, r.FiredAt.Sub(r.DueAt))
			}
		}
	}
	if want := (n + 59 - minute%60) / 60; len(lat) != want {
		b.Fatalf("%d runs at %s, want %d", len(lat), boundary, want)
	}
	slices.Sort(lat)
	b.ReportMetric(float64(firstPass.Milliseconds()), "first_pass_ms")
	b.ReportMetric(float64(len(lat)), "runs_that_minute")
	b.ReportMetric(float64(lat[len(lat)/2].Milliseconds()), "p50_late_ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Milliseconds()), "p99_late_ms")
	b.ReportMetric(float64(lat[len(lat)-1].Milliseconds()), "max_late_ms")
}
