// Package realtime tails the event log once per worker process and hands
// its events to that worker's realtime clients (SSE and WebSocket).
//
// The hub reads the log's head every 10ms while events flow and every 50ms
// when idle (SQLite: the end of the log's primary key, microseconds;
// MongoDB: one head document), or, on a MongoDB replica set, waits on a
// change stream of the head instead; it reads the log when the head moved
// (and again at once while it finds events), and keeps the latest events,
// already encoded, in a ring. Each client has its own
// cursor and reads from the ring, or from the database when it resumes
// from further back, so a slow client holds up nobody: it falls behind
// and is cut off once it is MaxLag events behind.
package realtime

import (
	"context"
	"encoding/json"
	"strconv"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"app/internal/store"
)

// Source is the event log.
type Source interface {
	Events(ctx context.Context, after int64, limit int) ([]store.Event, error)
	LastEventSeq(ctx context.Context) (int64, error)
	FirstEventSeq(ctx context.Context) (int64, error)
	EventHead(ctx context.Context) (int64, error)
}

// watcher is a source that can say when the log moved (MongoDB's change
// streams, on a replica set).
type watcher interface {
	WatchEvents(ctx context.Context) (<-chan struct{}, error)
}

// Event is one event as clients get it.
type Event struct {
	Seq  int64
	Type string
	Chat string // the event's chat, for filters ("" when it has none)
	JSON []byte // {"seq","type","at","data"}
	SSE  []byte // the Server-Sent Events frame: id, event, data
}

// Hub is one worker's tail of the event log.
type Hub struct {
	Src Source
	Log zerolog.Logger
	// Ring is how many recent events are kept (default 4096).
	Ring int
	// Interval is how often the log's head document is read while events
	// flow (default 10ms), IdleInterval when none came for 10s (default
	// 50ms); the log itself is read when the head moved, and at least
	// every second in case the head document lags.
	Interval, IdleInterval time.Duration

	mu      sync.Mutex
	ring    []Event
	head    int64 // last seq seen; -1 until started
	started chan struct{}
	changed chan struct{} // closed and replaced when events arrive
}

// Run tails the log until ctx ends.
func (h *Hub) Run(ctx context.Context) {
	if h.Ring == 0 {
		h.Ring = 4096
	}
	h.init()
	for ctx.Err() == nil {
		last, err := h.Src.LastEventSeq(ctx)
		if err == nil {
			h.mu.Lock()
			h.head = last
			h.mu.Unlock()
			close(h.started)
			break
		}
		h.Log.Warn().Err(err).Msg("Realtime: cannot read the event log; will retry.")
		sleep(ctx, time.Second)
	}
	if h.Interval == 0 {
		h.Interval = 10 * time.Millisecond
	}
	if h.IdleInterval == 0 {
		h.IdleInterval = 50 * time.Millisecond
	}
	var lastRead, lastEvent, lastWatch time.Time
	var moved <-chan struct{}
	pause := func() {
		// With a change stream, the log is read when it moved (and at
		// least every second, should a change go unnoticed); without,
		// the head is polled.
		if w, ok := h.Src.(watcher); ok && moved == nil && time.Since(lastWatch) > time.Minute {
			lastWatch = time.Now()
			ch, err := w.WatchEvents(ctx)
			if err != nil {
				h.Log.Debug().Err(err).Msg("Realtime: no change stream on this database; polling the event log's head.")
			}
			moved = ch
		}
		if moved != nil {
			select {
			case <-ctx.Done():
			case _, ok := <-moved:
				if !ok {
					moved = nil
				}
			case <-time.After(time.Second):
			}
			return
		}
		if time.Since(lastEvent) < 10*time.Second {
			sleep(ctx, h.Interval)
		} else {
			sleep(ctx, h.IdleInterval)
		}
	}
	for ctx.Err() == nil {
		h.mu.Lock()
		head := h.head
		h.mu.Unlock()
		// Without a head document (a primary of an older version), or
		// when it cannot be read, the log is read at each turn.
		if top, err := h.Src.EventHead(ctx); err == nil && top <= head && time.Since(lastRead) < time.Second && moved == nil {
			pause()
			continue
		}
		evs, err := h.Src.Events(ctx, head, 500)
		lastRead = time.Now()
		if err != nil {
			if ctx.Err() == nil {
				h.Log.Warn().Err(err).Msg("Realtime: cannot read the event log; will retry.")
			}
			sleep(ctx, time.Second)
			continue
		}
		if len(evs) > 0 {
			h.add(evs)
			lastEvent = lastRead
			continue
		}
		pause()
	}
}

func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

func (h *Hub) init() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.started == nil {
		h.started = make(chan struct{})
		h.changed = make(chan struct{})
		h.head = -1
	}
}

// Encode turns a stored event into what clients get.
func Encode(e store.Event) Event {
	var head struct {
		Chat string `json:"chat"`
	}
	_ = json.Unmarshal(e.Data, &head)
	b := e.JSON()
	// Encoded once here rather than for each client.
	sse := make([]byte, 0, len(b)+len(e.Type)+40)
	sse = append(sse, "id: "...)
	sse = strconv.AppendInt(sse, e.Seq, 10)
	sse = append(sse, "\nevent: "...)
	sse = append(sse, e.Type...)
	sse = append(sse, "\ndata: "...)
	sse = append(sse, b...)
	sse = append(sse, "\n\n"...)
	return Event{Seq: e.Seq, Type: e.Type, Chat: head.Chat, JSON: b, SSE: sse}
}

func (h *Hub) add(evs []store.Event) {
	enc := make([]Event, len(evs))
	for i, e := range evs {
		enc[i] = Encode(e)
	}
	h.mu.Lock()
	h.ring = append(h.ring, enc...)
	if over := len(h.ring) - h.Ring; over > 0 {
		h.ring = append([]Event(nil), h.ring[over:]...)
	}
	h.head = enc[len(enc)-1].Seq
	close(h.changed)
	h.changed = make(chan struct{})
	h.mu.Unlock()
}

// Head is the last sequence number the hub has seen (waiting until it
// has read the log's position once).
func (h *Hub) Head(ctx context.Context) (int64, error) {
	h.init()
	select {
	case <-ctx.Done():
		return 0, ctx.Err()
	case <-h.started:
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.head, nil
}

// Since returns the ring's events after cursor, a channel closed when
// more arrive, and the head. ok is false when cursor is older than the
// ring: the caller reads the database.
func (h *Hub) Since(cursor int64) (evs []Event, more <-chan struct{}, head int64, ok bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	more, head = h.changed, h.head
	if cursor >= head {
		return nil, more, head, true
	}
	if len(h.ring) == 0 || cursor < h.ring[0].Seq-1 {
		return nil, more, head, false
	}
	i := int(cursor - (h.ring[0].Seq - 1))
	// Sequence numbers are contiguous unless an append was abandoned;
	// search from the estimate.
	for i > 0 && i <= len(h.ring) && h.ring[i-1].Seq > cursor {
		i--
	}
	for i < len(h.ring) && h.ring[i].Seq <= cursor {
		i++
	}
	return append([]Event(nil), h.ring[i:]...), more, head, true
}
