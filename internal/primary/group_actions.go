package primary

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"app/internal/store"
	"app/internal/whatsapp"
)

// Groups (issue 19). A worker leaves each group read or change as a
// command with a deadline; the primary does it through the driver and
// keeps what came back in the store (wa_groups), where the API reads it:
// a change is applied to the stored group as WhatsApp answered it (no
// second read). Every store update of a group, a command's, a fetch's or
// a *whatsapp.GroupChanged's, goes through saveGroup, which compares the
// group with the stored one and announces what differs: group.joined (we
// joined, were added, or created it), group.updated (what changed, and
// the group after), group.left (we left or were removed). WhatsApp tells
// our own changes back as events too; by then the group is as the change
// left it, so nothing is announced twice.
//
// The commands and their arguments (participants and lists: comma
// separated JIDs):
//   - groups: fetches the list of our groups into the store.
//   - group_info: jid; refresh "true" asks WhatsApp even when fresh.
//   - group_create: name, participants. Result: jid, results.
//   - group_participants: jid, action (whatsapp.ParticipantAction),
//     participants. Result: results (JSON of []whatsapp.ParticipantResult).
//   - group_requests: jid. Result: requests (JSON of []whatsapp.GroupRequest).
//   - group_invite: jid; reset "true". Result: link.
//   - group_preview: link (or code). Result: group (JSON of store.GroupView).
//   - group_join: link (or code). Result: jid; pending "true" when the
//     group's admins approve who joins.
//   - group_leave: jid.
//   - group_update: jid and any of name, description, announce, locked,
//     join_approval, admins_add_members ("true"/"false"), applied in that
//     order; the first refusal stops it (done: what was applied before).
//   - group_photo: jid, media_id (a stored JPEG; none removes the photo).
//     Result: photo_id.
//
// A refusal's result has status (the HTTP status), code and field, which
// the worker answers as they are (not_connected: 503).
const (
	cmdGroups            = "groups"
	cmdGroupInfo         = "group_info"
	cmdGroupCreate       = "group_create"
	cmdGroupParticipants = "group_participants"
	cmdGroupRequests     = "group_requests"
	cmdGroupInvite       = "group_invite"
	cmdGroupPreview      = "group_preview"
	cmdGroupJoin         = "group_join"
	cmdGroupLeave        = "group_leave"
	cmdGroupUpdate       = "group_update"
	cmdGroupPhoto        = "group_photo"
)

// Group reads are paced: WhatsApp bans accounts that query too much, and
// a client polling a group's info should cost it nothing.
const (
	// groupReadsPerMinute bounds the list, info and invite previews asked
	// of WhatsApp over any minute; past it a stored group is served as it
	// is, and one not stored is refused with when to ask again.
	groupReadsPerMinute = 60
	// groupRefetchGap is how soon a refresh of the same group is served
	// from the store instead of asking again.
	groupRefetchGap = 10 * time.Second
)

// groupState is the primary's group bookkeeping.
type groupState struct {
	// mu makes each group update a read, a comparison and a write that no
	// other interleaves (a command's and an event's).
	mu   sync.Mutex
	pace numberPace
}

func isGroupCommand(kind string) bool { return strings.HasPrefix(kind, "group") }

// errPaced refuses a read the pace holds back.
type errPaced struct{ wait time.Duration }

func (e errPaced) Error() string {
	return "too many group reads asked of WhatsApp in the last minute; ask again in " + e.wait.Round(time.Second).String()
}

