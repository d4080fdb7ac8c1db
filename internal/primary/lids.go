package primary

import (
	"context"
	"errors"
	"sync"

	"app/internal/msg"
	"app/internal/store"
	"app/internal/whatsapp"
)

// Phone numbers and LIDs. WhatsApp names a person by their number's JID
// (...@s.whatsapp.net) or by a LID (...@lid), and increasingly by the LID
// alone. The primary learns the pairs from what the driver reports
// (Incoming.Addr) and keeps them in the store (store.LIDPair; the newest
// mapping wins), and with them:
//   - a one-to-one chat named by a LID whose number is known is stored
//     under the number, so history, sends and replies meet in one
//     conversation; the sender likewise. Messages that came while the
//     number was unknown stay in the LID's chat, whose record then names
//     the number (PN), so a client finds both;
//   - every stored message, chat and contact carries both forms where
//     known (msg.Addr, Chat.PN/LID, Contact.PN/LID);
//   - an outgoing message keeps its recipient as the client gave it (the
//     number, usually): the driver resolves the number to whatever
//     WhatsApp needs (whatsmeow: its own LID store), so a send to a
//     number works whichever form WhatsApp uses. Its Addr says both
//     forms where known.

// lidCache is the pairs this task has read or saved: the primary is the
// store's one writer of them during its lease, so what it holds is what
// the store holds. It is emptied at each lease (another primary may have
// learned pairs since).
type lidCache struct {
	mu sync.Mutex
	// partner maps a JID to its other form, "" when the store has none.
	partner map[string]string
	// contacts are the forms saved on each contact, so they are written
	// only when they change.
	contacts map[string]msg.Addr
}

// cacheLimit bounds each of the task's caches of what it wrote: past it a
// cache starts again empty (they are a saving, not a record).
const cacheLimit = 10000

func newLIDCache() *lidCache {
	return &lidCache{partner: map[string]string{}, contacts: map[string]msg.Addr{}}
}

// partnerOf is the other form of jid (a number's JID or a LID), "" when
// no pair has it.
func (w *WhatsApp) partnerOf(ctx context.Context, jid string) (string, error) {
	if !store.IsPN(jid) && !store.IsLID(jid) {
		return "", nil
	}
	c := w.lids
	c.mu.Lock()
	p, ok := c.partner[jid]
	c.mu.Unlock()
	if ok {
		return p, nil
	}
	pair, err := w.Store.LIDPair(ctx, jid)
	switch {
	case errors.Is(err, store.ErrNotFound):
	case err != nil:
		return "", err
	case store.IsLID(jid):
		p = pair.PN
	default:
		p = pair.LID
	}
	c.mu.Lock()
	if len(c.partner) >= cacheLimit {
		clear(c.partner)
	}
	c.partner[jid] = p
	c.mu.Unlock()
	return p, nil
}

// learnPair records that pn and lid are one person, when that is news:
// in the store, and on the chats and contacts stored under either form.
func (w *WhatsApp) learnPair(ctx context.Context, pn, lid string) error {
	if !store.IsPN(pn) || !store.IsLID(lid) {
		return nil
	}
	p, err := w.partnerOf(ctx, pn)
	if err != nil {
		return err
	}
	q, err := w.partnerOf(ctx, lid)
	if err != nil || (p == lid && q == pn) {
		return err
	}
	if err := w.Store.SaveLIDPair(ctx, pn, lid); err != nil {
		return err
	}
	c := w.lids
	c.mu.Lock()
	if len(c.partner) >= cacheLimit {
		clear(c.partner)
	}
	// The old partners of each now have none (the newest mapping wins).
	for _, jid := range []string{pn, lid} {
		if old := c.partner[jid]; old != "" {
			c.partner[old] = ""
		}
	}
	c.partner[pn], c.partner[lid] = lid, pn
	c.mu.Unlock()
	w.Log.Info().Str("pn", pn).Str("lid", lid).Msg("Learned a phone number's LID.")
	// The chats and contacts of either form learn the other.
	for _, jid := range []string{pn, lid} {
		if err := w.pairChat(ctx, jid, pn, lid); err != nil {
			return err
		}
		ct, err := w.Store.Contact(ctx, jid)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return err
		}
		if ct.PN != pn || ct.LID != lid {
			if err := w.saveContactAddr(ctx, jid, msg.Addr{SenderPN: pn, SenderLID: lid}); err != nil {
				return err
			}
		}
	}
	return nil
}

// pairChat gives the stored chat jid, if there is one, the pair.
func (w *WhatsApp) pairChat(ctx context.Context, jid, pn, lid string) error {
	w.chatMu.Lock()
	defer w.chatMu.Unlock()
	ch, err := w.Store.Chat(ctx, jid)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil || (ch.PN == pn && ch.LID == lid) {
		return err
	}
	ch.PN, ch.LID = pn, lid
	return w.Store.SaveChat(ctx, ch)
}

