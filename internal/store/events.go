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
var EventTypes = []string{"session.state", "session.qr", "message.status", "message.incoming", "sending.paused",
	"schedule.run", "webhook.disabled"}
