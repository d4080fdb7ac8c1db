package primary_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"app/internal/testdb"
	"app/internal/whatsapp"
)

// A primary stopped after storing a group's change with its event log
// position, before appending its event: the next primary appends it
// there, once, although WhatsApp tells the change again.
func TestGroupChangeKilledBeforeItsEvent(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		st := waStoreOn(t, db)
		sb := sandbox(t, whatsapp.SandboxConfig{DeliveredDelay: -1, ReadDelay: -1})
		const team = "120363000000000042@g.us"
		sb.SetGroups([]whatsapp.SandboxGroup{{Group: whatsapp.Group{JID: team, Name: "Team",
			Participants: []whatsapp.Participant{{JID: "491701234567@s.whatsapp.net", Admin: true}}}}})
		killed := primaryKilledAtMark(t, st, sb, func() bool { return true })
		waitFor(t, "connected", 10*time.Second, func() (bool, string) {
			ws, err := st.Session(context.Background())
			return err == nil && ws.State == "connected", ws.State
		})
		name := "Team 2026"
		if err := sb.ChangeGroup(whatsapp.GroupChanged{JID: team, Sender: "491701234567@s.whatsapp.net", Name: &name}, nil); err != nil {
			t.Fatal(err)
		}
		seq := killed()
		renames := func() []int64 {
			var out []int64
			for _, e := range events(t, st) {
				var d struct {
					Changes struct{ Name string } `json:"changes"`
				}
				_ = json.Unmarshal(e.Data, &d)
				if e.Type == "group.updated" && d.Changes.Name == name {
					out = append(out, e.Seq)
				}
			}
			return out
		}
		if got := renames(); len(got) != 0 {
			t.Fatalf("the rename is announced at %v although the primary stopped before appending it", got)
		}
		if g, err := st.Group(context.Background(), team); err != nil || g.Name != name || g.EventSeq != seq {
			t.Fatalf("stored group %+v %v, want renamed and marked at %d", g, err, seq)
		}
		nextPrimary(t, st, sb)
		waitFor(t, "the rename announced", 10*time.Second, func() (bool, string) {
			return len(renames()) > 0, "not yet"
		})
		// Another change, announced after: the first was told again by then.
		later := "Team 2027"
		if err := sb.ChangeGroup(whatsapp.GroupChanged{JID: team, Name: &later}, nil); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the later rename stored", 10*time.Second, func() (bool, string) {
			g, err := st.Group(context.Background(), team)
			return err == nil && g.Name == later, g.Name
		})
		gapless(t, st)
		if got := renames(); len(got) != 1 || got[0] != seq {
			t.Errorf("the rename is announced at %v, want once, at %d where it was stored", got, seq)
		}
		if g, _ := st.Group(context.Background(), team); g.EventSeq <= seq || len(g.Announced) != 1 {
			t.Errorf("the group after the later rename: event_seq %d, announced %+v", g.EventSeq, g.Announced)
		}
	})
}