func (w *WhatsApp) groupCommand(ctx context.Context, c *store.Command) (map[string]string, error) {
	if w.Session().State != whatsapp.StateConnected {
		return map[string]string{"code": "not_connected"}, whatsapp.ErrNotConnected
	}
	a := c.Args
	var res map[string]string
	var err error
	switch c.Kind {
	case cmdGroups:
		err = w.fetchGroups(ctx)
	case cmdGroupInfo:
		var held bool
		held, err = w.fetchGroup(ctx, a["jid"], a["refresh"] == "true")
		if held {
			res = map[string]string{"held": "true"}
		}
	case cmdGroupCreate:
		res, err = w.createGroup(ctx, a["name"], splitList(a["participants"]))
	case cmdGroupParticipants:
		res, err = w.updateParticipants(ctx, a["jid"], whatsapp.ParticipantAction(a["action"]), splitList(a["participants"]))
	case cmdGroupRequests:
		var reqs []whatsapp.GroupRequest
		if reqs, err = w.Driver.GroupRequests(ctx, a["jid"]); err == nil {
			res, err = withJSON(nil, "requests", reqs)
		}
	case cmdGroupInvite:
		res, err = w.inviteLink(ctx, a["jid"], a["reset"] == "true")
	case cmdGroupPreview:
		res, err = w.previewGroup(ctx, a["link"])
	case cmdGroupJoin:
		res, err = w.joinGroup(ctx, a["link"])
	case cmdGroupLeave:
		err = w.leaveGroup(ctx, a["jid"])
	case cmdGroupUpdate:
		res, err = w.updateGroup(ctx, a)
	case cmdGroupPhoto:
		res, err = w.setGroupPhoto(ctx, a["jid"], a["media_id"])
	default:
		err = errors.New("unknown group command " + strconv.Quote(c.Kind))
	}
	if err != nil {
		return groupFailure(err, res), err
	}
	return res, nil
}

// groupFailure is the result that tells the worker how to answer err.
func groupFailure(err error, res map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range res {
		out[k] = v
	}
	var paced errPaced
	switch {
	case errors.Is(err, whatsapp.ErrNotConnected):
		out["code"] = "not_connected"
	case errors.Is(err, whatsapp.ErrGroupNotFound):
		out["status"], out["code"], out["field"] = "404", "group_not_found", "jid"
	case errors.Is(err, whatsapp.ErrNotInGroup):
		out["status"], out["code"], out["field"] = "409", "not_in_group", "jid"
	case errors.Is(err, whatsapp.ErrNotGroupAdmin):
		out["status"], out["code"], out["field"] = "403", "not_group_admin", "jid"
	case errors.Is(err, whatsapp.ErrInviteInvalid):
		out["status"], out["code"], out["field"] = "404", "invite_invalid", "code"
	case errors.As(err, &paced):
		out["status"], out["code"] = "429", "group_reads_paced"
		out["retry_after"] = strconv.Itoa(int(math.Ceil(paced.wait.Seconds())))
	}
	return out
}

// splitList is a command's comma-separated list argument (none for "").
func splitList(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}

// paceRead takes one group read from the pace.
func (w *WhatsApp) paceRead() error {
	n, wait := w.groups.pace.take(time.Now(), 1, groupReadsPerMinute)
	if n == 0 {
		return errPaced{wait}
	}
	return nil
}

// selfJID is our account's JID, without a device.
func (w *WhatsApp) selfJID() string { return bareJID(w.Session().JID) }

func bareJID(j string) string {
	user, server, ok := strings.Cut(j, "@")
	if !ok {
		return j
	}
	user, _, _ = strings.Cut(user, ":")
	return user + "@" + server
}

// storedGroup is g as the store keeps it, as WhatsApp described it at
// at: a group WhatsApp describes whole is one we are in (GroupInfo
// refuses others; a preview sets Member itself).
func (w *WhatsApp) storedGroup(g whatsapp.Group, at time.Time) store.Group {
	sg := store.Group{JID: g.JID, Name: g.Name, NameSetAt: g.NameSetAt, NameSetBy: g.NameSetBy,
		Description: g.Description, DescriptionSetAt: g.DescriptionSetAt, DescriptionSetBy: g.DescriptionSetBy,
		Owner: g.Owner, CreatedAt: g.CreatedAt, Announce: g.Announce, Locked: g.Locked, JoinApproval: g.JoinApproval,
		AdminsAddMembers: g.AdminsAddMember, Community: g.Community, Parent: g.Parent, FetchedAt: at,
		Participants: make([]store.GroupParticipant, 0, len(g.Participants))}
	for _, p := range g.Participants {
		sg.Participants = append(sg.Participants, store.GroupParticipant{JID: p.JID, PN: p.PN, LID: p.LID, Admin: p.Admin || p.SuperAdmin, SuperAdmin: p.SuperAdmin})
	}
	sg.Member = true
	w.refreshAdmin(&sg)
	return sg
}

