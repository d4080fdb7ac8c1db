package store

import (
	"encoding/json"
	"fmt"
	"time"
)

// Event is one entry of the event log. Seq is its position: the primary is
// the log's one writer and appends in order, so a reader that has seen
// Seq n never later finds an event below n appear.
type Event struct {
	Seq   int64     `json:"seq"`
	Type  string    `json:"type"`
	At    time.Time `json:"at"`
	Epoch int64     `json:"-"`
	// Data is the event's JSON object, as clients and webhooks get it.
	Data json.RawMessage `json:"-"`
}

// JSON is the event as clients get it, on streams and in webhooks:
// {"seq":..,"type":..,"at":..,"data":{..}}.
func (e Event) JSON() []byte {
	data := e.Data
	if len(data) == 0 {
		data = json.RawMessage("{}")
	}
	b, err := json.Marshal(struct {
		Seq  int64           `json:"seq"`
		Type string          `json:"type"`
		At   time.Time       `json:"at"`
		Data json.RawMessage `json:"data"`
	}{e.Seq, e.Type, e.At.UTC(), data})
	if err != nil { // data that is not JSON: the event without it
		b, _ = json.Marshal(struct {
			Seq  int64     `json:"seq"`
			Type string    `json:"type"`
			At   time.Time `json:"at"`
		}{e.Seq, e.Type, e.At.UTC()})
	}
	return b
}

// DecodeData decodes an event's data into v.
func (e Event) DecodeData(v any) error { return json.Unmarshal(e.Data, v) }

// EventData is data as an event stores it: its JSON object.
func EventData(typ string, data any) (json.RawMessage, error) {
	if raw, ok := data.(json.RawMessage); ok {
		return raw, nil
	}
	b, err := json.Marshal(data)
	if err != nil {
		return nil, fmt.Errorf("store: event %s: %w", typ, err)
	}
	if len(b) == 0 || b[0] != '{' {
		return nil, fmt.Errorf("store: event %s: data is not an object: %s", typ, b)
	}
	return b, nil
}

// EventTypes are the types the log holds (docs/EVENTS.md).
var EventTypes = []string{"session.state", "session.qr", "message.status", "message.incoming", "message.updated",
	"call.offered", "profile.updated", "sending.paused", "schedule.run", "webhook.disabled", "group.joined", "group.updated", "group.left"}
