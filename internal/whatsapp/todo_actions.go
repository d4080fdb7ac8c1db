package whatsapp

// Placeholders for the driver methods of issue 18 while they are written
// (each helper deletes the ones it writes; this file goes before the
// issue is closed).

import (
	"context"
	"errors"
)

var errTODO = errors.New("whatsapp: not written yet")

func (s *Sandbox) MarkRead(ctx context.Context, r ReadMark) error { return errTODO }
func (s *Sandbox) SendChatPresence(ctx context.Context, chat string, p ChatPresence) error {
	return errTODO
}
func (s *Sandbox) SendPresence(ctx context.Context, online bool) error { return errTODO }
func (s *Sandbox) Ping(ctx context.Context) error                      { return errTODO }
func (s *Sandbox) Reconnect(ctx context.Context, reason string) error  { return errTODO }
