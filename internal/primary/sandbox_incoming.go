package primary

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"app/internal/msg"
	"app/internal/whatsapp"
)

// The sandbox.incoming and sandbox.call commands: what the sandbox routes
// inject, from fields the HTTP route checked (docs/SANDBOX.md), so what
// is left to fail here is a worker of another version.

// sandboxMediaTypes are the MIME types an injected file has by default.
var sandboxMediaTypes = map[string]string{msg.KindImage: "image/jpeg", msg.KindVideo: "video/mp4", msg.KindAudio: "audio/mpeg",
	msg.KindVoice: "audio/ogg; codecs=opus", msg.KindDocument: "application/pdf", msg.KindSticker: "image/webp"}

// sandboxIncoming is the message the command's fields a describe; id is
// its WhatsApp id.
func sandboxIncoming(id string, a map[string]string) (whatsapp.Incoming, error) {
	m := whatsapp.Incoming{ID: id, Chat: a["chat"], Sender: a["sender"], PushName: a["push_name"], ReplyTo: a["reply_to"],
		ChatName: a["chat_name"], FromMe: a["from_me"] == "true", Text: a["text"]}
	m.Kind = a["kind"]
	if m.Kind == "" {
		m.Kind = msg.KindText
	}
	if a["target_wa_id"] != "" {
		m.Target = &msg.Target{WAID: a["target_wa_id"], Chat: m.Chat, Sender: a["target_sender"], FromMe: a["target_from_me"] == "true"}
	}
	number := func(k string) (float64, error) {
		f, err := strconv.ParseFloat(a[k], 64)
		if err != nil {
			return 0, fmt.Errorf("%s: %w", k, err)
		}
		return f, nil
	}
	list := func(k string, v any) error {
		if a[k] == "" {
			return nil
		}
		if err := json.Unmarshal([]byte(a[k]), v); err != nil {
			return fmt.Errorf("%s: %w", k, err)
		}
		return nil
	}
	switch m.Kind {
	case msg.KindImage, msg.KindVideo, msg.KindAudio, msg.KindVoice, msg.KindDocument, msg.KindSticker:
		size := int64(1024)
		if a["size"] != "" {
			f, err := number("size")
			if err != nil {
				return m, err
			}
			size = int64(f)
		}
		mt := a["mime_type"]
		if mt == "" {
			mt = sandboxMediaTypes[m.Kind]
		}
		data := sandboxMediaBytes(m.Kind, size)
		sum := sha256.Sum256(data)
		m.Text = a["caption"]
		m.Media = &whatsapp.Media{MimeType: mt, Size: size, FileName: a["file_name"], Caption: a["caption"], SHA256: sum[:], Handle: data}
	case msg.KindLocation:
		lat, err := number("latitude")
		if err != nil {
			return m, err
		}
		lng, err := number("longitude")
		if err != nil {
			return m, err
		}
		m.Location = &msg.Location{Latitude: lat, Longitude: lng, Name: a["name"], Address: a["address"]}
	case msg.KindContacts:
		var cs []struct {
			Name   string   `json:"name"`
			Phones []string `json:"phones"`
		}
		if err := list("contacts", &cs); err != nil {
			return m, err
		}
		for _, c := range cs {
			m.Contacts = append(m.Contacts, msg.Contact{Name: c.Name, Phones: c.Phones, VCard: msg.VCard(c.Name, c.Phones)})
		}
	case msg.KindPoll:
		p := &msg.Poll{Question: a["question"], Selectable: 1}
		if err := list("options", &p.Options); err != nil {
			return m, err
		}
		if a["selectable"] != "" {
			f, err := number("selectable")
			if err != nil {
				return m, err
			}
			p.Selectable = int(f)
		}
		m.Poll, m.Text = p, p.Question
	case msg.KindPollVote:
		// WhatsApp sends a vote's options as hashes: the primary names them.
		var names []string
		if err := list("vote", &names); err != nil {
			return m, err
		}
		for _, n := range names {
			m.VoteHashes = append(m.VoteHashes, whatsapp.PollOptionHash(n))
		}
	case msg.KindReaction:
		m.Reaction = a["emoji"]
		if m.Target != nil {
			m.ReactionTo = m.Target.WAID
		}
	}
	return m, nil
}

// sandboxMessageID is the id of what a command injects, the same each
// time the command runs (see sandbox.incoming).
func sandboxMessageID(commandID string) string {
	sum := sha256.Sum256([]byte(commandID))
	return strings.ToUpper(hex.EncodeToString(sum[:9]))
}

// sandboxMediaBytes are an injected file's bytes: its kind's name
// repeated to size.
func sandboxMediaBytes(kind string, size int64) []byte {
	unit := []byte("sandbox " + kind + " ")
	return bytes.Repeat(unit, int(size)/len(unit)+1)[:size]
}

// sandboxCall is the call the sandbox.call command offers.
func sandboxCall(commandID string, a map[string]string) whatsapp.Call {
	return whatsapp.Call{ID: sandboxMessageID("call\x00" + commandID), From: a["from"], Chat: a["group"], Video: a["video"] == "true"}
}
