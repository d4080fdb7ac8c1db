package whatsapp

// Phone numbers and LIDs. WhatsApp names a person by phone number (PN,
// @s.whatsapp.net) or by LID (@lid), and more and more by LID alone.
//
// Incoming: whatsmeow's MessageSource says how the message was addressed
// (Chat, Sender) and, where the server sent it, the other form
// (SenderAlt, RecipientAlt); whatsmeow stores those pairs in its LID map
// (Store.LIDs) before the event reaches us, as it does the mappings of
// history syncs and usync answers. We report Chat and Sender by number
// where one is known, so a one-to-one chat addressed by LID lands in the
// number's conversation, and Addr carries both.
//
// Outgoing, at the pinned whatsmeow (v0.0.0-20251217143725-11cf47c62d32):
// SendMessage to a number whose account migrated to LIDs
// (Store.LIDMigrationTimestamp set, send.go) swaps the destination for
// its LID itself: from the LID map, else by asking WhatsApp (GetUserInfo),
// else it fails with "no LID found" (a SendError that is not retried). So
// a send to a number works whichever WhatsApp uses. What whatsmeow does
// not rewrite are the JIDs inside the message: the quoted message's
// sender, a reaction's, edit's or revoke's message key. addressOutgoing
// names those the way the chat is addressed: by LID in a LID-addressed
// group or a one-to-one chat whatsmeow sends to by LID, by number
// otherwise. Mentions are left as given: the text carries "@<number>" and
// WhatsApp matches the two.

import (
	"context"

	"github.com/rs/zerolog"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/types"

	"app/internal/msg"
)

// lidMap looks up numbers and LIDs in whatsmeow's LID map. Without a
// client it knows only what an event itself says.
type lidMap struct {
	ctx context.Context
	cli *whatsmeow.Client
	log zerolog.Logger
}

// own is our own account's number and LID (empty until paired).
func (r lidMap) own() (pn, lid types.JID) {
	if r.cli == nil || r.cli.Store == nil {
		return types.EmptyJID, types.EmptyJID
	}
	return r.cli.Store.GetJID().ToNonAD(), r.cli.Store.GetLID().ToNonAD()
}

func (r lidMap) isOwn(j types.JID) bool {
	if j.IsEmpty() {
		return false
	}
	pn, lid := r.own()
	return (!pn.IsEmpty() && j.User == pn.User && j.Server == pn.Server) ||
		(!lid.IsEmpty() && j.User == lid.User && j.Server == lid.Server)
}

func (r lidMap) lids() bool { return r.cli != nil && r.cli.Store != nil && r.cli.Store.LIDs != nil }

func (r lidMap) pnFor(lid types.JID) types.JID {
	if pn, own := r.own(); !own.IsEmpty() && lid.User == own.User {
		return pn
	}
	if !r.lids() {
		return types.EmptyJID
	}
	pn, err := r.cli.Store.LIDs.GetPNForLID(r.ctx, lid)
	if err != nil {
		r.log.Debug().Err(err).Str("lid", lid.String()).Msg("Cannot look up the number of a LID.")
		return types.EmptyJID
	}
	return pn.ToNonAD()
}

func (r lidMap) lidFor(pn types.JID) types.JID {
	if own, lid := r.own(); !own.IsEmpty() && pn.User == own.User {
		return lid
	}
	if !r.lids() {
		return types.EmptyJID
	}
	lid, err := r.cli.Store.LIDs.GetLIDForPN(r.ctx, pn)
	if err != nil {
		r.log.Debug().Err(err).Str("pn", pn.String()).Msg("Cannot look up the LID of a number.")
		return types.EmptyJID
	}
	return lid.ToNonAD()
}

// pair is a user's number and LID from a JID and its alternative (either
// may be empty), the missing one looked up.
func (r lidMap) pair(jid, alt types.JID) (pn, lid types.JID) {
	for _, j := range []types.JID{jid.ToNonAD(), alt.ToNonAD()} {
		switch j.Server {
		case types.DefaultUserServer:
			if pn.IsEmpty() {
				pn = j
			}
		case types.HiddenUserServer:
			if lid.IsEmpty() {
				lid = j
			}
		}
	}
	switch {
	case pn.IsEmpty() && !lid.IsEmpty():
		pn = r.pnFor(lid)
	case lid.IsEmpty() && !pn.IsEmpty():
		lid = r.lidFor(pn)
	}
	return pn, lid
}

// preferred is the number of a user where known, its LID otherwise, or
// the JID as it is for what is not a user (a group, a newsletter).
func preferred(jid, pn, lid types.JID) string {
	switch {
	case !pn.IsEmpty():
		return pn.String()
	case !lid.IsEmpty():
		return lid.String()
	}
	return jid.ToNonAD().String()
}

