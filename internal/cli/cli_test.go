package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"app/internal/config"
)

// clearEnv unsets every configuration variable and the systemd socket
// variables for the test, so what the developer's shell exports does not
// leak in. Tests that use it must not be parallel.
func clearEnv(t *testing.T) {
	t.Helper()
	names := []string{"MONGO_URI_FILE", "STATE_DIRECTORY", "LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES", "JOURNAL_STREAM"}
	for _, v := range config.Variables() {
		names = append(names, v.Name)
	}
	for _, n := range names {
		t.Setenv(n, "") // restores the old value after the test
		if err := os.Unsetenv(n); err != nil {
			t.Fatal(err)
		}
	}
	// Keep the defaults away from the developer's real state directory.
	t.Setenv("APP_STATE_DIR", t.TempDir())
}

func run(args ...string) (code int, stdout, stderr string) {
	var out, errb bytes.Buffer
	code = Main(args, &out, &errb)
	return code, out.String(), errb.String()
}

func lines(s string) []string {
	return strings.Split(strings.TrimRight(s, "\n"), "\n")
}

func TestCommandHelp(t *testing.T) {
	t.Parallel()
	names := commandNames()
	if len(names) == 0 {
		t.Fatal("no commands")
	}
	for _, name := range names {
		var env bool
		for _, c := range commands {
			if c.name == name {
				env = c.env
			}
		}
		for _, flag := range []string{"--help", "-h"} {
			code, out, errs := run("app", name, flag)
			if code != 0 {
				t.Errorf("app %s %s: exit %d, want 0", name, flag, code)
			}
			if errs != "" {
				t.Errorf("app %s %s: stderr %q, want nothing", name, flag, errs)
			}
			if !strings.HasPrefix(out, "Usage: app "+name+"\n") {
				t.Errorf("app %s %s: stdout does not start with the usage line:\n%s", name, flag, out)
			}
			for _, v := range config.Variables() {
				if listed := strings.Contains(out, v.Name); listed != env {
					t.Errorf("app %s %s: lists %s: %v, want %v", name, flag, v.Name, listed, env)
				}
			}
		}
	}
}

func TestTopLevelHelp(t *testing.T) {
	t.Parallel()
	for _, arg := range []string{"help", "-h", "--help"} {
		code, out, errs := run("app", arg)
		if code != 0 || errs != "" {
			t.Errorf("app %s: exit %d, stderr %q; want 0 and nothing", arg, code, errs)
		}
		for _, name := range commandNames() {
			if !strings.Contains(out, "\n  "+name+" ") {
				t.Errorf("app %s: command %s is not listed:\n%s", arg, name, out)
			}
		}
	}
}

func TestUsageErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args    []string
		mention string // what stderr must name
	}{
		{[]string{"app"}, "Usage: app <command>"},
		{[]string{"app", "bogus"}, `"bogus"`},
		{[]string{"app", "Worker"}, `"Worker"`},
		{[]string{"app", "worker", "extra"}, `"extra"`},
		{[]string{"app", "worker", "--bogus"}, "-bogus"},
		{[]string{"app", "version", "--bogus"}, "-bogus"},
		{[]string{"app", "keys"}, "usage: app keys create"},
		{[]string{"app", "keys", "mint"}, `"mint"`},
		{[]string{"app", "keys", "create", "--name", "x", "--scopes", "messages:read,superuser"}, `"superuser"`},
		{[]string{"app", "keys", "create", "--scopes", "admin"}, "--name NAME"},
		{[]string{"app", "keys", "revoke"}, "app keys revoke ID"},
		{[]string{"app", "pair", "--timeout", "soon"}, "-timeout"},
	} {
		code, out, errs := run(tc.args...)
		if code != 2 {
			t.Errorf("%v: exit %d, want 2", tc.args, code)
		}
		if out != "" {
			t.Errorf("%v: stdout %q, want nothing", tc.args, out)
		}
		if !strings.Contains(errs, tc.mention) {
			t.Errorf("%v: stderr does not mention %s:\n%s", tc.args, tc.mention, errs)
		}
	}
}

