package mongostore

// Collection names.
const (
	colHeartbeats      = "heartbeats"
	colLease           = "primary_lease"
	colOutbox          = "outbox"
	colCancels         = "outbox_cancels"
	colSession         = "wa_session"
	colMessages        = "messages"
	colReceipts        = "receipts"
	colChats           = "chats"
	colContacts        = "contacts"
	colEvents          = "events"
	colEventHead       = "event_head"
	colCommands        = "wa_commands"
	colKeys            = "api_keys"
	colSchedules       = "schedules"
	colScheduleState   = "schedule_state"
	colScheduleRuns    = "schedule_runs"
	colScheduleChanges = "schedule_changes"
	colWebhooks        = "webhooks"
	colWebhookState    = "webhook_state"
	colDeliveries      = "webhook_deliveries"
)

// The log's head: one document holding the newest seq, which the primary
// writes after its appends (coalesced). Readers poll it: a one-document
// read costs the same on any server, where a query of the log costs a
// scan of it on the embedded database; they read the log only when the
// head moved.
const headID = "head"

type eventHead struct {
	Seq int64 `bson:"seq"`
}

// colEventTokens holds browser tokens for the realtime routes. Lookups are
// by _id and the collection holds at most the tokens of the last prune
// interval, so it needs no index; FerretDB does not honour TTL indexes, so
// the primary prunes it (PruneEventTokens).
const colEventTokens = "event_tokens"

const sessionID = "session"
