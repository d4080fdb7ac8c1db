package whatsapp

import (
	"context"
	"io"
)

// TEMPORARY: filled in by the profiles work of issue 19 before it lands.

func (s *Sandbox) Profiles(ctx context.Context, jids []string) ([]Profile, error) {
	return nil, errNotBuilt
}
func (s *Sandbox) ProfilePicture(ctx context.Context, jid string, preview bool) (Picture, error) {
	return Picture{}, errNotBuilt
}
func (s *Sandbox) FetchPicture(ctx context.Context, p Picture, maxBytes int64) (io.ReadCloser, error) {
	return nil, errNotBuilt
}
func (s *Sandbox) BusinessProfile(ctx context.Context, jid string) (BusinessProfile, error) {
	return BusinessProfile{}, errNotBuilt
}
func (s *Sandbox) SetPushName(ctx context.Context, name string) error { return errNotBuilt }
func (s *Sandbox) SetAbout(ctx context.Context, text string) error    { return errNotBuilt }
func (s *Sandbox) SetProfilePicture(ctx context.Context, jpeg []byte) (string, error) {
	return "", errNotBuilt
}
