// Package sqlitestore is the store on SQLite, the embedded default: one
// file in the state directory (app.db), opened by every process of the
// machine, in WAL mode, through modernc.org/sqlite (no cgo).
//
// Each table keeps a record as a JSON document (doc) beside the typed
// columns its queries filter and sort by, each served by an index (see
// TestEveryStatementUsesAnIndex). Reads go through a pool of connections;
// writes go through one connection per process, in group commits: the
// writes that arrive while one commit is on disk share the next, each in
// its own savepoint, so concurrent requests share one fsync and a 2xx
// still means the data is on disk (synchronous=FULL).
package sqlitestore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"github.com/rs/zerolog"
	"golang.org/x/sys/unix"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"app/internal/config"
	"app/internal/store"
)

func init() {
	store.Register(store.Engine{Name: store.SQLite, Classify: classify,
		Open: func(cfg config.Config, appName string, log zerolog.Logger) (store.Store, error) {
			return Open(cfg.DBPath(), log)
		}})
}

// Readers is the size of a process's pool of reading connections.
const Readers = 8

// busyTimeout is how long a statement waits for another process's write
// lock (and a start for another's recovery) before it fails with
// SQLITE_BUSY, which the API answers with 503.
const busyTimeout = 10 * time.Second

// journalSizeLimit is the size the WAL file is truncated to when it is
// reset.
const journalSizeLimit = 64 << 20

// mmapSize is how much of the database file each connection maps.
const mmapSize = 1 << 30

// maxBatch bounds the writes one commit carries.
const maxBatch = 256

// Store is an open database, safe for concurrent use.
type Store struct {
	path  string
	log   zerolog.Logger
	rdb   *sql.DB
	wdb   *sql.DB
	r, w  []*sql.Stmt // prepared statements, by stmt.id
	stats *store.PoolStats

	reqs      chan *writeReq
	closing   chan struct{}
	done      chan struct{}
	closeOnce sync.Once

	// ready is set once the schema is in place and the statements are
	// prepared; until then every operation tries again, at most once a
	// second, and fails with the reason (see usable).
	ready    atomic.Bool
	mu       sync.Mutex
	lastTry  time.Time
	setUpErr error
	// file is the identity of the database file at open: a file deleted
	// or replaced under the suite takes no more writes (see sameFile).
	dev, ino uint64
}

