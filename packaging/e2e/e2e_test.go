//go:build e2e

// Package e2e installs the built .deb into a Debian bookworm root file
// system, boots it with systemd-nspawn and checks what a user of the
// installed package would: `make e2e` (root, debootstrap and
// systemd-nspawn needed; .ci/run installs them).
package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

// container is a booted nspawn machine.
type container struct {
	leader int // the container's systemd, for nsenter
}

func run(t *testing.T, timeout time.Duration, name string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	return string(out), err
}

// sh runs a shell command inside the container.
func (c *container) sh(t *testing.T, timeout time.Duration, script string) (string, error) {
	t.Helper()
	return run(t, timeout, "nsenter", "-t", strconv.Itoa(c.leader), "-a", "/bin/sh", "-c", script)
}

func (c *container) must(t *testing.T, timeout time.Duration, script string) string {
	t.Helper()
	out, err := c.sh(t, timeout, script)
	if err != nil {
		t.Fatalf("in the container: %s: %v\n%s", script, err, out)
	}
	return out
}

// eventually polls script until check accepts its output.
func (c *container) eventually(t *testing.T, what string, within time.Duration, script string, check func(string) bool) string {
	t.Helper()
	var out string
	for deadline := time.Now().Add(within); time.Now().Before(deadline); time.Sleep(500 * time.Millisecond) {
		out, _ = c.sh(t, 30*time.Second, script)
		if check(out) {
			return out
		}
	}
	diag, _ := c.sh(t, 30*time.Second, "systemctl list-units --all --no-pager 'app*' 'squatter*'; journalctl -n 40 --no-pager -o short-precise")
	t.Fatalf("%s: not within %s; last output of %q:\n%s\n--- units and journal:\n%s", what, within, script, out, diag)
	return ""
}

// mirror is the Debian mirror this machine's apt uses.
func mirror(t *testing.T) string {
	t.Helper()
	for _, f := range []string{"/etc/apt/sources.list.d/debian.sources", "/etc/apt/sources.list"} {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(bytes.NewReader(b))
		for sc.Scan() {
			line := strings.TrimSpace(sc.Text())
			if u, ok := strings.CutPrefix(line, "URIs:"); ok && !strings.Contains(u, "security") {
				return strings.Fields(u)[0]
			}
			if f := strings.Fields(line); len(f) >= 3 && f[0] == "deb" && !strings.Contains(f[1], "security") {
				return f[1]
			}
		}
	}
	t.Fatal("no Debian mirror in this machine's apt sources")
	return ""
}

// rootfs is a bookworm minbase tree, made once and cached in .cache/.
func rootfs(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs("../../.cache/bookworm")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "usr/lib/systemd/systemd")); err == nil {
		return dir
	}
	_ = os.RemoveAll(dir)
	tmp := dir + ".tmp"
	_ = os.RemoveAll(tmp)
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Logf("debootstrap bookworm into %s (cached for later runs)", dir)
	out, err := run(t, 15*time.Minute, "debootstrap", "--variant=minbase",
		"--include=systemd,systemd-sysv,dbus,curl,procps,iproute2", "bookworm", tmp, mirror(t))
	if err != nil {
		t.Fatalf("debootstrap: %v\n%s", err, out)
	}
	if err := os.Rename(tmp, dir); err != nil {
		t.Fatal(err)
	}
	return dir
}

func boot(t *testing.T, root, dist string) *container {
	t.Helper()
	cmd := exec.Command("systemd-nspawn", "-q", "-D", root, "--boot", "--register=no", "--keep-unit",
		"--console=passive", "--private-network", "--volatile=overlay", "--bind-ro="+dist+":/mnt/dist",
		"--machine=app-e2e")
	var console bytes.Buffer
	cmd.Stdout, cmd.Stderr = &console, &console
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	c := &container{}
	t.Cleanup(func() {
		if c.leader != 0 {
			_, _ = c.sh(t, 10*time.Second, "systemctl poweroff")
		}
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	for deadline := time.Now().Add(60 * time.Second); c.leader == 0; time.Sleep(200 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the container's systemd did not appear; nspawn said:\n%s", console.String())
		}
		out, err := exec.Command("pgrep", "-P", strconv.Itoa(cmd.Process.Pid), "-x", "systemd").Output()
		if err == nil {
			c.leader, _ = strconv.Atoi(strings.TrimSpace(strings.Split(string(out), "\n")[0]))
		}
	}
	c.eventually(t, "the container booted", 90*time.Second, "systemctl is-system-running", func(s string) bool {
		s = strings.TrimSpace(s)
		return s == "running" || s == "degraded"
	})
	return c
}

// loadClient is the keep-alive load client make e2e builds
// (packaging/e2e/loadclient, static).
func loadClient(t *testing.T) string {
	t.Helper()
	p := os.Getenv("APP_E2E_LOADCLIENT")
	if p == "" {
		t.Fatal("APP_E2E_LOADCLIENT: the load client (make e2e builds it)")
	}
	return p
}

// install copies the host's file src to dst in the container, executable.
func (c *container) install(t *testing.T, src, dst string) {
	t.Helper()
	f, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "nsenter", "-t", strconv.Itoa(c.leader), "-a", "/bin/sh", "-c", `cat > "$0" && chmod 755 "$0"`, dst)
	cmd.Stdin = f
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("copying %s into the container: %v\n%s", src, err, out)
	}
}

