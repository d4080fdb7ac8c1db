package whatsapp

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/types"
)

// PairPhone implements Driver.
func (d *Whatsmeow) PairPhone(ctx context.Context, phone string) (string, error) {
	if d == nil {
		return "", ErrNotConnected
	}
	d.mu.Lock()
	cli, paired, state := d.client, d.paired, d.session.State
	d.mu.Unlock()
	if cli == nil {
		return "", ErrNotConnected
	}
	if paired || cli.IsLoggedIn() {
		return "", ErrAlreadyPaired
	}
	// A shown QR code means the pairing websocket is up (whatsmeow asks to
	// wait for it before PairPhone).
	if state != StatePairing || !cli.IsConnected() {
		return "", ErrNotConnected
	}
	code, err := cli.PairPhone(ctx, phone, true, whatsmeow.PairClientChrome, wmPairClientDisplayName)
	if err != nil {
		var disc *whatsmeow.DisconnectedError
		if errors.Is(err, whatsmeow.ErrNotConnected) || errors.As(err, &disc) {
			return "", ErrNotConnected
		}
		return "", fmt.Errorf("whatsapp: pair phone: %w", err)
	}
	return code, nil
}

// Logout implements Driver.
func (d *Whatsmeow) Logout(ctx context.Context) error {
	if d == nil {
		return ErrNotPaired
	}
	d.mu.Lock()
	cli, paired, gen := d.client, d.paired, d.gen
	d.mu.Unlock()
	if cli == nil || !paired {
		return ErrNotPaired
	}
	err := cli.Logout(ctx)
	var disc *whatsmeow.DisconnectedError
	switch {
	case err == nil:
	case errors.Is(err, whatsmeow.ErrNotLoggedIn):
		return ErrNotPaired
	case errors.Is(err, whatsmeow.ErrNotConnected), errors.As(err, &disc):
		return ErrNotConnected
	case strings.HasPrefix(err.Error(), "error deleting data from store"):
		// Unlinked on WhatsApp's side; the supervisor retries the delete.
		d.log.Error().Err(err).Msg("The device was unlinked, but whatsmeow could not delete it from the device store.")
	default:
		return fmt.Errorf("whatsapp: logout: %w", err)
	}
	select {
	case d.sig <- connSignal{
		gen:     gen,
		session: &Session{State: StateLoggedOut, Reason: "logged out from this device"},
		forget:  forgetLocal,
		end:     &attemptResult{kind: attemptLoggedOut},
	}:
	case <-ctx.Done():
	}
	return nil
}

// MarkRead implements Driver. The receipt goes to the chat as WhatsApp
// addresses it (a LID chat once the account migrated), naming the sender
// in groups.
func (d *Whatsmeow) MarkRead(ctx context.Context, r ReadMark) error {
	if len(r.IDs) == 0 {
		return errors.New("whatsapp: mark read: no message ids")
	}
	chat, err := parseRecipient(r.Chat)
	if err != nil {
		return fmt.Errorf("whatsapp: mark read: %w", err)
	}
	var sender types.JID
	if r.Sender != "" {
		if sender, err = parseRecipient(r.Sender); err != nil {
			return fmt.Errorf("whatsapp: mark read: sender: %w", err)
		}
	}
	cli, err := d.loggedIn()
	if err != nil {
		return err
	}
	chat, sender = d.receiptAddress(ctx, cli, chat, sender)
	ids := make([]types.MessageID, len(r.IDs))
	for i, id := range r.IDs {
		ids[i] = types.MessageID(id)
	}
	at := r.At
	if at.IsZero() {
		at = d.now()
	}
	typ := types.ReceiptTypeRead
	if r.Played {
		typ = types.ReceiptTypePlayed
	}
	if err := cli.MarkRead(ctx, ids, at, chat, sender, typ); err != nil {
		return actionError("mark read", err)
	}
	return nil
}

// receiptAddress is chat and sender as WhatsApp addresses the chat (see
// whatsmeow_lid.go): whatsmeow does not rewrite receipts and chat states
// the way it does SendMessage's destination.
func (d *Whatsmeow) receiptAddress(ctx context.Context, cli *whatsmeow.Client, chat, sender types.JID) (types.JID, types.JID) {
	a := d.chatAddressing(ctx, cli, chat)
	if !sender.IsEmpty() {
		sender = a.jid(sender)
	}
	return a.jid(chat), sender
}

