package systemd

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
)

// Booted reports whether systemd runs this machine (sd_booted(3): the
// directory exists only then).
func Booted() bool {
	fi, err := os.Stat("/run/systemd/system")
	return err == nil && fi.IsDir()
}

// Systemctl talks to the service manager through the systemctl command,
// the interface administrators use and whose output systemd keeps stable
// (`show` prints KEY=VALUE). Run is replaceable for tests.
type Systemctl struct {
	Run func(ctx context.Context, args ...string) (string, error)
}

// NewSystemctl runs the systemctl on PATH.
func NewSystemctl() Systemctl {
	return Systemctl{Run: func(ctx context.Context, args ...string) (string, error) {
		out, err := exec.CommandContext(ctx, "systemctl", args...).CombinedOutput()
		if err != nil {
			msg := strings.TrimSpace(string(out))
			if msg == "" {
				msg = err.Error()
			}
			return string(out), fmt.Errorf("systemctl %s: %s", strings.Join(args, " "), msg)
		}
		return string(out), nil
	}}
}

// Unit is what `systemctl show` says about one unit: property names to
// values; a property listed several times (a socket's Listen=) has its
// values joined by newlines.
type Unit map[string]string

// Int is a numeric property, 0 when absent or not a number.
func (u Unit) Int(name string) int {
	n, _ := strconv.Atoi(u[name])
	return n
}

// Show reads props of each unit, in the order given. A unit systemd does
// not know is still returned, with LoadState=not-found.
func (s Systemctl) Show(ctx context.Context, props []string, units ...string) ([]Unit, error) {
	args := append([]string{"show", "--no-pager", "-p", strings.Join(props, ",")}, units...)
	out, err := s.Run(ctx, args...)
	if err != nil {
		return nil, err
	}
	got := ParseShow(out)
	if len(got) != len(units) {
		return nil, fmt.Errorf("systemctl show: %d units in the answer, asked for %d", len(got), len(units))
	}
	return got, nil
}

// ParseShow splits the output of `systemctl show` for several units: one
// block of KEY=VALUE lines per unit, blocks separated by an empty line.
func ParseShow(out string) []Unit {
	var units []Unit
	var cur Unit
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			if cur != nil {
				units = append(units, cur)
				cur = nil
			}
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		if cur == nil {
			cur = Unit{}
		}
		if old, seen := cur[k]; seen {
			v = old + "\n" + v
		}
		cur[k] = v
	}
	if cur != nil {
		units = append(units, cur)
	}
	return units
}

// Restart restarts unit and waits for the job: for a Type=notify service
// that is until the new process sent READY=1.
func (s Systemctl) Restart(ctx context.Context, unit string) error {
	_, err := s.Run(ctx, "restart", unit)
	return err
}

// ActiveInstances lists the instances of template (such as "app-worker")
// that are active now, in numeric order of their instance name.
func (s Systemctl) ActiveInstances(ctx context.Context, template string) ([]string, error) {
	out, err := s.Run(ctx, "list-units", "--no-pager", "--plain", "--no-legend", "--full", "--all", "--type=service", template+"@*.service")
	if err != nil {
		return nil, err
	}
	var units []string
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		// UNIT LOAD ACTIVE SUB DESCRIPTION...
		if len(f) >= 3 && strings.HasPrefix(f[0], template+"@") && f[2] == "active" {
			units = append(units, f[0])
		}
	}
	sort.Slice(units, func(i, j int) bool {
		a, b := instanceNumber(units[i]), instanceNumber(units[j])
		if a != b {
			return a < b
		}
		return units[i] < units[j]
	})
	return units, nil
}

// instanceNumber is the number of "name@N.service", or a large one for
// instances that are not numbers, which then sort last.
func instanceNumber(unit string) int {
	_, rest, _ := strings.Cut(unit, "@")
	n, err := strconv.Atoi(strings.TrimSuffix(rest, ".service"))
	if err != nil {
		return 1 << 30
	}
	return n
}
