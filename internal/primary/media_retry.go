package primary

import (
	"context"
	"errors"
	"time"

	"app/internal/store"
	"app/internal/whatsapp"
)

// Expired media. WhatsApp's servers keep a file for a while; a download
// after that fails (403, 404, 410: whatsapp.ErrMediaGone), and the file
// can only be asked of the sender's phone again (Driver.RetryMedia). The
// message is stored and announced at once with its media pending
// (MediaRef.Pending, with the driver's MediaRef.Retry to ask with); when
// the phone answers (*whatsapp.MediaRetried) the file is fetched and
// stored, or the reason it will not come is kept (MediaRef.Skipped), and
// message.updated {change: "media"} tells of it. The change and its event
// are one step, as a message and its message.incoming are
// (IncomingMessage.EventChange says which event the stored position is
// for). A primary that stops while files are pending asks again each time
// it connects, for those received in the last day (the phone is not asked
// for older ones: it has likely dropped them too).

// mediaAskWindow is how old a pending file may be and still be asked for
// again on connecting.
const mediaAskWindow = 24 * time.Hour

// mediaChange is message.updated's change when a message's media arrived
// or will not.
const mediaChange = "media"

// mediaAsks is the state of the asks on connecting (the handler's
// goroutine only).
type mediaAsks struct {
	connected bool // the session is connected: asked already on this connection
}

// mediaGone is fetchMedia's ref for a file no longer on WhatsApp's
// servers: pending, to be asked of the sender's phone, when the driver
// gave what it needs to ask.
func (w *WhatsApp) mediaGone(m *whatsapp.Incoming, ref store.MediaRef, err error) store.MediaRef {
	if len(m.Media.Retry) == 0 {
		w.Log.Warn().Err(err).Str("chat", m.Chat).Str("wa_id", m.ID).Msg("The media of an incoming message is no longer on WhatsApp's servers, and the driver cannot ask for it again; kept without it.")
		ref.Skipped = "download failed: " + err.Error()
		return ref
	}
	w.Log.Info().Str("chat", m.Chat).Str("wa_id", m.ID).Msg("The media of an incoming message is no longer on WhatsApp's servers; asking the sender's phone for it.")
	ref.Pending, ref.Retry = true, m.Media.Retry
	return ref
}

// retryRequest is the message RetryMedia is given for a stored message:
// what a primary that restarted has (the driver keeps anything else it
// needs in MediaRef.Retry).
func retryRequest(m store.IncomingMessage) *whatsapp.Incoming {
	in := &whatsapp.Incoming{ID: m.WAID, Chat: m.Chat, Sender: m.Sender, FromMe: m.FromMe, Timestamp: m.SentAt,
		Body: m.Body, Addr: m.Addr, PushName: m.PushName}
	if m.Media != nil {
		in.Media = &whatsapp.Media{MimeType: m.Media.MimeType, Size: m.Media.Size, FileName: m.Media.FileName,
			Caption: m.Media.Caption, SHA256: m.Media.SHA256, Retry: m.Media.Retry}
	}
	return in
}

// askMedia asks the sender's phone for a pending file. A failure (not
// connected) is not the message's: it is asked again on the next
// connection.
func (w *WhatsApp) askMedia(ctx context.Context, m store.IncomingMessage) {
	if m.Media == nil || !m.Media.Pending {
		return
	}
	rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := w.Driver.RetryMedia(rctx, retryRequest(m)); err != nil && ctx.Err() == nil {
		w.Log.Warn().Err(err).Str("chat", m.Chat).Str("wa_id", m.WAID).Msg("Cannot ask the sender's phone for a file again; will ask on the next connection.")
	}
}

// askPendingMedia asks again for the files still pending, once each time
// the session connects (a primary that stopped before the phone answered,
// a request that failed while offline).
func (w *WhatsApp) askPendingMedia(ctx context.Context, s whatsapp.Session) {
	a := &w.mediaAsks
	first := s.State == whatsapp.StateConnected && !a.connected
	a.connected = s.State == whatsapp.StateConnected
	if !first {
		return
	}
	ms, err := w.Store.IncomingMediaPending(ctx, time.Now().Add(-mediaAskWindow), 1000)
	if err != nil {
		w.Log.Warn().Err(err).Msg("Cannot list the messages whose media is pending; will ask on the next connection.")
		return
	}
	for _, m := range ms {
		w.askMedia(ctx, m)
	}
	if len(ms) > 0 {
		w.Log.Info().Int("messages", len(ms)).Msg("Asked the senders' phones again for files still pending.")
	}
}

