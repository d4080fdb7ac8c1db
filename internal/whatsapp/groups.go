package whatsapp

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Groups (issue 19): what the drivers tell of groups and the changes they
// make. JIDs are strings as elsewhere in this package: a group's ends in
// @g.us; a participant is a phone-number JID where the driver knows the
// number, a LID otherwise, with both in Participant.

// Group is a group as WhatsApp describes it.
type Group struct {
	JID       string    `json:"jid"`
	Name      string    `json:"name"` // the subject
	NameSetAt time.Time `json:"name_set_at,omitzero"`
	NameSetBy string    `json:"name_set_by,omitempty"`

	Description      string    `json:"description,omitempty"` // the topic
	DescriptionSetAt time.Time `json:"description_set_at,omitzero"`
	DescriptionSetBy string    `json:"description_set_by,omitempty"`

	Owner     string    `json:"owner,omitempty"` // who created it
	CreatedAt time.Time `json:"created_at,omitzero"`

	// The settings (GroupSetting).
	Announce        bool `json:"announce"`           // only admins send messages
	Locked          bool `json:"locked"`             // only admins change the name, description and photo
	JoinApproval    bool `json:"join_approval"`      // admins approve who asks to join by link
	AdminsAddMember bool `json:"admins_add_members"` // only admins add members

	// Community is set on a community's parent group; Parent names the
	// community a group belongs to.
	Community bool   `json:"community,omitempty"`
	Parent    string `json:"parent,omitempty"`

	Participants []Participant `json:"participants"`
}

// Participant is a member of a group.
type Participant struct {
	JID        string `json:"jid"`           // the phone-number JID where known, else the LID
	PN         string `json:"pn,omitempty"`  // phone-number JID
	LID        string `json:"lid,omitempty"` // LID
	Admin      bool   `json:"admin"`
	SuperAdmin bool   `json:"super_admin"` // the creator: an admin no one can demote
}

// ParticipantAction is a change of a group's members.
type ParticipantAction string

// The participant changes. Approve and reject answer join requests.
const (
	ParticipantAdd     ParticipantAction = "add"
	ParticipantRemove  ParticipantAction = "remove"
	ParticipantPromote ParticipantAction = "promote"
	ParticipantDemote  ParticipantAction = "demote"
	ParticipantApprove ParticipantAction = "approve"
	ParticipantReject  ParticipantAction = "reject"
)

// ParticipantResult is WhatsApp's answer for one participant of a change
// (or of a group's creation): done, or refused with WhatsApp's code and
// the reason in our words.
type ParticipantResult struct {
	JID    string `json:"jid"`
	OK     bool   `json:"ok"`
	Code   int    `json:"code,omitempty"`   // WhatsApp's code: 403, 409, ...
	Reason string `json:"reason,omitempty"` // ParticipantReason(Code)
	// Invite is set when WhatsApp refused to add someone for their
	// privacy settings but lets us invite them: the code to send them in
	// a group invite message, valid until InviteExpires.
	Invite        string    `json:"invite,omitempty"`
	InviteExpires time.Time `json:"invite_expires,omitzero"`
}

// ParticipantReason says in our words why WhatsApp refused a participant
// change with code.
func ParticipantReason(code int) string {
	switch code {
	case 0, 200:
		return ""
	case 401:
		return "they blocked us, or we blocked them"
	case 403:
		return "their privacy settings let only their contacts add them: invite them instead"
	case 404:
		return "not a member of the group, or not on WhatsApp"
	case 406:
		return "not allowed: they cannot be made admin or removed, or they left and cannot be added back yet"
	case 408:
		return "they left the group recently and cannot be added back yet"
	case 409:
		return "already a member of the group"
	case 419:
		return "the group is full"
	case 500:
		return "WhatsApp failed to do it"
	}
	return "refused by WhatsApp"
}

// GroupSetting is one of a group's settings, on or off.
type GroupSetting struct {
	Kind GroupSettingKind
	On   bool
}

// GroupSettingKind names a group setting.
type GroupSettingKind string

// The group settings (Group's fields of the same names).
const (
	GroupAnnounce        GroupSettingKind = "announce"
	GroupLocked          GroupSettingKind = "locked"
	GroupJoinApproval    GroupSettingKind = "join_approval"
	GroupAdminsAddMember GroupSettingKind = "admins_add_members"
)

// GroupRequest is someone who asked to join a group that needs approval.
type GroupRequest struct {
	JID         string    `json:"jid"`
	RequestedAt time.Time `json:"requested_at,omitzero"`
}

// GroupChanged reports a change of a group made by anyone, ourselves on
// another device included: Group is the whole group when the driver has
// it (we joined or were added, or it was asked again); otherwise the
// fields set say what changed.
type GroupChanged struct {
	JID       string    `json:"jid"`
	Sender    string    `json:"sender,omitempty"` // who changed it
	Timestamp time.Time `json:"timestamp"`

	Group *Group `json:"group,omitempty"`

	Name        *string `json:"name,omitempty"`
	Description *string `json:"description,omitempty"`
	Announce    *bool   `json:"announce,omitempty"`
	Locked      *bool   `json:"locked,omitempty"`
	// JoinApproval is set when admins' approval of who joins changed.
	JoinApproval *bool `json:"join_approval,omitempty"`
	// InviteReset is set when the invite link was reset (the old one no
	// longer works).
	InviteReset bool `json:"invite_reset,omitempty"`

	Joined   []string `json:"joined,omitempty"` // added or joined
	Left     []string `json:"left,omitempty"`   // removed or left (we among them: no longer a member)
	Promoted []string `json:"promoted,omitempty"`
	Demoted  []string `json:"demoted,omitempty"`
	// Deleted is set when the group was deleted.
	Deleted bool `json:"deleted,omitempty"`
}

func (*GroupChanged) isEvent() {}

// The group errors a driver returns (wrapped), which the API answers as
// 4xx naming the reason.
var (
	// ErrGroupNotFound: no such group, or we are not in it and it is not
	// visible to us.
	ErrGroupNotFound = errors.New("whatsapp: no such group")
	// ErrNotInGroup: we are not (or no longer) a member.
	ErrNotInGroup = errors.New("whatsapp: not a member of the group")
	// ErrNotGroupAdmin: the change needs admin rights we lack.
	ErrNotGroupAdmin = errors.New("whatsapp: the change needs admin rights in the group")
	// ErrInviteInvalid: an invite link that is malformed, reset or expired.
	ErrInviteInvalid = errors.New("whatsapp: the invite link is not valid (reset, expired or mistyped)")
)

// MaxGroupSize is how many members a group may have (WhatsApp's limit,
// as its clients show it).
const MaxGroupSize = 1024

// inviteCode is the code of an invite link (https://chat.whatsapp.com/CODE,
// with or without the scheme, or the code alone).
func inviteCode(link string) (string, error) {
	code := strings.TrimSpace(link)
	for _, prefix := range []string{"https://", "http://"} {
		if len(code) >= len(prefix) && strings.EqualFold(code[:len(prefix)], prefix) {
			code = code[len(prefix):]
			break
		}
	}
	const host = "chat.whatsapp.com/"
	if len(code) >= len(host) && strings.EqualFold(code[:len(host)], host) {
		code = strings.TrimPrefix(code[len(host):], "invite/")
	}
	if i := strings.IndexAny(code, "?#"); i >= 0 {
		code = code[:i]
	}
	code = strings.TrimSuffix(code, "/")
	if code == "" || strings.Trim(code, "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz") != "" {
		return "", fmt.Errorf("%w: %q", ErrInviteInvalid, link)
	}
	return code, nil
}
