package primary_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"app/internal/config"
	"app/internal/primary"
	"app/internal/store"
	"app/internal/testdb"
	"app/internal/webhook"
)

// receiver is a webhook receiver on loopback that verifies every
// signature the way docs/WEBHOOKS.md tells users to, and records what it
// got.
type receiver struct {
	t      *testing.T
	srv    *httptest.Server
	secret string

	mu       sync.Mutex
	answer   func(seq int64, r *http.Request) int // the status to answer
	arrived  []int64                              // every request, in arrival order
	accepted []int64                              // the ones answered 2xx
	badSigs  int
}

func newReceiver(t *testing.T, answer func(seq int64, r *http.Request) int) *receiver {
	rc := &receiver{t: t, answer: answer}
	rc.srv = httptest.NewServer(http.HandlerFunc(rc.serve))
	t.Cleanup(rc.srv.Close)
	return rc
}

// verify is the receiver's check, as docs/WEBHOOKS.md shows it (written
// from the Standard Webhooks text, not with the library the sender uses).
func verify(secret string, h http.Header, body []byte) error {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil {
		return err
	}
	ts, err := strconv.ParseInt(h.Get("webhook-timestamp"), 10, 64)
	if err != nil || math.Abs(time.Since(time.Unix(ts, 0)).Minutes()) > 5 {
		return errors.New("timestamp missing or too far from now")
	}
	mac := hmac.New(sha256.New, key)
	fmt.Fprintf(mac, "%s.%d.%s", h.Get("webhook-id"), ts, body)
	want := "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
	for _, sig := range strings.Fields(h.Get("webhook-signature")) {
		if hmac.Equal([]byte(sig), []byte(want)) {
			return nil
		}
	}
	return errors.New("bad signature")
}

func (rc *receiver) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	var ev struct {
		Seq  int64  `json:"seq"`
		Type string `json:"type"`
	}
	if err := json.Unmarshal(body, &ev); err != nil {
		rc.t.Errorf("receiver: body is not an event: %v: %s", err, body)
	}
	if id := r.Header.Get("webhook-id"); id != "evt_"+strconv.FormatInt(ev.Seq, 10) {
		rc.t.Errorf("receiver: webhook-id %q for seq %d", id, ev.Seq)
	}
	rc.mu.Lock()
	secret := rc.secret
	rc.arrived = append(rc.arrived, ev.Seq)
	answer := rc.answer
	rc.mu.Unlock()
	if err := verify(secret, r.Header, body); err != nil {
		rc.mu.Lock()
		rc.badSigs++
		rc.mu.Unlock()
		rc.t.Errorf("receiver: signature of seq %d does not verify: %v", ev.Seq, err)
	}
	status := answer(ev.Seq, r)
	if status >= 200 && status < 300 {
		rc.mu.Lock()
		rc.accepted = append(rc.accepted, ev.Seq)
		rc.mu.Unlock()
	}
	w.WriteHeader(status)
}

func (rc *receiver) got() (arrived, accepted []int64) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]int64(nil), rc.arrived...), append([]int64(nil), rc.accepted...)
}

var loopback = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}

// hooks is a webhooks task with quick retries, allowed to deliver to
// loopback.
func hooks(st store.Store, log *primary.EventLog) *primary.Webhooks {
	return &primary.Webhooks{Store: st, Log: zerolog.Nop(), Events: log,
		Cfg:    config.Webhooks{Timeout: 5 * time.Second, MaxAge: time.Hour, AllowedNetworks: loopback},
		Reload: 50 * time.Millisecond, Poll: 100 * time.Millisecond, Backoff: 20 * time.Millisecond, MaxBackoff: 100 * time.Millisecond}
}

// runHooks runs the task as the lease holder; stop ends it and waits.
func runHooks(t *testing.T, h *primary.Webhooks) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = h.Run(ctx, 1) }()
	stop = func() {
		cancel()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			t.Fatal("the webhooks task did not stop within 20s")
		}
	}
	t.Cleanup(stop)
	return stop
}

func eventLog(t *testing.T, st store.Store) *primary.EventLog {
	t.Helper()
	l := primary.NewEventLog(st, zerolog.Nop())
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel) // the lease of the test
	if !l.Start(ctx, 1) {
		t.Fatal("event log did not start")
	}
	return l
}

