package worker_test

import (
	"context"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"app/internal/proc"
	"app/internal/store"
	"app/internal/testdb"
	"app/internal/worker"
)

// notifySocket plays systemd's side of sd_notify for one test.
func notifySocket(t *testing.T, watchdog bool) <-chan string {
	t.Helper()
	dir, err := os.MkdirTemp("", "notify")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	path := filepath.Join(dir, "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("NOTIFY_SOCKET", path)
	if watchdog {
		t.Setenv("WATCHDOG_USEC", "200000")
		t.Setenv("WATCHDOG_PID", strconv.Itoa(os.Getpid()))
	}
	msgs := make(chan string, 256)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				return
			}
			select {
			case msgs <- string(buf[:n]):
			default:
			}
		}
	}()
	t.Cleanup(func() { _ = conn.Close() })
	return msgs
}

// expect waits for a message with every given line.
func expect(t *testing.T, msgs <-chan string, within time.Duration, lines ...string) string {
	t.Helper()
	deadline := time.After(within)
	for {
		select {
		case m := <-msgs:
			ok := true
			for _, l := range lines {
				if !strings.Contains("\n"+m+"\n", "\n"+l) {
					ok = false
				}
			}
			if ok {
				return m
			}
		case <-deadline:
			t.Fatalf("no notification with %q within %s", lines, within)
			return ""
		}
	}
}

func startWorker(t *testing.T, db *testdb.DB) (url string, stop func() error) {
	t.Helper()
	cfg := db.Config(map[string]string{"APP_DB_WAIT": "700ms", "APP_HEARTBEAT_INTERVAL": "200ms", "APP_SHUTDOWN_TIMEOUT": "2s"})
	// Not testdb's Connect, which waits for the database: a test starts
	// the worker with the database down, and the worker must cope.
	st, err := store.Connect(cfg, "test", zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close(context.Background()) })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	w := &worker.Worker{Cfg: cfg, Log: zerolog.Nop(), Store: st, ID: proc.NewIdentity("worker", "1"), Listener: ln}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	stopped := false
	stop = func() error {
		if stopped {
			return nil
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			return err
		case <-time.After(10 * time.Second):
			t.Fatal("the worker did not stop within 10s")
			return nil
		}
	}
	t.Cleanup(func() { _ = stop() })
	return "http://" + ln.Addr().String(), stop
}

func TestWorkerTellsSystemdReadyWatchdogAndStopping(t *testing.T) {
	msgs := notifySocket(t, true)
	db := testdb.StartMongo(t)
	url, stop := startWorker(t, db)
	m := expect(t, msgs, 10*time.Second, "READY=1")
	if !strings.Contains(m, "STATUS=serving on ") || !strings.Contains(m, "database ok") {
		t.Fatalf("READY came with %q, want a STATUS saying it serves with the database ok", m)
	}
	expect(t, msgs, 2*time.Second, "WATCHDOG=1")
	res, err := http.Get(url + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	// The database going away is shown in STATUS, and the watchdog keeps
	// being fed: restarting the worker would not bring the database back.
	db.Stop()
	for deadline := time.Now().Add(10 * time.Second); ; {
		m := expect(t, msgs, 5*time.Second, "STATUS=")
		if strings.Contains(m, "database unreachable (degraded)") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("STATUS never said the database was unreachable")
		}
	}
	expect(t, msgs, 2*time.Second, "WATCHDOG=1")
	if err := stop(); err != nil {
		t.Fatalf("worker stopped with %v", err)
	}
	expect(t, msgs, time.Second, "STOPPING=1")
	if _, err := http.Get(url + "/healthz"); err == nil {
		t.Fatal("the stopped worker still accepts connections")
	}
}

func TestWorkerWithoutDatabaseIsReadyDegradedAfterTheWait(t *testing.T) {
	msgs := notifySocket(t, false)
	db := testdb.StartMongo(t)
	db.Stop()
	start := time.Now()
	url, _ := startWorker(t, db)
	// It serves /healthz before READY: systemd's start is not held up by
	// the database, and the process is alive.
	res, err := http.Get(url + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	m := expect(t, msgs, 10*time.Second, "READY=1")
	if waited := time.Since(start); waited < 700*time.Millisecond {
		t.Fatalf("READY after %s, before APP_DB_WAIT (700ms) ran out, with the database down", waited)
	}
	if !strings.Contains(m, "database unreachable (degraded)") {
		t.Fatalf("READY came with %q, want the degraded state", m)
	}
	db.Restart()
	for deadline := time.Now().Add(15 * time.Second); ; {
		if m := expect(t, msgs, 5*time.Second, "STATUS="); strings.Contains(m, "database ok") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("STATUS never said the database was back")
		}
	}
}
