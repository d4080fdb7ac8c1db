package primary_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"app/internal/config"
	"app/internal/primary"
	"app/internal/store"
	"app/internal/testdb"
	"app/internal/whatsapp"
)

// childEnv makes the test binary a primary in a process of its own (see
// childPrimary), for tests that kill one.
const childEnv = "APP_TEST_PRIMARY_CHILD"

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		os.Exit(childPrimary())
	}
	os.Exit(m.Run())
}

// childPrimary runs the WhatsApp task against the test's database (its
// APP_STATE_DIR and MONGO_URI) with a sandbox kept in APP_TEST_SANDBOX_DIR, while
// APP_TEST_INJECT messages arrive from Alice; it prints each message's id
// once the sandbox holds it (WhatsApp's servers accepted it for us).
func childPrimary() int {
	cfg, err := config.LoadFrom(func(k string) (string, bool) {
		if k != "APP_STATE_DIR" && k != "MONGO_URI" {
			return "", false
		}
		return os.LookupEnv(k)
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	// Not testdb's Connect: the child is a process of its own, without a
	// testing.T; the WhatsApp task waits for the database itself.
	st, err := store.Connect(cfg, "child-primary", zerolog.Nop())
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	sc := whatsapp.SandboxConfig{Dir: os.Getenv("APP_TEST_SANDBOX_DIR"), Paired: whatsapp.SandboxJID, DeliveredDelay: -1, ReadDelay: -1}
	if os.Getenv("APP_TEST_RECEIPTS") != "" {
		sc.DeliveredDelay, sc.ReadDelay = 20*time.Millisecond, 40*time.Millisecond
	}
	sb, err := whatsapp.NewSandbox(sc)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	n, _ := strconv.Atoi(os.Getenv("APP_TEST_INJECT"))
	go func() {
		for i := range n {
			m, err := sb.Receive(whatsapp.Incoming{Chat: alice, Text: fmt.Sprint("m", i)})
			if err != nil {
				fmt.Fprintln(os.Stderr, err)
				os.Exit(1)
			}
			fmt.Println(m.ID)
			if os.Getenv("APP_TEST_BURST") == "" {
				time.Sleep(5 * time.Millisecond) // the pace of a stream, not a burst: not a wait for a condition
			}
		}
	}()
	w := &primary.WhatsApp{Cfg: waCfg(), Driver: sb, Store: st, Log: zerolog.Nop()}
	epoch, _ := strconv.ParseInt(os.Getenv("APP_TEST_EPOCH"), 10, 64)
	_ = w.Run(context.Background(), max(epoch, 1))
	return 0
}

// childDB is a database for a test and its child primaries.
func childDB(t *testing.T) (*testdb.DB, store.Store) {
	t.Helper()
	db := testdb.Start(t)
	return db, childStore(t, db)
}

// childStore is the test's own store on db, which its child primaries share.
func childStore(t *testing.T, db *testdb.DB) store.Store {
	t.Helper()
	st := db.Connect(nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := st.EnsureIndexes(ctx, zerolog.Nop()); err != nil {
		t.Fatal(err)
	}
	return st
}

// childCommand is a child primary (childPrimary) with env added.
// A test that fails before it kills the child still stops it.
func childCommand(t *testing.T, db *testdb.DB, dir string, env ...string) *exec.Cmd {
	child := exec.Command(os.Args[0], "-test.run=^$")
	t.Cleanup(func() {
		if child.Process != nil && child.ProcessState == nil {
			_ = child.Process.Kill()
			_ = child.Wait()
		}
	})
	child.Env = append(append(append(os.Environ(), childEnv+"=1", "APP_TEST_SANDBOX_DIR="+dir), db.Env()...), env...)
	child.Stderr = os.Stderr
	return child
}

// WhatsApp keeps what it holds for us until we acknowledge it, and so does
// the sandbox: a primary killed (SIGKILL) while messages stream in, some
// stored, some still waiting, loses none of them, and the next primary
// stores and announces each exactly once.
func TestKilledPrimaryMidStreamOfIncoming(t *testing.T) {
	db, st := childDB(t)
	dir := t.TempDir()

	const total = 300
	// A burst, so that messages wait while some are stored, however fast
	// the database stores them.
	child := childCommand(t, db, dir, "APP_TEST_INJECT="+strconv.Itoa(total), "APP_TEST_BURST=1")
	out, err := child.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var accepted []string
	read := make(chan struct{})
	go func() {
		defer close(read)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			mu.Lock()
			accepted = append(accepted, sc.Text())
			mu.Unlock()
		}
	}()
	stored := func() map[string]int {
		ms, err := st.IncomingMessages(context.Background(), alice, 10*total)
		if err != nil {
			t.Fatal(err)
		}
		n := map[string]int{}
		for _, m := range ms {
			n[m.WAID]++
		}
		return n
	}
	// Killed once some are stored and more are held for it.
	var atKill, storedAtKill int
	waitFor(t, "messages stored while more wait", 60*time.Second, func() (bool, string) {
		n := len(stored())
		mu.Lock()
		a := len(accepted)
		mu.Unlock()
		if n >= 10 && a >= n+10 {
			if err := child.Process.Kill(); err != nil {
				t.Fatal(err)
			}
			atKill, storedAtKill = a, n
			return true, ""
		}
		return false, fmt.Sprintf("%d accepted, %d stored", a, n)
	})
	_ = child.Wait()
	<-read
	mu.Lock()
	want := append([]string(nil), accepted...)
	mu.Unlock()
	t.Logf("killed with %d messages accepted, %d stored; %d accepted in all", atKill, storedAtKill, len(want))

	// The next primary, with the sandbox as the killed one left it.
	sb, err := whatsapp.NewSandbox(whatsapp.SandboxConfig{Dir: dir, Paired: whatsapp.SandboxJID, DeliveredDelay: -1, ReadDelay: -1})
	if err != nil {
		t.Fatal(err)
	}
	w := &primary.WhatsApp{Cfg: waCfg(), Driver: sb, Store: st, Log: zerolog.Nop()}
	runWA(t, w, 2)
	waitFor(t, "every accepted message stored", 60*time.Second, func() (bool, string) {
		got := stored()
		missing := 0
		for _, id := range want {
			if got[id] == 0 {
				missing++
			}
		}
		return missing == 0, fmt.Sprintf("%d of %d accepted messages missing", missing, len(want))
	})
	announced := map[string]int{}
	waitFor(t, "every stored message announced", 30*time.Second, func() (bool, string) {
		announced = map[string]int{}
		for _, e := range events(t, st) {
			if e.Type == "message.incoming" {
				var d struct {
					WAID string `json:"wa_id"`
				}
				_ = e.DecodeData(&d)
				announced[d.WAID]++
			}
		}
		return len(announced) >= len(stored()), fmt.Sprintf("%d announced", len(announced))
	})
	for id, n := range stored() {
		if n != 1 || announced[id] != 1 {
			t.Errorf("message %s stored %d times and announced %d times, want once each", id, n, announced[id])
		}
	}
}

// Primaries killed (SIGKILL) while they send, three times at different
// points: every message still goes out, and the log tells each one's sent,
// delivered and read exactly once, in that order.
func TestKilledPrimaryMidStreamOfSends(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		st := childStore(t, db)
		dir := t.TempDir()
		const total = 60
		var ids []string
		for i := range total {
			ids = append(ids, enqueue(t, st, fmt.Sprintf("4917012300%02d@s.whatsapp.net", i%6), fmt.Sprint("m", i)).ID)
		}
		done := func() int {
			n := 0
			for _, s := range []string{store.StatusSent, store.StatusDelivered, store.StatusRead} {
				ms, err := st.OutboxByStatus(context.Background(), s, 10*total)
				if err != nil {
					t.Fatal(err)
				}
				n += len(ms)
			}
			return n
		}
		for kill := 1; kill <= 3; kill++ {
			child := childCommand(t, db, dir, "APP_TEST_RECEIPTS=1", "APP_TEST_EPOCH="+strconv.Itoa(kill))
			if err := child.Start(); err != nil {
				t.Fatal(err)
			}
			waitFor(t, fmt.Sprint("primary ", kill, " sends"), 60*time.Second, func() (bool, string) {
				n := done()
				return n >= kill*total/4, fmt.Sprint(n, " sent")
			})
			if err := child.Process.Kill(); err != nil {
				t.Fatal(err)
			}
			_ = child.Wait()
		}
		sb, err := whatsapp.NewSandbox(whatsapp.SandboxConfig{Dir: dir, Paired: whatsapp.SandboxJID,
			DeliveredDelay: 20 * time.Millisecond, ReadDelay: 40 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		runWA(t, &primary.WhatsApp{Cfg: waCfg(), Driver: sb, Store: st, Log: zerolog.Nop()}, 4)
		waitFor(t, "every message read", 60*time.Second, func() (bool, string) {
			ms, err := st.OutboxByStatus(context.Background(), store.StatusRead, 10*total)
			if err != nil {
				t.Fatal(err)
			}
			return len(ms) == total, fmt.Sprint(len(ms), " read")
		})
		want := "sent delivered read"
		waitFor(t, "the log tells each message's story", 10*time.Second, func() (bool, string) {
			story := statusStories(t, st)
			for _, id := range ids {
				if got := strings.Join(story[id], " "); got != want {
					return false, fmt.Sprintf("message %s: %s, want %s", id, got, want)
				}
			}
			return true, ""
		})
	})
}
