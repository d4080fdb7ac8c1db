package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/user"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"app/internal/cluster"
	"app/internal/config"
	"app/internal/embeddb"
	"app/internal/metrics"
	"app/internal/primary"
	"app/internal/proc"
	"app/internal/store"
	"app/internal/systemd"
	"app/internal/whatsapp"
	"app/internal/worker"
)

func runWorker(ctx context.Context, cfg config.Config, _, _ io.Writer) error {
	log := newLogger(cfg, "worker", cfg.WorkerID)
	tuneRuntime(cfg)
	ln, err := worker.Listen(cfg, false)
	if errors.Is(err, worker.ErrNoSocket) {
		return setupError{err}
	}
	if err != nil {
		return err
	}
	st, err := store.Connect(cfg, "app-worker-"+cfg.WorkerID, log)
	if err != nil {
		return err
	}
	defer closeStore(st)
	log.Info().Str("listen", ln.Addr().String()).Msg(fmt.Sprintf("worker %s started (pid %d)", cfg.WorkerID, os.Getpid()))
	w := &worker.Worker{Cfg: cfg, Log: log, Store: st, ID: proc.NewIdentity("worker", cfg.WorkerID), Listener: ln}
	return w.Run(ctx)
}

// workerGCPercent is a worker's GOGC unless the environment sets one. A
// worker's live heap is a few MB, so the default of 100 collects after
// every few MB of request garbage; 400 lets the heap grow to about five
// times the live data first.
const workerGCPercent = 400

// tuneRuntime fits a worker to running beside its siblings, unless GOGC or
// GOMAXPROCS say otherwise: each worker gets its share of the CPUs (at
// least one), as the original one-worker-per-CPU cluster did. N workers
// each scheduling on all N CPUs only add idle spinning and context
// switches; `make bench` (BenchmarkHTTPCeiling) measures the workers.
func tuneRuntime(cfg config.Config) {
	if _, set := os.LookupEnv("GOGC"); !set {
		debug.SetGCPercent(workerGCPercent)
	}
	if _, set := os.LookupEnv("GOMAXPROCS"); !set {
		runtime.GOMAXPROCS(max(1, runtime.GOMAXPROCS(0)/cfg.Workers()))
	}
}

func runPrimary(ctx context.Context, cfg config.Config, _, _ io.Writer) error {
	log := newLogger(cfg, "primary", "")
	st, err := store.Connect(cfg, "app-primary", log)
	if err != nil {
		return err
	}
	defer closeStore(st)
	log.Info().Msg(fmt.Sprintf("primary started (pid %d)", os.Getpid()))
	reg := metrics.NewRegistry(nil)
	p, err := newPrimary(cfg, st, log, reg)
	if err != nil {
		return err
	}
	p.NotifyReady = true
	if cfg.MetricsListen != "" {
		// One scrape target for the machine: this process and the
		// workers, each on its own port after this one.
		g := prometheus.Gatherers{reg.Gatherer}
		for n := 1; n <= cfg.Workers(); n++ {
			if addr, err := metrics.WorkerAddr(cfg.MetricsListen, n); err == nil {
				g = append(g, metrics.Remote{URL: "http://" + addr + "/metrics"})
			}
		}
		mctx, stop := context.WithCancel(ctx)
		defer stop()
		go metrics.Serve(mctx, cfg.MetricsListen, g, log)
	}
	return p.Run(ctx)
}