// addressIncoming learns the pairs m carries, fills its Addr from the map
// where m leaves a form out, and names its chat and sender by the number
// where known (a one-to-one chat only: a group is its own JID), and the
// message a Target names likewise. It also keeps the sender's contact's
// forms. An error leaves m unacknowledged.
func (w *WhatsApp) addressIncoming(ctx context.Context, m *whatsapp.Incoming) error {
	a := &m.Addr
	user := store.IsUserChat(m.Chat)
	if user {
		fillForm(&a.ChatPN, &a.ChatLID, m.Chat)
	}
	fillForm(&a.SenderPN, &a.SenderLID, m.Sender)
	for _, p := range [][2]string{{a.ChatPN, a.ChatLID}, {a.SenderPN, a.SenderLID}} {
		if p[0] != "" && p[1] != "" {
			if err := w.learnPair(ctx, p[0], p[1]); err != nil {
				return err
			}
		}
	}
	if user {
		if err := w.complete(ctx, &a.ChatPN, &a.ChatLID); err != nil {
			return err
		}
	}
	if err := w.complete(ctx, &a.SenderPN, &a.SenderLID); err != nil {
		return err
	}
	if user && store.IsLID(m.Chat) && a.ChatPN != "" {
		m.Chat = a.ChatPN
	}
	if store.IsLID(m.Sender) && a.SenderPN != "" {
		m.Sender = a.SenderPN
	}
	// A reaction, edit, revoke or vote names its message as WhatsApp
	// does, perhaps by LID: by the number where known, as it was stored.
	if t := m.Target; t != nil {
		for _, jid := range []*string{&t.Chat, &t.Sender} {
			if !store.IsLID(*jid) {
				continue
			}
			pn, err := w.partnerOf(ctx, *jid)
			if err != nil {
				return err
			}
			if pn != "" {
				*jid = pn
			}
		}
	}
	if m.FromMe || !store.IsUserChat(m.Sender) {
		return nil
	}
	return w.saveContactAddr(ctx, m.Sender, msg.Addr{SenderPN: a.SenderPN, SenderLID: a.SenderLID})
}

// fillForm sets the form jid is of, when it is one and unset.
func fillForm(pn, lid *string, jid string) {
	switch {
	case *pn == "" && store.IsPN(jid):
		*pn = jid
	case *lid == "" && store.IsLID(jid):
		*lid = jid
	}
}

// complete fills the missing one of a number and a LID from the map.
func (w *WhatsApp) complete(ctx context.Context, pn, lid *string) error {
	var err error
	switch {
	case *pn == "" && *lid != "":
		*pn, err = w.partnerOf(ctx, *lid)
	case *lid == "" && *pn != "":
		*lid, err = w.partnerOf(ctx, *pn)
	}
	return err
}

// saveContactAddr records a contact's number and LID (a.SenderPN and
// a.SenderLID) when they changed.
func (w *WhatsApp) saveContactAddr(ctx context.Context, jid string, a msg.Addr) error {
	if a.SenderPN == "" && a.SenderLID == "" {
		return nil
	}
	c := w.lids
	c.mu.Lock()
	saved, ok := c.contacts[jid]
	c.mu.Unlock()
	if ok && saved == a {
		return nil
	}
	if err := w.Store.SaveContactAddr(ctx, jid, a.SenderPN, a.SenderLID); err != nil {
		return err
	}
	c.mu.Lock()
	if len(c.contacts) >= cacheLimit {
		clear(c.contacts)
	}
	c.contacts[jid] = a
	c.mu.Unlock()
	return nil
}

// addressChat gives a one-to-one chat about to be saved its number and
// LID from the map (touchChat). A failed read of the map leaves the chat
// as it was: the forms are told again with the next message.
func (w *WhatsApp) addressChat(ctx context.Context, c *store.Chat) {
	if !store.IsPN(c.JID) && !store.IsLID(c.JID) {
		return
	}
	p, err := w.partnerOf(ctx, c.JID)
	if err != nil {
		w.Log.Warn().Err(err).Str("chat", c.JID).Msg("Cannot read the chat's number or LID; saved without it.")
	}
	if store.IsPN(c.JID) {
		c.PN = c.JID
		if p != "" {
			c.LID = p
		}
		return
	}
	c.LID = c.JID
	if p != "" {
		c.PN = p
	}
}

// addressOutgoing fills an outgoing message's number and LID from the map
// as it is sent (Addr.ChatPN and ChatLID; its recipient stays as given).
// A failed read of the map does not hold the send up.
func (w *WhatsApp) addressOutgoing(ctx context.Context, m *store.OutboxMessage) {
	if !store.IsPN(m.Chat) && !store.IsLID(m.Chat) {
		return
	}
	fillForm(&m.ChatPN, &m.ChatLID, m.Chat)
	if err := w.complete(ctx, &m.ChatPN, &m.ChatLID); err != nil {
		w.Log.Warn().Err(err).Str("id", m.ID).Msg("Cannot read the recipient's number or LID; the message is sent without them.")
	}
}

// sandboxAddress addresses an injected message as whatsmeow reports one
// (docs/SANDBOX.md): with chat_lid or sender_lid, by the number when
// pn_known, else by the LID alone; and with media_expired, with a file
// gone from WhatsApp's servers.
func sandboxAddress(args map[string]string, m *whatsapp.Incoming) {
	known := args["pn_known"] == "true"
	chatLID, senderLID := args["chat_lid"], args["sender_lid"]
	if store.IsUserChat(m.Chat) && !m.FromMe && (m.Sender == "" || m.Sender == m.Chat) {
		m.Sender = m.Chat
		if senderLID == "" {
			senderLID = chatLID
		}
	}
	// byLID records *jid's lid in *lidOf; the number moves to *pnOf when
	// known, else *jid becomes the LID, as whatsmeow reports it.
	byLID := func(jid, pnOf, lidOf *string, lid string) {
		if lid == "" {
			return
		}
		*lidOf = lid
		if known {
			*pnOf = *jid
		} else {
			*jid = lid
		}
	}
	byLID(&m.Chat, &m.ChatPN, &m.ChatLID, chatLID)
	byLID(&m.Sender, &m.SenderPN, &m.SenderLID, senderLID)
	if args["media_expired"] == "true" {
		whatsapp.ExpireMedia(m, args["media_retry_fails"] == "true")
	}
}
