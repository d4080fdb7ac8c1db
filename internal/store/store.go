// Package store is the suite's contract with its database: the domain
// types the processes share (the outbox, messages, chats, the event log,
// schedules, webhooks, keys, heartbeats, the primary lease) and Store, the
// methods both engines keep. The engines live in their own packages and
// register themselves (Register): sqlitestore, the embedded default, one
// file in the state directory; mongostore, for MONGO_URI, needed when the
// suite runs on several machines. Nothing here knows BSON or SQL: the
// struct tags name the MongoDB engine's fields, and are only strings.
//
// Every record that moves has one writer (the primary, under its fenced
// lease), and contention between writers is settled by unique inserts or
// versioned edits, which both engines enforce.
package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"app/internal/config"
)

// Store is a connected database handle, safe for concurrent use. Its
// errors are the same on both engines: ErrNotFound, ErrExists and
// ErrConflict are definite answers; IsUnavailable and OutcomeUnknown sort
// the rest.
type Store interface {
	// Engine is "sqlite" or "mongodb".
	Engine() string
	Close(ctx context.Context) error
	// Ping checks that the database answers (SQLite: the file is readable).
	Ping(ctx context.Context) error
	// WaitReady pings until the database answers or ctx ends.
	WaitReady(ctx context.Context) error
	// Server says what the database is.
	Server(ctx context.Context) (ServerInfo, error)
	// EnsureIndexes creates what the store needs (MongoDB's indexes; on
	// SQLite the schema exists from Open). Safe to repeat.
	EnsureIndexes(ctx context.Context, log zerolog.Logger) error
	// Pool is this process's connection figure (MongoDB's pool; SQLite's
	// readers).
	Pool() config.Pool
	// Stats are this process's connection counts.
	Stats() *PoolStats
	// Clock reads the server's clock (SQLite: this machine's).
	Clock(ctx context.Context) (ServerClock, error)
	// Connections is the server's own count of its client connections.
	Connections(ctx context.Context) (ServerConnections, error)
	// Atomically runs f so that the writes f makes through this store,
	// with the context f is given, are one: all or none (SQLite: one
	// transaction; f's reads do not see its own writes). On MongoDB,
	// without transactions on a standalone server, they are made one after
	// the other, and f's error does not undo them: callers keep to a
	// protocol that survives a stop between them (the event log's marks).
	Atomically(ctx context.Context, f func(ctx context.Context) error) error

	// Heartbeats.
	WriteHeartbeat(ctx context.Context, hb Heartbeat) error
	Heartbeats(ctx context.Context, since time.Time) ([]Heartbeat, error)
	PruneHeartbeats(ctx context.Context, before time.Time) (int64, error)

	// The primary lease.
	CurrentLease(ctx context.Context) (Lease, error)
	ClaimLease(ctx context.Context, l Lease) (bool, error)
	RenewLease(ctx context.Context, epoch int64, holder string, expires time.Time) (bool, error)
	PruneLeases(ctx context.Context, keepFrom int64) error

	// API keys and browser tokens.
	CreateAPIKey(ctx context.Context, k APIKey) error
	APIKey(ctx context.Context, id string) (APIKey, error)
	APIKeys(ctx context.Context) ([]APIKey, error)
	RevokeAPIKey(ctx context.Context, id string) error
	CreateEventToken(ctx context.Context, t EventToken) error
	EventToken(ctx context.Context, hash string) (EventToken, error)
	PruneEventTokens(ctx context.Context, before time.Time) (int64, error)

	// Commands from workers to the primary.
	InsertCommand(ctx context.Context, c *Command) error
	Command(ctx context.Context, id string) (Command, error)
	PendingCommands(ctx context.Context) ([]Command, error)
	DecideCommand(ctx context.Context, c Command) error
	PruneCommands(ctx context.Context, before time.Time) error

	// The event log.
	AppendEvent(ctx context.Context, seq int64, typ string, epoch int64, data any) error
	LastEventSeq(ctx context.Context) (int64, error)
	FirstEventSeq(ctx context.Context) (int64, error)
	Events(ctx context.Context, after int64, limit int) ([]Event, error)
	EventSeqAt(ctx context.Context, t time.Time) (int64, error)
	PruneEvents(ctx context.Context, before time.Time) (int64, error)
	PruneEventsBeyond(ctx context.Context, keep int64) (int64, error)
	SetEventHead(ctx context.Context, seq int64) error
	EventHead(ctx context.Context) (int64, error)

	// Media.
	PutMedia(ctx context.Context, name, contentType string, data io.Reader) (string, error)
	PutMediaOf(ctx context.Context, name, contentType, keyID string, data io.Reader) (string, error)
	Media(ctx context.Context, id string) ([]byte, error)
	OpenMedia(ctx context.Context, id string) (MediaInfo, io.ReadCloser, error)
	MediaInfo(ctx context.Context, id string) (MediaInfo, error)
	PruneMedia(ctx context.Context, before time.Time) (int, error)

	// The outbox.
	EnqueueMessage(ctx context.Context, m *OutboxMessage) error
	OutboxMessage(ctx context.Context, id string) (OutboxMessage, error)
	OutboxPage(ctx context.Context, chat, status string, beforeNS int64, beforeID string, limit int) ([]OutboxMessage, error)
	OutboxUnfinished(ctx context.Context, limit int) ([]OutboxMessage, error)
	OutboxByStatus(ctx context.Context, status string, limit int) ([]OutboxMessage, error)
	OutboxByWAID(ctx context.Context, waID string) (OutboxMessage, error)
	SaveOutbox(ctx context.Context, m *OutboxMessage) (bool, error)
	CountSentSince(ctx context.Context, t time.Time) (int64, error)
	OutboxBacklog(ctx context.Context) (int64, time.Time, error)
	OutboxUnannounced(ctx context.Context, seq int64) ([]OutboxMessage, error)
	RequestCancel(ctx context.Context, id string) error
	CancelRequest(ctx context.Context, id string) (CancelRequest, error)
	PendingCancels(ctx context.Context) ([]CancelRequest, error)
	DecideCancel(ctx context.Context, c CancelRequest) error

	// Schedules.
	CreateSchedule(ctx context.Context, sc *Schedule) error
	CreateSchedules(ctx context.Context, scs []Schedule) error
	Schedule(ctx context.Context, id string) (Schedule, error)
	ScheduleAny(ctx context.Context, id string) (Schedule, error)
	UpdateSchedule(ctx context.Context, sc *Schedule) error
	SchedulesChangedSince(ctx context.Context, ns int64, limit int) ([]Schedule, error)
	SchedulesPage(ctx context.Context, beforeNS int64, beforeID string, limit int) ([]Schedule, error)
	ScheduleChanges(ctx context.Context, limit int) ([]ScheduleChange, error)
	ForgetScheduleChanges(ctx context.Context, keys []string) error
	ScheduleStates(ctx context.Context) ([]ScheduleState, error)
	ScheduleState(ctx context.Context, id string) (ScheduleState, error)
	SaveScheduleState(ctx context.Context, st ScheduleState) error
	RecordRun(ctx context.Context, r ScheduleRun) error
	ScheduleRuns(ctx context.Context, id string, beforeNS int64, limit int) ([]ScheduleRun, error)

	// Webhooks.
	CreateWebhook(ctx context.Context, w *Webhook) error
	Webhook(ctx context.Context, id string) (Webhook, error)
	Webhooks(ctx context.Context) ([]Webhook, error)
	UpdateWebhook(ctx context.Context, w *Webhook) error
	DisableWebhook(ctx context.Context, id string, version int, reason string) error
	DeleteWebhook(ctx context.Context, id string) error
	WebhookState(ctx context.Context, id string) (WebhookState, error)
	SaveWebhookState(ctx context.Context, st WebhookState) error
	ForgetWebhookStates(ctx context.Context, keep []string) error
	SaveDelivery(ctx context.Context, d WebhookDelivery) error
	Deliveries(ctx context.Context, id string, beforeSeq int64, status string, limit int) ([]WebhookDelivery, error)
	PruneDeliveries(ctx context.Context, before time.Time) (int64, error)

	// WhatsApp: the session, incoming messages, receipts, chats, contacts.
	SaveSession(ctx context.Context, ws WASession) error
	Session(ctx context.Context) (WASession, error)
	SaveIncoming(ctx context.Context, m IncomingMessage) (bool, error)
	SetIncomingMedia(ctx context.Context, key string, ref MediaRef, eventSeq int64) error
	IncomingMessage(ctx context.Context, key string) (IncomingMessage, error)
	IncomingByWAID(ctx context.Context, chat, waID string) (IncomingMessage, error)
	UpdateIncoming(ctx context.Context, m IncomingMessage) error
	IncomingUnannounced(ctx context.Context, seq int64) ([]IncomingMessage, error)
	IncomingMessages(ctx context.Context, chat string, limit int) ([]IncomingMessage, error)
	IncomingPage(ctx context.Context, chat string, beforeNS int64, beforeKey string, limit int) ([]IncomingMessage, error)
	SaveReceipt(ctx context.Context, r ReceiptRecord) error
	Chat(ctx context.Context, jid string) (Chat, error)
	SaveChat(ctx context.Context, c Chat) error
	ChatsPage(ctx context.Context, beforeNS int64, beforeJID string, usersOnly bool, limit int) ([]Chat, error)
	CountNewContactsSince(ctx context.Context, t time.Time) (int64, error)
	SaveContactPushName(ctx context.Context, jid, name string) error
	Contact(ctx context.Context, jid string) (Contact, error)

	// Phone numbers and LIDs (lids.go): the pairs WhatsApp told us, a
	// contact's two forms, and the messages whose file was asked of the
	// sender's phone again.
	//
	// SaveLIDPair records that pn and lid are one person; it replaces any
	// pair that had either (the newest mapping wins).
	SaveLIDPair(ctx context.Context, pn, lid string) error
	// LIDPair is the pair that has jid, given as either form; ErrNotFound
	// when none has.
	LIDPair(ctx context.Context, jid string) (LIDPair, error)
	// SaveContactAddr records a contact's phone-number JID and LID (an
	// empty one is left as stored), keeping its push name.
	SaveContactAddr(ctx context.Context, jid, pn, lid string) error
	// IncomingMediaPending lists incoming messages whose media is pending
	// (MediaRef.Pending) received since since, oldest first.
	IncomingMediaPending(ctx context.Context, since time.Time, limit int) ([]IncomingMessage, error)

	// The blocklist (issue 19): SaveBlocklist replaces it; Blocklist is
	// ErrNotFound before it was first saved.
	SaveBlocklist(ctx context.Context, b Blocklist) error
	Blocklist(ctx context.Context) (Blocklist, error)
	// Number checks (numbers.go; issue 19), written by the primary.
	//
	// SaveNumberChecks stores checks, replacing those of the same number.
	SaveNumberChecks(ctx context.Context, cs []NumberCheck) error
	// NumberChecks reads the stored checks of numbers ("+" and digits),
	// in no set order; a number never checked is left out.
	NumberChecks(ctx context.Context, numbers []string) ([]NumberCheck, error)
	// Profiles (profiles.go; issue 19), written by the primary.
	//
	// SaveProfile stores a profile, replacing the one of the same JID.
	SaveProfile(ctx context.Context, p Profile) error
	// Profiles reads the stored profiles of jids, in no set order; a JID
	// never asked about is left out.
	Profiles(ctx context.Context, jids []string) ([]Profile, error)
	// Groups (groups.go; issue 19), written by the primary.
	//
	// SaveGroup stores g, replacing the record of its JID.
	SaveGroup(ctx context.Context, g Group) error
	// Group is the stored group jid; ErrNotFound when none is.
	Group(ctx context.Context, jid string) (Group, error)
	// GroupsPage lists the groups we are a member of by (name, jid),
	// strictly after the cursor (empty: from the first).
	GroupsPage(ctx context.Context, afterName, afterJID string, limit int) ([]Group, error)
	// SaveGroupList stores the list of our groups as WhatsApp gave it at
	// at: each replaces its record, and every other group stored as ours
	// is no longer (Member false).
	SaveGroupList(ctx context.Context, gs []Group, at time.Time) error
	// GroupListFetchedAt is when SaveGroupList was last called (zero:
	// never).
	GroupListFetchedAt(ctx context.Context) (time.Time, error)
	// GroupsUnannounced lists groups stored for an event log position
	// after seq (the log's end): their events are missing.
	GroupsUnannounced(ctx context.Context, seq int64) ([]Group, error)
}