// Open opens (creating it when missing) the database at path and brings
// its schema up to date.
func Open(path string, log zerolog.Logger) (*Store, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	s := &Store{path: path, log: log, stats: &store.PoolStats{},
		reqs: make(chan *writeReq, maxBatch), closing: make(chan struct{}), done: make(chan struct{})}
	var err error
	if s.wdb, err = sql.Open("sqlite", dsn(path, true)); err != nil {
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	s.wdb.SetMaxOpenConns(1)
	s.wdb.SetConnMaxIdleTime(0)
	s.wdb.SetConnMaxLifetime(0)
	if s.rdb, err = sql.Open("sqlite", dsn(path, false)); err != nil {
		_ = s.wdb.Close()
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	s.rdb.SetMaxOpenConns(Readers)
	s.rdb.SetMaxIdleConns(Readers)
	go s.commits()
	// A file that cannot be set up now (damaged, unreadable, locked past
	// the busy timeout) does not stop the process: it starts, says why
	// once, answers 503 and tries again, as it would wait for a database
	// server; a crash loop would not fix the file.
	if err := s.usable(); err != nil && !store.IsUnavailable(err) {
		_ = s.Close(context.Background())
		return nil, err
	}
	return s, nil
}

// usable brings the store up when it is not yet: the schema, the
// prepared statements, the file's identity.
func (s *Store) usable() error {
	if s.ready.Load() {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ready.Load() {
		return nil
	}
	if !s.lastTry.IsZero() && time.Since(s.lastTry) < time.Second {
		return s.setUpErr
	}
	s.lastTry = time.Now()
	err := s.setUp()
	if err == nil {
		err = s.prepare()
	}
	if err == nil {
		err = s.identify()
	}
	if err != nil {
		if s.setUpErr == nil || s.setUpErr.Error() != err.Error() {
			s.log.Error().Err(err).Str("file", s.path).Msg(advice(err))
		}
		s.setUpErr = away{err}
		return s.setUpErr
	}
	if s.setUpErr != nil {
		s.log.Info().Str("file", s.path).Msg("The database file is usable again.")
	}
	s.setUpErr = nil
	owned(s.path, s.log)
	s.ready.Store(true)
	return nil
}

// advice is the one line that says what to do about a database that
// cannot be set up.
func advice(err error) string {
	switch code(err) & 0xff {
	case sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB:
		return "The database file is damaged: stop the suite, move the file (and its -wal and -shm) away, and restore a backup (app backup makes one) or start empty."
	case sqlite3.SQLITE_FULL:
		return "The disk holding the database is full: free space; the suite answers 503 until then and loses nothing it accepted."
	case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED:
		return "The database file stayed locked by another process; will try again."
	case sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_READONLY, sqlite3.SQLITE_PERM:
		return "The database file cannot be opened for writing: check that the state directory and its files belong to the suite's user."
	}
	return "The database file cannot be used; will try again."
}

// identify records the identity of the file now at path.
func (s *Store) identify() error {
	fi, err := os.Stat(s.path)
	if err != nil {
		return fmt.Errorf("store: %w", err)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if ok {
		s.dev, s.ino = uint64(st.Dev), st.Ino
	}
	return nil
}

// errReplaced says the file at the path is no longer the one open.
var errReplaced = errors.New("the database file was deleted or replaced while the suite ran; restart the suite's processes (writes are refused until then, so nothing is acknowledged into a file no one will read)")

// sameFile checks that the file at the path is still the one open. A
// write into a deleted file would be acknowledged and then lost with the
// last process holding it, and processes that start afterwards would open
// a new, empty file.
func (s *Store) sameFile() error {
	fi, err := os.Stat(s.path)
	if err != nil {
		return away{fmt.Errorf("store: %w: %w", errReplaced, err)}
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && (uint64(st.Dev) != s.dev || st.Ino != s.ino) {
		return away{fmt.Errorf("store: %w", errReplaced)}
	}
	return nil
}

// away is a failure that means the database cannot serve now, nothing
// written.
type away struct{ error }

func (e away) Unwrap() error { return e.error }

// dsn is how a connection to path is opened: a reader's refuses to write.
// Every connection maps the file (mmap_size): a page read is then a
// memory access into the kernel's page cache, shared by the connections
// and processes, instead of a read into each connection's own cache,
// which matters when a page of history is spread over a large file.
func dsn(path string, write bool) string {
	q := "file:" + path + "?_pragma=busy_timeout(" + fmt.Sprint(busyTimeout.Milliseconds()) + ")" +
		"&_pragma=foreign_keys(1)&_pragma=synchronous(FULL)&_pragma=mmap_size(" + fmt.Sprint(mmapSize) + ")&_txlock=immediate"
	if !write {
		q += "&_pragma=query_only(1)"
	}
	return q
}

// setUp switches the file to WAL mode and creates the schema, in one
// immediate transaction, so processes starting at once take turns.
func (s *Store) setUp() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*busyTimeout)
	defer cancel()
	var err error
	for attempt := 0; ; attempt++ {
		if err = s.setUpOnce(ctx); err == nil || !busy(err) || ctx.Err() != nil {
			break
		}
		time.Sleep(time.Duration(50*(attempt+1)) * time.Millisecond)
	}
	if err != nil {
		return fmt.Errorf("store: set up %s: %w", s.path, err)
	}
	return nil
}

func (s *Store) setUpOnce(ctx context.Context) error {
	var mode string
	if err := s.wdb.QueryRowContext(ctx, "PRAGMA journal_mode=WAL").Scan(&mode); err != nil {
		return err
	}
	if !strings.EqualFold(mode, "wal") {
		return fmt.Errorf("journal mode is %s, not WAL (is the file on a file system without shared memory?)", mode)
	}
	// The WAL is truncated to this after each checkpoint that empties it.
	if _, err := s.wdb.ExecContext(ctx, fmt.Sprintf("PRAGMA journal_size_limit=%d", journalSizeLimit)); err != nil {
		return err
	}
	tx, err := s.wdb.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback() }()
	var version int
	if err := tx.QueryRowContext(ctx, "PRAGMA user_version").Scan(&version); err != nil {
		return err
	}
	if version > len(migrations) {
		return fmt.Errorf("the database is of schema %d, newer than this version knows (%d): downgrade is not supported", version, len(migrations))
	}
	for i := version; i < len(migrations); i++ {
		for _, ddl := range migrations[i] {
			if _, err := tx.ExecContext(ctx, ddl); err != nil {
				return fmt.Errorf("schema %d: %w (%s)", i+1, err, ddl)
			}
		}
	}
	if version != len(migrations) {
		if _, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version=%d", len(migrations))); err != nil {
			return err
		}
	}
	return tx.Commit()
}

func (s *Store) prepare() error {
	if s.r != nil {
		return nil
	}
	s.r = make([]*sql.Stmt, len(statements))
	s.w = make([]*sql.Stmt, len(statements))
	for _, st := range statements {
		var err error
		if st.write {
			s.w[st.id], err = s.wdb.Prepare(st.sql)
		} else {
			s.r[st.id], err = s.rdb.Prepare(st.sql)
		}
		if err != nil {
			s.r, s.w = nil, nil
			return fmt.Errorf("store: prepare %q: %w", st.sql, err)
		}
	}
	return nil
}

// owned gives the database's files to the owner of their directory when
// a root-run command (app keys, app doctor, a maintainer script) created
// them, so the app user can still write them.
func owned(path string, log zerolog.Logger) {
	if os.Geteuid() != 0 {
		return
	}
	fi, err := os.Stat(filepath.Dir(path))
	if err != nil {
		return
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok || st.Uid == 0 {
		return
	}
	for _, f := range []string{path, path + "-wal", path + "-shm"} {
		if err := os.Lchown(f, int(st.Uid), int(st.Gid)); err != nil && !errors.Is(err, os.ErrNotExist) {
			log.Warn().Err(err).Str("file", f).Msg("Cannot give the database file to the state directory's owner.")
		}
	}
}

// WatchChanges returns a channel that receives soon after any process
// commits a write, until ctx ends: loops that wait for work read the
// database when it changed instead of polling their tables. Every commit
// writes the WAL file, and the kernel tells of those writes (inotify on
// the state directory, so a WAL file made anew is still seen); nothing
// wakes while nothing is written. Where inotify is not to be had, the WAL
// file is looked at every watchInterval instead. A change may be
// signalled when nothing of interest was written (a heartbeat): callers
// read, find nothing, and wait again.
//
// The kernel tells of a commit's first page written, before its last one
// and its sync: a reader woken then may not see the commit yet. So each
// burst of writes is signalled at once and again a few times after its
// last write (settleAfter), by when the commit is visible; a loop that
// found nothing at the first signal finds it at a later one, not at its
// next poll. The same holds where the WAL file is looked at instead.
func (s *Store) WatchChanges(ctx context.Context) (<-chan struct{}, error) {
	ch := make(chan struct{}, 1)
	signal := func() {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
	// One of the watchers below tells of writes of the WAL on written
	// and closes it when it ends; settle alone sends on ch, and closes it
	// then.
	written := make(chan struct{}, 1)
	wrote := func() {
		select {
		case written <- struct{}{}:
		default:
		}
	}
	go func() {
		defer close(ch)
		settle(ctx, written, signal)
	}()
	if f, err := inotifyWAL(filepath.Dir(s.path)); err == nil {
		go func() {
			<-ctx.Done()
			_ = f.Close() // ends the read below
		}()
		go func() {
			defer close(written)
			name := filepath.Base(s.path) + "-wal"
			buf := make([]byte, 64*(unix.SizeofInotifyEvent+unix.NAME_MAX+1))
			for {
				n, err := f.Read(buf)
				if err != nil {
					return
				}
				for off := 0; off+unix.SizeofInotifyEvent <= n; {
					ev := (*unix.InotifyEvent)(unsafe.Pointer(&buf[off]))
					end := off + unix.SizeofInotifyEvent + int(ev.Len)
					if end > n {
						break
					}
					if strings.TrimRight(string(buf[off+unix.SizeofInotifyEvent:end]), "\x00") == name {
						wrote()
					}
					off = end
				}
			}
		}()
		return ch, nil
	}
	wal := s.path + "-wal"
	look := func() (int64, time.Time) {
		fi, err := os.Stat(wal)
		if err != nil {
			return -1, time.Time{}
		}
		return fi.Size(), fi.ModTime()
	}
	size, mod := look()
	go func() {
		defer close(written)
		t := time.NewTicker(watchInterval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			if sz, m := look(); sz != size || !m.Equal(mod) {
				size, mod = sz, m
				wrote()
			}
		}
	}()
	return ch, nil
}

// settleAfter are the times after a burst's last write at which it is
// signalled again: a commit's sync takes a few milliseconds, more on a
// busy disk.
var settleAfter = []time.Duration{2 * time.Millisecond, 10 * time.Millisecond, 50 * time.Millisecond}

// settle signals each write at once, and again at settleAfter from the
// last write of a burst, until ctx ends or written is closed.
func settle(ctx context.Context, written <-chan struct{}, signal func()) {
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	step, last := len(settleAfter), time.Time{}
	for {
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case _, ok := <-written:
			if !ok {
				timer.Stop()
				return
			}
			signal()
			step, last = 0, time.Now()
			timer.Reset(settleAfter[0])
		case <-timer.C:
			signal()
			if step++; step < len(settleAfter) {
				timer.Reset(time.Until(last.Add(settleAfter[step])))
			}
		}
	}
}

// watchInterval is how often the WAL file is looked at where inotify
// cannot tell of its writes.
const watchInterval = 20 * time.Millisecond

// inotifyWAL is a non-blocking inotify descriptor watching dir for files
// written, as an *os.File, so its reads wait in Go's poller.
func inotifyWAL(dir string) (*os.File, error) {
	fd, err := unix.InotifyInit1(unix.IN_NONBLOCK | unix.IN_CLOEXEC)
	if err != nil {
		return nil, err
	}
	if _, err := unix.InotifyAddWatch(fd, dir, unix.IN_MODIFY|unix.IN_CREATE); err != nil {
		_ = unix.Close(fd)
		return nil, err
	}
	return os.NewFile(uintptr(fd), "inotify"), nil
}

// WatchEvents is WatchChanges: the realtime hub reads the log when the
// database changed.
func (s *Store) WatchEvents(ctx context.Context) (<-chan struct{}, error) { return s.WatchChanges(ctx) }

// Engine is "sqlite".
func (s *Store) Engine() string { return store.SQLite }

// Path is the database file.
func (s *Store) Path() string { return s.path }

// Close stops the group commits (the writes queued are committed first)
// and closes the connections.
func (s *Store) Close(ctx context.Context) error {
	s.closeOnce.Do(func() { close(s.closing) })
	select {
	case <-s.done:
	case <-ctx.Done():
		return ctx.Err()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, st := range append(s.r, s.w...) {
		if st != nil {
			_ = st.Close()
		}
	}
	return errors.Join(s.rdb.Close(), s.wdb.Close())
}

// Ping reads the schema version: the file is there and readable.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.usable(); err != nil {
		return fmt.Errorf("store: ping: %w", err)
	}
	if err := s.sameFile(); err != nil {
		return fmt.Errorf("store: ping: %w", err)
	}
	var v int
	if err := s.rdb.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v); err != nil {
		return fmt.Errorf("store: ping: %w", err)
	}
	if v != len(migrations) {
		return fmt.Errorf("store: ping: the database's schema is %d, want %d", v, len(migrations))
	}
	return nil
}

