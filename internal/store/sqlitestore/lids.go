package sqlitestore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"app/internal/store"
)

// Phone numbers and LIDs: the pairs WhatsApp told us (lids, a row per
// person: pn and lid each unique, so a re-mapping replaces the rows that
// had either), a contact's two forms, and the incoming messages whose
// file was asked of the sender's phone again (incoming_media_pending, a
// partial index holding those few).

var _ = schema(
	`CREATE TABLE lids (
		pn TEXT PRIMARY KEY,
		lid TEXT NOT NULL UNIQUE,
		account TEXT NOT NULL DEFAULT 'default',
		doc BLOB NOT NULL
	) STRICT`,
)

var (
	// A number or a LID in another pair: that pair goes (the newest wins).
	sqlDropLIDPairs = exec(`DELETE FROM lids WHERE lid = ? AND pn <> ?`)
	sqlSaveLIDPair  = exec(`INSERT INTO lids(pn, lid, doc) VALUES(?, ?, ?)
		ON CONFLICT(pn) DO UPDATE SET lid = excluded.lid, doc = excluded.doc`)
	sqlLIDPairByPN  = query(`SELECT doc FROM lids WHERE pn = ?`)
	sqlLIDPairByLID = query(`SELECT doc FROM lids WHERE lid = ?`)
	sqlContactW     = exec(`SELECT doc FROM contacts WHERE jid = ?`)
	sqlMediaPending = query(`SELECT doc FROM incoming WHERE media_pending_ns >= ? ORDER BY media_pending_ns LIMIT ?`)
)

// SaveLIDPair records that pn and lid are one person, replacing any pair
// that had either.
func (s *Store) SaveLIDPair(ctx context.Context, pn, lid string) error {
	if !store.IsPN(pn) || !store.IsLID(lid) {
		return fmt.Errorf("store: save LID pair: %q and %q are not a phone number's JID and a LID", pn, lid)
	}
	d, err := doc(store.LIDPair{Account: store.DefaultAccount, PN: pn, LID: lid, UpdatedAt: time.Now()})
	if err != nil {
		return err
	}
	if err := s.write(ctx, func(t *wtx) error {
		if _, err := t.exec(sqlDropLIDPairs, lid, pn); err != nil {
			return err
		}
		_, err := t.exec(sqlSaveLIDPair, pn, lid, d)
		return err
	}); err != nil {
		return fmt.Errorf("store: save LID pair %s %s: %w", pn, lid, err)
	}
	return nil
}

// LIDPair reads the pair that has jid, a number's JID or a LID.
func (s *Store) LIDPair(ctx context.Context, jid string) (store.LIDPair, error) {
	if store.IsLID(jid) {
		return one[store.LIDPair](ctx, s, "read LID pair", sqlLIDPairByLID, jid)
	}
	return one[store.LIDPair](ctx, s, "read LID pair", sqlLIDPairByPN, jid)
}

// SaveContactAddr records a contact's number and LID; an empty one is
// left as it was.
func (s *Store) SaveContactAddr(ctx context.Context, jid, pn, lid string) error {
	return s.editContact(ctx, jid, "save number and LID", func(c *store.Contact) {
		if pn != "" {
			c.PN = pn
		}
		if lid != "" {
			c.LID = lid
		}
	})
}

// editContact changes the contact jid (a new one when there is none) in
// one write: its push name and its addresses are saved apart.
func (s *Store) editContact(ctx context.Context, jid, what string, edit func(c *store.Contact)) error {
	err := s.write(ctx, func(t *wtx) error {
		c, err := txOne[store.Contact](t, "read contact", sqlContactW, jid)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
		c.JID, c.Account, c.UpdatedAt = jid, store.DefaultAccount, time.Now()
		edit(&c)
		d, err := doc(c)
		if err != nil {
			return err
		}
		_, err = t.exec(sqlSaveContact, jid, d)
		return err
	})
	if err != nil {
		return fmt.Errorf("store: %s of %s: %w", what, jid, err)
	}
	return nil
}

// mediaPendingNS is the incoming_media_pending column of m: when it was
// received while its media is pending, NULL otherwise.
func mediaPendingNS(m store.IncomingMessage) any {
	if m.Media == nil || !m.Media.Pending {
		return nil
	}
	return ns(m.ReceivedAt)
}

// IncomingMediaPending lists the messages whose media is pending received
// since since, oldest first: a range of incoming_media_pending.
func (s *Store) IncomingMediaPending(ctx context.Context, since time.Time, limit int) ([]store.IncomingMessage, error) {
	return all[store.IncomingMessage](ctx, s, "list messages with pending media", sqlMediaPending, ns(since), findLimit(limit))
}
