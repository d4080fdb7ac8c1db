package config

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo/address"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// load runs LoadFrom over env only; the process environment is not read.
func load(t *testing.T, env map[string]string) (Config, error) {
	t.Helper()
	return LoadFrom(func(k string) (string, bool) {
		v, ok := env[k]
		return v, ok
	})
}

func mustLoad(t *testing.T, env map[string]string) Config {
	t.Helper()
	c, err := load(t, env)
	if err != nil {
		t.Fatalf("LoadFrom(%v): %v", env, err)
	}
	return c
}

func TestDefaults(t *testing.T) {
	t.Parallel()
	c := mustLoad(t, nil)

	checks := []struct {
		what      string
		got, want any
	}{
		{"APP_ENV", c.Env, EnvProduction},
		{"CLUSTER_WORKERS", c.ClusterWorkers, 0},
		{"Workers()", c.Workers(), runtime.NumCPU()},
		{"MONGO_URI", c.MongoURI, ""},
		{"Embedded()", c.Embedded(), true},
		{"MONGO_DATABASE", c.MongoDatabase, "app"},
		{"MONGO_MAX_POOL_SIZE", c.MongoMaxPoolSize, 50},
		{"MONGO_MIN_POOL_SIZE", c.MongoMinPoolSize, 10},
		{"MONGO_MAX_CONNECTING", c.MongoMaxConnecting, 10},
		{"MONGO_MAX_TOTAL_CONNECTIONS", c.MongoMaxTotalConnected, 800},
		{"APP_LISTEN", c.Listen, "127.0.0.1:8080"},
		{"ListenExplicit", c.ListenExplicit, false},
		{"DBPath()", c.DBPath(), filepath.Join(c.StateDir, "app.db")},
		{"APP_STATE_DIR is absolute", filepath.IsAbs(c.StateDir), true},
		{"APP_SHUTDOWN_TIMEOUT", c.ShutdownTimeout, 10 * time.Second},
		{"APP_DB_WAIT", c.DBWait, 10 * time.Second},
		{"APP_LEASE_TTL", c.LeaseTTL, 15 * time.Second},
		{"APP_HEARTBEAT_INTERVAL", c.HeartbeatInterval, 5 * time.Second},
		{"APP_MAX_BODY_BYTES", c.MaxBodyBytes, int64(1 << 20)},
		{"LOG_LEVEL", c.LogLevel, "info"},
		{"LOG_FORMAT", c.LogFormat, "json"},
		{"APP_WORKER_ID", c.WorkerID, "1"},
	}
	for _, ck := range checks {
		if !reflect.DeepEqual(ck.got, ck.want) {
			t.Errorf("%s = %#v, want %#v", ck.what, ck.got, ck.want)
		}
	}
}

func TestWorkersEmptyOrZeroMeansOnePerCPU(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		value string
		want  int
	}{
		{"", runtime.NumCPU()},
		{"0", runtime.NumCPU()},
		{" 0 ", runtime.NumCPU()},
		{"1", 1},
		{"3", 3},
		{"16", 16},
	} {
		c := mustLoad(t, map[string]string{"CLUSTER_WORKERS": tc.value})
		if got := c.Workers(); got != tc.want {
			t.Errorf("CLUSTER_WORKERS=%q: Workers() = %d, want %d", tc.value, got, tc.want)
		}
	}
}

func TestEnvSelectsLogDefaults(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		env, level, format string
	}{
		{EnvDevelopment, "debug", "console"},
		{EnvQA, "info", "json"},
		{EnvProduction, "info", "json"},
	} {
		c := mustLoad(t, map[string]string{"APP_ENV": tc.env})
		if c.Env != tc.env || c.LogLevel != tc.level || c.LogFormat != tc.format {
			t.Errorf("APP_ENV=%s: got env %q level %q format %q, want %q %q %q",
				tc.env, c.Env, c.LogLevel, c.LogFormat, tc.env, tc.level, tc.format)
		}
		// An explicit value wins over the environment's default.
		c = mustLoad(t, map[string]string{"APP_ENV": tc.env, "LOG_LEVEL": "warn", "LOG_FORMAT": "console"})
		if c.LogLevel != "warn" || c.LogFormat != "console" {
			t.Errorf("APP_ENV=%s with explicit LOG_*: got %q %q", tc.env, c.LogLevel, c.LogFormat)
		}
	}
}

