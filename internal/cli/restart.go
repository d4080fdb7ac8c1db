package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"app/internal/config"
	"app/internal/store"
	"app/internal/systemd"
	"app/internal/unitgen"
)

// restartFlags is `app restart --rolling [--primary]`.
func restartFlags(fs *flag.FlagSet) func(args []string, stdout, stderr io.Writer) int {
	rolling := fs.Bool("rolling", false, "restart the running workers one at a time, each once the previous one is READY again (required)")
	withPrimary := fs.Bool("primary", false, "then restart the primary too (WhatsApp reconnects: see above)")
	timeout := fs.Duration("timeout", 2*time.Minute, "how long one unit may take to stop and be READY again")
	return func(args []string, stdout, stderr io.Writer) int {
		if len(args) > 0 {
			fmt.Fprintf(stderr, "app restart: unexpected argument %q\n", args[0])
			return exitConfig
		}
		if !*rolling {
			fmt.Fprintln(stderr, "app restart: only --rolling is supported (systemctl restart app.target restarts everything at once)")
			return exitConfig
		}
		if !systemdBooted() {
			fmt.Fprintln(stderr, "app restart: systemd does not run this machine; under `app run`, stop it with Ctrl-C and start it again")
			return exitFailed
		}
		// What the units will read when they start: a bad value would stop
		// each restarted worker for good (RestartPreventExitStatus=2), so
		// nothing is restarted with one.
		file := envFile()
		if _, err := config.LoadFrom(unitLookup(file)); err != nil {
			fmt.Fprintf(stderr, "app restart: %v (in %s); nothing was restarted\n", err, file)
			return exitConfig
		}
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		r := &roller{sc: newSystemctl(), out: stdout, timeout: *timeout}
		if *withPrimary {
			cfg, err := config.LoadFrom(adminLookup(file, packagedStateDir))
			if err != nil {
				fmt.Fprintln(stderr, err)
				return exitConfig
			}
			if err := storeExists(cfg); err != nil {
				fmt.Fprintf(stderr, "app restart: %v\n", err)
				return exitFailed
			}
			cfg.MongoMinPoolSize = 0
			st, err := store.Connect(cfg, "app-restart", zerolog.Nop())
			if err != nil {
				fmt.Fprintln(stderr, err)
				return exitConfig
			}
			defer closeStore(st)
			r.lease = st.CurrentLease
			r.leaseWait = 2*cfg.LeaseTTL + cfg.DBWait
			r.host, _ = os.Hostname()
		}
		if err := r.run(ctx, *withPrimary); err != nil {
			fmt.Fprintf(stderr, "app restart: %v\n", err)
			return exitFailed
		}
		return exitOK
	}
}

// unitLookup is the environment the services get: app.env over the
// settings the units themselves set.
func unitLookup(file string) config.Lookup {
	env := map[string]string{}
	if f, err := os.Open(file); err == nil {
		env, _ = unitgen.ParseEnvFile(f)
		f.Close()
	}
	units := map[string]string{"STATE_DIRECTORY": packagedStateDir, "APP_WORKER_ID": "1"}
	return func(k string) (string, bool) {
		if v, ok := env[k]; ok {
			return v, true
		}
		v, ok := units[k]
		return v, ok
	}
}

// roller restarts units one at a time and checks each came back.
type roller struct {
	sc      systemd.Systemctl
	out     io.Writer
	timeout time.Duration // per unit
	// lease reads the current lease (for --primary); leaseWait bounds how
	// long the new primary may take to hold it; host is this machine.
	lease     func(context.Context) (store.Lease, error)
	leaseWait time.Duration
	host      string
}

