package cluster_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"app/internal/store"
	"app/internal/store/sqlitestore"
	"app/internal/testdb"
)

// BenchmarkHistory measures whether the suite's cost stays flat as its
// history grows (issue 17): the same figures through `app run` with 2
// workers and the sandbox driver (paired, no pacing, no caps, no rate
// limit) on three databases:
//
//   - sqlite-1000: the embedded SQLite store with 1,000 messages;
//   - sqlite-N: the same with N messages (APP_BENCH_HISTORY, default
//     1,000,000);
//   - mongodb-1000: MongoDB (FerretDB, in this process, as the tests' stand-in)
//     with 1,000 messages.
//
// The two SQLite ones run side by side, taking turns at each figure so
// noise falls on both alike; MongoDB runs after them, alone.
// APP_BENCH_HISTORY_ENGINES (sqlite,mongodb) picks the engines.
//
// Each history is seeded through the store, not the API, in transactions
// of thousands of writes (Store.Atomically): half the messages are sent
// outbox messages, half incoming, over 5,000 chats plus one chat that
// holds 200 of them at every size (its history page is a full page at
// 1,000 too), and 3 events per message. The log keeps them all
// (APP_EVENT_MAX_COUNT=0), so no pruning runs while the figures are taken.
//
// Figures (wrk on loopback with histConns connections for
// APP_BENCH_WRK_SECONDS, default 5, where a request can be repeated; a Go
// client where the figure is a message's life): GET /v1/messages/{id} over
// ids spread through the history; GET /v1/messages (the newest 50); a
// chat's history page; the idle suite's CPU over 60 s
// (APP_BENCH_IDLE_SECONDS); 2,000 SSE clients,
// append to receipt; queued to sent at a steady 20/s; a burst of 3,000
// through the outbox; POST /v1/messages (with the sandbox disconnected, so
// the primary does not send meanwhile, as in BenchmarkAPI). Run with
// -benchtime 1x. With the default size it takes about 17 minutes on the
// 2-core machine, 7.5 of them seeding 1,000,000 messages.
func BenchmarkHistory(b *testing.B) {
	if _, err := exec.LookPath("wrk"); err != nil {
		b.Skip("wrk is not installed (Debian package wrk; make bench installs it)")
	}
	size := 1_000_000
	if v := os.Getenv("APP_BENCH_HISTORY"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1000 {
			b.Fatalf("APP_BENCH_HISTORY=%q: a number of messages, at least 1000", v)
		}
		size = n
	}
	engines := "sqlite,mongodb"
	if v := os.Getenv("APP_BENCH_HISTORY_ENGINES"); v != "" {
		engines = v
	}
	secs := 5
	if v, err := strconv.Atoi(os.Getenv("APP_BENCH_WRK_SECONDS")); err == nil && v > 0 {
		secs = v
	}
	idle := 60 * time.Second
	if v, err := strconv.Atoi(os.Getenv("APP_BENCH_IDLE_SECONDS")); err == nil && v > 0 {
		idle = time.Duration(v) * time.Second
	}
	raiseNoFile(b, histSSEClients+1024)
	bin := appBinary(b)

	// The SQLite sizes run side by side; MongoDB after them, alone: the
	// FerretDB it runs on takes most of a core even when idle, which would
	// weigh on the others' figures.
	var groups [][]*histTarget
	for _, e := range strings.Split(engines, ",") {
		switch e {
		case "sqlite":
			groups = append(groups, []*histTarget{{engine: store.SQLite, n: 1000}, {engine: store.SQLite, n: size}})
		case "mongodb":
			groups = append(groups, []*histTarget{{engine: store.MongoDB, n: 1000}})
		default:
			b.Fatalf("APP_BENCH_HISTORY_ENGINES: unknown engine %q (sqlite, mongodb)", e)
		}
	}
	for _, targets := range groups {
		historyGroup(b, bin, targets, secs, idle)
	}
}