func subscribe(t *testing.T, st store.Store, rc *receiver, url string, types ...string) store.Webhook {
	t.Helper()
	start, err := st.LastEventSeq(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	wh := store.Webhook{ID: "wh_" + strings.ToLower(t.Name()), URL: url, Types: types, Secret: webhook.NewSecret(), Enabled: true, StartSeq: start}
	if rc != nil {
		rc.mu.Lock()
		rc.secret = wh.Secret
		rc.mu.Unlock()
	}
	if err := st.CreateWebhook(context.Background(), &wh); err != nil {
		t.Fatal(err)
	}
	return wh
}

func appendN(t *testing.T, l *primary.EventLog, n int, typ string) {
	t.Helper()
	for i := range n {
		if err := l.Append(context.Background(), typ, map[string]any{"chat": alice, "n": i}); err != nil {
			t.Fatal(err)
		}
	}
}

// inOrderOnce checks that every seq of want was accepted exactly once and
// in order.
func inOrderOnce(accepted, want []int64) error {
	if len(accepted) != len(want) {
		return fmt.Errorf("accepted %d events %v, want %d %v", len(accepted), accepted, len(want), want)
	}
	for i := range want {
		if accepted[i] != want[i] {
			return fmt.Errorf("accepted %v, want %v", accepted, want)
		}
	}
	return nil
}

func count(list []int64, v int64) int {
	n := 0
	for _, x := range list {
		if x == v {
			n++
		}
	}
	return n
}

func seqs(from, to int64) []int64 {
	var out []int64
	for s := from; s <= to; s++ {
		out = append(out, s)
	}
	return out
}

func deliveries(t *testing.T, st store.Store, id string) map[int64]store.WebhookDelivery {
	t.Helper()
	list, err := st.Deliveries(context.Background(), id, 0, "", 200)
	if err != nil {
		t.Fatal(err)
	}
	out := map[int64]store.WebhookDelivery{}
	for _, d := range list {
		out[d.Seq] = d
	}
	return out
}

// The receiver is down (503, then refusing connections) while events
// happen; once it is up, it gets every event once, in order, signed.
func TestWebhookReceiverDownThenUp(t *testing.T) {
	st := waStore(t)
	log := eventLog(t, st)
	var mu sync.Mutex
	up := false
	rc := newReceiver(t, func(int64, *http.Request) int {
		mu.Lock()
		defer mu.Unlock()
		if up {
			return http.StatusNoContent
		}
		return http.StatusServiceUnavailable
	})
	wh := subscribe(t, st, rc, rc.srv.URL+"/hook")
	runHooks(t, hooks(st, log))

	appendN(t, log, 20, "message.status")
	waitFor(t, "several failed attempts", 10*time.Second, func() (bool, string) {
		arrived, _ := rc.got()
		return len(arrived) >= 4, fmt.Sprint(len(arrived), " attempts")
	})
	d := deliveries(t, st, wh.ID)[1]
	if d.Status != store.DeliveryRetrying || d.ResponseStatus != 503 || d.NextAttemptAt.IsZero() {
		t.Errorf("delivery of seq 1 while the receiver answers 503: %+v", d)
	}
	mu.Lock()
	up = true
	mu.Unlock()
	waitFor(t, "all 20 delivered", 15*time.Second, func() (bool, string) {
		_, accepted := rc.got()
		return len(accepted) >= 20, fmt.Sprint(len(accepted), " accepted")
	})
	// Nothing more may come: one more event is delivered after any repeat
	// of the 20 (a subscription's events go in order), so once it is in,
	// a repeat would be too.
	appendN(t, log, 1, "message.status")
	waitFor(t, "seq 21 delivered", 10*time.Second, func() (bool, string) {
		_, accepted := rc.got()
		return count(accepted, 21) > 0, fmt.Sprint(accepted)
	})
	arrived, accepted := rc.got()
	if err := inOrderOnce(accepted, seqs(1, 21)); err != nil {
		t.Error(err)
	}
	for i := 1; i < len(arrived); i++ {
		if arrived[i] < arrived[i-1] {
			t.Fatalf("seq %d was sent after %d: %v", arrived[i], arrived[i-1], arrived)
		}
	}
	if rec := deliveries(t, st, wh.ID)[1]; rec.Status != store.DeliveryDelivered || rec.Attempts < 4 {
		t.Errorf("record of seq 1: %+v", rec)
	}
	// The last record and the cursor are saved just after the answer.
	waitFor(t, "the cursor at 21", 5*time.Second, func() (bool, string) {
		state, err := st.WebhookState(context.Background(), wh.ID)
		rec := deliveries(t, st, wh.ID)[21]
		return err == nil && state.Cursor == 21 && rec.Status == store.DeliveryDelivered, fmt.Sprintf("cursor %d (%v), record %+v", state.Cursor, err, rec)
	})
}

// The primary is stopped while the receiver holds a delivery; the next
// primary sends that event again (same webhook-id) and all that follow:
// nothing is lost, nothing is out of order.
func TestWebhookPrimaryKilledMidDelivery(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		st := waStoreOn(t, db)
		log := eventLog(t, st)
		holding := make(chan struct{})
		var once sync.Once
		rc := newReceiver(t, func(seq int64, r *http.Request) int {
			if seq == 5 {
				held := false
				once.Do(func() { held = true })
				if held {
					close(holding)
					<-r.Context().Done()                 // the primary goes away mid-request
					return http.StatusServiceUnavailable // reaches nobody
				}
			}
			return http.StatusOK
		})
		wh := subscribe(t, st, rc, rc.srv.URL)
		stop := runHooks(t, hooks(st, log))
		appendN(t, log, 10, "message.incoming")
		select {
		case <-holding:
		case <-time.After(10 * time.Second):
			t.Fatal("seq 5 never arrived")
		}
		stop()
		arrived, accepted := rc.got()
		if err := inOrderOnce(accepted, seqs(1, 4)); err != nil {
			t.Fatalf("before the stop: %v (arrived %v)", err, arrived)
		}

		runHooks(t, hooks(st, log))
		waitFor(t, "the next primary delivers the rest", 10*time.Second, func() (bool, string) {
			_, accepted := rc.got()
			return len(accepted) >= 10, fmt.Sprint(accepted)
		})
		arrived, accepted = rc.got()
		// Seq 5 arrived twice (the answer to the first was lost with the
		// primary): the receiver's acceptances are each event once, in order.
		if err := inOrderOnce(accepted, seqs(1, 10)); err != nil {
			t.Error(err)
		}
		if n := count(arrived, 5); n != 2 {
			t.Errorf("seq 5 arrived %d times, want 2 (arrivals %v)", n, arrived)
		}
		waitFor(t, "the records of 5 and 10", 5*time.Second, func() (bool, string) {
			recs := deliveries(t, st, wh.ID)
			return recs[5].Status == store.DeliveryDelivered && recs[10].Status == store.DeliveryDelivered, fmt.Sprintf("%+v %+v", recs[5], recs[10])
		})
	})
}

