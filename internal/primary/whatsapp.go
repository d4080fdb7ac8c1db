package primary

import (
	"cmp"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"app/internal/config"
	"app/internal/store"
	"app/internal/whatsapp"
)

// WhatsApp is the primary's task that owns the account. While the lease is
// held it runs the driver, stores what the driver reports before that is
// acknowledged to WhatsApp, and sends the outbox: in order per chat, only
// while connected, at the configured pace, each message exactly once.
//
// Exactly once: a message's WhatsApp id is chosen and saved with the status
// "sending" before the send, and every retry reuses it. A message found in
// "sending" when the task starts was being sent by a primary that stopped;
// it waits WHATSAPP_RECONCILE_WAIT for a receipt (WhatsApp delivers those
// that arrived meanwhile on connect), which settles it; only without one is
// it sent again, with the same id, which WhatsApp and the recipient's
// devices treat as the same message.
type WhatsApp struct {
	Cfg    config.WhatsApp
	Driver whatsapp.Driver
	Store  store.Store
	Log    zerolog.Logger
	// Poll is how often the outbox is read while there is nothing to do
	// (default 200ms); the same process's enqueues do not wake it.
	Poll time.Duration

	// Events is the primary's shared event log, started by Primary.work;
	// nil makes the task keep (and start) its own.
	Events *EventLog

	mu      sync.Mutex // one outbox writer at a time (the sender or the receipts); guards unsaved
	stateMu sync.Mutex
	// chatMu makes each chat update a read, a merge and a write that no
	// other update interleaves: the sender and the incoming handler both
	// touch a chat, and a merge from a stale read would lose the other's.
	chatMu   sync.Mutex
	session  whatsapp.Session
	paused   time.Time // sending paused until (rate limited)
	changed  chan struct{}
	unsaved  map[string]time.Time // sent, but "sent" not yet stored: never send again
	daily    []time.Time          // sends in the last 24 hours, oldest first
	newChats []time.Time          // first messages to new chats in the last 24 hours
	epoch    int64

	ownEvents bool

	dog watchdog // when WhatsApp was last heard (watchdog.go)

	// pushNames are the push names saved per sender by this task (the
	// handler's goroutine only), so an unchanged one is not written again.
	pushNames map[string]string
	// lids are the number-LID pairs (lids.go); mediaAsks the asks for
	// expired files (media_retry.go).
	lids      *lidCache
	mediaAsks mediaAsks
	// numberPace paces number checks (numbers.go) and profile lookups
	// (profile_actions.go); profileMu makes each profile update a read
	// and a write no other interleaves.
	numberPace numberPace
	profileMu  sync.Mutex
	// groups guards and paces the stored groups (group_actions.go).
	groups groupState

	// Test hooks around a send, to stop the task as a crash would.
	beforeSend, afterSend func(id string)
}

// Task is the WhatsApp task for the primary's task list.
func (w *WhatsApp) Task() Task { return Task{Name: "whatsapp", Run: w.Run} }

// Session is the state the driver last reported.
func (w *WhatsApp) Session() whatsapp.Session {
	w.stateMu.Lock()
	defer w.stateMu.Unlock()
	return w.session
}

// Run owns the account until ctx ends (the lease may be lost or the
// process stops).
func (w *WhatsApp) Run(ctx context.Context, epoch int64) error {
	if w.Poll == 0 {
		w.Poll = 200 * time.Millisecond
	}
	w.epoch = epoch
	w.changed = make(chan struct{}, 1)
	w.mu.Lock()
	w.unsaved = map[string]time.Time{}
	w.mu.Unlock()
	w.pushNames = map[string]string{}
	w.lids, w.mediaAsks = newLIDCache(), mediaAsks{}
	w.stateMu.Lock()
	w.session = whatsapp.Session{State: whatsapp.StateConnecting}
	w.stateMu.Unlock()
	if w.Events == nil || w.ownEvents {
		w.Events, w.ownEvents = NewEventLog(w.Store, w.Log), true
		if !w.Events.Start(ctx, epoch) {
			return nil
		}
	}
	if !retry(ctx, w.Log, "count recent sends", w.loadCaps) {
		return nil
	}

	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		// The driver retries the network itself; an error here is local
		// (the device store), so it is retried slowly and loudly.
		for delay := time.Second; ctx.Err() == nil; delay = min(2*delay, time.Minute) {
			err := w.Driver.Run(ctx, w.handle)
			if ctx.Err() != nil {
				return
			}
			w.Log.Error().Err(err).Dur("retry_in", delay).Msg("WhatsApp driver stopped; starting it again.")
			select {
			case <-ctx.Done():
			case <-time.After(delay):
			}
		}
	}()
	wg.Add(1)
	go func() { defer wg.Done(); w.commands(ctx) }()
	w.heard()
	w.dog.reconnects.Store(0)
	wg.Add(1)
	go func() { defer wg.Done(); w.watch(ctx) }()
	w.send(ctx)
	wg.Wait()
	return nil
}

