package doctor

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"app/internal/config"
	"app/internal/store"
	"app/internal/systemd"
	"app/internal/testdb"
)

func connect(t *testing.T, db *testdb.DB, env map[string]string) (config.Config, store.Store) {
	t.Helper()
	return db.Config(env), db.Connect(env)
}

// healthy records what a running suite leaves in the database: a held
// lease, heartbeats of two workers and the primary, a connected session.
func healthy(t *testing.T, st store.Store, host string) {
	t.Helper()
	ctx := context.Background()
	now := time.Now()
	if ok, err := st.ClaimLease(ctx, store.Lease{Epoch: 1, Holder: host + "/primary/42/1", Host: host, PID: 42, AcquiredAt: now, ExpiresAt: now.Add(15 * time.Second)}); !ok || err != nil {
		t.Fatalf("claim lease: %v %v", ok, err)
	}
	for _, hb := range []store.Heartbeat{
		{ID: host + "/primary", Role: "primary", Host: host, PID: 42, LastSeen: now, State: "holder"},
		{ID: host + "/worker-1", Role: "worker", Worker: "1", Host: host, PID: 43, LastSeen: now, State: "serving"},
		{ID: host + "/worker-2", Role: "worker", Worker: "2", Host: host, PID: 44, LastSeen: now, State: "serving"},
	} {
		if err := st.WriteHeartbeat(ctx, hb); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.SaveSession(ctx, store.WASession{State: "connected", JID: "491701234567@s.whatsapp.net", Driver: "whatsmeow"}); err != nil {
		t.Fatal(err)
	}
}

func byName(r *Report) map[string]Check {
	m := map[string]Check{}
	for _, c := range r.Checks {
		m[c.Name] = c
	}
	return m
}

func runDoctor(t *testing.T, d *Doctor) *Report {
	t.Helper()
	r := NewReport(d.Host, time.Now())
	d.Run(context.Background(), r)
	for _, c := range r.Checks {
		t.Logf("%-4s %-12s %s", c.Status, c.Name, c.Message)
	}
	return r
}

func TestHealthySuite(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		cfg, st := connect(t, db, map[string]string{"APP_ENV": "development", "CLUSTER_WORKERS": "2"})
		healthy(t, st, "h1")
		r := runDoctor(t, &Doctor{Cfg: cfg, Store: st, Host: "h1"})
		if r.Failed != 0 || r.Warnings != 0 || r.Status != OK {
			t.Errorf("a healthy suite: %d failed, %d warnings, status %s; want all ok", r.Failed, r.Warnings, r.Status)
		}
		c := byName(r)
		want := map[string]string{
			"units":      "not under systemd",
			"lease":      "held by pid 42 on h1, epoch 1",
			"heartbeats": "3 processes",
			"whatsapp":   "connected as 491701234567@s.whatsapp.net",
		}
		if db.Engine == store.SQLite {
			want["database"] = "SQLite 3."
			want["connections"] = "not checked on SQLite"
			want["clock"] = "not checked on SQLite"
		} else {
			want["database"] = "FerretDB"
			want["connections"] = "150 in all"
			want["clock"] = "agrees"
		}
		for name, want := range want {
			if !strings.Contains(c[name].Message, want) {
				t.Errorf("%s: %q does not say %q", name, c[name].Message, want)
			}
		}
		skipped := []string{"units", "socket"}
		if db.Engine == store.SQLite {
			skipped = append(skipped, "connections", "clock")
			db := c["database"]
			if !strings.Contains(db.Message, cfg.DBPath()+": ") || !strings.Contains(db.Message, ", WAL ") || !strings.Contains(db.Message, "can write it") ||
				db.Details["writable"] != true || db.Details["size_bytes"].(int64) == 0 {
				t.Errorf("database: %q %v; want the file, its size, the WAL's and that the suite's user can write it", db.Message, db.Details)
			}
		}
		for _, name := range skipped {
			if c[name].Status != Skip {
				t.Errorf("%s: %s, want skip", name, c[name].Status)
			}
		}
	})
}

