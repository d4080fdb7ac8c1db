package whatsapp

// The real driver: one WhatsApp account through go.mau.fi/whatsmeow.
//
// Structure, one file a topic:
//   - whatsmeow.go: the driver, its configuration, the device store and
//     the making of a client.
//   - whatsmeow_supervise.go: Run's supervisor loop, which owns the client:
//     it connects, runs QR pairing rounds while unpaired, and reconnects
//     with its own exponential back-off (whatsmeow's auto-reconnect is
//     switched off, it has linear delays without a cap and logs every
//     attempt as an error). Session states are reported from this one
//     goroutine, in order.
//   - whatsmeow_events.go: the one whatsmeow event handler, a type switch
//     handing each event type to one named method (as mautrix-whatsapp
//     does). Messages, receipts, calls and media retries go to the Handler
//     at once and are acknowledged only when it returned nil
//     (SynchronousAck); connection events become a signal to the
//     supervisor saying what to report and whether the attempt is over.
//   - whatsmeow_incoming.go: whatsmeow's messages, receipts and calls as
//     ours; whatsmeow_lid.go: phone numbers and LIDs.
//   - whatsmeow_build.go: the WhatsApp message for each kind we send;
//     whatsmeow_send.go: Send and its errors.
//   - whatsmeow_media.go: downloads, expired media and its retry.
//   - whatsmeow_actions.go: pairing by code, logout, read receipts,
//     presence, calls, ping and reconnect.
//   - whatsmeow_groups.go: groups (group IQs, whatsmeow's refusals as our
//     group errors); whatsmeow_groups_events.go: group notifications,
//     acknowledged only once the Handler stored them; whatsmeow_changes.go:
//     chat settings and pictures changed elsewhere, which whatsmeow does
//     not wait for. Their tests talk to a fake WhatsApp server
//     (whatsmeow_fakeserver_test.go), the IQs sent kept as golden files.

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/store"
	"go.mau.fi/whatsmeow/store/sqlstore"
	"go.mau.fi/whatsmeow/types"
	waLog "go.mau.fi/whatsmeow/util/log"

	_ "modernc.org/sqlite" // database/sql driver "sqlite" for the device store
)

// WhatsmeowConfig configures the whatsmeow driver.
type WhatsmeowConfig struct {
	// StoreDir holds the device store (whatsmeow.db: keys, sessions,
	// contacts). Created if missing. Required unless StoreFile is set.
	StoreDir string
	// StoreFile, when set, is the device store's SQLite file instead: on
	// the embedded store, the suite's own app.db, so that one file (and one
	// backup) holds the whole state of a machine. whatsmeow's tables are
	// its own (whatsmeow_*, versioned in whatsmeow_version).
	StoreFile string
	// Log receives the driver's logs and whatsmeow's own (component=whatsmeow).
	Log zerolog.Logger
	// MaxBackoff caps the reconnect back-off; 0 means 60s.
	MaxBackoff time.Duration
}

// Defaults and limits of the driver.
const (
	wmDefaultMaxBackoff     = 60 * time.Second
	wmDefaultInitialBackoff = time.Second
	// A connection that lasted this long resets the back-off when it drops.
	wmStableConnection = time.Minute
	// How often the supervisor checks that the socket is still there.
	wmWatchdogInterval = 10 * time.Second
	// A paired device that dialled but got no Connected (nor a failure)
	// within this time is dialled again.
	wmLoginTimeout = 90 * time.Second
	// Handshake limit for the websocket (DNS, TCP, TLS and upgrade).
	wmHandshakeTimeout = 30 * time.Second
	// WhatsApp refuses longer text messages.
	wmMaxTextLength = 65536
	// The display name WhatsApp shows in "Linked devices" for phone-code
	// pairing; the server only accepts common "Browser (OS)" names.
	wmPairClientDisplayName = "Chrome (Linux)"
	// How long a question to WhatsApp on the way of an event may take
	// (a group's subject, its addressing mode).
	wmLookupTimeout = 10 * time.Second
)

// Whatsmeow is the Driver backed by go.mau.fi/whatsmeow.
type Whatsmeow struct {
	cfg   WhatsmeowConfig
	log   zerolog.Logger
	waLog waLog.Logger

	mu      sync.Mutex
	running bool
	client  *whatsmeow.Client
	gen     uint64  // bumped for every new client: events of older ones are stale
	paired  bool    // the current device has (or just got) an ID
	self    string  // own JID (non-AD) once paired
	session Session // last reported session
	online  bool    // SendPresence's last wish: shown online; kept across reconnects

	hmu sync.Mutex // serialises calls to the Handler

	// groups are what we know of the groups seen (subject, addressing
	// mode), from their events, their messages or asked for once; under mu.
	groups map[types.JID]*groupMeta
	// retries are the media retries asked for (RetryMedia) and not yet
	// answered, by message id; calls the calls offered lately, by call id
	// (RejectCall answers the caller as WhatsApp named it); under mu.
	retries map[types.MessageID]pendingRetry
	calls   map[string]offeredCall

	sig chan connSignal // connection events, handler -> supervisor

	// Test hooks, zero in production.
	initialBackoff time.Duration                                                     // first back-off step; 0 = 1s
	dialContext    func(ctx context.Context, network, addr string) (net.Conn, error) // websocket dialer
	clock          func() time.Time                                                  // nil = time.Now
}

var _ Driver = (*Whatsmeow)(nil)

// groupMeta is what the driver knows of a group.
type groupMeta struct {
	name  string
	named bool // name is known (or was asked for and is not to be asked again)
	mode  types.AddressingMode
}

