package sqlitestore

import (
	"strings"
	"testing"
	"time"
)

// PruneMedia keeps the files of unsent messages and live schedules, on the
// stand-in tables of todo_mediainuse.go (delete this file with it: the
// conformance suite's PruneMediaKeepsWhatIsNeeded covers the real ones).
func TestPruneMediaKeepsWhatStandInsNeed(t *testing.T) {
	// Pages of 2 and writes of 3 files: the kept ones are passed over.
	defer func(page, files int) { pruneMediaPage, pruneMediaFiles = page, files }(pruneMediaPage, pruneMediaFiles)
	pruneMediaPage, pruneMediaFiles = 2, 3
	s := openTest(t)
	ctx := t.Context()
	ids := map[string]string{}
	for _, name := range []string{"queued", "sending", "sent", "live", "deleted", "unused"} {
		id, err := s.PutMedia(ctx, name, "image/png", strings.NewReader(name))
		if err != nil {
			t.Fatal(err)
		}
		ids[name] = id
	}
	for _, status := range []string{"queued", "sending", "sent"} {
		rawWrite(t, s, `INSERT INTO outbox(id, status, media_id) VALUES(?, ?, ?)`, "msg_"+status, status, ids[status])
	}
	rawWrite(t, s, `INSERT INTO schedules(id, deleted, media_id) VALUES('sch_1', 0, ?), ('sch_2', 1, ?)`, ids["live"], ids["deleted"])
	n, err := s.PruneMedia(ctx, time.Now().Add(time.Minute))
	if err != nil || n != 3 {
		t.Fatalf("pruned %d, %v; want 3 (sent, deleted, unused)", n, err)
	}
	for name, keep := range map[string]bool{"queued": true, "sending": true, "sent": false, "live": true, "deleted": false, "unused": false} {
		if _, err := s.MediaInfo(ctx, ids[name]); (err == nil) != keep {
			t.Errorf("the %s file kept: %t, want %t (%v)", name, err == nil, keep, err)
		}
	}
}
