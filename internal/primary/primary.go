// Package primary is the background role: it holds the primary lease and,
// while it holds it, runs the suite's primary work (WhatsApp, outbox,
// scheduler and webhooks plug in as Tasks; housekeeping runs here now).
package primary

import (
	"context"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"app/internal/config"
	"app/internal/proc"
	"app/internal/store"
	"app/internal/systemd"
)

// Task is primary work. It runs only while this process holds the lease,
// gets the fencing epoch, and must return soon after ctx ends.
type Task struct {
	Name string
	Run  func(ctx context.Context, epoch int64) error
}

// Primary runs the lease and the tasks.
type Primary struct {
	Cfg    config.Config
	Log    zerolog.Logger
	Store  store.Store
	ID     proc.Identity
	Notify systemd.Notifier
	// NotifyReady makes Run send READY=1 (false when another part of the
	// process, as in `app serve`, owns readiness).
	NotifyReady bool
	Tasks       []Task
	// Events, when set, is the event log the tasks share; it is started
	// at each lease before they run.
	Events *EventLog
	// Scheduler, when set (and among Tasks), runs the housekeeping jobs.
	Scheduler *Scheduler

	lease *Lease
}

// Run prepares the database, then contends for the lease until ctx ends.
func (p *Primary) Run(ctx context.Context) error {
	p.lease = &Lease{Store: p.Store, TTL: p.Cfg.LeaseTTL, Holder: p.ID.Instance(), Host: p.ID.Host, PID: p.ID.PID,
		Log: p.Log}
	p.lease.tick()

	dbOK := proc.WaitDB(ctx, p.Store, p.Cfg.DBWait)
	if ctx.Err() != nil {
		return nil
	}
	if p.NotifyReady {
		status := "standing by for the primary lease"
		if !dbOK {
			status = "waiting for the database (degraded)"
			p.Log.Warn().Dur("waited", p.Cfg.DBWait).Msg("The database does not answer; will keep trying.")
		}
		p.Notify.Ready(status)
	}
	// Heartbeat and watchdog run from here on, also while the indexes
	// wait for the database: waiting is healthy, a stuck lease loop is not.
	var wg sync.WaitGroup
	bgCtx, stopBg := context.WithCancel(context.WithoutCancel(ctx))
	defer func() { stopBg(); wg.Wait() }()
	hb := &proc.Heartbeat{Store: p.Store, ID: p.ID, Interval: p.Cfg.HeartbeatInterval, Log: p.Log, State: p.state}
	// /v1/cluster shows a new holder or standby at once, not a beat later.
	p.lease.Changed = hb.Kick
	var preparing atomic.Bool
	preparing.Store(true)
	wg.Add(2)
	go func() { defer wg.Done(); hb.Run(bgCtx) }()
	go func() {
		defer wg.Done()
		// The lease loop turns at least every TTL/3.
		proc.Watchdog(bgCtx, p.Notify, func() bool {
			return preparing.Load() || time.Since(p.lease.LastTick()) < p.Cfg.LeaseTTL
		})
	}()
	if !p.prepare(ctx) {
		return nil
	}
	p.lease.tick()
	preparing.Store(false)

	p.lease.Run(ctx, p.work)
	if p.NotifyReady {
		p.Notify.Stopping()
	}
	return nil
}

// IsHolder reports whether this process holds the lease now.
func (p *Primary) IsHolder() bool { return p.lease != nil && p.lease.Epoch() != 0 }

// Epoch is the epoch of the lease this process holds, 0 when it stands by.
func (p *Primary) Epoch() int64 {
	if p.lease == nil {
		return 0
	}
	return p.lease.Epoch()
}

func (p *Primary) state() string {
	if p.IsHolder() {
		return "holder"
	}
	return "standby"
}

// prepare creates the indexes, retrying until the database answers.
func (p *Primary) prepare(ctx context.Context) bool {
	for delay := time.Second; ; delay = min(2*delay, 30*time.Second) {
		ictx, cancel := context.WithTimeout(ctx, 30*time.Second)
		err := p.Store.EnsureIndexes(ictx, p.Log)
		if err == nil {
			info, serr := p.Store.Server(ictx)
			cancel()
			if serr == nil {
				p.Log.Info().Str("server", info.String()).Msg("Connected to the database.")
			}
			return true
		}
		cancel()
		if ctx.Err() != nil {
			return false
		}
		p.Log.Warn().Err(err).Dur("retry_in", delay).Msg("Cannot create indexes; will retry.")
		select {
		case <-ctx.Done():
			return false
		case <-time.After(delay):
		}
	}
}

