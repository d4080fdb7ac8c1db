//go:build !race

package primary_test

const raceEnabled = false
