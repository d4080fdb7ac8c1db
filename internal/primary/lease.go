package primary

import (
	"context"
	"errors"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"app/internal/store"
)

// LeaseStore is what the lease needs from the database.
type LeaseStore interface {
	CurrentLease(ctx context.Context) (store.Lease, error)
	ClaimLease(ctx context.Context, l store.Lease) (bool, error)
	RenewLease(ctx context.Context, epoch int64, holder string, expires time.Time) (bool, error)
}

// Lease makes one process at a time the primary. The holder renews every
// TTL/3; when it has not renewed successfully for TTL - TTL/5 (measured from
// when the last successful renewal was sent, so never later than the expiry
// it wrote) it cancels its work and waits for it to end, so under
// synchronised clocks two primaries never work at once. A standby polls
// every TTL/3 and claims the next epoch once the current one has expired.
type Lease struct {
	Store  LeaseStore
	TTL    time.Duration
	Holder string // unique per process instance
	Host   string
	PID    int
	Log    zerolog.Logger
	// Changed, when set, is called after the lease is taken and after it
	// is let go (Epoch already tells the new state).
	Changed func()

	epoch    atomic.Int64 // held epoch, 0 while standby
	lastTick atomic.Int64 // unix nanos of the loop's last turn, for the watchdog
}

// Epoch is the fencing epoch held now, or 0 on standby.
func (l *Lease) Epoch() int64 { return l.epoch.Load() }

// LastTick is when the lease loop last turned; a stuck loop is unhealthy.
func (l *Lease) LastTick() time.Time { return time.Unix(0, l.lastTick.Load()) }

func (l *Lease) changed() {
	if l.Changed != nil {
		l.Changed()
	}
}

func (l *Lease) tick() { l.lastTick.Store(time.Now().UnixNano()) }

// Run contends for the lease until ctx ends. While it holds the lease it runs
// work with the fencing epoch; work's context ends when the lease may be
// lost or on shutdown, and Run waits for work to return before it lets go.
// On shutdown the lease is released so a standby takes over at once.
func (l *Lease) Run(ctx context.Context, work func(ctx context.Context, epoch int64)) {
	poll := l.TTL / 3
	var seen store.Lease
	for {
		l.tick()
		epoch, sent, ok := l.tryClaim(ctx, &seen)
		if ok {
			l.hold(ctx, epoch, sent, work)
		}
		if ctx.Err() != nil {
			return
		}
		if !ok {
			select {
			case <-ctx.Done():
				return
			case <-time.After(poll):
			}
		}
	}
}

func (l *Lease) tryClaim(ctx context.Context, seen *store.Lease) (int64, time.Time, bool) {
	qctx, cancel := context.WithTimeout(ctx, l.TTL/3)
	defer cancel()
	cur, err := l.Store.CurrentLease(qctx)
	next := int64(1)
	switch {
	case errors.Is(err, store.ErrNotFound):
	case err != nil:
		if ctx.Err() == nil {
			l.Log.Warn().Err(err).Msg("Cannot read the primary lease; will retry.")
		}
		return 0, time.Time{}, false
	case time.Now().Before(cur.ExpiresAt):
		if cur.Epoch != seen.Epoch {
			l.Log.Info().Str("holder", cur.Holder).Int64("epoch", cur.Epoch).Time("expires_at", cur.ExpiresAt).
				Msg("Standing by: another primary holds the lease.")
			*seen = cur
		}
		return 0, time.Time{}, false
	default:
		next = cur.Epoch + 1
	}
	sent := time.Now()
	won, err := l.Store.ClaimLease(qctx, store.Lease{Epoch: next, Holder: l.Holder, Host: l.Host, PID: l.PID,
		AcquiredAt: sent, ExpiresAt: sent.Add(l.TTL)})
	if err != nil {
		if ctx.Err() == nil {
			l.Log.Warn().Err(err).Int64("epoch", next).Msg("Cannot claim the primary lease; will retry.")
		}
		return 0, time.Time{}, false
	}
	if !won {
		return 0, time.Time{}, false
	}
	l.Log.Info().Int64("epoch", next).Str("previous_holder", cur.Holder).Msg("Took the primary lease.")
	return next, sent, true
}

func (l *Lease) hold(ctx context.Context, epoch int64, lastOK time.Time, work func(context.Context, int64)) {
	l.epoch.Store(epoch)
	l.changed()
	defer func() {
		l.epoch.Store(0)
		l.changed()
	}()
	workCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		work(workCtx, epoch)
	}()
	end := func() {
		stop()
		<-done
	}
	every := l.TTL / 3
	margin := l.TTL / 5
	next := lastOK.Add(every)
	for {
		l.tick()
		deadline := lastOK.Add(l.TTL - margin)
		wake := next
		if deadline.Before(wake) {
			wake = deadline
		}
		select {
		case <-ctx.Done():
			end()
			l.release(epoch)
			return
		case <-time.After(time.Until(wake)):
		}
		now := time.Now()
		if !now.Before(deadline) {
			l.Log.Error().Int64("epoch", epoch).Time("last_renewed", lastOK).
				Msg("Could not renew the primary lease in time; stopping primary work before it expires.")
			end()
			return
		}
		next = now.Add(every)
		rctx, cancel := context.WithDeadline(ctx, deadline)
		held, err := l.Store.RenewLease(rctx, epoch, l.Holder, now.Add(l.TTL))
		cancel()
		switch {
		case err != nil:
			if ctx.Err() == nil {
				l.Log.Warn().Err(err).Int64("epoch", epoch).Msg("Cannot renew the primary lease; will retry.")
				next = time.Now().Add(every / 4)
			}
		case !held:
			l.Log.Error().Int64("epoch", epoch).Msg("Lost the primary lease to another primary; stopping primary work.")
			end()
			return
		default:
			lastOK = now
		}
	}
}

// release expires the held epoch now so that a standby need not wait.
func (l *Lease) release(epoch int64) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if _, err := l.Store.RenewLease(ctx, epoch, l.Holder, time.Now()); err != nil {
		l.Log.Warn().Err(err).Int64("epoch", epoch).Msg("Could not release the primary lease; a standby takes over when it expires.")
		return
	}
	l.Log.Info().Int64("epoch", epoch).Msg("Released the primary lease.")
}
