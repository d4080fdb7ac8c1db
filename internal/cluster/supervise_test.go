package cluster

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"app/internal/testutil"
)

// A child that exits with status 0 (stopped on purpose, as a SIGTERM from
// an operator does) is started again without being called dead, and one
// that ran a while starts over at the first back-off; a crash is "died".
func TestCleanExitIsNotACrash(t *testing.T) {
	var logs testutil.Buffer
	s := &Supervisor{Log: zerolog.New(&logs), Backoff: 10 * time.Millisecond, MaxBackoff: time.Second, StableAfter: time.Hour}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	run := func(name, script string, lines int) []string {
		t.Helper()
		s.Exe = "/bin/sh"
		c := s.newChild(name, []string{"-c", script}, nil, nil)
		if err := c.start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		cctx, stop := context.WithCancel(ctx)
		go func() { defer close(done); c.supervise(cctx, func(error) {}) }()
		defer func() { // also when the wait below fails
			stop()
			c.stop(time.Second)
			<-done
		}()
		var got []string
		testutil.Eventually(t, 20*time.Second, fmt.Sprintf("%s: %d restarts logged", name, lines), func() (bool, string) {
			got = got[:0]
			for _, l := range strings.Split(logs.String(), "\n") {
				if strings.Contains(l, `"child":"`+name+`"`) && strings.Contains(l, `"restart_in"`) {
					got = append(got, l)
				}
			}
			return len(got) >= lines, fmt.Sprint(got)
		})
		return got[:lines]
	}
	for _, l := range run("stopped", "sleep 1.1; exit 0", 2) {
		if strings.Contains(l, "died") || !strings.Contains(l, "stopped cleanly") || !strings.Contains(l, `"restart_in":10`) {
			t.Errorf("clean exit after a second logged as %s; want stopped cleanly, restarting after the first back-off (10 ms)", l)
		}
	}
	for i, l := range run("crashing", "exit 1", 3) {
		if !strings.Contains(l, "died") || !strings.Contains(l, `"level":"warn"`) {
			t.Errorf("crash %d logged as %s; want a warning saying it died", i, l)
		}
	}
}
