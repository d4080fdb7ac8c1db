package whatsapp

import (
	"context"
	"io"
)

// TEMPORARY: filled in by the profiles work of issue 19 before it lands.

func (d *Whatsmeow) Profiles(ctx context.Context, jids []string) ([]Profile, error) {
	return nil, errNotBuilt
}
func (d *Whatsmeow) ProfilePicture(ctx context.Context, jid string, preview bool) (Picture, error) {
	return Picture{}, errNotBuilt
}
func (d *Whatsmeow) FetchPicture(ctx context.Context, p Picture, maxBytes int64) (io.ReadCloser, error) {
	return nil, errNotBuilt
}
func (d *Whatsmeow) BusinessProfile(ctx context.Context, jid string) (BusinessProfile, error) {
	return BusinessProfile{}, errNotBuilt
}
func (d *Whatsmeow) SetPushName(ctx context.Context, name string) error { return errNotBuilt }
func (d *Whatsmeow) SetAbout(ctx context.Context, text string) error    { return errNotBuilt }
func (d *Whatsmeow) SetProfilePicture(ctx context.Context, jpeg []byte) (string, error) {
	return "", errNotBuilt
}
