package sqlitestore

import (
	"context"
	"fmt"
	"time"

	"app/internal/store"
)

// Heartbeats, the primary lease, API keys, browser tokens and commands:
// small tables, each row written by one process.

var _ = schema(
	`CREATE TABLE heartbeats (
		id TEXT PRIMARY KEY,
		last_seen_ns INTEGER NOT NULL,
		doc BLOB NOT NULL
	) STRICT`,
	`CREATE INDEX heartbeats_last_seen ON heartbeats(last_seen_ns)`,
	`CREATE TABLE leases (
		epoch INTEGER PRIMARY KEY,
		holder TEXT NOT NULL,
		doc BLOB NOT NULL
	) STRICT`,
	`CREATE TABLE api_keys (
		id TEXT PRIMARY KEY,
		created_ns INTEGER NOT NULL,
		doc BLOB NOT NULL
	) STRICT`,
	`CREATE INDEX api_keys_created ON api_keys(created_ns)`,
	`CREATE TABLE event_tokens (
		hash TEXT PRIMARY KEY,
		expires_ns INTEGER NOT NULL,
		doc BLOB NOT NULL
	) STRICT`,
	`CREATE INDEX event_tokens_expires ON event_tokens(expires_ns)`,
	`CREATE TABLE commands (
		id TEXT PRIMARY KEY,
		created_ns INTEGER NOT NULL,
		pending INTEGER NOT NULL,
		decided_ns INTEGER,
		doc BLOB NOT NULL
	) STRICT`,
	`CREATE INDEX commands_pending ON commands(pending, created_ns) WHERE pending = 1`,
	`CREATE INDEX commands_decided ON commands(decided_ns) WHERE decided_ns IS NOT NULL`,
)