// WaitReady pings until the database answers or ctx ends.
func (s *Store) WaitReady(ctx context.Context) error { return store.PingUntil(ctx, s.Ping) }

// Server is SQLite's version and the file.
func (s *Store) Server(ctx context.Context) (store.ServerInfo, error) {
	var v string
	if err := s.rdb.QueryRowContext(ctx, "SELECT sqlite_version()").Scan(&v); err != nil {
		return store.ServerInfo{}, fmt.Errorf("store: version: %w", err)
	}
	return store.ServerInfo{Kind: "SQLite", Version: v, Path: s.path}, nil
}

// EnsureIndexes has nothing to do: Open brought the schema, indexes
// included, up to date.
func (s *Store) EnsureIndexes(context.Context, zerolog.Logger) error { return nil }

// Pool is the reader pool and the one writer.
func (s *Store) Pool() config.Pool {
	return config.Pool{Max: Readers + 1, Min: 1, MaxConnecting: Readers + 1, Processes: 1}
}

// Stats are the statements this process ran.
func (s *Store) Stats() *store.PoolStats { return s.stats }

// Clock is this machine's clock: the database has no other.
func (s *Store) Clock(context.Context) (store.ServerClock, error) {
	now := time.Now()
	return store.ServerClock{Server: now, Sent: now, Received: now}, nil
}

