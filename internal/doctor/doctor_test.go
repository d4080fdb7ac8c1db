package doctor

import (
	"context"
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
	db := testdb.Start(t)
	cfg, st := connect(t, db, map[string]string{"APP_ENV": "development", "CLUSTER_WORKERS": "2"})
	healthy(t, st, "h1")
	r := runDoctor(t, &Doctor{Cfg: cfg, Store: st, Host: "h1"})
	if r.Failed != 0 || r.Warnings != 0 || r.Status != OK {
		t.Errorf("a healthy suite: %d failed, %d warnings, status %s; want all ok", r.Failed, r.Warnings, r.Status)
	}
	c := byName(r)
	for name, want := range map[string]string{
		"units":       "not under systemd",
		"database":    "FerretDB",
		"connections": "150 in all",
		"clock":       "agrees",
		"lease":       "held by pid 42 on h1, epoch 1",
		"heartbeats":  "3 processes",
		"whatsapp":    "connected as 491701234567@s.whatsapp.net",
	} {
		if !strings.Contains(c[name].Message, want) {
			t.Errorf("%s: %q does not say %q", name, c[name].Message, want)
		}
	}
	if c["units"].Status != Skip || c["socket"].Status != Skip {
		t.Errorf("outside systemd the units and socket checks are skipped: %s, %s", c["units"].Status, c["socket"].Status)
	}
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
		{"database", Warn, []string{"APP_ENV=production", "set MONGO_URI"}},
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

func TestStoppedDatabase(t *testing.T) {
	db := testdb.Start(t)
	cfg, st := connect(t, db, nil)
	db.Stop()
	start := time.Now()
	r := runDoctor(t, &Doctor{Cfg: cfg, Store: st, Host: "h1"})
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("the doctor took %s with the database down", took)
	}
	c := byName(r)["database"]
	if c.Status != Fail || !strings.Contains(c.Message, "the embedded database on "+db.Socket+" does not answer") ||
		!strings.Contains(c.Message, "app db") {
		t.Errorf("database check: %s %q; want a fail naming the socket and how to start it", c.Status, c.Message)
	}
	for _, name := range []string{"lease", "heartbeats", "whatsapp", "clock", "connections"} {
		if s := byName(r)[name].Status; s != Skip {
			t.Errorf("%s: %s, want skip while the database is down", name, s)
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
	cfg := config.Config{ClusterWorkers: 2, MongoURI: "mongodb://db1/"}
	d := &Doctor{Cfg: cfg, Systemctl: &sc, ProcDir: t.TempDir()}
	checks := d.unitChecks(context.Background())
	if want := "app.socket app-primary.service app-worker@1.service app-worker@2.service"; !strings.HasSuffix(strings.Join(asked, " "), want) {
		t.Errorf("asked about %v, want the units ending %s (no app-db with MONGO_URI)", asked, want)
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