// newPrimary builds the primary with its tasks (WhatsApp, the scheduler,
// webhooks) sharing one event log.
func newPrimary(cfg config.Config, st store.Store, log zerolog.Logger, reg metrics.Registry) (*primary.Primary, error) {
	wa, err := newWhatsApp(cfg, st, log)
	if err != nil {
		return nil, err
	}
	events := primary.NewEventLog(st, log)
	wa.Events = events
	sched := &primary.Scheduler{Store: st, Log: log.With().Str("component", "scheduler").Logger(), Events: events}
	hooks := &primary.Webhooks{Store: st, Log: log.With().Str("component", "webhooks").Logger(), Cfg: cfg.Webhooks, Events: events}
	p := &primary.Primary{Cfg: cfg, Log: log, Store: st, ID: proc.NewIdentity("primary", ""), Events: events, Scheduler: sched,
		Tasks: []primary.Task{wa.Task(), sched.Task(), hooks.Task()}}
	metrics.Pool(reg.Reg, st)
	late := metrics.Primary(reg.Reg, st, p, cfg.HeartbeatInterval)
	sched.Lateness = func(d time.Duration) { late.Observe(d.Seconds()) }
	return p, nil
}

// newWhatsApp builds the primary's WhatsApp task with the configured
// driver. Both keep their device state in the state directory.
func newWhatsApp(cfg config.Config, st store.Store, log zerolog.Logger) (*primary.WhatsApp, error) {
	var d whatsapp.Driver
	switch cfg.WhatsApp.Driver {
	case "sandbox":
		sb, err := whatsapp.NewSandbox(whatsapp.SandboxConfig{Dir: cfg.StateDir})
		if err != nil {
			return nil, err
		}
		d = sb
	default:
		d = whatsapp.NewWhatsmeow(whatsapp.WhatsmeowConfig{StoreDir: cfg.StateDir, Log: log})
	}
	log.Info().Str("driver", cfg.WhatsApp.Driver).Str("state_dir", cfg.StateDir).Msg("WhatsApp driver chosen.")
	return &primary.WhatsApp{Cfg: cfg.WhatsApp, Driver: d, Store: st, Log: log.With().Str("component", "whatsapp").Logger()}, nil
}

func runDB(ctx context.Context, cfg config.Config, _, _ io.Writer) error {
	log := newLogger(cfg, "db", "")
	warnEmbedded(cfg, log)
	var n systemd.Notifier
	db, err := startDB(ctx, cfg, log, n, 30*time.Second)
	if errors.Is(err, embeddb.ErrLocked) {
		// Restarting would meet the same lock: treat it like a setup error.
		return setupError{err}
	}
	if err != nil || db == nil {
		return err
	}
	log.Info().Str("socket", cfg.DBSocket).Str("data", cfg.DBDataDir()).
		Msg(fmt.Sprintf("database started (pid %d)", os.Getpid()))
	n.Ready("serving the embedded database on " + cfg.DBSocket)
	select {
	case <-ctx.Done():
	case err = <-db.Done():
		err = fmt.Errorf("embedded database stopped: %v", err)
	}
	n.Stopping()
	db.Stop()
	log.Info().Msg("Database stopped.")
	return err
}

