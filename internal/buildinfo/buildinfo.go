// Package buildinfo holds the version stamped in by the Makefile with
// -ldflags "-X app/internal/buildinfo.Version=... -X app/internal/buildinfo.Commit=...".
package buildinfo

import (
	"fmt"
	"runtime"
)

// Set at link time.
var (
	Version = "dev"
	Commit  = "unknown"
)

// String is the line `app version` prints.
func String() string {
	return fmt.Sprintf("app %s (commit %s, %s %s/%s)", Version, Commit, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}
