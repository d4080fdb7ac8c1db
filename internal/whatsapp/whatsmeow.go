package whatsapp

// The real driver: one WhatsApp account through go.mau.fi/whatsmeow.
//
// Structure:
//   - Run opens the device store (SQLite through modernc.org/sqlite) and
//     runs a supervisor loop that owns the whatsmeow client: it connects,
//     runs QR pairing rounds while unpaired, and reconnects with its own
//     exponential back-off (whatsmeow's auto-reconnect is switched off, it
//     has linear delays without a cap and logs every attempt as an error).
//   - One whatsmeow event handler (handler) maps every whatsmeow event with
//     mapEvent. Incoming messages and receipts go to the Handler at once and
//     are acknowledged only when it returned nil (SynchronousAck). Everything
//     about the connection goes to the supervisor as a signal, which reports
//     the session change and decides what happens next, so session states
//     are reported from one goroutine in order.

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"app/internal/msg"

	"github.com/rs/zerolog"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/socket"
	"go.mau.fi/whatsmeow/store"
	"go.mau.fi/whatsmeow/store/sqlstore"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"
	waLog "go.mau.fi/whatsmeow/util/log"
	"google.golang.org/protobuf/proto"

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
	// First QR code of a round lives 60s (the channel says so per code, this
	// is for a bare *events.QR).
	wmFirstQRTimeout = 60 * time.Second
	// The display name WhatsApp shows in "Linked devices" for phone-code
	// pairing; the server only accepts common "Browser (OS)" names.
	wmPairClientDisplayName = "Chrome (Linux)"
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

	hmu sync.Mutex // serialises calls to the Handler

	// groupNames are the subjects of groups seen, from GroupInfo and
	// JoinedGroup events or asked for once (see chatName); under mu.
	groupNames map[types.JID]string

	sig chan connSignal // connection events, handler -> supervisor

	// Test hooks, zero in production.
	initialBackoff time.Duration                                                     // first back-off step; 0 = 1s
	dialContext    func(ctx context.Context, network, addr string) (net.Conn, error) // websocket dialer
}

var _ Driver = (*Whatsmeow)(nil)

// connSignal carries a connection event from the whatsmeow handler to the
// supervisor: the raw whatsmeow event and its mapping (nil if none).
type connSignal struct {
	gen uint64
	raw any
	ev  Event
}

// localLogout is the signal Logout sends once the device was unlinked.
type localLogout struct{}

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
			d.log.Warn().Err(err).Msg("whatsapp: closing device store")
		}
	}()
	return d.supervise(ctx, h, container)
}

// attemptOutcome is how one connection attempt ended.
type attemptOutcome int

const (
	attemptStopped   attemptOutcome = iota // ctx ended
	attemptRetry                           // dial again after the back-off
	attemptQRExpired                       // a QR round ran out of codes: new round
	attemptLoggedOut                       // device gone: pair again
	attemptBanned                          // temporarily banned until attemptResult.until
	attemptReplaced                        // another client took over: never retried
)

type attemptResult struct {
	kind     attemptOutcome
	reason   string
	until    time.Time
	stable   bool // was connected long enough to reset the back-off
	progress bool // a QR round showed at least one code
}

// supervise keeps the account connected until ctx ends.
func (d *Whatsmeow) supervise(ctx context.Context, h Handler, container *sqlstore.Container) error {
	initial := d.initialBackoff
	if initial <= 0 {
		initial = wmDefaultInitialBackoff
	}
	bo := reconnectBackoff{initial: initial, max: d.cfg.MaxBackoff}
	var cli *whatsmeow.Client
	defer func() {
		if cli != nil {
			cli.Disconnect()
		}
	}()
	failures := 0
	for ctx.Err() == nil {
		if cli == nil {
			device, err := container.GetFirstDevice(ctx)
			if err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return fmt.Errorf("whatsapp: read device store: %w", err)
			}
			cli = d.newClient(ctx, h, device)
		}
		res := d.attempt(ctx, h, cli)
		cli.Disconnect()
		if !d.isPaired() {
			// Unpaired clients hold nothing worth keeping, and a QR channel
			// whose connect failed stays registered: start afresh.
			cli = nil
		}

		var wait time.Duration
		switch res.kind {
		case attemptStopped:
			return nil
		case attemptReplaced:
			d.log.Warn().Msg("whatsapp: session replaced by another client; not reconnecting")
			<-ctx.Done()
			return nil
		case attemptLoggedOut:
			cli = nil
			bo.reset()
			failures = 0
			continue
		case attemptBanned:
			wait = time.Until(res.until)
			if wait <= 0 {
				wait = bo.next()
			}
			d.log.Warn().Time("until", res.until).Str("reason", res.reason).Msg("whatsapp: temporarily banned; waiting")
		case attemptQRExpired:
			if res.progress {
				bo.reset()
				failures = 0
				continue
			}
			failures++
			wait = bo.next()
			d.log.Warn().Str("reason", res.reason).Int("attempt", failures).Dur("retry_in", wait).
				Msg("whatsapp: pairing round ended without a QR code; retrying")
		case attemptRetry:
			if res.stable {
				bo.reset()
				failures = 0
			}
			failures++
			wait = bo.next()
			d.log.Warn().Str("reason", res.reason).Int("attempt", failures).Dur("retry_in", wait).
				Msg("whatsapp: not connected; retrying")
		}
		if !sleepOrDone(ctx, wait) {
			return nil
		}
	}
	return nil
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

