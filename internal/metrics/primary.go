package metrics

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"app/internal/store"
)

// PrimaryState is what the primary collector reads of the process it
// runs in: whether it holds the lease, and its epoch.
type PrimaryState interface {
	IsHolder() bool
	Epoch() int64
}

// primaryCollector reads the suite's state from the database at each
// scrape (a few small queries): the outbox backlog, the webhooks'
// backlogs, the WhatsApp session and the lease. A standby answers too, so
// whichever primary is scraped tells the same story.
type primaryCollector struct {
	st        store.Store
	state     PrimaryState
	heartbeat time.Duration // APP_HEARTBEAT_INTERVAL: three missed make a process stale

	up, processes, holder, epoch, outboxDepth, outboxAge, whatsapp, webhookBacklog, webhookLag, lastEvent *prometheus.Desc
}

// Primary registers the primary's metrics and returns the histogram of
// the scheduler's lateness, for the scheduler to observe. heartbeat is
// the processes' heartbeat interval.
func Primary(reg prometheus.Registerer, st store.Store, state PrimaryState, heartbeat time.Duration) prometheus.Observer {
	c := &primaryCollector{st: st, state: state, heartbeat: heartbeat,
		up: prometheus.NewDesc("app_database_up", "1 when the database answered this scrape's ping within 2 s, 0 when not (the series read from it are then left out).", nil, nil),
		processes: prometheus.NewDesc("app_cluster_processes",
			"Processes of every machine by role and heartbeat: alive, or stale (three heartbeats late without saying they stopped), as /v1/cluster shows them.",
			[]string{"role", "state"}, nil),
		holder: prometheus.NewDesc("app_primary_lease_holder", "1 when this process holds the primary lease, 0 when it stands by.", nil, nil),
		epoch:  prometheus.NewDesc("app_primary_lease_epoch", "The current lease's epoch (it grows at each change of holder).", []string{"holder"}, nil),
		outboxDepth: prometheus.NewDesc("app_outbox_queued_messages",
			"Messages accepted and not sent yet (queued or sending).", nil, nil),
		outboxAge: prometheus.NewDesc("app_outbox_oldest_queued_age_seconds",
			"Age of the oldest message not sent yet; 0 when none waits.", nil, nil),
		whatsapp: prometheus.NewDesc("app_whatsapp_state",
			"The WhatsApp session's state: 1 for the current one.", []string{"state"}, nil),
		webhookBacklog: prometheus.NewDesc("app_webhook_backlog_events",
			"Events of the log after a subscription's cursor (its backlog, counting events it does not ask for).", []string{"webhook"}, nil),
		webhookLag: prometheus.NewDesc("app_webhook_lag_seconds",
			"Age of the oldest event a subscription has not settled; 0 when caught up.", []string{"webhook"}, nil),
		lastEvent: prometheus.NewDesc("app_event_log_position", "The event log's newest seq.", nil, nil),
	}
	late := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "app_scheduler_lateness_seconds",
		Help:    "How late each schedule run was enqueued after its due time.",
		Buckets: []float64{.05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300}})
	reg.MustRegister(c, late)
	return late
}

// States a session can be in (store.WASession.State).
var sessionStates = []string{"unpaired", "pairing", "connecting", "connected", "disconnected", "logged_out", "temporarily_banned", "replaced"}

func (c *primaryCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.up, c.processes, c.holder, c.epoch, c.outboxDepth, c.outboxAge, c.whatsapp, c.webhookBacklog, c.webhookLag, c.lastEvent} {
		ch <- d
	}
}

func (c *primaryCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	holder := 0.0
	if c.state.IsHolder() {
		holder = 1
	}
	ch <- prometheus.MustNewConstMetric(c.holder, prometheus.GaugeValue, holder)
	pctx, pcancel := context.WithTimeout(ctx, 2*time.Second)
	err := c.st.Ping(pctx)
	pcancel()
	if err != nil {
		ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, 0)
		return
	}
	ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, 1)
	now := time.Now()
	if hbs, err := c.st.Heartbeats(ctx, now.Add(-10*c.heartbeat)); err == nil {
		count := map[[2]string]int{}
		for _, role := range []string{"worker", "primary"} {
			count[[2]string{role, "alive"}], count[[2]string{role, "stale"}] = 0, 0
		}
		for _, hb := range hbs {
			switch {
			case hb.State == "stopped":
			case hb.Late(now, c.heartbeat):
				count[[2]string{hb.Role, "stale"}]++
			default:
				count[[2]string{hb.Role, "alive"}]++
			}
		}
		for k, n := range count {
			ch <- prometheus.MustNewConstMetric(c.processes, prometheus.GaugeValue, float64(n), k[0], k[1])
		}
	}
	if l, err := c.st.CurrentLease(ctx); err == nil {
		ch <- prometheus.MustNewConstMetric(c.epoch, prometheus.GaugeValue, float64(l.Epoch), l.Holder)
	}
	if n, oldest, err := c.st.OutboxBacklog(ctx); err == nil {
		age := 0.0
		if !oldest.IsZero() {
			age = time.Since(oldest).Seconds()
		}
		ch <- prometheus.MustNewConstMetric(c.outboxDepth, prometheus.GaugeValue, float64(n))
		ch <- prometheus.MustNewConstMetric(c.outboxAge, prometheus.GaugeValue, age)
	}
	if ws, err := c.st.Session(ctx); err == nil || err == store.ErrNotFound {
		cur := ws.State
		if cur == "" {
			cur = "unpaired"
		}
		for _, s := range sessionStates {
			v := 0.0
			if s == cur {
				v = 1
			}
			ch <- prometheus.MustNewConstMetric(c.whatsapp, prometheus.GaugeValue, v, s)
		}
	}
	last, err := c.st.LastEventSeq(ctx)
	if err != nil {
		return
	}
	ch <- prometheus.MustNewConstMetric(c.lastEvent, prometheus.GaugeValue, float64(last))
	hooks, err := c.st.Webhooks(ctx)
	if err != nil {
		return
	}
	for _, wh := range hooks {
		cursor := wh.StartSeq
		if st, err := c.st.WebhookState(ctx, wh.ID); err == nil {
			cursor = st.Cursor
		}
		ch <- prometheus.MustNewConstMetric(c.webhookBacklog, prometheus.GaugeValue, float64(max(0, last-cursor)), wh.ID)
		lag := 0.0
		if cursor < last {
			if evs, err := c.st.Events(ctx, cursor, 1); err == nil && len(evs) == 1 {
				lag = time.Since(evs[0].At).Seconds()
			}
		}
		ch <- prometheus.MustNewConstMetric(c.webhookLag, prometheus.GaugeValue, lag, wh.ID)
	}
}
