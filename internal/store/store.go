// Package store is the suite's only door to MongoDB: the client with its
// pool budget, the server's identity, the indexes, and the documents the
// processes share (heartbeats, the primary lease).
//
// Code here keeps to what both MongoDB and the embedded FerretDB do right
// (see docs/DESIGN notes in the README): every document that moves has one
// writer, and contention is settled by unique inserts, which both enforce.
package store

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/event"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"app/internal/config"
)

// Store is a connected database handle, safe for concurrent use.
type Store struct {
	client *mongo.Client
	db     *mongo.Database
	pool   config.Pool
	stats  *PoolStats
}

// PoolStats counts the connections of this process, from the driver's pool monitor.
type PoolStats struct {
	open        atomic.Int64
	maxOpen     atomic.Int64
	created     atomic.Int64
	inUse       atomic.Int64
	checkoutErr atomic.Int64
	commands    atomic.Int64
}

// InUse is the number of connections checked out of the pool now, by
// operations in progress.
func (p *PoolStats) InUse() int64 { return p.inUse.Load() }

// CheckoutFailures counts the times an operation could not get a
// connection (the pool stayed full past the timeout, or the server could
// not be reached).
func (p *PoolStats) CheckoutFailures() int64 { return p.checkoutErr.Load() }

// Commands counts the commands this process sent (round trips).
func (p *PoolStats) Commands() int64 { return p.commands.Load() }

func (p *PoolStats) commandMonitor() *event.CommandMonitor {
	return &event.CommandMonitor{Started: func(context.Context, *event.CommandStartedEvent) { p.commands.Add(1) }}
}

// Open is the number of connections open now.
func (p *PoolStats) Open() int64 { return p.open.Load() }

// MaxOpen is the most connections ever open at once.
func (p *PoolStats) MaxOpen() int64 { return p.maxOpen.Load() }

// Created is how many connections were opened in all.
func (p *PoolStats) Created() int64 { return p.created.Load() }

func (p *PoolStats) monitor() *event.PoolMonitor {
	return &event.PoolMonitor{Event: func(e *event.PoolEvent) {
		switch e.Type {
		case event.ConnectionCreated:
			p.created.Add(1)
			n := p.open.Add(1)
			for {
				m := p.maxOpen.Load()
				if n <= m || p.maxOpen.CompareAndSwap(m, n) {
					break
				}
			}
		case event.ConnectionClosed:
			p.open.Add(-1)
		case event.ConnectionCheckedOut:
			p.inUse.Add(1)
		case event.ConnectionCheckedIn:
			p.inUse.Add(-1)
		case event.ConnectionCheckOutFailed:
			p.checkoutErr.Add(1)
		}
	}}
}

// Connect creates the client. It does not wait for the server: the driver
// connects in the background and reconnects after outages by itself, so a
// process can start (and serve /healthz) while the database is down.
func Connect(cfg config.Config, appName string, log zerolog.Logger) (*Store, error) {
	pool := cfg.Pool()
	stats := &PoolStats{}
	opts := options.Client().ApplyURI(cfg.EffectiveMongoURI()).
		SetAppName(appName).
		SetMaxPoolSize(uint64(pool.Max)).
		SetMinPoolSize(uint64(pool.Min)).
		SetMaxConnecting(uint64(pool.MaxConnecting)).
		SetServerSelectionTimeout(5 * time.Second).
		SetConnectTimeout(5 * time.Second).
		SetPoolMonitor(stats.monitor()).
		SetMonitor(stats.commandMonitor())
	if err := opts.Validate(); err != nil {
		// Options the URI carries are configuration too: exit status 2.
		return nil, &config.Error{Var: "MONGO_URI", Value: config.Redact(cfg.MongoURI), Allowed: "a valid connection string (" + err.Error() + ")"}
	}
	client, err := mongo.Connect(opts)
	if err != nil {
		return nil, fmt.Errorf("store: connect: %w", err)
	}
	log.Info().Int("pool_max", pool.Max).Int("pool_min", pool.Min).Int("max_connecting", pool.MaxConnecting).
		Int("processes", pool.Processes).Int("budget", pool.Budget).Bool("embedded", cfg.Embedded()).
		Msg("MongoDB pool is sized to this process's share of the connection budget.")
	return &Store{client: client, db: client.Database(cfg.MongoDatabase), pool: pool, stats: stats}, nil
}

// Pool is the pool figure this process uses.
func (s *Store) Pool() config.Pool { return s.pool }

