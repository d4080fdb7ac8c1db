package sqlitestore

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"os"
	oexec "os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"app/internal/store"
)

// openHelperVar makes the test binary a process that opens the database
// it names (see TestStoresOpeningAtOnceOnAFreshFile).
const openHelperVar = "SQLITESTORE_TEST_OPEN"

func TestMain(m *testing.M) {
	if path := os.Getenv(openHelperVar); path != "" {
		os.Exit(openHelper(path))
	}
	os.Exit(m.Run())
}

// openHelper says it is ready, waits for its standard input to close (the
// start shared with the other processes), opens path and writes a
// heartbeat.
func openHelper(path string) int {
	fmt.Println("ready")
	_, _ = io.Copy(io.Discard, os.Stdin)
	s, err := Open(path, zerolog.Nop())
	if err != nil {
		fmt.Println(err)
		return 1
	}
	defer func() { _ = s.Close(context.Background()) }()
	hb := store.Heartbeat{ID: fmt.Sprint("p", os.Getpid()), Role: "worker", PID: os.Getpid(), LastSeen: time.Now()}
	if err := s.WriteHeartbeat(context.Background(), hb); err != nil {
		fmt.Println(err)
		return 1
	}
	return 0
}

// Stores that start at the same moment on a file that does not exist yet
// (the processes of a first start) all open it: setting up WAL mode and
// the schema takes turns, none fails with SQLITE_BUSY. First stores of
// one process, then processes.
func TestStoresOpeningAtOnceOnAFreshFile(t *testing.T) {
	for round := range 10 {
		path := filepath.Join(t.TempDir(), "app.db")
		const n = 4
		stores := make([]*Store, n)
		errs := make([]error, n)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				stores[i], errs[i] = Open(path, zerolog.Nop())
			}()
		}
		close(start)
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Fatalf("round %d: store %d: %v", round, i, err)
			}
			defer func() { _ = stores[i].Close(context.Background()) }()
		}
		for i, s := range stores {
			if err := s.WriteHeartbeat(t.Context(), store.Heartbeat{ID: fmt.Sprint("s", i), LastSeen: time.Now()}); err != nil {
				t.Fatalf("round %d: store %d writes: %v", round, i, err)
			}
		}
		if hbs, err := stores[0].Heartbeats(t.Context(), time.Now().Add(-time.Minute)); err != nil || len(hbs) != n {
			t.Fatalf("round %d: %d heartbeats, %v; want one from each of %d stores", round, len(hbs), err, n)
		}
	}

	for round := range 3 {
		path := filepath.Join(t.TempDir(), "app.db")
		const n = 3
		var stdins []io.WriteCloser
		var cmds []*oexec.Cmd
		var outs []*bytes.Buffer
		for range n {
			cmd := oexec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), openHelperVar+"="+path)
			in, err := cmd.StdinPipe()
			if err != nil {
				t.Fatal(err)
			}
			out, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			r := bufio.NewReader(out)
			if line, err := r.ReadString('\n'); err != nil || line != "ready\n" {
				t.Fatalf("round %d: a process said %q, %v", round, line, err)
			}
			rest := &bytes.Buffer{}
			go func() { _, _ = io.Copy(rest, r) }()
			stdins, cmds, outs = append(stdins, in), append(cmds, cmd), append(outs, rest)
		}
		for _, in := range stdins { // all start now
			_ = in.Close()
		}
		for i, cmd := range cmds {
			if err := cmd.Wait(); err != nil {
				t.Fatalf("round %d: process %d: %v: %s", round, i, err, outs[i])
			}
		}
		s := openAt(t, path)
		if hbs, err := s.Heartbeats(t.Context(), time.Now().Add(-time.Minute)); err != nil || len(hbs) != n {
			t.Fatalf("round %d: %d heartbeats, %v; want one from each of %d processes", round, len(hbs), err, n)
		}
	}
}

