// Package testdb gives tests a store: by default the embedded SQLite one,
// a fresh file in a temporary state directory; with StartMongo, MongoDB's
// stand-in here, the real FerretDB behind a Unix socket, reached through
// the real MongoDB driver. Only tests import it, so FerretDB stays out of
// the binary.
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
	_ "app/internal/store/mongostore"  // the MongoDB engine
	_ "app/internal/store/sqlitestore" // the SQLite engine
)

// DB is a database owned by one test.
type DB struct {
	t testing.TB
	// Engine is store.SQLite or store.MongoDB.
	Engine string
	// StateDir is the state directory processes of the test use (SQLite
	// keeps app.db there).
	StateDir string
	// Socket is FerretDB's Unix socket (MongoDB only).
	Socket  string
	dataDir string
	db      *embeddb.DB
}

// Start is a fresh SQLite store for t, in its own state directory.
func Start(t testing.TB) *DB {
	t.Helper()
	return &DB{t: t, Engine: store.SQLite, StateDir: t.TempDir()}
}

// StartMongo runs a fresh FerretDB for t, MongoDB's stand-in, and stops
// it when t ends. Stop and Restart take the server away and back.
func StartMongo(t testing.TB) *DB {
	t.Helper()
	// Unix socket paths are limited to 107 bytes; t.TempDir() embeds the
	// test name and can be longer, so the socket gets a short directory.
	sockDir, err := os.MkdirTemp("", "appdb")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(sockDir) })
	state := t.TempDir()
	d := &DB{t: t, Engine: store.MongoDB, StateDir: state, dataDir: filepath.Join(state, "ferretdb"),
		Socket: filepath.Join(sockDir, "mongodb.sock")}
	d.Restart()
	t.Cleanup(d.Stop)
	return d
}

// Stop stops the MongoDB stand-in; the files stay for Restart.
func (d *DB) Stop() {
	if d.Engine != store.MongoDB {
		d.t.Fatal("testdb: a SQLite store has no server to stop; use StartMongo")
	}
	if d.db != nil {
		d.db.Stop()
		d.db = nil
	}
}

// Restart starts the MongoDB stand-in again on the same files and socket.
func (d *DB) Restart() {
	d.t.Helper()
	if d.Engine != store.MongoDB {
		d.t.Fatal("testdb: a SQLite store has no server to restart; use StartMongo")
	}
	db, err := embeddb.Start(context.Background(), d.dataDir, d.Socket, zerolog.Nop())
	if err != nil {
		d.t.Fatalf("start FerretDB: %v", err)
	}
	d.db = db
}

// Vars are the variables that point a process of the suite at this
// database, for child processes.
func (d *DB) Vars() map[string]string {
	v := map[string]string{"APP_STATE_DIR": d.StateDir}
	if d.Engine == store.MongoDB {
		v["MONGO_URI"] = config.SocketURI(d.Socket)
	}
	return v
}

// Env is Vars as NAME=value lines, for exec.Cmd.Env.
func (d *DB) Env() []string {
	var env []string
	for k, v := range d.Vars() {
		env = append(env, k+"="+v)
	}
	return env
}

// Config is the configuration a process of the suite would load with env
// on top of the defaults, pointed at this database.
func (d *DB) Config(env map[string]string) config.Config {
	d.t.Helper()
	all := d.Vars()
	for k, v := range env {
		all[k] = v
	}
	cfg, err := config.LoadFrom(func(k string) (string, bool) { v, ok := all[k]; return v, ok })
	if err != nil {
		d.t.Fatalf("config: %v", err)
	}
	return cfg
}

// Connect is a store opened as a process configured with env would open
// it, closed when the test ends; it waits until the database answers.
func (d *DB) Connect(env map[string]string) store.Store {
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

// Each runs f as a subtest on a fresh database of each engine: for the
// tests that prove a behaviour of the whole suite on both.
func Each(t *testing.T, f func(t *testing.T, db *DB)) {
	t.Run("sqlite", func(t *testing.T) { f(t, Start(t)) })
	t.Run("mongodb", func(t *testing.T) { f(t, StartMongo(t)) })
}
