package whatsapp

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/types"
)

// Groups (issue 19) through whatsmeow's group IQs (group.go of whatsmeow).
// Participants are reported by number where known, as incoming messages
// are (whatsmeow_lid.go); whatsmeow stores the number/LID pairs of every
// group answer in its LID map before we see it. What these calls learn
// (a group's subject, its addressing mode) goes into the driver's group
// cache, which names chats and addresses replies (whatsmeow_events.go).

// JoinedGroups implements Driver.
func (d *Whatsmeow) JoinedGroups(ctx context.Context) ([]Group, error) {
	cli, err := d.connected()
	if err != nil {
		return nil, err
	}
	infos, err := cli.GetJoinedGroups(ctx)
	if err != nil {
		return nil, groupError("list groups", groupRead, err)
	}
	r := lidMap{ctx: ctx, cli: cli, log: d.log}
	out := make([]Group, 0, len(infos))
	for _, info := range infos {
		if info == nil {
			continue
		}
		d.learnGroup(info)
		out = append(out, r.group(info))
	}
	return out, nil
}

// GroupInfo implements Driver.
func (d *Whatsmeow) GroupInfo(ctx context.Context, group string) (Group, error) {
	jid, err := groupJID(group)
	if err != nil {
		return Group{}, fmt.Errorf("whatsapp: group info: %w", err)
	}
	cli, err := d.connected()
	if err != nil {
		return Group{}, err
	}
	info, err := cli.GetGroupInfo(ctx, jid)
	if err != nil {
		return Group{}, groupError("group info", groupRead, err)
	}
	d.learnGroup(info)
	return lidMap{ctx: ctx, cli: cli, log: d.log}.group(info), nil
}

// CreateGroup implements Driver. WhatsApp adds us as the group's super
// admin; participants it would not add come back with their error code
// (and, for privacy refusals, an invite code).
func (d *Whatsmeow) CreateGroup(ctx context.Context, name string, participants []string) (Group, []ParticipantResult, error) {
	if strings.TrimSpace(name) == "" {
		return Group{}, nil, errors.New("whatsapp: create group: no name")
	}
	jids, err := participantJIDs(participants)
	if err != nil {
		return Group{}, nil, fmt.Errorf("whatsapp: create group: %w", err)
	}
	cli, err := d.connected()
	if err != nil {
		return Group{}, nil, err
	}
	info, err := cli.CreateGroup(ctx, whatsmeow.ReqCreateGroup{Name: name, Participants: jids})
	if err != nil {
		return Group{}, nil, groupError("create group", groupChange, err)
	}
	d.learnGroup(info)
	r := lidMap{ctx: ctx, cli: cli, log: d.log}
	return r.group(info), r.participantResults(jids, info.Participants), nil
}

// UpdateParticipants implements Driver. The participants are named as the
// group addresses its members (by LID in a LID group, where the LID is
// known), as WhatsApp's own clients do.
func (d *Whatsmeow) UpdateParticipants(ctx context.Context, group string, action ParticipantAction, jids []string) ([]ParticipantResult, error) {
	gj, err := groupJID(group)
	if err != nil {
		return nil, fmt.Errorf("whatsapp: %s participants: %w", action, err)
	}
	users, err := participantJIDs(jids)
	if err != nil {
		return nil, fmt.Errorf("whatsapp: %s participants: %w", action, err)
	}
	if len(users) == 0 {
		return nil, fmt.Errorf("whatsapp: %s participants: no participants", action)
	}
	var change whatsmeow.ParticipantChange
	var request whatsmeow.ParticipantRequestChange
	switch action {
	case ParticipantAdd:
		change = whatsmeow.ParticipantChangeAdd
	case ParticipantRemove:
		change = whatsmeow.ParticipantChangeRemove
	case ParticipantPromote:
		change = whatsmeow.ParticipantChangePromote
	case ParticipantDemote:
		change = whatsmeow.ParticipantChangeDemote
	case ParticipantApprove:
		request = whatsmeow.ParticipantChangeApprove
	case ParticipantReject:
		request = whatsmeow.ParticipantChangeReject
	default:
		return nil, fmt.Errorf("whatsapp: no participant action %q", action)
	}
	cli, err := d.connected()
	if err != nil {
		return nil, err
	}
	a := d.chatAddressing(ctx, cli, gj)
	addressed := make([]types.JID, len(users))
	for i, u := range users {
		addressed[i] = a.jid(u)
	}
	var got []types.GroupParticipant
	if request != "" {
		got, err = cli.UpdateGroupRequestParticipants(ctx, gj, addressed, request)
	} else {
		got, err = cli.UpdateGroupParticipants(ctx, gj, addressed, change)
	}
	if err != nil {
		return nil, groupError(string(action)+" participants", groupChange, err)
	}
	return a.r.participantResults(users, got), nil
}

