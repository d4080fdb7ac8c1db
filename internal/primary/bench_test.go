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

func benchStore(b *testing.B) *store.Store {
	b.Helper()
	return waStoreTB(b)
}
