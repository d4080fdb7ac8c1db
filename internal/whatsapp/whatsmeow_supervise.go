package whatsapp

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/store/sqlstore"
	"go.mau.fi/whatsmeow/types"
)

// attemptOutcome is how one connection attempt ended.
type attemptOutcome int

const (
	attemptStopped   attemptOutcome = iota // ctx ended
	attemptRetry                           // dial again after the back-off
	attemptQRExpired                       // a QR round ran out of codes: new round
	attemptLoggedOut                       // device gone: pair again
	attemptBanned                          // temporarily banned until attemptResult.until
	attemptReplaced                        // another client took over: never retried
)

type attemptResult struct {
	kind     attemptOutcome
	reason   string
	until    time.Time
	stable   bool // was connected long enough to reset the back-off
	progress bool // a QR round showed at least one code
}

// connSignal is what a connection event means for the supervisor, worked
// out by the event's handler (whatsmeow_events.go): the session to report,
// whether the connection is up, whether the device was paired or is gone,
// and whether the attempt is over (and how). Logout and Reconnect send
// their own.
type connSignal struct {
	gen       uint64
	session   *Session
	connected bool
	paired    *types.JID // PairSuccess: our new JID
	forget    forgetKind
	end       *attemptResult
}

// forgetKind says whether a signal unpairs the device.
type forgetKind int

const (
	forgetNone   forgetKind = iota
	forgetRemote            // logged out remotely: whatsmeow deletes the device itself
	forgetLocal             // our own Logout: delete it too if whatsmeow's delete failed
)

// supervise keeps the account connected until ctx ends.
func (d *Whatsmeow) supervise(ctx context.Context, h Handler, container *sqlstore.Container) error {
	initial := d.initialBackoff
	if initial <= 0 {
		initial = wmDefaultInitialBackoff
	}
	bo := reconnectBackoff{initial: initial, max: d.cfg.MaxBackoff}
	var cli *whatsmeow.Client
	defer func() {
		if cli != nil {
			cli.Disconnect()
		}
	}()
	failures := 0
	for ctx.Err() == nil {
		if cli == nil {
			device, err := container.GetFirstDevice(ctx)
			if err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return fmt.Errorf("whatsapp: read device store: %w", err)
			}
			cli = d.newClient(ctx, h, device)
		}
		res := d.attempt(ctx, h, cli)
		cli.Disconnect()
		if !d.isPaired() {
			// Unpaired clients hold nothing worth keeping, and a QR channel
			// whose connect failed stays registered: start afresh.
			cli = nil
		}

		var wait time.Duration
		switch res.kind {
		case attemptStopped:
			return nil
		case attemptReplaced:
			d.log.Warn().Msg("Another client took over the session; not reconnecting.")
			<-ctx.Done()
			return nil
		case attemptLoggedOut:
			cli = nil
			bo.reset()
			failures = 0
			continue
		case attemptBanned:
			wait = time.Until(res.until)
			if wait <= 0 {
				wait = bo.next()
			}
			d.log.Warn().Time("until", res.until).Str("reason", res.reason).Msg("WhatsApp banned the account for a while; waiting.")
		case attemptQRExpired:
			if res.progress {
				bo.reset()
				failures = 0
				continue
			}
			failures++
			wait = bo.next()
			d.log.Warn().Str("reason", res.reason).Int("attempt", failures).Dur("retry_in", wait).
				Msg("The pairing round ended without a QR code; retrying.")
		case attemptRetry:
			if res.stable {
				bo.reset()
				failures = 0
			}
			failures++
			wait = bo.next()
			d.log.Warn().Str("reason", res.reason).Int("attempt", failures).Dur("retry_in", wait).
				Msg("Not connected to WhatsApp; retrying.")
		}
		if !sleepOrDone(ctx, wait) {
			return nil
		}
	}
	return nil
}