// selfIndex is our place among g's participants (-1: not found in the
// form we know ourselves by, which a LID-addressed group may not use).
func (w *WhatsApp) selfIndex(g store.Group) int {
	self := w.selfJID()
	return slices.IndexFunc(g.Participants, func(p store.GroupParticipant) bool {
		return self != "" && (bareJID(p.JID) == self || bareJID(p.PN) == self)
	})
}

// refreshAdmin sets whether we are an admin from g's participants, where
// they name us; only admins see the invite link.
func (w *WhatsApp) refreshAdmin(g *store.Group) {
	if i := w.selfIndex(*g); i >= 0 {
		g.Admin = g.Participants[i].Admin
	}
	if !g.Admin || !g.Member {
		g.InviteLink = ""
	}
}

// groupChanges are what a group.updated event says changed.
type groupChanges struct {
	Name             *string  `json:"name,omitempty"`
	Description      *string  `json:"description,omitempty"`
	Announce         *bool    `json:"announce,omitempty"`
	Locked           *bool    `json:"locked,omitempty"`
	JoinApproval     *bool    `json:"join_approval,omitempty"`
	AdminsAddMembers *bool    `json:"admins_add_members,omitempty"`
	InviteReset      bool     `json:"invite_reset,omitempty"`
	Joined           []string `json:"joined,omitempty"`
	Left             []string `json:"left,omitempty"`
	Promoted         []string `json:"promoted,omitempty"`
	Demoted          []string `json:"demoted,omitempty"`
}

func (c groupChanges) empty() bool {
	return c.Name == nil && c.Description == nil && c.Announce == nil && c.Locked == nil && c.JoinApproval == nil &&
		c.AdminsAddMembers == nil && !c.InviteReset && len(c.Joined)+len(c.Left)+len(c.Promoted)+len(c.Demoted) == 0
}

// diffGroups is what changed from old to g.
func diffGroups(old, g store.Group) groupChanges {
	var c groupChanges
	if g.Name != old.Name {
		c.Name = &g.Name
	}
	if g.Description != old.Description {
		c.Description = &g.Description
	}
	flag := func(a, b bool) *bool {
		if a == b {
			return nil
		}
		return &b
	}
	c.Announce, c.Locked = flag(old.Announce, g.Announce), flag(old.Locked, g.Locked)
	c.JoinApproval, c.AdminsAddMembers = flag(old.JoinApproval, g.JoinApproval), flag(old.AdminsAddMembers, g.AdminsAddMembers)
	was := map[string]store.GroupParticipant{}
	for _, p := range old.Participants {
		was[p.JID] = p
	}
	for _, p := range g.Participants {
		q, ok := was[p.JID]
		switch {
		case !ok:
			c.Joined = append(c.Joined, p.JID)
		case p.Admin && !q.Admin:
			c.Promoted = append(c.Promoted, p.JID)
		case !p.Admin && q.Admin:
			c.Demoted = append(c.Demoted, p.JID)
		}
		delete(was, p.JID)
	}
	for _, p := range old.Participants {
		if _, gone := was[p.JID]; gone {
			c.Left = append(c.Left, p.JID)
		}
	}
	return c
}

// groupEvent is the data of group.joined, group.updated and group.left.
type groupEvent struct {
	JID       string    `json:"jid"`
	Sender    string    `json:"sender,omitempty"` // who made the change, where known
	Timestamp time.Time `json:"timestamp"`
	// Removed (group.left): someone else removed us; otherwise we left.
	Removed bool            `json:"removed,omitempty"`
	Changes *groupChanges   `json:"changes,omitempty"` // group.updated
	Group   store.GroupView `json:"group"`
}

// groupChange is one update of a stored group: who made it and when,
// and whether it comes from a read (a group read for the first time is
// stored without an event: we did not just join it).
type groupChange struct {
	sender      string
	at          time.Time
	read        bool
	inviteReset bool
	// told is what an event said changed of a group not stored before:
	// announced as it is, there being nothing to compare with.
	told *groupChanges
}

