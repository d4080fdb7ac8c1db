package sqlitestore

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"time"

	"app/internal/store"
)

// Webhooks: the subscriptions (written by workers, versioned), the
// primary's progress on each, and the record of each delivery. There are
// few subscriptions; deliveries grow by one per event and subscription,
// so they are read by subscription and position (the primary key) or by
// subscription, status and position, and pruned by last attempt.

var _ = schema(
	`CREATE TABLE webhooks (
		id TEXT PRIMARY KEY,
		created_ns INTEGER NOT NULL,
		version INTEGER NOT NULL,
		doc BLOB NOT NULL
	) STRICT`,
	`CREATE INDEX webhooks_created ON webhooks(created_ns, id)`,
	`CREATE TABLE webhook_state (
		id TEXT PRIMARY KEY,
		doc BLOB NOT NULL
	) STRICT`,
	`CREATE TABLE webhook_deliveries (
		webhook_id TEXT NOT NULL,
		seq INTEGER NOT NULL,
		status TEXT NOT NULL,
		last_attempt_ns INTEGER NOT NULL,
		doc BLOB NOT NULL,
		PRIMARY KEY (webhook_id, seq)
	) STRICT`,
	`CREATE INDEX webhook_deliveries_status ON webhook_deliveries(webhook_id, status, seq)`,
	`CREATE INDEX webhook_deliveries_last_attempt ON webhook_deliveries(last_attempt_ns)`,
)

var (
	sqlCreateWebhook = exec(`INSERT INTO webhooks(id, created_ns, version, doc) VALUES(?, ?, ?, ?)`)
	sqlWebhook       = query(`SELECT doc FROM webhooks WHERE id = ?`)
	sqlWebhooks      = query(`SELECT doc FROM webhooks ORDER BY created_ns, id`)
	// The version in the WHERE clause makes the replace a compare-and-set.
	sqlUpdateWebhook = exec(`UPDATE webhooks SET created_ns = ?, version = ?, doc = ? WHERE id = ? AND version = ?`)
	sqlWebhookAt     = exec(`SELECT doc FROM webhooks WHERE id = ? AND version = ?`)
	sqlSetWebhook    = exec(`UPDATE webhooks SET version = ?, doc = ? WHERE id = ?`)
	sqlDeleteWebhook = exec(`DELETE FROM webhooks WHERE id = ?`)
)

// CreateWebhook inserts w (version 1); ErrExists when its id is taken.
func (s *Store) CreateWebhook(ctx context.Context, w *store.Webhook) error {
	if w.Version == 0 {
		// Set once, so an insert run again writes the same record.
		now := time.Now()
		w.Version, w.CreatedAt, w.UpdatedAt = 1, now, now
	}
	return s.insert(ctx, "create webhook", sqlCreateWebhook, w, w.ID, ns(w.CreatedAt), w.Version)
}

// Webhook reads one subscription.
func (s *Store) Webhook(ctx context.Context, id string) (store.Webhook, error) {
	return one[store.Webhook](ctx, s, "read webhook", sqlWebhook, id)
}

// Webhooks lists every subscription, oldest first. There are few: the
// primary reads them all on each pass.
func (s *Store) Webhooks(ctx context.Context) ([]store.Webhook, error) {
	return all[store.Webhook](ctx, s, "list webhooks", sqlWebhooks)
}

// UpdateWebhook replaces the definition if it is still at version
// w.Version, and moves it to the next version; ErrConflict otherwise
// (also when there is no such subscription, as on MongoDB).
func (s *Store) UpdateWebhook(ctx context.Context, w *store.Webhook) error {
	prev, prevAt := w.Version, w.UpdatedAt
	w.Version, w.UpdatedAt = prev+1, time.Now()
	d, err := doc(w)
	if err == nil {
		err = s.write(ctx, func(t *wtx) error {
			res, err := t.exec(sqlUpdateWebhook, ns(w.CreatedAt), w.Version, d, w.ID, prev)
			if err == nil && affected(res) == 0 {
				return store.ErrConflict
			}
			return err
		})
	}
	if err != nil {
		w.Version, w.UpdatedAt = prev, prevAt
		if err == store.ErrConflict {
			return err
		}
		return fmt.Errorf("store: update webhook: %w", err)
	}
	return nil
}

// DisableWebhook turns a subscription off with a reason, if it is still
// at version (an edit made meanwhile wins: ErrConflict).
func (s *Store) DisableWebhook(ctx context.Context, id string, version int, reason string) error {
	err := s.write(ctx, func(t *wtx) error {
		w, err := txOne[store.Webhook](t, "read webhook", sqlWebhookAt, id, version)
		if err == store.ErrNotFound {
			return store.ErrConflict
		}
		if err != nil {
			return err
		}
		w.Enabled, w.DisabledReason, w.UpdatedAt, w.Version = false, reason, time.Now(), version+1
		d, err := doc(w)
		if err != nil {
			return err
		}
		_, err = t.exec(sqlSetWebhook, w.Version, d, id)
		return err
	})
	if err == store.ErrConflict {
		return err
	}
	if err != nil {
		return fmt.Errorf("store: disable webhook: %w", err)
	}
	return nil
}

