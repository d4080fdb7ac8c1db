package cli

// The store's engines register themselves with store.Connect, which picks
// SQLite when MONGO_URI is empty and MongoDB otherwise; the binary has
// both, and nothing else (FerretDB is only the tests' stand-in for
// MongoDB, see internal/testdb).
import (
	_ "app/internal/store/mongostore"  // MONGO_URI set
	_ "app/internal/store/sqlitestore" // MONGO_URI empty: $APP_STATE_DIR/app.db
)
