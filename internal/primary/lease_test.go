package primary_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"app/internal/config"
	"app/internal/primary"
	"app/internal/proc"
	"app/internal/store"
	"app/internal/testdb"
	"app/internal/testutil"
)

// cuttable is a lease store whose link to the database can be cut, as when a
// primary's machine loses the network: the process lives on but its
// requests fail.
type cuttable struct {
	primary.LeaseStore
	cut atomic.Bool

	mu    sync.Mutex
	reads []leaseRead // the leases read, so a test can wait for a standby to look
}

// leaseRead is a lease as read, and when.
type leaseRead struct {
	at    time.Time
	lease store.Lease
}

var errCut = errors.New("network cut")

func (c *cuttable) CurrentLease(ctx context.Context) (store.Lease, error) {
	if c.cut.Load() {
		return store.Lease{}, errCut
	}
	l, err := c.LeaseStore.CurrentLease(ctx)
	if err == nil {
		c.mu.Lock()
		c.reads = append(c.reads, leaseRead{at: time.Now(), lease: l})
		c.mu.Unlock()
	}
	return l, err
}

// readsOf is the leases read so far.
func (c *cuttable) readsOf() []leaseRead {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]leaseRead(nil), c.reads...)
}

func (c *cuttable) ClaimLease(ctx context.Context, l store.Lease) (bool, error) {
	if c.cut.Load() {
		return false, errCut
	}
	return c.LeaseStore.ClaimLease(ctx, l)
}

func (c *cuttable) RenewLease(ctx context.Context, epoch int64, holder string, expires time.Time) (bool, error) {
	if c.cut.Load() {
		return false, errCut
	}
	return c.LeaseStore.RenewLease(ctx, epoch, holder, expires)
}

// span is one stretch of primary work.
type span struct {
	who        string
	epoch      int64
	start, end time.Time
}

type journal struct {
	mu    sync.Mutex
	spans []span
	began chan span
}

func (j *journal) work(who string) func(context.Context, int64) {
	return func(ctx context.Context, epoch int64) {
		s := span{who: who, epoch: epoch, start: time.Now()}
		j.began <- s
		<-ctx.Done()
		s.end = time.Now()
		j.mu.Lock()
		j.spans = append(j.spans, s)
		j.mu.Unlock()
	}
}

func (j *journal) next(t *testing.T, within time.Duration) span {
	t.Helper()
	select {
	case s := <-j.began:
		return s
	case <-time.After(within):
		t.Fatalf("no primary started work within %s", within)
		return span{}
	}
}

const ttl = 900 * time.Millisecond

type contender struct {
	lease  *primary.Lease
	store  *cuttable
	cancel context.CancelFunc
	done   chan struct{}
}

func start(t *testing.T, db *testdb.DB, name string, j *journal) *contender {
	t.Helper()
	st := db.Connect(nil)
	c := &contender{store: &cuttable{LeaseStore: st}, done: make(chan struct{})}
	c.lease = &primary.Lease{Store: c.store, TTL: ttl, Holder: name, Host: "test", PID: 1, Log: zerolog.Nop()}
	ctx, cancel := context.WithCancel(context.Background())
	c.cancel = cancel
	go func() {
		defer close(c.done)
		c.lease.Run(ctx, j.work(name))
	}()
	t.Cleanup(c.stop)
	return c
}

func (c *contender) stop() {
	c.cancel()
	<-c.done
}

func TestSecondPrimaryStandsByAndTakesOverWhenTheFirstStops(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		j := &journal{began: make(chan span, 4)}
		a := start(t, db, "a", j)
		first := j.next(t, 5*time.Second)
		if first.who != "a" || first.epoch != 1 {
			t.Fatalf("first holder %s with epoch %d, want a with epoch 1", first.who, first.epoch)
		}
		b := start(t, db, "b", j)
		// b stays standby while a renews: b has looked at the lease three
		// times when the first lease it saw would have expired without a's
		// renewals, and has not taken it.
		testutil.Eventually(t, 10*ttl, "b looking at the lease past the expiry of the first it saw", func() (bool, string) {
			if e := b.lease.Epoch(); e != 0 {
				t.Fatalf("b took the lease (epoch %d) while a held it", e)
			}
			reads := b.store.readsOf()
			if len(reads) == 0 {
				return false, "b has not read the lease"
			}
			late := 0
			for _, r := range reads {
				if r.at.After(reads[0].lease.ExpiresAt) {
					late++
				}
			}
			return late >= 3, fmt.Sprintf("%d reads, %d after %s", len(reads), late, reads[0].lease.ExpiresAt.Format(time.StampMilli))
		})
		select {
		case s := <-j.began:
			t.Fatalf("%s started primary work (epoch %d) while a held the lease", s.who, s.epoch)
		default:
		}
		if b.lease.Epoch() != 0 || a.lease.Epoch() != 1 {
			t.Fatalf("epochs a=%d b=%d, want a=1 b=0 (standby)", a.lease.Epoch(), b.lease.Epoch())
		}
		// A clean stop releases the lease: b need not wait for it to expire.
		a.stop()
		second := j.next(t, 2*ttl)
		if second.who != "b" || second.epoch != 2 {
			t.Fatalf("took over: %s with epoch %d, want b with epoch 2", second.who, second.epoch)
		}
	})
}

