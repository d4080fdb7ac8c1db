package primary

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/rs/zerolog"

	"app/internal/buildinfo"
	"app/internal/config"
	"app/internal/store"
	"app/internal/webhook"
)

// Webhooks delivers the event log to the webhook subscriptions: each
// subscription has its own cursor over the log (its durable queue) and
// gets its events one at a time, in order. A failed attempt is retried
// with exponential back-off and jitter until the delivery is older than
// the maximum age, then it is dead and the next event follows; a 410
// from the receiver disables the subscription.
//
// Delivery is at least once: a primary stopped between the receiver's
// answer and the saving of the cursor sends that event again, with the
// same webhook-id, which receivers use to drop the repeat.
type Webhooks struct {
	Store store.Store
	Log   zerolog.Logger
	Cfg   config.Webhooks
	// Events, when set, is the log the primary appends to: deliveries
	// wake at each append instead of waiting for Poll.
	Events *EventLog
	// Reload is how often the subscriptions are read again (default 2s);
	// Poll how often a caught-up subscription looks for events (default 1s).
	Reload, Poll time.Duration
	// Backoff is the first retry delay (default 1s), doubling up to
	// MaxBackoff (default 5m); each is jittered by ±50%.
	Backoff, MaxBackoff time.Duration
}

// Task is the webhooks' primary task.
func (h *Webhooks) Task() Task { return Task{Name: "webhooks", Run: h.Run} }

type webhookRunner struct {
	version int
	cancel  context.CancelFunc
	done    chan struct{}
}