// DeleteWebhook deletes a subscription; ErrNotFound when there is none.
// The primary stops delivering to it at its next pass and forgets its
// progress; its delivery records stay until housekeeping prunes them.
func (s *Store) DeleteWebhook(ctx context.Context, id string) error {
	err := s.write(ctx, func(t *wtx) error {
		res, err := t.exec(sqlDeleteWebhook, id)
		if err == nil && affected(res) == 0 {
			return store.ErrNotFound
		}
		return err
	})
	if err == store.ErrNotFound {
		return err
	}
	if err != nil {
		return fmt.Errorf("store: delete webhook: %w", err)
	}
	return nil
}

var (
	sqlWebhookState     = query(`SELECT doc FROM webhook_state WHERE id = ?`)
	sqlSaveWebhookState = exec(`INSERT INTO webhook_state(id, doc) VALUES(?, ?)
		ON CONFLICT(id) DO UPDATE SET doc = excluded.doc`)
	// One row per subscription: the table is as small as webhooks, and
	// deleting all but some reads all of it.
	sqlForgetWebhookStates = exec(`DELETE FROM webhook_state WHERE id NOT IN (SELECT value FROM json_each(?))`)
)

// WebhookState reads the primary's progress on a subscription.
func (s *Store) WebhookState(ctx context.Context, id string) (store.WebhookState, error) {
	return one[store.WebhookState](ctx, s, "read webhook state", sqlWebhookState, id)
}

// SaveWebhookState writes the primary's progress.
func (s *Store) SaveWebhookState(ctx context.Context, st store.WebhookState) error {
	st.Updated = time.Now()
	d, err := doc(st)
	if err != nil {
		return err
	}
	if err := s.write(ctx, func(t *wtx) error {
		_, err := t.exec(sqlSaveWebhookState, st.ID, d)
		return err
	}); err != nil {
		return fmt.Errorf("store: save webhook state: %w", err)
	}
	return nil
}

// ForgetWebhookStates deletes the progress of subscriptions not in keep
// (deleted ones).
func (s *Store) ForgetWebhookStates(ctx context.Context, keep []string) error {
	if keep == nil {
		keep = []string{}
	}
	ids, err := json.Marshal(keep)
	if err != nil {
		return fmt.Errorf("store: forget webhook states: %w", err)
	}
	if err := s.write(ctx, func(t *wtx) error {
		_, err := t.exec(sqlForgetWebhookStates, string(ids))
		return err
	}); err != nil {
		return fmt.Errorf("store: forget webhook states: %w", err)
	}
	return nil
}

var (
	sqlSaveDelivery = exec(`INSERT INTO webhook_deliveries(webhook_id, seq, status, last_attempt_ns, doc) VALUES(?, ?, ?, ?, ?)
		ON CONFLICT(webhook_id, seq) DO UPDATE SET status = excluded.status,
			last_attempt_ns = excluded.last_attempt_ns, doc = excluded.doc`)
	sqlDeliveries = query(`SELECT doc FROM webhook_deliveries WHERE webhook_id = ? AND seq < ?
		ORDER BY seq DESC LIMIT ?`)
	sqlDeliveriesOfStatus = query(`SELECT doc FROM webhook_deliveries WHERE webhook_id = ? AND status = ? AND seq < ?
		ORDER BY seq DESC LIMIT ?`)
	sqlPruneDeliveries = exec(`DELETE FROM webhook_deliveries WHERE last_attempt_ns < ? AND status != ?`)
)

// SaveDelivery writes the record of a delivery (one per event and
// subscription; each attempt replaces it).
func (s *Store) SaveDelivery(ctx context.Context, d store.WebhookDelivery) error {
	d.Key = store.DeliveryKey(d.WebhookID, d.Seq)
	b, err := doc(d)
	if err != nil {
		return err
	}
	if err := s.write(ctx, func(t *wtx) error {
		_, err := t.exec(sqlSaveDelivery, d.WebhookID, d.Seq, d.Status, ns(d.LastAttemptAt), b)
		return err
	}); err != nil {
		return fmt.Errorf("store: save delivery: %w", err)
	}
	return nil
}

// Deliveries lists a subscription's deliveries, newest event first,
// before seq (0: from the newest), of status (all when empty).
func (s *Store) Deliveries(ctx context.Context, id string, beforeSeq int64, status string, limit int) ([]store.WebhookDelivery, error) {
	if beforeSeq <= 0 {
		beforeSeq = math.MaxInt64
	}
	if status == "" {
		return all[store.WebhookDelivery](ctx, s, "list deliveries", sqlDeliveries, id, beforeSeq, findLimit(limit))
	}
	return all[store.WebhookDelivery](ctx, s, "list deliveries", sqlDeliveriesOfStatus, id, status, beforeSeq, findLimit(limit))
}

// PruneDeliveries deletes records of deliveries settled before t.
func (s *Store) PruneDeliveries(ctx context.Context, before time.Time) (int64, error) {
	return s.deleted(ctx, "prune deliveries", sqlPruneDeliveries, ns(before), store.DeliveryRetrying)
}
