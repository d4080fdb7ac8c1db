// Package mongostore is the store on MongoDB (MONGO_URI), needed when the
// suite runs on several machines: the client with its pool budget, the
// server's identity, the indexes, and the store's documents.
//
// Code here keeps to MongoDB's documented semantics and does not depend on
// engine-specific atomicity: every document that moves has one writer, and
// contention is settled by unique inserts and versioned replaces. The
// tests run it against FerretDB, which falls short in places (see
// storetest).
package mongostore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/rs/zerolog"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/event"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"app/internal/config"
	"app/internal/store"
)

// Store is a connected database handle, safe for concurrent use.
type Store struct {
	client *mongo.Client
	db     *mongo.Database
	pool   config.Pool
	stats  *store.PoolStats
}

func init() {
	store.Register(store.Engine{Name: store.MongoDB, Classify: classify,
		Open: func(cfg config.Config, appName string, log zerolog.Logger) (store.Store, error) {
			return Connect(cfg, appName, log)
		}})
}

func commandMonitor(p *store.PoolStats) *event.CommandMonitor {
	return &event.CommandMonitor{Started: func(context.Context, *event.CommandStartedEvent) { p.CommandSent() }}
}

func poolMonitor(p *store.PoolStats) *event.PoolMonitor {
	return &event.PoolMonitor{Event: func(e *event.PoolEvent) {
		switch e.Type {
		case event.ConnectionCreated:
			p.Opened()
		case event.ConnectionClosed:
			p.Closed()
		case event.ConnectionCheckedOut:
			p.CheckedOut()
		case event.ConnectionCheckedIn:
			p.CheckedIn()
		case event.ConnectionCheckOutFailed:
			p.CheckoutFailed()
		}
	}}
}

