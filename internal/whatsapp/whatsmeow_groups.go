package whatsapp

import "context"

// TEMPORARY: filled in by the groups work of issue 19 before it lands.

func (d *Whatsmeow) JoinedGroups(ctx context.Context) ([]Group, error) { return nil, errNotBuilt }
func (d *Whatsmeow) GroupInfo(ctx context.Context, group string) (Group, error) {
	return Group{}, errNotBuilt
}
func (d *Whatsmeow) CreateGroup(ctx context.Context, name string, participants []string) (Group, []ParticipantResult, error) {
	return Group{}, nil, errNotBuilt
}
func (d *Whatsmeow) UpdateParticipants(ctx context.Context, group string, action ParticipantAction, jids []string) ([]ParticipantResult, error) {
	return nil, errNotBuilt
}
func (d *Whatsmeow) GroupRequests(ctx context.Context, group string) ([]GroupRequest, error) {
	return nil, errNotBuilt
}
func (d *Whatsmeow) InviteLink(ctx context.Context, group string, reset bool) (string, error) {
	return "", errNotBuilt
}
func (d *Whatsmeow) GroupFromLink(ctx context.Context, link string) (Group, error) {
	return Group{}, errNotBuilt
}
func (d *Whatsmeow) JoinGroup(ctx context.Context, link string) (string, error) {
	return "", errNotBuilt
}
func (d *Whatsmeow) LeaveGroup(ctx context.Context, group string) error         { return errNotBuilt }
func (d *Whatsmeow) SetGroupName(ctx context.Context, group, name string) error { return errNotBuilt }
func (d *Whatsmeow) SetGroupDescription(ctx context.Context, group, text string) error {
	return errNotBuilt
}
func (d *Whatsmeow) SetGroupPhoto(ctx context.Context, group string, jpeg []byte) (string, error) {
	return "", errNotBuilt
}
func (d *Whatsmeow) SetGroupSetting(ctx context.Context, group string, setting GroupSetting) error {
	return errNotBuilt
}
