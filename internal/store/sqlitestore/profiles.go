package sqlitestore

import (
	"context"
	"fmt"

	"app/internal/store"
)

// Profiles (issue 19): a row per JID WhatsApp was asked about.

var _ = schema(
	`CREATE TABLE wa_profiles (
		jid TEXT PRIMARY KEY,
		doc BLOB NOT NULL
	) STRICT`,
)

var (
	sqlSaveProfile = exec(`INSERT INTO wa_profiles(jid, doc) VALUES(?, ?)
		ON CONFLICT(jid) DO UPDATE SET doc = excluded.doc`)
	// One primary-key lookup per JID of the JSON array.
	sqlProfiles = query(`SELECT doc FROM wa_profiles WHERE jid IN (SELECT value FROM json_each(?))`)
)

// SaveProfile stores p, replacing the profile of the same JID.
func (s *Store) SaveProfile(ctx context.Context, p store.Profile) error {
	p.Account = store.DefaultAccount
	d, err := doc(p)
	if err != nil {
		return err
	}
	if err := s.write(ctx, func(t *wtx) error {
		_, err := t.exec(sqlSaveProfile, p.JID, d)
		return err
	}); err != nil {
		return fmt.Errorf("store: save the profile of %s: %w", p.JID, err)
	}
	return nil
}

// Profiles reads the stored profiles of jids in one query.
func (s *Store) Profiles(ctx context.Context, jids []string) ([]store.Profile, error) {
	return allOf[store.Profile](ctx, s, "read profiles", sqlProfiles, jids)
}