// A bad setting stops every command that reads the configuration with exit
// status 2 and one line naming the variable, before it starts anything.
func TestInvalidConfig(t *testing.T) {
	for _, tc := range []struct {
		cmd, name, value string
	}{
		{"worker", "CLUSTER_WORKERS", "abc"},
		{"worker", "MONGO_MAX_POOL_SIZE", "0"},
		{"worker", "APP_LEASE_TTL", "soon"},
		{"worker", "APP_ENV", "prod"},
		{"primary", "MONGO_URI", "localhost:27017"},
		{"serve", "APP_LISTEN", "8080"},
		{"run", "LOG_LEVEL", "verbose"},
	} {
		t.Run(tc.cmd+"/"+tc.name, func(t *testing.T) {
			clearEnv(t)
			t.Setenv(tc.name, tc.value)
			code, out, errs := run("app", tc.cmd)
			if code != 2 {
				t.Errorf("exit %d, want 2", code)
			}
			if out != "" {
				t.Errorf("stdout %q, want nothing", out)
			}
			if l := lines(errs); len(l) != 1 || !strings.Contains(l[0], tc.name+`="`+tc.value+`"`) {
				t.Errorf("stderr is not one line naming %s=%q:\n%s", tc.name, tc.value, errs)
			}
		})
	}
}

func TestWorkerWithoutSocket(t *testing.T) {
	clearEnv(t)
	code, out, errs := run("app", "worker")
	if code != 2 {
		t.Errorf("exit %d, want 2", code)
	}
	if out != "" {
		t.Errorf("stdout %q, want nothing", out)
	}
	if l := lines(errs); len(l) != 1 || !strings.HasPrefix(l[0], "app worker: ") ||
		!strings.Contains(l[0], "APP_LISTEN") || !strings.Contains(l[0], "socket") {
		t.Errorf("stderr is not one line about the missing socket and APP_LISTEN:\n%s", errs)
	}
}

func TestVersion(t *testing.T) {
	t.Parallel()
	for _, arg := range []string{"version", "--version"} {
		code, out, errs := run("app", arg)
		if code != 0 || errs != "" {
			t.Errorf("app %s: exit %d, stderr %q; want 0 and nothing", arg, code, errs)
		}
		if l := lines(out); len(l) != 1 || !strings.Contains(l[0], runtime.Version()) {
			t.Errorf("app %s: stdout is not one line with %s: %q", arg, runtime.Version(), out)
		}
	}
}

// systemd runs the generator by its path; the binary answers to that name.
func TestGeneratorByItsName(t *testing.T) {
	dir := t.TempDir()
	env := filepath.Join(dir, "app.env")
	if err := os.WriteFile(env, []byte("CLUSTER_WORKERS=3\nMONGO_URI=mongodb://db1/\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("APP_ENV_FILE", env)
	out := filepath.Join(dir, "out")
	var stdout, stderr bytes.Buffer
	if code := Main([]string{"/usr/lib/systemd/system-generators/app-generator", out, out, out}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	links, err := filepath.Glob(filepath.Join(out, "app.target.wants", "*"))
	if err != nil || len(links) != 3 {
		t.Fatalf("links %v (%v), want 3 workers and nothing else", links, err)
	}
}

// ExecCondition= of app-worker@: instances beyond CLUSTER_WORKERS are
// skipped (exit 1); a bad configuration is left to the worker to report.
func TestWorkerWanted(t *testing.T) {
	for _, tc := range []struct {
		workers, id string
		want        int
	}{{"2", "1", 0}, {"2", "2", 0}, {"2", "3", 1}, {"abc", "3", 0}} {
		t.Setenv("CLUSTER_WORKERS", tc.workers)
		t.Setenv("APP_WORKER_ID", tc.id)
		var stdout, stderr bytes.Buffer
		if code := Main([]string{"app", "worker-wanted"}, &stdout, &stderr); code != tc.want {
			t.Errorf("CLUSTER_WORKERS=%s APP_WORKER_ID=%s: exit %d, want %d (%s)", tc.workers, tc.id, code, tc.want, stderr.String())
		}
	}
}

// `app keys` pointed at a state directory where no suite runs (the
// packaged one while `make run` uses ./.state) says so at once, in one
// line that names APP_STATE_DIR and the make target, not a driver error
// after its timeout.
func TestKeysWithoutARunningSuite(t *testing.T) {
	clearEnv(t)
	code, out, errs := run("app", "keys", "list")
	if code != 1 || out != "" {
		t.Fatalf("exit %d, stdout %q; want 1 and nothing", code, out)
	}
	if l := lines(errs); len(l) != 1 || !strings.Contains(l[0], "APP_STATE_DIR=") || !strings.Contains(l[0], "make key") {
		t.Errorf("stderr %q, want one line naming APP_STATE_DIR and make key", errs)
	}
	// Not an empty database in the wrong place: a key made there would
	// work nowhere.
	if entries, _ := os.ReadDir(os.Getenv("APP_STATE_DIR")); len(entries) != 0 {
		t.Errorf("app keys left %v in a state directory where no suite runs", entries)
	}
}