// Connections is not reported: the database is a file.
func (s *Store) Connections(context.Context) (store.ServerConnections, error) {
	return store.ServerConnections{}, nil
}

// Checkpoint copies the WAL into the database without holding up
// writers (PASSIVE), then, when that moved every frame, truncates the WAL
// (TRUNCATE, which then has nothing left to copy), so the WAL stays
// bounded however busy the suite is; it returns the WAL's size after. A
// TRUNCATE straight away would block every writer while it copied a large
// WAL (seconds, after a bulk load). The primary calls it every minute;
// SQLite's own automatic checkpoints (every 1000 pages, by whichever
// process commits) and journal_size_limit do the rest.
func (s *Store) Checkpoint(ctx context.Context) (walBytes int64, err error) {
	var busyFlag, pages, moved int
	if err := s.wdb.QueryRowContext(ctx, "PRAGMA wal_checkpoint(PASSIVE)").Scan(&busyFlag, &pages, &moved); err != nil {
		return 0, fmt.Errorf("store: checkpoint: %w", err)
	}
	if busyFlag == 0 && moved == pages {
		if err := s.wdb.QueryRowContext(ctx, "PRAGMA wal_checkpoint(TRUNCATE)").Scan(&busyFlag, &pages, &moved); err != nil {
			return 0, fmt.Errorf("store: checkpoint: %w", err)
		}
	}
	fi, err := os.Stat(s.path + "-wal")
	if err != nil {
		return 0, nil
	}
	return fi.Size(), nil
}