// GroupRequests implements Driver.
func (d *Whatsmeow) GroupRequests(ctx context.Context, group string) ([]GroupRequest, error) {
	jid, err := groupJID(group)
	if err != nil {
		return nil, fmt.Errorf("whatsapp: group requests: %w", err)
	}
	cli, err := d.connected()
	if err != nil {
		return nil, err
	}
	got, err := cli.GetGroupRequestParticipants(ctx, jid)
	if err != nil {
		return nil, groupError("group requests", groupChange, err)
	}
	return lidMap{ctx: ctx, cli: cli, log: d.log}.groupRequests(got), nil
}

// InviteLink implements Driver.
func (d *Whatsmeow) InviteLink(ctx context.Context, group string, reset bool) (string, error) {
	jid, err := groupJID(group)
	if err != nil {
		return "", fmt.Errorf("whatsapp: invite link: %w", err)
	}
	cli, err := d.connected()
	if err != nil {
		return "", err
	}
	link, err := cli.GetGroupInviteLink(ctx, jid, reset)
	if err != nil {
		return "", groupError("invite link", groupChange, err)
	}
	return link, nil
}

// GroupFromLink implements Driver.
func (d *Whatsmeow) GroupFromLink(ctx context.Context, link string) (Group, error) {
	code, err := inviteCode(link)
	if err != nil {
		return Group{}, err
	}
	cli, err := d.connected()
	if err != nil {
		return Group{}, err
	}
	info, err := cli.GetGroupInfoFromLink(ctx, code)
	if err != nil {
		return Group{}, groupError("group from link", groupLink, err)
	}
	// Not learnt into the cache: we are not a member, and the preview
	// need not list who is.
	return lidMap{ctx: ctx, cli: cli, log: d.log}.group(info), nil
}

// JoinGroup implements Driver. A group that needs approval answers with
// its JID too: the request waits for an admin.
func (d *Whatsmeow) JoinGroup(ctx context.Context, link string) (string, error) {
	code, err := inviteCode(link)
	if err != nil {
		return "", err
	}
	cli, err := d.connected()
	if err != nil {
		return "", err
	}
	jid, err := cli.JoinGroupWithLink(ctx, code)
	if err != nil {
		return "", groupError("join group", groupLink, err)
	}
	return jid.ToNonAD().String(), nil
}

// LeaveGroup implements Driver.
func (d *Whatsmeow) LeaveGroup(ctx context.Context, group string) error {
	jid, err := groupJID(group)
	if err != nil {
		return fmt.Errorf("whatsapp: leave group: %w", err)
	}
	cli, err := d.connected()
	if err != nil {
		return err
	}
	if err := cli.LeaveGroup(ctx, jid); err != nil {
		return groupError("leave group", groupLeave, err)
	}
	return nil
}

// SetGroupName implements Driver.
func (d *Whatsmeow) SetGroupName(ctx context.Context, group, name string) error {
	jid, err := groupJID(group)
	if err != nil {
		return fmt.Errorf("whatsapp: set group name: %w", err)
	}
	if strings.TrimSpace(name) == "" {
		return errors.New("whatsapp: set group name: no name")
	}
	cli, err := d.connected()
	if err != nil {
		return err
	}
	if err := cli.SetGroupName(ctx, jid, name); err != nil {
		return groupError("set group name", groupChange, err)
	}
	d.setGroupName(jid, name)
	return nil
}