// attempt connects cli once (a QR round when unpaired) and waits until
// that connection ends.
func (d *Whatsmeow) attempt(ctx context.Context, h Handler, cli *whatsmeow.Client) attemptResult {
	d.mu.Lock()
	gen := d.gen
	paired := d.paired
	state := d.session.State
	d.mu.Unlock()
	d.drainSignals()

	var qrCh <-chan whatsmeow.QRChannelItem
	roundCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	if !paired {
		if state != StateUnpaired {
			d.report(ctx, h, Session{State: StateUnpaired})
		}
		ch, err := cli.GetQRChannel(roundCtx)
		if err != nil {
			d.report(ctx, h, Session{State: StateUnpaired, Reason: err.Error()})
			return attemptResult{kind: attemptRetry, reason: err.Error()}
		}
		qrCh = ch
	} else if state != StateDisconnected && state != StateConnecting {
		d.report(ctx, h, Session{State: StateConnecting})
	}

	started := time.Now()
	if err := cli.ConnectContext(ctx); err != nil {
		if ctx.Err() != nil {
			return attemptResult{kind: attemptStopped}
		}
		d.report(ctx, h, Session{State: StateDisconnected, Reason: err.Error()})
		return attemptResult{kind: attemptRetry, reason: err.Error()}
	}

	var connectedAt time.Time
	stable := func() bool { return !connectedAt.IsZero() && time.Since(connectedAt) >= wmStableConnection }
	progress := false
	missing := 0
	tick := time.NewTicker(wmWatchdogInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return attemptResult{kind: attemptStopped}

		case item, ok := <-qrCh:
			if !ok {
				qrCh = nil
				continue
			}
			switch item.Event {
			case whatsmeow.QRChannelEventCode:
				progress = true
				d.report(ctx, h, Session{State: StatePairing, QR: item.Code, QRExpires: time.Now().Add(item.Timeout)})
			case whatsmeow.QRChannelSuccess.Event:
				qrCh = nil // PairSuccess, then Connected, come as events
			case whatsmeow.QRChannelTimeout.Event:
				reason := "QR code expired"
				if !progress {
					reason = "connection closed before a QR code was shown"
				}
				d.report(ctx, h, Session{State: StateUnpaired, Reason: reason})
				return attemptResult{kind: attemptQRExpired, reason: reason, progress: progress}
			case whatsmeow.QRChannelEventError:
				reason := "pairing failed"
				if item.Error != nil {
					reason += ": " + item.Error.Error()
				}
				d.report(ctx, h, Session{State: StateUnpaired, Reason: reason})
				return attemptResult{kind: attemptRetry, reason: reason}
			default: // err-unexpected-state, err-client-outdated, err-scanned-without-multidevice
				if item.Event == whatsmeow.QRChannelErrUnexpectedEvent.Event && d.isPaired() {
					qrCh = nil
					continue
				}
				reason := "pairing failed: " + item.Event
				d.report(ctx, h, Session{State: StateUnpaired, Reason: reason})
				return attemptResult{kind: attemptRetry, reason: reason}
			}

		case s := <-d.sig:
			if s.gen != gen {
				continue
			}
			if e, ok := s.raw.(*events.PairSuccess); ok {
				// Paired before reporting it, so "connecting" stays that.
				d.mu.Lock()
				d.paired = true
				d.self = e.ID.ToNonAD().String()
				d.mu.Unlock()
				started = time.Now()
			}
			if sc, ok := s.ev.(*SessionChanged); ok {
				d.report(ctx, h, sc.Session)
			}
			switch e := s.raw.(type) {
			case *events.Connected, *events.KeepAliveRestored:
				if connectedAt.IsZero() {
					connectedAt = time.Now()
				}
			case *events.Disconnected:
				return attemptResult{kind: attemptRetry, reason: "connection lost", stable: stable()}
			case *events.KeepAliveTimeout:
				// Without whatsmeow's auto-reconnect nobody else gives up on
				// a dead socket: do it after the same grace time it would.
				if time.Since(e.LastSuccess) > whatsmeow.KeepAliveMaxFailTime {
					return attemptResult{kind: attemptRetry, reason: "keep-alive failing", stable: stable()}
				}
			case *events.LoggedOut:
				d.forgetDevice(ctx, cli, false) // whatsmeow deletes the device itself
				return attemptResult{kind: attemptLoggedOut, reason: e.Reason.String()}
			case localLogout:
				d.report(ctx, h, Session{State: StateLoggedOut, Reason: "logged out from this device"})
				d.forgetDevice(ctx, cli, true)
				return attemptResult{kind: attemptLoggedOut}
			case *events.StreamReplaced:
				return attemptResult{kind: attemptReplaced}
			case *events.TemporaryBan:
				until := time.Time{}
				if sc, ok := s.ev.(*SessionChanged); ok {
					until = sc.Session.Until
				}
				return attemptResult{kind: attemptBanned, reason: e.Code.String(), until: until}
			case *events.ConnectFailure:
				if e.Reason.IsLoggedOut() {
					d.forgetDevice(ctx, cli, false)
					return attemptResult{kind: attemptLoggedOut, reason: e.Reason.String()}
				}
				return attemptResult{kind: attemptRetry, reason: "connect failure: " + e.Reason.String()}
			case *events.ClientOutdated:
				return attemptResult{kind: attemptRetry, reason: "client outdated"}
			case *events.StreamError:
				d.log.Warn().Str("code", e.Code).Msg("whatsapp: unknown stream error")
			}

		case <-tick.C:
			if connectedAt.IsZero() && d.isPaired() && time.Since(started) > wmLoginTimeout {
				d.report(ctx, h, Session{State: StateDisconnected, Reason: "timed out waiting for login"})
				return attemptResult{kind: attemptRetry, reason: "timed out waiting for login"}
			}
			if cli.IsConnected() {
				missing = 0
				continue
			}
			// Two checks in a row: whatsmeow briefly drops the socket when it
			// reconnects by itself right after pairing.
			if missing++; missing >= 2 {
				d.report(ctx, h, Session{State: StateDisconnected, Reason: "connection lost"})
				return attemptResult{kind: attemptRetry, reason: "connection lost", stable: stable()}
			}
		}
	}
}