// NewWhatsmeow returns the driver; nothing happens before Run.
func NewWhatsmeow(cfg WhatsmeowConfig) *Whatsmeow {
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = wmDefaultMaxBackoff
	}
	log := cfg.Log.With().Str("driver", "whatsmeow").Logger()
	return &Whatsmeow{
		cfg:   cfg,
		log:   log,
		waLog: waLog.Zerolog(cfg.Log.With().Str("component", "whatsmeow").Logger()),
		sig:   make(chan connSignal, 64),
	}
}

func (d *Whatsmeow) now() time.Time {
	if d.clock != nil {
		return d.clock()
	}
	return time.Now()
}

// storeDSN is the database/sql address of the device store in file.
func storeDSN(file string) string {
	return "file:" + file +
		"?_pragma=foreign_keys(1)&_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)"
}

// storeFile is the device store's file: StoreFile, or whatsmeow.db in
// StoreDir.
func (c WhatsmeowConfig) storeFile() string {
	if c.StoreFile != "" || c.StoreDir == "" {
		return c.StoreFile
	}
	return filepath.Join(c.StoreDir, "whatsmeow.db")
}

// openStore opens (creating and migrating) the device store in file.
func openStore(ctx context.Context, file string, log waLog.Logger) (*sqlstore.Container, error) {
	if file == "" {
		return nil, errors.New("whatsapp: whatsmeow store directory not set")
	}
	if err := os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
		return nil, fmt.Errorf("whatsapp: create store directory: %w", err)
	}
	c, err := sqlstore.New(ctx, "sqlite", storeDSN(file), log)
	if err != nil {
		return nil, fmt.Errorf("whatsapp: open device store: %w", err)
	}
	return c, nil
}

// Run implements Driver.
func (d *Whatsmeow) Run(ctx context.Context, h Handler) error {
	if d == nil {
		return errors.New("whatsapp: nil whatsmeow driver")
	}
	if h == nil {
		return errors.New("whatsapp: nil handler")
	}
	d.mu.Lock()
	if d.running {
		d.mu.Unlock()
		return errors.New("whatsapp: whatsmeow driver already running")
	}
	d.running = true
	d.session = Session{} // a new run reports its state from the start
	d.mu.Unlock()
	defer func() {
		d.mu.Lock()
		d.running = false
		d.client = nil
		d.gen++
		d.mu.Unlock()
	}()

	container, err := openStore(ctx, d.cfg.storeFile(), d.waLog.Sub("Database"))
	if err != nil {
		return err
	}
	defer func() {
		if err := container.Close(); err != nil {
			d.log.Warn().Err(err).Msg("Cannot close the device store.")
		}
	}()
	return d.supervise(ctx, h, container)
}

// newClient makes a whatsmeow client for device and makes it current.
func (d *Whatsmeow) newClient(ctx context.Context, h Handler, device *store.Device) *whatsmeow.Client {
	cli := whatsmeow.NewClient(device, d.waLog)
	// As mautrix-whatsapp: ack only after our handler stored the event,
	// reconnect ourselves, ask the phone again for undecryptable messages.
	cli.SynchronousAck = true
	// A message is decrypted once (the Signal session moves on), so the
	// plaintext is kept in the device store (whatsmeow_event_buffer) until
	// our handler stored it: WhatsApp's redelivery of a message whose
	// handler failed is then handled again instead of dropped as an old
	// counter and acknowledged.
	cli.EnableDecryptedEventBuffer = true
	cli.EnableAutoReconnect = false
	cli.AutomaticMessageRerequestFromPhone = true
	cli.SetPreLoginHTTPClient(d.websocketClient())
	cli.SetWebsocketHTTPClient(d.websocketClient())
	cli.SetMediaHTTPClient(&http.Client{Transport: &limitTransport{base: cloneDefaultTransport()}})

	d.mu.Lock()
	d.gen++
	gen := d.gen
	d.client = cli
	d.paired = device.ID != nil
	d.self = ""
	if device.ID != nil {
		d.self = device.ID.ToNonAD().String()
	}
	d.mu.Unlock()
	cli.AddEventHandlerWithSuccessStatus(d.handler(ctx, h, cli, gen))
	return cli
}

func cloneDefaultTransport() *http.Transport {
	if t, ok := http.DefaultTransport.(*http.Transport); ok {
		return t.Clone()
	}
	return &http.Transport{Proxy: http.ProxyFromEnvironment}
}

// websocketClient is the HTTP client for the websocket handshake: the
// default transport (proxy from the environment) with a handshake limit.
func (d *Whatsmeow) websocketClient() *http.Client {
	t := cloneDefaultTransport()
	if d.dialContext != nil {
		t.Proxy = nil
		t.DialContext = d.dialContext
	}
	return &http.Client{Transport: t, Timeout: wmHandshakeTimeout}
}

func (d *Whatsmeow) isPaired() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.paired
}

func (d *Whatsmeow) current() *whatsmeow.Client {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.client
}

// loggedIn is the current client when it can act for the account.
func (d *Whatsmeow) loggedIn() (*whatsmeow.Client, error) {
	if d == nil {
		return nil, ErrNotConnected
	}
	cli := d.current()
	if cli == nil || !cli.IsLoggedIn() {
		return nil, ErrNotConnected
	}
	return cli, nil
}

// connected is the current client when it is logged in and connected.
func (d *Whatsmeow) connected() (*whatsmeow.Client, error) {
	cli, err := d.loggedIn()
	if err != nil {
		return nil, err
	}
	if !cli.IsConnected() {
		return nil, ErrNotConnected
	}
	return cli, nil
}
