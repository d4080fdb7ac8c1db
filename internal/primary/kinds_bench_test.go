package primary_test

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"app/internal/msg"
	"app/internal/primary"
	"app/internal/store"
	"app/internal/whatsapp"
)

// kindsBench is a primary with the sandbox on the embedded database, and
// what every kind of message needs: a stored file for each media kind and
// sent messages to react to, edit and revoke.
type kindsBench struct {
	st      store.Store
	sb      *whatsapp.Sandbox
	media   map[string]store.MediaInfo // by kind
	targets []store.OutboxMessage      // sent texts, one per use
}

func newKindsBench(b *testing.B, ctx context.Context, targets map[string]int) *kindsBench {
	b.Helper()
	st := benchStore(b)
	sb, _ := whatsapp.NewSandbox(whatsapp.SandboxConfig{Paired: whatsapp.SandboxJID, DeliveredDelay: -1, ReadDelay: -1})
	w := &primary.WhatsApp{Cfg: waCfg(), Driver: sb, Store: st, Log: zerolog.Nop()}
	go func() { _ = w.Run(ctx, 1) }()
	k := &kindsBench{st: st, sb: sb, media: map[string]store.MediaInfo{}}
	for kind, mt := range map[string]string{msg.KindImage: "image/jpeg", msg.KindVideo: "video/mp4", msg.KindAudio: "audio/mpeg",
		msg.KindVoice: "audio/ogg", msg.KindDocument: "application/pdf", msg.KindSticker: "image/webp"} {
		id, err := st.PutMedia(ctx, kind+".bin", mt, bytes.NewReader(bytes.Repeat([]byte{0x5a}, 32<<10)))
		if err != nil {
			b.Fatal(err)
		}
		info, err := st.MediaInfo(ctx, id)
		if err != nil {
			b.Fatal(err)
		}
		k.media[kind] = info
	}
	var ids []string
	for chat, n := range targets {
		for i := range n {
			m := store.OutboxMessage{Chat: chat, Text: fmt.Sprint("target ", i), Body: msg.Body{Kind: msg.KindText}}
			if err := st.EnqueueMessage(ctx, &m); err != nil {
				b.Fatal(err)
			}
			ids = append(ids, m.ID)
		}
	}
	for _, id := range ids {
		k.targets = append(k.targets, k.sent(b, ctx, id))
	}
	return k
}

func benchChat(i int) string { return fmt.Sprintf("4917%08d@s.whatsapp.net", i) }

// sent waits for message id to be sent and returns it.
func (k *kindsBench) sent(b *testing.B, ctx context.Context, id string) store.OutboxMessage {
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(2 * time.Millisecond) {
		m, err := k.st.OutboxMessage(ctx, id)
		if err == nil && !m.SentAt.IsZero() {
			return m
		}
		if err == nil && m.Status == store.StatusFailed {
			b.Fatalf("message %s (%s) failed: %+v", id, m.Kind, m.Error)
		}
		if time.Now().After(deadline) {
			b.Fatalf("message %s not sent within a minute: %+v", id, m)
		}
	}
}

// message is the i-th message of kind to chat; reactions, edits and
// revokes take the next sent target of that chat.
func (k *kindsBench) message(b *testing.B, kind, chat string, i int) store.OutboxMessage {
	m := store.OutboxMessage{Chat: chat, Body: msg.Body{Kind: kind}}
	target := func() *msg.Target {
		for j, t := range k.targets {
			if t.Chat == chat {
				k.targets = slices.Delete(k.targets, j, j+1)
				return &msg.Target{ID: t.ID, WAID: t.WAID, Chat: t.Chat, FromMe: true}
			}
		}
		b.Fatalf("no target left in %s for a %s", chat, kind)
		return nil
	}
	switch kind {
	case msg.KindText:
		m.Text = fmt.Sprint("text ", i)
	case msg.KindImage, msg.KindVideo, msg.KindAudio, msg.KindVoice, msg.KindDocument, msg.KindSticker:
		info := k.media[kind]
		m.MediaID, m.MediaType, m.MediaName = info.ID, info.MimeType, info.FileName
	case msg.KindLocation:
		m.Location = &msg.Location{Latitude: 52.52, Longitude: 13.405, Name: fmt.Sprint("place ", i)}
	case msg.KindContacts:
		m.Contacts = []msg.Contact{{Name: "Ann", Phones: []string{"+4917012345678"},
			VCard: "BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Ann\r\nTEL;type=CELL:+4917012345678\r\nEND:VCARD\r\n"}}
	case msg.KindPoll:
		m.Text = fmt.Sprint("poll ", i)
		m.Poll = &msg.Poll{Question: m.Text, Options: []string{"yes", "no", "maybe"}, Selectable: 1}
	case msg.KindReaction:
		m.Reaction, m.Target = "👍", target()
	case msg.KindEdit:
		m.Text, m.Target = fmt.Sprint("edited ", i), target()
	case msg.KindRevoke:
		m.Target = target()
	}
	return m
}

