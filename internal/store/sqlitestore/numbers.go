package sqlitestore

import (
	"context"
	"fmt"

	"app/internal/store"
)

// Number checks (issue 19): a row per number WhatsApp was asked about.

var _ = schema(
	`CREATE TABLE number_checks (
		number TEXT PRIMARY KEY,
		doc BLOB NOT NULL
	) STRICT`,
)

var (
	sqlSaveNumberCheck = exec(`INSERT INTO number_checks(number, doc) VALUES(?, ?)
		ON CONFLICT(number) DO UPDATE SET doc = excluded.doc`)
	// One primary-key lookup per number of the JSON array.
	sqlNumberChecks = query(`SELECT doc FROM number_checks WHERE number IN (SELECT value FROM json_each(?))`)
)

// SaveNumberChecks stores checks in one write, replacing those of the
// same number.
func (s *Store) SaveNumberChecks(ctx context.Context, cs []store.NumberCheck) error {
	if len(cs) == 0 {
		return nil
	}
	err := s.write(ctx, func(t *wtx) error {
		for _, c := range cs {
			c.Account = store.DefaultAccount
			d, err := doc(c)
			if err != nil {
				return err
			}
			if _, err := t.exec(sqlSaveNumberCheck, c.Number, d); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: save %d number checks: %w", len(cs), err)
	}
	return nil
}

// NumberChecks reads the stored checks of numbers in one query.
func (s *Store) NumberChecks(ctx context.Context, numbers []string) ([]store.NumberCheck, error) {
	return allOf[store.NumberCheck](ctx, s, "read number checks", sqlNumberChecks, numbers)
}