// A backup made while another goroutine writes opens as a sound database
// holding every write committed before the backup began, and the media.
func TestBackupIsConsistentWhileWriting(t *testing.T) {
	s := openTest(t)
	ctx := t.Context()
	data := make([]byte, 5*mediaChunkSize+3)
	_, _ = rand.Read(data)
	media, err := s.PutMedia(ctx, "photo.jpg", "image/jpeg", bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	var committed atomic.Int64 // the last event appended
	stop := make(chan struct{})
	writing := make(chan error, 1)
	go func() {
		defer close(writing)
		for seq := int64(1); ; seq++ {
			select {
			case <-stop:
				return
			default:
			}
			if err := s.AppendEvent(context.Background(), seq, "test", 1, map[string]int64{"seq": seq}); err != nil {
				writing <- err
				return
			}
			committed.Store(seq)
		}
	}()
	for committed.Load() < 50 {
		select {
		case err := <-writing:
			t.Fatalf("writing: %v", err)
		case <-time.After(time.Millisecond):
		}
	}
	before := committed.Load()
	path := filepath.Join(t.TempDir(), "backup.db")
	if err := s.Backup(ctx, path); err != nil {
		t.Fatal(err)
	}
	during := committed.Load()
	close(stop)
	if err := <-writing; err != nil {
		t.Fatalf("writing: %v", err)
	}
	if err := s.Backup(ctx, path); err == nil {
		t.Error("a backup over an existing file was made")
	}

	b := openAt(t, path)
	var check string
	if err := b.rdb.QueryRowContext(ctx, "PRAGMA integrity_check").Scan(&check); err != nil || check != "ok" {
		t.Fatalf("the backup's integrity check: %q, %v", check, err)
	}
	last, err := b.LastEventSeq(ctx)
	if err != nil || last < before {
		t.Fatalf("the backup ends at event %d, %v; %d were committed before it began", last, err, before)
	}
	events, err := b.Events(ctx, 0, int(last)+1)
	if err != nil || int64(len(events)) != last || events[0].Seq != 1 {
		t.Fatalf("the backup holds %d events up to %d, %v; want 1..%d, none missing", len(events), last, err, last)
	}
	if got, err := b.Media(ctx, media); err != nil || !bytes.Equal(got, data) {
		t.Errorf("the backup's media: %d of %d bytes, %v", len(got), len(data), err)
	}
	t.Logf("%d events committed before the backup, %d when it ended, %d in it", before, during, last)
}

// A checkpoint empties the WAL however much was written, also while a
// download is half read: a download holds no read transaction between
// its chunks.
func TestWALStaysBounded(t *testing.T) {
	s := openTest(t)
	ctx := t.Context()
	data := make([]byte, 96*mediaChunkSize)
	_, _ = rand.Read(data)
	id, err := s.PutMedia(ctx, "video.mp4", "video/mp4", bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 100 {
				hb := store.Heartbeat{ID: fmt.Sprintf("h/%d", g), Requests: int64(i), LastSeen: time.Now(), State: strings.Repeat("x", 500)}
				if err := s.WriteHeartbeat(ctx, hb); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	wal := func() int64 {
		fi, err := os.Stat(s.path + "-wal")
		if os.IsNotExist(err) {
			return 0
		}
		if err != nil {
			t.Fatal(err)
		}
		return fi.Size()
	}
	if size := wal(); size < 1<<20 {
		t.Fatalf("the WAL is %d bytes after writing 6 MiB: the test writes too little to tell", size)
	}

	_, rd, err := s.OpenMedia(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	head := make([]byte, 1000)
	if _, err := io.ReadFull(rd, head); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Checkpoint(ctx); err != nil {
		t.Fatalf("checkpoint: %v", err)
	}
	if size := wal(); size > 64<<10 {
		t.Errorf("after a checkpoint the WAL is %d bytes", size)
	}
	rest, err := io.ReadAll(rd)
	if err != nil || !bytes.Equal(append(head, rest...), data) {
		t.Errorf("the download read %d of %d bytes after the checkpoint, %v", len(head)+len(rest), len(data), err)
	}
}
