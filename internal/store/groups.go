package store

import "time"

// Group is a WhatsApp group as the primary last fetched it or applied a
// change to it (issue 19): WhatsApp's description of it (the fields of
// whatsapp.Group), our invite link while we are an admin, and whether we
// are still a member. Reads are served from it while fresh (GroupFresh),
// so a repeated read costs WhatsApp nothing.
type Group struct {
	Account string `bson:"account" json:"-"`
	JID     string `bson:"_id" json:"jid"`

	Name             string    `bson:"name" json:"name"`
	NameSetAt        time.Time `bson:"name_set_at,omitempty" json:"name_set_at,omitzero"`
	NameSetBy        string    `bson:"name_set_by,omitempty" json:"name_set_by,omitempty"`
	Description      string    `bson:"description,omitempty" json:"description,omitempty"`
	DescriptionSetAt time.Time `bson:"description_set_at,omitempty" json:"description_set_at,omitzero"`
	DescriptionSetBy string    `bson:"description_set_by,omitempty" json:"description_set_by,omitempty"`
	Owner            string    `bson:"owner,omitempty" json:"owner,omitempty"`
	CreatedAt        time.Time `bson:"created_at,omitempty" json:"created_at,omitzero"`

	Announce         bool   `bson:"announce" json:"announce"`
	Locked           bool   `bson:"locked" json:"locked"`
	JoinApproval     bool   `bson:"join_approval" json:"join_approval"`
	AdminsAddMembers bool   `bson:"admins_add_members" json:"admins_add_members"`
	Community        bool   `bson:"community,omitempty" json:"community,omitempty"`
	Parent           string `bson:"parent,omitempty" json:"parent,omitempty"`

	Participants []GroupParticipant `bson:"participants" json:"participants"`

	// InviteLink is the group's invite link as last fetched (only an
	// admin can); a reset forgets it.
	InviteLink string `bson:"invite_link,omitempty" json:"invite_link,omitempty"`
	// Member says we are in the group; false once we left or were
	// removed (the record stays, for its history).
	Member bool `bson:"member" json:"member"`
	// Admin says we are one of its admins.
	Admin bool `bson:"admin" json:"admin"`
	// FetchedAt is when WhatsApp last described the whole group (zero: it
	// was built from changes only, and is asked for at the next read).
	FetchedAt time.Time `bson:"fetched_at,omitempty" json:"fetched_at,omitzero"`
	UpdatedAt time.Time `bson:"updated_at" json:"updated_at"`

	// EventSeq is the event log position of the last event announcing a
	// change of the group, and Announced those events: a primary stopped
	// between storing the change and appending them leaves EventSeq past
	// the log's end, and the next one appends them (GroupsUnannounced).
	EventSeq  int64        `bson:"event_seq,omitempty" json:"event_seq,omitempty"`
	Announced []GroupEvent `bson:"announced,omitempty" json:"announced,omitempty"`
}

// GroupParticipant is a member of a stored group.
type GroupParticipant struct {
	JID        string `bson:"jid" json:"jid"`
	PN         string `bson:"pn,omitempty" json:"pn,omitempty"`
	LID        string `bson:"lid,omitempty" json:"lid,omitempty"`
	Admin      bool   `bson:"admin,omitempty" json:"admin"`
	SuperAdmin bool   `bson:"super_admin,omitempty" json:"super_admin"`
}

// GroupEvent is one event of the log announcing a group's change: its
// type and its data (a JSON object).
type GroupEvent struct {
	Type string `bson:"type" json:"type"`
	Data string `bson:"data" json:"data"`
}

// GroupFresh is how long a stored group (or the list of our groups) is
// served without asking WhatsApp: changes arrive as events meanwhile, so
// the record stays right while connected; asking again after an hour
// repairs what was missed while offline.
const GroupFresh = time.Hour

// Fresh says whether the group may still be served at now.
func (g Group) Fresh(now time.Time) bool {
	return !g.FetchedAt.IsZero() && now.Before(g.FetchedAt.Add(GroupFresh))
}

// GroupView is a group as the API and the group events show it: the
// record without the primary's bookkeeping.
type GroupView struct {
	JID              string             `json:"jid"`
	Name             string             `json:"name"`
	NameSetAt        time.Time          `json:"name_set_at,omitzero"`
	NameSetBy        string             `json:"name_set_by,omitempty"`
	Description      string             `json:"description"`
	DescriptionSetAt time.Time          `json:"description_set_at,omitzero"`
	DescriptionSetBy string             `json:"description_set_by,omitempty"`
	Owner            string             `json:"owner,omitempty"`
	CreatedAt        time.Time          `json:"created_at,omitzero"`
	Announce         bool               `json:"announce"`
	Locked           bool               `json:"locked"`
	JoinApproval     bool               `json:"join_approval"`
	AdminsAddMembers bool               `json:"admins_add_members"`
	Community        bool               `json:"community,omitempty"`
	Parent           string             `json:"parent,omitempty"`
	Size             int                `json:"size"`
	Participants     []GroupParticipant `json:"participants,omitempty"` // left out of lists
	Member           bool               `json:"member"`
	Admin            bool               `json:"admin"`
	InviteLink       string             `json:"invite_link,omitempty"`
	FetchedAt        time.Time          `json:"fetched_at,omitzero"`
}

// View is g as the API shows it.
func (g Group) View() GroupView {
	ps := g.Participants
	if ps == nil {
		ps = []GroupParticipant{}
	}
	return GroupView{JID: g.JID, Name: g.Name, NameSetAt: g.NameSetAt, NameSetBy: g.NameSetBy,
		Description: g.Description, DescriptionSetAt: g.DescriptionSetAt, DescriptionSetBy: g.DescriptionSetBy,
		Owner: g.Owner, CreatedAt: g.CreatedAt, Announce: g.Announce, Locked: g.Locked, JoinApproval: g.JoinApproval,
		AdminsAddMembers: g.AdminsAddMembers, Community: g.Community, Parent: g.Parent, Size: len(ps),
		Participants: ps, Member: g.Member, Admin: g.Admin, InviteLink: g.InviteLink, FetchedAt: g.FetchedAt}
}
