// Package testutil holds what the tests of every package share beyond the
// test database (internal/testdb).
package testutil

import (
	"testing"
	"time"
)

// Eventually waits until cond holds, checking every 10 ms, and fails the
// test with what and cond's last account of the state when it does not
// within the time given. Tests wait for conditions with it, never for a
// fixed time.
func Eventually(t testing.TB, within time.Duration, what string, cond func() (ok bool, state string)) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		ok, state := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s; last: %s", what, within, state)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
