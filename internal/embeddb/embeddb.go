// Package embeddb runs FerretDB v1.24 as a library with its SQLite
// backend, served on a Unix socket: the tests' stand-in for MongoDB (no
// MongoDB server can be had on the development machines), reached through
// the real driver (see internal/testdb).
//
// Only tests import it: the suite's embedded store is SQLite
// (internal/store/sqlitestore), and FerretDB is not in the binary
// (TestTheBinaryHasNoFerretDB in internal/cli). Only one process may open
// the database files, which a lock file enforces; every other process
// connects to the socket.
package embeddb

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/FerretDB/FerretDB/ferretdb"
	"github.com/rs/zerolog"
)

// DB is a running embedded database.
type DB struct {
	Socket string

	lock   *os.File
	cancel context.CancelFunc
	done   chan error
}

// newMu serialises ferretdb.New, which writes a package variable of
// FerretDB's (its version's package name): tests start several databases
// at once, and the race detector fails them.
var newMu sync.Mutex

// ErrLocked means another process already serves this data directory.
var ErrLocked = errors.New("embeddb: the database files are in use by another process")

// Start opens the data directory, takes its lock and serves the database on
// socket until Stop is called or ctx ends.
func Start(ctx context.Context, dataDir, socket string, log zerolog.Logger) (*DB, error) {
	if err := os.MkdirAll(dataDir, 0o750); err != nil {
		return nil, fmt.Errorf("embeddb: create data directory: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(socket), 0o750); err != nil {
		return nil, fmt.Errorf("embeddb: create socket directory: %w", err)
	}
	lock, err := takeLock(filepath.Join(dataDir, "LOCK"))
	if err != nil {
		return nil, err
	}
	// A socket file left by a process that died is stale: we hold the lock,
	// so nobody serves it.
	if err := os.Remove(socket); err != nil && !errors.Is(err, os.ErrNotExist) {
		_ = lock.Close()
		return nil, fmt.Errorf("embeddb: remove stale socket: %w", err)
	}
	zl := log.With().Str("component", "ferretdb").Logger().Level(max(log.GetLevel(), zerolog.WarnLevel))
	slogger := slog.New(quietResponses{zerolog.NewSlogHandler(zl)})
	newMu.Lock()
	f, err := ferretdb.New(&ferretdb.Config{
		Listener:  ferretdb.ListenerConfig{Unix: socket},
		Logger:    slogger,
		Handler:   "sqlite",
		SQLiteURL: (&urlDir{dataDir}).String(),
	})
	newMu.Unlock()
	if err != nil {
		_ = lock.Close()
		return nil, fmt.Errorf("embeddb: start: %w", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	db := &DB{Socket: socket, lock: lock, cancel: cancel, done: make(chan error, 1)}
	go func() { db.done <- f.Run(ctx) }()
	if err := WaitSocket(ctx, socket, 10*time.Second); err != nil {
		db.Stop()
		return nil, err
	}
	return db, nil
}

// quietResponses drops FerretDB's dumps of failed command replies and its
// complaints about clients that hung up. It logs
// every reply with ok: 0 (a duplicate key, an unsupported endSessions) as a
// warning with the whole message; the client already gets that error, and
// the lease and the stores rely on duplicate keys. Replies that close the
// connection are logged at error level and kept.
type quietResponses struct{ slog.Handler }

func (h quietResponses) Handle(ctx context.Context, r slog.Record) error {
	if r.Level < slog.LevelError && strings.HasPrefix(r.Message, "Response ") {
		return nil
	}
	// A client that closes its connection at once (WaitSocket's probe, a
	// health check) is not an error of the database.
	if strings.Contains(r.Message, "use of closed network connection") {
		return nil
	}
	return h.Handler.Handle(ctx, r)
}

func (h quietResponses) WithAttrs(attrs []slog.Attr) slog.Handler {
	return quietResponses{h.Handler.WithAttrs(attrs)}
}

func (h quietResponses) WithGroup(name string) slog.Handler {
	return quietResponses{h.Handler.WithGroup(name)}
}

// Done yields the database's exit once it has stopped.
func (db *DB) Done() <-chan error { return db.done }

// Stop closes the listener and all connections, then releases the lock.
func (db *DB) Stop() {
	db.cancel()
	err := <-db.done
	db.done <- err
	_ = os.Remove(db.Socket)
	_ = db.lock.Close()
}

type urlDir struct{ dir string }

// String is the SQLite backend's URI: a directory, with a trailing slash.
func (u *urlDir) String() string { return "file:" + strings.TrimSuffix(u.dir, "/") + "/" }

func takeLock(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o640)
	if err != nil {
		return nil, fmt.Errorf("embeddb: open lock file: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		b, _ := os.ReadFile(path)
		_ = f.Close()
		if pid := strings.TrimSpace(string(b)); pid != "" {
			return nil, fmt.Errorf("%w (pid %s holds %s)", ErrLocked, pid, path)
		}
		return nil, fmt.Errorf("%w (%s)", ErrLocked, path)
	}
	_ = f.Truncate(0)
	_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	return f, nil
}

// WaitSocket waits until something accepts connections on the Unix socket.
func WaitSocket(ctx context.Context, socket string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		c, err := net.DialTimeout("unix", socket, time.Second)
		if err == nil {
			_ = c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("embeddb: socket %s did not accept connections within %s: %w", socket, timeout, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}