// retry runs f until it succeeds or ctx ends, logging each failure.
func retry(ctx context.Context, log zerolog.Logger, what string, f func(context.Context) error) bool {
	for delay := 100 * time.Millisecond; ; delay = min(2*delay, 5*time.Second) {
		err := f(ctx)
		if err == nil {
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		log.Warn().Err(err).Dur("retry_in", delay).Msg("Cannot " + what + "; will retry.")
		select {
		case <-ctx.Done():
			return false
		case <-time.After(delay):
		}
	}
}

func (w *WhatsApp) loadCaps(ctx context.Context) error {
	since := time.Now().Add(-24 * time.Hour)
	sent, err := w.Store.CountSentSince(ctx, since)
	if err != nil {
		return err
	}
	chats, err := w.Store.CountNewContactsSince(ctx, since)
	if err != nil {
		return err
	}
	// The exact times do not matter for a cap over 24 hours as much as the
	// count; the earlier sends are taken as of now, which errs on the
	// careful side.
	now := time.Now()
	w.daily = make([]time.Time, sent)
	for i := range w.daily {
		w.daily[i] = now
	}
	w.newChats = make([]time.Time, chats)
	for i := range w.newChats {
		w.newChats[i] = now
	}
	return nil
}

func (w *WhatsApp) signal() {
	select {
	case w.changed <- struct{}{}:
	default:
	}
}

// handle stores what the driver reports; a nil return acknowledges it.
func (w *WhatsApp) handle(ctx context.Context, ev whatsapp.Event) error {
	w.heard()
	switch e := ev.(type) {
	case *whatsapp.SessionChanged:
		if err := w.onSession(ctx, e.Session); err != nil {
			return err
		}
		w.askPendingMedia(ctx, e.Session)
		return nil
	case *whatsapp.Incoming:
		return w.onIncoming(ctx, e)
	case *whatsapp.Receipt:
		return w.onReceipt(ctx, e)
	case *whatsapp.Call:
		return w.onCall(ctx, e)
	case *whatsapp.MediaRetried:
		return w.onMediaRetried(ctx, e)
	case *whatsapp.BlocklistChanged: // contact_actions.go
		return w.onBlocklistChanged(ctx, e)
	case *whatsapp.ChatSettingChanged: // contact_actions.go
		return w.onChatSettingChanged(ctx, e)
	case *whatsapp.PictureChanged: // profile_actions.go
		return w.onPictureChanged(ctx, e)
	case *whatsapp.GroupChanged: // group_actions.go
		return w.onGroupChanged(ctx, e)
	}
	return nil
}

func (w *WhatsApp) onSession(ctx context.Context, s whatsapp.Session) error {
	w.stateMu.Lock()
	prev := w.session
	w.session = s
	paused := w.paused
	w.stateMu.Unlock()
	w.signal()
	if s.State != prev.State || s.Reason != prev.Reason {
		ev := w.Log.Info()
		if s.State != whatsapp.StateConnected && s.State != whatsapp.StateConnecting && s.State != whatsapp.StatePairing {
			ev = w.Log.Warn()
		}
		ev.Str("state", string(s.State)).Str("reason", s.Reason).Str("jid", s.JID).Msg("WhatsApp session: " + string(s.State) + ".")
	}
	doc := store.WASession{State: string(s.State), Reason: s.Reason, Until: s.Until, JID: s.JID, QR: s.QR, QRExpires: s.QRExpires,
		SendingPausedUntil: paused, Driver: driverName(w.Driver), Epoch: w.epoch, Reconnects: w.dog.reconnects.Load()}
	if !retry(ctx, w.Log, "save the session state", func(ctx context.Context) error { return w.Store.SaveSession(ctx, doc) }) {
		return ctx.Err()
	}
	if s.State != prev.State || s.Reason != prev.Reason || !s.Until.Equal(prev.Until) || s.JID != prev.JID {
		if err := w.Events.Append(ctx, "session.state", sessionEvent{State: string(s.State), Reason: s.Reason, Until: s.Until, JID: s.JID}); err != nil {
			return err
		}
	}
	if s.QR != "" && s.QR != prev.QR {
		return w.Events.Append(ctx, "session.qr", qrEvent{QR: s.QR, Expires: s.QRExpires})
	}
	return nil
}

func driverName(d whatsapp.Driver) string {
	if _, ok := d.(*whatsapp.Sandbox); ok {
		return "sandbox"
	}
	return "whatsmeow"
}

func (w *WhatsApp) onIncoming(ctx context.Context, m *whatsapp.Incoming) error {
	if err := w.addressIncoming(ctx, m); err != nil {
		return err
	}
	doc := store.IncomingMessage{WAID: m.ID, Chat: m.Chat, Sender: m.Sender, FromMe: m.FromMe, PushName: m.PushName,
		Body: m.Body, Addr: m.Addr, Text: m.Text, ReplyTo: m.ReplyTo, ReactionTo: m.ReactionTo,
		SentAt: m.Timestamp, ReceivedAt: time.Now()}
	if m.Media != nil {
		doc.Media = &store.MediaRef{MimeType: m.Media.MimeType, Size: m.Media.Size, FileName: m.Media.FileName,
			Caption: m.Media.Caption, SHA256: m.Media.SHA256}
	}
	doc.Key = doc.Chat + "/" + doc.Sender + "/" + doc.WAID
	// The chat first: touching it again for a redelivery changes nothing.
	// A push name is the sender's: it names a one-to-one chat only when the
	// contact wrote it (not a group member, not we from the phone).
	pushName := ""
	if !m.FromMe && m.Sender == m.Chat && store.IsUserChat(m.Chat) {
		pushName = m.PushName
	}
	if err := w.touchChat(ctx, m.Chat, m.Timestamp, false, m.ChatName, pushName); err != nil {
		return err // not acknowledged: WhatsApp delivers it again
	}
	if !m.FromMe && m.PushName != "" && w.pushNames[m.Sender] != m.PushName {
		if err := w.Store.SaveContactPushName(ctx, m.Sender, m.PushName); err != nil {
			return err
		}
		if len(w.pushNames) >= 10000 {
			clear(w.pushNames) // a cache of writes saved, not a record
		}
		w.pushNames[m.Sender] = m.PushName
	}
	if handled, err := w.onKinds(ctx, m, &doc); handled || err != nil {
		return err
	}
	if doc.Media == nil {
		// Stored with its event's position and announced in one step.
		return w.Events.AppendWith(ctx, func(ctx context.Context, seq int64) error {
			return w.saveIncomingAt(ctx, doc, seq)
		}, Entry{"message.incoming", incomingEvent(doc)})
	}
	// With media: stored at once, the bytes fetched, then the media and the
	// event's position recorded and the event appended in one step.
	isNew, err := w.Store.SaveIncoming(ctx, doc)
	if err != nil {
		return err
	}
	if !isNew {
		stored, err := w.Store.IncomingMessage(ctx, doc.Key)
		if err != nil {
			return err
		}
		if stored.EventSeq != 0 || stored.Media == nil || stored.Media.FileID != "" || stored.Media.Skipped != "" {
			return nil // a redelivery of a message stored and announced already
		}
	}
	ref := w.fetchMedia(ctx, m, doc)
	doc.Media = &ref
	if err := w.Events.AppendWith(ctx, func(ctx context.Context, seq int64) error {
		return w.Store.SetIncomingMedia(ctx, doc.Key, ref, seq)
	}, Entry{"message.incoming", incomingEvent(doc)}); err != nil {
		return err
	}
	w.askMedia(ctx, doc)
	return nil
}

// saveIncomingAt stores doc as announced by the event at seq, an
// AppendWith mark: errAnnounced when doc was stored and announced already
// (a redelivery), nil when stored now or by our own earlier try of this
// very step (the same seq).
func (w *WhatsApp) saveIncomingAt(ctx context.Context, doc store.IncomingMessage, seq int64) error {
	doc.EventSeq = seq
	isNew, err := w.Store.SaveIncoming(ctx, doc)
	if err != nil || isNew {
		return err
	}
	stored, err := w.Store.IncomingMessage(ctx, doc.Key)
	if err != nil {
		return err
	}
	if stored.EventSeq != seq {
		return errAnnounced
	}
	return nil
}

// fetchMedia downloads an incoming attachment into GridFS, up to the cap.
// A failure is recorded on the message rather than refusing it: the text
// and metadata are worth keeping either way.
func (w *WhatsApp) fetchMedia(ctx context.Context, m *whatsapp.Incoming, doc store.IncomingMessage) store.MediaRef {
	ref := *doc.Media
	if w.Cfg.MediaMaxBytes == 0 || m.Media.Size > w.Cfg.MediaMaxBytes {
		ref.Skipped = "over WHATSAPP_MEDIA_MAX_BYTES (" + strconv.FormatInt(w.Cfg.MediaMaxBytes, 10) + ")"
		return ref
	}
	dctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	file, err := w.Driver.Download(dctx, m.Media, w.Cfg.MediaMaxBytes)
	if errors.Is(err, whatsapp.ErrMediaGone) {
		return w.mediaGone(m, ref, err)
	}
	if err != nil {
		w.Log.Warn().Err(err).Str("chat", m.Chat).Str("wa_id", m.ID).Msg("Cannot download the media of an incoming message; kept without it.")
		ref.Skipped = "download failed: " + err.Error()
		return ref
	}
	defer file.Close()
	// Streamed into the store: the primary holds one chunk, not the file.
	counted := &countingReader{r: file}
	id, err := w.Store.PutMedia(dctx, doc.Key, ref.MimeType, counted)
	if err != nil {
		ref.Skipped = "store failed: " + err.Error()
		return ref
	}
	ref.FileID, ref.Size = id, counted.n
	return ref
}

// touchChat records activity in a chat, and its name (a group's subject,
// an address-book name) and the contact's push name where given.
func (w *WhatsApp) touchChat(ctx context.Context, jid string, at time.Time, outgoing bool, name, pushName string) error {
	w.chatMu.Lock()
	defer w.chatMu.Unlock()
	c, err := w.Store.Chat(ctx, jid)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	c.JID = jid
	if n := w.groupChatName(ctx, jid); n != "" {
		name = n // a group's chat is named after the stored group
	}
	if name != "" {
		c.Name = name
	}
	if pushName != "" {
		c.PushName = pushName
	}
	if at.After(c.LastMessageAt) {
		c.LastMessageAt = at
	}
	if outgoing && c.FirstOutgoing.IsZero() {
		c.FirstOutgoing = at
	}
	w.addressChat(ctx, &c)
	if !outgoing && at.After(c.LastIncomingAt) {
		c.LastIncomingAt = at
	}
	return w.Store.SaveChat(ctx, c)
}

func (w *WhatsApp) onReceipt(ctx context.Context, r *whatsapp.Receipt) error {
	if err := w.Store.SaveReceipt(ctx, store.ReceiptRecord{Chat: r.Chat, Sender: r.Sender, WAIDs: r.IDs, Type: string(r.Type),
		At: r.Timestamp, ReceivedAt: time.Now()}); err != nil {
		return err
	}
	status := map[whatsapp.ReceiptType]string{whatsapp.ReceiptServer: store.StatusSent,
		whatsapp.ReceiptDelivered: store.StatusDelivered, whatsapp.ReceiptRead: store.StatusRead}[r.Type]
	if status == "" {
		return nil
	}
	for _, id := range r.IDs {
		if err := w.advance(ctx, id, status, r.Timestamp); err != nil {
			return err
		}
	}
	return nil
}

// advance moves the message sent as waID forward to status.
func (w *WhatsApp) advance(ctx context.Context, waID, status string, at time.Time) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	m, err := w.Store.OutboxByWAID(ctx, waID)
	if errors.Is(err, store.ErrNotFound) {
		return nil // sent from the phone or another client
	}
	if err != nil {
		return err
	}
	if m.Status == store.StatusFailed || m.Status == store.StatusCancelled || store.StatusRank(status) <= store.StatusRank(m.Status) {
		return nil
	}
	prev := store.StatusRank(m.Status)
	m.Status = status
	if m.SentAt.IsZero() {
		m.SentAt = at
	}
	switch status {
	case store.StatusDelivered:
		m.DeliveredAt = at
	case store.StatusRead:
		m.ReadAt = at
		if m.DeliveredAt.IsZero() {
			m.DeliveredAt = at
		}
	}
	m.Error, m.Waiting = nil, ""
	// Receipts can overtake the send's return, and a read receipt a
	// delivered one: the log tells the steps skipped first, so readers
	// see sent, delivered, read, each once, in order.
	var steps []string
	var evs []Entry
	for _, step := range []string{store.StatusSent, store.StatusDelivered} {
		if r := store.StatusRank(step); r > prev && r < store.StatusRank(status) {
			e := statusEvent(m)
			e.Status = step
			steps, evs = append(steps, step), append(evs, Entry{"message.status", e})
		}
	}
	evs = append(evs, Entry{"message.status", statusEvent(m)})
	if len(steps) > 0 {
		steps = append(steps, status)
	}
	mark, evs, err := w.withTargetChange(ctx, &m, prev < store.StatusRank(store.StatusSent), w.announced(&m, steps), evs)
	if err != nil {
		return err
	}
	if err := w.Events.AppendWith(ctx, mark, evs...); err != nil {
		return err
	}
	delete(w.unsaved, m.ID)
	return nil
}

