package sqlitestore

import (
	"context"
	"fmt"
	"time"

	"app/internal/store"
)

// The blocklist (issue 19): one record per account, replaced whole.
var _ = schema(
	`CREATE TABLE wa_blocklist (
		account TEXT NOT NULL DEFAULT 'default' PRIMARY KEY,
		doc BLOB NOT NULL
	) STRICT`,
)

var (
	sqlSaveBlocklist = exec(`INSERT INTO wa_blocklist(account, doc) VALUES(?, ?)
		ON CONFLICT(account) DO UPDATE SET doc = excluded.doc`)
	sqlBlocklist = query(`SELECT doc FROM wa_blocklist WHERE account = ?`)
)

// SaveBlocklist replaces the blocklist.
func (s *Store) SaveBlocklist(ctx context.Context, b store.Blocklist) error {
	b.UpdatedAt = time.Now()
	b.Account = store.AccountOr(b.Account)
	if b.JIDs == nil {
		b.JIDs = []string{}
	}
	d, err := doc(b)
	if err != nil {
		return err
	}
	if err := s.write(ctx, func(t *wtx) error {
		_, err := t.exec(sqlSaveBlocklist, store.DefaultAccount, d)
		return err
	}); err != nil {
		return fmt.Errorf("store: save blocklist: %w", err)
	}
	return nil
}

// Blocklist reads the blocklist; ErrNotFound before it was first saved.
func (s *Store) Blocklist(ctx context.Context) (store.Blocklist, error) {
	return one[store.Blocklist](ctx, s, "read blocklist", sqlBlocklist, store.DefaultAccount)
}
