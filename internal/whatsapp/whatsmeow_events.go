package whatsapp

import (
	"cmp"
	"context"
	"errors"
	"time"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"
)

// clientEvents handles the events of one whatsmeow client: gen tells its
// signals from those of a client the supervisor already replaced.
type clientEvents struct {
	d   *Whatsmeow
	ctx context.Context
	h   Handler
	cli *whatsmeow.Client // nil in tests that need no lookups
	gen uint64
}

// handler is the one whatsmeow event handler of a client. It returns false
// (leave the event unacknowledged) when the Handler failed on what it was
// given; everything else is acknowledged.
func (d *Whatsmeow) handler(ctx context.Context, h Handler, cli *whatsmeow.Client, gen uint64) whatsmeow.EventHandlerWithSuccessStatus {
	c := &clientEvents{d: d, ctx: ctx, h: h, cli: cli, gen: gen}
	return c.handle
}

// handle is the one switch: each whatsmeow event type to one method.
func (c *clientEvents) handle(raw any) bool {
	switch e := raw.(type) {
	case *events.Message:
		return c.handleMessage(e)
	case *events.Receipt:
		return c.handleReceipt(e)
	case *events.CallOffer:
		return c.handleCallOffer(e)
	case *events.CallOfferNotice:
		return c.handleCallOfferNotice(e)
	case *events.MediaRetry:
		return c.handleMediaRetry(e)
	case *events.UndecryptableMessage:
		c.handleUndecryptable(e)
	case *events.GroupInfo: // whatsmeow_groups_events.go
		return c.handleGroupInfo(e)
	case *events.JoinedGroup:
		return c.handleJoinedGroup(e)
	case *events.Archive: // whatsmeow_changes.go
		c.handleArchive(e)
	case *events.Pin:
		c.handlePin(e)
	case *events.Mute:
		c.handleMute(e)
	case *events.Picture:
		c.handlePicture(e)
	case *events.PushNameSetting:
		c.handlePushNameSetting(e)
	case *events.Blocklist: // whatsmeow_contacts.go
		c.handleBlocklist(e)
	case *events.Connected:
		c.handleConnected(e)
	case *events.KeepAliveRestored:
		c.handleKeepAliveRestored(e)
	case *events.Disconnected:
		c.handleDisconnected(e)
	case *events.KeepAliveTimeout:
		c.handleKeepAliveTimeout(e)
	case *events.LoggedOut:
		c.handleLoggedOut(e)
	case *events.StreamReplaced:
		c.handleStreamReplaced(e)
	case *events.TemporaryBan:
		c.handleTemporaryBan(e)
	case *events.ConnectFailure:
		c.handleConnectFailure(e)
	case *events.ClientOutdated:
		c.handleClientOutdated(e)
	case *events.StreamError:
		c.handleStreamError(e)
	case *events.PairSuccess:
		c.handlePairSuccess(e)
	case *events.PairError:
		c.handlePairError(e)
	}
	// QR codes come through the QR channel (the supervisor reports them);
	// presences, history syncs, the rest of the app state and the rest
	// are not ours to report.
	return true
}

// deliver hands ev to the Handler; true (acknowledge) when it stored it.
func (c *clientEvents) deliver(ev Event, what string) bool {
	if err := c.d.deliver(c.ctx, c.h, ev); err != nil {
		c.d.log.Warn().Err(err).Str("event", what).Msg("The handler failed; the event is not acknowledged, so WhatsApp delivers it again.")
		return false
	}
	return true
}

// notify hands ev to the Handler for a change whatsmeow does not wait
// for (it acknowledged it already, or it came from an app-state sync): a
// failure is only logged, as WhatsApp would not send it again.
func (c *clientEvents) notify(ev Event, what string) {
	if err := c.d.deliver(c.ctx, c.h, ev); err != nil {
		c.d.log.Warn().Err(err).Str("event", what).Msg("The handler failed on a change WhatsApp does not send again; it is not reported.")
	}
}

// lids is the LID map of this client.
func (c *clientEvents) lids() lidMap { return lidMap{ctx: c.ctx, cli: c.cli, log: c.d.log} }

func (c *clientEvents) handleMessage(e *events.Message) bool {
	if e == nil {
		return true
	}
	c.d.noteGroupAddressing(e.Info.MessageSource)
	in, ok := c.d.mapMessage(c.ctx, c.cli, e)
	if !ok {
		// Protocol messages whatsmeow acted on (history sync notices, app
		// state keys) and key distributions are not messages of a chat.
		return true
	}
	chat := e.Info.Chat.ToNonAD()
	if pn, err := types.ParseJID(in.Chat); err == nil {
		chat = pn // the address book knows people by number
	}
	in.ChatName = c.d.chatName(c.ctx, c.cli, chat)
	return c.deliver(in, "message")
}

func (c *clientEvents) handleReceipt(e *events.Receipt) bool {
	if e == nil {
		return true
	}
	r, ok := mapReceipt(e, lidMap{ctx: c.ctx, cli: c.cli, log: c.d.log})
	if !ok {
		return true
	}
	return c.deliver(r, "receipt")
}

