// Package worker is the HTTP API role: it serves the socket systemd (or
// `app run`) hands over, records its heartbeat and reports to systemd.
package worker

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"app/internal/config"
	"app/internal/console"
	"app/internal/httpapi"
	"app/internal/metrics"
	"app/internal/proc"
	"app/internal/realtime"
	"app/internal/store"
	"app/internal/systemd"
	"app/internal/webhook"
)

// ErrNoSocket is a setup error: nothing handed over a socket and APP_LISTEN
// does not ask the worker to bind one.
var ErrNoSocket = errors.New("no listening socket was handed over: start workers through app.socket (systemd) or `app run`, or set APP_LISTEN to let this worker bind one itself")

// Listen returns the socket handed over with the systemd protocol. Without
// one it binds APP_LISTEN when bind is true or APP_LISTEN was set.
func Listen(cfg config.Config, bind bool) (net.Listener, error) {
	l, err := systemd.Listener()
	if err == nil {
		return l, nil
	}
	if !errors.Is(err, systemd.ErrNoSocket) {
		return nil, err
	}
	if !bind && !cfg.ListenExplicit {
		return nil, ErrNoSocket
	}
	l, err = net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("worker: listen on APP_LISTEN=%s: %w", cfg.Listen, err)
	}
	return l, nil
}

// Worker serves the HTTP API on Listener.
type Worker struct {
	Cfg      config.Config
	Log      zerolog.Logger
	Store    store.Store
	ID       proc.Identity
	Listener net.Listener
	Notify   systemd.Notifier
	// Metrics, when set, is the registry to use (`app serve` shares one
	// with its primary and serves it itself); by default the worker makes
	// its own and serves it on its metrics port.
	Metrics *metrics.Registry

	api  *httpapi.Server
	dbOK atomic.Bool
}

// Run serves until ctx ends, then stops accepting, lets in-flight requests
// finish for up to APP_SHUTDOWN_TIMEOUT and returns.
func (w *Worker) Run(ctx context.Context) error {
	w.api = &httpapi.Server{Backend: w.Store, Log: w.Log, Worker: w.ID.Worker, MaxBodyBytes: w.Cfg.MaxBodyBytes,
		HeartbeatInterval: w.Cfg.HeartbeatInterval, Sessions: w.Store, Keys: w.Store, Messages: w.Store, Chats: w.Store,
		Media: w.Store, MediaMaxBytes: w.Cfg.WhatsApp.MediaMaxBytes, MediaMaxUploads: w.Cfg.MediaMaxUploads, Schedules: w.Store,
		Webhooks: w.Store, WebhookGuard: webhook.NewGuard(w.Cfg.Webhooks.AllowedNetworks),
		RateLimit: w.Cfg.RateLimit / float64(w.Cfg.Workers()), RateBurst: max(1, (w.Cfg.RateBurst+w.Cfg.Workers()-1)/w.Cfg.Workers()),
		Sandbox: w.Cfg.WhatsApp.Driver == "sandbox", Console: console.New()}
	// Metrics: this process's registry, every series labelled with the
	// worker's number.
	reg := w.Metrics
	if reg == nil {
		r := metrics.NewRegistry(prometheus.Labels{"worker": w.ID.Worker})
		metrics.Pool(r.Reg, w.Store)
		reg = &r
	}
	w.api.Metrics, w.api.MetricsGatherer = metrics.NewHTTP(reg.Reg), reg.Gatherer
	hub := &realtime.Hub{Src: w.Store, Log: w.Log}
	streamsDone := make(chan struct{})
	w.api.Realtime = &httpapi.Realtime{Hub: hub, Src: w.Store, Done: streamsDone, Tokens: w.Store}
	handler := w.api.Handler()
	srv := httpapi.NewHTTPServer(handler, w.Log)
	// Streams never end by themselves: stopping ends them first, so their
	// connections drain like the others (the clients reconnect elsewhere).
	var endStreams sync.Once
	stopStreams := func() { endStreams.Do(func() { close(streamsDone) }) }
	srv.RegisterOnShutdown(stopStreams)

	serveErr := make(chan error, 1)
	drain := newDrainer(srv, w.Listener)
	go func() { serveErr <- srv.Serve(drain.Listener()) }()
	w.Log.Info().Str("listen", w.Listener.Addr().String()).Msg("Worker is accepting connections.")

	// READY once the listener is up and the database answered, or after
	// APP_DB_WAIT with the state reported as degraded.
	w.dbOK.Store(proc.WaitDB(ctx, w.Store, w.Cfg.DBWait))
	if ctx.Err() == nil {
		if !w.dbOK.Load() {
			w.Log.Warn().Dur("waited", w.Cfg.DBWait).Msg("The database does not answer; serving degraded until it does.")
		}
		w.Notify.Ready(w.status())
	}

	var wg sync.WaitGroup
	bgCtx, stopBg := context.WithCancel(context.WithoutCancel(ctx))
	hb := &proc.Heartbeat{Store: w.Store, ID: w.ID, Interval: w.Cfg.HeartbeatInterval, Log: w.Log,
		Requests: w.api.Requests, State: w.state}
	if addr := w.metricsAddr(); addr != "" {
		wg.Add(1)
		go func() { defer wg.Done(); metrics.Serve(bgCtx, addr, reg.Gatherer, w.Log) }()
	}
	wg.Add(4)
	go func() { defer wg.Done(); hub.Run(bgCtx) }()
	go func() { defer wg.Done(); hb.Run(bgCtx) }()
	go func() { defer wg.Done(); w.watchDB(bgCtx) }()
	go func() { defer wg.Done(); proc.Watchdog(bgCtx, w.Notify, func() bool { return responsive(handler) }) }()

	var err error
	serving := true
	select {
	case <-ctx.Done():
	case err = <-serveErr:
		err = fmt.Errorf("worker: serve: %w", err)
		serving = false
	}
	w.Notify.Stopping()
	w.Log.Info().Dur("timeout", w.Cfg.ShutdownTimeout).Msg("Stopping: finishing in-flight requests.")
	sctx, cancel := context.WithTimeout(context.Background(), w.Cfg.ShutdownTimeout)
	defer cancel()
	if serving {
		// Shutdown would close idle keep-alive connections under clients
		// sending on them: let every connection end first (see drainer).
		stopStreams()
		deadline, _ := sctx.Deadline()
		start := time.Now()
		closedIdle, left := drain.drain(serveErr, min(KeepAliveIdle+time.Second, w.Cfg.ShutdownTimeout*3/4), deadline)
		w.Log.Info().Dur("took", time.Since(start)).Int("closed_idle", closedIdle).Int("left_open", left).
			Msg("Connections drained: each was answered with Connection: close or closed after idling.")
	}
	if serr := srv.Shutdown(sctx); serr != nil {
		w.Log.Warn().Err(serr).Msg("In-flight requests did not finish in time; closing them.")
		_ = srv.Close()
	}
	stopBg()
	wg.Wait()
	return err
}

