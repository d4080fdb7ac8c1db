package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"app/internal/config"
	"app/internal/testdb"
	"app/internal/testutil"
)

// app keys on the embedded store: create prints a key once, list shows it,
// revoke revokes it, all in the suite's SQLite file.
func TestKeysOnSQLite(t *testing.T) {
	db := testdb.Start(t)
	adminEnv(t, db)
	db.Connect(nil) // the suite has run here: the file exists
	code, key, errs := run("app", "keys", "create", "--name", "ops", "--scopes", "admin,session,contacts:write")
	key = strings.TrimSpace(key)
	if code != 0 || !strings.HasPrefix(key, "app_") || !strings.Contains(errs, "shown only now") {
		t.Fatalf("create: exit %d, stdout %q, stderr %q", code, key, errs)
	}
	id := strings.SplitN(strings.TrimPrefix(key, "app_"), "_", 2)[0]
	code, out, _ := run("app", "keys", "list")
	if code != 0 || !strings.Contains(out, id) || !strings.Contains(out, "admin,session,contacts:write") {
		t.Errorf("list: exit %d:\n%s\nwant key %s with its scopes", code, out, id)
	}
	if code, out, errs := run("app", "keys", "revoke", key); code != 0 || !strings.Contains(out, "Revoked "+id) {
		t.Errorf("revoke: exit %d, stdout %q, stderr %q", code, out, errs)
	}
}

// Without APP_STATE_DIR, an administrator's command finds the packaged
// suite's store (as the app user its own default is under its home).
func TestAdminLookupFindsThePackagedStore(t *testing.T) {
	clearEnv(t)
	if err := os.Unsetenv("APP_STATE_DIR"); err != nil {
		t.Fatal(err)
	}
	packaged := t.TempDir()
	envFile := filepath.Join(t.TempDir(), "app.env")
	load := func() config.Config {
		t.Helper()
		cfg, err := config.LoadFrom(adminLookup(envFile, packaged))
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	if cfg := load(); cfg.StateDir == packaged {
		t.Errorf("APP_STATE_DIR is the packaged %s although no store is there", packaged)
	}
	if err := os.WriteFile(filepath.Join(packaged, "app.db"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if cfg := load(); cfg.StateDir != packaged {
		t.Errorf("APP_STATE_DIR = %s, want the packaged %s where the store is", cfg.StateDir, packaged)
	}
	// What the environment file or the shell says wins.
	other := t.TempDir()
	if err := os.WriteFile(envFile, []byte("APP_STATE_DIR="+other+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if cfg := load(); cfg.StateDir != other {
		t.Errorf("APP_STATE_DIR = %s, want %s from the environment file", cfg.StateDir, other)
	}
}

// An upgrade leaves the earlier embedded database's files (db/) in the
// state directory: the primary says once that they are no longer used.
func TestNoteOldDB(t *testing.T) {
	state := t.TempDir()
	var log testutil.Buffer
	cfg := config.Config{StateDir: state}
	noteOldDB(cfg, zerolog.New(&log))
	if log.String() != "" {
		t.Errorf("without db/: %s", log.String())
	}
	if err := os.Mkdir(filepath.Join(state, "db"), 0o700); err != nil {
		t.Fatal(err)
	}
	noteOldDB(cfg, zerolog.New(&log))
	if got := log.String(); strings.Count(got, "\n") != 1 || !strings.Contains(got, "no longer used") || !strings.Contains(got, "rm -r "+filepath.Join(state, "db")) {
		t.Errorf("with db/: %q; want one line saying it is no longer used and how to remove it", got)
	}
}