// changeWatcher is a store that says when anything was committed.
type changeWatcher interface {
	WatchChanges(ctx context.Context) (<-chan struct{}, error)
}

// send is the outbox loop.
func (w *WhatsApp) send(ctx context.Context) {
	inherited := map[string]bool{}
	if !retry(ctx, w.Log, "read the outbox", func(ctx context.Context) error {
		ms, err := w.Store.OutboxByStatus(ctx, store.StatusSending, 100000)
		for _, m := range ms {
			inherited[m.ID] = true
		}
		return err
	}) {
		return
	}
	if len(inherited) > 0 {
		w.Log.Warn().Int("messages", len(inherited)).Dur("reconcile_wait", w.Cfg.ReconcileWait).
			Msg("Messages were being sent when the last primary stopped; each waits for a receipt before it is sent again with the same id.")
	}
	var next time.Time // the pace: no send before this
	// Where the store tells of commits (SQLite), a message a worker
	// queues is seen at once rather than at the next poll.
	var stored <-chan struct{}
	if cw, ok := w.Store.(changeWatcher); ok {
		if ch, err := cw.WatchChanges(ctx); err == nil {
			stored = ch
		}
	}
	for ctx.Err() == nil {
		if err := w.applyCancels(ctx); err != nil && ctx.Err() == nil {
			w.Log.Warn().Err(err).Msg("Cannot apply cancel requests; will retry.")
		}
		progressed := false
		if w.canSend() {
			var err error
			progressed, err = w.sendRound(ctx, inherited, &next)
			if err != nil && ctx.Err() == nil {
				w.Log.Warn().Err(err).Msg("Outbox: cannot read or write messages; will retry.")
			}
		}
		if progressed {
			continue
		}
		select {
		case <-ctx.Done():
		case <-w.changed:
		case <-stored:
		case <-time.After(w.Poll):
		}
	}
}