// Engine opens one kind of database.
type Engine struct {
	// Name is what Store.Engine says.
	Name string
	// Open connects a process configured by cfg. It must not wait for a
	// database server (a process starts, and serves /healthz, while it is
	// down).
	Open func(cfg config.Config, appName string, log zerolog.Logger) (Store, error)
	// Classify sorts the engine's own errors (Unavailable, Unknown) and
	// says false for errors it does not know.
	Classify func(err error) (kind ErrorKind, known bool)
}

var (
	enginesMu sync.RWMutex
	engines   = map[string]Engine{}
)

// Register makes an engine available to Connect; engines call it from init.
func Register(e Engine) {
	enginesMu.Lock()
	defer enginesMu.Unlock()
	engines[e.Name] = e
}

// DefaultAccount is the account of every record until an installation
// holds several WhatsApp accounts.
const DefaultAccount = "default"

// AccountOr is account, or DefaultAccount when it is empty.
func AccountOr(account string) string {
	if account == "" {
		return DefaultAccount
	}
	return account
}

// Engine names.
const (
	SQLite  = "sqlite"
	MongoDB = "mongodb"
)

// EngineFor is the engine cfg asks for: MongoDB when MONGO_URI is set,
// SQLite otherwise.
func EngineFor(cfg config.Config) string {
	if cfg.MongoURI != "" {
		return MongoDB
	}
	return SQLite
}

