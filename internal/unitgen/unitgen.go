// Package unitgen is the systemd generator app-generator: at boot and on
// every `systemctl daemon-reload` it reads /etc/app/app.env and makes
// app.target want worker instances 1..N. See systemd.generator(7).
package unitgen

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"app/internal/config"
)

// Production paths.
const (
	EnvFile = "/etc/app/app.env"
	UnitDir = "/usr/lib/systemd/system"
	wants   = "app.target.wants"
)

// Graph is what app.target wants besides the socket and the primary,
// which it names itself.
type Graph struct {
	Workers int
}

// retired are units earlier versions linked into app.target.wants: a
// rerun into the same directory removes their links.
var retired = []string{"app-db.service"}

// Decide reads env (the parsed environment file) the way the services do.
// It never fails: a bad file must not fail the boot, so each problem is
// returned as a warning and a default is used in its place.
//   - An invalid CLUSTER_WORKERS: one worker per CPU (its default).
//   - Any other invalid variable: the services will refuse to start and
//     say why in their journals; the graph still follows CLUSTER_WORKERS
//     as written, so the failing units are the expected ones.
//     CLUSTER_WORKERS is read on its own for that, so that neither another
//     variable's mistake nor the cross-check with MONGO_MAX_TOTAL_CONNECTIONS
//     changes the number of workers.
//   - MONGO_URI_FILE is not read: the generator runs before file systems
//     other than / and /usr are mounted. The services read and check the
//     file when they start.
func Decide(env map[string]string, cpus int) (Graph, []string) {
	var warnings []string
	g := Graph{Workers: cpus}
	_, err := config.LoadFrom(func(k string) (string, bool) {
		// With MONGO_URI also set, resolve reports "not both" without
		// reading the file, so only the lone MONGO_URI_FILE is hidden.
		if k == "MONGO_URI_FILE" && env["MONGO_URI"] == "" {
			return "", false
		}
		v, ok := env[k]
		return v, ok
	})
	if err != nil {
		warnings = append(warnings, err.Error())
	}
	// The connection budget at its maximum, so that only CLUSTER_WORKERS's
	// own rule applies here (the full load above reports the budget).
	n, werr := config.LoadFrom(func(k string) (string, bool) {
		switch k {
		case "CLUSTER_WORKERS":
			v, ok := env[k]
			return v, ok
		case "MONGO_MAX_TOTAL_CONNECTIONS":
			return "1000000", true
		}
		return "", false
	})
	switch {
	case werr != nil:
		var ce *config.Error
		if !errors.As(err, &ce) || ce.Var != "CLUSTER_WORKERS" {
			warnings = append(warnings, werr.Error())
		}
	case n.ClusterWorkers > 0:
		g.Workers = n.ClusterWorkers
	}
	return g, warnings
}

// Write creates the wants links for g in outDir, pointing at unitDir. Links
// it wrote before and g no longer wants are removed, so a rerun into the
// same directory gives the same result as a fresh one.
func Write(outDir, unitDir string, g Graph) error {
	dir := filepath.Join(outDir, wants)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	want := map[string]string{}
	for i := 1; i <= g.Workers; i++ {
		want[fmt.Sprintf("app-worker@%d.service", i)] = filepath.Join(unitDir, "app-worker@.service")
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if _, ok := want[e.Name()]; !ok && (strings.HasPrefix(e.Name(), "app-worker@") || slices.Contains(retired, e.Name())) {
			if err := os.Remove(filepath.Join(dir, e.Name())); err != nil {
				return err
			}
		}
	}
	for name, target := range want {
		path := filepath.Join(dir, name)
		if cur, err := os.Readlink(path); err == nil && cur == target {
			continue
		}
		_ = os.Remove(path)
		if err := os.Symlink(target, path); err != nil {
			return err
		}
	}
	return nil
}

