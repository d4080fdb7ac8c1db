package httpapi

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"app/internal/store"
	"app/internal/testdb"
)

// BenchmarkGroupInfo measures GET /v1/groups/{jid} served from the store
// (req/s), through real HTTP on loopback with 8 clients at once: 200
// groups of 256 participants stored fresh on one embedded database, read
// in turn. No primary runs: a fresh group needs none.
func BenchmarkGroupInfo(b *testing.B) {
	db := testdb.Start(b)
	st := db.Connect(nil)
	ctx := context.Background()
	if err := st.EnsureIndexes(ctx, zerolog.Nop()); err != nil {
		b.Fatal(err)
	}
	const groups, size = 200, 256
	jids := make([]string, groups)
	now := time.Now()
	for i := range jids {
		jids[i] = fmt.Sprintf("1203630%011d@g.us", i)
		g := store.Group{JID: jids[i], Name: fmt.Sprintf("Group %03d", i), Description: "A group of the benchmark",
			Owner: "491700000000@s.whatsapp.net", CreatedAt: now, Member: true, Admin: true, FetchedAt: now,
			InviteLink: "https://chat.whatsapp.com/BenchCode" + fmt.Sprint(i)}
		for j := range size {
			pn := fmt.Sprintf("49170%03d%04d@s.whatsapp.net", i, j)
			g.Participants = append(g.Participants, store.GroupParticipant{JID: pn, PN: pn, LID: fmt.Sprintf("2010%03d%04d@lid", i, j), Admin: j < 3})
		}
		if err := st.SaveGroup(ctx, g); err != nil {
			b.Fatal(err)
		}
	}
	api := db.Connect(nil)
	srv := httptest.NewServer((&Server{Backend: api, Sessions: api, Chats: api, Keys: api, Log: zerolog.Nop(), Worker: "1",
		MaxBodyBytes: 1 << 20}).handler(nil))
	defer srv.Close()
	key, k := store.NewAPIKey("bench", []string{store.ScopeMessagesRead})
	if err := st.CreateAPIKey(ctx, k); err != nil {
		b.Fatal(err)
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	var n atomic.Int64
	get := func() error {
		i := n.Add(1)
		req, _ := http.NewRequest("GET", srv.URL+"/v1/groups/"+jids[i%groups], nil)
		req.Header.Set("Authorization", "Bearer "+key)
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if _, err := io.Copy(io.Discard, resp.Body); err != nil {
			return err
		}
		if resp.StatusCode != 200 {
			return fmt.Errorf("GET a group: %d", resp.StatusCode)
		}
		return nil
	}
	if err := get(); err != nil { // the key cached, the connection open
		b.Fatal(err)
	}
	b.SetParallelism(max(1, 8/runtime.GOMAXPROCS(0))) // 8 clients
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := get(); err != nil {
				b.Error(err)
				return
			}
		}
	})
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "req/s")
}
