// Package cli is the `app` command line: one function per subcommand.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"sort"
	"strings"
	"syscall"
	"text/tabwriter"

	"github.com/rs/zerolog"

	"app/internal/buildinfo"
	"app/internal/config"
	"app/internal/logging"
	"app/internal/unitgen"
)

// Exit statuses. 2 is what systemd units list in RestartPreventExitStatus=,
// so a bad setting stops the unit instead of looping.
const (
	exitOK     = 0
	exitFailed = 1
	exitConfig = 2
)

type command struct {
	name    string
	summary string
	usage   string // what it does, for --help
	env     bool   // reads the configuration (list the variables in --help)
	run     func(ctx context.Context, cfg config.Config, stdout, stderr io.Writer) error
	// raw, when set, replaces run: it gets the positional arguments and
	// returns the exit status itself (systemd helpers with their own rules).
	raw func(args []string, stdout, stderr io.Writer) int
	// flags, when set, defines the command's flags and returns its raw.
	flags func(fs *flag.FlagSet) func(args []string, stdout, stderr io.Writer) int
}

var commands = []command{
	{name: "run", summary: "run the whole suite on this machine without systemd (development, QA)", env: true, run: runCluster,
		usage: "Opens APP_LISTEN once and hands the socket to CLUSTER_WORKERS `app worker` processes and starts one\n" +
			"`app primary`, all on the same store (MONGO_URI, or the SQLite file APP_STATE_DIR/app.db). Children\n" +
			"that die are restarted with back-off; SIGINT/SIGTERM stops them all gracefully."},
	{name: "worker", summary: "serve the HTTP API on the socket systemd hands over", env: true, run: runWorker,
		usage: "Takes its listening socket from systemd (LISTEN_FDS/LISTEN_PID); without one it binds APP_LISTEN\n" +
			"only when APP_LISTEN is set. Its number comes from APP_WORKER_ID (systemd's %i)."},
	{name: "primary", summary: "hold the primary lease and run the background work", env: true, run: runPrimary,
		usage: "Opens the store (MONGO_URI, or the SQLite file APP_STATE_DIR/app.db), creates what it needs, takes\n" +
			"the primary lease (or waits as standby while another process holds it) and records its heartbeat."},
	{name: "serve", summary: "one process doing worker and primary work", env: true, run: runServe,
		usage: "The single-process mode: the HTTP API on the handed-over socket or APP_LISTEN and the primary work,\n" +
			"on the same store as the other modes (MONGO_URI, or the SQLite file APP_STATE_DIR/app.db)."},
	{name: "generator", summary: "write the unit graph from /etc/app/app.env (the systemd generator)", env: true,
		usage: "Run by systemd as /usr/lib/systemd/system-generators/app-generator NORMAL_DIR [EARLY_DIR LATE_DIR]\n" +
			"at boot and on daemon-reload: links app-worker@1..N (N = CLUSTER_WORKERS, or one per CPU) into\n" +
			"NORMAL_DIR/app.target.wants. Problems in the file go to the kernel log and never fail the boot.",
		raw: func(args []string, _, stderr io.Writer) int { return unitgen.Main(args, stderr) }},
	{name: "worker-wanted", summary: "exit 0 when APP_WORKER_ID is within CLUSTER_WORKERS (ExecCondition= of app-worker@)", env: true,
		usage: "Exits 1 when this worker instance is beyond CLUSTER_WORKERS, so systemd skips it; 0 otherwise,\n" +
			"also when the configuration is invalid (the worker itself then reports the error).",
		raw: func(_ []string, _, stderr io.Writer) int {
			cfg, err := config.Load()
			if err != nil || unitgen.Wanted(cfg) {
				return exitOK
			}
			fmt.Fprintf(stderr, "worker %s is not wanted: CLUSTER_WORKERS gives %d workers\n", cfg.WorkerID, cfg.Workers())
			return 1
		}},
	{name: "keys", summary: "create, list and revoke API keys", env: true,
		usage: "app keys create --name NAME --scopes messages:read,messages:write,contacts:write,session,admin prints a new key\n" +
			"once (stdout; only its hash is stored). app keys list shows ids, names and scopes; app keys revoke\n" +
			"ID revokes one (workers stop accepting it within 10s). Reads the environment, then\n" +
			"/etc/app/app.env, like the services; on SQLite it finds the packaged state directory /var/lib/app.",
		raw: keysMain},
	{name: "pair", summary: "link the WhatsApp account: show the QR code (or a phone code) and wait until paired",
		usage: "Talks to the API of a worker on this machine (--url, default http://127.0.0.1:8080): draws each\n" +
			"QR code in the terminal until the phone has scanned one, or with --phone +491701234567 asks for a\n" +
			"code to type on the phone. Exits 0 once paired; --timeout (default 5m) bounds the wait.",
		flags: pairFlags},
	{name: "doctor", summary: "check the installed suite and say what to do about each problem", env: true,
		usage: "Checks, one line each (ok, warn, fail or skip) with what to do: the configuration (environment, then\n" +
			"/etc/app/app.env, like app keys), the units and their restarts (under systemd), who holds the\n" +
			"socket, the database (SQLite: version, file, its size and the WAL's, whether the app user can write\n" +
			"it; MongoDB: version, replica set), on MongoDB the connection budget against the server's limit and\n" +
			"the clock against the server's, the primary lease, the heartbeats and the WhatsApp session. Exit status: 0 when nothing failed (warnings too, unless --strict), 1 when a\n" +
			"check failed, 2 when the configuration is invalid. --json prints one JSON object.",
		flags: doctorFlags},
	{name: "restart", summary: "restart the running workers one at a time without refusing a request (--rolling)",
		usage: "app restart --rolling restarts each running app-worker@N in turn; systemctl restart returns once the\n" +
			"new process is READY, and the next starts only after systemd shows it active with a new pid. The\n" +
			"other workers keep serving and app.socket's backlog holds connections meanwhile, so none is\n" +
			"refused. Nothing is restarted when /etc/app/app.env is invalid; it stops at the first unit that\n" +
			"does not come back. --primary then restarts app-primary: it releases the lease and its successor\n" +
			"takes it at once, but WhatsApp disconnects for a few seconds and sends, schedules and webhooks wait\n" +
			"until it reconnects (nothing is lost). Needs root (systemctl).",
		flags: restartFlags},
	{name: "backup", summary: "write a consistent copy of the SQLite store to FILE while the suite runs", env: true,
		usage: "app backup FILE copies APP_STATE_DIR/app.db, the suite's store, into FILE, a new file readable by\n" +
			"its owner only, in one transaction (VACUUM INTO): the services keep running, and what they write\n" +
			"meanwhile is not in the copy. FILE must not exist. The WhatsApp device store (its keys) lives in the\n" +
			"same file and is in the copy. To restore: systemctl stop app.target; rm -f /var/lib/app/app.db-wal\n" +
			"/var/lib/app/app.db-shm; install -o app -g app -m 600 FILE /var/lib/app/app.db; systemctl start\n" +
			"app.target. Reads the configuration like app keys. With MONGO_URI set there is no file to copy: it exits with status 3\n" +
			"and says to use mongodump. Exit status: 0 done, 1 failed, 2 usage or configuration, 3 MongoDB.",
		flags: backupFlags},
	{name: "version", summary: "print version, commit and Go version",
		usage: "Prints the version and commit set at build time and the Go version.",
		run: func(_ context.Context, _ config.Config, stdout, _ io.Writer) error {
			fmt.Fprintln(stdout, buildinfo.String())
			return nil
		}},
}