func (w *WhatsApp) canSend() bool {
	w.stateMu.Lock()
	defer w.stateMu.Unlock()
	return w.session.State == whatsapp.StateConnected && time.Now().After(w.paused)
}

// sendRound reads the unfinished messages and sends what is due: each
// chat's messages strictly in order (a chat waits while its first message
// waits), chats in turn.
func (w *WhatsApp) sendRound(ctx context.Context, inherited map[string]bool, next *time.Time) (bool, error) {
	list, err := w.Store.OutboxUnfinished(ctx, 1000)
	if err != nil {
		return false, err
	}
	var order []string
	byChat := map[string][]store.OutboxMessage{}
	for _, m := range list {
		if _, ok := byChat[m.Chat]; !ok {
			order = append(order, m.Chat)
		}
		byChat[m.Chat] = append(byChat[m.Chat], m)
	}
	progressed := false
	for round := 0; ; round++ {
		moved := false
		for _, chat := range order {
			ms := byChat[chat]
			if round >= len(ms) || ms[round].ID == "" {
				continue
			}
			if !w.canSend() || ctx.Err() != nil {
				return progressed, nil
			}
			done, err := w.sendOne(ctx, ms[round], inherited, next)
			if err != nil {
				return progressed, err
			}
			if !done {
				// The chat waits: its later messages must not overtake.
				for i := round + 1; i < len(ms); i++ {
					ms[i].ID = ""
				}
				continue
			}
			progressed, moved = true, true
		}
		if !moved {
			return progressed, nil
		}
	}
}