// forgetDevice marks the device unpaired. After our own Logout it also
// deletes the device from the store if whatsmeow's delete failed (after a
// remote logout whatsmeow deletes it in its own goroutine: not touched
// here; a device left behind is refused again on the next connect).
func (d *Whatsmeow) forgetDevice(ctx context.Context, cli *whatsmeow.Client, deleteDevice bool) {
	d.mu.Lock()
	d.paired = false
	d.self = ""
	d.mu.Unlock()
	if !deleteDevice || cli.Store.ID == nil {
		return
	}
	if err := cli.Store.Delete(ctx); err != nil {
		d.log.Error().Err(err).Msg("whatsapp: deleting logged-out device from store")
	}
}

func (d *Whatsmeow) drainSignals() {
	for {
		select {
		case <-d.sig:
		default:
			return
		}
	}
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

// report makes s the session and tells the handler, unless nothing changed.
// A device without an ID is never "disconnected": it is unpaired (with the
// reason). The own JID is filled in while paired.
func (d *Whatsmeow) report(ctx context.Context, h Handler, s Session) {
	d.mu.Lock()
	if !d.paired {
		switch s.State {
		case StateDisconnected, StateConnecting, StateConnected:
			s.State = StateUnpaired
		}
		if s.State == StateUnpaired || s.State == StatePairing {
			s.JID = ""
		}
	} else if s.JID == "" && s.State != StateUnpaired && s.State != StatePairing {
		s.JID = d.self
	}
	if sameSession(d.session, s) {
		d.mu.Unlock()
		return
	}
	d.session = s
	d.mu.Unlock()
	d.log.Info().Str("state", string(s.State)).Str("reason", s.Reason).Msg("whatsapp: session changed")
	if err := d.deliver(ctx, h, &SessionChanged{Session: s}); err != nil {
		d.log.Warn().Err(err).Str("state", string(s.State)).Msg("whatsapp: handler failed on session change")
	}
}

func sameSession(a, b Session) bool {
	return a.State == b.State && a.Reason == b.Reason && a.JID == b.JID && a.QR == b.QR &&
		a.Until.Equal(b.Until) && a.QRExpires.Equal(b.QRExpires)
}

// deliver calls the handler, one event at a time.
func (d *Whatsmeow) deliver(ctx context.Context, h Handler, ev Event) error {
	d.hmu.Lock()
	defer d.hmu.Unlock()
	return h(ctx, ev)
}

// handler is the one whatsmeow event handler of a client. It returns false
// (leave the event unacknowledged) when the Handler failed on a message or
// receipt.
func (d *Whatsmeow) handler(ctx context.Context, h Handler, cli *whatsmeow.Client, gen uint64) whatsmeow.EventHandlerWithSuccessStatus {
	return func(raw any) bool {
		d.mu.Lock()
		self := d.self
		d.mu.Unlock()
		ev, mapped := mapEvent(raw, self, time.Now())
		switch e := raw.(type) {
		case *events.GroupInfo:
			if e.Name != nil {
				d.setGroupName(e.JID, e.Name.Name)
			}
		case *events.JoinedGroup:
			d.setGroupName(e.JID, e.Name)
		case *events.Message:
			if in, ok := ev.(*Incoming); ok {
				in.ChatName = d.chatName(ctx, cli, e.Info.Chat.ToNonAD())
			}
		}
		switch ev.(type) {
		case *Incoming, *Receipt:
			if err := d.deliver(ctx, h, ev); err != nil {
				d.log.Warn().Err(err).Str("event", fmt.Sprintf("%T", raw)).Msg("whatsapp: handler failed; not acknowledged")
				return false
			}
			return true
		}
		switch raw.(type) {
		case *events.QR:
			// The QR channel rotates the codes and reports them.
			return true
		case *events.Connected, *events.PushNameSetting:
			// Stay "unavailable" so the phone keeps showing notifications.
			go d.markUnavailable(ctx, cli)
		}
		if !mapped && !isConnectionEvent(raw) {
			return true
		}
		select {
		case d.sig <- connSignal{gen: gen, raw: raw, ev: ev}:
		case <-ctx.Done():
		case <-time.After(5 * time.Second):
			d.log.Warn().Str("event", fmt.Sprintf("%T", raw)).Msg("whatsapp: supervisor busy; connection event dropped")
		}
		return true
	}
}

func (d *Whatsmeow) setGroupName(jid types.JID, name string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.groupNames == nil {
		d.groupNames = map[types.JID]string{}
	}
	d.groupNames[jid.ToNonAD()] = name
}

// chatName is a chat's own name: a group's subject (asked of WhatsApp the
// first time a group is seen, then kept up to date by its events), a
// contact's name from the address book the phone synced. Push names are
// not chat names: they belong to the sender.
func (d *Whatsmeow) chatName(ctx context.Context, cli *whatsmeow.Client, chat types.JID) string {
	if cli == nil {
		return ""
	}
	switch chat.Server {
	case types.GroupServer:
		d.mu.Lock()
		name, ok := d.groupNames[chat]
		d.mu.Unlock()
		if ok {
			return name
		}
		ictx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		info, err := cli.GetGroupInfo(ictx, chat)
		if err != nil {
			// Not asked again for every message (the group's events still
			// bring its subject): a failing query would hold each up.
			d.log.Debug().Err(err).Str("chat", chat.String()).Msg("whatsapp: group subject not known yet")
			d.setGroupName(chat, "")
			return ""
		}
		d.setGroupName(chat, info.Name)
		return info.Name
	case types.DefaultUserServer, types.HiddenUserServer:
		if cli.Store == nil || cli.Store.Contacts == nil {
			return ""
		}
		c, err := cli.Store.Contacts.GetContact(ctx, chat)
		if err != nil || !c.Found {
			return ""
		}
		return cmp.Or(c.FullName, c.FirstName, c.BusinessName)
	}
	return ""
}

func isConnectionEvent(raw any) bool {
	switch raw.(type) {
	case *events.Connected, *events.Disconnected, *events.KeepAliveTimeout, *events.KeepAliveRestored,
		*events.LoggedOut, *events.StreamReplaced, *events.TemporaryBan, *events.ConnectFailure,
		*events.ClientOutdated, *events.StreamError, *events.PairSuccess, *events.PairError:
		return true
	}
	return false
}

func (d *Whatsmeow) markUnavailable(ctx context.Context, cli *whatsmeow.Client) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := cli.SendPresence(ctx, types.PresenceUnavailable); err != nil {
		if errors.Is(err, whatsmeow.ErrNoPushName) {
			d.log.Debug().Msg("whatsapp: no push name yet; presence not sent")
			return
		}
		d.log.Warn().Err(err).Msg("whatsapp: sending presence unavailable")
	}
}

