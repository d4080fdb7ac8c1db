package mongostore_test

import (
	"context"
	"testing"

	"github.com/rs/zerolog"

	"app/internal/store"
	"app/internal/store/mongostore"
	"app/internal/store/storetest"
	"app/internal/testdb"
)

func TestConformance(t *testing.T) {
	open := func(t testing.TB, db *testdb.DB) store.Store {
		st := db.Connect(nil)
		if err := st.EnsureIndexes(context.Background(), zerolog.Nop()); err != nil {
			t.Fatal(err)
		}
		return st
	}
	storetest.Run(t, storetest.Harness{
		Engine:   store.MongoDB,
		FerretDB: true,
		Open:     func(t testing.TB) store.Store { return open(t, testdb.StartMongo(t)) },
		OpenTwo: func(t testing.TB) (store.Store, store.Store) {
			db := testdb.StartMongo(t)
			return open(t, db), db.Connect(nil)
		},
		Media: mongostore.MediaInternals{},
	})
}
