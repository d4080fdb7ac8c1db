package mongostore_test

import (
	"context"
	"testing"
	"time"

	"app/internal/store/mongostore"
	"app/internal/testdb"
)

// FerretDB, like a standalone MongoDB, has no change streams: the watch is
// refused at once, so the workers poll the event log's head instead.
func TestWatchEventsIsRefusedWithoutChangeStreams(t *testing.T) {
	st := testdb.StartMongo(t).Connect(nil).(*mongostore.Store)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	ch, err := st.WatchEvents(ctx)
	if err == nil {
		t.Fatalf("a change stream on FerretDB: %v; it has none, so the test's premise is gone: test the stream instead", ch)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("the refusal took %s", took)
	}
}
