package cli

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"app/internal/config"
	"app/internal/doctor"
	"app/internal/store"
	"app/internal/systemd"
	"app/internal/unitgen"
)

// Replaceable in tests: whether systemd runs this machine, and how to
// reach it.
var (
	systemdBooted = systemd.Booted
	newSystemctl  = systemd.NewSystemctl
)

// envFile is the services' environment file; APP_ENV_FILE names another,
// as for the generator.
func envFile() string {
	if f := os.Getenv("APP_ENV_FILE"); f != "" {
		return f
	}
	return unitgen.EnvFile
}

// doctorFlags is `app doctor`. Exit status: 0 when nothing failed
// (warnings included, unless --strict), 1 when a check failed, 2 when the
// configuration is invalid.
func doctorFlags(fs *flag.FlagSet) func(args []string, stdout, stderr io.Writer) int {
	asJSON := fs.Bool("json", false, "print the report as one JSON object (for machines)")
	strict := fs.Bool("strict", false, "exit 1 on warnings too, not only on failures")
	return func(args []string, stdout, stderr io.Writer) int {
		if len(args) > 0 {
			fmt.Fprintf(stderr, "app doctor: unexpected argument %q\n", args[0])
			return exitConfig
		}
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		report, code := runDoctor(ctx)
		if code == exitOK && *strict && report.Warnings > 0 {
			code = exitFailed
		}
		var err error
		if *asJSON {
			enc := json.NewEncoder(stdout)
			enc.SetIndent("", "  ")
			err = enc.Encode(report)
		} else {
			err = report.WriteText(stdout)
		}
		if err != nil {
			fmt.Fprintf(stderr, "app doctor: %v\n", err)
			return exitFailed
		}
		return code
	}
}

// runDoctor checks what an administrator's shell on this machine sees:
// the environment, then /etc/app/app.env, the packaged state directory.
func runDoctor(ctx context.Context) (*doctor.Report, int) {
	host, err := os.Hostname()
	if err != nil {
		host = "unknown"
	}
	report := doctor.NewReport(host, time.Now())
	file := envFile()
	_, statErr := os.Stat(file)
	cfg, err := config.LoadFrom(adminLookup(file, packagedStateDir))
	report.Add(doctor.ConfigCheck(cfg, file, statErr == nil, err))
	if err != nil {
		return report, exitConfig
	}
	d := &doctor.Doctor{Cfg: cfg, EnvFile: file, Host: host}
	// Not opened when missing: opening would create an empty database
	// where no suite runs.
	if d.StoreErr = storeExists(cfg); d.StoreErr == nil {
		// The doctor's own client keeps no idle connections open.
		own := cfg
		own.MongoMinPoolSize = 0
		st, err := store.Connect(own, "app-doctor", zerolog.Nop())
		if err != nil {
			d.StoreErr = err
		} else {
			defer closeStore(st)
			d.Store = st
		}
	}
	if systemdBooted() {
		sc := newSystemctl()
		d.Systemctl = &sc
	}
	d.Run(ctx, report)
	if report.Failed > 0 {
		return report, exitFailed
	}
	return report, exitOK
}