// ns is t as the integer columns keep it; the zero time is 0.
func ns(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

var (
	sqlWriteHeartbeat = exec(`INSERT INTO heartbeats(id, last_seen_ns, doc) VALUES(?, ?, ?)
		ON CONFLICT(id) DO UPDATE SET last_seen_ns = excluded.last_seen_ns, doc = excluded.doc`)
	sqlHeartbeats      = query(`SELECT doc FROM heartbeats WHERE last_seen_ns >= ? ORDER BY id LIMIT 1000`)
	sqlPruneHeartbeats = exec(`DELETE FROM heartbeats WHERE last_seen_ns < ?`)
)

// WriteHeartbeat records hb, creating the row on first use.
func (s *Store) WriteHeartbeat(ctx context.Context, hb store.Heartbeat) error {
	d, err := doc(hb)
	if err != nil {
		return err
	}
	if err := s.write(ctx, func(t *wtx) error {
		_, err := t.exec(sqlWriteHeartbeat, hb.ID, ns(hb.LastSeen), d)
		return err
	}); err != nil {
		return fmt.Errorf("store: write heartbeat: %w", err)
	}
	return nil
}

// Heartbeats lists the processes seen since since, by id.
func (s *Store) Heartbeats(ctx context.Context, since time.Time) ([]store.Heartbeat, error) {
	return all[store.Heartbeat](ctx, s, "list heartbeats", sqlHeartbeats, ns(since))
}

// PruneHeartbeats deletes the records of processes not seen since before.
func (s *Store) PruneHeartbeats(ctx context.Context, before time.Time) (int64, error) {
	return s.deleted(ctx, "prune heartbeats", sqlPruneHeartbeats, ns(before))
}

// deleted runs a deleting statement and says how many rows went.
func (s *Store) deleted(ctx context.Context, what string, st *stmt, args ...any) (int64, error) {
	var n int64
	if err := s.write(ctx, func(t *wtx) error {
		res, err := t.exec(st, args...)
		if err == nil {
			n = affected(res)
		}
		return err
	}); err != nil {
		return 0, fmt.Errorf("store: %s: %w", what, err)
	}
	return n, nil
}

var (
	sqlCurrentLease = query(`SELECT doc FROM leases ORDER BY epoch DESC LIMIT 1`)
	sqlClaimLease   = exec(`INSERT INTO leases(epoch, holder, doc) VALUES(?, ?, ?)`)
	sqlLeaseOf      = exec(`SELECT doc FROM leases WHERE epoch = ? AND holder = ?`)
	sqlRenewLease   = exec(`UPDATE leases SET doc = ? WHERE epoch = ?`)
	sqlLeaseAbove   = exec(`SELECT count(*) FROM leases WHERE epoch > ?`)
	sqlPruneLeases  = exec(`DELETE FROM leases WHERE epoch < ?`)
)

// CurrentLease returns the highest epoch, or ErrNotFound before the first.
func (s *Store) CurrentLease(ctx context.Context) (store.Lease, error) {
	return one[store.Lease](ctx, s, "read lease", sqlCurrentLease)
}

// ClaimLease inserts epoch l.Epoch. It reports false, without error, when
// another contender claimed that epoch first.
func (s *Store) ClaimLease(ctx context.Context, l store.Lease) (bool, error) {
	d, err := doc(l)
	if err != nil {
		return false, err
	}
	err = s.write(ctx, func(t *wtx) error {
		_, err := t.exec(sqlClaimLease, l.Epoch, l.Holder, d)
		if duplicate(err) {
			return store.ErrExists
		}
		return err
	})
	if err == store.ErrExists {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("store: claim lease: %w", err)
	}
	return true, nil
}

// RenewLease moves the expiry of the holder's epoch. It reports false when
// the epoch is not (or no longer) held by holder, or a higher epoch exists.
func (s *Store) RenewLease(ctx context.Context, epoch int64, holder string, expires time.Time) (bool, error) {
	held := false
	err := s.write(ctx, func(t *wtx) error {
		l, err := txOne[store.Lease](t, "read lease", sqlLeaseOf, epoch, holder)
		if err == store.ErrNotFound {
			return nil
		}
		if err != nil {
			return err
		}
		var above int64
		if err := t.queryRow(sqlLeaseAbove, epoch).Scan(&above); err != nil {
			return err
		}
		if above > 0 {
			return nil
		}
		l.ExpiresAt = expires
		d, err := doc(l)
		if err != nil {
			return err
		}
		if _, err := t.exec(sqlRenewLease, d, epoch); err != nil {
			return err
		}
		held = true
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("store: renew lease: %w", err)
	}
	return held, nil
}

// PruneLeases deletes epochs below keepFrom; the holder calls it.
func (s *Store) PruneLeases(ctx context.Context, keepFrom int64) error {
	_, err := s.deleted(ctx, "prune leases", sqlPruneLeases, keepFrom)
	return err
}

var (
	sqlCreateKey = exec(`INSERT INTO api_keys(id, created_ns, doc) VALUES(?, ?, ?)`)
	sqlKey       = query(`SELECT doc FROM api_keys WHERE id = ?`)
	sqlKeys      = query(`SELECT doc FROM api_keys ORDER BY created_ns`)
	sqlKeyW      = exec(`SELECT doc FROM api_keys WHERE id = ?`)
	sqlSetKey    = exec(`UPDATE api_keys SET doc = ? WHERE id = ?`)
)

// CreateAPIKey stores k; ErrExists when its id is taken.
func (s *Store) CreateAPIKey(ctx context.Context, k store.APIKey) error {
	return s.insert(ctx, "create key", sqlCreateKey, k, k.ID, ns(k.CreatedAt))
}

// insert stores v's document after the columns cols; ErrExists when its
// key is taken.
func (s *Store) insert(ctx context.Context, what string, st *stmt, v any, cols ...any) error {
	d, err := doc(v)
	if err != nil {
		return err
	}
	err = s.write(ctx, func(t *wtx) error {
		_, err := t.exec(st, append(cols, d)...)
		if duplicate(err) {
			return store.ErrExists
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("store: %s: %w", what, err)
	}
	return nil
}

// APIKey reads the key with id.
func (s *Store) APIKey(ctx context.Context, id string) (store.APIKey, error) {
	return one[store.APIKey](ctx, s, "read key", sqlKey, id)
}

// APIKeys lists every key, oldest first.
func (s *Store) APIKeys(ctx context.Context) ([]store.APIKey, error) {
	return all[store.APIKey](ctx, s, "list keys", sqlKeys)
}

// RevokeAPIKey marks the key revoked; ErrNotFound when there is none.
func (s *Store) RevokeAPIKey(ctx context.Context, id string) error {
	err := s.write(ctx, func(t *wtx) error {
		k, err := txOne[store.APIKey](t, "read key", sqlKeyW, id)
		if err != nil {
			return err
		}
		k.RevokedAt = time.Now()
		d, err := doc(k)
		if err != nil {
			return err
		}
		_, err = t.exec(sqlSetKey, d, id)
		return err
	})
	if err == store.ErrNotFound {
		return err
	}
	if err != nil {
		return fmt.Errorf("store: revoke key: %w", err)
	}
	return nil
}

var (
	sqlCreateToken = exec(`INSERT INTO event_tokens(hash, expires_ns, doc) VALUES(?, ?, ?)`)
	sqlToken       = query(`SELECT doc FROM event_tokens WHERE hash = ?`)
	sqlPruneTokens = exec(`DELETE FROM event_tokens WHERE expires_ns < ?`)
)

// CreateEventToken stores t; ErrExists when it is stored already.
func (s *Store) CreateEventToken(ctx context.Context, t store.EventToken) error {
	return s.insert(ctx, "create event token", sqlCreateToken, t, t.Hash, ns(t.ExpiresAt))
}

// EventToken reads the token stored under hash, expired or not.
func (s *Store) EventToken(ctx context.Context, hash string) (store.EventToken, error) {
	return one[store.EventToken](ctx, s, "read event token", sqlToken, hash)
}

// PruneEventTokens deletes the tokens that expired before t.
func (s *Store) PruneEventTokens(ctx context.Context, before time.Time) (int64, error) {
	return s.deleted(ctx, "prune event tokens", sqlPruneTokens, ns(before))
}

var (
	sqlInsertCommand   = exec(`INSERT INTO commands(id, created_ns, pending, doc) VALUES(?, ?, 1, ?)`)
	sqlCommand         = query(`SELECT doc FROM commands WHERE id = ?`)
	sqlPendingCommands = query(`SELECT doc FROM commands WHERE pending = 1 ORDER BY created_ns LIMIT 100`)
	sqlDecideCommand   = exec(`UPDATE commands SET pending = 0, decided_ns = ?, doc = ? WHERE id = ?`)
	sqlPruneCommands   = exec(`DELETE FROM commands WHERE decided_ns IS NOT NULL AND decided_ns < ?`)
)

// InsertCommand records c for the primary; ID and CreatedAt are set when
// empty, so that an insert run again with c finds it (ErrExists).
func (s *Store) InsertCommand(ctx context.Context, c *store.Command) error {
	if c.ID == "" {
		c.ID = store.NewMessageID()
	}
	if c.CreatedAt.IsZero() {
		c.CreatedAt = time.Now()
	}
	return s.insert(ctx, "insert command "+c.ID, sqlInsertCommand, c, c.ID, ns(c.CreatedAt))
}

// Command reads one command.
func (s *Store) Command(ctx context.Context, id string) (store.Command, error) {
	return one[store.Command](ctx, s, "read command", sqlCommand, id)
}

// PendingCommands lists commands no primary has run, oldest first.
func (s *Store) PendingCommands(ctx context.Context) ([]store.Command, error) {
	return all[store.Command](ctx, s, "list commands", sqlPendingCommands)
}

// DecideCommand records the outcome of c.
func (s *Store) DecideCommand(ctx context.Context, c store.Command) error {
	c.DecidedAt = time.Now()
	d, err := doc(c)
	if err != nil {
		return err
	}
	if err := s.write(ctx, func(t *wtx) error {
		_, err := t.exec(sqlDecideCommand, ns(c.DecidedAt), d, c.ID)
		return err
	}); err != nil {
		return fmt.Errorf("store: decide command: %w", err)
	}
	return nil
}

// PruneCommands deletes commands decided before t.
func (s *Store) PruneCommands(ctx context.Context, before time.Time) error {
	_, err := s.deleted(ctx, "prune commands", sqlPruneCommands, ns(before))
	return err
}
