package store

import (
	"context"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
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

// Clock reads the server's time from hello, which MongoDB and FerretDB
// both answer with localTime.
func (s *Store) Clock(ctx context.Context) (ServerClock, error) {
	var hello struct {
		LocalTime time.Time `bson:"localTime"`
	}
	var c ServerClock
	c.Sent = time.Now()
	err := s.db.RunCommand(ctx, bson.D{{Key: "hello", Value: 1}}).Decode(&hello)
	c.Received = time.Now()
	if err != nil {
		return c, fmt.Errorf("store: hello: %w", err)
	}
	if hello.LocalTime.IsZero() {
		return c, fmt.Errorf("store: hello: the server did not say its time (no localTime)")
	}
	c.Server = hello.LocalTime
	return c, nil
}

// ServerConnections is the server's own count of client connections.
type ServerConnections struct {
	Reported  bool  // false when serverStatus has no connections section (FerretDB)
	Current   int64 // open now, from every client
	Available int64 // how many more it accepts
}

// Connections asks serverStatus for the server's connection figures. A
// server that answers without them (FerretDB) gives Reported false; one
// that refuses (a user without the clusterMonitor role) gives an error.
func (s *Store) Connections(ctx context.Context) (ServerConnections, error) {
	var st struct {
		Connections *struct {
			Current   int64 `bson:"current"`
			Available int64 `bson:"available"`
		} `bson:"connections"`
	}
	cmd := bson.D{{Key: "serverStatus", Value: 1}}
	// Only the connections section is wanted; the others cost the server work.
	for _, section := range []string{"asserts", "metrics", "opcounters", "wiredTiger", "locks", "network", "tcmalloc", "repl", "storageEngine"} {
		cmd = append(cmd, bson.E{Key: section, Value: 0})
	}
	if err := s.client.Database("admin").RunCommand(ctx, cmd).Decode(&st); err != nil {
		return ServerConnections{}, fmt.Errorf("store: serverStatus: %w", err)
	}
	if st.Connections == nil {
		return ServerConnections{}, nil
	}
	return ServerConnections{Reported: true, Current: st.Connections.Current, Available: st.Connections.Available}, nil
}
