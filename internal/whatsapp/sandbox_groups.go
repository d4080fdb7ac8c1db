package whatsapp

import "context"

// TEMPORARY: filled in by the groups work of issue 19 before it lands.

func (s *Sandbox) JoinedGroups(ctx context.Context) ([]Group, error) { return nil, errNotBuilt }
func (s *Sandbox) GroupInfo(ctx context.Context, group string) (Group, error) {
	return Group{}, errNotBuilt
}
func (s *Sandbox) CreateGroup(ctx context.Context, name string, participants []string) (Group, []ParticipantResult, error) {
	return Group{}, nil, errNotBuilt
}
func (s *Sandbox) UpdateParticipants(ctx context.Context, group string, action ParticipantAction, jids []string) ([]ParticipantResult, error) {
	return nil, errNotBuilt
}
func (s *Sandbox) GroupRequests(ctx context.Context, group string) ([]GroupRequest, error) {
	return nil, errNotBuilt
}
func (s *Sandbox) InviteLink(ctx context.Context, group string, reset bool) (string, error) {
	return "", errNotBuilt
}
func (s *Sandbox) GroupFromLink(ctx context.Context, link string) (Group, error) {
	return Group{}, errNotBuilt
}
func (s *Sandbox) JoinGroup(ctx context.Context, link string) (string, error) { return "", errNotBuilt }
func (s *Sandbox) LeaveGroup(ctx context.Context, group string) error         { return errNotBuilt }
func (s *Sandbox) SetGroupName(ctx context.Context, group, name string) error { return errNotBuilt }
func (s *Sandbox) SetGroupDescription(ctx context.Context, group, text string) error {
	return errNotBuilt
}
func (s *Sandbox) SetGroupPhoto(ctx context.Context, group string, jpeg []byte) (string, error) {
	return "", errNotBuilt
}
func (s *Sandbox) SetGroupSetting(ctx context.Context, group string, setting GroupSetting) error {
	return errNotBuilt
}