func (c *clientEvents) handleCallOffer(e *events.CallOffer) bool {
	_, video := e.Data.GetOptionalChildByTag("video")
	return c.deliver(c.d.mapCall(c.ctx, c.cli, e.BasicCallMeta, video), "call offer")
}

// handleCallOfferNotice: a call offered in a group (CallOffer is for
// one-to-one calls).
func (c *clientEvents) handleCallOfferNotice(e *events.CallOfferNotice) bool {
	return c.deliver(c.d.mapCall(c.ctx, c.cli, e.BasicCallMeta, e.Media == "video"), "call offer notice")
}

func (c *clientEvents) handleMediaRetry(e *events.MediaRetry) bool {
	ev, ok := c.d.mediaRetried(e)
	if !ok {
		return true
	}
	if !c.deliver(ev, "media retry") {
		return false // kept: the answer may come again
	}
	c.d.forgetRetry(e.MessageID)
	return true
}

func (c *clientEvents) handleUndecryptable(e *events.UndecryptableMessage) {
	// whatsmeow asks the sender (and our phone) for it again; the message
	// then comes as an ordinary one.
	c.d.log.Info().Str("id", e.Info.ID).Str("chat", e.Info.Chat.String()).Bool("unavailable", e.IsUnavailable).
		Msg("A message could not be decrypted; WhatsApp is asked for it again.")
}

func (c *clientEvents) handlePushNameSetting(*events.PushNameSetting) {
	// Presence needs a push name: the first one may come after Connected.
	c.applyPresence()
}

func (c *clientEvents) handleConnected(*events.Connected) {
	c.applyPresence()
	c.signal(connSignal{session: c.session(StateConnected, ""), connected: true})
}

func (c *clientEvents) handleKeepAliveRestored(*events.KeepAliveRestored) {
	c.signal(connSignal{session: c.session(StateConnected, ""), connected: true})
}

func (c *clientEvents) handleDisconnected(*events.Disconnected) {
	const reason = "connection lost"
	c.signal(connSignal{session: c.session(StateDisconnected, reason), end: &attemptResult{kind: attemptRetry, reason: reason}})
}

func (c *clientEvents) handleKeepAliveTimeout(e *events.KeepAliveTimeout) {
	s := connSignal{session: c.session(StateDisconnected, "no answer to keep-alive since "+e.LastSuccess.UTC().Format(time.RFC3339))}
	// Without whatsmeow's auto-reconnect nobody else gives up on a dead
	// socket: do it after the same grace time it would.
	if c.d.now().Sub(e.LastSuccess) > whatsmeow.KeepAliveMaxFailTime {
		s.end = &attemptResult{kind: attemptRetry, reason: "keep-alive failing"}
	}
	c.signal(s)
}

func (c *clientEvents) handleLoggedOut(e *events.LoggedOut) {
	c.signal(connSignal{
		session: &Session{State: StateLoggedOut, Reason: e.Reason.String()},
		forget:  forgetRemote,
		end:     &attemptResult{kind: attemptLoggedOut, reason: e.Reason.String()},
	})
}

func (c *clientEvents) handleStreamReplaced(*events.StreamReplaced) {
	c.signal(connSignal{
		session: c.session(StateReplaced, "another client connected with this session"),
		end:     &attemptResult{kind: attemptReplaced},
	})
}

func (c *clientEvents) handleTemporaryBan(e *events.TemporaryBan) {
	s := c.session(StateTemporarilyBanned, e.Code.String())
	s.Until = c.d.now().Add(e.Expire)
	c.signal(connSignal{session: s, end: &attemptResult{kind: attemptBanned, reason: e.Code.String(), until: s.Until}})
}

func (c *clientEvents) handleConnectFailure(e *events.ConnectFailure) {
	if e.Reason.IsLoggedOut() {
		c.signal(connSignal{
			session: &Session{State: StateLoggedOut, Reason: e.Reason.String()},
			forget:  forgetRemote,
			end:     &attemptResult{kind: attemptLoggedOut, reason: e.Reason.String()},
		})
		return
	}
	reason := "connect failure: " + e.Reason.String()
	session := reason
	if e.Message != "" {
		session += ": " + e.Message
	}
	c.signal(connSignal{session: c.session(StateDisconnected, session), end: &attemptResult{kind: attemptRetry, reason: reason}})
}

func (c *clientEvents) handleClientOutdated(*events.ClientOutdated) {
	c.signal(connSignal{
		session: c.session(StateDisconnected, "client outdated: WhatsApp refuses this whatsmeow version"),
		end:     &attemptResult{kind: attemptRetry, reason: "client outdated"},
	})
}

func (c *clientEvents) handleStreamError(e *events.StreamError) {
	c.d.log.Warn().Str("code", e.Code).Msg("WhatsApp sent a stream error we do not know.")
}