func (r *roller) run(ctx context.Context, withPrimary bool) error {
	start := time.Now()
	lctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	workers, err := r.sc.ActiveInstances(lctx, "app-worker")
	cancel()
	if err != nil {
		return err
	}
	if len(workers) == 0 {
		return errors.New("no worker is running (systemctl start app.target)")
	}
	note := ""
	if len(workers) == 1 {
		note = "; with one worker, connections wait in app.socket's backlog while it restarts"
	}
	fmt.Fprintf(r.out, "Restarting %d workers one at a time, each once the one before is READY again%s.\n", len(workers), note)
	for i, unit := range workers {
		old, pid, took, err := r.restart(ctx, unit)
		if err != nil {
			if rest := len(workers) - i - 1; rest > 0 {
				err = fmt.Errorf("%w; stopped there: %d workers after it were not restarted", err, rest)
			}
			return err
		}
		fmt.Fprintf(r.out, "%s: pid %d -> %d, READY after %s\n", unit, old, pid, took.Round(time.Millisecond))
	}
	if withPrimary {
		fmt.Fprintln(r.out, "Restarting the primary: it releases the lease, WhatsApp disconnects, and sends, schedules and webhooks wait until the new process holds the lease and reconnects.")
		pstart := time.Now()
		old, pid, took, err := r.restart(ctx, "app-primary.service")
		if err != nil {
			return err
		}
		fmt.Fprintf(r.out, "app-primary.service: pid %d -> %d, READY after %s\n", old, pid, took.Round(time.Millisecond))
		lease, err := r.waitLease(ctx, pid, pstart)
		if err != nil {
			return err
		}
		fmt.Fprintf(r.out, "app-primary.service: %s.\n", lease)
	}
	fmt.Fprintf(r.out, "Rolling restart done in %s.\n", time.Since(start).Round(time.Millisecond))
	return nil
}

// restart restarts one unit and checks that a new process runs it.
// systemctl restart returns once a Type=notify service sent READY=1.
func (r *roller) restart(ctx context.Context, unit string) (oldPID, newPID int, took time.Duration, err error) {
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	props := []string{"ActiveState", "SubState", "MainPID", "Result"}
	before, err := r.sc.Show(ctx, props, unit)
	if err != nil {
		return 0, 0, 0, err
	}
	oldPID = before[0].Int("MainPID")
	start := time.Now()
	if err := r.sc.Restart(ctx, unit); err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("not READY within %s", r.timeout)
		}
		return oldPID, 0, 0, fmt.Errorf("%s did not come back (%v): journalctl -u %s -n 20 says why", unit, err, unit)
	}
	took = time.Since(start)
	after, err := r.sc.Show(ctx, props, unit)
	if err != nil {
		return oldPID, 0, took, err
	}
	u := after[0]
	newPID = u.Int("MainPID")
	switch {
	case u["ActiveState"] != "active" || u["SubState"] != "running":
		return oldPID, newPID, took, fmt.Errorf("%s is %s (%s) after the restart: journalctl -u %s -n 20 says why", unit, u["ActiveState"], u["SubState"], unit)
	case newPID == 0 || newPID == oldPID:
		return oldPID, newPID, took, fmt.Errorf("%s still runs as pid %d: it was not restarted", unit, newPID)
	}
	return oldPID, newPID, took, nil
}

// waitLease says when the restarted primary (pid) holds the lease, or
// that it stands by for another machine's.
func (r *roller) waitLease(ctx context.Context, pid int, since time.Time) (string, error) {
	if r.lease == nil {
		return "the lease was not checked", nil
	}
	deadline := time.Now().Add(r.leaseWait)
	for {
		lctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		l, err := r.lease(lctx)
		cancel()
		now := time.Now()
		if err == nil && now.Before(l.ExpiresAt) {
			if l.Host == r.host && l.PID == pid {
				return fmt.Sprintf("holds the lease (epoch %d) %s after its restart began", l.Epoch, now.Sub(since).Round(time.Millisecond)), nil
			}
			if l.Host != r.host {
				return fmt.Sprintf("stands by: pid %d on %s holds the lease (epoch %d)", l.PID, l.Host, l.Epoch), nil
			}
		}
		if now.After(deadline) || ctx.Err() != nil {
			return "", fmt.Errorf("app-primary.service (pid %d) did not take the lease within %s: app doctor and journalctl -u app-primary -n 20 say why", pid, r.leaseWait)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
