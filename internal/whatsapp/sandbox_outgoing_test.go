package whatsapp

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"app/internal/msg"
	"app/internal/testutil"
)

// The sandbox refuses, as WhatsApp would, a message of a kind without
// its parts, finally (no retry makes it whole), and records what it
// accepts as it was given.
func TestSandboxRefusesKindsWithoutTheirParts(t *testing.T) {
	sb, err := NewSandbox(SandboxConfig{Paired: SandboxJID, ConnectDelay: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sb.Run(ctx, func(context.Context, Event) error { return nil }) }()
	defer func() { cancel(); <-done }()
	testutil.Eventually(t, 10*time.Second, "connected", func() (bool, string) {
		return sb.Session().State == StateConnected, string(sb.Session().State)
	})
	const chat = "491701234567@s.whatsapp.net"
	target := &msg.Target{WAID: "3EB0ABC", Chat: chat}
	for _, c := range []struct {
		name string
		m    Outgoing
	}{
		{"a poll without options", Outgoing{Body: msg.Body{Kind: msg.KindPoll, Poll: &msg.Poll{Question: "Q?"}}}},
		{"a poll of one option", Outgoing{Body: msg.Body{Kind: msg.KindPoll, Poll: &msg.Poll{Question: "Q?", Options: []string{"a"}}}}},
		{"an edit without target", Outgoing{Body: msg.Body{Kind: msg.KindEdit}, Text: "new"}},
		{"an edit without text", Outgoing{Body: msg.Body{Kind: msg.KindEdit, Target: target}}},
		{"a reaction to a message of another chat", Outgoing{Body: msg.Body{Kind: msg.KindReaction, Reaction: "👍",
			Target: &msg.Target{WAID: "3EB0ABC", Chat: "491709876543@s.whatsapp.net"}}}},
		{"a revoke without target", Outgoing{Body: msg.Body{Kind: msg.KindRevoke}}},
		{"a location off the map", Outgoing{Body: msg.Body{Kind: msg.KindLocation, Location: &msg.Location{Latitude: 91}}}},
		{"contacts without cards", Outgoing{Body: msg.Body{Kind: msg.KindContacts}}},
		{"an image without its file", Outgoing{Body: msg.Body{Kind: msg.KindImage}, Text: "caption"}},
		{"a blank text", Outgoing{Body: msg.Body{Kind: msg.KindText}, Text: " "}},
		{"a kind of its own", Outgoing{Body: msg.Body{Kind: "hologram"}, Text: "hi"}},
	} {
		c.m.ID, c.m.Chat = sb.NewMessageID(), chat
		_, err := sb.Send(ctx, c.m)
		var se *SendError
		if !errors.As(err, &se) || se.Retryable {
			t.Errorf("%s: %v, want a final SendError", c.name, err)
		}
	}
	if n := len(sb.Sent()); n != 0 {
		t.Fatalf("%d refused messages recorded as sent", n)
	}
	poll := Outgoing{ID: sb.NewMessageID(), Chat: chat, Text: "Q?",
		Body: msg.Body{Kind: msg.KindPoll, Poll: &msg.Poll{Question: "Q?", Options: []string{"a", "b"}, Selectable: 1}}}
	reaction := Outgoing{ID: sb.NewMessageID(), Chat: chat, Body: msg.Body{Kind: msg.KindReaction, Reaction: "", Target: target}}
	for _, m := range []Outgoing{poll, reaction} {
		if _, err := sb.Send(ctx, m); err != nil {
			t.Fatalf("%s: %v", m.Kind, err)
		}
	}
	sent := sb.Sent()
	if len(sent) != 2 || sent[0].Poll == nil || strings.Join(sent[0].Poll.Options, ",") != "a,b" || sent[1].Kind != msg.KindReaction || sent[1].Target != target {
		t.Errorf("recorded %+v", sent)
	}
}
