package whatsapp

// Placeholders for the driver methods of issue 18 while they are written
// (each helper deletes the ones it writes; this file goes before the
// issue is closed).

import (
	"context"
	"errors"
)

var errTODO = errors.New("whatsapp: not written yet")

func (s *Sandbox) RejectCall(ctx context.Context, from, callID string) error   { return errTODO }
func (s *Sandbox) RetryMedia(ctx context.Context, m *Incoming) error           { return errTODO }
func (d *Whatsmeow) MarkRead(ctx context.Context, r ReadMark) error            { return errTODO }
func (d *Whatsmeow) SendPresence(ctx context.Context, online bool) error       { return errTODO }
func (d *Whatsmeow) RejectCall(ctx context.Context, from, callID string) error { return errTODO }
func (d *Whatsmeow) RetryMedia(ctx context.Context, m *Incoming) error         { return errTODO }
func (d *Whatsmeow) Ping(ctx context.Context) error                            { return errTODO }
func (d *Whatsmeow) Reconnect(ctx context.Context, reason string) error        { return errTODO }
func (d *Whatsmeow) SendChatPresence(ctx context.Context, chat string, p ChatPresence) error {
	return errTODO
}