// SetGroupDescription implements Driver with SetGroupTopic, which names
// the description it replaces (WhatsApp wants it) and removes it for "";
// the group is asked first, so an unknown group or one we left is told as
// such (SetGroupTopic's own lookup loses the reason).
func (d *Whatsmeow) SetGroupDescription(ctx context.Context, group, text string) error {
	jid, err := groupJID(group)
	if err != nil {
		return fmt.Errorf("whatsapp: set group description: %w", err)
	}
	cli, err := d.connected()
	if err != nil {
		return err
	}
	info, err := cli.GetGroupInfo(ctx, jid)
	if err != nil {
		return groupError("set group description", groupRead, err)
	}
	d.learnGroup(info)
	if err := cli.SetGroupTopic(ctx, jid, info.TopicID, "", text); err != nil {
		return groupError("set group description", groupChange, err)
	}
	return nil
}

// SetGroupPhoto implements Driver; an empty jpeg removes the photo.
func (d *Whatsmeow) SetGroupPhoto(ctx context.Context, group string, jpeg []byte) (string, error) {
	jid, err := groupJID(group)
	if err != nil {
		return "", fmt.Errorf("whatsapp: set group photo: %w", err)
	}
	cli, err := d.connected()
	if err != nil {
		return "", err
	}
	if len(jpeg) == 0 {
		jpeg = nil
	}
	id, err := cli.SetGroupPhoto(ctx, jid, jpeg)
	if err != nil {
		if errors.Is(err, whatsmeow.ErrInvalidImageFormat) {
			return "", fmt.Errorf("whatsapp: set group photo: WhatsApp refused the image (a JPEG is needed): %w", err)
		}
		return "", groupError("set group photo", groupChange, err)
	}
	if jpeg == nil {
		return "", nil // whatsmeow says "remove"
	}
	return id, nil
}

// SetGroupSetting implements Driver.
func (d *Whatsmeow) SetGroupSetting(ctx context.Context, group string, s GroupSetting) error {
	jid, err := groupJID(group)
	if err != nil {
		return fmt.Errorf("whatsapp: group setting: %w", err)
	}
	var set func(context.Context, *whatsmeow.Client) error
	switch s.Kind {
	case GroupAnnounce:
		set = func(ctx context.Context, cli *whatsmeow.Client) error { return cli.SetGroupAnnounce(ctx, jid, s.On) }
	case GroupLocked:
		set = func(ctx context.Context, cli *whatsmeow.Client) error { return cli.SetGroupLocked(ctx, jid, s.On) }
	case GroupJoinApproval:
		set = func(ctx context.Context, cli *whatsmeow.Client) error {
			return cli.SetGroupJoinApprovalMode(ctx, jid, s.On)
		}
	case GroupAdminsAddMember:
		mode := types.GroupMemberAddModeAllMember
		if s.On {
			mode = types.GroupMemberAddModeAdmin
		}
		set = func(ctx context.Context, cli *whatsmeow.Client) error {
			return cli.SetGroupMemberAddMode(ctx, jid, mode)
		}
	default:
		return fmt.Errorf("whatsapp: no group setting %q", s.Kind)
	}
	cli, err := d.connected()
	if err != nil {
		return err
	}
	if err := set(ctx, cli); err != nil {
		return groupError("set "+string(s.Kind), groupChange, err)
	}
	return nil
}

// learnGroup keeps the driver's cache in step with a group WhatsApp
// described.
func (d *Whatsmeow) learnGroup(info *types.GroupInfo) {
	if info == nil || info.JID.IsEmpty() {
		return
	}
	d.setGroupName(info.JID, info.Name)
	d.setGroupMode(info.JID, info.AddressingMode)
}

