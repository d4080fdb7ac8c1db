package whatsapp

import (
	"context"
	"sync"
	"testing"
	"time"
)

// What the sandbox holds for us (an incoming message, the receipts of a
// send) outlives the sandbox that held it, as on WhatsApp's servers: a
// new sandbox on the same directory delivers what was not acknowledged,
// receipts when they fall due, and nothing that was.
func TestSandboxHoldsUntilAcknowledged(t *testing.T) {
	dir := t.TempDir()
	cfg := SandboxConfig{Dir: dir, Paired: SandboxJID, DeliveredDelay: 300 * time.Millisecond, ReadDelay: 600 * time.Millisecond}
	run := func(sb *Sandbox, h Handler) (stop func()) {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- sb.Run(ctx, h) }()
		return func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
		}
	}
	var mu sync.Mutex
	var got []Event
	cond := sync.NewCond(&mu)
	wait := func(what string, ok func() bool) {
		t.Helper()
		timer := time.AfterFunc(10*time.Second, func() { mu.Lock(); cond.Broadcast(); mu.Unlock() })
		defer timer.Stop()
		deadline := time.Now().Add(10 * time.Second)
		mu.Lock()
		defer mu.Unlock()
		for !ok() {
			if time.Now().After(deadline) {
				t.Fatalf("%s: not within 10s; got %d events", what, len(got))
			}
			cond.Wait()
		}
	}
	record := func(_ context.Context, ev Event) error {
		mu.Lock()
		defer mu.Unlock()
		defer cond.Broadcast()
		got = append(got, ev)
		return nil
	}
	connected := func() bool {
		for _, e := range got {
			if sc, ok := e.(*SessionChanged); ok && sc.Session.State == StateConnected {
				return true
			}
		}
		return false
	}

	// First sandbox: one message stored, then a send, then the store fails.
	a, err := NewSandbox(cfg)
	if err != nil {
		t.Fatal(err)
	}
	stopA := run(a, record)
	wait("connected", connected)
	first := a.Inject(Incoming{Chat: "491701234567@s.whatsapp.net", Text: "stored"})
	wait("first message", func() bool { return len(got) > 0 && isIncoming(got[len(got)-1], first.ID) })
	if _, err := a.Send(context.Background(), Outgoing{ID: "3EB0SENT", Chat: "491701234567@s.whatsapp.net", Text: "hi"}); err != nil {
		t.Fatal(err)
	}
	stopA()
	second := a.Inject(Incoming{Chat: "491701234567@s.whatsapp.net", Text: "held"}) // arrives while we are offline

	// Second sandbox, as a new process would open it: the held message and
	// both receipts, not the acknowledged message.
	mu.Lock()
	got = nil
	mu.Unlock()
	b, err := NewSandbox(cfg)
	if err != nil {
		t.Fatal(err)
	}
	stopB := run(b, record)
	defer stopB()
	wait("the held message and both receipts", func() bool {
		var in, delivered, read bool
		for _, e := range got {
			switch e := e.(type) {
			case *Incoming:
				if e.ID == first.ID {
					t.Errorf("the acknowledged message %s was delivered again", e.ID)
				}
				in = in || (e.ID == second.ID && e.Text == "held")
			case *Receipt:
				delivered = delivered || (e.Type == ReceiptDelivered && e.IDs[0] == "3EB0SENT")
				read = read || (e.Type == ReceiptRead && e.IDs[0] == "3EB0SENT")
			}
		}
		return in && delivered && read
	})
}

func isIncoming(e Event, id string) bool {
	in, ok := e.(*Incoming)
	return ok && in.ID == id
}