// activePID waits until unit is active (READY reached) and returns its main pid.
func (c *container) activePID(t *testing.T, unit string) string {
	t.Helper()
	out := c.eventually(t, unit+" active", 60*time.Second, "systemctl show -P ActiveState "+unit+"; systemctl show -P MainPID "+unit, func(s string) bool {
		f := strings.Fields(s)
		return len(f) == 2 && f[0] == "active" && f[1] != "0"
	})
	return strings.Fields(out)[1]
}

var workerHeader = regexp.MustCompile(`(?mi)^x-app-worker: *(\S+)`)

func TestInstalledPackage(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for systemd-nspawn")
	}
	for _, tool := range []string{"debootstrap", "systemd-nspawn", "nsenter"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s (apt-get install debootstrap systemd-container)", tool)
		}
	}
	deb := os.Getenv("APP_E2E_DEB")
	if deb == "" {
		t.Fatal("APP_E2E_DEB: the .deb to test (make e2e sets it)")
	}
	deb, _ = filepath.Abs(deb)
	c := boot(t, rootfs(t), filepath.Dir(deb))
	n := runtime.NumCPU()

	// Install with apt (dependencies and maintainer scripts run for real);
	// postinst enables and starts app.target.
	out := c.must(t, 3*time.Minute, "apt-get install -y /mnt/dist/"+filepath.Base(deb)+" 2>&1")
	t.Logf("installed:\n%s", lastLines(out, 3))

	units := []string{"app.socket", "app-primary.service"}
	for i := 1; i <= n; i++ {
		units = append(units, fmt.Sprintf("app-worker@%d.service", i))
	}
	c.eventually(t, "every unit active (READY reached)", 60*time.Second, "systemctl is-active "+strings.Join(units, " "), func(s string) bool {
		return strings.Count(s, "active\n") == len(units) && !strings.Contains(s, "inactive") && !strings.Contains(s, "activating")
	})
	// stateOwned lists what in the state directory is not the app user's
	// (nothing, when all is well: a file root left there would stop the
	// services from writing the database).
	stateOwned := func(t *testing.T, after string) {
		t.Helper()
		if out := c.must(t, 10*time.Second, "find /var/lib/app ! -user app -printf '%p %u:%g %m\\n'"); strings.TrimSpace(out) != "" {
			t.Errorf("after %s, the state directory holds files that are not the app user's:\n%s", after, out)
		}
	}

	t.Run("the embedded store is one SQLite file in /var/lib/app, the app user's", func(t *testing.T) {
		out := c.must(t, 10*time.Second, "stat -c '%U:%G %a' /var/lib/app /var/lib/app/app.db; head -c 15 /var/lib/app/app.db; echo; ls /var/lib/app")
		t.Logf("/var/lib/app:\n%s", out)
		l := strings.Split(out, "\n")
		if len(l) < 3 || l[0] != "app:app 750" || !strings.HasPrefix(l[1], "app:app ") || l[2] != "SQLite format 3" {
			t.Errorf("the state directory and app.db: %q; want both the app user's (the directory 0750) and app.db a SQLite file", out)
		}
		if strings.Contains(out, "mongodb.sock") || regexp.MustCompile(`(?m)^db$`).MatchString(out) {
			t.Errorf("files of the embedded database of earlier versions in a fresh install:\n%s", out)
		}
		stateOwned(t, "the install")
	})

	t.Run("every worker answers through the socket", func(t *testing.T) {
		out := c.must(t, 60*time.Second, `seq 400 | xargs -P 8 -I{} curl -s -o /dev/null -D - http://127.0.0.1:8080/healthz`)
		seen := map[string]int{}
		for _, m := range workerHeader.FindAllStringSubmatch(out, -1) {
			seen[m[1]]++
		}
		t.Logf("answers per worker: %v", seen)
		for i := 1; i <= n; i++ {
			if seen[strconv.Itoa(i)] == 0 {
				t.Errorf("worker %d answered none of 400 requests (%v)", i, seen)
			}
		}
	})

	show := func(t *testing.T, prop, unit string) string {
		t.Helper()
		return strings.TrimSpace(c.must(t, 10*time.Second, "systemctl show -P "+prop+" "+unit))
	}

	t.Run("the primary runs the whatsmeow driver and reports why it is offline", func(t *testing.T) {
		// The container has no network: the driver cannot reach WhatsApp,
		// says so in the session state, and keeps retrying.
		// An administrator's key, made from a root shell as the README says:
		// app keys finds the services' database through /etc/app/app.env
		// and /var/lib/app, and leaves its files the app user's.
		key := strings.TrimSpace(c.must(t, 30*time.Second, "app keys create --name e2e --scopes session 2>/dev/null"))
		if !strings.HasPrefix(key, "app_") {
			t.Fatalf("app keys create printed %q", key)
		}
		stateOwned(t, "app keys create as root")
		if out := c.must(t, 10*time.Second, "curl -s -o /dev/null -w '%{http_code}' 127.0.0.1:8080/v1/session"); out != "401" {
			t.Errorf("GET /v1/session without a key: %s, want 401", out)
		}
		out := c.eventually(t, "a session state from the primary", 60*time.Second, "curl -s -H 'Authorization: Bearer "+key+"' 127.0.0.1:8080/v1/session", func(s string) bool {
			return strings.Contains(s, `"driver":"whatsmeow"`) && strings.Contains(s, `"reason":`)
		})
		t.Logf("GET /v1/session: %s", strings.TrimSpace(out))
		if !regexp.MustCompile(`"state":"(unpaired|disconnected)"`).MatchString(out) {
			t.Errorf("session %s; want unpaired or disconnected with the dial error as reason", out)
		}
		if st := show(t, "ActiveState", "app-primary.service"); st != "active" {
			t.Errorf("app-primary is %s while WhatsApp cannot be reached", st)
		}
	})

	t.Run("the messages API queues a message and schedules one", func(t *testing.T) {
		key := strings.TrimSpace(c.must(t, 30*time.Second, "app keys create --name e2e-api --scopes messages:read,messages:write 2>/dev/null"))
		auth := "-H 'Authorization: Bearer " + key + "' -H 'Content-Type: application/json'"
		out := c.must(t, 30*time.Second, "curl -s "+auth+` -d '{"to":"+491701234567","text":"hello from the package"}' 127.0.0.1:8080/v1/messages`)
		id := regexp.MustCompile(`"id":"(msg_[^"]+)"`).FindStringSubmatch(out)
		if id == nil || !strings.Contains(out, `"status":"queued"`) {
			t.Fatalf("POST /v1/messages: %s", out)
		}
		// Not paired (no network here): it stays queued, and says so.
		out = c.must(t, 30*time.Second, "curl -s "+auth+" 127.0.0.1:8080/v1/messages/"+id[1])
		if !strings.Contains(out, `"status":"queued"`) {
			t.Errorf("GET /v1/messages/%s: %s", id[1], out)
		}
		out = c.must(t, 30*time.Second, "curl -s "+auth+` -d '{"cron":"30 2 * * *","timezone":"Europe/Berlin","message":{"to":"+491701234567","text":"daily"}}' 127.0.0.1:8080/v1/schedules`)
		if !strings.Contains(out, `"kind":"cron"`) || !strings.Contains(out, `"next_runs":[`) {
			t.Errorf("POST /v1/schedules: %s", out)
		}
		out = c.must(t, 30*time.Second, "curl -s -o /dev/null -w '%{http_code}' "+auth+` -d '{"to":"nobody","text":"x"}' 127.0.0.1:8080/v1/messages`)
		if out != "400" {
			t.Errorf("a bad recipient: %s, want 400", out)
		}
	})

	t.Run("webhooks: the installed primary delivers and refuses a name that resolves to loopback", func(t *testing.T) {
		key := strings.TrimSpace(c.must(t, 30*time.Second, "app keys create --name e2e-hooks --scopes admin 2>/dev/null"))
		auth := "-H 'Authorization: Bearer " + key + "' -H 'Content-Type: application/json'"
		// A literal loopback address is refused when subscribing; a name is
		// checked at each connection, after resolution.
		out := c.must(t, 30*time.Second, "curl -s -o /dev/null -w '%{http_code}' "+auth+` -d '{"url":"http://127.0.0.1:9/hook"}' 127.0.0.1:8080/v1/webhooks`)
		if out != "400" {
			t.Errorf("subscribing http://127.0.0.1:9/hook: %s, want 400", out)
		}
		c.must(t, 10*time.Second, "echo '127.0.0.1 receiver.test' >> /etc/hosts")
		out = c.must(t, 30*time.Second, "curl -s "+auth+` -d '{"url":"http://receiver.test:9/hook","types":["schedule.run"]}' 127.0.0.1:8080/v1/webhooks`)
		id := regexp.MustCompile(`"id":"(wh_[^"]+)"`).FindStringSubmatch(out)
		if id == nil || !strings.Contains(out, `"secret":"whsec_`) {
			t.Fatalf("POST /v1/webhooks: %s", out)
		}
		// An event: a one-shot schedule due in 2 seconds runs.
		due := time.Now().Add(2 * time.Second).UTC().Format(time.RFC3339)
		c.must(t, 30*time.Second, "curl -s "+auth+` -d '{"send_at":"`+due+`","message":{"to":"+491701234567","text":"hook"}}' 127.0.0.1:8080/v1/schedules`)
		c.eventually(t, "the delivery refused at dial time", 60*time.Second, "curl -s "+auth+" 127.0.0.1:8080/v1/webhooks/"+id[1]+"/deliveries",
			func(s string) bool {
				return strings.Contains(s, `"type":"schedule.run"`) && strings.Contains(s, `"status":"retrying"`) &&
					strings.Contains(s, "127.0.0.1 is a loopback")
			})
		c.must(t, 30*time.Second, "curl -s -X DELETE "+auth+" 127.0.0.1:8080/v1/webhooks/"+id[1])
	})

	t.Run("metrics: one scrape of the primary has every worker", func(t *testing.T) {
		out := c.eventually(t, "both workers in the primary's metrics", 30*time.Second, "curl -s 127.0.0.1:9464/metrics", func(s string) bool {
			return strings.Contains(s, `go_goroutines{worker="1"}`) && strings.Contains(s, `go_goroutines{worker="2"}`) &&
				strings.Contains(s, "\napp_primary_lease_holder 1\n")
		})
		if !strings.Contains(out, `app_http_requests_total{code="200",method="GET",route="/healthz",worker="`) {
			t.Errorf("no /healthz requests counted:\n%s", lastLines(out, 20))
		}
		// What the packaged alerting rules read: the database reached, and
		// every process alive.
		c.eventually(t, "the database and the processes in the primary's metrics", 30*time.Second, "curl -s 127.0.0.1:9464/metrics", func(s string) bool {
			return strings.Contains(s, "\napp_database_up 1\n") && strings.Contains(s, `app_cluster_processes{role="worker",state="alive"} 2`) &&
				strings.Contains(s, `app_cluster_processes{role="worker",state="stale"} 0`)
		})
		if out, err := c.sh(t, 10*time.Second, "grep -c 'alert: App' /usr/share/app/prometheus/alerts.yml"); err != nil || strings.TrimSpace(out) == "0" {
			t.Errorf("the alerting rules are not installed: %v %q", err, out)
		}
	})

	t.Run("the web console is served with its assets and a strict policy", func(t *testing.T) {
		head, err := c.sh(t, 10*time.Second, "curl -s -D - -o /tmp/console.html 127.0.0.1:8080/")
		if err != nil || !strings.HasPrefix(head, "HTTP/1.1 200") || !strings.Contains(head, "Content-Security-Policy: default-src 'self'; script-src 'self'") {
			t.Fatalf("GET / on the installed suite: %v\n%s", err, head)
		}
		js, err := c.sh(t, 10*time.Second, `curl -s -o /dev/null -w '%{http_code} %{content_type}' "127.0.0.1:8080$(grep -o '/console/app.js?v=[0-9a-f]*' /tmp/console.html)"`)
		if err != nil || !strings.HasPrefix(js, "200 text/javascript") {
			t.Errorf("the page's script, as it links it: %v %q", err, js)
		}
	})

	// doctorReport runs app doctor --json and returns its exit status and report.
	type doctorCheck struct{ Name, Status, Message string }
	doctorReport := func(t *testing.T) (string, map[string]doctorCheck) {
		t.Helper()
		out, _ := c.sh(t, 60*time.Second, "app doctor --json 2>&1; echo exit=$?")
		body, code, _ := strings.Cut(out, "\nexit=")
		var r struct{ Checks []doctorCheck }
		if err := json.Unmarshal([]byte(body), &r); err != nil {
			t.Fatalf("app doctor --json printed no JSON object (%v):\n%s", err, out)
		}
		checks := map[string]doctorCheck{}
		for _, ch := range r.Checks {
			checks[ch.Name] = ch
		}
		return strings.TrimSpace(code), checks
	}

	t.Run("app doctor: the installed suite is healthy", func(t *testing.T) {
		out, _ := c.sh(t, 60*time.Second, "app doctor; echo exit=$?")
		t.Logf("app doctor:\n%s", out)
		if !strings.HasSuffix(strings.TrimSpace(out), "exit=0") {
			t.Errorf("app doctor did not exit 0")
		}
		code, checks := doctorReport(t)
		if code != "0" {
			t.Errorf("app doctor --json: exit %s, want 0", code)
		}
		// One machine in production on SQLite is fine: no warning; the
		// connection budget and the clock are MongoDB's questions.
		want := map[string]string{"configuration": "ok", "app.socket": "ok", "app-primary.service": "ok",
			"socket": "ok", "database": "ok", "connections": "skip", "clock": "skip", "lease": "ok", "heartbeats": "ok", "whatsapp": "warn"}
		for i := 1; i <= n; i++ {
			want[fmt.Sprintf("app-worker@%d.service", i)] = "ok"
		}
		for name, status := range want {
			if checks[name].Status != status {
				t.Errorf("%s: %s %q, want %s", name, checks[name].Status, checks[name].Message, status)
			}
		}
		// Who holds the socket, from /proc: systemd, shared by the workers.
		if m := checks["socket"].Message; !strings.Contains(m, "systemd (pid 1) holds it") {
			t.Errorf("socket: %q", m)
		}
		if m := checks["database"].Message; !strings.Contains(m, "SQLite 3.") || !strings.Contains(m, "/var/lib/app/app.db: ") ||
			!strings.Contains(m, ", WAL ") || !strings.Contains(m, "user app (the owner of /var/lib/app) can write it") {
			t.Errorf("database: %q; want SQLite's version, the file, its and the WAL's size, and that app can write it", m)
		}
		if _, ok := checks["app-db.service"]; ok {
			t.Errorf("app doctor still checks app-db.service")
		}
		stateOwned(t, "app doctor as root")
		if m := checks["whatsapp"].Message; !strings.Contains(m, "run app pair") {
			t.Errorf("whatsapp: %q; want the advice to pair", m)
		}
	})

	t.Run("app restart --rolling under load fails no request", func(t *testing.T) {
		key := strings.TrimSpace(c.must(t, 30*time.Second, "app keys create --name e2e-rolling --scopes messages:read 2>/dev/null"))
		pids := func() map[string]string {
			m := map[string]string{"app-primary.service": c.activePID(t, "app-primary.service")}
			for i := 1; i <= n; i++ {
				u := fmt.Sprintf("app-worker@%d.service", i)
				m[u] = c.activePID(t, u)
			}
			return m
		}
		before := pids()
		c.install(t, loadClient(t), "/usr/local/bin/e2e-loadclient")
		// Loopback only, each client bounded by a count and stopped once
		// the restart is over. Keep-alive clients (Go's http.Transport, as
		// every modern client keeps connections): three connections on
		// /healthz, one on an authenticated route paced under the key's rate
		// limit (APP_RATE_LIMIT=20/s). One curl per request on /healthz too:
		// a connection accepted just before its worker stops.
		out := c.must(t, 3*time.Minute, `
			rm -f /tmp/stop /tmp/load.*
			e2e-loadclient -name healthz -conns 3 -pace 5ms -max 40000 http://127.0.0.1:8080/healthz > /tmp/load.keepalive 2>/tmp/load.errors &
			e2e-loadclient -name api -conns 1 -pace 150ms -max 1000 -auth 'Bearer `+key+`' 'http://127.0.0.1:8080/v1/messages?limit=1' > /tmp/load.api 2>>/tmp/load.errors &
			(i=0; while [ ! -e /tmp/stop ] && [ $i -lt 5000 ]; do
				curl -s -o /dev/null -w 'fresh %{http_code} %{exitcode}\n' --max-time 10 http://127.0.0.1:8080/healthz; i=$((i+1))
			done | sort | uniq -c > /tmp/load.fresh) &
			sleep 1
			for k in 1 2; do app restart --rolling; echo "restart exit $?"; done > /tmp/restart.out 2>&1
			app restart --rolling --primary >> /tmp/restart.out 2>&1; echo "restart exit $?" >> /tmp/restart.out
			sleep 1; touch /tmp/stop; wait
			cat /tmp/restart.out /tmp/load.keepalive /tmp/load.api /tmp/load.fresh; head -5 /tmp/load.errors`)
		t.Logf("app restart --rolling twice, then with --primary; the answers (count, route, status, outcome):\n%s", out)
		if strings.Count(out, "restart exit 0") != 3 {
			t.Errorf("an app restart --rolling failed")
		}
		sent, reused, failed := map[string]int{}, map[string]int{}, 0
		for _, line := range strings.Split(out, "\n") {
			f := strings.Fields(line)
			if len(f) < 3 || (f[1] != "healthz" && f[1] != "api" && f[1] != "fresh") {
				continue
			}
			cnt, _ := strconv.Atoi(f[0])
			if len(f) == 3 && f[2] == "reused" {
				reused[f[1]] += cnt
				continue
			}
			sent[f[1]] += cnt
			// The outcome: curl's exit status, or the load client's "0",
			// "retried" (sent again on a new connection) or "error".
			if len(f) != 4 || f[2] != "200" || f[3] != "0" {
				failed += cnt
			}
		}
		t.Logf("requests sent: %v (on a reused connection: %v), failed or retried: %d", sent, reused, failed)
		if failed != 0 || sent["healthz"] < 1000 || sent["api"] < 5 || sent["fresh"] < 100 {
			t.Errorf("%d of %v requests failed; want 0 of at least 1000 to /healthz kept alive, 100 on fresh connections and 5 to the API", failed, sent)
		}
		if reused["healthz"] < sent["healthz"]/2 {
			t.Errorf("%d of %d requests to /healthz came on a reused connection: the client did not keep them alive", reused["healthz"], sent["healthz"])
		}
		after := pids()
		for u, pid := range before {
			if after[u] == pid {
				t.Errorf("%s still runs as pid %s", u, pid)
			}
		}
	})

	t.Run("app doctor: a stopped primary fails and names the lease", func(t *testing.T) {
		c.must(t, 60*time.Second, "systemctl stop app-primary.service")
		code, checks := doctorReport(t)
		lease := checks["lease"]
		t.Logf("lease: %s %s", lease.Status, lease.Message)
		if code != "1" || lease.Status != "fail" || !strings.Contains(lease.Message, "no primary holds the lease") ||
			!strings.Contains(lease.Message, "systemctl start app-primary") {
			t.Errorf("exit %s, lease %s %q; want 1 and a failed lease check saying to start app-primary", code, lease.Status, lease.Message)
		}
		if st := checks["app-primary.service"].Status; st != "fail" {
			t.Errorf("app-primary.service: %s, want fail", st)
		}
		c.must(t, 60*time.Second, "systemctl start app-primary.service")
		c.eventually(t, "the lease held again", 60*time.Second, "app doctor --json", func(s string) bool {
			return strings.Contains(s, `"message": "held by pid`)
		})
	})

	t.Run("SIGKILL of a worker under load refuses nothing", func(t *testing.T) {
		pid := c.activePID(t, "app-worker@1.service")
		out := c.must(t, 90*time.Second, `
			(seq 600 | xargs -P 4 -I{} curl -s -o /dev/null -w '%{http_code} %{exitcode}\n' --max-time 10 http://127.0.0.1:8080/healthz > /tmp/codes) &
			sleep 0.3; kill -KILL `+pid+`; wait; sort /tmp/codes | uniq -c`)
		t.Logf("status and curl exit code counts:\n%s", out)
		ok, refused := 0, 0
		for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
			f := strings.Fields(line)
			if len(f) != 3 {
				continue
			}
			cnt, _ := strconv.Atoi(f[0])
			if f[1] == "200" {
				ok += cnt
			}
			if f[2] == "7" { // curl: failed to connect
				refused += cnt
			}
		}
		if refused != 0 {
			t.Errorf("%d connections were refused", refused)
		}
		// A request the killed worker had already accepted is reset with it:
		// at most one per client.
		if ok < 600-4 {
			t.Errorf("%d of 600 answered 200, want all but at most the 4 in flight on the killed worker", ok)
		}
		c.eventually(t, "worker 1 restarted", 30*time.Second, "systemctl show -P MainPID app-worker@1.service; systemctl is-active app-worker@1.service", func(s string) bool {
			f := strings.Fields(s)
			return len(f) == 2 && f[0] != pid && f[0] != "0" && f[1] == "active"
		})
	})

	t.Run("SIGKILL of every worker: the next request waits and is answered", func(t *testing.T) {
		out := c.must(t, 60*time.Second, `systemctl kill -s KILL 'app-worker@*.service'; curl -s -o /dev/null -w '%{http_code}' --max-time 30 http://127.0.0.1:8080/healthz`)
		if out != "200" {
			t.Errorf("request after killing every worker: %q, want 200", out)
		}
	})

	t.Run("a hung worker is killed by the watchdog and restarted", func(t *testing.T) {
		pid := c.activePID(t, "app-worker@1.service")
		c.must(t, 10*time.Second, "kill -STOP "+pid)
		c.eventually(t, "worker 1 replaced after the watchdog fired", 60*time.Second, "systemctl show -P MainPID app-worker@1.service; systemctl is-active app-worker@1.service", func(s string) bool {
			f := strings.Fields(s)
			return len(f) == 2 && f[0] != pid && f[0] != "0" && f[1] == "active"
		})
		out := c.must(t, 10*time.Second, `journalctl -u app-worker@1.service -o cat | grep -F "Failed with result 'watchdog'" || true`)
		t.Logf("journal: %s", strings.TrimSpace(out))
		if out == "" {
			t.Errorf("no journal line saying the watchdog killed worker 1")
		}
	})

	t.Run("journal lines of every worker carry its number and pid", func(t *testing.T) {
		for i := 1; i <= n; i++ {
			out := c.must(t, 10*time.Second, fmt.Sprintf(`journalctl -u 'app-worker@*' -o verbose WORKER=%d | grep -c '^ *PID='`, i))
			if cnt, _ := strconv.Atoi(strings.TrimSpace(out)); cnt == 0 {
				t.Errorf("no journal entry with WORKER=%d and PID", i)
			}
			out = c.must(t, 10*time.Second, fmt.Sprintf(`journalctl -u 'app-worker@*' -o cat | grep -c 'worker %d started (pid '`, i))
			if cnt, _ := strconv.Atoi(strings.TrimSpace(out)); cnt == 0 {
				t.Errorf("no 'worker %d started (pid N)' line", i)
			}
		}
	})

	t.Run("CLUSTER_WORKERS=1, daemon-reload and restart: one worker", func(t *testing.T) {
		c.must(t, 60*time.Second, `echo CLUSTER_WORKERS=1 >> /etc/app/app.env && systemctl daemon-reload && systemctl restart app.target`)
		out := c.eventually(t, "only worker 1 runs", 60*time.Second, `systemctl list-units --state=active --plain --no-legend 'app-worker@*' | awk '{print $1}'`, func(s string) bool {
			return strings.TrimSpace(s) == "app-worker@1.service"
		})
		t.Logf("active workers: %s", strings.TrimSpace(out))
		c.must(t, 60*time.Second, `sed -i '/^CLUSTER_WORKERS=1$/d' /etc/app/app.env && systemctl daemon-reload && systemctl restart app.target`)
	})

	t.Run("a bad value fails once with one line and no restart loop", func(t *testing.T) {
		c.must(t, 60*time.Second, `echo MONGO_MAX_POOL_SIZE=lots >> /etc/app/app.env && systemctl restart app-primary.service; true`)
		c.eventually(t, "app-primary failed", 30*time.Second, "systemctl is-failed app-primary.service", func(s string) bool {
			return strings.TrimSpace(s) == "failed"
		})
		// "failed" is systemd's decision not to restart: a unit it would
		// restart shows "activating (auto-restart)" meanwhile instead.
		restarts := strings.TrimSpace(c.must(t, 10*time.Second, "systemctl show -P NRestarts app-primary.service"))
		line := c.must(t, 10*time.Second, `journalctl -u app-primary.service -o cat | grep -F 'MONGO_MAX_POOL_SIZE="lots"' | tail -1`)
		t.Logf("journal: %s (restarts: %s)", strings.TrimSpace(line), restarts)
		if restarts != "0" || !strings.Contains(line, "is invalid") {
			t.Errorf("after a bad value: %s restarts, journal line %q; want 0 restarts and the one-line error", restarts, line)
		}
		c.must(t, 60*time.Second, `sed -i '/^MONGO_MAX_POOL_SIZE=lots$/d' /etc/app/app.env && systemctl reset-failed app-primary.service && systemctl start app-primary.service`)
	})

	// Faults: each says what is wrong in one journal line, and the suite
	// recovers by itself once the cause is gone.
	readyz := func(t *testing.T) map[string]int {
		t.Helper()
		out := c.must(t, 60*time.Second, `seq 20 | xargs -P 4 -I{} curl -s -o /dev/null -w '%{http_code}\n' --max-time 5 http://127.0.0.1:8080/readyz | sort | uniq -c`)
		codes := map[string]int{}
		for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
			if f := strings.Fields(line); len(f) == 2 {
				codes[f[1]], _ = strconv.Atoi(f[0])
			}
		}
		return codes
	}
	allReady := func(t *testing.T, what string, within time.Duration) {
		t.Helper()
		for deadline := time.Now().Add(within); ; time.Sleep(time.Second) {
			codes := readyz(t)
			if codes["200"] == 20 {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: /readyz answers %v after %s, want 20 × 200", what, codes, within)
			}
		}
	}
	journalSince := func(t *testing.T, unit, since, grep string) string {
		t.Helper()
		return c.must(t, 10*time.Second, fmt.Sprintf(`journalctl -u %s --since @%s -o cat | grep -F %q || true`, unit, since, grep))
	}
	now := func(t *testing.T) string { return strings.TrimSpace(c.must(t, 5*time.Second, "date +%s.%N")) }

	t.Run("app backup copies the store while the suite runs", func(t *testing.T) {
		out := c.must(t, 60*time.Second, "app backup /root/app-backup.db")
		t.Logf("app backup: %s", strings.TrimSpace(out))
		if got := c.must(t, 10*time.Second, "stat -c '%a' /root/app-backup.db; head -c 15 /root/app-backup.db"); got != "600\nSQLite format 3" {
			t.Errorf("the copy: %q; want a SQLite file readable by root only", got)
		}
		if out, err := c.sh(t, 60*time.Second, "app backup /root/app-backup.db"); err == nil || !strings.Contains(out, "exists") {
			t.Errorf("a backup over an existing file: %v %q; want a refusal", err, out)
		}
		allReady(t, "during and after the backup", 30*time.Second)
		stateOwned(t, "app backup as root")
	})

	t.Run("no /etc/app/app.env: the defaults", func(t *testing.T) {
		c.must(t, 90*time.Second, "mv /etc/app/app.env /root/app.env && systemctl daemon-reload && systemctl restart app.target")
		c.eventually(t, "every unit active on the defaults", 60*time.Second, "systemctl is-active "+strings.Join(units, " "), func(s string) bool {
			return strings.Count(s, "active\n") == len(units) && !strings.Contains(s, "inactive") && !strings.Contains(s, "activating")
		})
		allReady(t, "without app.env", 30*time.Second)
		c.must(t, 90*time.Second, "mv /root/app.env /etc/app/app.env && systemctl daemon-reload")
	})

	t.Run("port taken: one line, the suite starts once it is free", func(t *testing.T) {
		since := now(t)
		c.must(t, 90*time.Second, `systemctl stop app.target app.socket &&
			systemd-run -q --unit=squatter perl -MIO::Socket::INET -e 'my $s = IO::Socket::INET->new(LocalPort => 8080, Proto => "tcp", Listen => 1, ReuseAddr => 1) or die "bind: $!"; sleep 300'`)
		c.eventually(t, "another program listens on 8080", 10*time.Second, "ss -ltnp 'sport = :8080'", func(s string) bool {
			return strings.Contains(s, "perl")
		})
		c.must(t, 90*time.Second, "systemctl start app.target")
		c.eventually(t, "app.socket failed and the retry runs", 30*time.Second,
			"systemctl is-failed app.socket; systemctl is-active app-socket-retry.service", func(s string) bool {
				f := strings.Fields(s)
				return len(f) == 2 && f[0] == "failed" && f[1] == "active"
			})
		lines := journalSince(t, "app.socket", since, "Address already in use")
		t.Logf("app.socket: %s", strings.TrimSpace(lines))
		if lines == "" {
			t.Errorf("no journal line saying the port is taken")
		}
		c.must(t, 30*time.Second, "systemctl stop squatter.service")
		c.eventually(t, "every unit active once the port is free", 120*time.Second, "systemctl is-active "+strings.Join(units, " "), func(s string) bool {
			return strings.Count(s, "active\n") == len(units) && !strings.Contains(s, "inactive") && !strings.Contains(s, "activating") && !strings.Contains(s, "failed")
		})
		allReady(t, "after the port was freed", 30*time.Second)
		t.Logf("app-socket-retry: %s", strings.TrimSpace(c.must(t, 10*time.Second, "journalctl -u app-socket-retry.service -o cat | grep -F app.socket")))
	})

	t.Run("systemd-analyze security", func(t *testing.T) {
		for _, u := range []string{"app-worker@1.service", "app-primary.service", "app-socket-retry.service"} {
			out, _ := c.sh(t, 30*time.Second, "systemd-analyze security --no-pager "+u+" | tail -1")
			t.Logf("%s: %s", u, strings.TrimSpace(out))
			m := regexp.MustCompile(`exposure level for \S+: ([0-9.]+)`).FindStringSubmatch(out)
			if m == nil {
				t.Errorf("%s: no exposure figure in %q", u, out)
				continue
			}
			if v, _ := strconv.ParseFloat(m[1], 64); v > 2.0 {
				full, _ := c.sh(t, 30*time.Second, "systemd-analyze security --no-pager "+u+" | grep -v '✓'")
				t.Errorf("%s exposure %s, want at most 2.0:\n%s", u, m[1], full)
			}
		}
	})

	t.Run("upgrade keeps app.env and restarts what runs", func(t *testing.T) {
		pid := c.activePID(t, "app-primary.service")
		// What an upgrade from a version with the embedded FerretDB leaves:
		// its files in /var/lib/app/db, kept, and named once by the primary.
		c.must(t, 10*time.Second, "install -d -o app -g app -m 0700 /var/lib/app/db && install -o app -g app -m 0600 /dev/null /var/lib/app/db/ferretdb.sqlite")
		since := now(t)
		// dpkg runs the same scripts for a reinstall as for an upgrade
		// (postinst configure with the old version).
		c.must(t, 3*time.Minute, "echo '# edited by the admin' >> /etc/app/app.env && apt-get install -y --reinstall /mnt/dist/"+filepath.Base(deb)+" 2>&1")
		if out := c.must(t, 10*time.Second, "tail -1 /etc/app/app.env"); strings.TrimSpace(out) != "# edited by the admin" {
			t.Errorf("app.env after the upgrade ends with %q; the admin's edit was lost", out)
		}
		if p := c.activePID(t, "app-primary.service"); p == pid {
			t.Errorf("app-primary still runs as pid %s after the upgrade; want it restarted on the new binary", p)
		}
		allReady(t, "after the upgrade", 60*time.Second)
		lines := journalSince(t, "app-primary.service", since, "no longer used")
		t.Logf("app-primary: %s", strings.TrimSpace(lines))
		if n := strings.Count(lines, "\n"); n != 1 || !strings.Contains(lines, "/var/lib/app/db") {
			t.Errorf("%d journal lines about /var/lib/app/db from the restarted primary, want 1 naming it:\n%s", n, lines)
		}
		if out := c.must(t, 10*time.Second, "test -e /var/lib/app/db/ferretdb.sqlite && echo kept || true"); strings.TrimSpace(out) != "kept" {
			t.Errorf("the upgrade removed /var/lib/app/db; it must be left for the administrator")
		}
	})

	t.Run("remove keeps the state, purge deletes it", func(t *testing.T) {
		c.must(t, 2*time.Minute, "apt-get remove -y app 2>&1")
		out := c.must(t, 10*time.Second, "ls /usr/lib/systemd/system/ | grep '^app' || true; test -d /var/lib/app && echo state-kept; systemctl is-active app-primary.service || true")
		if strings.Contains(out, "app-worker@.service") || !strings.Contains(out, "state-kept") || strings.Contains(out, "\nactive") {
			t.Errorf("after remove: %q; want no units, state kept, nothing running", out)
		}
		c.must(t, 2*time.Minute, "apt-get purge -y app 2>&1")
		out = c.must(t, 10*time.Second, "test -e /var/lib/app && echo state-left; test -e /etc/app/app.env && echo config-left; true")
		if strings.TrimSpace(out) != "" {
			t.Errorf("after purge: %q", out)
		}
	})
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
