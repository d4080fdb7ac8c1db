package config

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// variable is one row of the configuration table. def gives the default
// (it may depend on rows already parsed, which come earlier in the table);
// parse checks the value and stores it, returning what is allowed when the
// value is bad.
type variable struct {
	name    string
	doc     string
	emptyOK bool // an empty value is a value, not "use the default"
	def     func(c Config, lookup Lookup) string
	parse   func(c *Config, v string) error
}

// secret variables also accept NAME_FILE: the path of a file holding the value.
var secret = map[string]bool{"MONGO_URI": true}

func fixed(s string) func(Config, Lookup) string { return func(Config, Lookup) string { return s } }

var vars = []variable{
	{name: "CLUSTER_WORKERS", doc: "HTTP worker processes; empty or 0: one per CPU",
		def: fixed("0"), parse: intVar(0, 1024, func(c *Config, n int) { c.ClusterWorkers = n })},
	{name: "MONGO_URI", doc: "MongoDB connection string (secret, also MONGO_URI_FILE), ideally a replica set, required when the suite runs on several machines; empty: the embedded SQLite store, $APP_STATE_DIR/app.db",
		emptyOK: true, def: fixed(""), parse: func(c *Config, v string) error {
			if v != "" && !strings.HasPrefix(v, "mongodb://") && !strings.HasPrefix(v, "mongodb+srv://") {
				return errors.New("a connection string starting with mongodb:// or mongodb+srv://, or empty for the embedded SQLite store")
			}
			c.MongoURI = v
			return nil
		}},
	{name: "MONGO_DATABASE", doc: "database name", def: fixed("app"), parse: func(c *Config, v string) error {
		if !dbName.MatchString(v) {
			return errors.New("1 to 63 letters, digits, '_' or '-'")
		}
		c.MongoDatabase = v
		return nil
	}},
	{name: "MONGO_MAX_POOL_SIZE", doc: "connections per process at most (capped by the total budget)",
		def: fixed("50"), parse: intVar(1, 10000, func(c *Config, n int) { c.MongoMaxPoolSize = n })},
	{name: "MONGO_MIN_POOL_SIZE", doc: "connections per process kept open",
		def: fixed("10"), parse: intVar(0, 10000, func(c *Config, n int) { c.MongoMinPoolSize = n })},
	{name: "MONGO_MAX_CONNECTING", doc: "connections one process opens at once",
		def: fixed("10"), parse: intVar(1, 10000, func(c *Config, n int) { c.MongoMaxConnecting = n })},
	{name: "MONGO_MAX_TOTAL_CONNECTIONS", doc: "connection budget over all processes (workers + primary)",
		def: fixed("800"), parse: intVar(2, 1000000, func(c *Config, n int) { c.MongoMaxTotalConnected = n })},
	{name: "APP_LISTEN", doc: "host:port to bind when systemd hands over no socket (`app run`, `app serve`; a worker binds only when it is set)",
		def: fixed("127.0.0.1:8080"), parse: func(c *Config, v string) error {
			host, port, err := net.SplitHostPort(v)
			if err != nil {
				return errors.New("host:port, for example 127.0.0.1:8080 or :8080")
			}
			if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
				return errors.New("host:port with a port from 0 to 65535")
			}
			if host != "" && net.ParseIP(host) == nil && host != "localhost" {
				return errors.New("host:port with an IP address or localhost as host")
			}
			c.Listen = v
			return nil
		}},
	{name: "APP_STATE_DIR", doc: "state directory (the embedded SQLite store app.db, the WhatsApp device store); default $STATE_DIRECTORY, /var/lib/app as root, else ~/.local/state/app",
		def: defaultStateDir, parse: func(c *Config, v string) error {
			if !filepath.IsAbs(v) {
				abs, err := filepath.Abs(v)
				if err != nil {
					return errors.New("a directory path")
				}
				v = abs
			}
			c.StateDir = filepath.Clean(v)
			return nil
		}},
	{name: "APP_METRICS_LISTEN", doc: "host:port where the primary serves Prometheus metrics of itself and of this machine's workers (worker N serves its own on the port + N); off: none",
		def: fixed("127.0.0.1:9464"), parse: func(c *Config, v string) error {
			if v == "off" {
				c.MetricsListen = ""
				return nil
			}
			host, port, err := net.SplitHostPort(v)
			n, perr := strconv.Atoi(port)
			if err != nil || perr != nil || n < 1 || n > 65535-1024 || (host != "" && net.ParseIP(host) == nil && host != "localhost") {
				return errors.New("host:port with an IP address or localhost and a port from 1 to 64511 (workers use the ports after it), or off")
			}
			c.MetricsListen = v
			return nil
		}},
	{name: "APP_SHUTDOWN_TIMEOUT", doc: "how long a stopping process lets in-flight work finish",
		def: fixed("10s"), parse: durVar(0, time.Hour, func(c *Config, d time.Duration) { c.ShutdownTimeout = d })},
	{name: "APP_DB_WAIT", doc: "how long a starting process waits for the database before reporting READY as degraded",
		def: fixed("10s"), parse: durVar(0, time.Hour, func(c *Config, d time.Duration) { c.DBWait = d })},
	{name: "APP_LEASE_TTL", doc: "primary lease period: a standby takes over within it after the holder dies",
		def: fixed("15s"), parse: durVar(time.Second, 10*time.Minute, func(c *Config, d time.Duration) { c.LeaseTTL = d })},
	{name: "APP_HEARTBEAT_INTERVAL", doc: "how often each process records its heartbeat (a primary also records one as soon as it takes or lets go of the lease)",
		def: fixed("5s"), parse: durVar(100*time.Millisecond, 10*time.Minute, func(c *Config, d time.Duration) { c.HeartbeatInterval = d })},
	{name: "APP_MAX_BODY_BYTES", doc: "largest request body accepted",
		def: fixed("1048576"), parse: func(c *Config, v string) error {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n < 1024 || n > 1<<30 {
				return errors.New("a number of bytes from 1024 to 1073741824")
			}
			c.MaxBodyBytes = n
			return nil
		}},
	{name: "LOG_LEVEL", doc: "trace, debug, info, warn or error; default debug in development, info otherwise",
		def: func(c Config, _ Lookup) string {
			if c.Env == EnvDevelopment {
				return "debug"
			}
			return "info"
		}, parse: oneOf(func(c *Config, v string) { c.LogLevel = v }, "trace", "debug", "info", "warn", "error")},
	{name: "LOG_FORMAT", doc: "json or console; default console in development, json otherwise (journald fields under systemd)",
		def: func(c Config, _ Lookup) string {
			if c.Env == EnvDevelopment {
				return "console"
			}
			return "json"
		}, parse: oneOf(func(c *Config, v string) { c.LogFormat = v }, "json", "console")},
	{name: "APP_EVENT_RETENTION", doc: "how long the event log keeps an event (the primary's housekeeping prunes older ones)",
		def: fixed("168h"), parse: durVar(time.Hour, 24*365*time.Hour, func(c *Config, d time.Duration) { c.EventRetention = d })},
	{name: "APP_EVENT_MAX_COUNT", doc: "how many events the log keeps at most (the oldest beyond it are pruned with the others); 0: no limit",
		def: fixed("1000000"), parse: func(c *Config, v string) error {
			n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			if err != nil || (n != 0 && (n < 1000 || n > 1e10)) {
				return errors.New("0 (no limit) or a number of events from 1000 to 10000000000")
			}
			c.EventMaxCount = n
			return nil
		}},
	{name: "APP_MEDIA_RETENTION", doc: "how long stored media is kept (files a live schedule or an unsent message needs are kept)",
		def: fixed("2160h"), parse: durVar(time.Hour, 24*3650*time.Hour, func(c *Config, d time.Duration) { c.MediaRetention = d })},
	{name: "APP_MEDIA_MAX_UPLOADS", doc: "media uploads one worker receives at once; more get 503 with Retry-After before their body is read",
		def: fixed("16"), parse: intVar(1, 10000, func(c *Config, n int) { c.MediaMaxUploads = n })},
	{name: "APP_WEBHOOK_TIMEOUT", doc: "how long a webhook receiver has to answer a delivery before the attempt fails",
		def: fixed("10s"), parse: durVar(time.Second, 5*time.Minute, func(c *Config, d time.Duration) { c.Webhooks.Timeout = d })},
	{name: "APP_WEBHOOK_MAX_AGE", doc: "how long a webhook delivery is retried (with back-off) before it goes to the dead state; at most APP_EVENT_RETENTION",
		def: fixed("24h"), parse: durVar(time.Minute, 24*365*time.Hour, func(c *Config, d time.Duration) { c.Webhooks.MaxAge = d })},
	{name: "APP_WEBHOOK_ALLOWED_NETWORKS", doc: "comma-separated networks (CIDR, e.g. 10.1.0.0/16 or 127.0.0.1/32) webhook receivers may be in although loopback, private or link-local; empty: only public addresses",
		emptyOK: true, def: fixed(""), parse: func(c *Config, v string) error {
			c.Webhooks.AllowedNetworks = nil
			for _, f := range strings.Split(v, ",") {
				f = strings.TrimSpace(f)
				if f == "" {
					continue
				}
				p, err := netip.ParsePrefix(f)
				if err != nil {
					a, aerr := netip.ParseAddr(f)
					if aerr != nil {
						return errors.New("comma-separated networks in CIDR form (10.1.0.0/16) or addresses (127.0.0.1)")
					}
					p = netip.PrefixFrom(a, a.BitLen())
				}
				c.Webhooks.AllowedNetworks = append(c.Webhooks.AllowedNetworks, p.Masked())
			}
			return nil
		}},
	{name: "APP_RATE_LIMIT", doc: "API requests per second per key over all workers (each worker enforces its share); 0: no limit",
		def: fixed("20"), parse: func(c *Config, v string) error {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil || f < 0 || f > 1e6 {
				return errors.New("requests per second from 0 to 1000000, for example 20 or 0.5")
			}
			c.RateLimit = f
			return nil
		}},
	{name: "APP_RATE_BURST", doc: "requests a key may send at once before the rate applies",
		def: fixed("40"), parse: intVar(1, 1000000, func(c *Config, n int) { c.RateBurst = n })},
	{name: "WHATSAPP_DRIVER", doc: "whatsmeow (the real WhatsApp) or sandbox (a stand-in for development and tests); default sandbox in development, whatsmeow otherwise",
		def: func(c Config, _ Lookup) string {
			if c.Env == EnvDevelopment {
				return "sandbox"
			}
			return "whatsmeow"
		}, parse: oneOf(func(c *Config, v string) { c.WhatsApp.Driver = v }, "whatsmeow", "sandbox")},
	{name: "WHATSAPP_SEND_PER_MINUTE", doc: "messages sent per minute at most, spaced with jitter (fast senders get banned); 0: no pace",
		def: fixed("20"), parse: intVar(0, 100000, func(c *Config, n int) { c.WhatsApp.SendPerMinute = n })},
	{name: "WHATSAPP_DAILY_CAP", doc: "messages sent in any 24 hours at most; 0: no cap",
		def: fixed("1000"), parse: intVar(0, 10000000, func(c *Config, n int) { c.WhatsApp.DailyCap = n })},
	{name: "WHATSAPP_NEW_CONTACTS_PER_DAY", doc: "first messages to chats never written to before, in any 24 hours; 0: no cap",
		def: fixed("50"), parse: intVar(0, 10000000, func(c *Config, n int) { c.WhatsApp.NewContactsPerDay = n })},
	{name: "WHATSAPP_MAX_ATTEMPTS", doc: "attempts of a message that fails transiently before it is marked failed (retryable)",
		def: fixed("10"), parse: intVar(1, 1000, func(c *Config, n int) { c.WhatsApp.MaxAttempts = n })},
	{name: "WHATSAPP_RECONCILE_WAIT", doc: "how long a message a stopped primary left in sending waits for a receipt before it is sent again with the same id",
		def: fixed("30s"), parse: durVar(0, time.Hour, func(c *Config, d time.Duration) { c.WhatsApp.ReconcileWait = d })},
	{name: "WHATSAPP_RATE_LIMIT_PAUSE", doc: "how long sending pauses when WhatsApp says we send too fast",
		def: fixed("10m"), parse: durVar(time.Second, 24*time.Hour, func(c *Config, d time.Duration) { c.WhatsApp.RateLimitPause = d })},
	{name: "WHATSAPP_CHECKS_PER_MINUTE", doc: "phone numbers asked of WhatsApp per minute at most (POST /v1/contacts/check; accounts that look up too many get banned); the rest of a batch is held, with the seconds to wait, and answers from the cache do not count",
		def: fixed("600"), parse: intVar(1, 100000, func(c *Config, n int) { c.WhatsApp.ChecksPerMinute = n })},
	{name: "WHATSAPP_WATCHDOG_INTERVAL", doc: "how long a connected session may go without a word from WhatsApp before the primary pings it; no answer within half that (at most 30s) and it reconnects, saying why in the session state; 0: no watchdog",
		def: fixed("1m"), parse: durVar(0, time.Hour, func(c *Config, d time.Duration) { c.WhatsApp.WatchdogInterval = d })},
	{name: "WHATSAPP_MEDIA_MAX_BYTES", doc: "largest incoming media the primary downloads and stores",
		def: fixed("16777216"), parse: func(c *Config, v string) error {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n < 0 || n > 2<<30 {
				return errors.New("a number of bytes from 0 to 2147483648")
			}
			c.WhatsApp.MediaMaxBytes = n
			return nil
		}},
	{name: "WHATSAPP_KEEP_REVOKED", doc: "true: a message its sender deleted for everyone keeps its text and media (marked revoked); false: its content is removed, as the sender asked",
		def: fixed("false"), parse: oneOf(func(c *Config, v string) { c.WhatsApp.KeepRevoked = v == "true" }, "true", "false")},
	{name: "WHATSAPP_REJECT_CALLS", doc: "true: every call offered is rejected at once (it is announced either way, call.offered)",
		def: fixed("false"), parse: oneOf(func(c *Config, v string) { c.WhatsApp.RejectCalls = v == "true" }, "true", "false")},
	{name: "WHATSAPP_REJECT_CALLS_MESSAGE", doc: "with WHATSAPP_REJECT_CALLS, a text sent to the caller through the outbox after each rejected call (once per call); empty: none",
		emptyOK: true, def: fixed(""), parse: func(c *Config, v string) error {
			if v != "" && !c.WhatsApp.RejectCalls {
				return errors.New("empty unless WHATSAPP_REJECT_CALLS=true (no call is rejected to send it after)")
			}
			if len(v) > 65536 {
				return errors.New("a text of at most 65536 bytes")
			}
			c.WhatsApp.RejectCallsMessage = v
			return nil
		}},
	{name: "APP_WORKER_ID", doc: "worker number, set by systemd (%i) or `app run`",
		def: fixed("1"), parse: func(c *Config, v string) error {
			if n, err := strconv.Atoi(v); err != nil || n < 1 || n > 1024 {
				return errors.New("a worker number from 1 to 1024")
			}
			c.WorkerID = v
			return nil
		}},
}

