package sqlitestore

// Stand-ins for the outbox and schedules tables, which another branch
// writes, with only what PruneMedia's mediaInUse reads: media_id (with an
// index, which mediaInUse's lookup needs), outbox.status and
// schedules.deleted. Delete this file (and todo_mediainuse_test.go) when
// outbox.go and schedules.go declare the real tables: Open fails while
// both are there (the tables would be created twice).
var _ = schema(
	`CREATE TABLE outbox (
		id TEXT PRIMARY KEY,
		status TEXT NOT NULL,
		media_id TEXT
	) STRICT`,
	`CREATE INDEX outbox_media ON outbox(media_id) WHERE media_id IS NOT NULL`,
	`CREATE TABLE schedules (
		id TEXT PRIMARY KEY,
		deleted INTEGER NOT NULL DEFAULT 0,
		media_id TEXT
	) STRICT`,
	`CREATE INDEX schedules_media ON schedules(media_id) WHERE media_id IS NOT NULL`,
)