// attempt connects cli once (a QR round when unpaired) and waits until
// that connection ends.
func (d *Whatsmeow) attempt(ctx context.Context, h Handler, cli *whatsmeow.Client) attemptResult {
	d.mu.Lock()
	gen := d.gen
	paired := d.paired
	state := d.session.State
	d.mu.Unlock()
	d.drainSignals()

	var qrCh <-chan whatsmeow.QRChannelItem
	roundCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	if !paired {
		if state != StateUnpaired {
			d.report(ctx, h, Session{State: StateUnpaired})
		}
		ch, err := cli.GetQRChannel(roundCtx)
		if err != nil {
			d.report(ctx, h, Session{State: StateUnpaired, Reason: err.Error()})
			return attemptResult{kind: attemptRetry, reason: err.Error()}
		}
		qrCh = ch
	} else if state != StateDisconnected && state != StateConnecting {
		d.report(ctx, h, Session{State: StateConnecting})
	}

	started := time.Now()
	if err := cli.ConnectContext(ctx); err != nil {
		if ctx.Err() != nil {
			return attemptResult{kind: attemptStopped}
		}
		d.report(ctx, h, Session{State: StateDisconnected, Reason: err.Error()})
		return attemptResult{kind: attemptRetry, reason: err.Error()}
	}

	conn := connection{started: started}
	progress := false
	missing := 0
	tick := time.NewTicker(wmWatchdogInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return attemptResult{kind: attemptStopped}

		case item, ok := <-qrCh:
			if !ok {
				qrCh = nil
				continue
			}
			switch item.Event {
			case whatsmeow.QRChannelEventCode:
				progress = true
				d.report(ctx, h, Session{State: StatePairing, QR: item.Code, QRExpires: time.Now().Add(item.Timeout)})
			case whatsmeow.QRChannelSuccess.Event:
				qrCh = nil // PairSuccess, then Connected, come as events
			case whatsmeow.QRChannelTimeout.Event:
				reason := "QR code expired"
				if !progress {
					reason = "connection closed before a QR code was shown"
				}
				d.report(ctx, h, Session{State: StateUnpaired, Reason: reason})
				return attemptResult{kind: attemptQRExpired, reason: reason, progress: progress}
			case whatsmeow.QRChannelEventError:
				reason := "pairing failed"
				if item.Error != nil {
					reason += ": " + item.Error.Error()
				}
				d.report(ctx, h, Session{State: StateUnpaired, Reason: reason})
				return attemptResult{kind: attemptRetry, reason: reason}
			default: // err-unexpected-state, err-client-outdated, err-scanned-without-multidevice
				if item.Event == whatsmeow.QRChannelErrUnexpectedEvent.Event && d.isPaired() {
					qrCh = nil
					continue
				}
				reason := "pairing failed: " + item.Event
				d.report(ctx, h, Session{State: StateUnpaired, Reason: reason})
				return attemptResult{kind: attemptRetry, reason: reason}
			}

		case s := <-d.sig:
			if s.gen != gen {
				continue
			}
			if res := d.apply(ctx, h, cli, s, &conn); res != nil {
				return *res
			}

		case <-tick.C:
			if conn.connectedAt.IsZero() && d.isPaired() && time.Since(conn.started) > wmLoginTimeout {
				d.report(ctx, h, Session{State: StateDisconnected, Reason: "timed out waiting for login"})
				return attemptResult{kind: attemptRetry, reason: "timed out waiting for login"}
			}
			if cli.IsConnected() {
				missing = 0
				continue
			}
			// Two checks in a row: whatsmeow briefly drops the socket when it
			// reconnects by itself right after pairing.
			if missing++; missing >= 2 {
				d.report(ctx, h, Session{State: StateDisconnected, Reason: "connection lost"})
				return attemptResult{kind: attemptRetry, reason: "connection lost", stable: conn.stable()}
			}
		}
	}
}

// connection is the supervisor's view of one connection attempt.
type connection struct {
	started     time.Time // dialled (or paired)
	connectedAt time.Time // first Connected; zero before
}

// stable says whether the connection lasted long enough to reset the
// back-off when it drops.
func (c *connection) stable() bool {
	return !c.connectedAt.IsZero() && time.Since(c.connectedAt) >= wmStableConnection
}

