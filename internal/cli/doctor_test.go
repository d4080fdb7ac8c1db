package cli

import (
	"context"
	"encoding/json"
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

// doctorEnv points the doctor at db, away from /etc/app/app.env and from
// the host's systemd.
func doctorEnv(t *testing.T, db *testdb.DB) {
	t.Helper()
	clearEnv(t)
	t.Setenv("APP_ENV_FILE", filepath.Join(t.TempDir(), "app.env"))
	for k, v := range db.Vars() {
		t.Setenv(k, v)
	}
	t.Setenv("APP_ENV", "development")
	t.Setenv("CLUSTER_WORKERS", "2")
	booted := systemdBooted
	systemdBooted = func() bool { return false }
	t.Cleanup(func() { systemdBooted = booted })
}

// seedHealthy records a held lease, heartbeats and a session, as a
// running suite does.
func seedHealthy(t *testing.T, db *testdb.DB) {
	t.Helper()
	st := db.Connect(nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	host, _ := os.Hostname()
	now := time.Now()
	if _, err := st.ClaimLease(ctx, store.Lease{Epoch: 1, Host: host, PID: 42, ExpiresAt: now.Add(time.Minute)}); err != nil {
		t.Fatal(err)
	}
	if err := st.WriteHeartbeat(ctx, store.Heartbeat{ID: host + "/primary", Role: "primary", Host: host, PID: 42, LastSeen: now, State: "holder"}); err != nil {
		t.Fatal(err)
	}
	if err := st.SaveSession(ctx, store.WASession{State: "unpaired", Driver: "whatsmeow"}); err != nil {
		t.Fatal(err)
	}
}

type doctorJSON struct {
	Status   string
	Failed   int
	Warnings int
	Checks   []struct{ Name, Status, Message string }
}

func parseDoctor(t *testing.T, out string) doctorJSON {
	t.Helper()
	var r doctorJSON
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("--json printed no JSON object (%v):\n%s", err, out)
	}
	return r
}

func (r doctorJSON) check(name string) (status, message string) {
	for _, c := range r.Checks {
		if c.Name == name {
			return c.Status, c.Message
		}
	}
	return "", ""
}

func TestDoctorHealthy(t *testing.T) {
	db := testdb.Start(t)
	doctorEnv(t, db)
	seedHealthy(t, db)

	code, out, errs := run("app", "doctor")
	t.Logf("app doctor:\n%s", out)
	if code != 0 || errs != "" {
		t.Errorf("exit %d, stderr %q; want 0 and nothing (warnings do not fail)", code, errs)
	}
	l := lines(out)
	if !strings.HasPrefix(l[len(l)-1], "healthy, with warnings: ") || !strings.HasPrefix(l[0], "ok    configuration") {
		t.Errorf("the lines do not start with the configuration and end with the verdict:\n%s", out)
	}
	for _, line := range l[:len(l)-1] {
		if f := strings.Fields(line); len(f) < 3 || !strings.Contains("ok warn fail skip", f[0]) {
			t.Errorf("not a check line: %q", line)
		}
	}

	code, out, _ = run("app", "doctor", "--json")
	r := parseDoctor(t, out)
	if code != 0 || r.Status != "warn" || r.Failed != 0 || r.Warnings != 1 {
		t.Errorf("--json: exit %d, status %s, %d failed, %d warnings; want 0, warn, 0, 1 (not paired)", code, r.Status, r.Failed, r.Warnings)
	}
	if st, msg := r.check("whatsapp"); st != "warn" || !strings.Contains(msg, "run app pair") {
		t.Errorf("whatsapp: %s %q", st, msg)
	}
	if st, msg := r.check("lease"); st != "ok" || !strings.Contains(msg, "held by pid 42") {
		t.Errorf("lease: %s %q", st, msg)
	}

	if code, _, _ := run("app", "doctor", "--strict"); code != 1 {
		t.Errorf("--strict with a warning: exit %d, want 1", code)
	}
}

func TestDoctorDatabaseDown(t *testing.T) {
	db := testdb.StartMongo(t)
	doctorEnv(t, db)
	db.Stop()
	code, out, _ := run("app", "doctor", "--json")
	r := parseDoctor(t, out)
	st, msg := r.check("database")
	if code != 1 || st != "fail" || !strings.Contains(msg, config.SocketURI(db.Socket)+" does not answer") {
		t.Errorf("exit %d, database %s %q; want 1 and a fail naming the server", code, st, msg)
	}
}

// Where no suite ever ran (the wrong APP_STATE_DIR), the doctor says so
// and creates nothing there.
func TestDoctorWithoutADatabase(t *testing.T) {
	clearEnv(t)
	t.Setenv("APP_ENV_FILE", filepath.Join(t.TempDir(), "app.env"))
	booted := systemdBooted
	systemdBooted = func() bool { return false }
	t.Cleanup(func() { systemdBooted = booted })
	state := os.Getenv("APP_STATE_DIR")
	code, out, _ := run("app", "doctor", "--json")
	r := parseDoctor(t, out)
	st, msg := r.check("database")
	if code != 1 || st != "fail" || !strings.Contains(msg, "no database at "+filepath.Join(state, "app.db")) || !strings.Contains(msg, "start the suite first") {
		t.Errorf("exit %d, database %s %q; want 1 and a fail saying there is no database and what to do", code, st, msg)
	}
	if entries, _ := os.ReadDir(state); len(entries) != 0 {
		t.Errorf("app doctor left %v in a state directory where no suite runs", entries)
	}
}

func TestDoctorInvalidConfig(t *testing.T) {
	db := testdb.Start(t)
	doctorEnv(t, db)
	// In the services' file, as an administrator would have it.
	if err := os.WriteFile(os.Getenv("APP_ENV_FILE"), []byte("MONGO_MAX_POOL_SIZE=lots\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errs := run("app", "doctor")
	if l := lines(out); code != 2 || errs != "" || len(l) != 2 || !strings.Contains(l[0], `fail  configuration  config: MONGO_MAX_POOL_SIZE="lots" is invalid`) {
		t.Errorf("exit %d, stderr %q, stdout:\n%s\nwant 2 and the one check naming the variable", code, errs, out)
	}
	code, out, _ = run("app", "doctor", "--json")
	if r := parseDoctor(t, out); code != 2 || len(r.Checks) != 1 || r.Status != "fail" {
		t.Errorf("--json: exit %d, %+v", code, r)
	}
}

// The rolling restart against a systemctl that restarts units by giving
// them new pids, or fails as told.
type fakeUnits struct {
	pids    map[string]int
	failing string // restarting it fails
	same    string // restarting it keeps the pid
	log     []string
}

func (f *fakeUnits) systemctl() systemd.Systemctl {
	return systemd.Systemctl{Run: func(_ context.Context, args ...string) (string, error) {
		switch args[0] {
		case "list-units":
			var b strings.Builder
			for _, u := range []string{"app-worker@2.service", "app-worker@1.service", "app-worker@3.service"} {
				state := "active   running"
				if f.pids[u] == 0 {
					state = "inactive dead"
				}
				fmt.Fprintf(&b, "%s loaded %s app: HTTP worker\n", u, state)
			}
			return b.String(), nil
		case "restart":
			f.log = append(f.log, args[1])
			if args[1] == f.failing {
				f.pids[args[1]] = 0
				return "", fmt.Errorf("systemctl restart %s: Job for %s failed", args[1], args[1])
			}
			if args[1] != f.same {
				f.pids[args[1]] += 1000
			}
			return "", nil
		case "show":
			u := args[len(args)-1]
			state := "ActiveState=active\nSubState=running\n"
			if f.pids[u] == 0 {
				state = "ActiveState=failed\nSubState=failed\n"
			}
			return fmt.Sprintf("%sMainPID=%d\n", state, f.pids[u]), nil
		}
		return "", fmt.Errorf("unexpected systemctl %v", args)
	}}
}

func TestRollingRestart(t *testing.T) {
	f := &fakeUnits{pids: map[string]int{"app-worker@1.service": 11, "app-worker@2.service": 12, "app-primary.service": 10}}
	var out strings.Builder
	r := &roller{sc: f.systemctl(), out: &out, timeout: time.Second, host: "h1",
		lease: func(context.Context) (store.Lease, error) {
			return store.Lease{Epoch: 7, Host: "h1", PID: f.pids["app-primary.service"], ExpiresAt: time.Now().Add(time.Minute)}, nil
		}, leaseWait: time.Second}
	if err := r.run(context.Background(), true); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	t.Logf("\n%s", out.String())
	if got := strings.Join(f.log, " "); got != "app-worker@1.service app-worker@2.service app-primary.service" {
		t.Errorf("restarted %s; want the running workers in order, then the primary, worker 3 (not running) left alone", got)
	}
	for _, want := range []string{"app-worker@1.service: pid 11 -> 1011, READY after", "app-worker@2.service: pid 12 -> 1012",
		"app-primary.service: holds the lease (epoch 7)", "Rolling restart done in"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output does not say %q", want)
		}
	}
}

func TestRollingRestartStopsAtTheFirstFailure(t *testing.T) {
	for _, tc := range []struct {
		name, failing, same, says string
	}{
		{"a worker does not come back", "app-worker@1.service", "", "app-worker@1.service did not come back"},
		{"a worker keeps its pid", "", "app-worker@1.service", "app-worker@1.service still runs as pid 11"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeUnits{pids: map[string]int{"app-worker@1.service": 11, "app-worker@2.service": 12}, failing: tc.failing, same: tc.same}
			var out strings.Builder
			err := (&roller{sc: f.systemctl(), out: &out, timeout: time.Second}).run(context.Background(), true)
			if err == nil || !strings.Contains(err.Error(), tc.says) || !strings.Contains(err.Error(), "1 workers after it were not restarted") {
				t.Errorf("error %v; want it to say %q and that worker 2 was left", err, tc.says)
			}
			if len(f.log) != 1 {
				t.Errorf("restarted %v after the first failed", f.log)
			}
		})
	}
}

func TestRestartRefusesABadConfig(t *testing.T) {
	clearEnv(t)
	file := filepath.Join(t.TempDir(), "app.env")
	if err := os.WriteFile(file, []byte("APP_LEASE_TTL=soon\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("APP_ENV_FILE", file)
	booted := systemdBooted
	systemdBooted = func() bool { return true }
	t.Cleanup(func() { systemdBooted = booted })
	ran := false
	mk := newSystemctl
	newSystemctl = func() systemd.Systemctl {
		return systemd.Systemctl{Run: func(context.Context, ...string) (string, error) { ran = true; return "", nil }}
	}
	t.Cleanup(func() { newSystemctl = mk })
	code, out, errs := run("app", "restart", "--rolling")
	if code != 2 || out != "" || !strings.Contains(errs, `APP_LEASE_TTL="soon"`) || !strings.Contains(errs, "nothing was restarted") || ran {
		t.Errorf("exit %d, stdout %q, stderr %q, systemctl ran: %v; want 2, one line naming the variable, nothing run", code, out, errs, ran)
	}
}

func TestDoctorAndRestartUsage(t *testing.T) {
	for _, tc := range []struct {
		args    []string
		mention string
	}{
		{[]string{"app", "doctor", "extra"}, `"extra"`},
		{[]string{"app", "doctor", "--yaml"}, "-yaml"},
		{[]string{"app", "restart"}, "only --rolling"},
		{[]string{"app", "restart", "--rolling", "now"}, `"now"`},
	} {
		code, out, errs := run(tc.args...)
		if code != 2 || out != "" || !strings.Contains(errs, tc.mention) {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want 2 and a line naming %s", tc.args, code, out, errs, tc.mention)
		}
	}
}