// SendChatPresence implements Driver: typing is "composing", recording a
// voice note is composing with audio.
func (d *Whatsmeow) SendChatPresence(ctx context.Context, chat string, p ChatPresence) error {
	jid, err := parseRecipient(chat)
	if err != nil {
		return fmt.Errorf("whatsapp: chat presence: %w", err)
	}
	state, media := types.ChatPresenceComposing, types.ChatPresenceMediaText
	switch p {
	case ChatComposing:
	case ChatRecording:
		media = types.ChatPresenceMediaAudio
	case ChatPaused:
		state = types.ChatPresencePaused
	default:
		return fmt.Errorf("whatsapp: chat presence: unknown presence %q", p)
	}
	cli, err := d.loggedIn()
	if err != nil {
		return err
	}
	jid, _ = d.receiptAddress(ctx, cli, jid, types.EmptyJID)
	if err := cli.SendChatPresence(ctx, jid, state, media); err != nil {
		return actionError("chat presence", err)
	}
	return nil
}

// SendPresence implements Driver. The choice is kept: every connection
// starts with it (unavailable until asked otherwise, so the phone keeps
// showing notifications).
func (d *Whatsmeow) SendPresence(ctx context.Context, online bool) error {
	if d == nil {
		return ErrNotConnected
	}
	d.mu.Lock()
	d.online = online
	d.mu.Unlock()
	cli, err := d.loggedIn()
	if err != nil {
		return err
	}
	p := types.PresenceUnavailable
	if online {
		p = types.PresenceAvailable
	}
	if err := cli.SendPresence(ctx, p); err != nil {
		if errors.Is(err, whatsmeow.ErrNoPushName) {
			return fmt.Errorf("whatsapp: presence: WhatsApp has not told us our push name yet: %w", err)
		}
		return actionError("presence", err)
	}
	return nil
}

// RejectCall implements Driver. The caller is answered as WhatsApp named
// it in the offer (a LID, perhaps, where we reported the number).
func (d *Whatsmeow) RejectCall(ctx context.Context, from, callID string) error {
	if callID == "" {
		return errors.New("whatsapp: reject call: no call id")
	}
	caller, err := parseRecipient(from)
	if err != nil {
		return fmt.Errorf("whatsapp: reject call: %w", err)
	}
	cli, err := d.loggedIn()
	if err != nil {
		return err
	}
	d.mu.Lock()
	if c, ok := d.calls[callID]; ok && !c.from.IsEmpty() {
		caller = c.from
	}
	d.mu.Unlock()
	if err := cli.RejectCall(ctx, caller, callID); err != nil {
		return actionError("reject call", err)
	}
	d.mu.Lock()
	delete(d.calls, callID)
	d.mu.Unlock()
	return nil
}

// errNoPong is Ping's error when WhatsApp's server did not answer.
var errNoPong = errors.New("whatsapp: ping: WhatsApp's server did not answer")

// Ping implements Driver with the IQ whatsmeow's keep-alive sends (w:p,
// to WhatsApp's server), waiting for its answer: a round trip over the
// socket the session uses, at most whatsmeow's 10s keep-alive deadline
// (or ctx's). whatsmeow has no public call for it, hence its internals.
//
// It asks the server, not the phone: mautrix-whatsapp's "phone ping" is
// an app-state key request to our own devices whose answer whatsmeow
// consumes without an event, so nothing could wait for it; and a linked
// device works while the phone is off (for about two weeks).
func (d *Whatsmeow) Ping(ctx context.Context) error {
	cli, err := d.connected()
	if err != nil {
		return err
	}
	//lint:ignore SA1019 the keep-alive IQ is the lightest round trip to WhatsApp; whatsmeow exposes it only here
	ok, _ := cli.DangerousInternals().SendKeepAlive(ctx)
	if ctx.Err() != nil {
		return fmt.Errorf("whatsapp: ping: %w", ctx.Err())
	}
	if !ok {
		return errNoPong
	}
	return nil
}

// Reconnect implements Driver: the supervisor reports disconnected with
// reason, drops the connection and dials again after its back-off (short
// after a stable connection, growing when reconnects follow each other).
func (d *Whatsmeow) Reconnect(ctx context.Context, reason string) error {
	if d == nil {
		return ErrNotConnected
	}
	d.mu.Lock()
	cli, paired, gen := d.client, d.paired, d.gen
	d.mu.Unlock()
	if cli == nil {
		return ErrNotConnected
	}
	if !paired {
		return ErrNotPaired
	}
	if reason == "" {
		reason = "reconnect asked for"
	}
	select {
	case d.sig <- connSignal{
		gen:     gen,
		session: &Session{State: StateDisconnected, Reason: reason},
		end:     &attemptResult{kind: attemptRetry, reason: reason},
	}:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("whatsapp: reconnect: %w", ctx.Err())
	}
}