// onMediaRetried stores the file a sender's phone sent again, or the
// reason it did not, and announces it (message.updated).
func (w *WhatsApp) onMediaRetried(ctx context.Context, e *whatsapp.MediaRetried) error {
	m, err := w.retriedMessage(ctx, e)
	if errors.Is(err, store.ErrNotFound) {
		w.Log.Warn().Str("chat", e.Chat).Str("wa_id", e.ID).Msg("A file sent again is for a message that is not stored; ignored.")
		return nil
	}
	if err != nil {
		return err
	}
	if m.Media == nil || !m.Media.Pending {
		return nil // answered already (asked twice)
	}
	ref := *m.Media
	ref.Pending, ref.Retry = false, nil
	switch {
	case e.Error != "":
		ref.Skipped = "the sender's phone cannot send the file again: " + e.Error
		w.Log.Warn().Str("chat", m.Chat).Str("wa_id", m.WAID).Str("reason", e.Error).Msg("The sender's phone cannot send a file again; kept without it.")
	case e.Media == nil:
		ref.Skipped = "the sender's phone sent no file"
	default:
		in := &whatsapp.Incoming{ID: m.WAID, Chat: m.Chat, Media: e.Media}
		ref = w.fetchMedia(ctx, in, store.IncomingMessage{Key: m.Key, Media: &ref})
		if ref.Pending {
			ref.Pending, ref.Retry = false, nil
			ref.Skipped = "the file sent again is gone from WhatsApp's servers too"
		}
	}
	m.Media, m.EventChange = &ref, mediaChange
	return w.Events.AppendWith(ctx, func(ctx context.Context, seq int64) error {
		m.EventSeq = seq
		return w.Store.UpdateIncoming(ctx, m)
	}, Entry{"message.updated", mediaUpdatedEvent(m)})
}

// retriedMessage is the stored message a MediaRetried is about: named by
// the number where the map knows it, as it was stored.
func (w *WhatsApp) retriedMessage(ctx context.Context, e *whatsapp.MediaRetried) (store.IncomingMessage, error) {
	chat, sender := e.Chat, e.Sender
	for _, jid := range []*string{&chat, &sender} {
		pn, err := w.partnerOf(ctx, *jid)
		if err != nil {
			return store.IncomingMessage{}, err
		}
		if store.IsLID(*jid) && pn != "" {
			*jid = pn
		}
	}
	m, err := w.Store.IncomingMessage(ctx, chat+"/"+sender+"/"+e.ID)
	if errors.Is(err, store.ErrNotFound) {
		m, err = w.Store.IncomingByWAID(ctx, chat, e.ID)
	}
	if errors.Is(err, store.ErrNotFound) && chat != e.Chat {
		m, err = w.Store.IncomingByWAID(ctx, e.Chat, e.ID)
	}
	return m, err
}

// mediaUpdatedEvent is the message.updated (change media) of m, whose
// pending file arrived or will not.
func mediaUpdatedEvent(m store.IncomingMessage) messageUpdated {
	return messageUpdated{Key: m.Key, WAID: m.WAID, Chat: m.Chat, Sender: m.Sender, FromMe: m.FromMe, Addr: m.Addr,
		Change: mediaChange, Media: incomingEvent(m).Media}
}

// incomingEntry is the event a stored incoming message's EventSeq is the
// position of: its message.incoming, or the message.updated of a change
// (EventChange), for EventLog.reconcile.
func incomingEntry(m store.IncomingMessage) Entry {
	if m.EventChange == mediaChange {
		return Entry{"message.updated", mediaUpdatedEvent(m)}
	}
	return Entry{"message.incoming", incomingEvent(m)}
}
