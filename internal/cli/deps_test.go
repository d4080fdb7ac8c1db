package cli

import (
	"os/exec"
	"strings"
	"testing"
)

// FerretDB is the tests' stand-in for MongoDB, not part of the product:
// nothing the app binary is built from imports it (nor internal/embeddb,
// which wraps it).
func TestTheBinaryHasNoFerretDB(t *testing.T) {
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("needs the go command")
	}
	out, err := exec.Command(gobin, "list", "-deps", "app/cmd/app").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps app/cmd/app: %v\n%s", err, out)
	}
	for _, pkg := range strings.Fields(string(out)) {
		if strings.Contains(strings.ToLower(pkg), "ferretdb") || pkg == "app/internal/embeddb" || pkg == "app/internal/testdb" {
			t.Errorf("the app binary is built with %s", pkg)
		}
	}
	if !strings.Contains(string(out), "app/internal/store/sqlitestore\n") || !strings.Contains(string(out), "app/internal/store/mongostore\n") {
		t.Errorf("the app binary lacks a store engine; its packages:\n%s", out)
	}
}
