package sqlitestore

import (
	"context"
	"fmt"
	"time"

	"app/internal/store"
)

// The outbox: one row per message, which grows to millions, so every
// query below has an index of its own. Workers insert queued messages;
// the primary is the one writer of their progress and replaces the row
// (SaveOutbox). Cancel requests are a table beside it, so the message
// keeps one writer.
//
// Columns a query does not filter by are NULL when the document leaves
// them empty (wa_id, sent_ns, event_seq, media_id), as MongoDB leaves the
// field out: the partial indexes then hold only the rows that have one.

var _ = schema(
	`CREATE TABLE outbox (
		id TEXT PRIMARY KEY,
		account TEXT NOT NULL DEFAULT 'default',
		chat TEXT NOT NULL,
		status TEXT NOT NULL,
		-- 1 when queued or sending: what the primary still has to send. Set
		-- with status, not generated: SQLite reads no generated column
		-- from an index alone, and the backlog's count should not read rows.
		unfinished INTEGER NOT NULL,
		queued_ns INTEGER NOT NULL,
		wa_id TEXT,
		sent_ns INTEGER,
		event_seq INTEGER,
		media_id TEXT,
		doc BLOB NOT NULL
	) STRICT`,
	// Pages, newest first: of everything, of a chat, of a status, of both
	// (each also read oldest first: OutboxByStatus).
	`CREATE INDEX outbox_newest ON outbox(queued_ns, id)`,
	`CREATE INDEX outbox_chat ON outbox(chat, queued_ns, id)`,
	`CREATE INDEX outbox_status ON outbox(status, queued_ns, id)`,
	`CREATE INDEX outbox_chat_status ON outbox(chat, status, queued_ns, id)`,
	// The primary's queue and the backlog: only the unsent messages.
	`CREATE INDEX outbox_unfinished ON outbox(unfinished, queued_ns, id) WHERE unfinished = 1`,
	// Receipt matching, the daily cap, and the statuses not yet announced.
	`CREATE INDEX outbox_wa_id ON outbox(wa_id) WHERE wa_id IS NOT NULL`,
	`CREATE INDEX outbox_sent ON outbox(sent_ns) WHERE sent_ns IS NOT NULL`,
	`CREATE INDEX outbox_event_seq ON outbox(event_seq) WHERE event_seq IS NOT NULL`,
	// Media retention asks whether an unsent message sends a file.
	`CREATE INDEX outbox_media ON outbox(media_id) WHERE media_id IS NOT NULL`,
	`CREATE TABLE outbox_cancels (
		message_id TEXT PRIMARY KEY,
		requested_ns INTEGER NOT NULL,
		pending INTEGER NOT NULL,
		doc BLOB NOT NULL
	) STRICT`,
	`CREATE INDEX outbox_cancels_pending ON outbox_cancels(pending, requested_ns) WHERE pending = 1`,
)

