package mongostore_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"app/internal/config"
	"app/internal/store"
	"app/internal/testdb"
)

func TestServerKindIsDetected(t *testing.T) {
	st := testdb.StartMongo(t).Connect(nil)
	info, err := st.Server(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if info.Kind != "FerretDB" || info.ReplicaSet != "" {
		t.Fatalf("embedded database reported as %+v, want FerretDB without replica set", info)
	}
	if s := info.String(); s == "" {
		t.Fatal("empty description")
	}
}

// The pool of one process never holds more connections than its share of
// MONGO_MAX_TOTAL_CONNECTIONS, however many requests want one at once.
func TestPoolRespectsTheConnectionBudget(t *testing.T) {
	db := testdb.StartMongo(t)
	// 2 workers + the primary share 12 connections: 4 each.
	st := db.Connect(map[string]string{"CLUSTER_WORKERS": "2", "MONGO_MAX_TOTAL_CONNECTIONS": "12", "MONGO_MIN_POOL_SIZE": "1"})
	if got := st.Pool().Max; got != 4 {
		t.Fatalf("pool max = %d, want 4 (12 connections / 3 processes)", got)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for g := range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 3 {
				hb := store.Heartbeat{ID: fmt.Sprintf("h/%d/%d", g, i), Role: "worker", LastSeen: time.Now()}
				if err := st.WriteHeartbeat(ctx, hb); err != nil {
					errs <- err
					return
				}
				if _, err := st.Heartbeats(ctx, time.Now().Add(-time.Minute)); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("query under load: %v", err)
	}
	if max := st.Stats().MaxOpen(); max > 4 || max < 2 {
		t.Fatalf("at most %d connections were open at once; want between 2 (the load used the pool) and 4 (the budget)", max)
	}
}

func TestIndexesAreIdempotent(t *testing.T) {
	st := testdb.StartMongo(t).Connect(nil)
	for range 2 {
		if err := st.EnsureIndexes(context.Background(), zerolog.Nop()); err != nil {
			t.Fatal(err)
		}
	}
}

// Options in MONGO_URI are checked at start-up, reported as configuration
// errors (exit status 2) and without the password.
func TestBadURIOptionsAreAConfigError(t *testing.T) {
	db := testdb.StartMongo(t)
	_, err := store.Connect(db.Config(map[string]string{"MONGO_URI": "mongodb://user:s3cret@db1:27017/?maxPoolSize=many"}), "t", zerolog.Nop())
	var ce *config.Error
	if !errors.As(err, &ce) || ce.Var != "MONGO_URI" {
		t.Fatalf("error %v, want a configuration error naming MONGO_URI", err)
	}
	if strings.Contains(err.Error(), "s3cret") || strings.Contains(err.Error(), "\n") {
		t.Fatalf("error %q shows the password or spans lines", err)
	}
}

// An index an earlier build created, and a wider one replaced, is dropped
// by EnsureIndexes, and the wider one is there.
func TestRetiredIndexesAreDropped(t *testing.T) {
	db := testdb.StartMongo(t)
	ctx := context.Background()
	cfg := db.Config(nil)
	client, err := mongo.Connect(options.Client().ApplyURI(config.SocketURI(db.Socket)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.Disconnect(context.Background()) })
	outbox := client.Database(cfg.MongoDatabase).Collection("outbox")
	if _, err := outbox.Indexes().CreateOne(ctx, mongo.IndexModel{Keys: bson.D{{Key: "status", Value: 1}, {Key: "queued_ns", Value: 1}},
		Options: options.Index().SetName("status_queued")}); err != nil {
		t.Fatal(err)
	}
	if err := db.Connect(nil).EnsureIndexes(ctx, zerolog.Nop()); err != nil {
		t.Fatal(err)
	}
	cur, err := outbox.Indexes().List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var specs []struct {
		Name string `bson:"name"`
	}
	if err := cur.All(ctx, &specs); err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, s := range specs {
		names[s.Name] = true
	}
	if names["status_queued"] || !names["status_queued_id"] || !names["chat_newest_id"] {
		t.Fatalf("outbox indexes after EnsureIndexes: %v, want status_queued replaced by status_queued_id", names)
	}
}