// Connect creates the client. It does not wait for the server: the driver
// connects in the background and reconnects after outages by itself, so a
// process can start (and serve /healthz) while the database is down.
func Connect(cfg config.Config, appName string, log zerolog.Logger) (*Store, error) {
	pool := cfg.Pool()
	stats := &store.PoolStats{}
	opts := options.Client().ApplyURI(cfg.MongoURI).
		SetAppName(appName).
		SetMaxPoolSize(uint64(pool.Max)).
		SetMinPoolSize(uint64(pool.Min)).
		SetMaxConnecting(uint64(pool.MaxConnecting)).
		SetServerSelectionTimeout(5 * time.Second).
		SetConnectTimeout(5 * time.Second).
		SetPoolMonitor(poolMonitor(stats)).
		SetMonitor(commandMonitor(stats))
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

// Engine is "mongodb".
func (s *Store) Engine() string { return store.MongoDB }

// Atomically runs f: MongoDB's writes are made one by one (see
// store.Store).
func (s *Store) Atomically(ctx context.Context, f func(ctx context.Context) error) error {
	return f(ctx)
}

// Pool is the pool figure this process uses.
func (s *Store) Pool() config.Pool { return s.pool }

// Stats are this process's connection counts.
func (s *Store) Stats() *store.PoolStats { return s.stats }

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
func (s *Store) WaitReady(ctx context.Context) error { return store.PingUntil(ctx, s.Ping) }

// Server asks the server what it is (buildInfo and hello).
func (s *Store) Server(ctx context.Context) (store.ServerInfo, error) {
	var bi struct {
		Version         string `bson:"version"`
		FerretDBVersion string `bson:"ferretdbVersion"`
	}
	if err := s.db.RunCommand(ctx, bson.D{{Key: "buildInfo", Value: 1}}).Decode(&bi); err != nil {
		return store.ServerInfo{}, fmt.Errorf("store: buildInfo: %w", err)
	}
	var hello struct {
		SetName string `bson:"setName"`
	}
	if err := s.db.RunCommand(ctx, bson.D{{Key: "hello", Value: 1}}).Decode(&hello); err != nil {
		return store.ServerInfo{}, fmt.Errorf("store: hello: %w", err)
	}
	info := store.ServerInfo{Kind: "MongoDB", Version: bi.Version, ReplicaSet: hello.SetName}
	if bi.FerretDBVersion != "" {
		info.Kind = "FerretDB"
		info.Version = "(MongoDB " + bi.Version + " compatible)"
		if bi.FerretDBVersion != "unknown" { // the embedded build carries no version
			info.Version = bi.FerretDBVersion + " " + info.Version
		}
	}
	return info, nil
}

// indexSpec is an index of a collection.
type indexSpec struct {
	coll  string
	model mongo.IndexModel
}

// EnsureIndexes creates the indexes the project needs. Creating an index
// that exists with the same definition is a no-op on the server, so this
// runs at every primary start.
func (s *Store) EnsureIndexes(ctx context.Context, log zerolog.Logger) error {
	specs := []indexSpec{
		{colHeartbeats, mongo.IndexModel{Keys: bson.D{{Key: "last_seen", Value: 1}}, Options: options.Index().SetName("last_seen")}},
		// The outbox's indexes end in _id where a query sorts by it after
		// queued_ns: an index that gives only part of the order would leave
		// a sort of every document the filter matches.
		{colOutbox, mongo.IndexModel{Keys: bson.D{{Key: "status", Value: 1}, {Key: "queued_ns", Value: 1}, {Key: "_id", Value: 1}}, Options: options.Index().SetName("status_queued_id")}},
		{colOutbox, mongo.IndexModel{Keys: bson.D{{Key: "wa_id", Value: 1}}, Options: options.Index().SetName("wa_id").SetSparse(true)}},
		{colOutbox, mongo.IndexModel{Keys: bson.D{{Key: "sent_at", Value: 1}}, Options: options.Index().SetName("sent_at").SetSparse(true)}},
		{colOutbox, mongo.IndexModel{Keys: bson.D{{Key: "queued_ns", Value: -1}, {Key: "_id", Value: -1}}, Options: options.Index().SetName("newest")}},
		{colOutbox, mongo.IndexModel{Keys: bson.D{{Key: "chat", Value: 1}, {Key: "queued_ns", Value: -1}, {Key: "_id", Value: -1}}, Options: options.Index().SetName("chat_newest_id")}},
		{colOutbox, mongo.IndexModel{Keys: bson.D{{Key: "chat", Value: 1}, {Key: "status", Value: 1}, {Key: "queued_ns", Value: -1}, {Key: "_id", Value: -1}}, Options: options.Index().SetName("chat_status_newest")}},
		{colCancels, mongo.IndexModel{Keys: bson.D{{Key: "outcome", Value: 1}}, Options: options.Index().SetName("outcome")}},
		{colMessages, mongo.IndexModel{Keys: bson.D{{Key: "chat", Value: 1}, {Key: "sent_at", Value: 1}}, Options: options.Index().SetName("chat_sent")}},
		{colMessages, mongo.IndexModel{Keys: bson.D{{Key: "chat", Value: 1}, {Key: "wa_id", Value: 1}}, Options: options.Index().SetName("chat_wa_id")}},
		{colMessages, mongo.IndexModel{Keys: bson.D{{Key: "sent_at", Value: -1}, {Key: "_id", Value: -1}}, Options: options.Index().SetName("newest")}},
		{colEvents, mongo.IndexModel{Keys: bson.D{{Key: "at", Value: 1}}, Options: options.Index().SetName("at")}},
		{colOutbox, mongo.IndexModel{Keys: bson.D{{Key: "event_seq", Value: 1}}, Options: options.Index().SetName("event_seq").SetSparse(true)}},
		{colMessages, mongo.IndexModel{Keys: bson.D{{Key: "event_seq", Value: 1}}, Options: options.Index().SetName("event_seq").SetSparse(true)}},
		{colChats, mongo.IndexModel{Keys: bson.D{{Key: "first_outgoing_at", Value: 1}}, Options: options.Index().SetName("first_outgoing").SetSparse(true)}},
		{colChats, mongo.IndexModel{Keys: bson.D{{Key: "last_message_at", Value: -1}, {Key: "_id", Value: -1}}, Options: options.Index().SetName("latest")}},
		{colSchedules, mongo.IndexModel{Keys: bson.D{{Key: "updated_ns", Value: 1}}, Options: options.Index().SetName("updated")}},
		{colSchedules, mongo.IndexModel{Keys: bson.D{{Key: "deleted", Value: 1}, {Key: "created_at", Value: -1}, {Key: "_id", Value: -1}}, Options: options.Index().SetName("live_newest_id")}},
		{colScheduleRuns, mongo.IndexModel{Keys: bson.D{{Key: "schedule_id", Value: 1}, {Key: "due_at", Value: -1}}, Options: options.Index().SetName("schedule_due")}},
		{colDeliveries, mongo.IndexModel{Keys: bson.D{{Key: "webhook_id", Value: 1}, {Key: "seq", Value: -1}}, Options: options.Index().SetName("webhook_seq")}},
		{colDeliveries, mongo.IndexModel{Keys: bson.D{{Key: "last_attempt_at", Value: 1}}, Options: options.Index().SetName("last_attempt")}},
		// whatsapp and webhooks
		{colMessages, mongo.IndexModel{Keys: bson.D{{Key: "chat", Value: 1}, {Key: "sent_at", Value: -1}, {Key: "_id", Value: -1}}, Options: options.Index().SetName("chat_newest")}},
		{colChats, mongo.IndexModel{Keys: bson.D{{Key: "user", Value: 1}, {Key: "last_message_at", Value: -1}, {Key: "_id", Value: -1}}, Options: options.Index().SetName("users_latest")}},
		{colWebhooks, mongo.IndexModel{Keys: bson.D{{Key: "created_at", Value: 1}, {Key: "_id", Value: 1}}, Options: options.Index().SetName("created")}},
		{colDeliveries, mongo.IndexModel{Keys: bson.D{{Key: "webhook_id", Value: 1}, {Key: "status", Value: 1}, {Key: "seq", Value: -1}}, Options: options.Index().SetName("webhook_status_seq")}},
		// commands, keys, browser tokens, media retention
		{colCommands, mongo.IndexModel{Keys: bson.D{{Key: "outcome", Value: 1}, {Key: "created_at", Value: 1}}, Options: options.Index().SetName("pending")}},
		{colCommands, mongo.IndexModel{Keys: bson.D{{Key: "decided_at", Value: 1}}, Options: options.Index().SetName("decided").SetSparse(true)}},
		{colKeys, mongo.IndexModel{Keys: bson.D{{Key: "created_at", Value: 1}}, Options: options.Index().SetName("created")}},
		{colEventTokens, mongo.IndexModel{Keys: bson.D{{Key: "expires_at", Value: 1}}, Options: options.Index().SetName("expires")}},
		{"media.files", mongo.IndexModel{Keys: bson.D{{Key: "uploadDate", Value: 1}}, Options: options.Index().SetName("uploaded")}},
		{colOutbox, mongo.IndexModel{Keys: bson.D{{Key: "media_id", Value: 1}}, Options: options.Index().SetName("media_id").SetSparse(true)}},
		{colSchedules, mongo.IndexModel{Keys: bson.D{{Key: "media_id", Value: 1}}, Options: options.Index().SetName("media_id").SetSparse(true)}},
		// GridFS's own indexes, under the names the driver gives them: media
		// is written chunk by chunk here, not through the driver's bucket
		// (which creates them on its first write).
		{"media.chunks", mongo.IndexModel{Keys: bson.D{{Key: "files_id", Value: 1}, {Key: "n", Value: 1}}, Options: options.Index().SetUnique(true)}},
		{"media.files", mongo.IndexModel{Keys: bson.D{{Key: "filename", Value: 1}, {Key: "uploadDate", Value: 1}}}},
	}
	for _, sp := range append(append(specs, lidIndexes()...), groupIndexes()...) {
		name, err := s.db.Collection(sp.coll).Indexes().CreateOne(ctx, sp.model)
		if err != nil {
			return fmt.Errorf("store: create index on %s: %w", sp.coll, err)
		}
		log.Info().Str("collection", sp.coll).Str("index", name).Msg("Index is in place.")
	}
	for _, r := range retiredIndexes {
		err := s.db.Collection(r.coll).Indexes().DropOne(ctx, r.name)
		if err == nil {
			log.Info().Str("collection", r.coll).Str("index", r.name).Msg("Index replaced by a wider one is dropped.")
		} else if !indexNotFound(err) {
			return fmt.Errorf("store: drop index %s on %s: %w", r.name, r.coll, err)
		}
	}
	return nil
}

// retiredIndexes are indexes earlier builds created that a wider one
// replaced (the same keys and _id, so that it gives the whole order):
// dropped where present, so that they cost no more writes.
var retiredIndexes = []struct{ coll, name string }{
	{colOutbox, "status_queued"},
	{colOutbox, "chat_newest"},
	{colSchedules, "live_newest"},
}

// indexNotFound reports a drop of an index (or collection) that is not
// there.
func indexNotFound(err error) bool {
	var ce mongo.CommandError
	return errors.As(err, &ce) && (ce.Code == 27 || ce.Code == 26) // IndexNotFound, NamespaceNotFound
}

// IsDuplicateKey reports a unique index violation. FerretDB reports some
// as code 1 with a duplicate key message, which mongo.IsDuplicateKeyError
// also recognises.
func IsDuplicateKey(err error) bool { return mongo.IsDuplicateKeyError(err) }

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
		return v, store.ErrNotFound
	}
	if err != nil {
		return v, fmt.Errorf("store: %s: %w", what, err)
	}
	return v, nil
}