// sendOne sends m if it is due. It reports whether m is out of the way of
// the chat's next message (sent, or finished otherwise).
func (w *WhatsApp) sendOne(ctx context.Context, m store.OutboxMessage, inherited map[string]bool, next *time.Time) (bool, error) {
	now := time.Now()
	w.mu.Lock()
	ts, ok := w.unsaved[m.ID]
	w.mu.Unlock()
	if ok {
		// Sent by this process; only the status is missing.
		return w.finishSent(ctx, m.ID, ts)
	}
	if m.NextAttemptAt.After(now) {
		return false, nil
	}
	if m.Status == store.StatusSending && inherited[m.ID] && now.Sub(m.AttemptAt) < w.Cfg.ReconcileWait {
		return false, nil // a receipt may still settle it
	}
	if !w.capsAllow(ctx, &m, now) {
		return false, nil
	}
	if wait := time.Until(*next); wait > 0 {
		select {
		case <-ctx.Done():
			return false, nil
		case <-time.After(wait):
		}
		if !w.canSend() {
			return false, nil
		}
	}

	w.mu.Lock()
	cur, err := w.Store.OutboxMessage(ctx, m.ID)
	if err != nil {
		w.mu.Unlock()
		return false, err
	}
	if cur.Status != store.StatusQueued && cur.Status != store.StatusSending {
		w.mu.Unlock()
		return true, nil // a receipt or a cancel settled it
	}
	if inherited[m.ID] {
		w.Log.Warn().Str("id", cur.ID).Str("wa_id", cur.WAID).Msg("No receipt for a message a stopped primary was sending; sending it again with the same id.")
	}
	if cur.WAID == "" {
		cur.WAID = w.Driver.NewMessageID()
	}
	cur.Status, cur.AttemptAt, cur.Epoch, cur.Waiting = store.StatusSending, time.Now(), w.epoch, ""
	cur.Attempts++
	w.addressOutgoing(ctx, &cur)
	if _, err := w.Store.SaveOutbox(ctx, &cur); err != nil {
		w.mu.Unlock()
		return false, err // not sent: nothing is lost by trying later
	}
	w.mu.Unlock()
	delete(inherited, m.ID)
	*next = time.Now().Add(w.interval())

	out, file, fail := w.outgoing(ctx, cur)
	if fail != nil {
		return w.failed(ctx, cur.ID, fail)
	}
	if file != nil {
		defer file.Close()
	}
	if w.beforeSend != nil {
		w.beforeSend(cur.ID)
	}
	ts, sendErr := w.Driver.Send(ctx, out)
	if sendErr == nil && w.afterSend != nil {
		w.afterSend(cur.ID)
	}
	if sendErr == nil {
		w.mu.Lock()
		w.unsaved[cur.ID] = ts
		w.mu.Unlock()
		w.recordSend(ctx, cur.Chat, ts)
		return w.finishSent(ctx, cur.ID, ts)
	}
	if ctx.Err() != nil {
		// Unknown whether it went out: it stays "sending", and whoever
		// holds the lease next reconciles it.
		return false, nil
	}
	return w.failed(ctx, cur.ID, sendErr)
}

func (w *WhatsApp) finishSent(ctx context.Context, id string, ts time.Time) (bool, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	m, err := w.Store.OutboxMessage(ctx, id)
	if err != nil {
		return false, err
	}
	// A receipt can come before this: it has told the log "sent" and
	// what followed already.
	ahead := store.StatusRank(m.Status) >= store.StatusRank(store.StatusSent)
	if !ahead {
		m.Status = store.StatusSent
	}
	if m.SentAt.IsZero() {
		m.SentAt = ts
	}
	m.Error = nil
	if ahead {
		if _, err := w.Store.SaveOutbox(ctx, &m); err != nil {
			return false, err
		}
	} else {
		mark, evs, err := w.withTargetChange(ctx, &m, true, w.announced(&m, nil), []Entry{{"message.status", statusEvent(m)}})
		if err != nil {
			return false, err
		}
		if err := w.Events.AppendWith(ctx, mark, evs...); err != nil {
			return false, err
		}
	}
	delete(w.unsaved, id)
	return true, nil
}