// groupJID is s as a group's JID.
func groupJID(s string) (types.JID, error) {
	j, err := types.ParseJID(strings.TrimSpace(s))
	if err != nil || j.User == "" || j.Server != types.GroupServer {
		return types.JID{}, fmt.Errorf("not a group JID (...@g.us): %q", s)
	}
	return j.ToNonAD(), nil
}

// participantJIDs are users (phone-number JIDs, numbers or LIDs) as
// whatsmeow takes them, without repeats.
func participantJIDs(in []string) ([]types.JID, error) {
	out := make([]types.JID, 0, len(in))
	seen := map[types.JID]bool{}
	for _, s := range in {
		j, err := parseRecipient(s)
		if err != nil {
			return nil, err
		}
		if j.Server != types.DefaultUserServer && j.Server != types.HiddenUserServer {
			return nil, fmt.Errorf("not a user: %q", s)
		}
		if !seen[j] {
			seen[j] = true
			out = append(out, j)
		}
	}
	return out, nil
}

// groupOp is what a group call does, which decides what WhatsApp's
// refusals mean.
type groupOp int

const (
	groupRead   groupOp = iota // asks about a group
	groupChange                // changes a group: needs admin rights (most of the time)
	groupLink                  // uses an invite link
	groupLeave                 // leaves a group
)

// groupError maps whatsmeow's group errors to ours. whatsmeow names some
// itself (its group-info and invite-link calls); the rest are IQ errors
// whose meaning depends on the call: on a change, 401 and 403 are our
// lack of admin rights, 404 an unknown group; on a link, 404, 406 and 410
// a link that does not work.
func groupError(op string, kind groupOp, err error) error {
	if err == nil {
		return nil
	}
	if e := actionError(op, err); errors.Is(e, ErrNotConnected) {
		return e
	}
	var ours error
	switch {
	case errors.Is(err, whatsmeow.ErrInviteLinkInvalid), errors.Is(err, whatsmeow.ErrInviteLinkRevoked):
		ours = ErrInviteInvalid
	case errors.Is(err, whatsmeow.ErrGroupNotFound):
		ours = ErrGroupNotFound
	case errors.Is(err, whatsmeow.ErrNotInGroup):
		ours = ErrNotInGroup
	case errors.Is(err, whatsmeow.ErrGroupInviteLinkUnauthorized):
		ours = ErrNotGroupAdmin
	case kind == groupLink && (errors.Is(err, whatsmeow.ErrIQNotFound) || errors.Is(err, whatsmeow.ErrIQNotAcceptable) ||
		errors.Is(err, whatsmeow.ErrIQGone)):
		ours = ErrInviteInvalid
	case kind == groupLink:
	case errors.Is(err, whatsmeow.ErrIQNotFound):
		ours = ErrGroupNotFound
	case kind == groupLeave && errors.Is(err, whatsmeow.ErrIQForbidden):
		ours = ErrNotInGroup
	case kind == groupChange && (errors.Is(err, whatsmeow.ErrIQForbidden) || errors.Is(err, whatsmeow.ErrIQNotAuthorized)):
		ours = ErrNotGroupAdmin
	case kind == groupRead && errors.Is(err, whatsmeow.ErrIQForbidden):
		ours = ErrNotInGroup
	}
	if ours != nil {
		return fmt.Errorf("whatsapp: %s: %w (%w)", op, ours, err)
	}
	return fmt.Errorf("whatsapp: %s: %w", op, err)
}

