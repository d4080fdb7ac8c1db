package metrics

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

const alertsDir = "../../docs/prometheus"

// promtoolPath is where Debian's prometheus package puts promtool.
const promtoolPath = "/usr/bin/promtool"

// The shipped alerting rules load in Prometheus and fire where their unit
// tests say: each alert when its condition lasts, none on a blip.
func TestAlertRules(t *testing.T) {
	if _, err := os.Stat(promtoolPath); err != nil {
		t.Skipf("%s is missing: install Debian's prometheus package (apt-get install --no-install-recommends prometheus) to test docs/prometheus/alerts.yml", promtoolPath)
	}
	for _, args := range [][]string{{"check", "rules", "alerts.yml"}, {"test", "rules", "alerts_test.yml"}} {
		cmd := exec.Command(promtoolPath, args...)
		cmd.Dir = alertsDir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}

// recorder is a Registerer that keeps what is registered.
type recorder struct{ cs []prometheus.Collector }

func (r *recorder) Register(c prometheus.Collector) error   { r.cs = append(r.cs, c); return nil }
func (r *recorder) MustRegister(cs ...prometheus.Collector) { r.cs = append(r.cs, cs...) }
func (r *recorder) Unregister(prometheus.Collector) bool    { return false }

// Every series the alerts and their tests name is one this program
// exports, so renaming a metric cannot silence an alert unnoticed.
func TestAlertRulesNameExportedSeries(t *testing.T) {
	st := unreachable(t) // the descriptions need no database
	rec := &recorder{}
	NewHTTP(rec)
	Pool(rec, st)
	Primary(rec, st, holder{}, time.Second)
	exported := map[string]bool{}
	fqName := regexp.MustCompile(`fqName: "([^"]+)"`)
	for _, c := range rec.cs {
		ch := make(chan *prometheus.Desc, 64)
		c.Describe(ch)
		close(ch)
		for d := range ch {
			if m := fqName.FindStringSubmatch(d.String()); m != nil {
				exported[m[1]] = true
			}
		}
	}
	if len(exported) < 15 {
		t.Fatalf("only %d series described: %v", len(exported), exported)
	}
	named := regexp.MustCompile(`\bapp_[a-z_]+`)
	seen := 0
	for _, file := range []string{"alerts.yml", "alerts_test.yml"} {
		b, err := os.ReadFile(filepath.Join(alertsDir, file))
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range named.FindAllString(string(b), -1) {
			seen++
			base := name
			for _, suffix := range []string{"_bucket", "_count", "_sum"} {
				if s, ok := strings.CutSuffix(name, suffix); ok && exported[s] {
					base = s
				}
			}
			if !exported[base] {
				t.Errorf("%s names %s, which the program does not export", file, name)
			}
		}
	}
	if seen < 13 {
		t.Errorf("only %d series named in the alert files", seen)
	}
}
