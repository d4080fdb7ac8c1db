//go:build e2e

package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestRPMPackage checks the .rpm with rpm -qp, as no rpm-based system can
// be booted here: the files and their modes, the conffile flags and the
// scripts' behaviour on install, upgrade and erase.
func TestRPMPackage(t *testing.T) {
	if _, err := exec.LookPath("rpm"); err != nil {
		t.Skip("needs rpm (apt-get install rpm) to read the .rpm")
	}
	pkg := os.Getenv("APP_E2E_RPM")
	if pkg == "" {
		t.Fatal("APP_E2E_RPM: the .rpm to check (make e2e sets it)")
	}
	pkg, _ = filepath.Abs(pkg)
	q := func(args ...string) string {
		t.Helper()
		out, err := run(t, 30*time.Second, "rpm", append([]string{"-qp", "--nosignature"}, append(args, pkg)...)...)
		if err != nil {
			t.Fatalf("rpm -qp %v: %v\n%s", args, err, out)
		}
		return out
	}

	// Every file with its mode, owner and flags (c = config, n = noreplace).
	files := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(q("--qf", `[%{FILENAMES}|%{FILEMODES:perms} %{FILEUSERNAME}:%{FILEGROUPNAME} %{FILEFLAGS:fflags}\n]`)), "\n") {
		path, attrs, _ := strings.Cut(line, "|")
		files[path] = strings.TrimSpace(attrs)
	}
	t.Logf("%d files", len(files))
	// nfpm stores symbolic links with mode 0 in the .rpm; Linux ignores a
	// link's own mode, and rpm does not verify it.
	want := map[string]string{
		"/usr/bin/app": "-rwxr-xr-x root:root",
		"/usr/lib/systemd/system-generators/app-generator": "l--------- root:root",
		"/usr/lib/systemd/system/app.target":               "-rw-r--r-- root:root",
		"/usr/lib/systemd/system/app.socket":               "-rw-r--r-- root:root",
		"/usr/lib/systemd/system/app-worker@.service":      "-rw-r--r-- root:root",
		"/usr/lib/systemd/system/app-primary.service":      "-rw-r--r-- root:root",
		"/usr/lib/systemd/system/app-socket-retry.service": "-rw-r--r-- root:root",
		"/usr/lib/sysusers.d/app.conf":                     "-rw-r--r-- root:root",
		"/usr/lib/tmpfiles.d/app.conf":                     "-rw-r--r-- root:root",
		// A conffile kept on upgrade, not world-readable (it may hold MONGO_URI).
		"/etc/app/app.env":                     "-rw-r----- root:root cn",
		"/usr/share/doc/app/README.md":         "-rw-r--r-- root:root",
		"/usr/share/app/prometheus/alerts.yml": "-rw-r--r-- root:root",
	}
	for path, attrs := range want {
		got, ok := files[path]
		switch {
		case !ok:
			t.Errorf("%s is not in the .rpm", path)
		case got != attrs:
			t.Errorf("%s: %q, want %q", path, got, attrs)
		}
	}
	if _, ok := files["/usr/lib/systemd/system/app-db.service"]; ok {
		t.Errorf("the .rpm still has app-db.service: the embedded store is SQLite, opened by the services themselves")
	}
	if got := strings.TrimSpace(q("--configfiles")); got != "/etc/app/app.env" {
		t.Errorf("config files: %q, want only /etc/app/app.env", got)
	}
	if link := strings.TrimSpace(q("--qf", `[%{FILENAMES} %{FILELINKTOS}\n]`)); !strings.Contains(link, "/usr/lib/systemd/system-generators/app-generator /usr/bin/app") {
		t.Errorf("the generator is not a link to /usr/bin/app:\n%s", link)
	}
	if dep := q("--requires"); !strings.Contains(dep, "systemd") {
		t.Errorf("requires:\n%s\nwant systemd", dep)
	}

	// The scripts: user and directories made and systemd reloaded on
	// install; running services restarted on upgrade only; the suite
	// stopped and disabled on erase only, never on upgrade.
	scripts := q("--scripts")
	sections := map[string]string{}
	var cur string
	for _, line := range strings.Split(scripts, "\n") {
		if strings.HasSuffix(line, "scriptlet (using /bin/sh):") {
			cur = strings.Fields(line)[0]
			continue
		}
		sections[cur] += line + "\n"
	}
	for _, c := range []struct{ section, want string }{
		{"postinstall", "systemd-sysusers /usr/lib/sysusers.d/app.conf"},
		{"postinstall", "systemd-tmpfiles --create /usr/lib/tmpfiles.d/app.conf"},
		{"postinstall", "systemctl daemon-reload"},
		{"postinstall", `if [ "$1" -ge 2 ]`},
		{"postinstall", "systemctl try-restart app.target"},
		{"preuninstall", `if [ "$1" -eq 0 ]`},
		{"preuninstall", "systemctl stop app.target app.socket"},
		{"preuninstall", "systemctl disable app.target app.socket"},
		{"postuninstall", "systemctl daemon-reload"},
	} {
		if !strings.Contains(sections[c.section], c.want) {
			t.Errorf("%s scriptlet lacks %q:\n%s", c.section, c.want, sections[c.section])
		}
	}
	if code := withoutComments(sections["postinstall"]); strings.Contains(code, "enable") || strings.Contains(code, "systemctl start") {
		t.Errorf("postinstall enables or starts the suite, which RPM distributions leave to the administrator:\n%s", sections["postinstall"])
	}

	// Each script runs: sh -n finds no syntax error.
	for name, body := range sections {
		if name == "" {
			continue
		}
		cmd := exec.Command("sh", "-n")
		cmd.Stdin = strings.NewReader(body)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("%s scriptlet: %v\n%s", name, err, out)
		}
	}
}

func withoutComments(script string) string {
	var b strings.Builder
	for _, line := range strings.Split(script, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(line), "#") {
			b.WriteString(line + "\n")
		}
	}
	return b.String()
}
