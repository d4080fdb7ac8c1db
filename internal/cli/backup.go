package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"app/internal/config"
	"app/internal/store"
)

// exitMongo is `app backup`'s status on MongoDB: there is no file to copy
// (mongodump copies a MongoDB database), which a script may want to tell
// from a failed copy (1) and a mistyped command (2).
const exitMongo = 3

// backuper is a store that copies itself to a new file while it is in use
// (SQLite's VACUUM INTO).
type backuper interface {
	Backup(ctx context.Context, path string) error
}

// backupFlags is `app backup FILE`.
func backupFlags(fs *flag.FlagSet) func(args []string, stdout, stderr io.Writer) int {
	timeout := fs.Duration("timeout", time.Hour, "how long the copy may take")
	return func(args []string, stdout, stderr io.Writer) int {
		if len(args) != 1 || args[0] == "" {
			fmt.Fprintln(stderr, "usage: app backup FILE (a new file: the copy of the SQLite store)")
			return exitConfig
		}
		cfg, err := config.LoadFrom(adminLookup(envFile(), packagedStateDir))
		if err != nil {
			fmt.Fprintln(stderr, err)
			return exitConfig
		}
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		ctx, cancel := context.WithTimeout(ctx, *timeout)
		defer cancel()
		return backup(ctx, cfg, args[0], stdout, stderr)
	}
}

func backup(ctx context.Context, cfg config.Config, file string, stdout, stderr io.Writer) int {
	if !cfg.Embedded() {
		fmt.Fprintf(stderr, "app backup: the suite's store is MongoDB (MONGO_URI=%s), not a file: back it up with mongodump (mongodump --uri=... --db=%s, or your provider's backups)\n",
			config.Redact(cfg.MongoURI), cfg.MongoDatabase)
		return exitMongo
	}
	abs, err := filepath.Abs(file)
	if err != nil {
		fmt.Fprintf(stderr, "app backup: %v\n", err)
		return exitConfig
	}
	for _, own := range []string{cfg.DBPath(), cfg.DBPath() + "-wal", cfg.DBPath() + "-shm"} {
		if abs == own {
			fmt.Fprintf(stderr, "app backup: %s is one of the database's own files; name a new file elsewhere\n", abs)
			return exitConfig
		}
	}
	if _, err := os.Lstat(abs); err == nil {
		fmt.Fprintf(stderr, "app backup: %s exists; the copy goes to a new file (remove it, or name another)\n", abs)
		return exitFailed
	} else if !errors.Is(err, fs.ErrNotExist) {
		fmt.Fprintf(stderr, "app backup: %s: %v\n", abs, reason(err))
		return exitFailed
	}
	if err := storeExists(cfg); err != nil {
		fmt.Fprintf(stderr, "app backup: %v\n", err)
		return exitFailed
	}
	st, err := store.Connect(cfg, "app-backup", zerolog.Nop())
	if err != nil {
		fmt.Fprintf(stderr, "app backup: %v\n", err)
		return exitFailed
	}
	defer closeStore(st)
	b, ok := st.(backuper)
	if !ok {
		fmt.Fprintf(stderr, "app backup: the %s store cannot copy itself\n", st.Engine())
		return exitFailed
	}
	// The copy holds everything the database does (key hashes, webhook
	// secrets, messages): readable by its owner alone, whatever the
	// shell's umask.
	defer syscall.Umask(syscall.Umask(0o077))
	start := time.Now()
	if err := b.Backup(ctx, abs); err != nil {
		// A copy cut short is no backup: nothing is left that could be
		// mistaken for one.
		_ = os.Remove(abs)
		if ctx.Err() != nil {
			err = fmt.Errorf("%w (%v)", err, context.Cause(ctx))
		}
		fmt.Fprintf(stderr, "app backup: %v\n", err)
		return exitFailed
	}
	fi, err := os.Stat(abs)
	if err != nil {
		fmt.Fprintf(stderr, "app backup: the copy is not there: %v\n", err)
		return exitFailed
	}
	if err := giveToStateDirOwner(cfg.StateDir, abs); err != nil {
		fmt.Fprintf(stderr, "app backup: %v\n", err)
		return exitFailed
	}
	fmt.Fprintf(stdout, "Backed up %s to %s (%d bytes) in %s.\n", cfg.DBPath(), abs, fi.Size(), time.Since(start).Round(time.Millisecond))
	return exitOK
}

// giveToStateDirOwner hands file to the owner of the state directory when
// root wrote it there, so that a root-run command leaves nothing in the
// state directory the app user cannot write (as the store does for its
// own files).
func giveToStateDirOwner(stateDir, file string) error {
	if os.Geteuid() != 0 {
		return nil
	}
	rel, err := filepath.Rel(stateDir, file)
	if err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
		return nil
	}
	fi, err := os.Stat(stateDir)
	if err != nil {
		return nil
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok || st.Uid == 0 {
		return nil
	}
	if err := os.Lchown(file, int(st.Uid), int(st.Gid)); err != nil {
		return fmt.Errorf("give %s to the state directory's owner: %w", file, err)
	}
	return nil
}