// The page statements take a cursor always: the first page's is after
// every message (firstPage), so each page shape is one statement served
// by one index.
var (
	sqlEnqueue = exec(`INSERT INTO outbox(id, chat, status, unfinished, queued_ns, wa_id, sent_ns, event_seq, media_id, doc)
		VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
	sqlSaveOutbox = exec(`UPDATE outbox SET chat = ?, status = ?, unfinished = ?, queued_ns = ?, wa_id = ?, sent_ns = ?, event_seq = ?, media_id = ?, doc = ?
		WHERE id = ?`)
	sqlOutboxMessage = query(`SELECT doc FROM outbox WHERE id = ?`)
	sqlOutboxPage    = query(`SELECT doc FROM outbox WHERE (queued_ns, id) < (?, ?)
		ORDER BY queued_ns DESC, id DESC LIMIT ?`)
	sqlOutboxPageChat = query(`SELECT doc FROM outbox WHERE chat = ? AND (queued_ns, id) < (?, ?)
		ORDER BY queued_ns DESC, id DESC LIMIT ?`)
	sqlOutboxPageStatus = query(`SELECT doc FROM outbox WHERE status = ? AND (queued_ns, id) < (?, ?)
		ORDER BY queued_ns DESC, id DESC LIMIT ?`)
	sqlOutboxPageChatStatus = query(`SELECT doc FROM outbox WHERE chat = ? AND status = ? AND (queued_ns, id) < (?, ?)
		ORDER BY queued_ns DESC, id DESC LIMIT ?`)
	sqlOutboxUnfinished = query(`SELECT doc FROM outbox WHERE unfinished = 1 ORDER BY queued_ns, id LIMIT ?`)
	sqlOutboxBacklog    = query(`SELECT count(*) FROM outbox WHERE unfinished = 1`)
	sqlOutboxByStatus   = query(`SELECT doc FROM outbox WHERE status = ? ORDER BY queued_ns, id LIMIT ?`)
	sqlOutboxByWAID     = query(`SELECT doc FROM outbox WHERE wa_id = ? LIMIT 1`)
	sqlCountSent        = query(`SELECT count(*) FROM outbox WHERE sent_ns >= ?`)
	sqlUnannounced      = query(`SELECT doc FROM outbox WHERE event_seq > ? ORDER BY event_seq`)
)

// nullIfEmpty stores "" as NULL, where the MongoDB engine omits the
// field.
func nullIfEmpty(v string) any {
	if v == "" {
		return nil
	}
	return v
}

// outboxCols are m's typed columns, in sqlEnqueue's and sqlSaveOutbox's
// order, followed by its document.
func outboxCols(m *store.OutboxMessage) ([]any, error) {
	d, err := doc(m)
	if err != nil {
		return nil, err
	}
	unfinished := 0
	if m.Status == store.StatusQueued || m.Status == store.StatusSending {
		unfinished = 1
	}
	return []any{m.Chat, m.Status, unfinished, m.QueuedNS, nullIfEmpty(m.WAID), nsOrNull(m.SentAt), nullIfZero(m.EventSeq), nullIfEmpty(m.MediaID), d}, nil
}

// EnqueueMessage inserts m as queued; ID, QueuedNS and the times are set
// when empty. It is what a worker does to send a message. ErrExists when
// the id is taken (an Idempotency-Key's retry, or an insert run again).
func (s *Store) EnqueueMessage(ctx context.Context, m *store.OutboxMessage) error {
	m.Queued()
	cols, err := outboxCols(m)
	if err != nil {
		return err
	}
	err = s.write(ctx, func(t *wtx) error {
		_, err := t.exec(sqlEnqueue, append([]any{m.ID}, cols...)...)
		if duplicate(err) {
			return store.ErrExists
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("store: enqueue %s: %w", m.ID, err)
	}
	return nil
}

// OutboxMessage reads one message.
func (s *Store) OutboxMessage(ctx context.Context, id string) (store.OutboxMessage, error) {
	return one[store.OutboxMessage](ctx, s, "read message "+id, sqlOutboxMessage, id)
}

// OutboxPage lists messages newest first, optionally of one chat and one
// status, strictly older than the cursor (queued_ns and id of the last
// message of the previous page; zero for the first page).
func (s *Store) OutboxPage(ctx context.Context, chat, status string, beforeNS int64, beforeID string, limit int) ([]store.OutboxMessage, error) {
	before, beforeID := firstPage(beforeNS, beforeID)
	n := findLimit(limit)
	var st *stmt
	var args []any
	switch {
	case chat != "" && status != "":
		st, args = sqlOutboxPageChatStatus, []any{chat, status, before, beforeID, n}
	case chat != "":
		st, args = sqlOutboxPageChat, []any{chat, before, beforeID, n}
	case status != "":
		st, args = sqlOutboxPageStatus, []any{status, before, beforeID, n}
	default:
		st, args = sqlOutboxPage, []any{before, beforeID, n}
	}
	return all[store.OutboxMessage](ctx, s, "list messages", st, args...)
}

// OutboxUnfinished lists queued and sending messages in queue order, at
// most limit.
func (s *Store) OutboxUnfinished(ctx context.Context, limit int) ([]store.OutboxMessage, error) {
	return all[store.OutboxMessage](ctx, s, "list outbox", sqlOutboxUnfinished, findLimit(limit))
}

// OutboxByStatus lists messages with one status in queue order (tests,
// and the API's listing).
func (s *Store) OutboxByStatus(ctx context.Context, status string, limit int) ([]store.OutboxMessage, error) {
	return all[store.OutboxMessage](ctx, s, "list outbox", sqlOutboxByStatus, status, findLimit(limit))
}

// OutboxByWAID finds the message sent with WhatsApp id waID.
func (s *Store) OutboxByWAID(ctx context.Context, waID string) (store.OutboxMessage, error) {
	return one[store.OutboxMessage](ctx, s, "find message by WhatsApp id", sqlOutboxByWAID, waID)
}

// SaveOutbox writes the primary's view of m (status, attempts, times): the
// primary is the only writer of a queued message's progress, so a whole
// replacement is safe. It reports false when m no longer exists.
func (s *Store) SaveOutbox(ctx context.Context, m *store.OutboxMessage) (bool, error) {
	m.UpdatedAt = time.Now()
	cols, err := outboxCols(m)
	if err != nil {
		return false, err
	}
	found := false
	err = s.write(ctx, func(t *wtx) error {
		res, err := t.exec(sqlSaveOutbox, append(cols, m.ID)...)
		if err != nil {
			return err
		}
		found = affected(res) == 1
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("store: save message %s: %w", m.ID, err)
	}
	return found, nil
}

// CountSentSince counts messages sent since t (the daily cap): a count of
// an index range, so it costs the day's messages, not the history.
func (s *Store) CountSentSince(ctx context.Context, t time.Time) (int64, error) {
	return scalar[int64](ctx, s, "count sent messages", sqlCountSent, ns(t))
}

// OutboxBacklog counts the messages not sent yet (queued or sending) and
// gives when the oldest of them was queued (zero when none).
func (s *Store) OutboxBacklog(ctx context.Context) (int64, time.Time, error) {
	n, err := scalar[int64](ctx, s, "count the backlog", sqlOutboxBacklog)
	if err != nil || n == 0 {
		return n, time.Time{}, err
	}
	oldest, err := all[store.OutboxMessage](ctx, s, "oldest queued message", sqlOutboxUnfinished, 1)
	if err != nil || len(oldest) == 0 {
		return n, time.Time{}, err
	}
	return n, oldest[0].QueuedAt, nil
}

// OutboxUnannounced lists messages whose status change was stored for an
// event log position after seq (the log's end): their events are missing.
func (s *Store) OutboxUnannounced(ctx context.Context, seq int64) ([]store.OutboxMessage, error) {
	return all[store.OutboxMessage](ctx, s, "list unannounced messages", sqlUnannounced, seq)
}

var (
	sqlRequestCancel = exec(`INSERT INTO outbox_cancels(message_id, requested_ns, pending, doc) VALUES(?, ?, 1, ?)
		ON CONFLICT(message_id) DO NOTHING`)
	sqlCancelRequest  = query(`SELECT doc FROM outbox_cancels WHERE message_id = ?`)
	sqlPendingCancels = query(`SELECT doc FROM outbox_cancels WHERE pending = 1 ORDER BY requested_ns LIMIT 1000`)
	sqlDecideCancel   = exec(`UPDATE outbox_cancels SET pending = ?, doc = ? WHERE message_id = ?`)
)

// RequestCancel records a cancel request; a second request for the same
// message is the same request.
func (s *Store) RequestCancel(ctx context.Context, id string) error {
	c := store.CancelRequest{MessageID: id, RequestedAt: time.Now()}
	d, err := doc(c)
	if err != nil {
		return err
	}
	if err := s.write(ctx, func(t *wtx) error {
		_, err := t.exec(sqlRequestCancel, id, ns(c.RequestedAt), d)
		return err
	}); err != nil {
		return fmt.Errorf("store: request cancel of %s: %w", id, err)
	}
	return nil
}

// CancelRequest reads the request for message id.
func (s *Store) CancelRequest(ctx context.Context, id string) (store.CancelRequest, error) {
	return one[store.CancelRequest](ctx, s, "read cancel request", sqlCancelRequest, id)
}

// PendingCancels lists requests the primary has not decided, oldest
// first, at most 1000.
func (s *Store) PendingCancels(ctx context.Context) ([]store.CancelRequest, error) {
	return all[store.CancelRequest](ctx, s, "list cancel requests", sqlPendingCancels)
}

// DecideCancel records the primary's decision on a request (a request
// that does not exist stays so). One without an outcome stays pending.
func (s *Store) DecideCancel(ctx context.Context, c store.CancelRequest) error {
	c.DecidedAt = time.Now()
	d, err := doc(c)
	if err != nil {
		return err
	}
	pending := 0
	if c.Outcome == "" {
		pending = 1
	}
	if err := s.write(ctx, func(t *wtx) error {
		_, err := t.exec(sqlDecideCancel, pending, d, c.MessageID)
		return err
	}); err != nil {
		return fmt.Errorf("store: decide cancel of %s: %w", c.MessageID, err)
	}
	return nil
}
