// Package config reads the suite's configuration from the environment.
//
// Every variable is one row of the table in vars.go: its name, default,
// parser and validator. The same variables work under systemd
// (EnvironmentFile=/etc/app/app.env) and under `app run`.
package config

import (
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"
)

// Environment names accepted by APP_ENV.
const (
	EnvDevelopment = "development"
	EnvQA          = "qa"
	EnvProduction  = "production"
)

// Config is the loaded configuration. It is passed by value; nothing reads
// the environment after Load.
type Config struct {
	Env string

	ClusterWorkers int // as configured; 0 means one per CPU (see Workers)

	MongoURI               string // empty: use the embedded SQLite store (DBPath)
	MongoDatabase          string
	MongoMaxPoolSize       int
	MongoMinPoolSize       int
	MongoMaxConnecting     int
	MongoMaxTotalConnected int

	Listen         string // address to bind when no socket is handed over
	ListenExplicit bool   // APP_LISTEN was set (a worker binds only then)
	StateDir       string // the embedded store's file, the WhatsApp device store
	MetricsListen  string // the primary's metrics address; workers use its port + N; empty: none

	ShutdownTimeout   time.Duration
	DBWait            time.Duration
	LeaseTTL          time.Duration
	HeartbeatInterval time.Duration
	MaxBodyBytes      int64

	LogLevel  string
	LogFormat string // json or console

	WhatsApp WhatsApp

	EventRetention time.Duration // events older than this are pruned
	EventMaxCount  int64         // at most this many events are kept; 0: no limit
	MediaRetention time.Duration // stored files older than this are pruned (unless still needed)

	MediaMaxUploads int // uploads one worker receives at once

	Webhooks Webhooks

	RateLimit float64 // API requests per second per key, over all workers; 0: no limit
	RateBurst int     // requests a key may send at once

	WorkerID string // APP_WORKER_ID, systemd's %i
}

// WhatsApp is how the primary drives the one WhatsApp account.
type WhatsApp struct {
	Driver            string        // whatsmeow or sandbox
	SendPerMinute     int           // pace of sends, with jitter; 0: no pace
	DailyCap          int           // messages sent in any 24 hours; 0: no cap
	NewContactsPerDay int           // first messages to new chats in any 24 hours; 0: no cap
	ReconcileWait     time.Duration // how long a message left "sending" by a stopped primary waits for a receipt before it is sent again (same id)
	MaxAttempts       int           // transient failures before a message fails
	MediaMaxBytes     int64         // largest incoming media downloaded
	RateLimitPause    time.Duration // sends pause this long when WhatsApp says we send too fast
	// ChecksPerMinute bounds the numbers asked of WhatsApp a minute
	// (POST /v1/contacts/check); 0 (tests): the default, 600.
	ChecksPerMinute int
	// KeepRevoked keeps the content of a message its sender deleted for
	// everyone; by default it is removed, as the sender asked.
	KeepRevoked bool
	// RejectCalls rejects every call offered; RejectCallsMessage, when
	// set, is sent to the caller then.
	RejectCalls        bool
	RejectCallsMessage string
	// WatchdogInterval is how long a connected session may stay silent
	// before the primary pings WhatsApp (and reconnects when no answer
	// comes); 0 turns the watchdog off.
	WatchdogInterval time.Duration
}

// Webhooks is how the primary delivers webhooks.
type Webhooks struct {
	Timeout         time.Duration  // a receiver's time to answer an attempt
	MaxAge          time.Duration  // a delivery not done by then is dead
	AllowedNetworks []netip.Prefix // private networks receivers may be in
}

// Error is a configuration error: one variable, its value and what is allowed.
type Error struct {
	Var     string
	Value   string
	Allowed string
}

func (e *Error) Error() string {
	return fmt.Sprintf("config: %s=%q is invalid: %s", e.Var, e.Value, e.Allowed)
}

// Lookup returns the value of an environment variable and whether it is set.
type Lookup func(string) (string, bool)

// Load reads the configuration from the process environment.
func Load() (Config, error) {
	return LoadFrom(os.LookupEnv)
}

// LoadFrom reads the configuration through lookup, which makes it testable
// without touching the process environment.
func LoadFrom(lookup Lookup) (Config, error) {
	var c Config
	env, err := resolve(lookup, "APP_ENV")
	if err != nil {
		return c, err
	}
	if env.value == "" { // unset or empty, like every other variable
		env.value = EnvProduction
	}
	switch env.value {
	case EnvDevelopment, EnvQA, EnvProduction:
		c.Env = env.value
	default:
		return c, &Error{Var: "APP_ENV", Value: env.value, Allowed: "one of development, qa, production"}
	}
	for _, v := range vars {
		val, err := resolve(lookup, v.name)
		if err != nil {
			return c, err
		}
		raw := val.value
		if !val.set || (raw == "" && !v.emptyOK) {
			raw = v.def(c, lookup)
		}
		if err := v.parse(&c, raw); err != nil {
			// raw, not val.value: a derived default is the value that is
			// wrong when one is.
			shown := raw
			if secret[v.name] {
				shown = Redact(raw)
			}
			return c, &Error{Var: v.name, Value: shown, Allowed: err.Error()}
		}
		if v.name == "APP_LISTEN" {
			c.ListenExplicit = val.set && val.value != ""
		}
	}
	if err := c.validate(); err != nil {
		return c, err
	}
	return c, nil
}