// historyGroup seeds targets, runs the suite on each, takes every figure
// on them in turns and stops them.
func historyGroup(b *testing.B, bin string, targets []*histTarget, secs int, idle time.Duration) {
	ctx := context.Background()
	// Seed, one database at a time.
	for _, t := range targets {
		t.name = fmt.Sprintf("%s-%d", t.engine, t.n)
		state, err := os.MkdirTemp("", "apphist")
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = os.RemoveAll(state) })
		t.state = state
		t.env = append(os.Environ(), "APP_STATE_DIR="+state, "APP_ENV=qa", "LOG_LEVEL=warn", "MONGO_URI=")
		if t.engine == store.MongoDB {
			db := testdb.StartMongo(b)
			t.env = append(t.env, "MONGO_URI="+db.Vars()["MONGO_URI"])
			t.st = db.Connect(nil)
		} else {
			st, err := sqlitestore.Open(filepath.Join(state, "app.db"), zerolog.Nop())
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { _ = st.Close(context.Background()) })
			t.st = st
		}
		start := time.Now()
		if err := t.seed(ctx); err != nil {
			b.Fatalf("%s: seed: %v", t.name, err)
		}
		if c, ok := t.st.(interface {
			Checkpoint(context.Context) (int64, error)
		}); ok {
			if _, err := c.Checkpoint(ctx); err != nil {
				b.Fatalf("%s: checkpoint: %v", t.name, err)
			}
		}
		t.seedTime = time.Since(start)
		if t.engine == store.SQLite {
			for _, f := range []string{"app.db", "app.db-wal"} {
				if fi, err := os.Stat(filepath.Join(state, f)); err == nil {
					t.dbBytes += fi.Size()
				}
			}
		}
		b.Logf("%s: seeded %d messages, %d events and %d chats in %s", t.name, t.n, 3*t.n, histChats+1, t.seedTime.Round(time.Millisecond))
	}

	// Start every suite, each with its own key, paired.
	for _, t := range targets {
		addr := freePortB(b)
		t.base = "http://" + addr
		run := exec.Command(bin, "run")
		run.Env = append(slices.Clone(t.env), "CLUSTER_WORKERS=2", "APP_LISTEN="+addr, "WHATSAPP_DRIVER=sandbox",
			"APP_RATE_LIMIT=0", "WHATSAPP_SEND_PER_MINUTE=0", "WHATSAPP_DAILY_CAP=0", "WHATSAPP_NEW_CONTACTS_PER_DAY=0",
			"APP_EVENT_MAX_COUNT=0", "APP_METRICS_LISTEN=off")
		t.log = &tailBuffer{}
		run.Stderr = t.log
		startProc(b, run)
		b.Cleanup(func() {
			if b.Failed() {
				b.Logf("%s: the end of app run's log:\n%s", t.name, t.log)
			}
		})
		t.run = run
	}
	for _, t := range targets {
		waitHTTP(b, t.base+"/readyz", 2*time.Minute)
		keys := exec.Command(bin, "keys", "create", "--name", "bench", "--scopes", "admin")
		keys.Env = t.env
		out, err := keys.Output()
		if err != nil {
			b.Fatalf("%s: app keys create: %v", t.name, err)
		}
		t.auth = "Bearer " + strings.TrimSpace(string(out))
		t.api = &http.Client{Timeout: 40 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
		if code, err := t.post("/v1/sandbox/scan", ""); err != nil || code != 200 && code != 409 {
			b.Fatalf("%s: POST /v1/sandbox/scan: %d %v", t.name, code, err)
		}
		workerPIDs(b, t.base, t.auth, 2)
	}
	scripts := b.TempDir()

	for _, t := range targets {
		b.Run(t.name+"/seed", func(b *testing.B) {
			records := float64(t.n + 3*t.n + histChats + 1)
			b.ReportMetric(t.seedTime.Seconds(), "seed_s")
			b.ReportMetric(records/t.seedTime.Seconds(), "records/s")
			if t.dbBytes > 0 {
				b.ReportMetric(float64(t.dbBytes)/(1<<20), "db_MiB")
			}
		})
	}

	// The idle suites, all at once: 60 s (APP_BENCH_IDLE_SECONDS) with no traffic.
	time.Sleep(5 * time.Second)
	before := make([]float64, len(targets))
	for i, t := range targets {
		before[i] = treeCPU(b, t.run.Process.Pid)
	}
	self0 := selfCPU()
	idleStart := time.Now()
	time.Sleep(idle)
	idleFor := time.Since(idleStart).Seconds()
	self := selfCPU() - self0
	for i, t := range targets {
		used := treeCPU(b, t.run.Process.Pid) - before[i]
		b.Run(t.name+"/idle", func(b *testing.B) {
			b.ReportMetric(100*used/idleFor, "cpu_pct")
			if t.engine == store.MongoDB {
				// FerretDB runs in this process, idle otherwise (the
				// SQLite stores opened here wait for writes).
				b.ReportMetric(100*self/idleFor, "db_cpu_pct")
			}
		})
	}

	// Each figure on every database in turn, the first rotating.
	phase := 0
	each := func(figure string, f func(b *testing.B, t *histTarget)) {
		for i := range targets {
			t := targets[(i+phase)%len(targets)]
			b.Run(t.name+"/"+figure, func(b *testing.B) { f(b, t) })
		}
		phase++
	}
	wrkFigure := func(b *testing.B, t *histTarget, url string, extra ...string) {
		r := runWrk(b, url, histConns, secs, append([]string{"-H", "Authorization: " + t.auth}, extra...)...)
		if r.failed > 0 {
			b.Errorf("%s: %d of the requests failed", url, r.failed)
		}
		b.ReportMetric(r.rps, "req/s")
		b.ReportMetric(r.p50, "p50_ms")
		b.ReportMetric(r.p99, "p99_ms")
	}
	each("get-message", func(b *testing.B, t *histTarget) {
		var lua strings.Builder
		lua.WriteString("local ids = {")
		for _, id := range t.ids {
			fmt.Fprintf(&lua, "%q,", id)
		}
		lua.WriteString("}\nrequest = function()\n  return wrk.format(\"GET\", \"/v1/messages/\" .. ids[math.random(#ids)])\nend\n")
		script := filepath.Join(scripts, t.name+"-get.lua")
		if err := os.WriteFile(script, []byte(lua.String()), 0o644); err != nil {
			b.Fatal(err)
		}
		wrkFigure(b, t, t.base+"/v1/messages/"+t.ids[0], "-s", script)
	})
	each("list-newest", func(b *testing.B, t *histTarget) { wrkFigure(b, t, t.base+"/v1/messages") })
	each("chat-history", func(b *testing.B, t *histTarget) {
		wrkFigure(b, t, t.base+"/v1/chats/"+histHotChat+"/messages")
	})
	each("sse", func(b *testing.B, t *histTarget) { t.sse(b) })
	each("outbox-latency", func(b *testing.B, t *histTarget) {
		const n, rate = 200, 20
		var ids []string
		posted := map[string]time.Time{}
		tick := time.NewTicker(time.Second / rate)
		for i := range n {
			<-tick.C
			id, err := t.send(histChatJID(i % 5))
			if err != nil {
				b.Fatal(err)
			}
			ids = append(ids, id)
			posted[id] = time.Now()
		}
		tick.Stop()
		msgs := t.waitSent(b, ids, histWait)
		var lat []time.Duration
		for _, m := range msgs {
			lat = append(lat, m.SentAt.Sub(time.Unix(0, m.QueuedNS)))
			delete(posted, m.ID)
		}
		// A message not sent counts with the time it has waited so far:
		// the percentiles are then lower bounds.
		for _, at := range posted {
			lat = append(lat, time.Since(at))
		}
		if len(posted) > 0 {
			b.Logf("%d of %d not sent within %s of the last; they count with their wait so far", len(posted), n, histWait)
		}
		slices.Sort(lat)
		b.ReportMetric(msf(lat[len(lat)/2]), "p50_ms")
		b.ReportMetric(msf(lat[len(lat)*99/100]), "p99_ms")
		b.ReportMetric(float64(len(posted)), "unsent")
	})
	each("outbox-burst", func(b *testing.B, t *histTarget) {
		const burst, chats = 3000, 10
		ids := make([]string, burst)
		var next atomic.Int64
		var wg sync.WaitGroup
		var failed atomic.Int64
		for range 16 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					i := int(next.Add(1)) - 1
					if i >= burst {
						return
					}
					id, err := t.send(histChatJID(i % chats))
					if err != nil {
						if failed.Add(1) == 1 {
							b.Error(err)
						}
						continue
					}
					ids[i] = id
				}
			}()
		}
		wg.Wait()
		ids = slices.DeleteFunc(ids, func(id string) bool { return id == "" })
		msgs := t.waitSent(b, ids, 2*histWait)
		end := time.Now() // when not all were sent: the rate so far
		first := end
		if len(msgs) == len(ids) {
			end = time.Time{}
		}
		for _, m := range msgs {
			if q := time.Unix(0, m.QueuedNS); q.Before(first) {
				first = q
			}
			if len(msgs) == len(ids) && m.SentAt.After(end) {
				end = m.SentAt
			}
		}
		if len(msgs) < len(ids) {
			b.Logf("%d of %d sent within %s of the last queued; the rate is of those", len(msgs), len(ids), 2*histWait)
			if len(msgs) == 0 {
				first = end.Add(-2 * histWait)
			}
		}
		b.ReportMetric(float64(len(msgs))/end.Sub(first).Seconds(), "msgs/s")
		b.ReportMetric(float64(len(ids)-len(msgs)), "unsent")
	})
	// POST last, with the sandbox disconnected so that no primary sends the
	// messages queued meanwhile; each suite stops after its turn.
	for _, t := range targets {
		if code, err := t.post("/v1/sandbox/disconnect", `{"seconds":3600}`); err != nil || code != 200 {
			b.Fatalf("%s: POST /v1/sandbox/disconnect: %d %v", t.name, code, err)
		}
	}
	each("post-message", func(b *testing.B, t *histTarget) {
		lua := fmt.Sprintf("wrk.method = \"POST\"\nwrk.body = %q\nwrk.headers[\"Content-Type\"] = \"application/json\"\n",
			`{"to":"+`+strings.TrimSuffix(histChatJID(7), "@s.whatsapp.net")+`","text":"benchmark"}`)
		script := filepath.Join(scripts, t.name+"-post.lua")
		if err := os.WriteFile(script, []byte(lua), 0o644); err != nil {
			b.Fatal(err)
		}
		wrkFigure(b, t, t.base+"/v1/messages", "-s", script)
		terminate(t.run, func() { _ = syscall.Kill(-t.run.Process.Pid, syscall.SIGKILL) })
	})
}