// mapEvent maps a whatsmeow event to ours; false for events we do not
// report. self is our own JID for the session events that carry it.
func mapEvent(evt any, self string, now time.Time) (Event, bool) {
	session := func(s Session) (Event, bool) { return &SessionChanged{Session: s}, true }
	switch e := evt.(type) {
	case *events.Message:
		if e == nil {
			return nil, false
		}
		return mapMessage(e), true
	case *events.Receipt:
		if e == nil {
			return nil, false
		}
		r, ok := mapReceipt(e)
		if !ok {
			return nil, false
		}
		return r, true
	case *events.Connected, *events.KeepAliveRestored:
		return session(Session{State: StateConnected, JID: self})
	case *events.Disconnected:
		return session(Session{State: StateDisconnected, Reason: "connection lost", JID: self})
	case *events.KeepAliveTimeout:
		return session(Session{State: StateDisconnected, JID: self,
			Reason: "no answer to keep-alive since " + e.LastSuccess.UTC().Format(time.RFC3339)})
	case *events.LoggedOut:
		return session(Session{State: StateLoggedOut, Reason: e.Reason.String()})
	case *events.StreamReplaced:
		return session(Session{State: StateReplaced, JID: self, Reason: "another client connected with this session"})
	case *events.TemporaryBan:
		return session(Session{State: StateTemporarilyBanned, JID: self, Reason: e.Code.String(), Until: now.Add(e.Expire)})
	case *events.ConnectFailure:
		if e.Reason.IsLoggedOut() {
			return session(Session{State: StateLoggedOut, Reason: e.Reason.String()})
		}
		reason := "connect failure: " + e.Reason.String()
		if e.Message != "" {
			reason += ": " + e.Message
		}
		return session(Session{State: StateDisconnected, JID: self, Reason: reason})
	case *events.ClientOutdated:
		return session(Session{State: StateDisconnected, JID: self, Reason: "client outdated: WhatsApp refuses this whatsmeow version"})
	case *events.PairSuccess:
		return session(Session{State: StateConnecting, JID: e.ID.ToNonAD().String()})
	case *events.PairError:
		reason := "pairing failed"
		if e.Error != nil {
			reason += ": " + e.Error.Error()
		}
		return session(Session{State: StateUnpaired, Reason: reason})
	case *events.QR:
		if len(e.Codes) == 0 {
			return nil, false
		}
		return session(Session{State: StatePairing, QR: e.Codes[0], QRExpires: now.Add(wmFirstQRTimeout)})
	}
	return nil, false
}

