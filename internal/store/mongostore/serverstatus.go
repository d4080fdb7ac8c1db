package mongostore

import (
	"app/internal/store"
	"context"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// Clock reads the server's time from hello, which MongoDB and FerretDB
// both answer with localTime.
func (s *Store) Clock(ctx context.Context) (store.ServerClock, error) {
	var hello struct {
		LocalTime time.Time `bson:"localTime"`
	}
	var c store.ServerClock
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

// Connections asks serverStatus for the server's connection figures. A
// server that answers without them (FerretDB) gives Reported false; one
// that refuses (a user without the clusterMonitor role) gives an error.
func (s *Store) Connections(ctx context.Context) (store.ServerConnections, error) {
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
		return store.ServerConnections{}, fmt.Errorf("store: serverStatus: %w", err)
	}
	if st.Connections == nil {
		return store.ServerConnections{}, nil
	}
	return store.ServerConnections{Reported: true, Current: st.Connections.Current, Available: st.Connections.Available}, nil
}