// metricsAddr is where this worker serves its metrics: APP_METRICS_LISTEN's
// port plus its number, for the primary to gather ("" when off, or for
// `app serve`, whose one listener the caller runs).
func (w *Worker) metricsAddr() string {
	n, err := strconv.Atoi(w.ID.Worker)
	if w.Cfg.MetricsListen == "" || err != nil || w.Metrics != nil {
		return ""
	}
	addr, err := metrics.WorkerAddr(w.Cfg.MetricsListen, n)
	if err != nil {
		return ""
	}
	return addr
}

func (w *Worker) state() string {
	if w.dbOK.Load() {
		return "serving"
	}
	return "degraded"
}

func (w *Worker) status() string {
	db := "database ok"
	if !w.dbOK.Load() {
		db = "database unreachable (degraded)"
	}
	return fmt.Sprintf("serving on %s; %d requests; %s", w.Listener.Addr(), w.api.Requests(), db)
}

// watchDB follows the database's reachability for STATUS= and the heartbeat.
func (w *Worker) watchDB(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(w.Cfg.HeartbeatInterval):
		}
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		ok := w.Store.Ping(pctx) == nil
		cancel()
		if ok != w.dbOK.Swap(ok) {
			if ok {
				w.Log.Info().Msg("The database answers again.")
			} else {
				w.Log.Warn().Msg("The database stopped answering; serving degraded.")
			}
		}
		w.Notify.Status(w.status())
	}
}

// responsive is the watchdog's health check: the HTTP handler answers
// /healthz within a second. A database outage does not count: restarting
// workers would not bring the database back, and /readyz reports it.
func responsive(h http.Handler) bool {
	done := make(chan int, 1)
	go func() {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/healthz", nil))
		done <- rec.Code
	}()
	select {
	case code := <-done:
		return code == http.StatusOK
	case <-time.After(time.Second):
		return false
	}
}
