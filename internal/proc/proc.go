// Package proc holds what every long-running role shares: its identity,
// the heartbeat it records in MongoDB, the systemd watchdog and status.
package proc

import (
	"context"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"app/internal/buildinfo"
	"app/internal/store"
	"app/internal/systemd"
)

// Identity names one process of the suite.
type Identity struct {
	Role    string // worker, primary, serve
	Worker  string // worker number, for workers
	Host    string
	PID     int
	Started time.Time
}

// NewIdentity describes this process.
func NewIdentity(role, worker string) Identity {
	host, err := os.Hostname()
	if err != nil {
		host = "unknown"
	}
	return Identity{Role: role, Worker: worker, Host: host, PID: os.Getpid(), Started: time.Now()}
}

// HeartbeatID is stable across restarts of the same slot (host, role,
// worker number), so a restarted worker replaces its old record.
func (id Identity) HeartbeatID() string {
	if id.Worker != "" {
		return id.Host + "/" + id.Role + "-" + id.Worker
	}
	return id.Host + "/" + id.Role
}

// Instance is unique per process start: the lease holder's name.
func (id Identity) Instance() string {
	return fmt.Sprintf("%s/%s/%d/%d", id.Host, id.Role, id.PID, id.Started.UnixNano())
}

// Heartbeat records this process in MongoDB every Interval until ctx ends,
// then once more as stopped.
type Heartbeat struct {
	Store    store.Store
	ID       Identity
	Interval time.Duration
	Log      zerolog.Logger
	Requests func() int64  // may be nil
	State    func() string // serving, degraded, holder, standby

	kick chan struct{}
	once sync.Once
}

func (h *Heartbeat) kicks() chan struct{} {
	h.once.Do(func() { h.kick = make(chan struct{}, 1) })
	return h.kick
}

// Kick records the heartbeat now rather than at the next interval: a
// change of state (a primary taking or losing the lease) is seen at once.
func (h *Heartbeat) Kick() {
	select {
	case h.kicks() <- struct{}{}:
	default:
	}
}

func (h *Heartbeat) record(ctx context.Context, state string) error {
	hb := store.Heartbeat{ID: h.ID.HeartbeatID(), Role: h.ID.Role, Worker: h.ID.Worker, Host: h.ID.Host, PID: h.ID.PID,
		Version: buildinfo.Version, StartedAt: h.ID.Started, LastSeen: time.Now(), State: state}
	if h.Requests != nil {
		hb.Requests = h.Requests()
	}
	return h.Store.WriteHeartbeat(ctx, hb)
}

// Run writes the heartbeat until ctx ends.
func (h *Heartbeat) Run(ctx context.Context) {
	failing := false
	for {
		wctx, cancel := context.WithTimeout(ctx, h.Interval)
		err := h.record(wctx, h.State())
		cancel()
		switch {
		case err != nil && ctx.Err() == nil && !failing:
			h.Log.Warn().Err(err).Msg("Cannot record the heartbeat; will keep trying.")
			failing = true
		case err == nil && failing:
			h.Log.Info().Msg("Heartbeat recorded again.")
			failing = false
		}
		select {
		case <-ctx.Done():
			sctx, cancel := context.WithTimeout(context.Background(), time.Second)
			_ = h.record(sctx, "stopped")
			cancel()
			return
		case <-time.After(h.Interval):
		case <-h.kicks():
		}
	}
}

// Watchdog pets systemd's watchdog while healthy() holds, until ctx ends.
// Outside systemd (no WatchdogSec=) it returns at once.
func Watchdog(ctx context.Context, n systemd.Notifier, healthy func() bool) {
	every := n.WatchdogInterval()
	if every <= 0 {
		return
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if healthy() {
				n.Watchdog()
			}
		}
	}
}

// WaitDB waits up to wait for the database to answer, reporting whether it did.
func WaitDB(ctx context.Context, st store.Store, wait time.Duration) bool {
	wctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	return st.WaitReady(wctx) == nil
}
