package httpapi

import (
	"context"
	"fmt"
	"testing"

	"github.com/rs/zerolog"

	"app/internal/store"
	"app/internal/testdb"
)

// GET /v1/key tells any valid key its own id, name and scopes (what the
// console shows panels by); without a key it is a 401 like any route.
func TestKeyTellsItsScopes(t *testing.T) {
	st := testdb.Start(t).Connect(nil)
	url := serve(t, &Server{Backend: st, Keys: st, Log: zerolog.Nop(), Worker: "1"}, nil)
	key, k := store.NewAPIKey("reader", []string{store.ScopeMessagesRead})
	if err := st.CreateAPIKey(context.Background(), k); err != nil {
		t.Fatal(err)
	}
	r := do(t, "GET", url+"/v1/key", nil, map[string]string{"Authorization": "Bearer " + key})
	if r.status != 200 || r.body["id"] != k.ID || r.body["name"] != "reader" || fmt.Sprint(r.body["scopes"]) != "[messages:read]" {
		t.Errorf("GET /v1/key: %d %v", r.status, r.body)
	}
	if r := do(t, "GET", url+"/v1/key", nil, nil); r.status != 401 {
		t.Errorf("GET /v1/key without a key: %d %v, want 401", r.status, r.body)
	}
}