// user is preferred for one JID given as a string.
func (r lidMap) user(s string) string {
	j, err := types.ParseJID(s)
	if err != nil || j.IsEmpty() {
		return s
	}
	pn, lid := r.pair(j, types.EmptyJID)
	return preferred(j, pn, lid)
}

// messageAddr is a message's chat and sender as we report them, and both
// forms of each. Groups (and broadcasts, newsletters) are their own JID:
// Addr's chat forms are for one-to-one chats.
func (r lidMap) messageAddr(src types.MessageSource) (chat, sender string, addr msg.Addr) {
	spn, slid := r.pair(src.Sender, src.SenderAlt)
	addr.SenderPN, addr.SenderLID = jidString(spn), jidString(slid)
	sender = preferred(src.Sender, spn, slid)
	if src.IsGroup || (src.Chat.Server != types.DefaultUserServer && src.Chat.Server != types.HiddenUserServer) {
		return src.Chat.ToNonAD().String(), sender, addr
	}
	var cpn, clid types.JID
	if src.IsFromMe {
		// Sent from our phone: the chat is the recipient.
		cpn, clid = r.pair(src.Chat, src.RecipientAlt)
	} else {
		cpn, clid = spn, slid
		if src.Chat.User != src.Sender.User {
			cpn, clid = r.pair(src.Chat, types.EmptyJID)
		}
	}
	addr.ChatPN, addr.ChatLID = jidString(cpn), jidString(clid)
	return preferred(src.Chat, cpn, clid), sender, addr
}

func jidString(j types.JID) string {
	if j.IsEmpty() {
		return ""
	}
	return j.String()
}

// addressedByLID says whether WhatsApp names the people of chat by LID:
// a LID chat, a number whose account migrated (whatsmeow then sends to
// the LID, see above), a group in LID addressing mode (from its messages
// and events, or asked of WhatsApp once).
func (d *Whatsmeow) addressedByLID(ctx context.Context, cli *whatsmeow.Client, chat types.JID) bool {
	switch chat.Server {
	case types.HiddenUserServer:
		return true
	case types.DefaultUserServer:
		return cli != nil && cli.Store != nil && cli.Store.LIDMigrationTimestamp > 0
	case types.GroupServer:
		d.mu.Lock()
		mode := d.group(chat).mode
		d.mu.Unlock()
		if mode == "" && cli != nil {
			d.groupInfo(ctx, cli, chat)
			d.mu.Lock()
			mode = d.group(chat).mode
			d.mu.Unlock()
		}
		return mode == types.AddressingModeLID
	}
	return false
}

// chatAddressing names people as one chat addresses them.
type chatAddressing struct {
	r     lidMap
	byLID bool
}

func (d *Whatsmeow) chatAddressing(ctx context.Context, cli *whatsmeow.Client, chat types.JID) chatAddressing {
	return chatAddressing{r: lidMap{ctx: ctx, cli: cli, log: d.log}, byLID: d.addressedByLID(ctx, cli, chat)}
}

// jid is user j in the chat's addressing where the other form is known;
// anything else as it is.
func (a chatAddressing) jid(j types.JID) types.JID {
	if j.Server != types.DefaultUserServer && j.Server != types.HiddenUserServer {
		return j
	}
	pn, lid := a.r.pair(j, types.EmptyJID)
	switch {
	case a.byLID && !lid.IsEmpty():
		return lid
	case !a.byLID && !pn.IsEmpty():
		return pn
	}
	return j.ToNonAD()
}

func (a chatAddressing) str(s string) string {
	j, err := types.ParseJID(s)
	if err != nil || j.IsEmpty() {
		return s
	}
	return a.jid(j).String()
}

// self is our own JID in the chat's addressing.
func (a chatAddressing) self() types.JID {
	pn, lid := a.r.own()
	if (a.byLID && !lid.IsEmpty()) || pn.IsEmpty() {
		return lid
	}
	return pn
}

// addressOutgoing names the people m refers to inside the message (the
// quoted message's sender, the target's chat and sender) as chat to is
// addressed, and returns our own JID addressed so too.
func (d *Whatsmeow) addressOutgoing(ctx context.Context, cli *whatsmeow.Client, to types.JID, m Outgoing) (Outgoing, string) {
	if m.ReplyTo == "" && m.Target == nil {
		pn, _ := lidMap{ctx: ctx, cli: cli, log: d.log}.own()
		return m, jidString(pn)
	}
	a := d.chatAddressing(ctx, cli, to)
	if m.ReplyToSender != "" {
		m.ReplyToSender = a.str(m.ReplyToSender)
	}
	if m.Target != nil {
		t := *m.Target
		t.Chat = a.str(t.Chat)
		if t.Sender != "" {
			t.Sender = a.str(t.Sender)
		}
		m.Target = &t
	}
	return m, jidString(a.self())
}