// saveGroup stores g in place of old (found says there was one) and
// announces what changed; the caller holds groups.mu.
func (w *WhatsApp) saveGroup(ctx context.Context, old store.Group, found bool, g store.Group, ch groupChange) error {
	if ch.at.IsZero() {
		ch.at = time.Now()
	}
	g.UpdatedAt = time.Now()
	g.EventSeq, g.Announced = old.EventSeq, old.Announced
	ev := groupEvent{JID: g.JID, Sender: ch.sender, Timestamp: ch.at, Group: g.View()}
	var typ string
	joined := g.Member && (!found || !old.Member)
	switch {
	case !g.Member && found && old.Member:
		typ = "group.left"
		ev.Removed = ch.sender != "" && bareJID(ch.sender) != w.selfJID()
	case joined && !found && ch.told != nil:
		if !ch.told.empty() {
			typ, ev.Changes = "group.updated", ch.told
		}
	case joined && !(ch.read && !found):
		typ = "group.joined"
	case found && g.Member:
		changes := diffGroups(old, g)
		changes.InviteReset = ch.inviteReset
		if !changes.empty() {
			typ, ev.Changes = "group.updated", &changes
		}
	}
	renamed := !found || old.Name != g.Name
	mark := func(ctx context.Context, seq int64) error {
		if typ != "" {
			b, err := json.Marshal(ev)
			if err != nil {
				return err
			}
			g.EventSeq, g.Announced = seq, []store.GroupEvent{{Type: typ, Data: string(b)}}
		}
		if err := w.Store.SaveGroup(ctx, g); err != nil {
			return err
		}
		if renamed {
			return w.renameGroupChat(ctx, g.JID, g.Name)
		}
		return nil
	}
	if typ == "" {
		return mark(ctx, 0)
	}
	return w.Events.AppendWith(ctx, mark, Entry{typ, ev})
}

// renameGroupChat keeps a group's chat named after the group; a chat not
// stored yet takes the name with its first message (touchChat).
func (w *WhatsApp) renameGroupChat(ctx context.Context, jid, name string) error {
	if name == "" {
		return nil
	}
	w.chatMu.Lock()
	defer w.chatMu.Unlock()
	c, err := w.Store.Chat(ctx, jid)
	if errors.Is(err, store.ErrNotFound) || (err == nil && c.Name == name) {
		return nil
	}
	if err != nil {
		return err
	}
	c.Name = name
	return w.Store.SaveChat(ctx, c)
}

// groupChatName is the stored group's name for a group chat ("" for any
// other chat, or a group not stored): the name its chat takes.
func (w *WhatsApp) groupChatName(ctx context.Context, jid string) string {
	if !strings.HasSuffix(jid, "@g.us") {
		return ""
	}
	g, err := w.Store.Group(ctx, jid)
	if err != nil {
		return ""
	}
	return g.Name
}

// loadGroup is the stored group jid; found is false when none is.
func (w *WhatsApp) loadGroup(ctx context.Context, jid string) (store.Group, bool, error) {
	g, err := w.Store.Group(ctx, jid)
	if errors.Is(err, store.ErrNotFound) {
		return store.Group{JID: jid}, false, nil
	}
	return g, err == nil, err
}

// editGroup applies edit to the stored group jid and saves it as a
// change by ch.sender. A group not stored starts from base when given
// (fetched whole just now), else from what edit sets, with us in it (a
// change of ours, or WhatsApp's news of one): not fresh, so the next read
// asks WhatsApp for the rest.
func (w *WhatsApp) editGroup(ctx context.Context, jid string, ch groupChange, base *store.Group, edit func(g *store.Group)) error {
	w.groups.mu.Lock()
	defer w.groups.mu.Unlock()
	old, found, err := w.loadGroup(ctx, jid)
	if err != nil {
		return err
	}
	g := old
	switch {
	case found:
	case base != nil:
		g = *base
	default:
		g.Member = true
	}
	g.Participants = slices.Clone(g.Participants)
	edit(&g)
	return w.saveGroup(ctx, old, found, g, ch)
}

