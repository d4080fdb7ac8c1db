package whatsapp

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"app/internal/testutil"
)

// runSandbox runs sb until the test ends and returns what it delivered so far.
func runSandbox(t *testing.T, sb *Sandbox) func() []Event {
	t.Helper()
	var mu sync.Mutex
	var got []Event
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = sb.Run(ctx, func(_ context.Context, ev Event) error {
			mu.Lock()
			defer mu.Unlock()
			got = append(got, ev)
			return nil
		})
	}()
	t.Cleanup(func() { cancel(); <-done })
	return func() []Event {
		mu.Lock()
		defer mu.Unlock()
		return append([]Event(nil), got...)
	}
}

// states are the session states among evs, with their reasons.
func states(evs []Event) []Session {
	var out []Session
	for _, e := range evs {
		if sc, ok := e.(*SessionChanged); ok {
			out = append(out, sc.Session)
		}
	}
	return out
}

// The chat actions are recorded in order while connected and refused
// while not, as WhatsApp takes nothing from an offline client.
func TestSandboxRecordsChatActions(t *testing.T) {
	sb, err := NewSandbox(SandboxConfig{Paired: SandboxJID, ConnectDelay: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := sb.SendPresence(ctx, true); !errors.Is(err, ErrNotConnected) {
		t.Errorf("presence before Run: %v, want ErrNotConnected", err)
	}
	runSandbox(t, sb)
	testutil.Eventually(t, 5*time.Second, "connected", func() (bool, string) {
		return sb.Session().State == StateConnected, string(sb.Session().State)
	})
	chat := "491701234567@s.whatsapp.net"
	if err := sb.MarkRead(ctx, ReadMark{Chat: chat, Sender: chat, IDs: []string{"3A1", "3A2"}, Played: true}); err != nil {
		t.Fatal(err)
	}
	if err := sb.SendChatPresence(ctx, chat, ChatComposing); err != nil {
		t.Fatal(err)
	}
	if err := sb.SendChatPresence(ctx, chat, "dancing"); err == nil {
		t.Error("an unknown chat presence was taken")
	}
	if err := sb.SendPresence(ctx, false); err != nil {
		t.Fatal(err)
	}
	acts := sb.Actions()
	if len(acts) != 3 || acts[0].Kind != "read" || len(acts[0].Read.IDs) != 2 || !acts[0].Read.Played ||
		acts[1].ChatPresence != ChatComposing || acts[1].Chat != chat || acts[2].Kind != "presence" || acts[2].Online {
		t.Errorf("actions %+v, want the read (played), composing, offline", acts)
	}
	sb.Disconnect("test", time.Hour)
	if err := sb.MarkRead(ctx, ReadMark{Chat: chat, Sender: chat, IDs: []string{"3A3"}}); !errors.Is(err, ErrNotConnected) {
		t.Errorf("read while disconnected: %v, want ErrNotConnected", err)
	}
	if len(sb.Actions()) != 3 {
		t.Errorf("a refused action was recorded: %+v", sb.Actions())
	}
}

// A silent sandbox keeps saying connected, delivers nothing and answers
// no ping; Reconnect ends it with disconnected (and the reason), then
// connecting and connected, and what waited is delivered.
func TestSandboxSilenceAndReconnect(t *testing.T) {
	sb, err := NewSandbox(SandboxConfig{Paired: SandboxJID, ConnectDelay: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	got := runSandbox(t, sb)
	testutil.Eventually(t, 5*time.Second, "connected, and told", func() (bool, string) {
		ss := states(got())
		return len(ss) > 0 && ss[len(ss)-1].State == StateConnected, fmt.Sprint(ss)
	})
	if err := sb.Ping(context.Background()); err != nil {
		t.Fatalf("ping while connected: %v", err)
	}
	if err := sb.Silence(time.Hour); err != nil {
		t.Fatal(err)
	}
	before := len(got())
	m := sb.Inject(Incoming{Chat: "491701234567@s.whatsapp.net", Text: "lost in the silence"})
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := sb.Ping(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("ping while silent: %v, want no answer until the deadline", err)
	}
	if sb.Session().State != StateConnected || len(got()) != before {
		t.Errorf("while silent: %s and %d new events, want connected and none", sb.Session().State, len(got())-before)
	}
	if err := sb.Reconnect(context.Background(), "no answer for 1m30s"); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 5*time.Second, "the message after the reconnect", func() (bool, string) {
		for _, e := range got() {
			if in, ok := e.(*Incoming); ok && in.ID == m.ID {
				return true, ""
			}
		}
		return false, "not delivered"
	})
	testutil.Eventually(t, 5*time.Second, "connected again", func() (bool, string) {
		ss := states(got()[before:])
		return len(ss) == 3, fmt.Sprint(ss)
	})
	ss := states(got()[before:])
	if ss[0].State != StateDisconnected || ss[0].Reason != "no answer for 1m30s" || ss[1].State != StateConnecting || ss[2].State != StateConnected {
		t.Errorf("states after Reconnect: %+v, want disconnected (with the reason), connecting, connected", ss)
	}
	if err := sb.Ping(context.Background()); err != nil {
		t.Errorf("ping after the reconnect: %v", err)
	}

	// A silence of its own length ends by itself.
	if err := sb.Silence(50 * time.Millisecond); err != nil {
		t.Fatal(err)
	}
	ctx2, cancel2 := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel2()
	if err := sb.Ping(ctx2); err != nil {
		t.Errorf("ping when the silence ended: %v", err)
	}
}
