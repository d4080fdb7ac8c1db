package whatsapp

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// The sandbox's groups (issue 19): a directory of fake groups that a test
// sets up (SetGroups), with our membership and admin rights enforced as
// WhatsApp enforces them, users whose privacy refuses being added
// (RefuseAdds), and a *GroupChanged for every change, ours included (as
// WhatsApp notifies our own changes too), and for the changes made
// elsewhere that a test triggers (ChangeGroup). A number the number
// directory (SetDirectory) lists as not on WhatsApp cannot be added; any
// other can.

// SandboxGroup is a group of the sandbox's directory: the group (its
// participants other than us), whether we left it (or were never in it),
// whether we are an admin, its invite code and who asked to join.
type SandboxGroup struct {
	Group
	Left     bool     `json:"left,omitempty"`
	Admin    bool     `json:"admin,omitempty"`
	Invite   string   `json:"invite,omitempty"`
	Requests []string `json:"requests,omitempty"`
}

// sandboxGroups is the sandbox's group directory; guarded by Sandbox.mu.
type sandboxGroups struct {
	byJID   map[string]*sandboxGroup
	refuse  map[string]bool // users whose privacy lets only contacts add them
	reads   int             // JoinedGroups, GroupInfo and GroupFromLink calls
	changes int             // changes asked of it (ours)
}

type sandboxGroup struct {
	g        Group // participants, us included while a member
	invite   string
	requests []GroupRequest
	photo    string
}

// maxGroupName and maxGroupDescription are WhatsApp's limits, in
// characters.
const (
	maxGroupName        = 100
	maxGroupDescription = 2048
)

// InviteLinkPrefix begins every group invite link.
const InviteLinkPrefix = "https://chat.whatsapp.com/"

func randomDigits(n int) string {
	var b strings.Builder
	for range n {
		d, _ := rand.Int(rand.Reader, big.NewInt(10))
		b.WriteByte(byte('0' + d.Int64()))
	}
	return b.String()
}

func newInviteCode() string { return "SbX" + randomHex(9) }

// selfLocked is our JID: the paired one, or the one the sandbox pairs as.
func (s *Sandbox) selfLocked() string {
	if s.jid != "" {
		return s.jid
	}
	return SandboxJID
}

// SetGroups adds groups to the directory, replacing those of the same
// JID (a group without one is given one); it returns their JIDs.
func (s *Sandbox) SetGroups(gs []SandboxGroup) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.groups.byJID == nil {
		s.groups.byJID = map[string]*sandboxGroup{}
	}
	self := s.selfLocked()
	jids := make([]string, 0, len(gs))
	for _, sg := range gs {
		g := sg.Group
		if g.JID == "" {
			g.JID = "120363" + randomDigits(12) + "@g.us"
		}
		g.Participants = nil
		for _, p := range sg.Participants {
			if p.JID != self && !slices.ContainsFunc(g.Participants, func(q Participant) bool { return q.JID == p.JID }) {
				g.Participants = append(g.Participants, s.participantLocked(p.JID, p.Admin, p.SuperAdmin))
			}
		}
		if !sg.Left {
			g.Participants = append(g.Participants, s.participantLocked(self, sg.Admin, g.Owner == self))
		}
		if g.CreatedAt.IsZero() {
			g.CreatedAt = time.Now().Add(-24 * time.Hour).Truncate(time.Second)
		}
		grp := &sandboxGroup{g: g, invite: sg.Invite}
		if grp.invite == "" {
			grp.invite = newInviteCode()
		}
		for _, r := range sg.Requests {
			grp.requests = append(grp.requests, GroupRequest{JID: r, RequestedAt: time.Now().Truncate(time.Second)})
		}
		s.groups.byJID[g.JID] = grp
		jids = append(jids, g.JID)
	}
	return jids
}

// RefuseAdds makes users' privacy refuse being added to groups by anyone
// but their contacts: WhatsApp answers 403 with an invite to send them.
func (s *Sandbox) RefuseAdds(jids ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.groups.refuse == nil {
		s.groups.refuse = map[string]bool{}
	}
	for _, j := range jids {
		s.groups.refuse[j] = true
	}
}