type resolved struct {
	value string
	set   bool
}

// resolve reads NAME, or for secrets NAME_FILE (the file's content, trimmed).
func resolve(lookup Lookup, name string) (resolved, error) {
	v, ok := lookup(name)
	if !secret[name] {
		return resolved{v, ok}, nil
	}
	path, fok := lookup(name + "_FILE")
	if !fok || path == "" {
		return resolved{v, ok}, nil
	}
	if ok && v != "" {
		return resolved{}, &Error{Var: name + "_FILE", Value: path, Allowed: "set either " + name + " or " + name + "_FILE, not both"}
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return resolved{}, &Error{Var: name + "_FILE", Value: path, Allowed: "a readable file (" + reason(err) + ")"}
	}
	content := strings.TrimSpace(string(b))
	if content == "" {
		// An empty secret file is a mistake, not a request for the default
		// (for MONGO_URI that would quietly mean the embedded store).
		return resolved{}, &Error{Var: name + "_FILE", Value: path, Allowed: "a file holding the value (it is empty)"}
	}
	return resolved{content, true}, nil
}

// Redact hides what could be a password in a connection string: everything
// between its scheme and its last '@'.
func Redact(v string) string {
	at := strings.LastIndex(v, "@")
	if at < 0 {
		return v
	}
	start := 0
	if i := strings.Index(v, "://"); i >= 0 && i < at {
		start = i + len("://")
	}
	return v[:start] + "REDACTED" + v[at:]
}

func reason(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

func (c *Config) validate() error {
	if c.MongoMinPoolSize > c.MongoMaxPoolSize {
		return &Error{Var: "MONGO_MIN_POOL_SIZE", Value: fmt.Sprint(c.MongoMinPoolSize),
			Allowed: fmt.Sprintf("at most MONGO_MAX_POOL_SIZE (%d)", c.MongoMaxPoolSize)}
	}
	if c.MongoMaxTotalConnected < c.Workers()+1 {
		return &Error{Var: "MONGO_MAX_TOTAL_CONNECTIONS", Value: fmt.Sprint(c.MongoMaxTotalConnected),
			Allowed: fmt.Sprintf("at least one connection per process: workers + primary = %d", c.Workers()+1)}
	}
	if c.Webhooks.MaxAge > c.EventRetention {
		return &Error{Var: "APP_WEBHOOK_MAX_AGE", Value: c.Webhooks.MaxAge.String(),
			Allowed: fmt.Sprintf("at most APP_EVENT_RETENTION (%s): a delivery needs its event in the log", c.EventRetention)}
	}
	return nil
}

// Workers is the number of HTTP worker processes: CLUSTER_WORKERS, or one
// per CPU this process may run on when it is 0.
func (c Config) Workers() int {
	if c.ClusterWorkers > 0 {
		return c.ClusterWorkers
	}
	return runtime.NumCPU()
}

// Embedded reports whether the suite uses the embedded store: SQLite, one
// file in the state directory (DBPath), when MONGO_URI is empty.
func (c Config) Embedded() bool { return c.MongoURI == "" }

// DBPath is the embedded store's SQLite file.
func (c Config) DBPath() string { return filepath.Join(c.StateDir, "app.db") }

// SocketURI is the connection string of a MongoDB server on a Unix socket
// (the tests' FerretDB stand-in listens on one): the driver wants the path URL-encoded in the host part and decodes it with
// url.QueryUnescape, so '@', ':' and '+' must be escaped too.
func SocketURI(path string) string { return "mongodb://" + url.QueryEscape(path) + "/" }

// Pool is the connection pool one process uses.
type Pool struct {
	Max, Min, MaxConnecting int
	Processes               int // processes sharing MONGO_MAX_TOTAL_CONNECTIONS
	Budget                  int
}

// Pool caps the configured pool so that (workers + primary) x pool stays
// within MONGO_MAX_TOTAL_CONNECTIONS.
func (c Config) Pool() Pool {
	procs := c.Workers() + 1
	p := Pool{Max: c.MongoMaxPoolSize, Min: c.MongoMinPoolSize, MaxConnecting: c.MongoMaxConnecting,
		Processes: procs, Budget: c.MongoMaxTotalConnected}
	if share := c.MongoMaxTotalConnected / procs; p.Max > share {
		p.Max = share
	}
	p.Min = min(p.Min, p.Max)
	p.MaxConnecting = min(p.MaxConnecting, p.Max)
	return p
}