// needsTarget says whether kind is about another message.
func needsTarget(kind string) bool {
	return kind == msg.KindReaction || kind == msg.KindEdit || kind == msg.KindRevoke
}

// targetsFor counts the targets the messages of kinds[i%len(kinds)] to
// chat(i), for i below n, need in each chat.
func targetsFor(n int, chat func(int) string) map[string]int {
	need := map[string]int{}
	for i := range n {
		if needsTarget(benchKinds[i%len(benchKinds)]) {
			need[chat(i)]++
		}
	}
	return need
}

// benchKinds are the kinds a client can send.
var benchKinds = []string{msg.KindText, msg.KindImage, msg.KindVideo, msg.KindAudio, msg.KindVoice, msg.KindDocument, msg.KindSticker,
	msg.KindLocation, msg.KindContacts, msg.KindPoll, msg.KindReaction, msg.KindEdit, msg.KindRevoke}

// BenchmarkOutboxKinds queues 200 messages of each kind at 20 per second
// (below the throughput) over 5 chats and measures each one's time from
// queued to sent, per kind: the p99 (target: under 150 ms) and the worst.
func BenchmarkOutboxKinds(b *testing.B) {
	if b.N > 1 {
		b.Skip("one run measures it; use -benchtime 1x")
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	const n, rate = 200, 20
	need := map[string]int{}
	for i := range n {
		need[benchChat(i%5)] += 3 // a reaction, an edit and a revoke
	}
	k := newKindsBench(b, ctx, need)
	for b.Loop() {
		for _, kind := range benchKinds {
			var ids []string
			tick := time.NewTicker(time.Second / rate)
			for i := range n {
				<-tick.C
				m := k.message(b, kind, benchChat(i%5), i)
				if err := k.st.EnqueueMessage(ctx, &m); err != nil {
					b.Fatal(err)
				}
				ids = append(ids, m.ID)
			}
			tick.Stop()
			var lat []time.Duration
			for _, id := range ids {
				m := k.sent(b, ctx, id)
				lat = append(lat, m.SentAt.Sub(time.Unix(0, m.QueuedNS)))
			}
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, kind+"_p99_ms")
			b.ReportMetric(float64(lat[len(lat)-1].Microseconds())/1000, kind+"_max_ms")
		}
	}
}

// BenchmarkOutboxMixedBurst queues 1,000 messages of every kind at once
// over 20 chats and checks what a user would: each chat's messages went
// out in the order they were queued, and each exactly once (the driver's
// sends counted); it reports messages per second.
func BenchmarkOutboxMixedBurst(b *testing.B) {
	if b.N > 1 {
		b.Skip("one run measures it; use -benchtime 1x")
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	const burst, chats = 1000, 20
	k := newKindsBench(b, ctx, targetsFor(burst, func(i int) string { return benchChat(i % chats) }))
	var elapsed time.Duration
	for b.Loop() {
		before := len(k.sb.Sent())
		queued := map[string][]string{} // chat -> WhatsApp ids in the order queued
		var ids []string
		start := time.Now()
		for i := range burst {
			chat := benchChat(i % chats)
			m := k.message(b, benchKinds[i%len(benchKinds)], chat, i)
			if err := k.st.EnqueueMessage(ctx, &m); err != nil {
				b.Fatal(err)
			}
			ids = append(ids, m.ID)
		}
		for _, id := range ids {
			m := k.sent(b, ctx, id)
			queued[m.Chat] = append(queued[m.Chat], m.WAID)
		}
		elapsed += time.Since(start)
		sent := k.sb.Sent()[before:]
		if len(sent) != burst {
			b.Fatalf("the driver sent %d messages for %d queued", len(sent), burst)
		}
		got := map[string][]string{}
		times := map[string]int{}
		for _, s := range sent {
			got[s.Chat] = append(got[s.Chat], s.ID)
			times[s.ID]++
		}
		for id, n := range times {
			if n != 1 {
				b.Fatalf("message %s was sent %d times", id, n)
			}
		}
		for chat, want := range queued {
			// The queue's order is by QueuedNS; read back in that order.
			ms, err := k.st.OutboxPage(ctx, chat, "", 0, "", burst)
			if err != nil {
				b.Fatal(err)
			}
			var order []string
			for i := len(ms) - 1; i >= 0; i-- {
				if slices.Contains(want, ms[i].WAID) {
					order = append(order, ms[i].WAID)
				}
			}
			if !slices.Equal(got[chat], order) {
				b.Fatalf("chat %s: sent in the order %v, queued as %v", chat, got[chat], order)
			}
		}
	}
	b.ReportMetric(float64(burst*b.N)/elapsed.Seconds(), "msgs/s")
}
