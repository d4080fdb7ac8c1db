package whatsapp

import (
	"context"
	"time"

	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"
)

// Group changes made by anyone (w:gp2 notifications): whatsmeow parses
// them into GroupInfo (a change) and JoinedGroup (we joined, were added,
// or created the group), having stored the number/LID pairs they carry.
// With SynchronousAck whatsmeow acknowledges such a notification only
// when our handler returned true, so a change the Handler failed on is
// delivered again, as a message is.

// handleGroupInfo reports a change of a group.
func (c *clientEvents) handleGroupInfo(e *events.GroupInfo) bool {
	if e.Name != nil {
		c.d.setGroupName(e.JID, e.Name.Name)
	}
	ev := groupChanged(e, c.lids())
	if e.MembershipApprovalMode != nil {
		ev.JoinApproval = c.joinApproval(e.JID)
	}
	if !ev.changes() {
		// Disappearing messages, community links, suspensions: not ours.
		return true
	}
	return c.deliver(ev, "group change")
}

// joinApproval is whether a group needs approval to join, asked of
// WhatsApp: whatsmeow (at the pinned version) reports every change of the
// setting as turned on, dropping the notification's state. nil when it
// cannot be asked: the setting is then left out of the change (a wrong
// "on" would be worse), and the next read of the group tells it.
func (c *clientEvents) joinApproval(group types.JID) *bool {
	if c.cli == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(c.ctx, wmLookupTimeout)
	defer cancel()
	info, err := c.cli.GetGroupInfo(ctx, group)
	if err != nil {
		c.d.log.Info().Err(err).Str("group", group.String()).
			Msg("A group's join approval changed, but the group cannot be asked whether it is now on; the change is reported without it.")
		return nil
	}
	c.d.learnGroup(info)
	on := info.IsJoinApprovalRequired
	return &on
}

// handleJoinedGroup reports a group we joined, were added to or created,
// whole.
func (c *clientEvents) handleJoinedGroup(e *events.JoinedGroup) bool {
	c.d.learnGroup(&e.GroupInfo)
	return c.deliver(joinedGroup(e, c.lids(), c.d.now()), "joined group")
}

// groupChanged is e as we report it; JoinApproval is left to the caller
// (see joinApproval).
func groupChanged(e *events.GroupInfo, r lidMap) *GroupChanged {
	ev := &GroupChanged{JID: e.JID.ToNonAD().String(), Timestamp: e.Timestamp}
	if e.Sender != nil {
		var pn types.JID
		if e.SenderPN != nil {
			pn = *e.SenderPN
		}
		ev.Sender = r.userOf(*e.Sender, pn)
	}
	if e.Name != nil {
		ev.Name = &e.Name.Name
	}
	if e.Topic != nil {
		text := e.Topic.Topic
		if e.Topic.TopicDeleted {
			text = ""
		}
		ev.Description = &text
	}
	if e.Announce != nil {
		ev.Announce = &e.Announce.IsAnnounce
	}
	if e.Locked != nil {
		ev.Locked = &e.Locked.IsLocked
	}
	ev.InviteReset = e.NewInviteLink != nil
	ev.Joined = r.users(e.Join)
	ev.Left = r.users(e.Leave)
	ev.Promoted = r.users(e.Promote)
	ev.Demoted = r.users(e.Demote)
	ev.Deleted = e.Delete != nil && e.Delete.Deleted
	return ev
}

// changes says whether ev reports anything.
func (ev *GroupChanged) changes() bool {
	return ev.Group != nil || ev.Name != nil || ev.Description != nil || ev.Announce != nil || ev.Locked != nil ||
		ev.JoinApproval != nil || ev.InviteReset || len(ev.Joined) > 0 || len(ev.Left) > 0 ||
		len(ev.Promoted) > 0 || len(ev.Demoted) > 0 || ev.Deleted
}

// joinedGroup is e as we report it: the whole group, by whom we were
// added (or who created it). The notification carries no time of its
// own: at is when we learnt of it.
func joinedGroup(e *events.JoinedGroup, r lidMap, at time.Time) *GroupChanged {
	g := r.group(&e.GroupInfo)
	ev := &GroupChanged{JID: g.JID, Timestamp: at, Group: &g}
	if e.Sender != nil {
		var pn types.JID
		if e.SenderPN != nil {
			pn = *e.SenderPN
		}
		ev.Sender = r.userOf(*e.Sender, pn)
	}
	return ev
}

// users are jids as we report users: by number where known.
func (r lidMap) users(jids []types.JID) []string {
	if len(jids) == 0 {
		return nil
	}
	out := make([]string, len(jids))
	for i, j := range jids {
		out[i] = r.userOf(j, types.EmptyJID)
	}
	return out
}
