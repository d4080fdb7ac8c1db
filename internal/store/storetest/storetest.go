// Package storetest is the store's conformance suite: every behaviour of
// the store.Store contract, run against each engine (SQLite, and MongoDB
// through the real driver against FerretDB) by its package's tests.
//
// Where FerretDB falls short of MongoDB's documented semantics, a test
// says so and skips on FerretDB only (Harness.FerretDB); the MongoDB
// engine is still written to those semantics.
package storetest

import (
	"sort"
	"testing"

	"app/internal/store"
)

// Harness is an engine under test.
type Harness struct {
	// Engine is store.SQLite or store.MongoDB.
	Engine string
	// FerretDB is set when MongoDB is FerretDB, the stand-in.
	FerretDB bool
	// Open is a store on a fresh, empty database, closed when t ends.
	Open func(t testing.TB) store.Store
	// OpenTwo is two stores on one fresh database, as two processes
	// would open it.
	OpenTwo func(t testing.TB) (store.Store, store.Store)
	// Media reaches into the engine's media records, as damage would.
	Media MediaInternals
}

// MediaInternals is what the media tests need of an engine's own records.
type MediaInternals interface {
	// ChunkSize is the size of the chunks the engine writes files in.
	ChunkSize() int
	// Records counts the records of stored media: files and chunks.
	Records(t testing.TB, st store.Store) (files, chunks int64)
	// DropChunk deletes chunk n of a stored file.
	DropChunk(t testing.TB, st store.Store, id string, n int)
	// ForgetFile deletes a file's description only, leaving its chunks as a
	// process that died mid-upload leaves them.
	ForgetFile(t testing.TB, st store.Store, id string)
}

type behaviour struct {
	name string
	run  func(t *testing.T, h Harness)
}

var behaviours []behaviour

// add registers behaviours: name, func, name, func...
func add(pairs ...any) bool {
	for i := 0; i+1 < len(pairs); i += 2 {
		behaviours = append(behaviours, behaviour{pairs[i].(string), pairs[i+1].(func(*testing.T, Harness))})
	}
	return true
}

// Run runs every behaviour against h, each as a subtest.
func Run(t *testing.T, h Harness) {
	sort.Slice(behaviours, func(i, j int) bool { return behaviours[i].name < behaviours[j].name })
	for _, b := range behaviours {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			b.run(t, h)
		})
	}
}

// skipOnFerretDB skips where FerretDB falls short of MongoDB's semantics.
func skipOnFerretDB(t *testing.T, h Harness, why string) {
	t.Helper()
	if h.FerretDB {
		t.Skip("FerretDB, the MongoDB stand-in here, falls short of MongoDB's documented semantics: " + why)
	}
}
