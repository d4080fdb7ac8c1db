package primary

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"
	"time"

	"app/internal/msg"
	"app/internal/store"
	"app/internal/whatsapp"
)

// Chat actions: read receipts, typing indicators, online presence. A
// worker leaves them as commands with a short deadline (store.Command),
// as they are worth nothing late; the commands loop drops one whose
// deadline passed, and runs the others here with it.
//
// Their arguments:
//   - mark_read: chat; ids, the WhatsApp ids of messages in it, comma
//     separated (none: the chat's unread incoming messages); played
//     ("true"): voice notes are marked played.
//   - chat_presence: chat; state, a whatsapp.ChatPresence.
//   - presence: state, "available" or "unavailable".
//
// A failure's result has a code the worker answers by: not_connected
// (503), unknown_message (404, with the id).
const (
	cmdMarkRead     = "mark_read"
	cmdChatPresence = "chat_presence"
	cmdPresence     = "presence"
)

func isChatAction(kind string) bool {
	return kind == cmdMarkRead || kind == cmdChatPresence || kind == cmdPresence
}

// maxMarkRead bounds the messages one read of a whole chat marks: the
// newest unread, as many as a request may name.
const maxMarkRead = 1000

func (w *WhatsApp) chatAction(ctx context.Context, c *store.Command) (map[string]string, error) {
	notConnected := map[string]string{"code": "not_connected"}
	if w.Session().State != whatsapp.StateConnected {
		return notConnected, whatsapp.ErrNotConnected
	}
	var res map[string]string
	var err error
	switch c.Kind {
	case cmdMarkRead:
		res, err = w.markRead(ctx, c.Args)
	case cmdChatPresence:
		err = w.Driver.SendChatPresence(ctx, c.Args["chat"], whatsapp.ChatPresence(c.Args["state"]))
	case cmdPresence:
		err = w.Driver.SendPresence(ctx, c.Args["state"] == "available")
	}
	if errors.Is(err, whatsapp.ErrNotConnected) {
		return notConnected, err
	}
	return res, err
}

// markRead sends the receipts of a mark_read command: for the messages it
// names, or the chat's unread ones, whose newest then becomes the chat's
// read mark.
func (w *WhatsApp) markRead(ctx context.Context, args map[string]string) (map[string]string, error) {
	chat := args["chat"]
	var ms []store.IncomingMessage
	var newest time.Time
	if args["ids"] == "" {
		var err error
		if ms, newest, err = w.unread(ctx, chat); err != nil {
			return nil, err
		}
	} else {
		for _, id := range strings.Split(args["ids"], ",") {
			m, err := w.Store.IncomingByWAID(ctx, chat, id)
			if errors.Is(err, store.ErrNotFound) || (err == nil && m.FromMe) {
				return map[string]string{"code": "unknown_message", "id": id}, errors.New("no message someone sent in this chat has the WhatsApp id " + id)
			}
			if err != nil {
				return nil, err
			}
			ms = append(ms, m)
		}
	}
	for _, r := range readMarks(chat, ms, args["played"] == "true", time.Now()) {
		if err := w.Driver.MarkRead(ctx, r); err != nil {
			return nil, err
		}
	}
	if !newest.IsZero() {
		if err := w.setReadMark(ctx, chat, newest); err != nil {
			return nil, err
		}
	}
	return map[string]string{"marked": strconv.Itoa(len(ms))}, nil
}

// unread lists the chat's incoming messages at or after its read mark
// that take a receipt, oldest first, at most maxMarkRead (the newest), and
// the send time of the newest incoming message. Those at the mark itself
// are marked again: WhatsApp stamps to the second, and a message of the
// same second may have come after the mark was set.
func (w *WhatsApp) unread(ctx context.Context, chat string) ([]store.IncomingMessage, time.Time, error) {
	c, err := w.Store.Chat(ctx, chat)
	if errors.Is(err, store.ErrNotFound) {
		return nil, time.Time{}, nil
	}
	if err != nil {
		return nil, time.Time{}, err
	}
	const page = 200
	var out []store.IncomingMessage
	var newest time.Time
	var beforeNS int64
	var beforeKey string
	for len(out) < maxMarkRead {
		ms, err := w.Store.IncomingPage(ctx, chat, beforeNS, beforeKey, page)
		if err != nil {
			return nil, time.Time{}, err
		}
		for _, m := range ms {
			if m.SentAt.Before(c.ReadUpTo) {
				slices.Reverse(out)
				return out, newest, nil
			}
			if m.SentAt.After(newest) {
				newest = m.SentAt
			}
			if !m.FromMe && takesReceipt(m.Kind) && len(out) < maxMarkRead {
				out = append(out, m)
			}
		}
		if len(ms) < page {
			break
		}
		last := ms[len(ms)-1]
		beforeNS, beforeKey = last.SentAt.UnixNano(), last.Key
	}
	slices.Reverse(out)
	return out, newest, nil
}

// takesReceipt says whether a message of kind is one a person reads:
// reactions, edits, revokes and poll votes are about another message,
// which is the one read.
func takesReceipt(kind string) bool {
	switch kind {
	case msg.KindReaction, msg.KindEdit, msg.KindRevoke, msg.KindPollVote:
		return false
	}
	return true
}

// readMarks groups messages by sender (receipts go to whoever sent them:
// in a group, each member), with voice notes apart when they are to be
// marked played; in the order of their first message. The ids are
// distinct: a sender's message ids are (the worker drops repeated ones).
func readMarks(chat string, ms []store.IncomingMessage, played bool, at time.Time) []whatsapp.ReadMark {
	var marks []whatsapp.ReadMark
	index := map[string]int{}
	for _, m := range ms {
		voice := played && m.Kind == msg.KindVoice
		key := m.Sender + "/" + strconv.FormatBool(voice)
		i, ok := index[key]
		if !ok {
			i = len(marks)
			index[key] = i
			marks = append(marks, whatsapp.ReadMark{Chat: chat, Sender: m.Sender, At: at, Played: voice})
		}
		marks[i].IDs = append(marks[i].IDs, m.WAID)
	}
	return marks
}

// setReadMark moves the chat's read mark forward to upTo.
func (w *WhatsApp) setReadMark(ctx context.Context, jid string, upTo time.Time) error {
	w.chatMu.Lock()
	defer w.chatMu.Unlock()
	c, err := w.Store.Chat(ctx, jid)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil || !upTo.After(c.ReadUpTo) {
		return err
	}
	c.ReadUpTo = upTo
	return w.Store.SaveChat(ctx, c)
}
