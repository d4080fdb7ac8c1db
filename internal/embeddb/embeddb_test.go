package embeddb_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/rs/zerolog"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"app/internal/config"
	"app/internal/embeddb"
)

func paths(t *testing.T) (data, socket string) {
	t.Helper()
	dir, err := os.MkdirTemp("", "edb") // short: Unix socket paths are limited
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	return filepath.Join(dir, "db"), filepath.Join(dir, "mongodb.sock")
}

func insertAndCount(t *testing.T, socket string, insert bool) int64 {
	t.Helper()
	ctx := context.Background()
	c, err := mongo.Connect(options.Client().ApplyURI(config.SocketURI(socket)))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Disconnect(ctx)
	col := c.Database("app").Collection("things")
	if insert {
		if _, err := col.InsertOne(ctx, bson.D{{Key: "name", Value: "kept"}}); err != nil {
			t.Fatal(err)
		}
	}
	n, err := col.CountDocuments(ctx, bson.D{})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// Data written before a stop is there after a restart, and only one
// process at a time may open the files.
func TestDataSurvivesARestartAndTheFilesAreLocked(t *testing.T) {
	data, socket := paths(t)
	db, err := embeddb.Start(context.Background(), data, socket, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	if n := insertAndCount(t, socket, true); n != 1 {
		t.Fatalf("count after insert = %d", n)
	}
	_, err = embeddb.Start(context.Background(), data, filepath.Join(filepath.Dir(socket), "other.sock"), zerolog.Nop())
	if !errors.Is(err, embeddb.ErrLocked) {
		t.Fatalf("second Start on the same files: %v, want ErrLocked", err)
	}
	db.Stop()
	if _, err := os.Stat(socket); !os.IsNotExist(err) {
		t.Fatalf("socket left behind after Stop: %v", err)
	}
	db, err = embeddb.Start(context.Background(), data, socket, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Stop()
	if n := insertAndCount(t, socket, false); n != 1 {
		t.Fatalf("count after restart = %d, want the 1 document written before", n)
	}
}

// A socket file left by a process that was killed does not stop the next
// start.
func TestStaleSocketIsReplaced(t *testing.T) {
	data, socket := paths(t)
	if err := os.WriteFile(socket, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	db, err := embeddb.Start(context.Background(), data, socket, zerolog.Nop())
	if err != nil {
		t.Fatalf("start over a stale socket file: %v", err)
	}
	defer db.Stop()
	if n := insertAndCount(t, socket, true); n != 1 {
		t.Fatalf("count = %d", n)
	}
}