// A holder that loses the database stops its work before its lease
// expires, and only then does the standby take over, with a higher epoch:
// the two never work at once.
func TestHolderCutOffStopsBeforeTheStandbyTakesOver(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		j := &journal{began: make(chan span, 4)}
		a := start(t, db, "a", j)
		if s := j.next(t, 5*time.Second); s.who != "a" {
			t.Fatalf("first holder %s, want a", s.who)
		}
		b := start(t, db, "b", j)
		// b stands by (it has read a's lease) when a is cut off.
		testutil.Eventually(t, 5*time.Second, "b reading the lease", func() (bool, string) {
			return len(b.store.readsOf()) > 0, "no read"
		})
		cutAt := time.Now()
		a.store.cut.Store(true)
		second := j.next(t, 3*ttl)
		if second.who != "b" || second.epoch != 2 {
			t.Fatalf("took over: %s with epoch %d, want b with epoch 2", second.who, second.epoch)
		}
		j.mu.Lock()
		spans := append([]span(nil), j.spans...)
		j.mu.Unlock()
		if len(spans) != 1 || spans[0].who != "a" {
			t.Fatalf("finished work spans %+v, want a's only", spans)
		}
		if !spans[0].end.Before(second.start) {
			t.Fatalf("a worked until %s, after b started at %s", spans[0].end.Format(time.StampMilli), second.start.Format(time.StampMilli))
		}
		if took := second.start.Sub(cutAt); took > 2*ttl {
			t.Fatalf("b took over %s after a was cut off; want within the lease period (%s) plus one poll", took, ttl)
		}
		if a.lease.Epoch() != 0 {
			t.Fatalf("a still believes it holds epoch %d", a.lease.Epoch())
		}
	})
}

// The heartbeat says holder or standby as soon as the lease moves, not a
// heartbeat interval later: /v1/cluster and the console show the primary
// that works now.
func TestHeartbeatFollowsTheLeaseAtOnce(t *testing.T) {
	db := testdb.Start(t)
	st := db.Connect(nil)
	j := &journal{began: make(chan span, 4)}
	x := start(t, db, "x", j)
	j.next(t, 5*time.Second)

	// An interval far longer than the test: after the first heartbeat,
	// only a change of lease can write one.
	cfg := config.Config{LeaseTTL: ttl, HeartbeatInterval: time.Hour, DBWait: 5 * time.Second}
	a := &primary.Primary{Cfg: cfg, Log: zerolog.Nop(), Store: st, ID: proc.NewIdentity("primary", "")}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = a.Run(ctx) }()
	defer func() { cancel(); <-done }()
	state := func() (string, string) {
		hbs, err := st.Heartbeats(context.Background(), time.Now().Add(-time.Minute))
		if err != nil {
			return "", err.Error()
		}
		for _, hb := range hbs {
			if hb.ID == a.ID.HeartbeatID() {
				return hb.State, hb.State
			}
		}
		return "", "no heartbeat"
	}
	waitUntil := func(want string, within time.Duration) {
		t.Helper()
		testutil.Eventually(t, within, "the primary's heartbeat saying "+want, func() (bool, string) {
			got, last := state()
			return got == want, "it says " + last
		})
	}
	waitUntil("standby", 10*time.Second)
	x.stop() // releases the lease: a takes it within a poll
	waitUntil("holder", 2*time.Second)
	if !a.IsHolder() {
		t.Fatal("the heartbeat says holder but the primary does not hold the lease")
	}
	cancel()
	<-done
	if got, _ := state(); got != "stopped" {
		t.Errorf("after a clean stop the heartbeat says %q, want stopped", got)
	}
}