// Run starts a delivery loop per enabled subscription, and restarts it
// when the subscription is edited, until ctx ends.
func (h *Webhooks) Run(ctx context.Context, _ int64) error {
	h.defaults()
	client := webhook.NewGuard(h.Cfg.AllowedNetworks).Client(h.Cfg.Timeout)
	defer client.CloseIdleConnections()
	running := map[string]*webhookRunner{}
	stop := func(id string) {
		r := running[id]
		r.cancel()
		<-r.done
		delete(running, id)
	}
	defer func() {
		for id := range running {
			stop(id)
		}
	}()
	failing := false
	for {
		subs, err := h.Store.Webhooks(ctx)
		if err != nil && ctx.Err() == nil && !failing {
			h.Log.Warn().Err(err).Msg("Webhooks: cannot read the subscriptions; will retry.")
		}
		failing = err != nil
		if err == nil {
			live := make([]string, 0, len(subs))
			for _, sub := range subs {
				live = append(live, sub.ID)
				if r := running[sub.ID]; r != nil && (r.version != sub.Version || !sub.Enabled) {
					stop(sub.ID)
				}
				if sub.Enabled && running[sub.ID] == nil {
					rctx, cancel := context.WithCancel(ctx)
					r := &webhookRunner{version: sub.Version, cancel: cancel, done: make(chan struct{})}
					running[sub.ID] = r
					go func() {
						defer close(r.done)
						(&delivery{h: h, sub: sub, client: client,
							log: h.Log.With().Str("webhook", sub.ID).Logger()}).run(rctx)
					}()
				}
			}
			for id := range running {
				if !slices.Contains(live, id) {
					stop(id)
				}
			}
			if err := h.Store.ForgetWebhookStates(ctx, live); err != nil && ctx.Err() == nil {
				h.Log.Warn().Err(err).Msg("Webhooks: cannot forget deleted subscriptions.")
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(h.Reload):
		}
	}
}

func (h *Webhooks) defaults() {
	if h.Reload == 0 {
		h.Reload = 2 * time.Second
	}
	if h.Poll == 0 {
		h.Poll = time.Second
	}
	if h.Backoff == 0 {
		h.Backoff = time.Second
	}
	if h.MaxBackoff == 0 {
		h.MaxBackoff = 5 * time.Minute
	}
	if h.Cfg.Timeout == 0 {
		h.Cfg.Timeout = 10 * time.Second
	}
	if h.Cfg.MaxAge == 0 {
		h.Cfg.MaxAge = 24 * time.Hour
	}
}

// delivery is one subscription's loop: read after the cursor, deliver
// each wanted event until it is settled, move the cursor.
type delivery struct {
	h      *Webhooks
	sub    store.Webhook
	client *http.Client
	log    zerolog.Logger
	st     store.WebhookState
	// resumed: the first event may have a record of attempts made
	// before (by a stopped primary, or before an edit).
	resumed bool
}

var errHalted = errors.New("the receiver answered 410 Gone")

func (d *delivery) run(ctx context.Context) {
	h := d.h
	ok := retry(ctx, d.log, "read a webhook's progress", func(ctx context.Context) error {
		st, err := h.Store.WebhookState(ctx, d.sub.ID)
		if errors.Is(err, store.ErrNotFound) {
			st, err = store.WebhookState{ID: d.sub.ID, Cursor: d.sub.StartSeq}, nil
		}
		d.st = st
		return err
	})
	if !ok {
		return
	}
	if rp := d.sub.Replay; rp != nil && rp.ID != d.st.ReplayID {
		d.log.Info().Int64("from_seq", rp.FromSeq+1).Int64("was_at", d.st.Cursor).Msg("Webhook: replaying.")
		d.st.Cursor, d.st.ReplayID = rp.FromSeq, rp.ID
		if !d.save(ctx) {
			return
		}
	} else {
		d.resumed = true
	}
	for ctx.Err() == nil {
		var wake <-chan struct{}
		if h.Events != nil {
			wake = h.Events.Appended() // taken before reading: an append meanwhile still wakes us
		}
		evs, err := h.Store.Events(ctx, d.st.Cursor, 100)
		if err != nil {
			if ctx.Err() == nil {
				d.log.Warn().Err(err).Msg("Webhook: cannot read the event log; will retry.")
			}
			sleep(ctx, h.Poll)
			continue
		}
		if len(evs) > 0 && evs[0].Seq > d.st.Cursor+1 && d.st.Cursor > 0 {
			d.log.Warn().Int64("from", d.st.Cursor+1).Int64("to", evs[0].Seq-1).
				Msg("Webhook: events were pruned from the log (APP_EVENT_RETENTION) before they could be delivered.")
		}
		moved := false
		for _, e := range evs {
			if d.sub.Wants(e.Type) {
				if err := d.send(ctx, e); err != nil {
					return
				}
				d.st.Cursor = e.Seq
				if !d.save(ctx) {
					return
				}
				moved = false
				continue
			}
			d.st.Cursor, moved = e.Seq, true
		}
		if moved && !d.save(ctx) {
			return
		}
		if len(evs) == 0 {
			select {
			case <-ctx.Done():
			case <-wake:
			case <-time.After(h.Poll):
			}
		}
	}
}

func (d *delivery) save(ctx context.Context) bool {
	return retry(ctx, d.log, "save a webhook's progress", func(ctx context.Context) error {
		return d.h.Store.SaveWebhookState(ctx, d.st)
	})
}

func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

// send delivers e until the receiver takes it or the delivery is dead.
// It returns an error when the loop must stop: ctx ended, or the
// receiver answered 410.
func (d *delivery) send(ctx context.Context, e store.Event) error {
	h := d.h
	rec := store.WebhookDelivery{WebhookID: d.sub.ID, Seq: e.Seq, Type: e.Type, EventAt: e.At}
	if d.resumed {
		d.resumed = false
		if prev, err := d.readRecord(ctx, e.Seq); err == nil && prev.Status == store.DeliveryRetrying {
			rec = prev
		}
	}
	body := e.JSON()
	id := "evt_" + strconv.FormatInt(e.Seq, 10)
	delay := h.Backoff
	for n := 1; ; n++ {
		if rec.Attempts > 0 && !rec.NextAttemptAt.IsZero() {
			if wait := time.Until(rec.NextAttemptAt); wait > 0 {
				select {
				case <-ctx.Done():
					return ctx.Err()
				case <-time.After(wait):
				}
			}
		}
		start := time.Now()
		status, err := d.post(ctx, id, body)
		if ctx.Err() != nil {
			return ctx.Err() // the primary is stopping: the next one attempts again
		}
		if rec.Attempts == 0 {
			rec.FirstAttemptAt = start
		}
		rec.Attempts++
		rec.LastAttemptAt, rec.DurationMS, rec.ResponseStatus = start, time.Since(start).Milliseconds(), status
		rec.Error, rec.NextAttemptAt = "", time.Time{}
		if err != nil {
			rec.Error = truncate(err.Error(), 500)
		}
		switch {
		case err == nil && status >= 200 && status < 300:
			rec.Status, rec.DeliveredAt = store.DeliveryDelivered, time.Now()
			d.record(ctx, rec)
			return nil
		case status == http.StatusGone:
			rec.Status = store.DeliveryHalted
			d.record(ctx, rec)
			d.halt(ctx)
			return errHalted
		}
		if rec.Error == "" {
			rec.Error = "the receiver answered " + strconv.Itoa(status) + " " + http.StatusText(status)
		}
		deadline := rec.FirstAttemptAt.Add(h.Cfg.MaxAge)
		if !time.Now().Before(deadline) {
			rec.Status = store.DeliveryDead
			d.record(ctx, rec)
			d.log.Warn().Int64("seq", e.Seq).Int("attempts", rec.Attempts).Str("error", rec.Error).
				Msg("Webhook: delivery is dead after APP_WEBHOOK_MAX_AGE; moving on (replay it with POST /v1/webhooks/{id}/replay).")
			return nil
		}
		// Full back-off, jittered ±50%, never past the deadline (the last
		// attempt is made at the maximum age).
		next := time.Now().Add(delay/2 + rand.N(delay))
		if next.After(deadline) {
			next = deadline
		}
		rec.Status, rec.NextAttemptAt = store.DeliveryRetrying, next
		d.record(ctx, rec)
		if n == 1 || n%10 == 0 {
			d.log.Warn().Int64("seq", e.Seq).Int("attempts", rec.Attempts).Str("error", rec.Error).
				Time("next_attempt_at", next).Msg("Webhook: delivery failed; will retry.")
		}
		delay = min(2*delay, h.MaxBackoff)
	}
}

func (d *delivery) readRecord(ctx context.Context, seq int64) (store.WebhookDelivery, error) {
	list, err := d.h.Store.Deliveries(ctx, d.sub.ID, seq+1, "", 1)
	if err != nil || len(list) == 0 || list[0].Seq != seq {
		return store.WebhookDelivery{}, store.ErrNotFound
	}
	return list[0], nil
}

// record saves the delivery's record; an attempt whose record could not
// be written is still settled (the record is for people, the cursor is
// what counts), so a failure only stops it when ctx ends.
func (d *delivery) record(ctx context.Context, rec store.WebhookDelivery) {
	retry(ctx, d.log, "record a webhook delivery", func(ctx context.Context) error {
		return d.h.Store.SaveDelivery(ctx, rec)
	})
}

// post makes one attempt: the status the receiver answered, or an error
// when there was no answer (refused address, timeout, connection error).
func (d *delivery) post(ctx context.Context, id string, body []byte) (int, error) {
	now := time.Now()
	sig, err := webhook.Sign(d.sub.Secret, id, now, body)
	if err != nil {
		return 0, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.sub.URL, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "app-webhooks/"+buildinfo.Version)
	req.Header.Set(webhook.HeaderID, id)
	req.Header.Set(webhook.HeaderTimestamp, strconv.FormatInt(now.Unix(), 10))
	req.Header.Set(webhook.HeaderSignature, sig)
	resp, err := d.client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	// Read a little of the answer so the connection can be reused.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	return resp.StatusCode, nil
}

// halt disables the subscription after a 410, unless it was edited
// meanwhile (then the edit decides), and says so in the event log.
func (d *delivery) halt(ctx context.Context) {
	reason := "the receiver answered 410 Gone on " + time.Now().UTC().Format(time.RFC3339)
	var err error
	retry(ctx, d.log, "disable a webhook", func(ctx context.Context) error {
		err = d.h.Store.DisableWebhook(ctx, d.sub.ID, d.sub.Version, reason)
		if errors.Is(err, store.ErrConflict) {
			return nil
		}
		return err
	})
	if err != nil {
		return
	}
	d.log.Warn().Str("url", d.sub.URL).Msg("Webhook: the receiver answered 410 Gone; the subscription is disabled (enable it again with PATCH).")
	if d.h.Events != nil {
		// The subscription's runner notices the disable and cancels ctx,
		// possibly before this append: the event must not go with it.
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := d.h.Events.Append(actx, "webhook.disabled", webhookDisabled{ID: d.sub.ID, URL: d.sub.URL, Reason: reason}); err != nil {
			d.log.Error().Err(err).Msg("Webhook: cannot append the webhook.disabled event.")
		}
	}
}

// webhookDisabled is "webhook.disabled".
type webhookDisabled struct {
	ID     string `bson:"id" json:"id"`
	URL    string `bson:"url" json:"url"`
	Reason string `bson:"reason" json:"reason"`
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
