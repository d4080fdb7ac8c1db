//go:build race

package primary_test

// raceEnabled: the race detector is on (it makes the embedded database ~10x slower).
const raceEnabled = true
