package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"app/internal/cluster"
	"app/internal/config"
	"app/internal/metrics"
	"app/internal/primary"
	"app/internal/proc"
	"app/internal/store"
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
	noteOldDB(cfg, log)
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
		wc := whatsapp.WhatsmeowConfig{StoreDir: cfg.StateDir, Log: log}
		if store.EngineFor(cfg) == store.SQLite {
			// One file holds the machine's state, and app backup copies
			// the device keys with the rest.
			wc.StoreFile = cfg.DBPath()
			if _, err := os.Stat(filepath.Join(cfg.StateDir, "whatsmeow.db")); err == nil {
				log.Warn().Str("file", filepath.Join(cfg.StateDir, "whatsmeow.db")).
					Msg("The WhatsApp device store is now in app.db; this older file is no longer used (pair again with app pair) and can be removed.")
			}
		}
		d = whatsapp.NewWhatsmeow(wc)
	}
	log.Info().Str("driver", cfg.WhatsApp.Driver).Str("state_dir", cfg.StateDir).Msg("WhatsApp driver chosen.")
	return &primary.WhatsApp{Cfg: cfg.WhatsApp, Driver: d, Store: st, Log: log.With().Str("component", "whatsapp").Logger()}, nil
}

func runServe(ctx context.Context, cfg config.Config, _, _ io.Writer) error {
	log := newLogger(cfg, "serve", "")
	ln, err := worker.Listen(cfg, true)
	if err != nil {
		return err
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
	noteOldDB(cfg, log)

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
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("cannot find the app binary: %w", err)
	}
	// Commands run from another shell see this suite only with its state
	// directory (the SQLite store is there) and environment.
	log.Info().Msg(fmt.Sprintf("To make an API key for this suite from another shell: APP_ENV=%s APP_STATE_DIR=%s %s keys create --name NAME --scopes %s (app doctor likewise)",
		cfg.Env, cfg.StateDir, exe, strings.Join(store.Scopes, ",")))
	s := &cluster.Supervisor{Cfg: cfg, Log: log, Exe: exe, Output: stderr}
	err = s.Run(ctx)
	if errors.Is(err, cluster.ErrChildConfig) {
		return setupError{err}
	}
	return err
}

// oldDBDir is where the embedded database of earlier versions (FerretDB)
// kept its files, under the state directory.
const oldDBDir = "db"

// noteOldDB says once, at the start of the process that owns the
// background work, that an upgrade left the files of the earlier embedded
// database in the state directory: nothing reads them (their data is not
// carried over) and they can be removed.
func noteOldDB(cfg config.Config, log zerolog.Logger) {
	dir := filepath.Join(cfg.StateDir, oldDBDir)
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		return
	}
	log.Info().Str("dir", dir).Msg(fmt.Sprintf("%s holds the files of the embedded database of earlier versions (FerretDB); it is no longer used and nothing was carried over from it: it can be removed (rm -r %s)", dir, dir))
}

func closeStore(st store.Store) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = st.Close(ctx)
}