// group is info as we report it. Participants WhatsApp refused (a
// creation's, with an error code) are not members.
func (r lidMap) group(info *types.GroupInfo) Group {
	g := Group{
		JID:              info.JID.ToNonAD().String(),
		Name:             info.Name,
		NameSetAt:        info.NameSetAt,
		NameSetBy:        r.userOf(info.NameSetBy, info.NameSetByPN),
		Description:      info.Topic,
		DescriptionSetAt: info.TopicSetAt,
		DescriptionSetBy: r.userOf(info.TopicSetBy, info.TopicSetByPN),
		Owner:            r.userOf(info.OwnerJID, info.OwnerPN),
		CreatedAt:        info.GroupCreated,
		Announce:         info.IsAnnounce,
		Locked:           info.IsLocked,
		JoinApproval:     info.IsJoinApprovalRequired,
		AdminsAddMember:  info.MemberAddMode == types.GroupMemberAddModeAdmin,
		Community:        info.IsParent,
		Participants:     make([]Participant, 0, len(info.Participants)),
	}
	if info.TopicDeleted {
		g.Description = ""
	}
	if !info.LinkedParentJID.IsEmpty() {
		g.Parent = info.LinkedParentJID.ToNonAD().String()
	}
	for _, p := range info.Participants {
		if !participantOK(p.Error) {
			continue
		}
		pn, lid := r.participantPair(p)
		g.Participants = append(g.Participants, Participant{
			JID:        preferred(p.JID, pn, lid),
			PN:         jidString(pn),
			LID:        jidString(lid),
			Admin:      p.IsAdmin || p.IsSuperAdmin,
			SuperAdmin: p.IsSuperAdmin,
		})
	}
	return g
}

// participantOK: WhatsApp sends no code (or 200) for a participant it took.
func participantOK(code int) bool { return code == 0 || code == 200 }

// participantPair is a participant's number and LID, from the answer or
// the LID map.
func (r lidMap) participantPair(p types.GroupParticipant) (pn, lid types.JID) {
	pn, lid = r.pair(p.PhoneNumber, p.LID)
	if pn.IsEmpty() && lid.IsEmpty() {
		pn, lid = r.pair(p.JID, types.EmptyJID)
	}
	return pn, lid
}

// userOf is a user named by jid with its phone-number form alt (either
// may be empty) as we report users: by number where known.
func (r lidMap) userOf(jid, alt types.JID) string {
	if jid.IsEmpty() && alt.IsEmpty() {
		return ""
	}
	pn, lid := r.pair(jid, alt)
	if jid.IsEmpty() {
		jid = alt
	}
	return preferred(jid, pn, lid)
}

// participantResults is one result per requested user, from WhatsApp's
// answer for each (which may name them in the other form: a number asked
// for, its LID answered).
func (r lidMap) participantResults(requested []types.JID, got []types.GroupParticipant) []ParticipantResult {
	type answer struct {
		p    types.GroupParticipant
		keys []types.JID
	}
	answers := make([]answer, 0, len(got))
	for _, p := range got {
		pn, lid := r.participantPair(p)
		answers = append(answers, answer{p: p, keys: []types.JID{p.JID.ToNonAD(), pn, lid}})
	}
	out := make([]ParticipantResult, 0, len(requested))
	for _, j := range requested {
		pn, lid := r.pair(j, types.EmptyJID)
		res := ParticipantResult{JID: j.ToNonAD().String()}
		found := false
		for _, a := range answers {
			if !sameUser(a.keys, j.ToNonAD(), pn, lid) {
				continue
			}
			found = true
			res.Code = a.p.Error
			res.OK = participantOK(a.p.Error)
			if !res.OK {
				res.Reason = ParticipantReason(a.p.Error)
			}
			if a.p.AddRequest != nil {
				res.Invite, res.InviteExpires = a.p.AddRequest.Code, a.p.AddRequest.Expiration
			}
			break
		}
		if !found {
			res.Reason = "WhatsApp's answer did not mention them"
		}
		out = append(out, res)
	}
	return out
}

// sameUser says whether any of want is among keys (empty JIDs aside).
func sameUser(keys []types.JID, want ...types.JID) bool {
	for _, w := range want {
		if w.IsEmpty() {
			continue
		}
		for _, k := range keys {
			if !k.IsEmpty() && k.User == w.User && k.Server == w.Server {
				return true
			}
		}
	}
	return false
}

func (r lidMap) groupRequests(got []types.GroupParticipantRequest) []GroupRequest {
	out := make([]GroupRequest, 0, len(got))
	for _, q := range got {
		out = append(out, GroupRequest{JID: r.userOf(q.JID, types.EmptyJID), RequestedAt: q.RequestedAt})
	}
	return out
}