// apply does what a signal says, in order: a new pairing first (so the
// session reported with it is "connecting"), the session, the connection
// being up, the device gone; non-nil when the attempt is over.
func (d *Whatsmeow) apply(ctx context.Context, h Handler, cli *whatsmeow.Client, s connSignal, conn *connection) *attemptResult {
	if s.paired != nil {
		d.mu.Lock()
		d.paired = true
		d.self = s.paired.ToNonAD().String()
		d.mu.Unlock()
		conn.started = time.Now()
	}
	if s.session != nil {
		d.report(ctx, h, *s.session)
	}
	if s.connected && conn.connectedAt.IsZero() {
		conn.connectedAt = time.Now()
	}
	if s.forget != forgetNone {
		d.forgetDevice(ctx, cli, s.forget == forgetLocal)
	}
	if s.end == nil {
		return nil
	}
	res := *s.end
	res.stable = conn.stable()
	return &res
}

// forgetDevice marks the device unpaired. After our own Logout it also
// deletes the device from the store if whatsmeow's delete failed (after a
// remote logout whatsmeow deletes it in its own goroutine: not touched
// here; a device left behind is refused again on the next connect).
func (d *Whatsmeow) forgetDevice(ctx context.Context, cli *whatsmeow.Client, deleteDevice bool) {
	d.mu.Lock()
	d.paired = false
	d.self = ""
	d.mu.Unlock()
	if !deleteDevice || cli.Store.ID == nil {
		return
	}
	if err := cli.Store.Delete(ctx); err != nil {
		d.log.Error().Err(err).Msg("Cannot delete the logged-out device from the device store.")
	}
}

func (d *Whatsmeow) drainSignals() {
	for {
		select {
		case <-d.sig:
		default:
			return
		}
	}
}

// report makes s the session and tells the handler, unless nothing changed.
// A device without an ID is never "disconnected": it is unpaired (with the
// reason). The own JID is filled in while paired.
func (d *Whatsmeow) report(ctx context.Context, h Handler, s Session) {
	d.mu.Lock()
	if !d.paired {
		switch s.State {
		case StateDisconnected, StateConnecting, StateConnected:
			s.State = StateUnpaired
		}
		if s.State == StateUnpaired || s.State == StatePairing {
			s.JID = ""
		}
	} else if s.JID == "" && s.State != StateUnpaired && s.State != StatePairing {
		s.JID = d.self
	}
	if sameSession(d.session, s) {
		d.mu.Unlock()
		return
	}
	d.session = s
	d.mu.Unlock()
	d.log.Info().Str("state", string(s.State)).Str("reason", s.Reason).Msg("The session changed.")
	if err := d.deliver(ctx, h, &SessionChanged{Session: s}); err != nil {
		d.log.Warn().Err(err).Str("state", string(s.State)).Msg("The handler failed on a session change.")
	}
}

func sameSession(a, b Session) bool {
	return a.State == b.State && a.Reason == b.Reason && a.JID == b.JID && a.QR == b.QR &&
		a.Until.Equal(b.Until) && a.QRExpires.Equal(b.QRExpires)
}

// deliver calls the handler, one event at a time.
func (d *Whatsmeow) deliver(ctx context.Context, h Handler, ev Event) error {
	d.hmu.Lock()
	defer d.hmu.Unlock()
	return h(ctx, ev)
}

// reconnectBackoff is an exponential back-off: initial, doubling, capped at max,
// each step jittered down to at most half.
type reconnectBackoff struct {
	initial, max, cur time.Duration
}

func (b *reconnectBackoff) next() time.Duration {
	switch {
	case b.cur == 0:
		b.cur = b.initial
	case b.cur < b.max:
		b.cur *= 2
	}
	if b.cur > b.max {
		b.cur = b.max
	}
	return jitterDown(b.cur)
}

func (b *reconnectBackoff) reset() { b.cur = 0 }

// jitterDown returns a random duration in [d/2, d].
func jitterDown(d time.Duration) time.Duration {
	if d <= 1 {
		return d
	}
	half := d / 2
	return half + rand.N(d-half+1)
}

// sleepOrDone waits for d; false when ctx ended first.
func sleepOrDone(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