// Only the types asked for are delivered; a 410 disables the
// subscription, says so in the event log, and delivery resumes from the
// same event when it is enabled again.
func TestWebhookFilterAnd410(t *testing.T) {
	st := waStore(t)
	log := eventLog(t, st)
	var mu sync.Mutex
	gone := true
	rc := newReceiver(t, func(int64, *http.Request) int {
		mu.Lock()
		defer mu.Unlock()
		if gone {
			return http.StatusGone
		}
		return http.StatusOK
	})
	wh := subscribe(t, st, rc, rc.srv.URL, "message.incoming")
	runHooks(t, hooks(st, log))
	appendN(t, log, 2, "message.status")   // 1, 2: not wanted
	appendN(t, log, 1, "message.incoming") // 3: answered 410
	appendN(t, log, 1, "message.status")   // 4
	appendN(t, log, 1, "message.incoming") // 5

	waitFor(t, "the subscription is disabled", 10*time.Second, func() (bool, string) {
		got, err := st.Webhook(context.Background(), wh.ID)
		return err == nil && !got.Enabled, fmt.Sprintf("%+v %v", got, err)
	})
	got, _ := st.Webhook(context.Background(), wh.ID)
	if !strings.Contains(got.DisabledReason, "410") {
		t.Errorf("disabled reason %q", got.DisabledReason)
	}
	if d := deliveries(t, st, wh.ID)[3]; d.Status != store.DeliveryHalted || d.ResponseStatus != 410 {
		t.Errorf("record of seq 3: %+v", d)
	}
	waitFor(t, "a webhook.disabled event", 5*time.Second, func() (bool, string) {
		evs := events(t, st)
		last := evs[len(evs)-1]
		return last.Type == "webhook.disabled", last.Type
	})
	arrived, _ := rc.got()
	if fmt.Sprint(arrived) != "[3]" {
		t.Errorf("arrived %v, want [3]: one attempt, then nothing while disabled", arrived)
	}

	mu.Lock()
	gone = false
	mu.Unlock()
	got.Enabled, got.DisabledReason = true, ""
	if err := st.UpdateWebhook(context.Background(), &got); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "3 and 5 delivered after enabling", 10*time.Second, func() (bool, string) {
		_, accepted := rc.got()
		return len(accepted) >= 2, fmt.Sprint(accepted)
	})
	// One more wanted event, delivered after anything else the
	// subscription would get, shows what it got.
	appendN(t, log, 1, "message.incoming")
	marker, err := st.LastEventSeq(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the next message.incoming delivered", 10*time.Second, func() (bool, string) {
		_, accepted := rc.got()
		return count(accepted, marker) > 0, fmt.Sprint(accepted)
	})
	if _, accepted := rc.got(); fmt.Sprint(accepted) != fmt.Sprint([]int64{3, 5, marker}) {
		t.Errorf("accepted %v, want [3 5 %d] (message.incoming only; webhook.disabled is not asked for)", accepted, marker)
	}
}

