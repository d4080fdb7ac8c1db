package whatsapp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/proto/waMmsRetry"
	"go.mau.fi/whatsmeow/socket"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// errMediaTooLarge is returned by Download for media over maxBytes.
var errMediaTooLarge = errors.New("whatsapp: media too large")

type maxBytesKey struct{}

// limitTransport cuts media downloads at the limit Download put in the
// request's context, so a lying size in the message cannot make us read
// more than allowed.
type limitTransport struct{ base http.RoundTripper }

func (t *limitTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.base.RoundTrip(req)
	if err != nil || resp == nil {
		return resp, err
	}
	if limit, ok := req.Context().Value(maxBytesKey{}).(int64); ok {
		// Fail in the body, not here: whatsmeow retries transport errors.
		left := limit
		if resp.ContentLength > limit {
			left = -1
		}
		resp.Body = &limitedBody{ReadCloser: resp.Body, left: left}
	}
	return resp, nil
}

type limitedBody struct {
	io.ReadCloser
	left int64
}

func (b *limitedBody) Read(p []byte) (int, error) {
	if b.left < 0 {
		return 0, errMediaTooLarge
	}
	if int64(len(p)) > b.left+1 {
		p = p[:b.left+1]
	}
	n, err := b.ReadCloser.Read(p)
	b.left -= int64(n)
	if b.left < 0 {
		return n, errMediaTooLarge
	}
	return n, err
}

// Download implements Driver. The file is decrypted in a temporary file
// (unlinked at once, so nothing stays if the process dies), not in memory;
// closing the reader removes it. The media is m.Handle, or, after a
// restart, what m.Retry keeps. WhatsApp's servers keep a file for a few
// weeks: a 403, 404 or 410 is ErrMediaGone, and RetryMedia asks the
// sender's phone for it.
func (d *Whatsmeow) Download(ctx context.Context, m *Media, maxBytes int64) (io.ReadCloser, error) {
	if m == nil {
		return nil, errors.New("whatsapp: download: no media")
	}
	handle, ok := m.Handle.(whatsmeow.DownloadableMessage)
	if (!ok || handle == nil) && m.Handle == nil && len(m.Retry) > 0 {
		r, err := decodeMediaRetry(m.Retry)
		if err != nil {
			return nil, fmt.Errorf("whatsapp: download: %w", err)
		}
		handle, ok = r.handle, true
	}
	if !ok || handle == nil {
		return nil, errors.New("whatsapp: download: media has no whatsmeow handle")
	}
	if maxBytes <= 0 {
		return nil, errors.New("whatsapp: download: no byte limit")
	}
	if m.Size > maxBytes {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", errMediaTooLarge, m.Size, maxBytes)
	}
	if d == nil {
		return nil, ErrNotConnected
	}
	cli := d.current()
	if cli == nil {
		return nil, ErrNotConnected
	}
	f, err := os.CreateTemp("", "app-media-*")
	if err != nil {
		return nil, fmt.Errorf("whatsapp: download: %w", err)
	}
	_ = os.Remove(f.Name())
	// The encrypted file is the plaintext padded to 16 bytes plus a 10-byte MAC.
	err = cli.DownloadToFile(context.WithValue(ctx, maxBytesKey{}, maxBytes+16+10), handle, f)
	switch {
	case err == nil:
	case errors.Is(err, whatsmeow.ErrFileLengthMismatch), errors.Is(err, whatsmeow.ErrInvalidMediaSHA256):
		// Like mautrix-whatsapp: a size or plaintext-hash mismatch after a
		// valid MAC is a warning, not a failure.
		d.log.Warn().Err(err).Msg("The downloaded media does not match its metadata; kept as it is.")
	case errors.Is(err, whatsmeow.ErrMediaDownloadFailedWith403), errors.Is(err, whatsmeow.ErrMediaDownloadFailedWith404),
		errors.Is(err, whatsmeow.ErrMediaDownloadFailedWith410):
		_ = f.Close()
		return nil, fmt.Errorf("whatsapp: download: %w (%w)", ErrMediaGone, err)
	default:
		_ = f.Close()
		return nil, fmt.Errorf("whatsapp: download: %w", err)
	}
	st, err := f.Stat()
	if err == nil && st.Size() > maxBytes {
		err = fmt.Errorf("%w: %d bytes, limit %d", errMediaTooLarge, st.Size(), maxBytes)
	}
	if err == nil {
		_, err = f.Seek(0, io.SeekStart)
	}
	if err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("whatsapp: download: %w", err)
	}
	return f, nil
}

// mediaRetryVersion is the version of Media.Retry's encoding.
const mediaRetryVersion = 1