// startDB starts the embedded database. When the state directory cannot
// be used (wrong owner or mode, a read-only file system) it says so once,
// reports READY with the reason as its status, so that the workers and the
// primary start and serve degraded as they do while any database is down,
// and tries again with back-off up to maxBackoff until it can or ctx ends
// (nil, nil). Restarting the unit instead would repeat the same error in
// the journal every few seconds and soon hit systemd's start limit.
func startDB(ctx context.Context, cfg config.Config, log zerolog.Logger, n systemd.Notifier, maxBackoff time.Duration) (*embeddb.DB, error) {
	backoff := maxBackoff / 30
	for attempts := 1; ; attempts++ {
		db, err := embeddb.Start(ctx, cfg.DBDataDir(), cfg.DBSocket, log)
		if err == nil || !(errors.Is(err, fs.ErrPermission) || errors.Is(err, syscall.EROFS)) {
			if err == nil && attempts > 1 {
				log.Info().Str("data", cfg.DBDataDir()).Msg("The state directory is usable again.")
			}
			return db, err
		}
		// Said once in the journal; the status counts the attempts.
		status := fmt.Sprintf("waiting for the state directory (attempt %d): %v", attempts, err)
		if attempts == 1 {
			log.Error().Err(err).Str("data", cfg.DBDataDir()).Msg(fmt.Sprintf(
				"Cannot use the state directory (%v); retrying until it can (it must be writable by user %s).", err, currentUser()))
			n.Ready(status)
		} else {
			n.Status(status)
		}
		select {
		case <-ctx.Done():
			return nil, nil
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

// currentUser names the process's user for messages: its name when known.
func currentUser() string {
	if u, err := user.Current(); err == nil {
		return u.Username
	}
	return strconv.Itoa(os.Getuid())
}

func runServe(ctx context.Context, cfg config.Config, _, _ io.Writer) error {
	log := newLogger(cfg, "serve", "")
	ln, err := worker.Listen(cfg, true)
	if err != nil {
		return err
	}
	if cfg.Embedded() {
		warnEmbedded(cfg, log)
		db, err := embeddb.Start(ctx, cfg.DBDataDir(), cfg.DBSocket, log)
		if err != nil {
			_ = ln.Close()
			return err
		}
		defer db.Stop()
	}
	// One process does the work of a worker and the primary; it counts as
	// one of each in the budget, so its pool is sized as in a 1-worker cluster.
	cfg.ClusterWorkers = 1
	st, err := store.Connect(cfg, "app-serve", log)
	if err != nil {
		return err
	}
	defer closeStore(st)
	log.Info().Str("listen", ln.Addr().String()).Msg(fmt.Sprintf("normal mode: one process (pid %d)", os.Getpid()))

	// One registry for the one process, on the API (/metrics) and on
	// APP_METRICS_LISTEN.
	reg := metrics.NewRegistry(prometheus.Labels{"worker": "serve"})
	w := &worker.Worker{Cfg: cfg, Log: log, Store: st, ID: proc.NewIdentity("worker", "serve"), Listener: ln, Metrics: &reg}
	p, err := newPrimary(cfg, st, log, reg)
	if err != nil {
		return err
	}
	if cfg.MetricsListen != "" {
		mctx, stop := context.WithCancel(ctx)
		defer stop()
		go metrics.Serve(mctx, cfg.MetricsListen, reg.Gatherer, log)
	}
	var wg sync.WaitGroup
	errs := make([]error, 2)
	wg.Add(2)
	go func() { defer wg.Done(); errs[0] = w.Run(ctx) }()
	go func() { defer wg.Done(); errs[1] = p.Run(ctx) }()
	wg.Wait()
	return errors.Join(errs...)
}

func runCluster(ctx context.Context, cfg config.Config, _, stderr io.Writer) error {
	log := newLogger(cfg, "run", "")
	warnEmbedded(cfg, log)
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("cannot find the app binary: %w", err)
	}
	// Commands run from another shell see this suite only with its state
	// directory (the embedded database's socket is there) and environment.
	log.Info().Msg(fmt.Sprintf("To make an API key for this suite from another shell: APP_ENV=%s APP_STATE_DIR=%s %s keys create --name NAME --scopes %s (app doctor likewise)",
		cfg.Env, cfg.StateDir, exe, strings.Join(store.Scopes, ",")))
	s := &cluster.Supervisor{Cfg: cfg, Log: log, Exe: exe, Output: stderr}
	err = s.Run(ctx)
	if errors.Is(err, cluster.ErrChildConfig) {
		return setupError{err}
	}
	return err
}

// warnEmbedded says loudly that production runs on the embedded database,
// which is meant for trials and development (see the README's limits).
func warnEmbedded(cfg config.Config, log zerolog.Logger) {
	if !cfg.Embedded() || cfg.Env != config.EnvProduction {
		return
	}
	log.Warn().Str("advice", "set MONGO_URI to a MongoDB server (ideally a replica set)").
		Msg("WARNING: APP_ENV=production with the embedded database; it is meant for trials and development, not production data.")
}

func closeStore(st store.Store) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = st.Close(ctx)
}