// ParseEnvFile reads systemd's EnvironmentFile= syntax: KEY=VALUE lines;
// blank lines and lines starting with # or ; are skipped; whitespace around
// keys and values is trimmed; a value may be quoted with "..." or '...'; a
// line ending in a backslash continues on the next line. A line that is
// not an assignment is skipped, as systemd skips it; the error names the
// first such line, and env holds every good one.
func ParseEnvFile(r io.Reader) (map[string]string, error) {
	env := map[string]string{}
	var bad error
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	lineNo := 0
	for sc.Scan() {
		lineNo++
		line := sc.Text()
		for strings.HasSuffix(line, `\`) && sc.Scan() {
			lineNo++
			line = strings.TrimSuffix(line, `\`) + sc.Text()
		}
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' || line[0] == ';' {
			continue
		}
		key, val, ok := strings.Cut(line, "=")
		key = strings.TrimSpace(key)
		if !ok || key == "" || strings.ContainsAny(key, " \t") {
			if bad == nil {
				bad = fmt.Errorf("line %d is not KEY=VALUE: %q", lineNo, line)
			}
			continue
		}
		val = strings.TrimSpace(val)
		if q := val; len(q) >= 2 && (q[0] == '"' || q[0] == '\'') && q[len(q)-1] == q[0] {
			val = q[1 : len(q)-1]
			if q[0] == '"' {
				val = strings.NewReplacer(`\"`, `"`, `\\`, `\`).Replace(val)
			}
		}
		env[key] = val
	}
	if err := sc.Err(); err != nil {
		return env, err
	}
	return env, bad
}

// Main is app-generator: args are NORMAL_DIR [EARLY_DIR LATE_DIR]. The
// environment file is APP_ENV_FILE (for tests) or /etc/app/app.env.
// Warnings go to the kernel log (/dev/kmsg), where a generator's output
// is read at boot, or stderr when that cannot be opened. The status is not
// 0 only when the output directory cannot be written.
func Main(args []string, stderr io.Writer) int {
	if len(args) < 1 || len(args) > 3 || args[0] == "" {
		fmt.Fprintln(stderr, "usage: app-generator NORMAL_DIR [EARLY_DIR LATE_DIR]")
		return 2
	}
	envFile := EnvFile
	if f := os.Getenv("APP_ENV_FILE"); f != "" {
		envFile = f
	}
	var klog io.Writer = stderr
	prefix := "app-generator: "
	if k, err := os.OpenFile("/dev/kmsg", os.O_WRONLY, 0); err == nil {
		defer k.Close()
		klog, prefix = k, "<4>app-generator: "
	}
	return generate(args[0], envFile, UnitDir, cpus(), klog, prefix)
}

// generate is Main with its surroundings passed in. It writes at most one
// line to klog: what is wrong with the file and what app.target wants.
func generate(outDir, envFile, unitDir string, cpus int, klog io.Writer, prefix string) int {
	env := map[string]string{}
	var problems []string
	f, err := os.Open(envFile)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		// The package installs the file; without it everything runs on
		// the defaults, which is worth one line.
		problems = append(problems, "does not exist (using the defaults)")
	case err != nil:
		problems = append(problems, err.Error()+" (using the defaults)")
	default:
		env, err = ParseEnvFile(f)
		f.Close()
		if err != nil {
			problems = append(problems, err.Error()+" (skipped, as systemd skips it)")
		}
	}
	g, warnings := Decide(env, cpus)
	if len(problems)+len(warnings) > 0 {
		tail := ""
		if len(warnings) > 0 {
			tail = ", the services report the error"
		}
		fmt.Fprintf(klog, "%s%s: %s; app.target wants %d workers%s\n",
			prefix, envFile, strings.Join(append(problems, warnings...), "; "), g.Workers, tail)
	}
	if err := Write(outDir, unitDir, g); err != nil {
		fmt.Fprintf(klog, "%scannot write the unit graph: %v\n", prefix, err)
		return 1
	}
	return 0
}

// cpus is the number of CPUs this process may run on.
func cpus() int { return config.Config{}.Workers() }

// Wanted reports whether worker id (APP_WORKER_ID) is within the configured
// number of workers: app-worker@.service's ExecCondition=, so that lowering
// CLUSTER_WORKERS and restarting app.target stops the extra instances.
func Wanted(cfg config.Config) bool {
	id, err := strconv.Atoi(cfg.WorkerID)
	return err != nil || id <= cfg.Workers()
}