func (c *clientEvents) handlePairSuccess(e *events.PairSuccess) {
	id := e.ID
	c.signal(connSignal{paired: &id, session: &Session{State: StateConnecting, JID: id.ToNonAD().String()}})
}

func (c *clientEvents) handlePairError(e *events.PairError) {
	reason := "pairing failed"
	if e.Error != nil {
		reason += ": " + e.Error.Error()
	}
	c.signal(connSignal{session: &Session{State: StateUnpaired, Reason: reason}})
}

// session is a session in state for reason, with our own JID.
func (c *clientEvents) session(state State, reason string) *Session {
	c.d.mu.Lock()
	defer c.d.mu.Unlock()
	return &Session{State: state, Reason: reason, JID: c.d.self}
}

// signal tells the supervisor; a supervisor that does not take it within
// 5s is stuck, and the event is dropped rather than whatsmeow held up.
func (c *clientEvents) signal(s connSignal) {
	s.gen = c.gen
	t := time.NewTimer(5 * time.Second)
	defer t.Stop()
	select {
	case c.d.sig <- s:
	case <-c.ctx.Done():
	case <-t.C:
		c.d.log.Warn().Msg("The supervisor is busy; a connection event was dropped.")
	}
}

// applyPresence shows the account as SendPresence last asked: unavailable
// unless told otherwise, so the phone keeps showing notifications.
func (c *clientEvents) applyPresence() {
	if c.cli == nil {
		return
	}
	go c.d.applyPresence(c.ctx, c.cli)
}

func (d *Whatsmeow) applyPresence(ctx context.Context, cli *whatsmeow.Client) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	d.mu.Lock()
	p := types.PresenceUnavailable
	if d.online {
		p = types.PresenceAvailable
	}
	d.mu.Unlock()
	if err := cli.SendPresence(ctx, p); err != nil {
		if errors.Is(err, whatsmeow.ErrNoPushName) {
			d.log.Debug().Msg("No push name yet; the presence is sent once it comes.")
			return
		}
		d.log.Warn().Err(err).Str("presence", string(p)).Msg("Cannot send our presence.")
	}
}

func (d *Whatsmeow) group(jid types.JID) *groupMeta {
	if d.groups == nil {
		d.groups = map[types.JID]*groupMeta{}
	}
	jid = jid.ToNonAD()
	g := d.groups[jid]
	if g == nil {
		g = &groupMeta{}
		d.groups[jid] = g
	}
	return g
}

func (d *Whatsmeow) setGroupName(jid types.JID, name string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	g := d.group(jid)
	g.name, g.named = name, true
}

func (d *Whatsmeow) setGroupMode(jid types.JID, mode types.AddressingMode) {
	if mode == "" {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.group(jid).mode = mode
}

// noteGroupAddressing remembers how a group addresses its members, from
// any of its messages: replies, mentions and reactions we send name them
// the same way.
func (d *Whatsmeow) noteGroupAddressing(src types.MessageSource) {
	if src.Chat.Server == types.GroupServer {
		d.setGroupMode(src.Chat, src.AddressingMode)
	}
}

// groupInfo asks WhatsApp for a group's subject and addressing mode once
// (whatsmeow keeps the answer for its sends too).
func (d *Whatsmeow) groupInfo(ctx context.Context, cli *whatsmeow.Client, chat types.JID) {
	ictx, cancel := context.WithTimeout(ctx, wmLookupTimeout)
	defer cancel()
	info, err := cli.GetGroupInfo(ictx, chat)
	if err != nil {
		// Not asked again for every message (the group's events still
		// bring its subject): a failing query would hold each up.
		d.log.Debug().Err(err).Str("chat", chat.String()).Msg("The group's subject is not known yet.")
		d.setGroupName(chat, "")
		return
	}
	d.setGroupName(chat, info.Name)
	d.setGroupMode(chat, info.AddressingMode)
}

// chatName is a chat's own name: a group's subject (asked of WhatsApp the
// first time a group is seen, then kept up to date by its events), a
// contact's name from the address book the phone synced. Push names are
// not chat names: they belong to the sender.
func (d *Whatsmeow) chatName(ctx context.Context, cli *whatsmeow.Client, chat types.JID) string {
	switch chat.Server {
	case types.GroupServer:
		d.mu.Lock()
		g := d.group(chat)
		name, named := g.name, g.named
		d.mu.Unlock()
		if named || cli == nil {
			return name
		}
		d.groupInfo(ctx, cli, chat)
		d.mu.Lock()
		defer d.mu.Unlock()
		return d.group(chat).name
	case types.DefaultUserServer, types.HiddenUserServer:
		if cli == nil || cli.Store == nil || cli.Store.Contacts == nil {
			return ""
		}
		c, err := cli.Store.Contacts.GetContact(ctx, chat)
		if err != nil || !c.Found {
			return ""
		}
		return cmp.Or(c.FullName, c.FirstName, c.BusinessName)
	}
	return ""
}