func TestProblemsAreNamed(t *testing.T) {
	db := testdb.Start(t)
	cfg, st := connect(t, db, map[string]string{"CLUSTER_WORKERS": "2"}) // APP_ENV=production
	ctx := context.Background()
	past := time.Now().Add(-time.Minute)
	if _, err := st.ClaimLease(ctx, store.Lease{Epoch: 3, Host: "h1", PID: 42, ExpiresAt: past}); err != nil {
		t.Fatal(err)
	}
	if err := st.WriteHeartbeat(ctx, store.Heartbeat{ID: "h1/worker-2", Role: "worker", Worker: "2", Host: "h1", PID: 44, LastSeen: past, State: "serving"}); err != nil {
		t.Fatal(err)
	}
	if err := st.WriteHeartbeat(ctx, store.Heartbeat{ID: "h1/worker-3", Role: "worker", Worker: "3", Host: "h1", PID: 45, LastSeen: past, State: "stopped"}); err != nil {
		t.Fatal(err)
	}
	if err := st.SaveSession(ctx, store.WASession{State: "unpaired", Driver: "sandbox"}); err != nil {
		t.Fatal(err)
	}
	r := runDoctor(t, &Doctor{Cfg: cfg, Store: st, Host: "h1"})
	c := byName(r)
	for _, tc := range []struct {
		name   string
		status Status
		says   []string
	}{
		// One machine in production on SQLite is fine.
		{"database", OK, []string{"SQLite"}},
		{"lease", Fail, []string{"no primary holds the lease", "epoch 3", "start a primary"}},
		{"heartbeats", Warn, []string{"worker 2 on h1 (pid 44) last seen 1m0s ago"}},
		{"whatsapp", Warn, []string{"run app pair", "sandbox driver sends nothing"}},
	} {
		if c[tc.name].Status != tc.status {
			t.Errorf("%s: %s, want %s", tc.name, c[tc.name].Status, tc.status)
		}
		for _, s := range tc.says {
			if !strings.Contains(c[tc.name].Message, s) {
				t.Errorf("%s: %q does not say %q", tc.name, c[tc.name].Message, s)
			}
		}
	}
	if strings.Contains(c["heartbeats"].Message, "worker 3") {
		t.Errorf("a worker that stopped cleanly is not late: %s", c["heartbeats"].Message)
	}
	if r.Status != Fail || r.Failed != 1 {
		t.Errorf("report %s with %d failed, want fail with 1 (the lease)", r.Status, r.Failed)
	}
}

// MONGO_URI naming a FerretDB server in production is named: it is not
// MongoDB (no transactions, lost concurrent updates); and a server that
// is not a replica set is enough for one machine only.
func TestFerretDBInProductionIsNamed(t *testing.T) {
	db := testdb.StartMongo(t)
	cfg, st := connect(t, db, nil) // APP_ENV=production
	r := runDoctor(t, &Doctor{Cfg: cfg, Store: st, Host: "h1"})
	c := byName(r)["database"]
	for _, s := range []string{"FerretDB", "APP_ENV=production", "use MongoDB", "several machines need a replica set"} {
		if c.Status != Warn || !strings.Contains(c.Message, s) {
			t.Errorf("database: %s %q; want a warning saying %q", c.Status, c.Message, s)
		}
	}
}

func TestStoppedDatabase(t *testing.T) {
	db := testdb.StartMongo(t)
	cfg, st := connect(t, db, nil)
	db.Stop()
	start := time.Now()
	r := runDoctor(t, &Doctor{Cfg: cfg, Store: st, Host: "h1"})
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("the doctor took %s with the database down", took)
	}
	c := byName(r)["database"]
	if c.Status != Fail || !strings.Contains(c.Message, "does not answer") || !strings.Contains(c.Message, "check MONGO_URI") {
		t.Errorf("database check: %s %q; want a fail saying the server does not answer and what to check", c.Status, c.Message)
	}
	for _, name := range []string{"lease", "heartbeats", "whatsapp", "clock", "connections"} {
		if s := byName(r)[name].Status; s != Skip {
			t.Errorf("%s: %s, want skip while the database is down", name, s)
		}
	}
}

// A store that could not be opened (app doctor does not create a missing
// SQLite file) fails the database check with the reason, and the checks
// that need it are skipped.
func TestUnopenedStore(t *testing.T) {
	cfg := config.Config{StateDir: "/nonexistent", ClusterWorkers: 1}
	r := runDoctor(t, &Doctor{Cfg: cfg, StoreErr: errors.New("no database at /nonexistent/app.db (APP_STATE_DIR=/nonexistent): start the suite first"), Host: "h1"})
	c := byName(r)
	if c["database"].Status != Fail || !strings.Contains(c["database"].Message, "/nonexistent/app.db cannot be opened: no database at") {
		t.Errorf("database: %s %q", c["database"].Status, c["database"].Message)
	}
	for _, name := range []string{"lease", "heartbeats", "whatsapp", "clock", "connections"} {
		if c[name].Status != Skip {
			t.Errorf("%s: %s, want skip", name, c[name].Status)
		}
	}
}

