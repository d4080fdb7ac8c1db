package sqlitestore

import (
	"app/internal/store"
	"context"
	"time"
)

// Not yet written: the whatsapp part of the store (delete this file when done).

func (s *Store) CreateWebhook(ctx context.Context, w *store.Webhook) error { return errTodo }

func (s *Store) Webhook(ctx context.Context, id string) (store.Webhook, error) {
	return store.Webhook{}, errTodo
}

func (s *Store) Webhooks(ctx context.Context) ([]store.Webhook, error) { return nil, errTodo }

func (s *Store) UpdateWebhook(ctx context.Context, w *store.Webhook) error { return errTodo }

func (s *Store) DisableWebhook(ctx context.Context, id string, version int, reason string) error {
	return errTodo
}

func (s *Store) DeleteWebhook(ctx context.Context, id string) error { return errTodo }

func (s *Store) WebhookState(ctx context.Context, id string) (store.WebhookState, error) {
	return store.WebhookState{}, errTodo
}

func (s *Store) SaveWebhookState(ctx context.Context, st store.WebhookState) error { return errTodo }

func (s *Store) ForgetWebhookStates(ctx context.Context, keep []string) error { return errTodo }

func (s *Store) SaveDelivery(ctx context.Context, d store.WebhookDelivery) error { return errTodo }

func (s *Store) Deliveries(ctx context.Context, id string, beforeSeq int64, status string, limit int) ([]store.WebhookDelivery, error) {
	return nil, errTodo
}

func (s *Store) PruneDeliveries(ctx context.Context, before time.Time) (int64, error) {
	return 0, errTodo
}

func (s *Store) SaveSession(ctx context.Context, ws store.WASession) error { return errTodo }

func (s *Store) Session(ctx context.Context) (store.WASession, error) {
	return store.WASession{}, errTodo
}

func (s *Store) SaveIncoming(ctx context.Context, m store.IncomingMessage) (bool, error) {
	return false, errTodo
}

func (s *Store) SetIncomingMedia(ctx context.Context, key string, ref store.MediaRef, eventSeq int64) error {
	return errTodo
}

func (s *Store) IncomingMessage(ctx context.Context, key string) (store.IncomingMessage, error) {
	return store.IncomingMessage{}, errTodo
}

func (s *Store) IncomingUnannounced(ctx context.Context, seq int64) ([]store.IncomingMessage, error) {
	return nil, errTodo
}

func (s *Store) IncomingMessages(ctx context.Context, chat string, limit int) ([]store.IncomingMessage, error) {
	return nil, errTodo
}

func (s *Store) IncomingPage(ctx context.Context, chat string, beforeNS int64, beforeKey string, limit int) ([]store.IncomingMessage, error) {
	return nil, errTodo
}

func (s *Store) SaveReceipt(ctx context.Context, r store.ReceiptRecord) error { return errTodo }

func (s *Store) Chat(ctx context.Context, jid string) (store.Chat, error) {
	return store.Chat{}, errTodo
}

func (s *Store) SaveChat(ctx context.Context, c store.Chat) error { return errTodo }

func (s *Store) ChatsPage(ctx context.Context, beforeNS int64, beforeJID string, usersOnly bool, limit int) ([]store.Chat, error) {
	return nil, errTodo
}

func (s *Store) CountNewContactsSince(ctx context.Context, t time.Time) (int64, error) {
	return 0, errTodo
}

func (s *Store) SaveContactPushName(ctx context.Context, jid, name string) error { return errTodo }

func (s *Store) Contact(ctx context.Context, jid string) (store.Contact, error) {
	return store.Contact{}, errTodo
}
