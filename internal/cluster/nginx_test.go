package cluster_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"app/internal/config"
	"app/internal/testdb"
	"app/internal/testutil"
)

// nginxPath is where Debian's nginx package puts the server.
const nginxPath = "/usr/sbin/nginx"

// The load balancer of docs/DEPLOY.md, as written there, in front of two
// "machines" (two `app serve` on one MongoDB): nginx accepts the
// configuration, spreads requests over both, streams Server-Sent Events
// and WebSocket frames as they happen, and when a machine dies every
// request still succeeds, each accepted message stored once.
func TestDeployDocNginx(t *testing.T) {
	if _, err := os.Stat(nginxPath); err != nil {
		t.Skipf("%s is missing: install Debian's nginx package (apt-get install nginx-light) to try the DEPLOY.md balancer", nginxPath)
	}
	env := []string{"WHATSAPP_SEND_PER_MINUTE=0", "APP_HEARTBEAT_INTERVAL=1s", "APP_RATE_LIMIT=1000", "APP_RATE_BURST=1000"}
	// Several machines share MongoDB (FerretDB here, through the real
	// driver), as every machine reaches the replica set.
	db := testdb.StartMongo(t)
	shared := "MONGO_URI=" + config.SocketURI(db.Socket)
	env = append(env, shared)
	stateA, stateB := t.TempDir(), t.TempDir()
	addrA, addrB := freePort(t), freePort(t)
	stopA := serveSandboxAt(t, addrA, stateA, env...)
	t.Cleanup(stopA)
	key := createKey(t, stateA, "admin", shared)
	stopB := serveSandboxAt(t, addrB, stateB, env...)
	t.Cleanup(stopB)
	waitHTTP(t, "http://"+addrA+"/readyz", 60*time.Second)
	waitHTTP(t, "http://"+addrB+"/readyz", 60*time.Second)

	lb := startNginx(t, []string{addrA, addrB})
	base := "http://" + lb
	call := func(method, path, body string) (int, http.Header, []byte) {
		t.Helper()
		req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+key)
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s %s through nginx: %v", method, path, err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, res.Header, b
	}

	// Both machines answer, with no sticky sessions.
	upstreams := map[string]int{}
	for range 20 {
		status, h, b := call("GET", "/readyz", "")
		if status != 200 {
			t.Fatalf("GET /readyz through nginx: %d %s", status, b)
		}
		upstreams[h.Get("X-Upstream")]++
	}
	if upstreams[addrA] == 0 || upstreams[addrB] == 0 {
		t.Errorf("answered by %v, want both %s and %s", upstreams, addrA, addrB)
	}
	if status, _, _ := call("GET", "/metrics", ""); status != 404 {
		t.Errorf("GET /metrics through nginx: %d, want 404 (scraped on APP_METRICS_LISTEN only)", status)
	}
	token := func() string {
		t.Helper()
		status, _, b := call("POST", "/v1/events/token", "")
		var v struct{ Token string }
		if status != 201 && status != 200 || json.Unmarshal(b, &v) != nil || v.Token == "" {
			t.Fatalf("POST /v1/events/token: %d %s", status, b)
		}
		return v.Token
	}

	// Server-Sent Events: the pairing's session.state events arrive while
	// the stream is open, not when it ends.
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", base+"/v1/events?types=session.state&token="+token(), nil)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("GET /v1/events through nginx: %d", res.StatusCode)
	}
	states := make(chan string, 16)
	go func() {
		sc := bufio.NewScanner(res.Body)
		for sc.Scan() {
			if data, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
				var ev struct{ Data struct{ State string } }
				if json.Unmarshal([]byte(data), &ev) == nil {
					states <- ev.Data.State
				}
			}
		}
		close(states)
	}()
	testutil.Eventually(t, 30*time.Second, "the sandbox scan accepted", func() (bool, string) {
		status, _, _ := call("POST", "/v1/sandbox/scan", "")
		return status == 200, fmt.Sprint(status)
	})
	for connected := false; !connected; {
		select {
		case s, ok := <-states:
			if !ok {
				t.Fatal("the event stream through nginx ended before the session.state connected event")
			}
			connected = s == "connected"
		case <-time.After(20 * time.Second):
			t.Fatal("no session.state connected event through nginx within 20 s of pairing: is the stream buffered?")
		}
	}

	// WebSocket: the upgrade passes, and a sent message's status comes
	// as a frame.
	ws, _, err := websocket.Dial(ctx, "ws://"+lb+"/v1/ws?types=message.status&token="+token(), nil)
	if err != nil {
		t.Fatalf("WebSocket through nginx: %v", err)
	}
	defer ws.CloseNow()
	status, _, b := call("POST", "/v1/messages", `{"to":"+15550001000","text":"through the balancer"}`)
	if status != 202 && status != 201 {
		t.Fatalf("POST /v1/messages through nginx: %d %s", status, b)
	}
	rctx, rcancel := context.WithTimeout(ctx, 20*time.Second)
	_, frame, err := ws.Read(rctx)
	rcancel()
	if err != nil || !strings.Contains(string(frame), `"message.status"`) {
		t.Fatalf("WebSocket frame through nginx: %q, %v; want a message.status event", frame, err)
	}

	// Machine b dies. nginx passes what b cannot take to a: no request
	// fails, and each accepted message is there once.
	stopB()
	sent := map[string]bool{}
	for i := range 40 {
		if i%4 == 0 {
			status, _, b := call("POST", "/v1/messages", fmt.Sprintf(`{"to":"+15550001000","text":"after b died %d"}`, i))
			if status != 202 && status != 201 {
				t.Errorf("POST /v1/messages %d after b died: %d %s", i, status, b)
				continue
			}
			var m struct{ ID string }
			_ = json.Unmarshal(b, &m)
			sent[m.ID] = true
			continue
		}
		if status, _, b := call("GET", "/v1/messages?limit=5", ""); status != 200 {
			t.Errorf("GET /v1/messages %d after b died: %d %s", i, status, b)
		}
	}
	status, _, b = call("GET", "/v1/messages?limit=100", "")
	var page struct{ Messages []struct{ ID, Text string } }
	if status != 200 || json.Unmarshal(b, &page) != nil {
		t.Fatalf("GET /v1/messages: %d %s", status, b)
	}
	stored := map[string]int{}
	for _, m := range page.Messages {
		if strings.HasPrefix(m.Text, "after b died") {
			stored[m.ID]++
			if !sent[m.ID] {
				t.Errorf("message %s (%q) is stored but was not answered as accepted", m.ID, m.Text)
			}
		}
	}
	if len(stored) != len(sent) || len(sent) != 10 {
		t.Errorf("%d messages accepted after b died, %d stored, want 10 and 10", len(sent), len(stored))
	}
}

