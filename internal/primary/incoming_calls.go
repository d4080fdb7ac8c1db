package primary

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"time"

	"app/internal/msg"
	"app/internal/store"
	"app/internal/whatsapp"
)

// callOffered is "call.offered": someone calls us. The suite cannot
// answer; with WHATSAPP_REJECT_CALLS it rejects (Rejected says it did).
type callOffered struct {
	ID       string    `json:"id"`
	From     string    `json:"from"`
	Chat     string    `json:"chat,omitempty"` // the group of a group call
	Video    bool      `json:"video"`
	At       time.Time `json:"at"`
	Rejected bool      `json:"rejected"`
}

// onCall announces a call offered, rejecting it first when configured
// to, and then queues WHATSAPP_REJECT_CALLS_MESSAGE to the caller. The
// message's id comes from the call's, so a call delivered again queues
// it once; the announcement is appended last, so a call delivered again
// after a failure is announced once, though after a primary stopped
// between the append and the acknowledgement it is announced again,
// with the same id.
func (w *WhatsApp) onCall(ctx context.Context, c *whatsapp.Call) error {
	ev := callOffered{ID: c.ID, From: c.From, Chat: c.Chat, Video: c.Video, At: c.Timestamp}
	log := w.Log.With().Str("call_id", c.ID).Str("from", c.From).Logger()
	if w.Cfg.RejectCalls {
		rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := w.Driver.RejectCall(rctx, c.From, c.ID)
		cancel()
		if err != nil {
			log.Warn().Err(err).Msg("Cannot reject a call (WHATSAPP_REJECT_CALLS); it rings on.")
		} else {
			ev.Rejected = true
			log.Info().Msg("Call rejected (WHATSAPP_REJECT_CALLS).")
		}
		if text := w.Cfg.RejectCallsMessage; text != "" && ev.Rejected {
			sum := sha256.Sum256([]byte("call\x00" + c.ID))
			m := store.OutboxMessage{ID: "msg_c" + hex.EncodeToString(sum[:13]), Chat: c.From, Body: msg.Body{Kind: msg.KindText}, Text: text}
			if err := w.Store.EnqueueMessage(ctx, &m); err != nil && !errors.Is(err, store.ErrExists) {
				return err // not acknowledged: the call is offered again
			}
		}
	}
	return w.Events.Append(ctx, "call.offered", ev)
}
