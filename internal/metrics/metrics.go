// Package metrics holds the suite's Prometheus metrics
// (github.com/prometheus/client_golang) and the listeners that serve them.
//
// Every process has its own registry. Each worker serves its metrics on a
// loopback port of its own (APP_METRICS_LISTEN's port plus its number) and
// every series of a worker carries its number as the `worker` label; the
// primary serves on APP_METRICS_LISTEN its own metrics and those of every
// worker of its machine, gathered at each scrape. One scrape target per
// machine sees the whole machine, with no series counted twice, however
// the kernel spreads the API's connections over the workers.
package metrics

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/rs/zerolog"

	"app/internal/store"
)

// Registry is one process's metrics. Reg registers (with the process's
// labels); Gatherer reads them back.
type Registry struct {
	Reg      prometheus.Registerer
	Gatherer prometheus.Gatherer
}

// NewRegistry is a registry with the Go runtime's and the process's
// collectors; labels (the worker's number) go on every series.
func NewRegistry(labels prometheus.Labels) Registry {
	r := prometheus.NewRegistry()
	reg := prometheus.WrapRegistererWith(labels, r)
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return Registry{Reg: reg, Gatherer: r}
}

// HTTP is what a worker measures of its requests.
type HTTP struct {
	requests    *prometheus.CounterVec
	duration    *prometheus.HistogramVec
	inFlight    prometheus.Gauge
	subscribers *prometheus.GaugeVec
}

// NewHTTP registers the request metrics.
func NewHTTP(reg prometheus.Registerer) *HTTP {
	m := &HTTP{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "app_http_requests_total",
			Help: "HTTP requests answered, by route (the pattern, \"unmatched\" for none), method and status code."},
			[]string{"route", "method", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "app_http_request_duration_seconds",
			Help:    "Time from a request's arrival to its last byte written, by route and method (streams: their whole life).",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 10}},
			[]string{"route", "method"}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{Name: "app_http_requests_in_flight",
			Help: "Requests being served now, open realtime streams included."}),
		subscribers: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "app_realtime_subscribers",
			Help: "Realtime clients connected now, by transport (sse, ws)."}, []string{"transport"}),
	}
	reg.MustRegister(m.requests, m.duration, m.inFlight, m.subscribers)
	return m
}

// Begin counts a request in flight; the function it returns ends it.
func (m *HTTP) Begin() func(route, method string, code int) {
	if m == nil {
		return func(string, string, int) {}
	}
	start := time.Now()
	m.inFlight.Inc()
	return func(route, method string, code int) {
		m.inFlight.Dec()
		m.requests.WithLabelValues(route, method, strconv.Itoa(code)).Inc()
		m.duration.WithLabelValues(route, method).Observe(time.Since(start).Seconds())
	}
}

// Subscribed counts a realtime client of transport; the function it
// returns counts it gone.
func (m *HTTP) Subscribed(transport string) func() {
	if m == nil {
		return func() {}
	}
	g := m.subscribers.WithLabelValues(transport)
	g.Inc()
	return g.Dec
}

// Pool registers the process's MongoDB connection figures, read from the
// driver's pool and command monitors at each scrape. On SQLite there is no
// pool to show: each process opens the file, and nothing is registered.
func Pool(reg prometheus.Registerer, st store.Store) {
	if st.Engine() != store.MongoDB {
		return
	}
	stats, pool := st.Stats(), st.Pool()
	reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "app_mongodb_pool_connections",
			Help: "MongoDB connections open now in this process's pool."}, func() float64 { return float64(stats.Open()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "app_mongodb_pool_connections_in_use",
			Help: "MongoDB connections checked out by operations in progress; near app_mongodb_pool_max_connections, the pool is the bottleneck."},
			func() float64 { return float64(stats.InUse()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "app_mongodb_pool_checkout_failures_total",
			Help: "Operations that could not get a MongoDB connection (pool full past the timeout, or the server unreachable)."},
			func() float64 { return float64(stats.CheckoutFailures()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "app_mongodb_pool_connections_peak",
			Help: "The most MongoDB connections this process had open at once."}, func() float64 { return float64(stats.MaxOpen()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "app_mongodb_pool_max_connections",
			Help: "This process's pool size: its share of MONGO_MAX_TOTAL_CONNECTIONS."}, func() float64 { return float64(pool.Max) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "app_mongodb_connections_created_total",
			Help: "MongoDB connections this process opened."}, func() float64 { return float64(stats.Created()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "app_mongodb_commands_total",
			Help: "Commands (round trips) this process sent to MongoDB."}, func() float64 { return float64(stats.Commands()) }),
	)
}

// WorkerAddr is worker n's metrics address: base's port plus n, on
// base's host.
func WorkerAddr(base string, n int) (string, error) {
	host, port, err := net.SplitHostPort(base)
	if err != nil {
		return "", err
	}
	p, err := strconv.Atoi(port)
	if err != nil || p+n > 65535 {
		return "", fmt.Errorf("metrics: no port %s+%d", port, n)
	}
	return net.JoinHostPort(host, strconv.Itoa(p+n)), nil
}

// Serve serves g at /metrics on addr until ctx ends. A listener that
// cannot be opened (the port is taken) is logged and given up: metrics
// are not worth a process that does not start.
func Serve(ctx context.Context, addr string, g prometheus.Gatherer, log zerolog.Logger) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		log.Warn().Err(err).Str("listen", addr).Msg("Metrics: cannot listen; serving no metrics (set APP_METRICS_LISTEN).")
		return
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", Handler(g, log))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, WriteTimeout: 30 * time.Second}
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	log.Debug().Str("listen", addr).Msg("Metrics: serving /metrics.")
	_ = srv.Serve(ln)
}

// Handler serves g in the Prometheus exposition formats. A source that
// fails (a worker restarting) leaves its series out of this scrape.
func Handler(g prometheus.Gatherer, log zerolog.Logger) http.Handler {
	return promhttp.HandlerFor(g, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError, ErrorLog: errorLog{log}})
}

type errorLog struct{ log zerolog.Logger }

func (e errorLog) Println(v ...any) { e.log.Debug().Msg("Metrics: " + fmt.Sprint(v...)) }

// Remote gathers another process's metrics from its /metrics.
type Remote struct {
	URL    string
	Client *http.Client
}

// Gather fetches and decodes the other process's metric families.
func (r Remote) Gather() ([]*dto.MetricFamily, error) {
	c := r.Client
	if c == nil {
		c = &http.Client{Timeout: 3 * time.Second}
	}
	req, err := http.NewRequest(http.MethodGet, r.URL, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", string(expfmt.NewFormat(expfmt.TypeProtoDelim)))
	res, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("metrics: %s answered %d", r.URL, res.StatusCode)
	}
	dec := expfmt.NewDecoder(res.Body, expfmt.ResponseFormat(res.Header))
	var out []*dto.MetricFamily
	for {
		mf := &dto.MetricFamily{}
		if err := dec.Decode(mf); err != nil {
			if errors.Is(err, io.EOF) {
				return out, nil
			}
			return out, fmt.Errorf("metrics: %s: %w", r.URL, err)
		}
		out = append(out, mf)
	}
}