func mapMessage(e *events.Message) *Incoming {
	in := &Incoming{
		ID:        e.Info.ID,
		Chat:      e.Info.Chat.ToNonAD().String(),
		Sender:    e.Info.Sender.ToNonAD().String(),
		FromMe:    e.Info.IsFromMe,
		Timestamp: e.Info.Timestamp,
		PushName:  e.Info.PushName,
		Body:      msg.Body{Kind: msg.KindOther},
	}
	m := e.Message
	media := func(kind string, handle whatsmeow.DownloadableMessage, mime string, size uint64, name, caption string, sha []byte, ci *waE2E.ContextInfo) {
		in.Kind = kind
		in.Media = &Media{MimeType: mime, Size: int64(size), FileName: name, Caption: caption, SHA256: sha, Handle: handle}
		in.ReplyTo = ci.GetStanzaID()
	}
	switch {
	case m == nil:
	case m.ReactionMessage != nil:
		in.Kind = "reaction"
		in.Reaction = m.ReactionMessage.GetText()
		in.ReactionTo = m.ReactionMessage.GetKey().GetID()
		in.Target = &msg.Target{WAID: in.ReactionTo, Chat: in.Chat, FromMe: m.ReactionMessage.GetKey().GetFromMe()}
	case m.Conversation != nil:
		in.Kind = "text"
		in.Text = m.GetConversation()
	case m.ExtendedTextMessage != nil:
		in.Kind = "text"
		in.Text = m.ExtendedTextMessage.GetText()
		in.ReplyTo = m.ExtendedTextMessage.GetContextInfo().GetStanzaID()
	case m.ImageMessage != nil:
		x := m.ImageMessage
		media("image", x, x.GetMimetype(), x.GetFileLength(), "", x.GetCaption(), x.GetFileSHA256(), x.GetContextInfo())
	case m.VideoMessage != nil:
		x := m.VideoMessage
		media("video", x, x.GetMimetype(), x.GetFileLength(), "", x.GetCaption(), x.GetFileSHA256(), x.GetContextInfo())
	case m.AudioMessage != nil:
		x := m.AudioMessage
		media("audio", x, x.GetMimetype(), x.GetFileLength(), "", "", x.GetFileSHA256(), x.GetContextInfo())
	case m.DocumentMessage != nil:
		x := m.DocumentMessage
		name := x.GetFileName()
		if name == "" {
			name = x.GetTitle()
		}
		media("document", x, x.GetMimetype(), x.GetFileLength(), name, x.GetCaption(), x.GetFileSHA256(), x.GetContextInfo())
	case m.StickerMessage != nil:
		x := m.StickerMessage
		media("sticker", x, x.GetMimetype(), x.GetFileLength(), "", "", x.GetFileSHA256(), x.GetContextInfo())
	}
	return in
}

// mapReceipt maps the receipts that say how far a message we sent got.
// Receipts from our own other devices (IsFromMe: we read or played
// something on the phone, "sender", "read-self", "played-self") and the
// bookkeeping ones (retry, server-error, inactive, peer_msg, hist_sync)
// are not about delivery and are left out.
func mapReceipt(e *events.Receipt) (*Receipt, bool) {
	if e.IsFromMe {
		return nil, false
	}
	var t ReceiptType
	switch e.Type {
	case types.ReceiptTypeDelivered:
		t = ReceiptDelivered
	case types.ReceiptTypeRead, types.ReceiptTypePlayed:
		// Played (a voice or view-once message opened) implies read.
		t = ReceiptRead
	default:
		return nil, false
	}
	ids := make([]string, 0, len(e.MessageIDs))
	for _, id := range e.MessageIDs {
		ids = append(ids, string(id))
	}
	if len(ids) == 0 {
		return nil, false
	}
	return &Receipt{
		Chat:      e.Chat.ToNonAD().String(),
		Sender:    e.Sender.ToNonAD().String(),
		IDs:       ids,
		Type:      t,
		Timestamp: e.Timestamp,
	}, true
}

// NewMessageID implements Driver. whatsmeow's generator works without a
// client too (it then leaves the own JID out of the hash).
func (d *Whatsmeow) NewMessageID() string {
	var cli *whatsmeow.Client
	if d != nil {
		cli = d.current()
	}
	return cli.GenerateMessageID()
}

