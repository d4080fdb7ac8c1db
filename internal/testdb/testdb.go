// Package testdb runs the embedded database for tests: the real FerretDB
// behind a Unix socket, reached through the real MongoDB driver.
package testdb

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"app/internal/config"
	"app/internal/embeddb"
	"app/internal/store"
)

// DB is an embedded database owned by one test.
type DB struct {
	t       testing.TB
	DataDir string
	Socket  string
	db      *embeddb.DB
}

// Start runs a fresh database for t and stops it when t ends.
func Start(t testing.TB) *DB {
	t.Helper()
	// Unix socket paths are limited to 107 bytes; t.TempDir() embeds the
	// test name and can be longer, so the socket gets a short directory.
	sockDir, err := os.MkdirTemp("", "appdb")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(sockDir) })
	d := &DB{t: t, DataDir: filepath.Join(t.TempDir(), "db"), Socket: filepath.Join(sockDir, "mongodb.sock")}
	d.Restart()
	t.Cleanup(d.Stop)
	return d
}

// Stop stops the database; the files stay for Restart.
func (d *DB) Stop() {
	if d.db != nil {
		d.db.Stop()
		d.db = nil
	}
}

// Restart starts the database again on the same files and socket.
func (d *DB) Restart() {
	d.t.Helper()
	db, err := embeddb.Start(context.Background(), d.DataDir, d.Socket, zerolog.Nop())
	if err != nil {
		d.t.Fatalf("start embedded database: %v", err)
	}
	d.db = db
}

// Config is the configuration a process of the suite would load with env
// on top of the defaults, pointed at this database.
func (d *DB) Config(env map[string]string) config.Config {
	d.t.Helper()
	all := map[string]string{"APP_DB_SOCKET": d.Socket, "APP_STATE_DIR": filepath.Dir(d.DataDir)}
	for k, v := range env {
		all[k] = v
	}
	cfg, err := config.LoadFrom(func(k string) (string, bool) { v, ok := all[k]; return v, ok })
	if err != nil {
		d.t.Fatalf("config: %v", err)
	}
	return cfg
}

// Connect is a store connected to this database as a process configured
// with env would be, closed when the test ends; it waits until the
// database answers.
func (d *DB) Connect(env map[string]string) *store.Store {
	d.t.Helper()
	st, err := store.Connect(d.Config(env), d.t.Name(), zerolog.Nop())
	if err != nil {
		d.t.Fatalf("connect: %v", err)
	}
	d.t.Cleanup(func() { _ = st.Close(context.Background()) })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := st.WaitReady(ctx); err != nil {
		d.t.Fatalf("the test database never answered: %v", err)
	}
	return st
}