// The SQLite file judged from its directory's owner, the user the suite
// runs as: a file of the database it cannot write (left by a root-run
// command) fails and says how to give it back; a large WAL warns.
func TestSQLiteFiles(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "app.db")
	for f, size := range map[string]int{path: 4096, path + "-wal": 1 << 20, path + "-shm": 32768} {
		if err := os.WriteFile(f, make([]byte, size), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	info := store.ServerInfo{Kind: "SQLite", Version: "3.49.1", Path: path}
	c := sqliteCheck(info)
	if c.Status != OK || !strings.Contains(c.Message, "SQLite 3.49.1, "+path+": 4.0 KiB, WAL 1.0 MiB") || !strings.Contains(c.Message, "can write it") {
		t.Errorf("%s %q; want ok naming the version, the file, both sizes and that its user can write it", c.Status, c.Message)
	}
	// The WAL's files as root leaves them: someone else's, 0644.
	if os.Geteuid() == 0 {
		// Root may write anything: the directory is given to another user,
		// whom the files then do not belong to.
		if err := os.Chown(dir, 65534, 65534); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(path+"-wal", 0o644); err != nil {
			t.Fatal(err)
		}
	} else if err := os.Chmod(path+"-wal", 0o444); err != nil {
		t.Fatal(err)
	}
	c = sqliteCheck(info)
	if c.Status != Fail || !strings.Contains(c.Message, "cannot write ") || !strings.Contains(c.Message, path+"-wal (") || !strings.Contains(c.Message, "chown ") ||
		strings.Contains(c.Message, path+"-shm (") != (os.Geteuid() == 0) || c.Details["writable"] != false {
		t.Errorf("%s %q; want a fail naming the WAL it cannot write and chown", c.Status, c.Message)
	}
}

func TestSQLiteLargeWAL(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "app.db")
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(path + "-wal")
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(walWarn + 1); err != nil { // sparse: no disk used
		t.Fatal(err)
	}
	f.Close()
	c := sqliteCheck(store.ServerInfo{Kind: "SQLite", Version: "3", Path: path})
	if c.Status != Warn || !strings.Contains(c.Message, "WAL 256.0 MiB") || !strings.Contains(c.Message, "checkpoints every minute") {
		t.Errorf("%s %q; want a warning about the WAL's size", c.Status, c.Message)
	}
}

