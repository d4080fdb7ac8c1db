package httpapi

import (
	"context"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"app/internal/store"
	"app/internal/testdb"
)

// The sandbox's levers take the fields docs/SANDBOX.md lists, each of its
// kind: a number of seconds that is not one, or a flag given as text, is a
// 400 naming the field, not a silent default.
func TestSandboxBodiesAreChecked(t *testing.T) {
	st := testdb.Start(t).Connect(nil)
	url := serve(t, &Server{Backend: st, Sessions: st, Keys: st, Sandbox: true, Log: zerolog.Nop(), Worker: "1", MaxBodyBytes: 1 << 16}, nil)
	key, k := store.NewAPIKey("sandbox", []string{store.ScopeSession})
	if err := st.CreateAPIKey(context.Background(), k); err != nil {
		t.Fatal(err)
	}
	h := map[string]string{"Content-Type": "application/json", "Authorization": "Bearer " + key}
	for _, c := range []struct{ action, body, field string }{
		{"disconnect", `{"seconds":"soon"}`, "seconds"},
		{"disconnect", `{"seconds":-1}`, "seconds"},
		{"ban", `{"seconds":1.5}`, "seconds"},
		{"ban", `{"seconds":86401}`, "seconds"},
		{"fail_next", `{"retryable":"yes"}`, "retryable"},
		{"fail_next", `{"rate_limited":1}`, "rate_limited"},
		{"fail_next", `{"reason":true}`, "reason"},
		{"incoming", `{"chat":"+491701234567","text":7}`, "text"},
		{"logout", `{"seconds":5}`, "seconds"},
	} {
		r := do(t, "POST", url+"/v1/sandbox/"+c.action, strings.NewReader(c.body), h)
		if r.status != 400 || errorOf(t, r)["field"] != c.field {
			t.Errorf("POST /v1/sandbox/%s %s: %d %v, want 400 naming %s", c.action, c.body, r.status, r.body, c.field)
		}
	}
}