// announced stores m as the change that the events ending at seq
// announce (EventLog.AppendWith); steps are the statuses they announce
// when more than m.Status.
func (w *WhatsApp) announced(m *store.OutboxMessage, steps []string) func(context.Context, int64) error {
	return func(ctx context.Context, seq int64) error {
		m.EventSeq, m.EventSteps = seq, steps
		_, err := w.Store.SaveOutbox(ctx, m)
		return err
	}
}

func (w *WhatsApp) failed(ctx context.Context, id string, sendErr error) (bool, error) {
	var se *whatsapp.SendError
	if !errors.As(sendErr, &se) {
		se = &whatsapp.SendError{Reason: sendErr.Error(), Retryable: true}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	m, err := w.Store.OutboxMessage(ctx, id)
	if err != nil {
		return false, err
	}
	if m.Status != store.StatusSending {
		return true, nil // a receipt arrived after all
	}
	now := time.Now()
	m.Error = &store.Failure{Reason: se.Reason, Retryable: se.Retryable}
	switch {
	case !se.Retryable:
		m.Status, m.FinishedAt = store.StatusFailed, now
		w.Log.Warn().Str("id", m.ID).Str("chat", m.Chat).Str("reason", se.Reason).Msg("Message failed; it will not be retried.")
	case m.Attempts >= w.Cfg.MaxAttempts:
		m.Status, m.FinishedAt = store.StatusFailed, now
		m.Error.Reason = "gave up after " + strconv.Itoa(m.Attempts) + " attempts: " + se.Reason
		w.Log.Warn().Str("id", m.ID).Str("chat", m.Chat).Str("reason", se.Reason).Msg("Message failed after every attempt.")
	default:
		backoff := min(time.Duration(1<<min(m.Attempts, 12))*time.Second, 5*time.Minute)
		backoff += rand.N(backoff/4 + 1)
		m.Status, m.NextAttemptAt, m.Waiting = store.StatusQueued, now.Add(backoff), "retry after: "+se.Reason
		w.Log.Info().Str("id", m.ID).Str("reason", se.Reason).Dur("retry_in", backoff).Msg("Send failed; will retry with the same id.")
	}
	if se.RateLimited {
		w.pause(ctx, se.Reason)
	}
	if err := w.Events.AppendWith(ctx, w.announced(&m, nil), Entry{"message.status", statusEvent(m)}); err != nil {
		return false, err
	}
	return m.Status == store.StatusFailed, nil
}

// pause stops sending for RateLimitPause after WhatsApp said we send too
// fast, and records it in the session for everyone to see.
func (w *WhatsApp) pause(ctx context.Context, reason string) {
	w.stateMu.Lock()
	w.paused = time.Now().Add(w.Cfg.RateLimitPause)
	s, until := w.session, w.paused
	w.stateMu.Unlock()
	w.Log.Warn().Time("until", until).Str("reason", reason).Msg("WhatsApp rate-limits us: sending pauses.")
	doc := store.WASession{State: string(s.State), Reason: s.Reason, Until: s.Until, JID: s.JID, QR: s.QR, QRExpires: s.QRExpires,
		SendingPausedUntil: until, Driver: driverName(w.Driver), Epoch: w.epoch, Reconnects: w.dog.reconnects.Load()}
	if err := w.Store.SaveSession(ctx, doc); err != nil {
		w.Log.Warn().Err(err).Msg("Cannot record the sending pause.")
	}
	_ = w.Events.Append(ctx, "sending.paused", pausedEvent{Until: until, Reason: reason})
}

// interval is the pause before the next send: 60s / WHATSAPP_SEND_PER_MINUTE
// with ±25% jitter, so the rhythm does not look like a machine's.
func (w *WhatsApp) interval() time.Duration {
	if w.Cfg.SendPerMinute <= 0 {
		return 0
	}
	base := time.Minute / time.Duration(w.Cfg.SendPerMinute)
	return base*3/4 + rand.N(base/2+1)
}

// capsAllow checks the daily cap and the cap on first messages to new
// chats; a message held back says why and waits.
func (w *WhatsApp) capsAllow(ctx context.Context, m *store.OutboxMessage, now time.Time) bool {
	day := now.Add(-24 * time.Hour)
	for len(w.daily) > 0 && w.daily[0].Before(day) {
		w.daily = w.daily[1:]
	}
	for len(w.newChats) > 0 && w.newChats[0].Before(day) {
		w.newChats = w.newChats[1:]
	}
	hold := func(why string, until time.Time) bool {
		if m.Waiting != why {
			w.mu.Lock()
			cur, err := w.Store.OutboxMessage(ctx, m.ID)
			if err == nil && cur.Status == store.StatusQueued {
				cur.Waiting, cur.NextAttemptAt = why, until
				_, _ = w.Store.SaveOutbox(ctx, &cur)
			}
			w.mu.Unlock()
			w.Log.Info().Str("id", m.ID).Str("chat", m.Chat).Time("until", until).Msg("Message waits: " + why + ".")
		}
		return false
	}
	if w.Cfg.DailyCap > 0 && len(w.daily) >= w.Cfg.DailyCap {
		return hold("daily cap (WHATSAPP_DAILY_CAP)", w.daily[0].Add(24*time.Hour))
	}
	if w.Cfg.NewContactsPerDay > 0 && len(w.newChats) >= w.Cfg.NewContactsPerDay {
		c, err := w.Store.Chat(ctx, m.Chat)
		if errors.Is(err, store.ErrNotFound) || (err == nil && c.FirstOutgoing.IsZero()) {
			return hold("cap on first messages to new chats (WHATSAPP_NEW_CONTACTS_PER_DAY)", w.newChats[0].Add(24*time.Hour))
		}
	}
	return true
}

// recordSend counts a send for the caps and the chat.
func (w *WhatsApp) recordSend(ctx context.Context, chat string, ts time.Time) {
	w.daily = append(w.daily, time.Now())
	c, err := w.Store.Chat(ctx, chat)
	if errors.Is(err, store.ErrNotFound) || (err == nil && c.FirstOutgoing.IsZero()) {
		w.newChats = append(w.newChats, time.Now())
	}
	if err := w.touchChat(ctx, chat, ts, true, "", ""); err != nil {
		w.Log.Warn().Err(err).Str("chat", chat).Msg("Cannot record the chat of a sent message.")
	}
}

// applyCancels decides the cancel requests: a message still queued is
// cancelled; one already sending or further is too late.
func (w *WhatsApp) applyCancels(ctx context.Context) error {
	reqs, err := w.Store.PendingCancels(ctx)
	if err != nil {
		return err
	}
	for _, c := range reqs {
		w.mu.Lock()
		m, err := w.Store.OutboxMessage(ctx, c.MessageID)
		switch {
		case errors.Is(err, store.ErrNotFound):
			c.Outcome = "not_found"
		case err != nil:
			w.mu.Unlock()
			return err
		case m.Status == store.StatusQueued:
			m.Status, m.FinishedAt, m.Waiting = store.StatusCancelled, time.Now(), ""
			if err := w.Events.AppendWith(ctx, w.announced(&m, nil), Entry{"message.status", statusEvent(m)}); err != nil {
				w.mu.Unlock()
				return err
			}
			c.Outcome, c.Status = "cancelled", store.StatusCancelled
		default:
			c.Outcome, c.Status = "too_late", m.Status
		}
		w.mu.Unlock()
		if err := w.Store.DecideCancel(ctx, c); err != nil {
			return err
		}
	}
	return nil
}

// EventLog appends to the event log in order: the primary is its one
// writer, and every task of a primary shares one EventLog, so the next
// number is always the last one plus one.
type EventLog struct {
	mu    sync.Mutex
	store store.Store
	seq   int64
	epoch int64
	log   zerolog.Logger
	wake  chan struct{} // closed (and replaced) at each append
	dirty chan struct{} // the head document is behind (see publish)

	// Test hook: called when a change was stored with its position,
	// before its events are appended, so a test can stop the primary there.
	marked func(seq int64)
}

// Entry is one event to append.
type Entry struct {
	Type string
	Data any
}

// NewEventLog is an event log for st; Start it at each lease.
func NewEventLog(st store.Store, log zerolog.Logger) *EventLog {
	return &EventLog{store: st, log: log, wake: make(chan struct{}), dirty: make(chan struct{}, 1)}
}

// Appended is closed when the next event has been appended: readers in
// this process (webhook deliveries) wake at once instead of polling.
func (l *EventLog) Appended() <-chan struct{} {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.wake
}

// Start reads where the log stands, for the lease of epoch. It returns
// false when ctx ended first.
func (l *EventLog) Start(ctx context.Context, epoch int64) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.epoch = epoch
	ok := retry(ctx, l.log, "read the event log position", func(ctx context.Context) (err error) {
		if l.seq, err = l.store.LastEventSeq(ctx); err != nil {
			return err
		}
		return l.reconcile(ctx)
	})
	if ok {
		l.markDirty()
		go l.publish(ctx)
	}
	return ok
}