func TestHuman(t *testing.T) {
	for n, want := range map[int64]string{0: "0 B", 1023: "1023 B", 1024: "1.0 KiB", 1536: "1.5 KiB", 5 << 20: "5.0 MiB", 3 << 30: "3.0 GiB"} {
		if got := human(n); got != want {
			t.Errorf("human(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestConfigCheckNamesTheVariable(t *testing.T) {
	_, err := config.LoadFrom(func(k string) (string, bool) {
		if k == "MONGO_MAX_POOL_SIZE" {
			return "lots", true
		}
		return "", false
	})
	c := ConfigCheck(config.Config{}, "/etc/app/app.env", true, err)
	if c.Status != Fail || !strings.Contains(c.Message, `MONGO_MAX_POOL_SIZE="lots"`) || c.Details["variable"] != "MONGO_MAX_POOL_SIZE" {
		t.Errorf("%s %q %v", c.Status, c.Message, c.Details)
	}
}

// Units as systemd 252 shows them, judged.
func TestUnitChecks(t *testing.T) {
	show := `Id=app.socket
LoadState=loaded
ActiveState=active
SubState=running
Result=success
NRestarts=0
MainPID=0
Listen=[::]:8080 (Stream)

Id=app-primary.service
LoadState=loaded
ActiveState=inactive
SubState=dead
Result=success
NRestarts=0
MainPID=0
Listen=

Id=app-worker@1.service
LoadState=loaded
ActiveState=active
SubState=running
Result=success
NRestarts=2
MainPID=101
Listen=

Id=app-worker@2.service
LoadState=loaded
ActiveState=failed
SubState=failed
Result=watchdog
NRestarts=30
MainPID=0
Listen=
`
	var asked []string
	sc := systemd.Systemctl{Run: func(_ context.Context, args ...string) (string, error) { asked = args; return show, nil }}
	cfg := config.Config{ClusterWorkers: 2} // the embedded store: no unit of its own
	d := &Doctor{Cfg: cfg, Systemctl: &sc, ProcDir: t.TempDir()}
	checks := d.unitChecks(context.Background())
	if want := "app.socket app-primary.service app-worker@1.service app-worker@2.service"; !strings.HasSuffix(strings.Join(asked, " "), want) {
		t.Errorf("asked about %v, want the units ending %s", asked, want)
	}
	want := map[string]struct {
		status Status
		says   string
	}{
		"app.socket":           {OK, "active (running)"},
		"app-primary.service":  {Fail, "systemctl start app.target"},
		"app-worker@1.service": {Warn, "restarted it 2 times"},
		"app-worker@2.service": {Fail, "failed (watchdog): journalctl -u app-worker@2.service"},
	}
	if len(checks) != len(want) {
		t.Fatalf("%d checks, want %d", len(checks), len(want))
	}
	for _, c := range checks {
		w := want[c.Name]
		if c.Status != w.status || !strings.Contains(c.Message, w.says) {
			t.Errorf("%s: %s %q, want %s saying %q", c.Name, c.Status, c.Message, w.status, w.says)
		}
	}
	if d.primaryAdvice() != "app-primary is inactive: systemctl start app-primary (journalctl -u app-primary -n 20 says why it stopped)" {
		t.Errorf("advice: %s", d.primaryAdvice())
	}
}

// fakeProc writes a /proc with a socket listening on port held by the
// given pids (command names).
func fakeProc(t *testing.T, port int, holders map[int]string) string {
	t.Helper()
	dir := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(dir, "net"), 0o755))
	tcp6 := "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n" +
		fmt.Sprintf("   0: 00000000000000000000000000000000:%04X 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4242 1 0000000000000000 100 0 0 10 0\n", port) +
		fmt.Sprintf("   1: 00000000000000000000000000000000:%04X 00000000000000000000000000000000:0000 01 00000000:00000000 00:00000000 00000000     0        0 4343 1 0000000000000000 100 0 0 10 0\n", port)
	must(os.WriteFile(filepath.Join(dir, "net/tcp6"), []byte(tcp6), 0o644))
	must(os.WriteFile(filepath.Join(dir, "net/tcp"), []byte("  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"), 0o644))
	for pid, comm := range holders {
		fd := filepath.Join(dir, fmt.Sprint(pid), "fd")
		must(os.MkdirAll(fd, 0o755))
		must(os.Symlink("/dev/null", filepath.Join(fd, "0")))
		must(os.Symlink("socket:[4242]", filepath.Join(fd, "3")))
		must(os.WriteFile(filepath.Join(dir, fmt.Sprint(pid), "comm"), []byte(comm+"\n"), 0o644))
	}
	// A process with an established connection on the port holds no listener.
	fd := filepath.Join(dir, "77", "fd")
	must(os.MkdirAll(fd, 0o755))
	must(os.Symlink("socket:[4343]", filepath.Join(fd, "5")))
	return dir
}

func TestSocketOwner(t *testing.T) {
	for _, tc := range []struct {
		name    string
		active  string
		holders map[int]string
		status  Status
		says    string
	}{
		{"systemd holds it, workers share it", "active", map[int]string{1: "systemd", 101: "app"}, OK, "systemd (pid 1) holds it"},
		{"another program took the port", "failed", map[int]string{555: "perl"}, Fail, "port 8080 is held by pid 555 (perl): stop that program"},
		{"nothing listens", "failed", nil, Fail, "app.socket is failed (resources)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			proc := fakeProc(t, 8080, tc.holders)
			if tc.holders == nil {
				_ = os.Remove(filepath.Join(proc, "net/tcp6"))
			}
			d := &Doctor{Systemctl: &systemd.Systemctl{}, ProcDir: proc, units: map[string]systemd.Unit{
				"app.socket":           {"ActiveState": tc.active, "SubState": "x", "Result": "resources", "Listen": "[::]:8080 (Stream)"},
				"app-worker@1.service": {"ActiveState": "active", "MainPID": "101"},
			}}
			c := d.socketCheck(context.Background())
			if c.Status != tc.status || !strings.Contains(c.Message, tc.says) {
				t.Errorf("%s %q, want %s saying %q", c.Status, c.Message, tc.status, tc.says)
			}
		})
	}
}

func TestListenPort(t *testing.T) {
	for in, want := range map[string]int{"[::]:8080 (Stream)": 8080, "127.0.0.1:9000 (Stream)": 9000, "8080": 8080,
		"/run/app.sock (Stream)": 0, "[::]:53 (Datagram)": 0, "": 0} {
		if got := listenPort(in); got != want {
			t.Errorf("listenPort(%q) = %d, want %d", in, got, want)
		}
	}
}

func TestClockSkew(t *testing.T) {
	now := time.Now()
	c := store.ServerClock{Sent: now, Received: now.Add(200 * time.Millisecond), Server: now.Add(100*time.Millisecond + 3*time.Second)}
	if c.Skew() != 3*time.Second || c.Uncertainty() != 101*time.Millisecond {
		t.Errorf("skew %s ± %s, want 3s ± 101ms (half the round trip accounted)", c.Skew(), c.Uncertainty())
	}
}

func TestClockVerdict(t *testing.T) {
	for _, tc := range []struct {
		skew   time.Duration
		status Status
		says   string
	}{
		{300 * time.Millisecond, OK, "agrees"},
		{-2 * time.Second, Warn, "2s ahead of the database's"},
		{6 * time.Second, Fail, "6s behind the database's"},
	} {
		c := clockVerdict(tc.skew, 5*time.Millisecond, 15*time.Second)
		if c.Status != tc.status || !strings.Contains(c.Message, tc.says) {
			t.Errorf("skew %s: %s %q, want %s saying %q", tc.skew, c.Status, c.Message, tc.status, tc.says)
		}
	}
}