// GroupReads counts the group reads asked of the sandbox (JoinedGroups,
// GroupInfo, GroupFromLink), so a test sees what the store saved.
func (s *Sandbox) GroupReads() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.groups.reads
}

// GroupChanges counts the group changes asked of the sandbox.
func (s *Sandbox) GroupChanges() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.groups.changes
}

// SandboxGroupOf is the sandbox's group jid as WhatsApp has it, with its
// invite code and requests (false: no such group).
func (s *Sandbox) SandboxGroupOf(jid string) (SandboxGroup, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	grp := s.groups.byJID[jid]
	if grp == nil {
		return SandboxGroup{}, false
	}
	sg := SandboxGroup{Group: copyGroup(grp.g), Invite: grp.invite}
	i := grp.index(s.selfLocked())
	sg.Left = i < 0
	sg.Admin = i >= 0 && grp.g.Participants[i].Admin
	for _, r := range grp.requests {
		sg.Requests = append(sg.Requests, r.JID)
	}
	return sg, true
}

// participantLocked is jid as a participant, with its LID where the
// number directory knows it.
func (s *Sandbox) participantLocked(jid string, admin, super bool) Participant {
	p := Participant{JID: jid, Admin: admin || super, SuperAdmin: super}
	if n, ok := strings.CutSuffix(jid, "@s.whatsapp.net"); ok {
		p.PN = jid
		if e, ok := s.nums.dir[n]; ok {
			p.LID = e.LID
		}
	} else if strings.HasSuffix(jid, "@lid") {
		p.LID = jid
	}
	return p
}

func copyGroup(g Group) Group {
	g.Participants = append([]Participant{}, g.Participants...)
	return g
}

func (g *sandboxGroup) index(jid string) int {
	return slices.IndexFunc(g.g.Participants, func(p Participant) bool { return p.JID == jid })
}

// groupLocked finds a group we are in and, when admin is set, an admin
// of; the caller holds mu.
func (s *Sandbox) groupLocked(ctx context.Context, jid string, admin bool) (*sandboxGroup, error) {
	if err := s.connectedLocked(ctx); err != nil {
		return nil, err
	}
	grp := s.groups.byJID[jid]
	if grp == nil {
		return nil, fmt.Errorf("%w: %s", ErrGroupNotFound, jid)
	}
	i := grp.index(s.selfLocked())
	if i < 0 {
		return nil, fmt.Errorf("%w: %s", ErrNotInGroup, jid)
	}
	if admin && !grp.g.Participants[i].Admin {
		return nil, fmt.Errorf("%w: %s", ErrNotGroupAdmin, jid)
	}
	return grp, nil
}

// emitGroupLocked reports a change of a group as WhatsApp does.
func (s *Sandbox) emitGroupLocked(ev GroupChanged) {
	if ev.Timestamp.IsZero() {
		ev.Timestamp = time.Now()
	}
	if ev.Group != nil {
		g := copyGroup(*ev.Group)
		ev.Group = &g
	}
	s.emit(&ev)
}

// JoinedGroups lists the groups we are in, by JID.
func (s *Sandbox) JoinedGroups(ctx context.Context) ([]Group, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.connectedLocked(ctx); err != nil {
		return nil, err
	}
	s.groups.reads++
	self := s.selfLocked()
	out := []Group{}
	for _, grp := range s.groups.byJID {
		if grp.index(self) >= 0 {
			out = append(out, copyGroup(grp.g))
		}
	}
	slices.SortFunc(out, func(a, b Group) int { return strings.Compare(a.JID, b.JID) })
	return out, nil
}

// GroupInfo is a group we are in.
func (s *Sandbox) GroupInfo(ctx context.Context, group string) (Group, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.connectedLocked(ctx); err != nil {
		return Group{}, err
	}
	s.groups.reads++
	grp, err := s.groupLocked(ctx, group, false)
	if err != nil {
		return Group{}, err
	}
	return copyGroup(grp.g), nil
}