// Main runs the command line and returns the exit status.
func Main(args []string, stdout, stderr io.Writer) int {
	// Exit status 2 means bad configuration and is never restarted
	// (RestartPreventExitStatus=2, and `app run` stops). Go's runtime also
	// exits 2 after a fatal panic or a SIGABRT (systemd's watchdog signal);
	// with "crash" it dies by SIGABRT instead, so those are restarted.
	if _, set := os.LookupEnv("GOTRACEBACK"); !set {
		debug.SetTraceback("crash")
	}
	// systemd runs generators by path: the binary under the generator's name.
	if len(args) > 0 && filepath.Base(args[0]) == "app-generator" {
		return unitgen.Main(args[1:], stderr)
	}
	if len(args) < 2 {
		usage(stderr)
		return exitConfig
	}
	name := args[1]
	if name == "help" || name == "-h" || name == "--help" {
		usage(stdout)
		return exitOK
	}
	if name == "--version" {
		name = "version"
	}
	for _, c := range commands {
		if c.name == name {
			return c.main(args[2:], stdout, stderr)
		}
	}
	fmt.Fprintf(stderr, "app: unknown command %q\n\n", name)
	usage(stderr)
	return exitConfig
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "app: the WhatsApp messaging backend\n\nUsage: app <command> [--help]\n\nCommands:")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, c := range commands {
		fmt.Fprintf(tw, "  %s\t%s\n", c.name, c.summary)
	}
	_ = tw.Flush()
	fmt.Fprintln(w, "\nConfiguration comes from the environment (/etc/app/app.env under systemd); `app <command> --help` lists it.")
}