func (l *EventLog) markDirty() {
	select {
	case l.dirty <- struct{}{}:
	default:
	}
}

// publish keeps the head document (store.SetEventHead) at the log's
// position while the lease lasts, so workers notice appends by reading
// one document. Appends in a burst make one write.
func (l *EventLog) publish(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-l.dirty:
		}
		l.mu.Lock()
		seq := l.seq
		l.mu.Unlock()
		retry(ctx, l.log, "record the event log's head", func(ctx context.Context) error {
			return l.store.SetEventHead(ctx, seq)
		})
	}
}

// reconcile appends the events of changes a stopped primary stored but
// did not announce: each such change carries a position past the log's
// end (see AppendWith), and nothing else was appended after it, so its
// events take exactly the positions it was stored with.
func (l *EventLog) reconcile(ctx context.Context) error {
	end := l.seq
	out, err := l.store.OutboxUnannounced(ctx, end)
	if err != nil {
		return err
	}
	in, err := l.store.IncomingUnannounced(ctx, end)
	if err != nil {
		return err
	}
	type change struct {
		seq int64 // position of the last of evs
		evs []Entry
		id  string
	}
	var changes []change
	for _, m := range out {
		steps := m.EventSteps
		if len(steps) == 0 {
			steps = []string{m.Status}
		}
		c := change{seq: m.EventSeq, id: m.ID}
		for _, st := range steps {
			e := statusEvent(m)
			e.Status, e.At = st, m.UpdatedAt
			c.evs = append(c.evs, Entry{"message.status", e})
		}
		updates, err := targetUpdates(ctx, l.store, m, steps)
		if err != nil {
			return err
		}
		c.evs = append(c.evs, updates...)
		changes = append(changes, c)
	}
	for _, m := range in {
		evs, err := incomingEntries(ctx, l.store, m)
		if err != nil {
			return err
		}
		changes = append(changes, change{seq: m.EventSeq, id: m.Key, evs: evs})
	}
	groups, err := l.store.GroupsUnannounced(ctx, end)
	if err != nil {
		return err
	}
	for _, g := range groups {
		changes = append(changes, change{seq: g.EventSeq, id: g.JID, evs: groupEntries(g)})
	}
	slices.SortFunc(changes, func(a, b change) int { return cmp.Compare(a.seq, b.seq) })
	for _, c := range changes {
		first := c.seq - int64(len(c.evs)) + 1
		for i, e := range c.evs {
			if first+int64(i) <= end {
				continue // appended before the stop
			}
			if err := l.appendLocked(ctx, e.Type, e.Data); err != nil {
				return err
			}
		}
		l.log.Warn().Str("id", c.id).Int64("seq", c.seq).Int64("appended_at", l.seq).
			Msg("A change the last primary stored was missing its event; appended it.")
	}
	return nil
}