// parseRecipient accepts a user, group, LID or newsletter JID, or bare
// phone digits (with an optional "+") for a user.
func parseRecipient(s string) (types.JID, error) {
	s = strings.TrimSpace(s)
	if !strings.Contains(s, "@") {
		digits := strings.TrimPrefix(s, "+")
		if digits == "" || strings.Trim(digits, "0123456789") != "" {
			return types.JID{}, fmt.Errorf("invalid recipient %q", s)
		}
		return types.NewJID(digits, types.DefaultUserServer), nil
	}
	jid, err := types.ParseJID(s)
	if err != nil {
		return types.JID{}, fmt.Errorf("invalid recipient %q: %w", s, err)
	}
	if jid.User == "" {
		return types.JID{}, fmt.Errorf("invalid recipient %q", s)
	}
	switch jid.Server {
	case types.DefaultUserServer, types.GroupServer, types.HiddenUserServer, types.NewsletterServer:
	default:
		return types.JID{}, fmt.Errorf("invalid recipient %q: unsupported server %q", s, jid.Server)
	}
	return jid.ToNonAD(), nil
}

// buildMessage is the WhatsApp message for m: plain, or quoting ReplyTo.
func buildMessage(m Outgoing, up *whatsmeow.UploadResponse) *waE2E.Message {
	var ctxInfo *waE2E.ContextInfo
	if m.ReplyTo != "" {
		ctxInfo = &waE2E.ContextInfo{StanzaID: proto.String(m.ReplyTo)}
	}
	if m.Media != nil && up != nil {
		mt := m.Media.MimeType
		var caption *string
		if m.Text != "" {
			caption = proto.String(m.Text)
		}
		switch mediaKind(mt) {
		case whatsmeow.MediaImage:
			return &waE2E.Message{ImageMessage: &waE2E.ImageMessage{Caption: caption, Mimetype: proto.String(mt), URL: proto.String(up.URL),
				DirectPath: proto.String(up.DirectPath), MediaKey: up.MediaKey, FileEncSHA256: up.FileEncSHA256,
				FileSHA256: up.FileSHA256, FileLength: proto.Uint64(up.FileLength), ContextInfo: ctxInfo}}
		case whatsmeow.MediaVideo:
			return &waE2E.Message{VideoMessage: &waE2E.VideoMessage{Caption: caption, Mimetype: proto.String(mt), URL: proto.String(up.URL),
				DirectPath: proto.String(up.DirectPath), MediaKey: up.MediaKey, FileEncSHA256: up.FileEncSHA256,
				FileSHA256: up.FileSHA256, FileLength: proto.Uint64(up.FileLength), ContextInfo: ctxInfo}}
		case whatsmeow.MediaAudio:
			return &waE2E.Message{AudioMessage: &waE2E.AudioMessage{Mimetype: proto.String(mt), URL: proto.String(up.URL),
				DirectPath: proto.String(up.DirectPath), MediaKey: up.MediaKey, FileEncSHA256: up.FileEncSHA256,
				FileSHA256: up.FileSHA256, FileLength: proto.Uint64(up.FileLength), ContextInfo: ctxInfo}}
		default:
			return &waE2E.Message{DocumentMessage: &waE2E.DocumentMessage{Caption: caption, Mimetype: proto.String(mt), FileName: proto.String(m.Media.FileName),
				URL: proto.String(up.URL), DirectPath: proto.String(up.DirectPath), MediaKey: up.MediaKey, FileEncSHA256: up.FileEncSHA256,
				FileSHA256: up.FileSHA256, FileLength: proto.Uint64(up.FileLength), ContextInfo: ctxInfo}}
		}
	}
	if ctxInfo == nil {
		return &waE2E.Message{Conversation: proto.String(m.Text)}
	}
	return &waE2E.Message{ExtendedTextMessage: &waE2E.ExtendedTextMessage{Text: proto.String(m.Text), ContextInfo: ctxInfo}}
}

// mediaKind is how WhatsApp carries a file of MIME type mt.
func mediaKind(mt string) whatsmeow.MediaType {
	switch {
	case strings.HasPrefix(mt, "image/") && mt != "image/svg+xml":
		return whatsmeow.MediaImage
	case strings.HasPrefix(mt, "video/"):
		return whatsmeow.MediaVideo
	case strings.HasPrefix(mt, "audio/"):
		return whatsmeow.MediaAudio
	}
	return whatsmeow.MediaDocument
}

