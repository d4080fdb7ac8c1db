package sqlitestore_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"app/internal/store"
	"app/internal/store/sqlitestore"
	"app/internal/testutil"
)

// A damaged database file does not stop a process: it opens, says why in
// one line, and every operation fails as "unavailable" (503 on the API),
// with no outcome left unknown; once the file is usable again (here: moved
// away, so a fresh one is made), the store serves without a restart.
func TestDamagedFileIsUnavailableNotACrash(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "app.db")
	if err := os.WriteFile(path, []byte(strings.Repeat("this is not a database ", 512)), 0o600); err != nil {
		t.Fatal(err)
	}
	var logs testutil.Buffer
	st, err := sqlitestore.Open(path, zerolog.New(&logs))
	if err != nil {
		t.Fatalf("a damaged file failed the start: %v", err)
	}
	defer st.Close(context.Background())
	ctx := context.Background()
	err = st.Ping(ctx)
	if !store.IsUnavailable(err) {
		t.Fatalf("ping of a damaged file: %v, want unavailable", err)
	}
	err = st.CreateAPIKey(ctx, store.APIKey{ID: "k1", CreatedAt: time.Now()})
	if !store.IsUnavailable(err) || store.OutcomeUnknown(err) {
		t.Fatalf("a write into a damaged file: %v (unavailable %t, unknown %t), want unavailable and known not written",
			err, store.IsUnavailable(err), store.OutcomeUnknown(err))
	}
	if _, err := st.APIKeys(ctx); !store.IsUnavailable(err) {
		t.Fatalf("a read of a damaged file: %v, want unavailable", err)
	}
	if n := strings.Count(logs.String(), "damaged"); n != 1 {
		t.Fatalf("the log says %d times that the file is damaged, want once:\n%s", n, logs.String())
	}
	if err := os.Rename(path, path+".broken"); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 5*time.Second, "the store serves once the file is usable", func() (bool, string) {
		err := st.CreateAPIKey(ctx, store.APIKey{ID: "k1", CreatedAt: time.Now()})
		return err == nil, errString(err)
	})
}

// A database file deleted under a running process takes no more writes:
// they would be acknowledged into a file no later process opens.
func TestDeletedFileRefusesWrites(t *testing.T) {
	path := filepath.Join(t.TempDir(), "app.db")
	st, err := sqlitestore.Open(path, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close(context.Background())
	ctx := context.Background()
	if err := st.CreateAPIKey(ctx, store.APIKey{ID: "k1", CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{path, path + "-wal", path + "-shm"} {
		if err := os.Remove(f); err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Fatal(err)
		}
	}
	err = st.CreateAPIKey(ctx, store.APIKey{ID: "k2", CreatedAt: time.Now()})
	if !store.IsUnavailable(err) || store.OutcomeUnknown(err) || !strings.Contains(err.Error(), "deleted or replaced") {
		t.Fatalf("a write after the file was deleted: %v, want unavailable, not written, saying why", err)
	}
	if err := st.Ping(ctx); err == nil {
		t.Fatal("ping says ok with the file deleted")
	}
}

func errString(err error) string {
	if err == nil {
		return "ok"
	}
	return err.Error()
}

// A full disk refuses writes as "unavailable", each known not written;
// what was acknowledged before stays; once there is space again, writes
// succeed without a restart.
func TestDiskFullIsUnavailableAndLosesNothing(t *testing.T) {
	dir := t.TempDir()
	if err := exec.Command("mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", dir).Run(); err != nil {
		t.Skipf("cannot mount a small tmpfs to fill (needs root): %v", err)
	}
	t.Cleanup(func() { _ = exec.Command("umount", "-l", dir).Run() })
	path := filepath.Join(dir, "app.db")
	st, err := sqlitestore.Open(path, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close(context.Background())
	ctx := context.Background()
	filler := filepath.Join(dir, "filler")
	if err := os.WriteFile(filler, make([]byte, 3<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	var stored []string
	var full error
	for i := range 10000 {
		id := fmt.Sprintf("k%05d", i)
		err := st.CreateAPIKey(ctx, store.APIKey{ID: id, Name: strings.Repeat("n", 2000), CreatedAt: time.Now()})
		if err != nil {
			full = err
			break
		}
		stored = append(stored, id)
	}
	if full == nil {
		t.Fatal("10,000 writes fit on a 4 MiB file system")
	}
	t.Logf("%d writes fitted; then: %v", len(stored), full)
	if !store.IsUnavailable(full) || store.OutcomeUnknown(full) {
		t.Fatalf("a write on a full disk: %v (unavailable %t, unknown %t), want unavailable and known not written",
			full, store.IsUnavailable(full), store.OutcomeUnknown(full))
	}
	keys, err := st.APIKeys(ctx)
	if err != nil || len(keys) != len(stored) {
		t.Fatalf("after the disk filled, %d keys read back (%v), want the %d acknowledged", len(keys), err, len(stored))
	}
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	if err := st.CreateAPIKey(ctx, store.APIKey{ID: "after", CreatedAt: time.Now()}); err != nil {
		t.Fatalf("a write once there is space again: %v", err)
	}
}

// A commit by another process (here another store on the file) wakes a
// watcher at once: the loops that wait for work read when it changed.
func TestWatchChangesSeesAnotherProcesssCommit(t *testing.T) {
	path := filepath.Join(t.TempDir(), "app.db")
	watcher, err := sqlitestore.Open(path, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer watcher.Close(context.Background())
	writer, err := sqlitestore.Open(path, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer writer.Close(context.Background())
	ctx, cancel := context.WithCancel(context.Background())
	ch, err := watcher.WatchChanges(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		// Drain what opening wrote, then one commit, one wake.
		for drained := false; !drained; {
			select {
			case <-ch:
			default:
				drained = true
			}
		}
		if err := writer.CreateAPIKey(context.Background(), store.APIKey{ID: fmt.Sprint("k", i), CreatedAt: time.Now()}); err != nil {
			t.Fatal(err)
		}
		select {
		case <-ch:
		case <-time.After(5 * time.Second):
			t.Fatalf("commit %d: no wake within 5 s", i)
		}
	}
	cancel()
	testutil.Eventually(t, 5*time.Second, "the channel closes when ctx ends", func() (bool, string) {
		for {
			select {
			case _, ok := <-ch:
				if !ok {
					return true, ""
				}
			default:
				return false, "open"
			}
		}
	})
}