// work runs while the lease is held: every task, and housekeeping.
func (p *Primary) work(ctx context.Context, epoch int64) {
	log := p.Log.With().Int64("epoch", epoch).Logger()
	log.Info().Int("tasks", len(p.Tasks)).Msg("Primary work started.")
	p.Notify.Status("primary: holding the lease (epoch " + strconv.FormatInt(epoch, 10) + ")")
	if p.Events != nil && !p.Events.Start(ctx, epoch) {
		return
	}
	tasks := p.Tasks
	if p.Scheduler != nil {
		// Housekeeping runs on the scheduler's passes.
		p.Scheduler.Jobs = p.housekeepingJobs(epoch)
	} else {
		tasks = append([]Task{{Name: "housekeeping", Run: p.housekeeping}}, tasks...)
	}
	var wg sync.WaitGroup
	for _, t := range tasks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := t.Run(ctx, epoch); err != nil && ctx.Err() == nil {
				log.Error().Err(err).Str("task", t.Name).Msg("Primary task failed.")
			}
		}()
	}
	wg.Wait()
	log.Info().Msg("Primary work stopped.")
	p.Notify.Status("primary: standing by for the lease")
}

// housekeeping prunes records of processes long gone and old lease epochs.
func (p *Primary) housekeeping(ctx context.Context, epoch int64) error {
	for {
		hctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		if n, err := p.Store.PruneHeartbeats(hctx, time.Now().Add(-24*time.Hour)); err != nil {
			p.Log.Warn().Err(err).Msg("Housekeeping: cannot prune heartbeats.")
		} else if n > 0 {
			p.Log.Info().Int64("deleted", n).Msg("Housekeeping: pruned heartbeats of processes gone for a day.")
		}
		if err := p.Store.PruneCommands(hctx, time.Now().Add(-24*time.Hour)); err != nil {
			p.Log.Warn().Err(err).Msg("Housekeeping: cannot prune old commands.")
		}
		if err := p.Store.PruneLeases(hctx, epoch-10); err != nil {
			p.Log.Warn().Err(err).Msg("Housekeeping: cannot prune old lease epochs.")
		}
		cancel()
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(time.Hour):
		}
	}
}

// housekeepingJobs is the suite's periodic clean-up, for the scheduler.
func (p *Primary) housekeepingJobs(epoch int64) []Job {
	logged := func(what string, n int64, err error) error {
		if err != nil {
			return err
		}
		if n > 0 {
			p.Log.Info().Int64("deleted", n).Msg("Housekeeping: pruned " + what + ".")
		}
		return nil
	}
	return []Job{
		{Name: "prune-heartbeats", Every: time.Hour, Run: func(ctx context.Context) error {
			n, err := p.Store.PruneHeartbeats(ctx, time.Now().Add(-24*time.Hour))
			return logged("heartbeats of processes gone for a day", n, err)
		}},
		{Name: "prune-commands", Every: time.Hour, Run: func(ctx context.Context) error {
			return p.Store.PruneCommands(ctx, time.Now().Add(-24*time.Hour))
		}},
		{Name: "prune-leases", Every: time.Hour, Run: func(ctx context.Context) error {
			return p.Store.PruneLeases(ctx, epoch-10)
		}},
		{Name: "prune-events", Every: time.Hour, Run: func(ctx context.Context) error {
			n, err := p.Store.PruneEvents(ctx, time.Now().Add(-p.Cfg.EventRetention))
			if err = logged("events older than APP_EVENT_RETENTION", n, err); err != nil {
				return err
			}
			n, err = p.Store.PruneEventsBeyond(ctx, p.Cfg.EventMaxCount)
			return logged("the oldest events beyond APP_EVENT_MAX_COUNT", n, err)
		}},
		{Name: "prune-webhook-deliveries", Every: time.Hour, Run: func(ctx context.Context) error {
			n, err := p.Store.PruneDeliveries(ctx, time.Now().Add(-p.Cfg.EventRetention))
			return logged("webhook delivery records older than APP_EVENT_RETENTION", n, err)
		}},
		{Name: "prune-media", Every: 6 * time.Hour, Run: func(ctx context.Context) error {
			n, err := p.Store.PruneMedia(ctx, time.Now().Add(-p.Cfg.MediaRetention))
			return logged("media older than APP_MEDIA_RETENTION", int64(n), err)
		}},
		{Name: "prune-event-tokens", Every: time.Hour, Run: func(ctx context.Context) error {
			n, err := p.Store.PruneEventTokens(ctx, time.Now())
			return logged("expired browser tokens", n, err)
		}},
		{Name: "checkpoint", Every: time.Minute, Run: func(ctx context.Context) error {
			c, ok := p.Store.(checkpointer)
			if !ok {
				return nil
			}
			wal, err := c.Checkpoint(ctx)
			if err == nil && wal > 256<<20 {
				p.Log.Warn().Int64("wal_bytes", wal).Msg("Housekeeping: the database's WAL stays large; a reader holds an old snapshot.")
			}
			return err
		}},
	}
}

// checkpointer is a store with a write-ahead log to keep bounded (SQLite).
type checkpointer interface {
	Checkpoint(ctx context.Context) (walBytes int64, err error)
}
