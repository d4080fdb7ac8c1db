package sqlitestore

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"app/internal/store"
)

// Groups (issue 19): a row per group the primary stored, the ones we are
// in listed by name (wa_groups_members, a partial index of members only),
// the few with events still to append found by event_seq; and the time
// the whole list was last fetched, one row per account.
var _ = schema(
	`CREATE TABLE wa_groups (
		jid TEXT PRIMARY KEY,
		member INTEGER NOT NULL,
		name TEXT NOT NULL,
		event_seq INTEGER,
		doc BLOB NOT NULL
	) STRICT`,
	`CREATE INDEX wa_groups_members ON wa_groups(name, jid) WHERE member = 1`,
	`CREATE INDEX wa_groups_event_seq ON wa_groups(event_seq) WHERE event_seq IS NOT NULL`,
	`CREATE TABLE wa_group_list (
		account TEXT NOT NULL PRIMARY KEY,
		fetched_ns INTEGER NOT NULL
	) STRICT`,
)

var (
	sqlSaveGroup = exec(`INSERT INTO wa_groups(jid, member, name, event_seq, doc) VALUES(?, ?, ?, ?, ?)
		ON CONFLICT(jid) DO UPDATE SET member = excluded.member, name = excluded.name,
			event_seq = excluded.event_seq, doc = excluded.doc`)
	sqlGroup      = query(`SELECT doc FROM wa_groups WHERE jid = ?`)
	sqlGroupsPage = query(`SELECT doc FROM wa_groups WHERE member = 1 AND (name, jid) > (?, ?) ORDER BY name, jid LIMIT ?`)
	sqlGroupsLeft = exec(`UPDATE wa_groups SET member = 0,
			doc = CAST(json_set(CAST(doc AS TEXT), '$.member', json('false'), '$.updated_at', ?) AS BLOB)
		WHERE member = 1 AND jid NOT IN (SELECT value FROM json_each(?))`)
	sqlSaveGroupList = exec(`INSERT INTO wa_group_list(account, fetched_ns) VALUES(?, ?)
		ON CONFLICT(account) DO UPDATE SET fetched_ns = excluded.fetched_ns`)
	sqlGroupListFetched  = query(`SELECT fetched_ns FROM wa_group_list WHERE account = ?`)
	sqlGroupsUnannounced = query(`SELECT doc FROM wa_groups WHERE event_seq > ? ORDER BY event_seq`)
)

func saveGroup(t *wtx, g store.Group) error {
	g.Account = store.AccountOr(g.Account)
	if g.UpdatedAt.IsZero() {
		g.UpdatedAt = time.Now()
	}
	if g.Participants == nil {
		g.Participants = []store.GroupParticipant{}
	}
	d, err := doc(g)
	if err != nil {
		return err
	}
	_, err = t.exec(sqlSaveGroup, g.JID, g.Member, g.Name, nullIfZero(g.EventSeq), d)
	return err
}

// SaveGroup stores g, replacing the record of its JID.
func (s *Store) SaveGroup(ctx context.Context, g store.Group) error {
	if err := s.write(ctx, func(t *wtx) error { return saveGroup(t, g) }); err != nil {
		return fmt.Errorf("store: save group %s: %w", g.JID, err)
	}
	return nil
}

// Group reads one stored group.
func (s *Store) Group(ctx context.Context, jid string) (store.Group, error) {
	return one[store.Group](ctx, s, "read group", sqlGroup, jid)
}

// GroupsPage lists our groups by (name, jid) after the cursor.
func (s *Store) GroupsPage(ctx context.Context, afterName, afterJID string, limit int) ([]store.Group, error) {
	return all[store.Group](ctx, s, "list groups", sqlGroupsPage, afterName, afterJID, findLimit(limit))
}

// SaveGroupList stores the list of our groups in one write: each group,
// the others stored as ours marked left, and the time of the list.
func (s *Store) SaveGroupList(ctx context.Context, gs []store.Group, at time.Time) error {
	jids := make([]string, 0, len(gs))
	for _, g := range gs {
		jids = append(jids, g.JID)
	}
	list, err := json.Marshal(jids)
	if err != nil {
		return err
	}
	// As encoding/json writes a time.
	now := time.Now().Format(time.RFC3339Nano)
	err = s.write(ctx, func(t *wtx) error {
		for _, g := range gs {
			if err := saveGroup(t, g); err != nil {
				return err
			}
		}
		if _, err := t.exec(sqlGroupsLeft, now, string(list)); err != nil {
			return err
		}
		_, err := t.exec(sqlSaveGroupList, store.DefaultAccount, at.UnixNano())
		return err
	})
	if err != nil {
		return fmt.Errorf("store: save the list of %d groups: %w", len(gs), err)
	}
	return nil
}

// GroupListFetchedAt is when the list of our groups was last saved.
func (s *Store) GroupListFetchedAt(ctx context.Context) (time.Time, error) {
	ns, err := scalar[int64](ctx, s, "read the group list's time", sqlGroupListFetched, store.DefaultAccount)
	if err != nil || ns == 0 {
		return time.Time{}, err
	}
	return time.Unix(0, ns), nil
}

// GroupsUnannounced lists the groups stored for a log position after seq.
func (s *Store) GroupsUnannounced(ctx context.Context, seq int64) ([]store.Group, error) {
	return all[store.Group](ctx, s, "list unannounced groups", sqlGroupsUnannounced, seq)
}