func TestEmptyValueMeansDefault(t *testing.T) {
	t.Parallel()
	def := mustLoad(t, nil)
	for _, v := range Variables() {
		c := mustLoad(t, map[string]string{v.Name: ""})
		if !reflect.DeepEqual(c, def) {
			t.Errorf("%s=\"\" gives %+v, want the defaults %+v", v.Name, c, def)
		}
	}
}

// The defaults --help prints are the defaults a user gets.
func TestDocumentedDefaultsApply(t *testing.T) {
	t.Parallel()
	def := mustLoad(t, nil)
	for _, v := range Variables() {
		if v.Default == "(see text)" {
			continue
		}
		c := mustLoad(t, map[string]string{v.Name: v.Default})
		if v.Name == "APP_LISTEN" {
			if !c.ListenExplicit {
				t.Errorf("APP_LISTEN set explicitly: ListenExplicit = false")
			}
			c.ListenExplicit = false
		}
		if !reflect.DeepEqual(c, def) {
			t.Errorf("%s=%q (its documented default) gives %+v, want %+v", v.Name, v.Default, c, def)
		}
	}
}

func TestStateDir(t *testing.T) {
	t.Parallel()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	noState := "/var/lib/app"
	if os.Geteuid() != 0 {
		noState = "/xdg/state/app"
	}
	for _, tc := range []struct {
		name string
		env  map[string]string
		want string
	}{
		{"systemd StateDirectory", map[string]string{"STATE_DIRECTORY": "/var/lib/app1"}, "/var/lib/app1"},
		{"several StateDirectory", map[string]string{"STATE_DIRECTORY": "/var/lib/a:/var/lib/b"}, "/var/lib/a"},
		{"explicit wins", map[string]string{"STATE_DIRECTORY": "/var/lib/a", "APP_STATE_DIR": "/srv/app"}, "/srv/app"},
		{"cleaned", map[string]string{"APP_STATE_DIR": "/srv/app/../app2/"}, "/srv/app2"},
		{"relative", map[string]string{"APP_STATE_DIR": "state"}, filepath.Join(wd, "state")},
		{"root or XDG", map[string]string{"XDG_STATE_HOME": "/xdg/state"}, noState},
	} {
		c := mustLoad(t, tc.env)
		if c.StateDir != tc.want {
			t.Errorf("%s: APP_STATE_DIR = %q, want %q", tc.name, c.StateDir, tc.want)
		}
		if want := filepath.Join(tc.want, "app.db"); c.DBPath() != want {
			t.Errorf("%s: DBPath() = %q, want %q", tc.name, c.DBPath(), want)
		}
	}
}

func TestListenExplicit(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		env    map[string]string
		listen string
		set    bool
	}{
		{nil, "127.0.0.1:8080", false},
		{map[string]string{"APP_LISTEN": ""}, "127.0.0.1:8080", false},
		{map[string]string{"APP_LISTEN": ":9000"}, ":9000", true},
		{map[string]string{"APP_LISTEN": "localhost:0"}, "localhost:0", true},
		{map[string]string{"APP_LISTEN": "[::1]:8080"}, "[::1]:8080", true},
	} {
		c := mustLoad(t, tc.env)
		if c.Listen != tc.listen || c.ListenExplicit != tc.set {
			t.Errorf("%v: Listen %q explicit %v, want %q %v", tc.env, c.Listen, c.ListenExplicit, tc.listen, tc.set)
		}
	}
}

// checkConfigError asserts what a user sees: a *Error about variable name,
// one line that names the variable and quotes the bad value.
func checkConfigError(t *testing.T, err error, name, value string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want one about %s=%q", name, value)
	}
	var ce *Error
	if !errors.As(err, &ce) {
		t.Fatalf("error %v (%T) is not a *config.Error", err, err)
	}
	if ce.Var != name {
		t.Errorf("error is about %s, want %s: %v", ce.Var, name, err)
	}
	if ce.Allowed == "" {
		t.Errorf("error does not say what is allowed: %v", err)
	}
	msg := err.Error()
	if strings.ContainsAny(msg, "\r\n") {
		t.Errorf("message is not one line: %q", msg)
	}
	if want := name + "=" + strconv.Quote(value); !strings.Contains(msg, want) {
		t.Errorf("message %q does not contain %s", msg, want)
	}
}