// startNginx runs nginx with docs/DEPLOY.md's configuration, listening on
// loopback without TLS and balancing over upstreams; each answer names
// its upstream in X-Upstream. It returns nginx's address.
func startNginx(t *testing.T, upstreams []string) string {
	t.Helper()
	doc, err := os.ReadFile("../../docs/DEPLOY.md")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("(?s)```nginx\n(.*?)```").FindSubmatch(doc)
	if m == nil {
		t.Fatal("docs/DEPLOY.md has no nginx configuration block")
	}
	addr := freePort(t)
	var servers []string
	for _, u := range upstreams {
		servers = append(servers, "    server "+u+" max_fails=2 fail_timeout=5s;")
	}
	var out []string
	placed := false
	for _, line := range strings.Split(string(m[1]), "\n") {
		trimmed := strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(trimmed, "server 10.0.0."):
			if !placed {
				out = append(out, servers...)
				placed = true
			}
		case trimmed == "listen 443 ssl;":
			out = append(out, "    listen "+addr+";", "    add_header X-Upstream $upstream_addr always;")
		default:
			out = append(out, line)
		}
	}
	if !placed {
		t.Fatal("docs/DEPLOY.md's nginx block has no upstream servers on 10.0.0.x")
	}
	dir := t.TempDir()
	var user string
	if os.Geteuid() == 0 {
		user = "user root;" // the temporary directories are the test's
	}
	conf := fmt.Sprintf(`%s
daemon off;
worker_processes 1;
pid %[2]s/nginx.pid;
error_log %[2]s/error.log warn;
events { worker_connections 512; }
http {
  access_log off;
  client_body_temp_path %[2]s/body;
  proxy_temp_path %[2]s/proxy;
  fastcgi_temp_path %[2]s/fastcgi;
  uwsgi_temp_path %[2]s/uwsgi;
  scgi_temp_path %[2]s/scgi;
%[3]s
}
`, user, dir, strings.Join(out, "\n"))
	path := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	if b, err := exec.Command(nginxPath, "-t", "-q", "-c", path, "-p", dir).CombinedOutput(); err != nil {
		t.Fatalf("nginx rejects DEPLOY.md's configuration: %v\n%s\n%s", err, b, conf)
	}
	cmd := exec.Command(nginxPath, "-c", path, "-p", dir)
	cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		terminate(cmd, func() { _ = cmd.Process.Kill() })
		if b, _ := os.ReadFile(filepath.Join(dir, "error.log")); len(b) > 0 {
			t.Logf("nginx error.log:\n%s", b)
		}
	})
	waitHTTP(t, "http://"+addr+"/healthz", 10*time.Second)
	return addr
}
