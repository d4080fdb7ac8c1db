package sqlitestore_test

import (
	"testing"

	"app/internal/store"
	"app/internal/store/sqlitestore"
	"app/internal/store/storetest"
	"app/internal/testdb"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, storetest.Harness{
		Engine: store.SQLite,
		Open:   func(t testing.TB) store.Store { return testdb.Start(t).Connect(nil) },
		OpenTwo: func(t testing.TB) (store.Store, store.Store) {
			db := testdb.Start(t)
			return db.Connect(nil), db.Connect(nil)
		},
		Media: sqlitestore.MediaInternals{},
	})
}