// Send implements Driver.
func (d *Whatsmeow) Send(ctx context.Context, m Outgoing) (time.Time, error) {
	if d == nil {
		return time.Time{}, ErrNotConnected
	}
	jid, err := parseRecipient(m.Chat)
	if err != nil {
		return time.Time{}, &SendError{Reason: err.Error()}
	}
	if strings.TrimSpace(m.Text) == "" && m.Media == nil {
		return time.Time{}, &SendError{Reason: "empty message"}
	}
	if m.Media != nil && m.Media.Body == nil {
		return time.Time{}, &SendError{Reason: "media without bytes"}
	}
	if len(m.Text) > wmMaxTextLength {
		return time.Time{}, &SendError{Reason: fmt.Sprintf("message too large (%d bytes, at most %d)", len(m.Text), wmMaxTextLength)}
	}
	cli := d.current()
	if cli == nil || !cli.IsLoggedIn() {
		return time.Time{}, ErrNotConnected
	}
	id := m.ID
	if id == "" {
		id = cli.GenerateMessageID()
	}
	var up *whatsmeow.UploadResponse
	if m.Media != nil {
		// An upload is idempotent from our side: a retry uploads again and
		// sends with the same message id. The file is encrypted into a
		// temporary file as it is read (whatsmeow's Upload holds it twice).
		res, err := cli.UploadReader(ctx, m.Media.Body, nil, mediaKind(m.Media.MimeType))
		if err != nil {
			se := classifySendError(err)
			d.log.Warn().Err(err).Str("id", id).Bool("retryable", se.Retryable).Msg("whatsapp: media upload failed")
			return time.Time{}, se
		}
		up = &res
	}
	resp, err := cli.SendMessage(ctx, jid, buildMessage(m, up), whatsmeow.SendRequestExtra{ID: types.MessageID(id)})
	if err != nil {
		se := classifySendError(err)
		d.log.Warn().Err(err).Str("id", id).Bool("retryable", se.Retryable).Bool("rate_limited", se.RateLimited).
			Msg("whatsapp: send failed")
		return time.Time{}, se
	}
	if resp.Timestamp.IsZero() {
		return time.Now(), nil
	}
	return resp.Timestamp, nil
}

// classifySendError maps an error of whatsmeow's SendMessage to a SendError.
// Unknown errors are retryable: a lost message is worse than a retry.
func classifySendError(err error) *SendError {
	if err == nil {
		return nil
	}
	var se *SendError
	if errors.As(err, &se) {
		return se
	}
	reason := err.Error()
	retry := &SendError{Reason: reason, Retryable: true}
	never := &SendError{Reason: reason}
	limited := &SendError{Reason: reason, Retryable: true, RateLimited: true}

	var disc *whatsmeow.DisconnectedError
	var iqErr *whatsmeow.IQError
	var netErr net.Error
	switch {
	case errors.Is(err, whatsmeow.ErrNotConnected), errors.Is(err, whatsmeow.ErrNotLoggedIn),
		errors.Is(err, whatsmeow.ErrClientIsNil), errors.Is(err, socket.ErrSocketClosed):
		return ErrNotConnected
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded),
		errors.Is(err, whatsmeow.ErrMessageTimedOut), errors.Is(err, whatsmeow.ErrIQTimedOut),
		errors.As(err, &disc), errors.As(err, &netErr):
		return retry
	case errors.Is(err, whatsmeow.ErrRecipientADJID), errors.Is(err, whatsmeow.ErrUnknownServer),
		errors.Is(err, whatsmeow.ErrBroadcastListUnsupported), errors.Is(err, whatsmeow.ErrInvalidInlineBotID),
		errors.Is(err, socket.ErrFrameTooLarge), errors.Is(err, whatsmeow.ErrGroupNotFound),
		errors.Is(err, whatsmeow.ErrNotInGroup), strings.Contains(reason, "no LID found"):
		// Unknown recipient (no WhatsApp account), not in the group, too large.
		return never
	case errors.Is(err, whatsmeow.ErrServerReturnedError):
		code := 0
		if i := strings.LastIndexByte(reason, ' '); i >= 0 {
			code, _ = strconv.Atoi(reason[i+1:])
		}
		switch code {
		case 420, 429:
			return limited
		case 400, 404, 405, 406:
			return never
		}
		return retry // 5xx, 479 (stale session state), 463 (restriction), 403 (seen to pass later)
	case errors.As(err, &iqErr):
		switch {
		case iqErr.Code == 429 || iqErr.Code == 419:
			return limited
		case iqErr.Code >= 400 && iqErr.Code < 500 && iqErr.Code != 408:
			return never
		}
		return retry
	}
	return retry
}

// PairPhone implements Driver.
func (d *Whatsmeow) PairPhone(ctx context.Context, phone string) (string, error) {
	if d == nil {
		return "", ErrNotConnected
	}
	d.mu.Lock()
	cli, paired, state := d.client, d.paired, d.session.State
	d.mu.Unlock()
	if cli == nil {
		return "", ErrNotConnected
	}
	if paired || cli.IsLoggedIn() {
		return "", ErrAlreadyPaired
	}
	// A shown QR code means the pairing websocket is up (whatsmeow asks to
	// wait for it before PairPhone).
	if state != StatePairing || !cli.IsConnected() {
		return "", ErrNotConnected
	}
	code, err := cli.PairPhone(ctx, phone, true, whatsmeow.PairClientChrome, wmPairClientDisplayName)
	if err != nil {
		var disc *whatsmeow.DisconnectedError
		if errors.Is(err, whatsmeow.ErrNotConnected) || errors.As(err, &disc) {
			return "", ErrNotConnected
		}
		return "", fmt.Errorf("whatsapp: pair phone: %w", err)
	}
	return code, nil
}

// errMediaTooLarge is returned by Download for media over maxBytes.
var errMediaTooLarge = errors.New("whatsapp: media too large")

type maxBytesKey struct{}

// limitTransport cuts media downloads at the limit Download put in the
// request's context, so a lying size in the message cannot make us read
// more than allowed.
type limitTransport struct{ base http.RoundTripper }