// ensureGroup fetches a group not stored yet before a change of ours, so
// that the change is compared with the group as it was and announced;
// WhatsApp's refusal to describe it (no such group, not a member) is the
// change's answer. A read the pace holds back is skipped: the group is
// then built from the change.
func (w *WhatsApp) ensureGroup(ctx context.Context, jid string) error {
	_, found, err := w.loadGroup(ctx, jid)
	if err != nil || found {
		return err
	}
	if w.paceRead() != nil {
		return nil
	}
	g, err := w.Driver.GroupInfo(ctx, jid)
	if err != nil {
		return err
	}
	w.groups.mu.Lock()
	defer w.groups.mu.Unlock()
	old, found, err := w.loadGroup(ctx, jid)
	if err != nil || found {
		return err
	}
	return w.saveGroup(ctx, old, false, w.storedGroup(g, time.Now()), groupChange{read: true})
}

// fetchGroups stores the list of our groups as WhatsApp has it, silently:
// a resynchronisation, not news (the changes came as events).
func (w *WhatsApp) fetchGroups(ctx context.Context) error {
	if err := w.paceRead(); err != nil {
		return err
	}
	gs, err := w.Driver.JoinedGroups(ctx)
	if err != nil {
		return err
	}
	w.groups.mu.Lock()
	defer w.groups.mu.Unlock()
	now := time.Now()
	list := make([]store.Group, 0, len(gs))
	for _, g := range gs {
		sg := w.storedGroup(g, now)
		if old, found, err := w.loadGroup(ctx, g.JID); err == nil && found {
			sg.EventSeq, sg.Announced = old.EventSeq, old.Announced
			if sg.Admin {
				sg.InviteLink = old.InviteLink
			}
		}
		sg.UpdatedAt = now
		list = append(list, sg)
	}
	if err := w.Store.SaveGroupList(ctx, list, now); err != nil {
		return err
	}
	for _, g := range list {
		if err := w.renameGroupChat(ctx, g.JID, g.Name); err != nil {
			return err
		}
	}
	return nil
}

// fetchGroup asks WhatsApp for a group unless the stored one is fresh
// (or, with refresh, was fetched moments ago). held says the pace kept
// the read back and the stored group stands.
func (w *WhatsApp) fetchGroup(ctx context.Context, jid string, refresh bool) (bool, error) {
	stored, found, err := w.loadGroup(ctx, jid)
	if err != nil {
		return false, err
	}
	now := time.Now()
	if found && stored.Member && ((!refresh && stored.Fresh(now)) || now.Sub(stored.FetchedAt) < groupRefetchGap) {
		return false, nil
	}
	if err := w.paceRead(); err != nil {
		if found {
			return true, nil
		}
		return false, err
	}
	g, err := w.Driver.GroupInfo(ctx, jid)
	if errors.Is(err, whatsapp.ErrNotInGroup) || errors.Is(err, whatsapp.ErrGroupNotFound) {
		if found && stored.Member {
			// We were removed while no event told us.
			if serr := w.editGroup(ctx, jid, groupChange{}, nil, func(g *store.Group) { g.Member, g.Admin, g.InviteLink = false, false, "" }); serr != nil {
				return false, serr
			}
		}
		return false, err
	}
	if err != nil {
		return false, err
	}
	w.groups.mu.Lock()
	defer w.groups.mu.Unlock()
	old, found, err := w.loadGroup(ctx, jid)
	if err != nil {
		return false, err
	}
	sg := w.storedGroup(g, time.Now())
	if found && sg.Admin {
		sg.InviteLink = old.InviteLink
	}
	return false, w.saveGroup(ctx, old, found, sg, groupChange{read: true})
}

// createGroup creates a group and stores it as WhatsApp answered.
func (w *WhatsApp) createGroup(ctx context.Context, name string, participants []string) (map[string]string, error) {
	g, results, err := w.Driver.CreateGroup(ctx, name, participants)
	if err != nil {
		return nil, err
	}
	res, err := withJSON(nil, "results", results)
	if err != nil {
		return nil, err
	}
	res["jid"] = g.JID
	w.groups.mu.Lock()
	defer w.groups.mu.Unlock()
	old, found, err := w.loadGroup(ctx, g.JID)
	if err != nil {
		return nil, err
	}
	sg := w.storedGroup(g, time.Now())
	sg.Admin = true // we created it
	return res, w.saveGroup(ctx, old, found, sg, groupChange{sender: w.selfJID()})
}