// A delivery the receiver keeps failing is retried until the maximum
// age, then dead; the events after it follow.
func TestWebhookDeadAfterMaxAge(t *testing.T) {
	st := waStore(t)
	log := eventLog(t, st)
	rc := newReceiver(t, func(seq int64, _ *http.Request) int {
		if seq == 1 {
			return http.StatusInternalServerError
		}
		return http.StatusOK
	})
	wh := subscribe(t, st, rc, rc.srv.URL)
	h := hooks(st, log)
	h.Cfg.MaxAge = 400 * time.Millisecond
	runHooks(t, h)
	appendN(t, log, 3, "message.status")
	waitFor(t, "2 and 3 delivered", 10*time.Second, func() (bool, string) {
		_, accepted := rc.got()
		return len(accepted) >= 2, fmt.Sprint(accepted)
	})
	recs := deliveries(t, st, wh.ID)
	d := recs[1]
	if d.Status != store.DeliveryDead || d.Attempts < 2 || d.ResponseStatus != 500 || !strings.Contains(d.Error, "500") {
		t.Errorf("record of seq 1: %+v", d)
	}
	if age := d.LastAttemptAt.Sub(d.FirstAttemptAt); age < 300*time.Millisecond {
		t.Errorf("seq 1 was given up %s after its first attempt, before the maximum age", age)
	}
	if _, accepted := rc.got(); fmt.Sprint(accepted) != "[2 3]" {
		t.Errorf("accepted %v, want [2 3]", accepted)
	}
}

// Receivers on loopback are refused unless allowed, also when a name
// resolves to loopback: the check is on the address being connected to.
func TestWebhookRefusesPrivateAddresses(t *testing.T) {
	st := waStore(t)
	log := eventLog(t, st)
	rc := newReceiver(t, func(int64, *http.Request) int { return http.StatusOK })
	port := rc.srv.URL[strings.LastIndex(rc.srv.URL, ":")+1:]
	byName := subscribe(t, st, rc, "http://localhost:"+port+"/")
	h := hooks(st, log)
	h.Cfg.AllowedNetworks = nil
	runHooks(t, h)
	appendN(t, log, 1, "message.status")
	waitFor(t, "a refused attempt recorded", 10*time.Second, func() (bool, string) {
		d := deliveries(t, st, byName.ID)[1]
		return d.Attempts > 0, fmt.Sprintf("%+v", d)
	})
	d := deliveries(t, st, byName.ID)[1]
	if d.Status != store.DeliveryRetrying || !strings.Contains(d.Error, "refused") || !strings.Contains(d.Error, "APP_WEBHOOK_ALLOWED_NETWORKS") {
		t.Errorf("record: %+v", d)
	}
	if arrived, _ := rc.got(); len(arrived) != 0 {
		t.Errorf("the receiver on loopback got %v", arrived)
	}
}

// A replay moves the cursor back: the events from there come again, in
// order, and then new ones.
func TestWebhookReplay(t *testing.T) {
	st := waStore(t)
	log := eventLog(t, st)
	rc := newReceiver(t, func(int64, *http.Request) int { return http.StatusOK })
	wh := subscribe(t, st, rc, rc.srv.URL)
	runHooks(t, hooks(st, log))
	appendN(t, log, 5, "message.status")
	waitFor(t, "5 delivered", 10*time.Second, func() (bool, string) {
		_, accepted := rc.got()
		return len(accepted) >= 5, fmt.Sprint(accepted)
	})
	got, _ := st.Webhook(context.Background(), wh.ID)
	got.Replay = &store.WebhookReplay{ID: "r1", FromSeq: 2, RequestedAt: time.Now()}
	if err := st.UpdateWebhook(context.Background(), &got); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "3..5 again", 10*time.Second, func() (bool, string) {
		_, accepted := rc.got()
		return len(accepted) >= 8, fmt.Sprint(accepted)
	})
	appendN(t, log, 1, "message.status")
	waitFor(t, "then 6", 10*time.Second, func() (bool, string) {
		_, accepted := rc.got()
		return len(accepted) >= 9, fmt.Sprint(accepted)
	})
	if _, accepted := rc.got(); fmt.Sprint(accepted) != "[1 2 3 4 5 3 4 5 6]" {
		t.Errorf("accepted %v", accepted)
	}
}

// The log's head document follows the appends, so workers learn of them
// by reading one document.
func TestEventHeadFollowsAppends(t *testing.T) {
	st := waStore(t)
	if _, err := st.EventHead(context.Background()); err != store.ErrNotFound {
		t.Fatalf("head of an empty database: %v, want ErrNotFound", err)
	}
	log := eventLog(t, st)
	appendN(t, log, 7, "message.status")
	waitFor(t, "the head at 7", 5*time.Second, func() (bool, string) {
		head, err := st.EventHead(context.Background())
		return err == nil && head == 7, fmt.Sprint(head, err)
	})
}