const (
	// histChats are the chats a history is spread over, beside histHotChat.
	histChats = 5000
	// histHotChat holds 200 messages at every size: its history page is
	// full at 1,000 messages too.
	histHotChat = "491600000000@s.whatsapp.net"
	// histConns are wrk's connections: a few busy clients, below the point
	// where requests wait in line (the p99 targets are for a served
	// request, not a queue).
	histConns = 16
	// histWait bounds the wait for a message to be sent, or an event to
	// reach every client, after the last was queued or appended.
	histWait = 30 * time.Second
	// histSSEClients are the streams of the SSE figure.
	histSSEClients = 2000
)

func histChatJID(i int) string { return fmt.Sprintf("4917%08d@s.whatsapp.net", i) }

func msf(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// histTarget is one database with its history and the suite running on it.
type histTarget struct {
	name     string // engine-size
	engine   string
	n        int // messages
	state    string
	env      []string // the database's settings, for app run and app keys
	st       store.Store
	ids      []string // outbox ids spread over the history
	seedTime time.Duration
	dbBytes  int64

	run  *exec.Cmd
	log  *tailBuffer // the end of app run's log, shown when a figure fails
	base string
	auth string
	api  *http.Client
}

// seed writes the history through the store in transactions of
// histBatch pairs: an outbox message sent and an incoming message each,
// over a year, with 6 events per pair (the schedule run that queued the
// outgoing message, its sent, delivered and read statuses, the incoming
// message and a reaction to the outgoing one), then every chat.
func (t *histTarget) seed(ctx context.Context) error {
	const histBatch = 2000
	pairs := t.n / 2
	year := 365 * 24 * time.Hour
	start := time.Now().Add(-year)
	step := year / time.Duration(2*pairs)
	hotEvery := max(1, pairs/100)
	type chatSeen struct{ first, lastOut, lastIn time.Time }
	seen := map[string]*chatSeen{}
	every := max(1, pairs/1000)
	for lo := 0; lo < pairs; lo += histBatch {
		err := t.st.Atomically(ctx, func(ctx context.Context) error {
			for p := lo; p < min(lo+histBatch, pairs); p++ {
				chat := histHotChat
				if p%hotEvery != 0 {
					chat = histChatJID(p % histChats)
				}
				tOut := start.Add(time.Duration(2*p) * step)
				tIn := tOut.Add(step)
				sentAt := tOut.Add(step / 4)
				seq := int64(6 * p)
				m := store.OutboxMessage{
					ID:   fmt.Sprintf("msg_%s%020x", strconv.FormatInt(tOut.UnixMilli(), 36), p),
					Chat: chat, Text: fmt.Sprintf("history message %d", p), QueuedNS: tOut.UnixNano(), QueuedAt: tOut, UpdatedAt: tOut,
				}
				if err := t.st.EnqueueMessage(ctx, &m); err != nil {
					return err
				}
				m.Status, m.WAID, m.Attempts, m.AttemptAt, m.SentAt, m.Epoch, m.EventSeq =
					store.StatusSent, fmt.Sprintf("3EB0%016X", p), 1, sentAt, sentAt, 1, seq+2
				if ok, err := t.st.SaveOutbox(ctx, &m); err != nil || !ok {
					return fmt.Errorf("save %s: %v %w", m.ID, ok, err)
				}
				in := store.IncomingMessage{WAID: fmt.Sprintf("3A%018X", p), Chat: chat, Sender: chat, PushName: "Contact",
					Text: fmt.Sprintf("history reply %d", p), SentAt: tIn, ReceivedAt: tIn, EventSeq: seq + 5}
				in.Kind, in.Key = "text", in.Chat+"/"+in.Sender+"/"+in.WAID
				if _, err := t.st.SaveIncoming(ctx, in); err != nil {
					return err
				}
				status := func(s string) string {
					return fmt.Sprintf(`{"id":%q,"chat":%q,"wa_id":%q,"status":%q,"attempts":1,"at":%q}`,
						m.ID, chat, m.WAID, s, sentAt.Format(time.RFC3339Nano))
				}
				incoming := func(waID, kind, text, extra string) string {
					return fmt.Sprintf(`{"key":%q,"wa_id":%q,"chat":%q,"sender":%q,"from_me":false,"push_name":"Contact","kind":%q,"text":%q%s,"sent_at":%q}`,
						chat+"/"+chat+"/"+waID, waID, chat, chat, kind, text, extra, tIn.Format(time.RFC3339Nano))
				}
				for i, e := range []struct{ typ, data string }{
					{"schedule.run", fmt.Sprintf(`{"schedule_id":"sch_history%d","due_at":%q,"outcome":"enqueued","message_id":%q,"late_ms":3}`,
						p%100, tOut.Format(time.RFC3339Nano), m.ID)},
					{"message.status", status("sent")},
					{"message.status", status("delivered")},
					{"message.status", status("read")},
					{"message.incoming", incoming(in.WAID, "text", in.Text, "")},
					{"message.incoming", incoming(fmt.Sprintf("3B%018X", p), "reaction", "", fmt.Sprintf(`,"reaction":"👍","reaction_to":%q`, m.WAID))},
				} {
					if err := t.st.AppendEvent(ctx, seq+int64(i)+1, e.typ, 1, json.RawMessage(e.data)); err != nil {
						return err
					}
				}
				c := seen[chat]
				if c == nil {
					c = &chatSeen{first: tOut}
					seen[chat] = c
				}
				c.lastOut, c.lastIn = tOut, tIn
				if p%every == 0 {
					t.ids = append(t.ids, m.ID)
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	if err := t.st.SetEventHead(ctx, int64(6*pairs)); err != nil {
		return err
	}
	return t.st.Atomically(ctx, func(ctx context.Context) error {
		for i := -1; i < histChats; i++ {
			jid := histHotChat
			if i >= 0 {
				jid = histChatJID(i)
			}
			c := store.Chat{JID: jid, PushName: "Contact", LastMessageAt: start}
			if s := seen[jid]; s != nil {
				c.LastMessageAt, c.FirstOutgoing, c.LastIncomingAt = s.lastIn, s.first, s.lastIn
			}
			if err := t.st.SaveChat(ctx, c); err != nil {
				return err
			}
		}
		return nil
	})
}

func (t *histTarget) post(path, body string) (int, error) {
	req, _ := http.NewRequest("POST", t.base+path, strings.NewReader(body))
	req.Header.Set("Authorization", t.auth)
	req.Header.Set("Content-Type", "application/json")
	res, err := t.api.Do(req)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return res.StatusCode, nil
}

// send queues a message to chat through the API and returns its id.
func (t *histTarget) send(chat string) (string, error) {
	req, _ := http.NewRequest("POST", t.base+"/v1/messages",
		strings.NewReader(`{"to":"+`+strings.TrimSuffix(chat, "@s.whatsapp.net")+`","text":"outbox benchmark"}`))
	req.Header.Set("Authorization", t.auth)
	req.Header.Set("Content-Type", "application/json")
	res, err := t.api.Do(req)
	if err != nil {
		return "", err
	}
	_, _ = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	if res.StatusCode != 202 {
		return "", fmt.Errorf("POST /v1/messages: %s", res.Status)
	}
	return strings.TrimPrefix(res.Header.Get("Location"), "/v1/messages/"), nil
}

// waitSent waits until every message of ids is sent, or within after the
// call, and returns those sent. It reads the store, at most every 100 ms,
// the last message of the list first: the primary sends in queue order.
func (t *histTarget) waitSent(b *testing.B, ids []string, within time.Duration) []store.OutboxMessage {
	ctx := context.Background()
	deadline := time.Now().Add(within)
	pending := slices.Clone(ids)
	var sent []store.OutboxMessage
	for len(pending) > 0 && time.Now().Before(deadline) {
		if m, err := t.st.OutboxMessage(ctx, pending[len(pending)-1]); err != nil || m.SentAt.IsZero() {
			time.Sleep(100 * time.Millisecond)
			continue
		}
		var still []string
		for _, id := range pending {
			m, err := t.st.OutboxMessage(ctx, id)
			if err != nil && !errors.Is(err, store.ErrNotFound) {
				b.Fatal(err)
			}
			if err == nil && !m.SentAt.IsZero() {
				sent = append(sent, m)
			} else {
				still = append(still, id)
			}
		}
		pending = still
		if len(pending) > 0 {
			time.Sleep(100 * time.Millisecond)
		}
	}
	return sent
}

// sse connects histSSEClients streams, has the primary append 200
// incoming messages at 20/s (BenchmarkSSEClients' method), and reports the
// latency from each event's append to its receipt by every client.
func (t *histTarget) sse(b *testing.B) {
	const events, perSec = 200, 20
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	tr := &http.Transport{MaxIdleConnsPerHost: -1, ResponseHeaderTimeout: 30 * time.Second}
	defer tr.CloseIdleConnections()
	streams := &http.Client{Transport: tr}
	all := make([]*sseBenchClient, histSSEClients)
	sem := make(chan struct{}, 64)
	var wg sync.WaitGroup
	var failed atomic.Int64
	for i := range all {
		c := &sseBenchClient{lat: make([]time.Duration, 0, events), seq: make([]int64, 0, events)}
		all[i] = c
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			err := c.open(ctx, streams, t.base+"/v1/events?types=message.incoming", t.auth)
			<-sem
			if err != nil && failed.Add(1) == 1 {
				b.Errorf("client %d: %v", i, err)
			}
		}()
	}
	wg.Wait()
	if n := failed.Load(); n > 0 {
		b.Fatalf("%d of %d clients could not connect", n, len(all))
	}
	time.Sleep(time.Second)
	sent := injectEvents(b, t.post, events, perSec)
	deadline := time.Now().Add(histWait)
	for _, c := range all {
		for c.received.Load() < int64(sent) && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
	}
	var lat []time.Duration
	short, missing := 0, 0
	for _, c := range all {
		c.mu.Lock()
		lat = append(lat, c.lat...)
		// A receipt missing at the deadline counts as histWait: the
		// percentiles are then lower bounds.
		for range sent - len(c.lat) {
			lat = append(lat, histWait)
			missing++
		}
		if len(c.lat) < sent {
			short++
		}
		c.mu.Unlock()
	}
	cancel()
	if short > 0 {
		b.Logf("%d of %d clients got fewer than the %d events within %s of the last; a missing receipt counts as %s",
			short, len(all), sent, histWait, histWait)
	}
	if len(lat) == 0 {
		b.Fatal("no event appended")
	}
	b.ReportMetric(100*float64(len(lat)-missing)/float64(len(lat)), "received_pct")
	slices.Sort(lat)
	b.ReportMetric(msf(lat[len(lat)/2]), "p50_ms")
	b.ReportMetric(msf(lat[len(lat)*99/100]), "p99_ms")
	b.ReportMetric(msf(lat[len(lat)-1]), "max_ms")
}

// tailBuffer keeps the last 64 KiB written to it.
type tailBuffer struct {
	mu  sync.Mutex
	buf []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if n := len(t.buf) - 64<<10; n > 0 {
		t.buf = t.buf[n:]
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.buf)
}

// treeCPU is the user and system CPU seconds of pid and all its
// descendants now (from /proc; processes gone took theirs with them).
func treeCPU(b *testing.B, root int) float64 {
	b.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		b.Fatal(err)
	}
	parent := map[int]int{}
	cpu := map[int]float64{}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// After the command name (which may hold spaces): state, ppid, ...;
		// utime and stime are the 14th and 15th fields, in clock ticks.
		_, rest, _ := strings.Cut(string(stat), ") ")
		f := strings.Fields(rest)
		if len(f) < 13 {
			continue
		}
		parent[pid], _ = strconv.Atoi(f[1])
		ut, _ := strconv.ParseFloat(f[11], 64)
		st, _ := strconv.ParseFloat(f[12], 64)
		cpu[pid] = (ut + st) / 100
	}
	var sum float64
	for pid, c := range cpu {
		for p := pid; p > 1; p = parent[p] {
			if p == root {
				sum += c
				break
			}
		}
	}
	return sum
}

// selfCPU is this process's user and system CPU seconds.
func selfCPU() float64 {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}