// updateParticipants changes participants and applies the outcomes that
// WhatsApp did to the stored group.
func (w *WhatsApp) updateParticipants(ctx context.Context, jid string, action whatsapp.ParticipantAction, jids []string) (map[string]string, error) {
	if err := w.ensureGroup(ctx, jid); err != nil {
		return nil, err
	}
	results, err := w.Driver.UpdateParticipants(ctx, jid, action, jids)
	if err != nil {
		return nil, err
	}
	res, err := withJSON(nil, "results", results)
	if err != nil {
		return nil, err
	}
	var done []string
	for _, r := range results {
		if r.OK {
			done = append(done, r.JID)
		}
	}
	if len(done) == 0 || action == whatsapp.ParticipantReject {
		return res, nil
	}
	return res, w.editGroup(ctx, jid, groupChange{sender: w.selfJID()}, nil, func(g *store.Group) {
		applyParticipants(g, action, done)
		w.refreshAdmin(g)
	})
}

// applyParticipants applies a done participant change to g.
func applyParticipants(g *store.Group, action whatsapp.ParticipantAction, jids []string) {
	for _, j := range jids {
		i := slices.IndexFunc(g.Participants, func(p store.GroupParticipant) bool { return p.JID == j })
		switch action {
		case whatsapp.ParticipantAdd, whatsapp.ParticipantApprove:
			if i < 0 {
				p := store.GroupParticipant{JID: j}
				if store.IsPN(j) {
					p.PN = j
				} else if store.IsLID(j) {
					p.LID = j
				}
				g.Participants = append(g.Participants, p)
			}
		case whatsapp.ParticipantRemove:
			if i >= 0 {
				g.Participants = slices.Delete(g.Participants, i, i+1)
			}
		case whatsapp.ParticipantPromote, whatsapp.ParticipantDemote:
			if i >= 0 && !g.Participants[i].SuperAdmin {
				g.Participants[i].Admin = action == whatsapp.ParticipantPromote
			}
		}
	}
}

// inviteLink is the group's invite link, kept on the stored group.
func (w *WhatsApp) inviteLink(ctx context.Context, jid string, reset bool) (map[string]string, error) {
	if err := w.ensureGroup(ctx, jid); err != nil {
		return nil, err
	}
	link, err := w.Driver.InviteLink(ctx, jid, reset)
	if err != nil {
		return nil, err
	}
	w.groups.mu.Lock()
	defer w.groups.mu.Unlock()
	g, found, err := w.loadGroup(ctx, jid)
	if err != nil {
		return nil, err
	}
	if found && g.Member {
		// Only admins get the link: we are one.
		g.InviteLink, g.Admin, g.UpdatedAt = link, true, time.Now()
		if err := w.Store.SaveGroup(ctx, g); err != nil {
			return nil, err
		}
	}
	return map[string]string{"link": link}, nil
}

// previewGroup describes the group an invite leads to (a paced read).
func (w *WhatsApp) previewGroup(ctx context.Context, link string) (map[string]string, error) {
	if err := w.paceRead(); err != nil {
		return nil, err
	}
	g, err := w.Driver.GroupFromLink(ctx, link)
	if err != nil {
		return nil, err
	}
	sg := w.storedGroup(g, time.Now())
	sg.Member, sg.Admin, sg.InviteLink = w.selfIndex(sg) >= 0, false, ""
	return withJSON(nil, "group", sg.View())
}

// joinGroup joins by an invite and stores the group we joined (one read
// of it); a group that approves who joins leaves us pending.
func (w *WhatsApp) joinGroup(ctx context.Context, link string) (map[string]string, error) {
	jid, err := w.Driver.JoinGroup(ctx, link)
	if err != nil {
		return nil, err
	}
	res := map[string]string{"jid": jid}
	g, err := w.Driver.GroupInfo(ctx, jid)
	if errors.Is(err, whatsapp.ErrNotInGroup) {
		res["pending"] = "true"
		return res, nil
	}
	if err != nil {
		return res, err
	}
	w.groups.mu.Lock()
	defer w.groups.mu.Unlock()
	old, found, err := w.loadGroup(ctx, jid)
	if err != nil {
		return res, err
	}
	sg := w.storedGroup(g, time.Now())
	return res, w.saveGroup(ctx, old, found, sg, groupChange{sender: w.selfJID()})
}