func TestInvalidValues(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string // the variable the error is about
		env   map[string]string
		value string // the value the message quotes
	}{
		{"APP_ENV", map[string]string{"APP_ENV": "prod"}, "prod"},
		{"WHATSAPP_DRIVER", map[string]string{"WHATSAPP_DRIVER": "whatsapp"}, "whatsapp"},
		{"APP_RATE_LIMIT", map[string]string{"APP_RATE_LIMIT": "fast"}, "fast"},
		{"APP_EVENT_RETENTION", map[string]string{"APP_EVENT_RETENTION": "7d"}, "7d"},
		{"APP_MEDIA_RETENTION", map[string]string{"APP_MEDIA_RETENTION": "1m"}, "1m"},
		{"APP_MEDIA_MAX_UPLOADS", map[string]string{"APP_MEDIA_MAX_UPLOADS": "0"}, "0"},
		{"APP_EVENT_MAX_COUNT", map[string]string{"APP_EVENT_MAX_COUNT": "10"}, "10"},
		{"APP_EVENT_MAX_COUNT", map[string]string{"APP_EVENT_MAX_COUNT": "1e6"}, "1e6"},
		{"APP_RATE_LIMIT", map[string]string{"APP_RATE_LIMIT": "-1"}, "-1"},
		{"APP_RATE_BURST", map[string]string{"APP_RATE_BURST": "0"}, "0"},
		{"APP_METRICS_LISTEN", map[string]string{"APP_METRICS_LISTEN": "9464"}, "9464"},
		{"APP_METRICS_LISTEN", map[string]string{"APP_METRICS_LISTEN": "127.0.0.1:65000"}, "127.0.0.1:65000"},
		{"APP_WEBHOOK_TIMEOUT", map[string]string{"APP_WEBHOOK_TIMEOUT": "0s"}, "0s"},
		{"APP_WEBHOOK_MAX_AGE", map[string]string{"APP_WEBHOOK_MAX_AGE": "1d"}, "1d"},
		{"APP_WEBHOOK_MAX_AGE", map[string]string{"APP_WEBHOOK_MAX_AGE": "200h"}, "200h0m0s"},
		{"APP_WEBHOOK_ALLOWED_NETWORKS", map[string]string{"APP_WEBHOOK_ALLOWED_NETWORKS": "10.0.0.0/8,office"}, "10.0.0.0/8,office"},
		{"WHATSAPP_SEND_PER_MINUTE", map[string]string{"WHATSAPP_SEND_PER_MINUTE": "-1"}, "-1"},
		{"WHATSAPP_CHECKS_PER_MINUTE", map[string]string{"WHATSAPP_CHECKS_PER_MINUTE": "0"}, "0"},
		{"WHATSAPP_DAILY_CAP", map[string]string{"WHATSAPP_DAILY_CAP": "1k"}, "1k"},
		{"WHATSAPP_NEW_CONTACTS_PER_DAY", map[string]string{"WHATSAPP_NEW_CONTACTS_PER_DAY": "ten"}, "ten"},
		{"WHATSAPP_MAX_ATTEMPTS", map[string]string{"WHATSAPP_MAX_ATTEMPTS": "0"}, "0"},
		{"WHATSAPP_RECONCILE_WAIT", map[string]string{"WHATSAPP_RECONCILE_WAIT": "30"}, "30"},
		{"WHATSAPP_RATE_LIMIT_PAUSE", map[string]string{"WHATSAPP_RATE_LIMIT_PAUSE": "0s"}, "0s"},
		{"WHATSAPP_WATCHDOG_INTERVAL", map[string]string{"WHATSAPP_WATCHDOG_INTERVAL": "60"}, "60"},
		{"WHATSAPP_WATCHDOG_INTERVAL", map[string]string{"WHATSAPP_WATCHDOG_INTERVAL": "2h"}, "2h"},
		{"WHATSAPP_MEDIA_MAX_BYTES", map[string]string{"WHATSAPP_MEDIA_MAX_BYTES": "16MB"}, "16MB"},
		{"WHATSAPP_KEEP_REVOKED", map[string]string{"WHATSAPP_KEEP_REVOKED": "yes"}, "yes"},
		{"WHATSAPP_REJECT_CALLS", map[string]string{"WHATSAPP_REJECT_CALLS": "1"}, "1"},
		{"WHATSAPP_REJECT_CALLS_MESSAGE", map[string]string{"WHATSAPP_REJECT_CALLS_MESSAGE": "Please write instead."}, "Please write instead."},
		{"WHATSAPP_REJECT_CALLS_MESSAGE", map[string]string{"WHATSAPP_REJECT_CALLS": "true", "WHATSAPP_REJECT_CALLS_MESSAGE": strings.Repeat("x", 65537)}, strings.Repeat("x", 65537)},
		{"APP_ENV", map[string]string{"APP_ENV": "Production"}, "Production"},
		{"CLUSTER_WORKERS", map[string]string{"CLUSTER_WORKERS": "abc"}, "abc"},
		{"CLUSTER_WORKERS", map[string]string{"CLUSTER_WORKERS": "-1"}, "-1"},
		{"CLUSTER_WORKERS", map[string]string{"CLUSTER_WORKERS": "1025"}, "1025"},
		{"CLUSTER_WORKERS", map[string]string{"CLUSTER_WORKERS": "2\n3"}, "2\n3"},
		{"MONGO_URI", map[string]string{"MONGO_URI": "localhost:27017"}, "localhost:27017"},
		{"MONGO_URI", map[string]string{"MONGO_URI": "http://db"}, "http://db"},
		{"MONGO_DATABASE", map[string]string{"MONGO_DATABASE": "my db"}, "my db"},
		{"MONGO_DATABASE", map[string]string{"MONGO_DATABASE": "a.b"}, "a.b"},
		{"MONGO_DATABASE", map[string]string{"MONGO_DATABASE": strings.Repeat("x", 64)}, strings.Repeat("x", 64)},
		{"MONGO_MAX_POOL_SIZE", map[string]string{"MONGO_MAX_POOL_SIZE": "0"}, "0"},
		{"MONGO_MAX_POOL_SIZE", map[string]string{"MONGO_MAX_POOL_SIZE": "lots"}, "lots"},
		{"MONGO_MIN_POOL_SIZE", map[string]string{"MONGO_MIN_POOL_SIZE": "-1"}, "-1"},
		{"MONGO_MAX_CONNECTING", map[string]string{"MONGO_MAX_CONNECTING": "0"}, "0"},
		{"MONGO_MAX_TOTAL_CONNECTIONS", map[string]string{"MONGO_MAX_TOTAL_CONNECTIONS": "1"}, "1"},
		{"MONGO_MAX_TOTAL_CONNECTIONS", map[string]string{"MONGO_MAX_TOTAL_CONNECTIONS": "1e3"}, "1e3"},
		{"APP_LISTEN", map[string]string{"APP_LISTEN": "8080"}, "8080"},
		{"APP_LISTEN", map[string]string{"APP_LISTEN": "127.0.0.1:99999"}, "127.0.0.1:99999"},
		{"APP_LISTEN", map[string]string{"APP_LISTEN": "127.0.0.1:http"}, "127.0.0.1:http"},
		{"APP_LISTEN", map[string]string{"APP_LISTEN": "example.com:80"}, "example.com:80"},
		{"APP_SHUTDOWN_TIMEOUT", map[string]string{"APP_SHUTDOWN_TIMEOUT": "10"}, "10"},
		{"APP_SHUTDOWN_TIMEOUT", map[string]string{"APP_SHUTDOWN_TIMEOUT": "2h"}, "2h"},
		{"APP_DB_WAIT", map[string]string{"APP_DB_WAIT": "-1s"}, "-1s"},
		{"APP_LEASE_TTL", map[string]string{"APP_LEASE_TTL": "soon"}, "soon"},
		{"APP_LEASE_TTL", map[string]string{"APP_LEASE_TTL": "500ms"}, "500ms"},
		{"APP_HEARTBEAT_INTERVAL", map[string]string{"APP_HEARTBEAT_INTERVAL": "1ms"}, "1ms"},
		{"APP_MAX_BODY_BYTES", map[string]string{"APP_MAX_BODY_BYTES": "1MB"}, "1MB"},
		{"APP_MAX_BODY_BYTES", map[string]string{"APP_MAX_BODY_BYTES": "100"}, "100"},
		{"LOG_LEVEL", map[string]string{"LOG_LEVEL": "verbose"}, "verbose"},
		{"LOG_FORMAT", map[string]string{"LOG_FORMAT": "text"}, "text"},
		{"APP_WORKER_ID", map[string]string{"APP_WORKER_ID": "0"}, "0"},
		{"APP_WORKER_ID", map[string]string{"APP_WORKER_ID": "w1"}, "w1"},
		// Cross-field checks.
		{"MONGO_MIN_POOL_SIZE", map[string]string{"MONGO_MIN_POOL_SIZE": "20", "MONGO_MAX_POOL_SIZE": "10"}, "20"},
		{"MONGO_MAX_TOTAL_CONNECTIONS", map[string]string{"CLUSTER_WORKERS": "10", "MONGO_MAX_TOTAL_CONNECTIONS": "10"}, "10"},
	}
	// Variables no value of which is invalid.
	neverInvalid := map[string]bool{"APP_STATE_DIR": true}
	covered := map[string]bool{}
	for _, tc := range tests {
		covered[tc.name] = true
		_, err := load(t, tc.env)
		t.Run(tc.name+"="+tc.value, func(t *testing.T) { checkConfigError(t, err, tc.name, tc.value) })
	}
	for _, v := range Variables() {
		if !covered[v.Name] && !neverInvalid[v.Name] {
			t.Errorf("no invalid value tested for %s", v.Name)
		}
	}
}