// errAnnounced is what an AppendWith mark returns when the change was
// stored and announced before (a redelivery): nothing is appended.
var errAnnounced = errors.New("primary: announced already")

// AppendWith appends evs as the announcement of a change that mark stores.
// mark is given the position the last of evs will take and stores it with
// the change, then the events are appended, with no other append between.
// A primary stopped between the two leaves a change whose position is past
// the log's end, which the next primary's Start finds and announces: the
// change and its events are one step for the one writer without a
// transaction (FerretDB has none, a standalone MongoDB neither).
func (l *EventLog) AppendWith(ctx context.Context, mark func(ctx context.Context, seq int64) error, evs ...Entry) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	seq := l.seq + int64(len(evs))
	if l.marked == nil && l.atomic(ctx, mark, seq, evs) {
		return nil
	}
	done := false
	if !retry(ctx, l.log, "store a change with its event log position", func(ctx context.Context) error {
		err := mark(ctx, seq)
		if errors.Is(err, errAnnounced) {
			done, err = true, nil
		}
		return err
	}) {
		return ctx.Err()
	}
	if done {
		return nil
	}
	if l.marked != nil {
		l.marked(seq)
	}
	for _, e := range evs {
		if err := l.appendLocked(ctx, e.Type, e.Data); err != nil {
			return err
		}
	}
	return nil
}

// atomic stores the change and appends its events in one write of the
// store (SQLite: one transaction), the common case; it reports false when
// that failed, and then nothing of it is stored on SQLite, while on
// MongoDB part of it may be: AppendWith then goes the way of marks, which
// finds what was done (a change stored again is the same, an event
// appended already is recognised).
func (l *EventLog) atomic(ctx context.Context, mark func(ctx context.Context, seq int64) error, seq int64, evs []Entry) bool {
	announced := false
	err := l.store.Atomically(ctx, func(ctx context.Context) error {
		err := mark(ctx, seq)
		if errors.Is(err, errAnnounced) {
			announced = true
			return nil
		}
		if err != nil {
			return err
		}
		for i, e := range evs {
			if err := l.store.AppendEvent(ctx, l.seq+1+int64(i), e.Type, l.epoch, e.Data); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return false
	}
	if !announced {
		l.reached(seq)
	}
	return true
}

// reached moves the log to seq, just appended: readers in this process
// wake, and the head is to be published. The caller holds mu.
func (l *EventLog) reached(seq int64) {
	l.seq = seq
	close(l.wake)
	l.wake = make(chan struct{})
	l.markDirty()
}

// Append writes one event.
func (l *EventLog) Append(ctx context.Context, typ string, data any) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.appendLocked(ctx, typ, data)
}

// appendLocked writes one event at the next position; the caller holds mu.
func (l *EventLog) appendLocked(ctx context.Context, typ string, data any) error {
	for {
		seq := l.seq + 1
		stale := false
		ok := retry(ctx, l.log, "append to the event log", func(ctx context.Context) error {
			err := l.store.AppendEvent(ctx, seq, typ, l.epoch, data)
			if !errors.Is(err, store.ErrExists) {
				return err
			}
			// Either an earlier try that timed out did write it, or the
			// position moved under us (it must not; say so and move on).
			evs, rerr := l.store.Events(ctx, seq-1, 1)
			if rerr != nil {
				return rerr
			}
			if len(evs) == 1 && evs[0].Seq == seq && evs[0].Epoch == l.epoch && evs[0].Type == typ {
				return nil
			}
			stale = true
			return nil
		})
		if !ok {
			return ctx.Err()
		}
		if !stale {
			l.reached(seq)
			return nil
		}
		l.log.Error().Int64("seq", seq).Msg("The event log has an entry this primary did not write; continuing after it.")
		last, err := l.store.LastEventSeq(ctx)
		if err != nil {
			return err
		}
		l.seq = last
	}
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}