// leaveGroup leaves a group; the stored one says we are no longer in it.
func (w *WhatsApp) leaveGroup(ctx context.Context, jid string) error {
	if err := w.ensureGroup(ctx, jid); err != nil {
		return err
	}
	if err := w.Driver.LeaveGroup(ctx, jid); err != nil {
		return err
	}
	return w.editGroup(ctx, jid, groupChange{sender: w.selfJID()}, nil, func(g *store.Group) {
		self := w.selfJID()
		g.Participants = slices.DeleteFunc(g.Participants, func(p store.GroupParticipant) bool {
			return bareJID(p.JID) == self || bareJID(p.PN) == self
		})
		g.Member, g.Admin, g.InviteLink = false, false, ""
	})
}

// groupSettings are group_update's settings, in the order applied.
var groupSettings = []struct {
	arg  string
	kind whatsapp.GroupSettingKind
	set  func(g *store.Group, on bool)
}{
	{"announce", whatsapp.GroupAnnounce, func(g *store.Group, on bool) { g.Announce = on }},
	{"locked", whatsapp.GroupLocked, func(g *store.Group, on bool) { g.Locked = on }},
	{"join_approval", whatsapp.GroupJoinApproval, func(g *store.Group, on bool) { g.JoinApproval = on }},
	{"admins_add_members", whatsapp.GroupAdminsAddMember, func(g *store.Group, on bool) { g.AdminsAddMembers = on }},
}

// updateGroup sets a group's name, description and settings, one by one,
// storing each as it is done.
func (w *WhatsApp) updateGroup(ctx context.Context, a map[string]string) (map[string]string, error) {
	jid := a["jid"]
	var done []string
	result := func() map[string]string { return map[string]string{"done": strings.Join(done, ",")} }
	if err := w.ensureGroup(ctx, jid); err != nil {
		return result(), err
	}
	ch := groupChange{sender: w.selfJID()}
	if name, ok := a["name"]; ok {
		if err := w.Driver.SetGroupName(ctx, jid, name); err != nil {
			return result(), err
		}
		if err := w.editGroup(ctx, jid, ch, nil, func(g *store.Group) {
			g.Name, g.NameSetAt, g.NameSetBy = name, time.Now(), ch.sender
		}); err != nil {
			return result(), err
		}
		done = append(done, "name")
	}
	if text, ok := a["description"]; ok {
		if err := w.Driver.SetGroupDescription(ctx, jid, text); err != nil {
			return result(), err
		}
		if err := w.editGroup(ctx, jid, ch, nil, func(g *store.Group) {
			g.Description, g.DescriptionSetAt, g.DescriptionSetBy = text, time.Now(), ch.sender
		}); err != nil {
			return result(), err
		}
		done = append(done, "description")
	}
	for _, s := range groupSettings {
		v, ok := a[s.arg]
		if !ok {
			continue
		}
		on := v == "true"
		if err := w.Driver.SetGroupSetting(ctx, jid, whatsapp.GroupSetting{Kind: s.kind, On: on}); err != nil {
			return result(), err
		}
		if err := w.editGroup(ctx, jid, ch, nil, func(g *store.Group) { s.set(g, on) }); err != nil {
			return result(), err
		}
		done = append(done, s.arg)
	}
	return result(), nil
}

// setGroupPhoto sets the group's photo from a stored JPEG, or removes it.
func (w *WhatsApp) setGroupPhoto(ctx context.Context, jid, mediaID string) (map[string]string, error) {
	var jpeg []byte
	if mediaID != "" {
		var err error
		if jpeg, err = w.Store.Media(ctx, mediaID); err != nil {
			return nil, err
		}
	}
	id, err := w.Driver.SetGroupPhoto(ctx, jid, jpeg)
	if err != nil {
		return nil, err
	}
	return map[string]string{"photo_id": id}, nil
}