// mediaRetry is what Media.Retry keeps of an incoming media message, so
// that after a restart the driver can still download its file and ask the
// sender's phone for it again: the message as WhatsApp named it (the
// phone finds it by chat, sender and id, in the addressing it was sent
// in) and the media message itself, which holds the media key and the
// file's paths and hashes. JSON, versioned: it lives in the store.
type mediaRetry struct {
	V      int    `json:"v"`
	ID     string `json:"id"`
	Chat   string `json:"chat"`
	Sender string `json:"sender"`
	FromMe bool   `json:"from_me,omitempty"`
	Group  bool   `json:"group,omitempty"`
	// Type is the media message's protobuf name (ImageMessage, ...),
	// Message the message, marshaled.
	Type    string `json:"type"`
	Message []byte `json:"message"`

	handle whatsmeow.DownloadableMessage
}

// encodeMediaRetry is Media.Retry for media message x of the message info.
// Thumbnails and the quoted message are left out: not needed to download,
// and they can be large.
func encodeMediaRetry(info types.MessageInfo, x whatsmeow.DownloadableMessage) ([]byte, error) {
	pm, ok := x.(proto.Message)
	if !ok {
		return nil, fmt.Errorf("media of type %T is not a protobuf message", x)
	}
	c := proto.Clone(pm)
	fields := c.ProtoReflect().Descriptor().Fields()
	for _, name := range []protoreflect.Name{"JPEGThumbnail", "pngThumbnail", "contextInfo"} {
		if fd := fields.ByName(name); fd != nil {
			c.ProtoReflect().Clear(fd)
		}
	}
	b, err := proto.Marshal(c)
	if err != nil {
		return nil, err
	}
	return json.Marshal(mediaRetry{
		V: mediaRetryVersion, ID: info.ID, Chat: info.Chat.String(), Sender: info.Sender.String(),
		FromMe: info.IsFromMe, Group: info.IsGroup, Type: string(pm.ProtoReflect().Descriptor().Name()), Message: b,
	})
}

// decodeMediaRetry reads Media.Retry.
func decodeMediaRetry(b []byte) (mediaRetry, error) {
	var r mediaRetry
	if err := json.Unmarshal(b, &r); err != nil {
		return r, fmt.Errorf("media retry data: %w", err)
	}
	if r.V != mediaRetryVersion {
		return r, fmt.Errorf("media retry data of version %d, want %d", r.V, mediaRetryVersion)
	}
	var x interface {
		proto.Message
		whatsmeow.DownloadableMessage
	}
	switch r.Type {
	case "ImageMessage":
		x = &waE2E.ImageMessage{}
	case "VideoMessage":
		x = &waE2E.VideoMessage{}
	case "AudioMessage":
		x = &waE2E.AudioMessage{}
	case "DocumentMessage":
		x = &waE2E.DocumentMessage{}
	case "StickerMessage":
		x = &waE2E.StickerMessage{}
	default:
		return r, fmt.Errorf("media retry data for a %q", r.Type)
	}
	if err := proto.Unmarshal(r.Message, x); err != nil {
		return r, fmt.Errorf("media retry data: %w", err)
	}
	r.handle = x
	return r, nil
}

// info is the message info SendMediaRetryReceipt names the message by.
func (r mediaRetry) info() (types.MessageInfo, error) {
	chat, err := types.ParseJID(r.Chat)
	if err != nil {
		return types.MessageInfo{}, fmt.Errorf("media retry data: chat: %w", err)
	}
	sender, err := types.ParseJID(r.Sender)
	if err != nil {
		return types.MessageInfo{}, fmt.Errorf("media retry data: sender: %w", err)
	}
	return types.MessageInfo{
		ID:            r.ID,
		MessageSource: types.MessageSource{Chat: chat, Sender: sender, IsFromMe: r.FromMe, IsGroup: r.Group},
	}, nil
}

// withDirectPath is media x at the path the sender's phone uploaded it to
// again. The old URL goes: whatsmeow downloads by URL when there is one.
// The media messages (image, video, audio, document, sticker) name both
// fields alike; x is returned as it is when it has not both.
func withDirectPath(x whatsmeow.DownloadableMessage, path string) whatsmeow.DownloadableMessage {
	m := proto.Clone(x.(proto.Message))
	r := m.ProtoReflect()
	fields := r.Descriptor().Fields()
	dp, url := fields.ByName("directPath"), fields.ByName("URL")
	if dp == nil || url == nil {
		return x
	}
	r.Set(dp, protoreflect.ValueOfString(path))
	r.Clear(url)
	return m.(whatsmeow.DownloadableMessage)
}

// mediaOf is the Media of media message x.
func mediaOf(x whatsmeow.DownloadableMessage, retry []byte) *Media {
	m := &Media{SHA256: x.GetFileSHA256(), Handle: x, Retry: retry}
	if v, ok := x.(interface{ GetMimetype() string }); ok {
		m.MimeType = v.GetMimetype()
	}
	if v, ok := x.(interface{ GetFileLength() uint64 }); ok {
		m.Size = int64(v.GetFileLength())
	}
	if doc, ok := x.(*waE2E.DocumentMessage); ok {
		m.FileName = doc.GetFileName()
		if m.FileName == "" {
			m.FileName = doc.GetTitle()
		}
	}
	return m
}