// Connect opens the store cfg asks for.
func Connect(cfg config.Config, appName string, log zerolog.Logger) (Store, error) {
	return ConnectEngine(EngineFor(cfg), cfg, appName, log)
}

// ConnectEngine opens the store with the named engine.
func ConnectEngine(name string, cfg config.Config, appName string, log zerolog.Logger) (Store, error) {
	enginesMu.RLock()
	e, ok := engines[name]
	enginesMu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("store: the %s engine is not built in (registered: %v)", name, registered())
	}
	return e.Open(cfg, appName, log)
}

func registered() []string {
	enginesMu.RLock()
	defer enginesMu.RUnlock()
	var names []string
	for n := range engines {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// PingUntil pings until the database answers or ctx ends, each ping
// bounded to 2 s: what both engines' WaitReady do.
func PingUntil(ctx context.Context, ping func(context.Context) error) error {
	for {
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		err := ping(pctx)
		cancel()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// PoolStats counts the connections of this process; the engine records
// them (MongoDB: from the driver's pool and command monitors).
type PoolStats struct {
	open        atomic.Int64
	maxOpen     atomic.Int64
	created     atomic.Int64
	inUse       atomic.Int64
	checkoutErr atomic.Int64
	commands    atomic.Int64
}

// InUse is the number of connections checked out now, by operations in
// progress.
func (p *PoolStats) InUse() int64 { return p.inUse.Load() }

// CheckoutFailures counts the times an operation could not get a
// connection (the pool stayed full past the timeout, or the server could
// not be reached).
func (p *PoolStats) CheckoutFailures() int64 { return p.checkoutErr.Load() }

// Commands counts the commands this process sent (round trips; SQLite:
// statements).
func (p *PoolStats) Commands() int64 { return p.commands.Load() }

// Open is the number of connections open now.
func (p *PoolStats) Open() int64 { return p.open.Load() }

// MaxOpen is the most connections ever open at once.
func (p *PoolStats) MaxOpen() int64 { return p.maxOpen.Load() }

// Created is how many connections were opened in all.
func (p *PoolStats) Created() int64 { return p.created.Load() }

// Opened records a new connection.
func (p *PoolStats) Opened() {
	p.created.Add(1)
	n := p.open.Add(1)
	for {
		m := p.maxOpen.Load()
		if n <= m || p.maxOpen.CompareAndSwap(m, n) {
			return
		}
	}
}

// Closed records a closed connection.
func (p *PoolStats) Closed() { p.open.Add(-1) }

// CheckedOut records a connection taken by an operation.
func (p *PoolStats) CheckedOut() { p.inUse.Add(1) }

// CheckedIn records a connection given back.
func (p *PoolStats) CheckedIn() { p.inUse.Add(-1) }

// CheckoutFailed records an operation that got no connection.
func (p *PoolStats) CheckoutFailed() { p.checkoutErr.Add(1) }

// CommandSent records one command (round trip).
func (p *PoolStats) CommandSent() { p.commands.Add(1) }

// ServerInfo says what the database is.
type ServerInfo struct {
	Kind       string // "SQLite", "MongoDB" or "FerretDB"
	Version    string // the version it reports (FerretDB: its own and the MongoDB one)
	ReplicaSet string // empty when not a replica set member
	// Path is SQLite's database file.
	Path string
}

func (i ServerInfo) String() string {
	if i.Kind == "SQLite" {
		return fmt.Sprintf("SQLite %s, %s", i.Version, i.Path)
	}
	rs := "standalone (no replica set)"
	if i.ReplicaSet != "" {
		rs = "replica set " + i.ReplicaSet
	}
	return fmt.Sprintf("%s %s, %s", i.Kind, i.Version, rs)
}

// ErrNotFound is returned when a record does not exist.
var ErrNotFound = errors.New("store: not found")