func (c command) main(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("app "+c.name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	help := func(w io.Writer) {
		fmt.Fprintf(w, "Usage: app %s\n\n%s\n\n%s\n", c.name, strings.ToUpper(c.summary[:1])+c.summary[1:]+".", c.usage)
		if c.flags != nil {
			fmt.Fprintln(w, "\nFlags:")
			fs.SetOutput(w)
			fs.PrintDefaults()
		}
		if c.env {
			fmt.Fprintln(w, "\nEnvironment:")
			tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
			for _, v := range config.Variables() {
				fmt.Fprintf(tw, "  %s\t%s\t%s\n", v.Name, v.Default, v.Doc)
			}
			_ = tw.Flush()
		}
	}
	// The flag package prints the parse error itself; the usage goes to
	// stdout, once, when asked for.
	fs.Usage = func() {}
	raw := c.raw
	if c.flags != nil {
		raw = c.flags(fs)
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			help(stdout)
			return exitOK
		}
		fmt.Fprintf(stderr, "see: app %s --help\n", c.name)
		return exitConfig
	}
	if raw != nil {
		return raw(fs.Args(), stdout, stderr)
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "app %s: unexpected argument %q\n", c.name, fs.Arg(0))
		return exitConfig
	}
	var cfg config.Config
	if c.env {
		var err error
		if cfg, err = config.Load(); err != nil {
			fmt.Fprintln(stderr, err)
			return exitConfig
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := c.run(ctx, cfg, stdout, stderr); err != nil {
		var ce *config.Error
		var se setupError
		if errors.As(err, &ce) || errors.As(err, &se) {
			fmt.Fprintln(stderr, "app "+c.name+": "+err.Error())
			return exitConfig
		}
		fmt.Fprintln(stderr, "app "+c.name+": "+err.Error())
		return exitFailed
	}
	return exitOK
}

// setupError is an error the process cannot recover from by restarting
// (exit status 2), such as a worker started without a socket.
type setupError struct{ error }

func (e setupError) Unwrap() error { return e.error }

func newLogger(cfg config.Config, role, worker string) zerolog.Logger {
	log := logging.New(cfg, role, worker)
	zerolog.DefaultContextLogger = &log
	return log
}

// Sorted names, for tests that check every command has --help.
func commandNames() []string {
	var out []string
	for _, c := range commands {
		out = append(out, c.name)
	}
	sort.Strings(out)
	return out
}