// CreateGroup creates a group with us as its owner and admin; each
// participant is added or refused as UpdateParticipants would.
func (s *Sandbox) CreateGroup(ctx context.Context, name string, participants []string) (Group, []ParticipantResult, error) {
	if err := checkGroupName(name); err != nil {
		return Group{}, nil, err
	}
	if len(participants)+1 > MaxGroupSize {
		return Group{}, nil, fmt.Errorf("whatsapp: a group has at most %d members", MaxGroupSize)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.connectedLocked(ctx); err != nil {
		return Group{}, nil, err
	}
	s.groups.changes++
	if s.groups.byJID == nil {
		s.groups.byJID = map[string]*sandboxGroup{}
	}
	self := s.selfLocked()
	now := time.Now().Truncate(time.Second)
	grp := &sandboxGroup{invite: newInviteCode(), g: Group{JID: "120363" + randomDigits(12) + "@g.us", Name: name,
		NameSetAt: now, NameSetBy: self, Owner: self, CreatedAt: now,
		Participants: []Participant{s.participantLocked(self, true, true)}}}
	s.groups.byJID[grp.g.JID] = grp
	results := make([]ParticipantResult, 0, len(participants))
	for _, p := range participants {
		results = append(results, s.addLocked(grp, p))
	}
	s.emitGroupLocked(GroupChanged{JID: grp.g.JID, Sender: self, Group: &grp.g})
	return copyGroup(grp.g), results, nil
}

func checkGroupName(name string) error {
	if strings.TrimSpace(name) == "" {
		return errors.New("whatsapp: a group needs a name")
	}
	if utf8.RuneCountInString(name) > maxGroupName {
		return fmt.Errorf("whatsapp: a group's name has at most %d characters", maxGroupName)
	}
	return nil
}

// addLocked adds jid to grp, or says why WhatsApp would not.
func (s *Sandbox) addLocked(grp *sandboxGroup, jid string) ParticipantResult {
	refused := func(code int) ParticipantResult {
		return ParticipantResult{JID: jid, Code: code, Reason: ParticipantReason(code)}
	}
	n, isPN := strings.CutSuffix(jid, "@s.whatsapp.net")
	switch {
	case grp.index(jid) >= 0:
		return refused(409)
	case isPN && s.nums.dir[n].Query != "" && !s.nums.dir[n].OnWhatsApp:
		return refused(404)
	case len(grp.g.Participants) >= MaxGroupSize:
		return refused(419)
	case s.groups.refuse[jid]:
		r := refused(403)
		r.Invite, r.InviteExpires = newInviteCode(), time.Now().Add(72*time.Hour).Truncate(time.Second)
		return r
	}
	grp.g.Participants = append(grp.g.Participants, s.participantLocked(jid, false, false))
	grp.requests = slices.DeleteFunc(grp.requests, func(r GroupRequest) bool { return r.JID == jid })
	return ParticipantResult{JID: jid, OK: true}
}

// UpdateParticipants changes participants one by one, each with its
// outcome; a change needs admin rights, an add only when the group lets
// only admins add.
func (s *Sandbox) UpdateParticipants(ctx context.Context, group string, action ParticipantAction, jids []string) ([]ParticipantResult, error) {
	switch action {
	case ParticipantAdd, ParticipantRemove, ParticipantPromote, ParticipantDemote, ParticipantApprove, ParticipantReject:
	default:
		return nil, fmt.Errorf("whatsapp: no participant action %q", action)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	grp, err := s.groupLocked(ctx, group, false)
	if err != nil {
		return nil, err
	}
	self := s.selfLocked()
	if action != ParticipantAdd || grp.g.AdminsAddMember {
		if grp, err = s.groupLocked(ctx, group, true); err != nil {
			return nil, err
		}
	}
	if action == ParticipantAdd && len(grp.g.Participants)+len(jids) > MaxGroupSize {
		return nil, fmt.Errorf("whatsapp: a group has at most %d members", MaxGroupSize)
	}
	s.groups.changes++
	ev := GroupChanged{JID: group, Sender: self}
	results := make([]ParticipantResult, 0, len(jids))
	for _, j := range jids {
		var r ParticipantResult
		i := grp.index(j)
		refused := func(code int) ParticipantResult {
			return ParticipantResult{JID: j, Code: code, Reason: ParticipantReason(code)}
		}
		switch action {
		case ParticipantAdd:
			if r = s.addLocked(grp, j); r.OK {
				ev.Joined = append(ev.Joined, j)
			}
		case ParticipantRemove, ParticipantPromote, ParticipantDemote:
			switch {
			case i < 0:
				r = refused(404)
			case grp.g.Participants[i].SuperAdmin && action != ParticipantPromote:
				r = refused(406) // the creator cannot be removed or demoted
			case action == ParticipantRemove:
				grp.g.Participants = slices.Delete(grp.g.Participants, i, i+1)
				r, ev.Left = ParticipantResult{JID: j, OK: true}, append(ev.Left, j)
			case action == ParticipantPromote:
				grp.g.Participants[i].Admin = true
				r, ev.Promoted = ParticipantResult{JID: j, OK: true}, append(ev.Promoted, j)
			default:
				grp.g.Participants[i].Admin = false
				r, ev.Demoted = ParticipantResult{JID: j, OK: true}, append(ev.Demoted, j)
			}
		case ParticipantApprove, ParticipantReject:
			k := slices.IndexFunc(grp.requests, func(q GroupRequest) bool { return q.JID == j })
			switch {
			case k < 0:
				r = refused(404)
			case action == ParticipantReject:
				grp.requests = slices.Delete(grp.requests, k, k+1)
				r = ParticipantResult{JID: j, OK: true}
			default:
				if r = s.addLocked(grp, j); r.OK {
					ev.Joined = append(ev.Joined, j)
				}
			}
		}
		results = append(results, r)
	}
	if len(ev.Joined)+len(ev.Left)+len(ev.Promoted)+len(ev.Demoted) > 0 {
		s.emitGroupLocked(ev)
	}
	return results, nil
}

// GroupRequests lists who asked to join; admins only.
func (s *Sandbox) GroupRequests(ctx context.Context, group string) ([]GroupRequest, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	grp, err := s.groupLocked(ctx, group, true)
	if err != nil {
		return nil, err
	}
	return append([]GroupRequest{}, grp.requests...), nil
}

// InviteLink is the group's link; admins only. A reset makes the old one
// stop working.
func (s *Sandbox) InviteLink(ctx context.Context, group string, reset bool) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	grp, err := s.groupLocked(ctx, group, true)
	if err != nil {
		return "", err
	}
	if reset {
		s.groups.changes++
		grp.invite = newInviteCode()
		s.emitGroupLocked(GroupChanged{JID: group, Sender: s.selfLocked(), InviteReset: true})
	}
	return InviteLinkPrefix + grp.invite, nil
}

// groupByInviteLocked is the group whose invite link is link.
func (s *Sandbox) groupByInviteLocked(link string) (*sandboxGroup, error) {
	code, err := inviteCode(link)
	if err != nil {
		return nil, err
	}
	for _, grp := range s.groups.byJID {
		if grp.invite == code {
			return grp, nil
		}
	}
	return nil, ErrInviteInvalid
}

// GroupFromLink describes the group an invite leads to.
func (s *Sandbox) GroupFromLink(ctx context.Context, link string) (Group, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.connectedLocked(ctx); err != nil {
		return Group{}, err
	}
	s.groups.reads++
	grp, err := s.groupByInviteLocked(link)
	if err != nil {
		return Group{}, err
	}
	return copyGroup(grp.g), nil
}

// JoinGroup joins by an invite: at once, or as a request to the admins
// of a group that approves who joins.
func (s *Sandbox) JoinGroup(ctx context.Context, link string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.connectedLocked(ctx); err != nil {
		return "", err
	}
	grp, err := s.groupByInviteLocked(link)
	if err != nil {
		return "", err
	}
	s.groups.changes++
	self := s.selfLocked()
	switch {
	case grp.index(self) >= 0:
	case grp.g.JoinApproval:
		if !slices.ContainsFunc(grp.requests, func(r GroupRequest) bool { return r.JID == self }) {
			grp.requests = append(grp.requests, GroupRequest{JID: self, RequestedAt: time.Now().Truncate(time.Second)})
		}
	case len(grp.g.Participants) >= MaxGroupSize:
		return "", errors.New("whatsapp: the group is full")
	default:
		grp.g.Participants = append(grp.g.Participants, s.participantLocked(self, false, false))
		s.emitGroupLocked(GroupChanged{JID: grp.g.JID, Sender: self, Group: &grp.g, Joined: []string{self}})
	}
	return grp.g.JID, nil
}

// LeaveGroup leaves a group we are in.
func (s *Sandbox) LeaveGroup(ctx context.Context, group string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	grp, err := s.groupLocked(ctx, group, false)
	if err != nil {
		return err
	}
	s.groups.changes++
	self := s.selfLocked()
	i := grp.index(self)
	grp.g.Participants = slices.Delete(grp.g.Participants, i, i+1)
	s.emitGroupLocked(GroupChanged{JID: group, Sender: self, Left: []string{self}})
	return nil
}

// editLocked finds a group whose name, description or photo we may
// change: any member's, unless it is locked to admins.
func (s *Sandbox) editLocked(ctx context.Context, group string) (*sandboxGroup, error) {
	grp, err := s.groupLocked(ctx, group, false)
	if err != nil || !grp.g.Locked {
		return grp, err
	}
	return s.groupLocked(ctx, group, true)
}

// SetGroupName sets a group's subject.
func (s *Sandbox) SetGroupName(ctx context.Context, group, name string) error {
	if err := checkGroupName(name); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	grp, err := s.editLocked(ctx, group)
	if err != nil {
		return err
	}
	s.groups.changes++
	self := s.selfLocked()
	grp.g.Name, grp.g.NameSetAt, grp.g.NameSetBy = name, time.Now().Truncate(time.Second), self
	s.emitGroupLocked(GroupChanged{JID: group, Sender: self, Name: &name})
	return nil
}

// SetGroupDescription sets (or, with "", removes) a group's description.
func (s *Sandbox) SetGroupDescription(ctx context.Context, group, text string) error {
	if utf8.RuneCountInString(text) > maxGroupDescription {
		return fmt.Errorf("whatsapp: a group's description has at most %d characters", maxGroupDescription)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	grp, err := s.editLocked(ctx, group)
	if err != nil {
		return err
	}
	s.groups.changes++
	self := s.selfLocked()
	grp.g.Description, grp.g.DescriptionSetAt, grp.g.DescriptionSetBy = text, time.Now().Truncate(time.Second), self
	s.emitGroupLocked(GroupChanged{JID: group, Sender: self, Description: &text})
	return nil
}

// SetGroupPhoto sets (a JPEG) or removes (nil) a group's photo.
func (s *Sandbox) SetGroupPhoto(ctx context.Context, group string, jpeg []byte) (string, error) {
	if jpeg != nil && !bytes.HasPrefix(jpeg, []byte{0xFF, 0xD8, 0xFF}) {
		return "", errors.New("whatsapp: a group photo must be a JPEG")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	grp, err := s.editLocked(ctx, group)
	if err != nil {
		return "", err
	}
	s.groups.changes++
	grp.photo = ""
	if jpeg != nil {
		grp.photo = randomDigits(10)
	}
	s.emit(&PictureChanged{JID: group, Author: s.selfLocked(), Removed: jpeg == nil, ID: grp.photo})
	return grp.photo, nil
}

// GroupPhoto is the id of a group's photo ("" when it has none).
func (s *Sandbox) GroupPhoto(group string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if grp := s.groups.byJID[group]; grp != nil {
		return grp.photo
	}
	return ""
}

// SetGroupSetting turns a group's setting on or off; admins only.
func (s *Sandbox) SetGroupSetting(ctx context.Context, group string, set GroupSetting) error {
	switch set.Kind {
	case GroupAnnounce, GroupLocked, GroupJoinApproval, GroupAdminsAddMember:
	default:
		return fmt.Errorf("whatsapp: no group setting %q", set.Kind)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	grp, err := s.groupLocked(ctx, group, true)
	if err != nil {
		return err
	}
	s.groups.changes++
	ev := GroupChanged{JID: group, Sender: s.selfLocked()}
	on := set.On
	switch set.Kind {
	case GroupAnnounce:
		grp.g.Announce, ev.Announce = on, &on
	case GroupLocked:
		grp.g.Locked, ev.Locked = on, &on
	case GroupJoinApproval:
		grp.g.JoinApproval, ev.JoinApproval = on, &on
	case GroupAdminsAddMember:
		// GroupChanged has no field of its own for it: the whole group.
		grp.g.AdminsAddMember, ev.Group = on, &grp.g
	}
	s.emitGroupLocked(ev)
	return nil
}

// ChangeGroup makes a change elsewhere (another member, on their phone)
// and reports it as WhatsApp would: the group's name, description or
// settings, who joined, left, was promoted or demoted, a new invite link.
// Requested adds requests to join (admins see them in GroupRequests).
// We among Joined: the whole group comes with it, as when someone adds us.
func (s *Sandbox) ChangeGroup(ch GroupChanged, requested []string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	grp := s.groups.byJID[ch.JID]
	if grp == nil {
		return fmt.Errorf("%w: %s", ErrGroupNotFound, ch.JID)
	}
	if ch.Timestamp.IsZero() {
		ch.Timestamp = time.Now().Truncate(time.Second)
	}
	self := s.selfLocked()
	g := &grp.g
	if ch.Name != nil {
		g.Name, g.NameSetAt, g.NameSetBy = *ch.Name, ch.Timestamp, ch.Sender
	}
	if ch.Description != nil {
		g.Description, g.DescriptionSetAt, g.DescriptionSetBy = *ch.Description, ch.Timestamp, ch.Sender
	}
	if ch.Announce != nil {
		g.Announce = *ch.Announce
	}
	if ch.Locked != nil {
		g.Locked = *ch.Locked
	}
	if ch.JoinApproval != nil {
		g.JoinApproval = *ch.JoinApproval
	}
	if ch.InviteReset {
		grp.invite = newInviteCode()
	}
	for _, j := range ch.Joined {
		if grp.index(j) < 0 {
			g.Participants = append(g.Participants, s.participantLocked(j, false, false))
		}
	}
	for _, j := range ch.Left {
		if i := grp.index(j); i >= 0 {
			g.Participants = slices.Delete(g.Participants, i, i+1)
		}
	}
	for _, j := range ch.Promoted {
		if i := grp.index(j); i >= 0 {
			g.Participants[i].Admin = true
		}
	}
	for _, j := range ch.Demoted {
		if i := grp.index(j); i >= 0 && !g.Participants[i].SuperAdmin {
			g.Participants[i].Admin = false
		}
	}
	for _, j := range requested {
		if !slices.ContainsFunc(grp.requests, func(r GroupRequest) bool { return r.JID == j }) {
			grp.requests = append(grp.requests, GroupRequest{JID: j, RequestedAt: ch.Timestamp})
		}
	}
	if slices.Contains(ch.Joined, self) {
		ch.Group = g
	}
	changed := ch.Name != nil || ch.Description != nil || ch.Announce != nil || ch.Locked != nil ||
		ch.JoinApproval != nil || ch.InviteReset || ch.Group != nil ||
		len(ch.Joined)+len(ch.Left)+len(ch.Promoted)+len(ch.Demoted) > 0
	if changed {
		s.emitGroupLocked(ch)
	}
	return nil
}

// groupNameLocked is the name of a group the sandbox knows ("" for any
// other chat), as WhatsApp's clients name its chat.
func (s *Sandbox) groupNameLocked(chat string) string {
	if grp := s.groups.byJID[chat]; grp != nil {
		return grp.g.Name
	}
	return ""
}
