package unitgen

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"app/internal/config"
)

var update = flag.Bool("update", false, "rewrite the expected files of systemd/generator-tests")

const cases = "../../systemd/generator-tests"

// tree lists dir as the golden files do: one line per link, "path -> target".
func tree(t *testing.T, dir string) string {
	t.Helper()
	var lines []string
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		target, err := os.Readlink(path)
		if err != nil {
			return err
		}
		lines = append(lines, rel+" -> "+target)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n") + "\n"
}

// Each case directory holds an app.env (absent: no file) and the expected
// output tree plus kernel log for 4 CPUs.
func TestGolden(t *testing.T) {
	dirs, err := os.ReadDir(cases)
	if err != nil {
		t.Fatal(err)
	}
	if len(dirs) < 8 {
		t.Fatalf("only %d golden cases", len(dirs))
	}
	for _, d := range dirs {
		t.Run(d.Name(), func(t *testing.T) {
			t.Parallel()
			out := t.TempDir()
			var klog bytes.Buffer
			if code := generate(out, filepath.Join(cases, d.Name(), "app.env"), UnitDir, 4, &klog, "<4>app-generator: "); code != 0 {
				t.Fatalf("exit %d: %s", code, klog.String())
			}
			got := tree(t, out)
			if klog.Len() > 0 {
				got += "--- kernel log\n" + klog.String()
			}
			want := filepath.Join(cases, d.Name(), "expected")
			if *update {
				if err := os.WriteFile(want, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			b, err := os.ReadFile(want)
			if err != nil {
				t.Fatal(err)
			}
			if got != string(b) {
				t.Errorf("output differs from %s:\n--- got\n%s--- want\n%s", want, got, b)
			}
			if strings.Count(klog.String(), "\n") > 1 {
				t.Errorf("more than one kernel log line:\n%s", klog.String())
			}
		})
	}
}

// daemon-reload into a used directory: the same file gives the same tree,
// fewer workers leave no stale links, nor does the app-db.service of
// earlier versions.
func TestRerunLeavesNoStaleLinks(t *testing.T) {
	out := t.TempDir()
	if err := os.MkdirAll(filepath.Join(out, wants), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(UnitDir, "app-db.service"), filepath.Join(out, wants, "app-db.service")); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := Write(out, UnitDir, Graph{Workers: 4}); err != nil {
			t.Fatal(err)
		}
	}
	fresh := t.TempDir()
	if err := Write(fresh, UnitDir, Graph{Workers: 4}); err != nil {
		t.Fatal(err)
	}
	if a, b := tree(t, out), tree(t, fresh); a != b {
		t.Fatalf("second run gave\n%s\nfresh run gave\n%s", a, b)
	}
	if err := Write(out, UnitDir, Graph{Workers: 2}); err != nil {
		t.Fatal(err)
	}
	fresh = t.TempDir()
	if err := Write(fresh, UnitDir, Graph{Workers: 2}); err != nil {
		t.Fatal(err)
	}
	if a, b := tree(t, out), tree(t, fresh); a != b {
		t.Fatalf("rerun gave\n%s\nfresh run gave\n%s", a, b)
	}
}

// The cases the golden files do not show well: one warning at most, naming
// the variable, and the number of workers as written whenever it is valid.
func TestDecide(t *testing.T) {
	for _, tc := range []struct {
		env  map[string]string
		want Graph
		warn string // the variable the one warning names; "" for none
	}{
		{map[string]string{"CLUSTER_WORKERS": "abc"}, Graph{Workers: 4}, "CLUSTER_WORKERS"},
		// Valid: the budget is raised for that many workers.
		{map[string]string{"CLUSTER_WORKERS": "1000", "MONGO_MAX_TOTAL_CONNECTIONS": "5000"}, Graph{Workers: 1000}, ""},
		// The budget is too small: the services refuse, the graph follows the file.
		{map[string]string{"CLUSTER_WORKERS": "900"}, Graph{Workers: 900}, "MONGO_MAX_TOTAL_CONNECTIONS"},
		{map[string]string{"CLUSTER_WORKERS": "3", "MONGO_URI": "localhost:27017"}, Graph{Workers: 3}, "MONGO_URI"},
		// Not read at boot (not mounted yet, or a credential): set is enough.
		{map[string]string{"CLUSTER_WORKERS": "3", "MONGO_URI_FILE": "/nonexistent/secret"}, Graph{Workers: 3}, ""},
		{map[string]string{"MONGO_URI": "mongodb://db1/", "MONGO_URI_FILE": "/nonexistent/secret"}, Graph{Workers: 4}, "MONGO_URI_FILE"},
		{map[string]string{"CLUSTER_WORKERS": "2", "APP_ENV": "prod"}, Graph{Workers: 2}, "APP_ENV"},
		// Two mistakes: the first, as the services report it.
		{map[string]string{"CLUSTER_WORKERS": "x", "MONGO_MAX_POOL_SIZE": "0"}, Graph{Workers: 4}, "CLUSTER_WORKERS"},
		{map[string]string{"MONGO_MAX_POOL_SIZE": "0", "LOG_LEVEL": "loud", "CLUSTER_WORKERS": "2"}, Graph{Workers: 2}, "MONGO_MAX_POOL_SIZE"},
	} {
		g, warnings := Decide(tc.env, 4)
		if g != tc.want {
			t.Errorf("%v: %+v, want %+v", tc.env, g, tc.want)
		}
		switch {
		case tc.warn == "" && len(warnings) > 0:
			t.Errorf("%v: warnings %q, want none", tc.env, warnings)
		case tc.warn != "" && (len(warnings) != 1 || !strings.Contains(warnings[0], tc.warn+"=")):
			t.Errorf("%v: warnings %q, want one naming %s", tc.env, warnings, tc.warn)
		}
	}
}

func TestParseEnvFile(t *testing.T) {
	in := "# comment\n; also a comment\n\n  A = 1 \nB=\"two words\"\nC='single # not a comment'\nD=\"esc \\\"q\\\"\"\nE=con\\\ntinued\nF=\n"
	env, err := ParseEnvFile(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"A": "1", "B": "two words", "C": "single # not a comment", "D": `esc "q"`, "E": "continued", "F": ""}
	if len(env) != len(want) {
		t.Fatalf("parsed %v, want %v", env, want)
	}
	for k, v := range want {
		if env[k] != v {
			t.Errorf("%s = %q, want %q", k, env[k], v)
		}
	}
	env, err = ParseEnvFile(strings.NewReader("A=1\nnot a pair\nB=2\n"))
	if err == nil || !strings.Contains(err.Error(), "line 2") || env["A"] != "1" || env["B"] != "2" {
		t.Errorf("bad line: %v %v, want an error naming line 2 and both good lines kept", env, err)
	}
}

func TestWanted(t *testing.T) {
	for _, tc := range []struct {
		id      string
		workers int
		want    bool
	}{{"1", 1, true}, {"2", 1, false}, {"2", 2, true}, {"9", 8, false}} {
		if got := Wanted(config.Config{WorkerID: tc.id, ClusterWorkers: tc.workers}); got != tc.want {
			t.Errorf("worker %s of %d wanted: %v, want %v", tc.id, tc.workers, got, tc.want)
		}
	}
}