// Backup writes a consistent copy of the database to path (VACUUM INTO:
// one read transaction), while the suite runs. It has a connection of its
// own: a reader's refuses to write even the copy (query_only), and the
// writer's would hold this process's writes for as long as the copy
// takes.
func (s *Store) Backup(ctx context.Context, path string) error {
	if _, err := os.Stat(path); err == nil {
		return fmt.Errorf("store: backup: %s exists", path)
	}
	db, err := sql.Open("sqlite", dsn(s.path, true))
	if err != nil {
		return fmt.Errorf("store: backup to %s: %w", path, err)
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, "VACUUM INTO ?", path); err != nil {
		return fmt.Errorf("store: backup to %s: %w", path, err)
	}
	return nil
}

// The errors.

// classify sorts SQLite's errors: a database that is locked past the busy
// timeout, full, unreadable or damaged is away (the API answers 503),
// nothing was written; an I/O error while committing may have left the
// commit on disk.
func classify(err error) (store.ErrorKind, bool) {
	var commitErr commitFailed
	if errors.As(err, &commitErr) {
		if code(commitErr.error)&0xff == sqlite3.SQLITE_IOERR {
			return store.Away | store.Unknown, true
		}
	}
	if errors.As(err, new(away)) {
		return store.Away, true
	}
	var se *sqlite.Error
	if !errors.As(err, &se) {
		if errors.Is(err, errClosed) {
			return store.Away, true
		}
		return store.Refused, false
	}
	switch se.Code() & 0xff {
	case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED, sqlite3.SQLITE_IOERR, sqlite3.SQLITE_FULL,
		sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_READONLY, sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB,
		sqlite3.SQLITE_NOMEM, sqlite3.SQLITE_PROTOCOL:
		return store.Away, true
	}
	return store.Refused, true
}

func code(err error) int {
	var se *sqlite.Error
	if errors.As(err, &se) {
		return se.Code()
	}
	return 0
}

func busy(err error) bool {
	c := code(err) & 0xff
	return c == sqlite3.SQLITE_BUSY || c == sqlite3.SQLITE_LOCKED
}

// duplicate reports a unique constraint violation.
func duplicate(err error) bool {
	c := code(err)
	return c == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY || c == sqlite3.SQLITE_CONSTRAINT_UNIQUE
}

// commitFailed is a failed COMMIT.
type commitFailed struct{ error }

func (e commitFailed) Unwrap() error { return e.error }

var errClosed = errors.New("store: the database is closed")