// Stats are this process's connection counts.
func (s *Store) Stats() *PoolStats { return s.stats }

// Close disconnects, waiting for in-use connections up to ctx's deadline.
func (s *Store) Close(ctx context.Context) error { return s.client.Disconnect(ctx) }

// Ping checks that the server answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.db.RunCommand(ctx, bson.D{{Key: "ping", Value: 1}}).Err(); err != nil {
		return fmt.Errorf("store: ping: %w", err)
	}
	return nil
}

// WaitReady pings until the server answers or ctx ends.
func (s *Store) WaitReady(ctx context.Context) error {
	for {
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		err := s.Ping(pctx)
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

// ServerInfo says what the database is.
type ServerInfo struct {
	Kind       string // "MongoDB" or "FerretDB"
	Version    string // the MongoDB version it reports (and FerretDB's own)
	ReplicaSet string // empty when not a replica set member
}

func (i ServerInfo) String() string {
	rs := "standalone (no replica set)"
	if i.ReplicaSet != "" {
		rs = "replica set " + i.ReplicaSet
	}
	return fmt.Sprintf("%s %s, %s", i.Kind, i.Version, rs)
}

// Server asks the server what it is (buildInfo and hello).
func (s *Store) Server(ctx context.Context) (ServerInfo, error) {
	var bi struct {
		Version         string `bson:"version"`
		FerretDBVersion string `bson:"ferretdbVersion"`
	}
	if err := s.db.RunCommand(ctx, bson.D{{Key: "buildInfo", Value: 1}}).Decode(&bi); err != nil {
		return ServerInfo{}, fmt.Errorf("store: buildInfo: %w", err)
	}
	var hello struct {
		SetName string `bson:"setName"`
	}
	if err := s.db.RunCommand(ctx, bson.D{{Key: "hello", Value: 1}}).Decode(&hello); err != nil {
		return ServerInfo{}, fmt.Errorf("store: hello: %w", err)
	}
	info := ServerInfo{Kind: "MongoDB", Version: bi.Version, ReplicaSet: hello.SetName}
	if bi.FerretDBVersion != "" {
		info.Kind = "FerretDB"
		info.Version = "(MongoDB " + bi.Version + " compatible)"
		if bi.FerretDBVersion != "unknown" { // the embedded build carries no version
			info.Version = bi.FerretDBVersion + " " + info.Version
		}
	}
	return info, nil
}

// Collection names.
const (
	colHeartbeats      = "heartbeats"
	colLease           = "primary_lease"
	colOutbox          = "outbox"
	colCancels         = "outbox_cancels"
	colSession         = "wa_session"
	colMessages        = "messages"
	colReceipts        = "receipts"
	colChats           = "chats"
	colContacts        = "contacts"
	colEvents          = "events"
	colEventHead       = "event_head"
	colCommands        = "wa_commands"
	colKeys            = "api_keys"
	colSchedules       = "schedules"
	colScheduleState   = "schedule_state"
	colScheduleRuns    = "schedule_runs"
	colScheduleChanges = "schedule_changes"
	colWebhooks        = "webhooks"
	colWebhookState    = "webhook_state"
	colDeliveries      = "webhook_deliveries"
)

// EnsureIndexes creates the indexes the project needs. Creating an index
// that exists with the same definition is a no-op on the server, so this
// runs at every primary start.
func (s *Store) EnsureIndexes(ctx context.Context, log zerolog.Logger) error {
	specs := []struct {
		coll  string
		model mongo.IndexModel
	}{
		{colHeartbeats, mongo.IndexModel{Keys: bson.D{{Key: "last_seen", Value: 1}}, Options: options.Index().SetName("last_seen")}},
		{colOutbox, mongo.IndexModel{Keys: bson.D{{Key: "status", Value: 1}, {Key: "queued_ns", Value: 1}}, Options: options.Index().SetName("status_queued")}},
		{colOutbox, mongo.IndexModel{Keys: bson.D{{Key: "wa_id", Value: 1}}, Options: options.Index().SetName("wa_id").SetSparse(true)}},
		{colOutbox, mongo.IndexModel{Keys: bson.D{{Key: "sent_at", Value: 1}}, Options: options.Index().SetName("sent_at").SetSparse(true)}},
		{colOutbox, mongo.IndexModel{Keys: bson.D{{Key: "queued_ns", Value: -1}, {Key: "_id", Value: -1}}, Options: options.Index().SetName("newest")}},
		{colOutbox, mongo.IndexModel{Keys: bson.D{{Key: "chat", Value: 1}, {Key: "queued_ns", Value: -1}}, Options: options.Index().SetName("chat_newest")}},
		{colMessages, mongo.IndexModel{Keys: bson.D{{Key: "chat", Value: 1}, {Key: "sent_at", Value: 1}}, Options: options.Index().SetName("chat_sent")}},
		{colMessages, mongo.IndexModel{Keys: bson.D{{Key: "sent_at", Value: -1}, {Key: "_id", Value: -1}}, Options: options.Index().SetName("newest")}},
		{colOutbox, mongo.IndexModel{Keys: bson.D{{Key: "event_seq", Value: 1}}, Options: options.Index().SetName("event_seq").SetSparse(true)}},
		{colMessages, mongo.IndexModel{Keys: bson.D{{Key: "event_seq", Value: 1}}, Options: options.Index().SetName("event_seq").SetSparse(true)}},
		{colChats, mongo.IndexModel{Keys: bson.D{{Key: "first_outgoing_at", Value: 1}}, Options: options.Index().SetName("first_outgoing").SetSparse(true)}},
		{colChats, mongo.IndexModel{Keys: bson.D{{Key: "last_message_at", Value: -1}, {Key: "_id", Value: -1}}, Options: options.Index().SetName("latest")}},
		{colSchedules, mongo.IndexModel{Keys: bson.D{{Key: "updated_ns", Value: 1}}, Options: options.Index().SetName("updated")}},
		{colSchedules, mongo.IndexModel{Keys: bson.D{{Key: "deleted", Value: 1}, {Key: "created_at", Value: -1}}, Options: options.Index().SetName("live_newest")}},
		{colScheduleRuns, mongo.IndexModel{Keys: bson.D{{Key: "schedule_id", Value: 1}, {Key: "due_at", Value: -1}}, Options: options.Index().SetName("schedule_due")}},
		{colDeliveries, mongo.IndexModel{Keys: bson.D{{Key: "webhook_id", Value: 1}, {Key: "seq", Value: -1}}, Options: options.Index().SetName("webhook_seq")}},
		{colDeliveries, mongo.IndexModel{Keys: bson.D{{Key: "last_attempt_at", Value: 1}}, Options: options.Index().SetName("last_attempt")}},
		// GridFS's own indexes, under the names the driver gives them: media
		// is written chunk by chunk here, not through the driver's bucket
		// (which creates them on its first write).
		{"media.chunks", mongo.IndexModel{Keys: bson.D{{Key: "files_id", Value: 1}, {Key: "n", Value: 1}}, Options: options.Index().SetUnique(true)}},
		{"media.files", mongo.IndexModel{Keys: bson.D{{Key: "filename", Value: 1}, {Key: "uploadDate", Value: 1}}}},
	}
	for _, sp := range specs {
		name, err := s.db.Collection(sp.coll).Indexes().CreateOne(ctx, sp.model)
		if err != nil {
			return fmt.Errorf("store: create index on %s: %w", sp.coll, err)
		}
		log.Info().Str("collection", sp.coll).Str("index", name).Msg("Index is in place.")
	}
	return nil
}

// IsDuplicateKey reports a unique index violation. FerretDB reports some
// as code 1 with a duplicate key message, which mongo.IsDuplicateKeyError
// also recognises.
func IsDuplicateKey(err error) bool { return mongo.IsDuplicateKeyError(err) }

// ErrNotFound is returned when a document does not exist.
var ErrNotFound = errors.New("store: not found")

// findAll runs a query and decodes every document it finds; what names
// the query in errors.
func findAll[T any](ctx context.Context, c *mongo.Collection, what string, filter any, opts ...options.Lister[options.FindOptions]) ([]T, error) {
	cur, err := c.Find(ctx, filter, opts...)
	if err != nil {
		return nil, fmt.Errorf("store: %s: %w", what, err)
	}
	var out []T
	if err := cur.All(ctx, &out); err != nil {
		return nil, fmt.Errorf("store: %s: %w", what, err)
	}
	return out, nil
}

// findOne decodes the first document filter finds, or ErrNotFound.
func findOne[T any](ctx context.Context, c *mongo.Collection, what string, filter any, opts ...options.Lister[options.FindOneOptions]) (T, error) {
	var v T
	err := c.FindOne(ctx, filter, opts...).Decode(&v)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return v, ErrNotFound
	}
	if err != nil {
		return v, fmt.Errorf("store: %s: %w", what, err)
	}
	return v, nil
}
