package httpapi

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"app/internal/config"
	"app/internal/primary"
	"app/internal/store"
	"app/internal/testdb"
	"app/internal/whatsapp"
)

// BenchmarkNumberCheck times POST /v1/contacts/check of 500 numbers
// (half of them on WhatsApp) through a worker, a primary and the sandbox
// on one embedded database: first asked (first_ms: the cache, the
// command, the sandbox's answer, its storing) and asked again at once
// (cached_ms: from the cache only).
func BenchmarkNumberCheck(b *testing.B) {
	db := testdb.Start(b)
	st := db.Connect(nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := st.EnsureIndexes(ctx, zerolog.Nop()); err != nil {
		b.Fatal(err)
	}
	now := time.Now()
	if ok, err := st.ClaimLease(ctx, store.Lease{Epoch: 1, Holder: "bench", Host: "bench", PID: 1, AcquiredAt: now, ExpiresAt: now.Add(time.Hour)}); !ok || err != nil {
		b.Fatalf("claim the lease: %v %v", ok, err)
	}
	sb, err := whatsapp.NewSandbox(whatsapp.SandboxConfig{Paired: whatsapp.SandboxJID, ConnectDelay: 20 * time.Millisecond, ReadDelay: -1})
	if err != nil {
		b.Fatal(err)
	}
	wa := &primary.WhatsApp{Cfg: config.WhatsApp{Driver: "sandbox", MaxAttempts: 3, RateLimitPause: time.Minute, ChecksPerMinute: 100000},
		Driver: sb, Store: st, Log: zerolog.Nop(), Poll: time.Hour}
	done := make(chan struct{})
	go func() { defer close(done); _ = wa.Run(ctx, 1) }()
	defer func() { cancel(); <-done }()
	api := db.Connect(nil)
	srv := httptest.NewServer((&Server{Backend: api, Sessions: api, Chats: api, Keys: api, Log: zerolog.Nop(), Worker: "1",
		MaxBodyBytes: 1 << 20}).handler(nil))
	defer srv.Close()
	key, k := store.NewAPIKey("bench", []string{store.ScopeMessagesRead})
	if err := st.CreateAPIKey(ctx, k); err != nil {
		b.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; {
		if ws, _ := st.Session(ctx); ws.State == "connected" {
			break
		}
		if time.Now().After(deadline) {
			b.Fatal("the session did not connect")
		}
		time.Sleep(10 * time.Millisecond)
	}
	ask := func(body string) time.Duration {
		start := time.Now()
		req, _ := http.NewRequest("POST", srv.URL+"/v1/contacts/check", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+key)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != 200 {
			b.Fatalf("check: %d", resp.StatusCode)
		}
		if _, err := io.Copy(io.Discard, resp.Body); err != nil {
			b.Fatal(err)
		}
		return time.Since(start)
	}
	var first, cached time.Duration
	b.ResetTimer()
	for i := range b.N {
		var dir []whatsapp.NumberInfo
		numbers := make([]string, 500)
		for j := range numbers {
			numbers[j] = fmt.Sprintf(`"+4917%03d%05d"`, i%1000, j)
			if j%2 == 0 {
				dir = append(dir, whatsapp.NumberInfo{Query: strings.Trim(numbers[j], `"`), OnWhatsApp: true})
			}
		}
		sb.SetDirectory(dir)
		body := `{"numbers":[` + strings.Join(numbers, ",") + `]}`
		first += ask(body)
		cached += ask(body)
	}
	b.StopTimer()
	b.ReportMetric(float64(first.Microseconds())/1000/float64(b.N), "first_ms")
	b.ReportMetric(float64(cached.Microseconds())/1000/float64(b.N), "cached_ms")
}