func TestCrossFieldBoundariesAreValid(t *testing.T) {
	t.Parallel()
	for _, env := range []map[string]string{
		{"MONGO_MIN_POOL_SIZE": "10", "MONGO_MAX_POOL_SIZE": "10"},
		{"CLUSTER_WORKERS": "10", "MONGO_MAX_TOTAL_CONNECTIONS": "11"},
	} {
		if _, err := load(t, env); err != nil {
			t.Errorf("%v: %v", env, err)
		}
	}
}

func TestMongoURIFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	const uri = "mongodb://app:s3cret@db1:27017,db2:27017/?replicaSet=rs0"
	file := filepath.Join(dir, "mongo-uri")
	if err := os.WriteFile(file, []byte(uri+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	for _, env := range []map[string]string{
		{"MONGO_URI_FILE": file},
		{"MONGO_URI_FILE": file, "MONGO_URI": ""}, // an empty MONGO_URI is not set
	} {
		c := mustLoad(t, env)
		if c.MongoURI != uri || c.Embedded() {
			t.Errorf("%v: MongoURI %q embedded %v, want %q from the file without newline",
				env, c.MongoURI, c.Embedded(), uri)
		}
	}

	// An empty MONGO_URI_FILE is not set either.
	c := mustLoad(t, map[string]string{"MONGO_URI_FILE": "", "MONGO_URI": "mongodb://db"})
	if c.MongoURI != "mongodb://db" {
		t.Errorf("MONGO_URI_FILE empty: MongoURI = %q, want MONGO_URI", c.MongoURI)
	}

	missing := filepath.Join(dir, "missing")
	_, err := load(t, map[string]string{"MONGO_URI_FILE": missing})
	checkConfigError(t, err, "MONGO_URI_FILE", missing)
	if err != nil && !strings.Contains(err.Error(), "no such file") {
		t.Errorf("missing file: message %q does not say why", err)
	}

	_, err = load(t, map[string]string{"MONGO_URI_FILE": dir})
	checkConfigError(t, err, "MONGO_URI_FILE", dir)

	// Both set: refused, rather than one silently winning.
	_, err = load(t, map[string]string{"MONGO_URI_FILE": file, "MONGO_URI": "mongodb://other"})
	checkConfigError(t, err, "MONGO_URI_FILE", file)
	if err != nil && !strings.Contains(err.Error(), "MONGO_URI or MONGO_URI_FILE") {
		t.Errorf("both set: message %q does not say to set only one", err)
	}

	// The file's content is checked like MONGO_URI.
	bad := filepath.Join(dir, "bad")
	if err := os.WriteFile(bad, []byte("db1:27017\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = load(t, map[string]string{"MONGO_URI_FILE": bad})
	checkConfigError(t, err, "MONGO_URI", "db1:27017")

	// An empty secret file is an error, not the embedded database.
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = load(t, map[string]string{"MONGO_URI_FILE": empty})
	checkConfigError(t, err, "MONGO_URI_FILE", empty)
}

// A malformed connection string is reported without its password.
func TestMongoURIErrorHidesPassword(t *testing.T) {
	t.Parallel()
	for _, uri := range []string{"user:s3cret@db1:27017", "mongo://user:s3cret@db1:27017"} {
		_, err := load(t, map[string]string{"MONGO_URI": uri})
		if err == nil {
			t.Fatalf("MONGO_URI=%q accepted", uri)
		}
		if strings.Contains(err.Error(), "s3cret") || !strings.Contains(err.Error(), "MONGO_URI=") || !strings.Contains(err.Error(), "@db1:27017") {
			t.Errorf("MONGO_URI=%q: error %q should name the variable and host but not the password", uri, err)
		}
	}
}

func TestPool(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		env  map[string]string
		want Pool
	}{
		{map[string]string{"CLUSTER_WORKERS": "2"},
			Pool{Max: 50, Min: 10, MaxConnecting: 10, Processes: 3, Budget: 800}},
		{map[string]string{"CLUSTER_WORKERS": "39"},
			Pool{Max: 20, Min: 10, MaxConnecting: 10, Processes: 40, Budget: 800}},
		{map[string]string{"CLUSTER_WORKERS": "39", "MONGO_MIN_POOL_SIZE": "30"},
			Pool{Max: 20, Min: 20, MaxConnecting: 10, Processes: 40, Budget: 800}},
		{map[string]string{"CLUSTER_WORKERS": "4", "MONGO_MAX_TOTAL_CONNECTIONS": "10"},
			Pool{Max: 2, Min: 2, MaxConnecting: 2, Processes: 5, Budget: 10}},
		{map[string]string{"CLUSTER_WORKERS": "799"},
			Pool{Max: 1, Min: 1, MaxConnecting: 1, Processes: 800, Budget: 800}},
		{map[string]string{"CLUSTER_WORKERS": "1", "MONGO_MAX_POOL_SIZE": "5", "MONGO_MIN_POOL_SIZE": "0", "MONGO_MAX_CONNECTING": "8"},
			Pool{Max: 5, Min: 0, MaxConnecting: 5, Processes: 2, Budget: 800}},
	} {
		if got := mustLoad(t, tc.env).Pool(); got != tc.want {
			t.Errorf("%v: Pool() = %+v, want %+v", tc.env, got, tc.want)
		}
	}
}

func TestPoolStaysWithinBudget(t *testing.T) {
	t.Parallel()
	for _, workers := range []int{0, 1, 2, 7, 39, 100, 1024} {
		for _, total := range []int{workers + 1, 100, 800, 5000} {
			for _, maxSize := range []int{1, 10, 50, 500} {
				for _, minSize := range []int{0, 1, 10, 50} {
					if minSize > maxSize || total < workers+1 {
						continue
					}
					env := map[string]string{
						"CLUSTER_WORKERS":             strconv.Itoa(workers),
						"MONGO_MAX_TOTAL_CONNECTIONS": strconv.Itoa(total),
						"MONGO_MAX_POOL_SIZE":         strconv.Itoa(maxSize),
						"MONGO_MIN_POOL_SIZE":         strconv.Itoa(minSize),
					}
					c, err := load(t, env)
					if err != nil {
						continue // workers 0 on a machine with more CPUs than total allows
					}
					p := c.Pool()
					if p.Processes != c.Workers()+1 || p.Max < 1 || p.Max > maxSize ||
						p.Max*p.Processes > total || p.Min > p.Max || p.MaxConnecting > p.Max ||
						p.Max != min(maxSize, total/p.Processes) {
						t.Errorf("%v: Pool() = %+v", env, p)
					}
				}
			}
		}
	}
}

// SocketURI points the driver at a MongoDB server on a Unix socket (the
// tests' FerretDB), whatever the path holds.
func TestSocketURI(t *testing.T) {
	t.Parallel()
	for _, path := range []string{
		"/run/app/mongodb.sock",         // plain
		"/tmp/my app/mongodb.sock",      // space
		"/run/app@1/mongodb.sock",       // systemd instance names
		"/home/c++/mongodb.sock",        // '+' is a space to the driver
		"/srv/a,b/mongodb.sock",         // ',' separates hosts
		"/srv/100%/mongodb.sock",        // '%' starts an escape
		"/srv/a?b#c/mongodb.sock",       // query and fragment
		"/srv/naïve;x=y&z/mongodb.sock", // non-ASCII and other punctuation
	} {
		u := SocketURI(path)
		c := mustLoad(t, map[string]string{"MONGO_URI": u})
		if c.Embedded() || c.MongoURI != u {
			t.Errorf("%q: MONGO_URI=%q gives MongoURI %q, embedded %v", path, u, c.MongoURI, c.Embedded())
		}
		opts := options.Client().ApplyURI(u)
		if err := opts.Validate(); err != nil {
			t.Errorf("%q: the driver rejects %q: %v", path, u, err)
			continue
		}
		if !slices.Equal(opts.Hosts, []string{path}) {
			t.Errorf("%q: the driver reads %q as hosts %q, want [%q]", path, u, opts.Hosts, path)
			continue
		}
		if n := address.Address(opts.Hosts[0]).Network(); n != "unix" {
			t.Errorf("%q: the driver dials %s, want unix", path, n)
		}
	}
}

func TestExternalURI(t *testing.T) {
	t.Parallel()
	for _, uri := range []string{"mongodb://db1:27017/", "mongodb+srv://cluster.example.com/"} {
		c := mustLoad(t, map[string]string{"MONGO_URI": uri})
		if c.Embedded() || c.MongoURI != uri {
			t.Errorf("MONGO_URI=%q: Embedded() = %v, MongoURI = %q", uri, c.Embedded(), c.MongoURI)
		}
	}
	if c := mustLoad(t, map[string]string{"MONGO_URI": "", "APP_STATE_DIR": "/var/lib/app"}); !c.Embedded() || c.DBPath() != "/var/lib/app/app.db" {
		t.Errorf("MONGO_URI empty: Embedded() = %v, DBPath() = %q; want the SQLite file in the state directory", c.Embedded(), c.DBPath())
	}
}

func TestVariablesDocumented(t *testing.T) {
	t.Parallel()
	vars := Variables()
	if len(vars) == 0 {
		t.Fatal("Variables() is empty")
	}
	envName := regexp.MustCompile(`^[A-Z][A-Z0-9_]*$`)
	seen := map[string]bool{}
	for _, v := range vars {
		if !envName.MatchString(v.Name) {
			t.Errorf("variable name %q is not an environment variable name", v.Name)
		}
		if seen[v.Name] {
			t.Errorf("variable %s is listed twice", v.Name)
		}
		seen[v.Name] = true
		if strings.TrimSpace(v.Doc) == "" {
			t.Errorf("variable %s has no Doc", v.Name)
		}
		if strings.ContainsAny(v.Doc, "\n\t") {
			t.Errorf("variable %s: Doc %q breaks the --help table", v.Name, v.Doc)
		}
	}
	if !seen["APP_ENV"] {
		t.Error("APP_ENV is not listed")
	}
}

// The README's configuration table is the user's reference: it lists every
// variable with the default --help shows.
func TestREADMEListsEveryVariable(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)
	for _, v := range Variables() {
		def := "(empty)"
		switch {
		case v.Default == "(see text)":
			def = "see description"
		case v.Default != "":
			def = "`" + v.Default + "`"
		}
		if row := "| `" + v.Name + "` | " + def + " |"; !strings.Contains(readme, row) {
			t.Errorf("README.md has no row %q", row)
		}
	}
}