func (t *limitTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.base.RoundTrip(req)
	if err != nil || resp == nil {
		return resp, err
	}
	if limit, ok := req.Context().Value(maxBytesKey{}).(int64); ok {
		// Fail in the body, not here: whatsmeow retries transport errors.
		left := limit
		if resp.ContentLength > limit {
			left = -1
		}
		resp.Body = &limitedBody{ReadCloser: resp.Body, left: left}
	}
	return resp, nil
}

type limitedBody struct {
	io.ReadCloser
	left int64
}

func (b *limitedBody) Read(p []byte) (int, error) {
	if b.left < 0 {
		return 0, errMediaTooLarge
	}
	if int64(len(p)) > b.left+1 {
		p = p[:b.left+1]
	}
	n, err := b.ReadCloser.Read(p)
	b.left -= int64(n)
	if b.left < 0 {
		return n, errMediaTooLarge
	}
	return n, err
}

// Download implements Driver. The file is decrypted in a temporary file
// (unlinked at once, so nothing stays if the process dies), not in memory;
// closing the reader removes it.
func (d *Whatsmeow) Download(ctx context.Context, m *Media, maxBytes int64) (io.ReadCloser, error) {
	if m == nil {
		return nil, errors.New("whatsapp: download: no media")
	}
	handle, ok := m.Handle.(whatsmeow.DownloadableMessage)
	if !ok || handle == nil {
		return nil, errors.New("whatsapp: download: media has no whatsmeow handle")
	}
	if maxBytes <= 0 {
		return nil, errors.New("whatsapp: download: no byte limit")
	}
	if m.Size > maxBytes {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", errMediaTooLarge, m.Size, maxBytes)
	}
	if d == nil {
		return nil, ErrNotConnected
	}
	cli := d.current()
	if cli == nil {
		return nil, ErrNotConnected
	}
	f, err := os.CreateTemp("", "app-media-*")
	if err != nil {
		return nil, fmt.Errorf("whatsapp: download: %w", err)
	}
	_ = os.Remove(f.Name())
	// The encrypted file is the plaintext padded to 16 bytes plus a 10-byte MAC.
	err = cli.DownloadToFile(context.WithValue(ctx, maxBytesKey{}, maxBytes+16+10), handle, f)
	if err != nil {
		// Like mautrix-whatsapp: a size or plaintext-hash mismatch after a
		// valid MAC is a warning, not a failure.
		if errors.Is(err, whatsmeow.ErrFileLengthMismatch) || errors.Is(err, whatsmeow.ErrInvalidMediaSHA256) {
			d.log.Warn().Err(err).Msg("whatsapp: downloaded media does not match its metadata")
		} else {
			_ = f.Close()
			return nil, fmt.Errorf("whatsapp: download: %w", err)
		}
	}
	st, err := f.Stat()
	if err == nil && st.Size() > maxBytes {
		err = fmt.Errorf("%w: %d bytes, limit %d", errMediaTooLarge, st.Size(), maxBytes)
	}
	if err == nil {
		_, err = f.Seek(0, io.SeekStart)
	}
	if err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("whatsapp: download: %w", err)
	}
	return f, nil
}

// Logout implements Driver.
func (d *Whatsmeow) Logout(ctx context.Context) error {
	if d == nil {
		return ErrNotPaired
	}
	d.mu.Lock()
	cli, paired, gen := d.client, d.paired, d.gen
	d.mu.Unlock()
	if cli == nil || !paired {
		return ErrNotPaired
	}
	err := cli.Logout(ctx)
	var disc *whatsmeow.DisconnectedError
	switch {
	case err == nil:
	case errors.Is(err, whatsmeow.ErrNotLoggedIn):
		return ErrNotPaired
	case errors.Is(err, whatsmeow.ErrNotConnected), errors.As(err, &disc):
		return ErrNotConnected
	case strings.HasPrefix(err.Error(), "error deleting data from store"):
		// Unlinked on WhatsApp's side; the supervisor retries the delete.
		d.log.Error().Err(err).Msg("whatsapp: logout")
	default:
		return fmt.Errorf("whatsapp: logout: %w", err)
	}
	select {
	case d.sig <- connSignal{gen: gen, raw: localLogout{}}:
	case <-ctx.Done():
	}
	return nil
}

// reconnectBackoff is an exponential back-off: initial, doubling, capped at max,
// each step jittered down to at most half.
type reconnectBackoff struct {
	initial, max, cur time.Duration
}

func (b *reconnectBackoff) next() time.Duration {
	switch {
	case b.cur == 0:
		b.cur = b.initial
	case b.cur < b.max:
		b.cur *= 2
	}
	if b.cur > b.max {
		b.cur = b.max
	}
	return jitterDown(b.cur)
}

func (b *reconnectBackoff) reset() { b.cur = 0 }

// jitterDown returns a random duration in [d/2, d].
func jitterDown(d time.Duration) time.Duration {
	if d <= 1 {
		return d
	}
	half := d / 2
	return half + rand.N(d-half+1)
}

// sleepOrDone waits for d; false when ctx ended first.
func sleepOrDone(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