var dbName = regexp.MustCompile(`^[A-Za-z0-9_-]{1,63}$`)

func intVar(lo, hi int, set func(*Config, int)) func(*Config, string) error {
	return func(c *Config, v string) error {
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil || n < lo || n > hi {
			return fmt.Errorf("an integer from %d to %d", lo, hi)
		}
		set(c, n)
		return nil
	}
}

func durVar(lo, hi time.Duration, set func(*Config, time.Duration)) func(*Config, string) error {
	return func(c *Config, v string) error {
		d, err := time.ParseDuration(strings.TrimSpace(v))
		if err != nil || d < lo || d > hi {
			return fmt.Errorf("a duration from %s to %s, for example 10s or 1m30s", lo, hi)
		}
		set(c, d)
		return nil
	}
}

func oneOf(set func(*Config, string), allowed ...string) func(*Config, string) error {
	return func(c *Config, v string) error {
		for _, a := range allowed {
			if v == a {
				set(c, v)
				return nil
			}
		}
		return fmt.Errorf("one of %s", strings.Join(allowed, ", "))
	}
}

func defaultStateDir(_ Config, lookup Lookup) string {
	// systemd's StateDirectory= sets STATE_DIRECTORY (colon-separated when several).
	if d, ok := lookup("STATE_DIRECTORY"); ok && d != "" {
		return strings.Split(d, ":")[0]
	}
	if os.Geteuid() == 0 {
		return "/var/lib/app"
	}
	if d, ok := lookup("XDG_STATE_HOME"); ok && d != "" {
		return filepath.Join(d, "app")
	}
	if home, err := os.UserHomeDir(); err == nil {
		return filepath.Join(home, ".local", "state", "app")
	}
	return "/var/lib/app"
}

// Variable describes one configuration variable for documentation.
type Variable struct{ Name, Default, Doc string }

// Variables lists the table for `--help` and the README.
func Variables() []Variable {
	out := []Variable{{Name: "APP_ENV", Default: EnvProduction, Doc: "development, qa or production: selects log defaults and the WhatsApp driver's"}}
	for _, v := range vars {
		d := v.def(Config{Env: EnvProduction}, func(string) (string, bool) { return "", false })
		switch v.name {
		case "APP_STATE_DIR", "LOG_LEVEL", "LOG_FORMAT", "WHATSAPP_DRIVER":
			d = "(see text)"
		}
		out = append(out, Variable{Name: v.name, Default: d, Doc: v.doc})
	}
	return out
}