// pendingRetry is a media retry asked for: the message as the primary
// knows it (chat and sender as reported) and what the answer needs.
type pendingRetry struct {
	chat, sender string
	retry        mediaRetry
	at           time.Time
}

// wmRetryMemory is how long a media retry waits for the phone's answer.
// Only in memory: an answer that comes after a restart is not matched,
// and the primary asks again.
const wmRetryMemory = 24 * time.Hour

// RetryMedia implements Driver: a media retry receipt to our phone (which
// relays it to the sender's), encrypted with the file's media key; the
// answer comes as events.MediaRetry (mediaRetried).
func (d *Whatsmeow) RetryMedia(ctx context.Context, m *Incoming) error {
	cli, err := d.loggedIn()
	if err != nil {
		return err
	}
	info, key, err := d.expectRetry(m)
	if err != nil {
		return fmt.Errorf("whatsapp: retry media: %w", err)
	}
	if err := cli.SendMediaRetryReceipt(ctx, &info, key); err != nil {
		d.forgetRetry(types.MessageID(info.ID))
		return actionError("retry media", err)
	}
	return nil
}

// expectRetry reads what m.Media.Retry keeps and remembers that an answer
// is due: the message info and the media key the retry receipt needs.
func (d *Whatsmeow) expectRetry(m *Incoming) (types.MessageInfo, []byte, error) {
	if m == nil || m.Media == nil || len(m.Media.Retry) == 0 {
		return types.MessageInfo{}, nil, errors.New("the message keeps no retry data")
	}
	r, err := decodeMediaRetry(m.Media.Retry)
	if err != nil {
		return types.MessageInfo{}, nil, err
	}
	info, err := r.info()
	if err != nil {
		return types.MessageInfo{}, nil, err
	}
	key := r.handle.GetMediaKey()
	if len(key) == 0 {
		return types.MessageInfo{}, nil, errors.New("the media has no key")
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.retries == nil {
		d.retries = map[types.MessageID]pendingRetry{}
	}
	now := d.now()
	for k, p := range d.retries {
		if now.Sub(p.at) > wmRetryMemory {
			delete(d.retries, k)
		}
	}
	d.retries[types.MessageID(info.ID)] = pendingRetry{chat: m.Chat, sender: m.Sender, retry: r, at: now}
	return info, key, nil
}

// mediaRetried is the answer to a media retry we asked for; false when we
// did not ask (or no longer remember).
func (d *Whatsmeow) mediaRetried(e *events.MediaRetry) (*MediaRetried, bool) {
	d.mu.Lock()
	p, ok := d.retries[e.MessageID]
	d.mu.Unlock()
	if !ok {
		d.log.Debug().Str("id", e.MessageID).Msg("A media retry answer came for a message we did not ask about; ignored.")
		return nil, false
	}
	out := &MediaRetried{ID: string(e.MessageID), Chat: p.chat, Sender: p.sender}
	if out.Chat == "" {
		out.Chat, out.Sender = p.retry.Chat, p.retry.Sender
	}
	notif, err := whatsmeow.DecryptMediaRetryNotification(e, p.retry.handle.GetMediaKey())
	switch {
	case err != nil:
		out.Error = err.Error()
	case notif.GetResult() != waMmsRetry.MediaRetryNotification_SUCCESS:
		out.Error = "the phone could not upload the file again: " + notif.GetResult().String()
	case notif.GetDirectPath() == "":
		out.Error = "the phone's answer has no path to the file"
	default:
		h := withDirectPath(p.retry.handle, notif.GetDirectPath())
		info, _ := p.retry.info() // it was read before asking
		retry, err := encodeMediaRetry(info, h)
		if err != nil {
			d.log.Warn().Err(err).Str("id", e.MessageID).Msg("Cannot keep what a media retry needs; the file cannot be asked for again.")
		}
		out.Media = mediaOf(h, retry)
	}
	if out.Error != "" {
		d.log.Info().Str("id", e.MessageID).Str("error", out.Error).Msg("The sender's phone could not send the file again.")
	}
	return out, true
}

// forgetRetry drops a media retry once answered (or failed to be asked).
func (d *Whatsmeow) forgetRetry(id types.MessageID) {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.retries, id)
}

// actionError is err of whatsmeow doing op: ErrNotConnected while offline.
func actionError(op string, err error) error {
	var disc *whatsmeow.DisconnectedError
	switch {
	case errors.Is(err, whatsmeow.ErrNotConnected), errors.Is(err, whatsmeow.ErrNotLoggedIn),
		errors.Is(err, whatsmeow.ErrClientIsNil), errors.Is(err, socket.ErrSocketClosed), errors.As(err, &disc):
		return ErrNotConnected
	}
	return fmt.Errorf("whatsapp: %s: %w", op, err)
}
