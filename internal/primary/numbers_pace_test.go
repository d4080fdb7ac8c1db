package primary

import (
	"testing"
	"time"
)

// The pace grants lookups up to the minute's allowance, and the rest
// again as the oldest lookups of the minute age out.
func TestNumberPace(t *testing.T) {
	var p numberPace
	t0 := time.Now()
	if got, _ := p.take(t0, 4, 10); got != 4 {
		t.Fatalf("first 4 of 10: granted %d", got)
	}
	got, wait := p.take(t0.Add(20*time.Second), 10, 10)
	if got != 6 || wait != 40*time.Second {
		t.Fatalf("10 more 20 s later: granted %d, wait %v; want 6 and 40s", got, wait)
	}
	if got, wait := p.take(t0.Add(30*time.Second), 1, 10); got != 0 || wait != 30*time.Second {
		t.Fatalf("the minute used up: granted %d, wait %v; want 0 and 30s", got, wait)
	}
	if got, _ := p.take(t0.Add(time.Minute), 10, 10); got != 4 {
		t.Fatalf("after the first 4 aged out: granted %d, want 4", got)
	}
	if got, _ := p.take(t0.Add(3*time.Minute), 0, 10); got != 0 {
		t.Fatalf("nothing asked: granted %d", got)
	}
}
