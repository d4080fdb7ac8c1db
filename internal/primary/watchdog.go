package primary

import (
	"context"
	"errors"
	"sync/atomic"
	"time"

	"app/internal/whatsapp"
)

// A session can say "connected" while nothing arrives any more (a
// half-open socket, a stalled stream): the peers' users' first
// complaint. The watchdog notices: while connected, when nothing came
// from the driver for WHATSAPP_WATCHDOG_INTERVAL, it pings WhatsApp,
// and when no answer comes either, it reconnects, with a reason the
// session state, the event log and the webhooks carry (the driver
// reports disconnected with it, which onSession records and announces).

// watchdog is the WhatsApp task's record of when WhatsApp was last heard.
type watchdog struct {
	heard      atomic.Int64 // Unix ns of the last event from the driver or answered ping
	reconnects atomic.Int64 // reconnects of silent sessions in this lease
}

// maxPingWait bounds the wait for a ping's answer.
const maxPingWait = 30 * time.Second

// heard notes that WhatsApp said something.
func (w *WhatsApp) heard() { w.dog.heard.Store(time.Now().UnixNano()) }

func (w *WhatsApp) lastHeard() time.Time { return time.Unix(0, w.dog.heard.Load()) }

// watch is the watchdog's loop, until ctx ends.
func (w *WhatsApp) watch(ctx context.Context) {
	every := w.Cfg.WatchdogInterval
	if every <= 0 {
		return
	}
	// Half the interval to answer: a check takes at most one and a half
	// intervals, and one a busy phone answers in time.
	pingWait := min(every/2, maxPingWait)
	timer := time.NewTimer(every)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		last := w.lastHeard()
		if wait := every - time.Since(last); wait > 0 || w.Session().State != whatsapp.StateConnected {
			timer.Reset(max(wait, every/4))
			continue
		}
		pctx, cancel := context.WithTimeout(ctx, pingWait)
		err := w.Driver.Ping(pctx)
		cancel()
		switch {
		case ctx.Err() != nil:
			return
		case err == nil:
			w.heard()
		case errors.Is(err, whatsapp.ErrNotConnected) || w.Session().State != whatsapp.StateConnected:
			// The connection changed meanwhile: the driver knows it is
			// down and reports it.
		default:
			silent := roughly(time.Since(last))
			reason := "no answer from WhatsApp for " + silent
			w.Log.Warn().Err(err).Str("silent_for", silent).
				Msg("WhatsApp sent nothing for " + silent + " and did not answer a ping; reconnecting.")
			w.dog.reconnects.Add(1)
			if err := w.Driver.Reconnect(ctx, reason); err != nil && ctx.Err() == nil {
				w.Log.Error().Err(err).Msg("Cannot reconnect the silent WhatsApp session; the driver keeps trying.")
			}
			w.heard() // the new connection gets its interval
		}
		timer.Reset(every)
	}
}

// roughly is d as a person reads it: to the second from ten seconds on.
func roughly(d time.Duration) string {
	if d >= 10*time.Second {
		return d.Round(time.Second).String()
	}
	return d.Round(10 * time.Millisecond).String()
}