// onGroupChanged keeps the stored group in step with a change WhatsApp
// reported (ours too): a whole group replaces it, the rest is applied.
func (w *WhatsApp) onGroupChanged(ctx context.Context, e *whatsapp.GroupChanged) error {
	ch := groupChange{sender: e.Sender, at: e.Timestamp, inviteReset: e.InviteReset}
	self := w.selfJID()
	isSelf := func(j string) bool { return self != "" && bareJID(j) == self }
	if e.Group != nil {
		w.groups.mu.Lock()
		defer w.groups.mu.Unlock()
		old, found, err := w.loadGroup(ctx, e.JID)
		if err != nil {
			return err
		}
		g := w.storedGroup(*e.Group, time.Now())
		if !slices.ContainsFunc(e.Left, isSelf) && !e.Deleted {
			g.Member = true // a whole group comes when we are in it
		} else {
			g.Member, g.Admin = false, false
		}
		if g.Admin && !e.InviteReset {
			g.InviteLink = old.InviteLink
		}
		return w.saveGroup(ctx, old, found, g, ch)
	}
	var base *store.Group
	if _, found, err := w.loadGroup(ctx, e.JID); err != nil {
		return err
	} else if !found && !slices.ContainsFunc(e.Joined, isSelf) {
		// News of a group not stored: the group first, to compare with.
		told := eventChanges(e)
		ch.told = &told
		base = w.baseGroup(ctx, e.JID)
	}
	return w.editGroup(ctx, e.JID, ch, base, func(g *store.Group) {
		if e.Name != nil {
			g.Name, g.NameSetAt, g.NameSetBy = *e.Name, e.Timestamp, e.Sender
		}
		if e.Description != nil {
			g.Description, g.DescriptionSetAt, g.DescriptionSetBy = *e.Description, e.Timestamp, e.Sender
		}
		if e.Announce != nil {
			g.Announce = *e.Announce
		}
		if e.Locked != nil {
			g.Locked = *e.Locked
		}
		if e.JoinApproval != nil {
			g.JoinApproval = *e.JoinApproval
		}
		if e.InviteReset {
			g.InviteLink = ""
		}
		applyParticipants(g, whatsapp.ParticipantAdd, e.Joined)
		applyParticipants(g, whatsapp.ParticipantRemove, e.Left)
		applyParticipants(g, whatsapp.ParticipantPromote, e.Promoted)
		applyParticipants(g, whatsapp.ParticipantDemote, e.Demoted)
		switch {
		case slices.ContainsFunc(e.Left, isSelf) || e.Deleted:
			g.Member, g.Admin = false, false
		case slices.ContainsFunc(e.Joined, isSelf):
			g.Member = true
		}
		w.refreshAdmin(g)
	})
}

// groupFetchWait bounds the read of a group that an event tells of
// before it was stored.
const groupFetchWait = 10 * time.Second

// baseGroup is the group jid fetched whole, or nil when the pace or
// WhatsApp does not allow it now (the record is then built from the
// change, and fetched at the next read).
func (w *WhatsApp) baseGroup(ctx context.Context, jid string) *store.Group {
	if w.paceRead() != nil {
		return nil
	}
	fctx, cancel := context.WithTimeout(ctx, groupFetchWait)
	defer cancel()
	g, err := w.Driver.GroupInfo(fctx, jid)
	if err != nil {
		w.Log.Info().Err(err).Str("group", jid).Msg("Cannot fetch a group that changed before it was stored; it is kept as the change tells.")
		return nil
	}
	sg := w.storedGroup(g, time.Now())
	return &sg
}

// eventChanges are the changes e tells of.
func eventChanges(e *whatsapp.GroupChanged) groupChanges {
	return groupChanges{Name: e.Name, Description: e.Description, Announce: e.Announce, Locked: e.Locked,
		JoinApproval: e.JoinApproval, InviteReset: e.InviteReset,
		Joined: e.Joined, Left: e.Left, Promoted: e.Promoted, Demoted: e.Demoted}
}

// groupEntries are the events a stored group announces (reconcile).
func groupEntries(g store.Group) []Entry {
	out := make([]Entry, 0, len(g.Announced))
	for _, e := range g.Announced {
		out = append(out, Entry{e.Type, json.RawMessage(e.Data)})
	}
	return out
}
