package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"app/internal/config"
	"app/internal/store"
	"app/internal/testdb"
)

// adminEnv points administrators' commands (app keys, app backup) at db,
// away from /etc/app/app.env.
func adminEnv(t *testing.T, db *testdb.DB) {
	t.Helper()
	clearEnv(t)
	t.Setenv("APP_ENV_FILE", filepath.Join(t.TempDir(), "app.env"))
	for k, v := range db.Vars() {
		t.Setenv(k, v)
	}
}

// openCopy opens a backup as the store of a state directory of its own.
func openCopy(t *testing.T, file string) store.Store {
	t.Helper()
	dir := t.TempDir()
	if err := os.Rename(file, filepath.Join(dir, "app.db")); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.LoadFrom(func(k string) (string, bool) { return map[string]string{"APP_STATE_DIR": dir}[k], k == "APP_STATE_DIR" })
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Connect(cfg, "backup-test", zerolog.Nop())
	if err != nil {
		t.Fatalf("the copy does not open: %v", err)
	}
	t.Cleanup(func() { _ = st.Close(context.Background()) })
	return st
}

// app backup copies the SQLite store while another process writes to
// it: the copy opens as a store with what was written before, it is
// readable by its owner only, and an existing file is never overwritten.
func TestBackup(t *testing.T) {
	db := testdb.Start(t)
	adminEnv(t, db)
	st := db.Connect(nil)
	ctx := context.Background()
	_, k := store.NewAPIKey("before the backup", []string{"admin"})
	if err := st.CreateAPIKey(ctx, k); err != nil {
		t.Fatal(err)
	}
	// Writes go on meanwhile, as a running suite's heartbeats do.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			_ = st.WriteHeartbeat(ctx, store.Heartbeat{ID: "h1/worker-1", Role: "worker", Worker: "1", Host: "h1", PID: i, LastSeen: time.Now(), State: "serving"})
		}
	}()
	file := filepath.Join(t.TempDir(), "copy.db")
	code, out, errs := run("app", "backup", file)
	close(stop)
	wg.Wait()
	if code != 0 || errs != "" || !strings.HasPrefix(out, "Backed up "+db.Config(nil).DBPath()+" to "+file+" (") {
		t.Fatalf("exit %d, stdout %q, stderr %q; want 0 and the line saying where the copy went", code, out, errs)
	}
	fi, err := os.Stat(file)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("the copy's mode is %04o, want 0600: it holds every secret the database does", fi.Mode().Perm())
	}

	// An existing file is refused and left as it was.
	before, _ := os.ReadFile(file)
	code, out, errs = run("app", "backup", file)
	if after, _ := os.ReadFile(file); code != 1 || out != "" || !strings.Contains(errs, file+" exists") || !bytes.Equal(before, after) {
		t.Errorf("a second backup to the same file: exit %d, stdout %q, stderr %q, file changed: %v; want 1, a line saying it exists, the file untouched",
			code, out, errs, !bytes.Equal(before, after))
	}
	// The database's own files are not a place for it.
	if code, _, errs := run("app", "backup", db.Config(nil).DBPath()+"-wal"); code != 2 || !strings.Contains(errs, "the database's own files") {
		t.Errorf("a backup over the WAL: exit %d, stderr %q; want 2 and a refusal", code, errs)
	}

	cp := openCopy(t, file)
	got, err := cp.APIKey(ctx, k.ID)
	if err != nil || got.Name != "before the backup" {
		t.Errorf("the copy has key %+v (%v); want the one made before the backup", got, err)
	}
}

func TestBackupUsage(t *testing.T) {
	db := testdb.Start(t)
	adminEnv(t, db)
	for _, args := range [][]string{{"app", "backup"}, {"app", "backup", "a", "b"}} {
		if code, out, errs := run(args...); code != 2 || out != "" || !strings.Contains(errs, "usage: app backup FILE") {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want 2 and the usage", args, code, out, errs)
		}
	}
	// Where no suite ran there is nothing to copy, and nothing is created.
	clearEnv(t)
	state := os.Getenv("APP_STATE_DIR")
	code, _, errs := run("app", "backup", filepath.Join(t.TempDir(), "copy.db"))
	if entries, _ := os.ReadDir(state); code != 1 || !strings.Contains(errs, "no database at") || len(entries) != 0 {
		t.Errorf("exit %d, stderr %q, state directory %v; want 1, a line saying there is no database, nothing created", code, errs, entries)
	}
}

// On MongoDB there is no file to copy: app backup says to use mongodump,
// with a status of its own, before it connects anywhere.
func TestBackupOnMongoDB(t *testing.T) {
	clearEnv(t)
	t.Setenv("APP_ENV_FILE", filepath.Join(t.TempDir(), "app.env"))
	t.Setenv("MONGO_URI", "mongodb://app:s3cret@db1.invalid:27017/")
	file := filepath.Join(t.TempDir(), "copy")
	code, out, errs := run("app", "backup", file)
	if code != 3 || out != "" || !strings.Contains(errs, "mongodump") || strings.Contains(errs, "s3cret") {
		t.Errorf("exit %d, stdout %q, stderr %q; want 3 and one line naming mongodump (without the password)", code, out, errs)
	}
	if _, err := os.Stat(file); err == nil {
		t.Errorf("app backup on MongoDB wrote %s", file)
	}
}

// Run as root, app keys and app backup leave nothing in the state
// directory that its owner (the suite's user) cannot write: the store's
// files, and a backup written there, become the owner's.
func TestRootLeavesTheStateDirToItsOwner(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	db := testdb.Start(t)
	adminEnv(t, db)
	st := db.Connect(nil) // as the suite would have it: open, with its WAL
	_ = st
	const nobody = 65534
	if err := os.Chown(db.StateDir, nobody, nobody); err != nil {
		t.Fatal(err)
	}
	if code, _, errs := run("app", "keys", "create", "--name", "root", "--scopes", "admin"); code != 0 {
		t.Fatalf("app keys create: exit %d: %s", code, errs)
	}
	if code, _, errs := run("app", "backup", filepath.Join(db.StateDir, "backup.db")); code != 0 {
		t.Fatalf("app backup: exit %d: %s", code, errs)
	}
	entries, err := os.ReadDir(db.StateDir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
		fi, err := os.Lstat(filepath.Join(db.StateDir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if uid := fi.Sys().(*syscall.Stat_t).Uid; uid != nobody {
			t.Errorf("%s is owned by uid %d, not by the state directory's owner (%d)", e.Name(), uid, nobody)
		}
	}
	if !strings.Contains(strings.Join(names, " "), "app.db-wal") || !strings.Contains(strings.Join(names, " "), "backup.db") {
		t.Errorf("the state directory holds %v; want the database with its WAL and the backup", names)
	}
}
