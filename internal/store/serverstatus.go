package store

import (
	"time"
)

// ServerClock is the server's clock read once: what it said and when the
// question left and the answer came back by this machine's clock.
type ServerClock struct {
	Server   time.Time // the server's localTime (millisecond precision)
	Sent     time.Time
	Received time.Time
}

// Skew is how far the server's clock is ahead of this machine's (negative:
// behind), taking the server's reading to be from half-way through the
// round trip; the answer is accurate to within Uncertainty.
func (c ServerClock) Skew() time.Duration {
	rtt := c.Received.Sub(c.Sent)
	return c.Server.Sub(c.Sent.Add(rtt / 2))
}

// Uncertainty is half the round trip plus the millisecond the server's
// reading is truncated to.
func (c ServerClock) Uncertainty() time.Duration {
	return c.Received.Sub(c.Sent)/2 + time.Millisecond
}

// ServerConnections is the server's own count of client connections.
type ServerConnections struct {
	Reported  bool  // false when serverStatus has no connections section (FerretDB)
	Current   int64 // open now, from every client
	Available int64 // how many more it accepts
}
