package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"app/internal/msg"
	"app/internal/store"
	"app/internal/testutil"
	"app/internal/whatsapp"
)

// Files of each type as WhatsApp takes them, enough for content sniffing.
var (
	jpegFile = append([]byte("\xff\xd8\xff\xe0\x00\x10JFIF\x00"), bytes.Repeat([]byte{1}, 200)...)
	webpFile = append([]byte("RIFF\x00\x01\x00\x00WEBPVP8 "), bytes.Repeat([]byte{2}, 200)...)
	mp4File  = append([]byte("\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom"), bytes.Repeat([]byte{3}, 200)...)
	mp3File  = append([]byte("ID3\x03\x00\x00\x00\x00\x00\x00"), bytes.Repeat([]byte{4}, 200)...)
	pdfFile  = []byte("%PDF-1.4 an invoice")
	// An Ogg page (27 bytes and a one-entry segment table), then its
	// packet: the codec's header.
	opusFile   = append([]byte("OggS\x00\x02"+strings.Repeat("\x00", 20)+"\x01\x13OpusHead\x01\x01"), bytes.Repeat([]byte{5}, 200)...)
	vorbisFile = append([]byte("OggS\x00\x02"+strings.Repeat("\x00", 20)+"\x01\x1e\x01vorbis\x00\x00"), bytes.Repeat([]byte{6}, 200)...)
)

func (e msgEnv) upload(t *testing.T, data []byte, ctype string) string {
	t.Helper()
	r := do(t, "POST", e.url+"/v1/media", bytes.NewReader(data), with(e.writer, "Content-Type", ctype))
	if r.status != 201 {
		t.Fatalf("upload %s: %d %v", ctype, r.status, r.body)
	}
	return r.body["id"].(string)
}

// post queues body and returns the message's id.
func (e msgEnv) post(t *testing.T, body string) string {
	t.Helper()
	r := do(t, "POST", e.url+"/v1/messages", strings.NewReader(body), e.writer)
	if r.status != 202 {
		t.Fatalf("POST %s: %d %v", body, r.status, r.body)
	}
	return r.body["id"].(string)
}

// sent waits until message id reached sent (or further) and returns its
// view and what the sandbox was given for it.
func (e msgEnv) sent(t *testing.T, id string) (map[string]any, whatsapp.Outgoing) {
	t.Helper()
	var got reply
	testutil.Eventually(t, 10*time.Second, id+" sent", func() (bool, string) {
		got = do(t, "GET", e.url+"/v1/messages/"+id, nil, e.reader)
		st, _ := got.body["status"].(string)
		return store.StatusRank(st) >= store.StatusRank(store.StatusSent) && st != store.StatusFailed, fmt.Sprint(got.body)
	})
	var out []whatsapp.Outgoing
	for _, s := range e.sb.Sent() {
		if s.ID == got.body["wa_id"] {
			out = append(out, s)
		}
	}
	if len(out) != 1 {
		t.Fatalf("%s: the sandbox got %d sends with its id, want 1", id, len(out))
	}
	return got.body, out[0]
}

func (e msgEnv) get(t *testing.T, id string) map[string]any {
	t.Helper()
	r := do(t, "GET", e.url+"/v1/messages/"+id, nil, e.reader)
	if r.status != 200 {
		t.Fatalf("GET %s: %d %v", id, r.status, r.body)
	}
	return r.body
}

// Every kind is accepted, reaches sent, and the driver is given exactly
// what was asked for; a sent edit and revoke show on their target.
func TestEveryKindIsSent(t *testing.T) {
	e := messageServer(t, 1<<20)
	const alice, bob = "491701234567@s.whatsapp.net", "491709876543@s.whatsapp.net"
	ctx := context.Background()

	// What the reactions, the edit, the revoke and the forward are about:
	// two texts of ours, and one of Alice's.
	first := e.post(t, `{"to":"+491701234567","text":"Your order shipped."}`)
	second := e.post(t, `{"to":"+491701234567","text":"Sent by mistake"}`)
	third := e.post(t, `{"to":"+491701234567","text":"Our address: Hauptstr. 1"}`) // forwarded
	firstView, _ := e.sent(t, first)
	secondView, _ := e.sent(t, second)
	e.sent(t, third)
	inc := e.sb.Inject(whatsapp.Incoming{Chat: alice, Text: "Thanks!", PushName: "Alice"})
	testutil.Eventually(t, 10*time.Second, "Alice's message stored", func() (bool, string) {
		_, err := e.st.IncomingByWAID(ctx, alice, inc.ID)
		return err == nil, fmt.Sprint(err)
	})

	jpeg, mp4, mp3 := e.upload(t, jpegFile, "image/jpeg"), e.upload(t, mp4File, "video/mp4"), e.upload(t, mp3File, "audio/mpeg")
	opus, pdf, webp := e.upload(t, opusFile, "audio/ogg"), e.upload(t, pdfFile, "application/pdf"), e.upload(t, webpFile, "image/webp")
	pic := e.post(t, `{"to":"+491701234567","type":"image","media_id":"`+jpeg+`","text":"The parcel"}`) // forwarded below
	e.sent(t, pic)

	type sentCheck func(t *testing.T, o whatsapp.Outgoing, view map[string]any)
	media := func(kind string, data []byte, caption string) sentCheck {
		return func(t *testing.T, o whatsapp.Outgoing, view map[string]any) {
			if o.Kind != kind || o.Media == nil || !bytes.Equal(o.Media.Data, data) || o.Text != caption {
				t.Errorf("sent %s %+v, want %s of %d bytes, caption %q", o.Kind, o.Media, kind, len(data), caption)
			}
		}
	}
	cases := []struct {
		name, body string
		check      sentCheck
	}{
		{"text with a mention", `{"to":"+491701234567","type":"text","text":"Hi @491709876543, meet Alice","mentions":["+491709876543"]}`,
			func(t *testing.T, o whatsapp.Outgoing, view map[string]any) {
				if o.Kind != msg.KindText || o.Text != "Hi @491709876543, meet Alice" || !slices.Equal(o.Mentions, []string{bob}) {
					t.Errorf("sent %s %q mentions %v", o.Kind, o.Text, o.Mentions)
				}
			}},
		{"a reply by our id", `{"to":"+491701234567","text":"About that:","reply_to":"` + first + `"}`,
			func(t *testing.T, o whatsapp.Outgoing, view map[string]any) {
				if o.ReplyTo != firstView["wa_id"] || !o.ReplyToFromMe {
					t.Errorf("reply to %q (from me: %t), want %v", o.ReplyTo, o.ReplyToFromMe, firstView["wa_id"])
				}
			}},
		{"a reply to Alice", `{"to":"+491701234567","text":"You're welcome","reply_to":"` + inc.ID + `"}`,
			func(t *testing.T, o whatsapp.Outgoing, view map[string]any) {
				if o.ReplyTo != inc.ID || o.ReplyToFromMe || o.ReplyToSender != alice {
					t.Errorf("reply to %q by %q (from me: %t), want %s by Alice", o.ReplyTo, o.ReplyToSender, o.ReplyToFromMe, inc.ID)
				}
			}},
		{"image", `{"to":"+491701234567","type":"image","media_id":"` + jpeg + `","text":"The parcel"}`, media(msg.KindImage, jpegFile, "The parcel")},
		{"video", `{"to":"+491701234567","type":"video","media_id":"` + mp4 + `"}`, media(msg.KindVideo, mp4File, "")},
		{"audio", `{"to":"+491701234567","type":"audio","media_id":"` + mp3 + `"}`, media(msg.KindAudio, mp3File, "")},
		{"voice", `{"to":"+491701234567","type":"voice","media_id":"` + opus + `"}`, media(msg.KindVoice, opusFile, "")},
		{"document", `{"to":"+491701234567","type":"document","media_id":"` + pdf + `","text":"Invoice"}`, media(msg.KindDocument, pdfFile, "Invoice")},
		{"sticker", `{"to":"+491701234567","type":"sticker","media_id":"` + webp + `"}`, media(msg.KindSticker, webpFile, "")},
		{"untyped media, by its type", `{"to":"+491701234567","media_id":"` + mp4 + `","text":"clip"}`, media(msg.KindVideo, mp4File, "clip")},
		{"location", `{"to":"+491701234567","type":"location","location":{"latitude":52.5163,"longitude":13.3777,"name":"Brandenburger Tor","address":"Pariser Platz, Berlin"}}`,
			func(t *testing.T, o whatsapp.Outgoing, view map[string]any) {
				want := msg.Location{Latitude: 52.5163, Longitude: 13.3777, Name: "Brandenburger Tor", Address: "Pariser Platz, Berlin"}
				if o.Kind != msg.KindLocation || o.Location == nil || *o.Location != want {
					t.Errorf("sent %s %+v, want %+v", o.Kind, o.Location, want)
				}
				if loc, _ := view["location"].(map[string]any); loc["name"] != "Brandenburger Tor" {
					t.Errorf("the view's location: %v", view["location"])
				}
			}},
		{"contacts", `{"to":"+491701234567","type":"contacts","contacts":[{"name":"Doe, Jane; CEO","phones":["+49 170 111-2222","+1 (555) 010 0000"]},` +
			`{"name":"Bob","vcard":"BEGIN:VCARD\nVERSION:3.0\nFN:Bob\nTEL;waid=491709876543:+491709876543\nEND:VCARD"}]}`,
			func(t *testing.T, o whatsapp.Outgoing, view map[string]any) {
				if o.Kind != msg.KindContacts || len(o.Contacts) != 2 {
					t.Fatalf("sent %s %+v", o.Kind, o.Contacts)
				}
				jane := o.Contacts[0]
				want := "BEGIN:VCARD\r\nVERSION:3.0\r\nN:;Doe\\, Jane\\; CEO;;;\r\nFN:Doe\\, Jane\\; CEO\r\n" +
					"TEL;type=CELL;waid=491701112222:+491701112222\r\nTEL;type=CELL;waid=15550100000:+15550100000\r\nEND:VCARD\r\n"
				if jane.Name != "Doe, Jane; CEO" || jane.VCard != want || !slices.Equal(jane.Phones, []string{"+491701112222", "+15550100000"}) {
					t.Errorf("the built card: %+v\nwant vCard %q", jane, want)
				}
				if o.Contacts[1].Name != "Bob" || !strings.HasPrefix(o.Contacts[1].VCard, "BEGIN:VCARD\nVERSION:3.0\nFN:Bob") {
					t.Errorf("the given card: %+v", o.Contacts[1])
				}
			}},
		{"poll", `{"to":"+491701234567","type":"poll","poll":{"question":"Delivery slot?","options":["Morning","Afternoon","Evening"],"selectable":1}}`,
			func(t *testing.T, o whatsapp.Outgoing, view map[string]any) {
				if o.Kind != msg.KindPoll || o.Poll == nil || o.Poll.Question != "Delivery slot?" || o.Text != "Delivery slot?" ||
					!slices.Equal(o.Poll.Options, []string{"Morning", "Afternoon", "Evening"}) || o.Poll.Selectable != 1 {
					t.Errorf("sent %s %+v text %q", o.Kind, o.Poll, o.Text)
				}
			}},
		{"reaction to ours", `{"to":"+491701234567","type":"reaction","target":{"id":"` + first + `"},"emoji":"👍🏽"}`,
			func(t *testing.T, o whatsapp.Outgoing, view map[string]any) {
				want := msg.Target{ID: first, WAID: firstView["wa_id"].(string), Chat: alice, FromMe: true}
				if o.Kind != msg.KindReaction || o.Reaction != "👍🏽" || o.Target == nil || *o.Target != want {
					t.Errorf("sent %s %q on %+v, want on %+v", o.Kind, o.Reaction, o.Target, want)
				}
			}},
		{"reaction to Alice's", `{"to":"+491701234567","type":"reaction","target":{"wa_id":"` + inc.ID + `"},"emoji":"❤️"}`,
			func(t *testing.T, o whatsapp.Outgoing, view map[string]any) {
				want := msg.Target{WAID: inc.ID, Chat: alice, Sender: alice}
				if o.Kind != msg.KindReaction || o.Reaction != "❤️" || o.Target == nil || *o.Target != want {
					t.Errorf("sent %s %q on %+v, want on %+v", o.Kind, o.Reaction, o.Target, want)
				}
			}},
		{"reaction removed", `{"to":"+491701234567","type":"reaction","target":{"id":"` + first + `"},"emoji":""}`,
			func(t *testing.T, o whatsapp.Outgoing, view map[string]any) {
				if o.Kind != msg.KindReaction || o.Reaction != "" || o.Target == nil || o.Target.WAID != firstView["wa_id"] {
					t.Errorf("sent %s %q on %+v", o.Kind, o.Reaction, o.Target)
				}
			}},
		{"edit", `{"to":"+491701234567","type":"edit","target":{"id":"` + first + `"},"text":"Your order shipped today."}`,
			func(t *testing.T, o whatsapp.Outgoing, view map[string]any) {
				if o.Kind != msg.KindEdit || o.Text != "Your order shipped today." || o.Target == nil || o.Target.WAID != firstView["wa_id"] || !o.Target.FromMe {
					t.Errorf("sent %s %q on %+v", o.Kind, o.Text, o.Target)
				}
			}},
		{"revoke", `{"to":"+491701234567","type":"revoke","target":{"wa_id":"` + secondView["wa_id"].(string) + `"}}`,
			func(t *testing.T, o whatsapp.Outgoing, view map[string]any) {
				want := msg.Target{ID: second, WAID: secondView["wa_id"].(string), Chat: alice, FromMe: true}
				if o.Kind != msg.KindRevoke || o.Target == nil || *o.Target != want {
					t.Errorf("sent %s on %+v, want on %+v", o.Kind, o.Target, want)
				}
			}},
		{"forward of ours", `{"to":"+491709876543","forward":{"id":"` + third + `"}}`,
			func(t *testing.T, o whatsapp.Outgoing, view map[string]any) {
				if o.Kind != msg.KindText || o.Chat != bob || o.Text != "Our address: Hauptstr. 1" || !o.Forwarded {
					t.Errorf("forwarded %s to %s %q (forwarded: %t)", o.Kind, o.Chat, o.Text, o.Forwarded)
				}
				if view["forward_of"] != third || view["forwarded"] != true {
					t.Errorf("the forward's view: %v", view)
				}
			}},
		{"forward of Alice's", `{"to":"+491709876543","forward":{"wa_id":"` + inc.ID + `","chat":"+491701234567"}}`,
			func(t *testing.T, o whatsapp.Outgoing, view map[string]any) {
				if o.Kind != msg.KindText || o.Chat != bob || o.Text != "Thanks!" || !o.Forwarded {
					t.Errorf("forwarded %s to %s %q (forwarded: %t)", o.Kind, o.Chat, o.Text, o.Forwarded)
				}
			}},
		{"forward of a file", `{"to":"+491709876543","type":"image","forward":{"id":"` + pic + `"}}`, media(msg.KindImage, jpegFile, "The parcel")},
	}
	ids := make([]string, len(cases))
	for i, c := range cases {
		ids[i] = e.post(t, c.body)
	}
	// The last, a content message: once it is delivered, any receipt due
	// for the earlier ones has come.
	last := e.post(t, `{"to":"+491701234567","text":"That's all."}`)
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			view, o := e.sent(t, ids[i])
			if view["kind"] != o.Kind {
				t.Errorf("the view's kind %v, the sandbox's %s", view["kind"], o.Kind)
			}
			c.check(t, o, view)
		})
	}
	testutil.Eventually(t, 10*time.Second, "the last message delivered", func() (bool, string) {
		v := e.get(t, last)
		return v["status"] == store.StatusDelivered, fmt.Sprint(v)
	})
	for i, c := range cases {
		v := e.get(t, ids[i])
		about := strings.HasPrefix(c.name, "reaction") || c.name == "edit" || c.name == "revoke"
		if delivered := v["status"] == store.StatusDelivered; delivered == about {
			t.Errorf("%s is %v: a reaction, an edit or a revoke has only the server's receipt, content is delivered", c.name, v["status"])
		}
	}

	// The edit and the revoke show on their targets, in GET and the
	// chat's history, the old text kept.
	edited := e.get(t, first)
	edits, _ := edited["edits"].([]any)
	if edited["text"] != "Your order shipped today." || len(edits) != 1 || edits[0].(map[string]any)["text"] != "Your order shipped." || edited["edited_at"] == nil {
		t.Errorf("the edited message: %v", edited)
	}
	if revoked := e.get(t, second); revoked["revoked_at"] == nil || revoked["text"] != "Sent by mistake" {
		t.Errorf("the revoked message: %v", revoked)
	}
	hist := do(t, "GET", e.url+"/v1/chats/%2B491701234567/messages?limit=200", nil, e.reader)
	kinds := map[string]bool{}
	for _, it := range hist.body["messages"].([]any) {
		it := it.(map[string]any)
		kinds[it["kind"].(string)] = true
		if it["id"] == first && (it["text"] != "Your order shipped today." || it["edits"] == nil) {
			t.Errorf("the history's edited message: %v", it)
		}
		if it["id"] == second && it["revoked_at"] == nil {
			t.Errorf("the history's revoked message: %v", it)
		}
	}
	for _, k := range []string{"text", "image", "video", "audio", "voice", "document", "sticker", "location", "contacts", "poll", "reaction", "edit", "revoke"} {
		if !kinds[k] {
			t.Errorf("the history has no %s: %v", k, kinds)
		}
	}
	// One message.updated event for each, naming the target.
	evs, err := e.st.Events(ctx, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	var updates []map[string]any
	for _, ev := range evs {
		if ev.Type == "message.updated" {
			var d map[string]any
			if err := json.Unmarshal(ev.Data, &d); err != nil {
				t.Fatal(err)
			}
			updates = append(updates, d)
		}
	}
	if len(updates) != 2 || updates[0]["id"] != first || updates[0]["change"] != "edited" || updates[0]["text"] != "Your order shipped today." ||
		updates[1]["id"] != second || updates[1]["change"] != "revoked" {
		t.Errorf("message.updated events: %v", updates)
	}
}

// Bad input is a 4xx naming the field or the reason, never a send.
func TestBadKindRequests(t *testing.T) {
	e := messageServer(t, 1<<20)
	const alice, group = "491701234567@s.whatsapp.net", "120363025246125486@g.us"
	ctx := context.Background()
	ours := e.post(t, `{"to":"+491701234567","text":"Our text"}`)
	oursView, _ := e.sent(t, ours)
	loc := e.post(t, `{"to":"+491701234567","type":"location","location":{"latitude":1,"longitude":2}}`)
	e.sent(t, loc)
	theirs := e.sb.Inject(whatsapp.Incoming{Chat: alice, Text: "Alice's"})
	// Sent from the phone 20 minutes ago: ours, past the edit window.
	old := store.IncomingMessage{WAID: "3EB0OLD", Chat: alice, Sender: whatsapp.SandboxJID, FromMe: true, Body: msg.Body{Kind: msg.KindText},
		Text: "old", SentAt: time.Now().Add(-20 * time.Minute), ReceivedAt: time.Now()}
	if _, err := e.st.SaveIncoming(ctx, old); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 10*time.Second, "Alice's message stored", func() (bool, string) {
		_, err := e.st.IncomingByWAID(ctx, alice, theirs.ID)
		return err == nil, fmt.Sprint(err)
	})
	png := e.upload(t, pngFile(100), "image/png")
	vorbis, webp, jpeg := e.upload(t, vorbisFile, "audio/ogg"), e.upload(t, webpFile, "image/webp"), e.upload(t, jpegFile, "image/jpeg")
	before := len(e.sb.Sent())

	to := `"to":"+491701234567",`
	for _, c := range []struct {
		name, body  string
		status      int
		field, code string
	}{
		{"an unknown type", `{` + to + `"type":"sticker pack"}`, 400, "type", "invalid"},
		{"a location without its type", `{` + to + `"location":{"latitude":1,"longitude":2}}`, 400, "location", "invalid"},
		{"a caption on audio", `{` + to + `"type":"audio","media_id":"` + vorbis + `","text":"hi"}`, 400, "text", "invalid"},
		{"text on a location", `{` + to + `"type":"location","text":"x","location":{"latitude":1,"longitude":2}}`, 400, "text", "invalid"},
		{"latitude over 90", `{` + to + `"type":"location","location":{"latitude":90.5,"longitude":2}}`, 400, "location.latitude", "invalid"},
		{"longitude under -180", `{` + to + `"type":"location","location":{"latitude":1,"longitude":-180.1}}`, 400, "location.longitude", "invalid"},
		{"a location without longitude", `{` + to + `"type":"location","location":{"latitude":1}}`, 400, "location.longitude", "invalid"},
		{"latitude as text", `{` + to + `"type":"location","location":{"latitude":"52","longitude":2}}`, 400, "location.latitude", "invalid"},
		{"a poll of one option", `{` + to + `"type":"poll","poll":{"question":"Q?","options":["Yes"]}}`, 400, "poll.options", "invalid"},
		{"a poll of duplicate options", `{` + to + `"type":"poll","poll":{"question":"Q?","options":["Yes","No","yes "]}}`, 400, "poll.options", "invalid"},
		{"a poll of 13 options", `{` + to + `"type":"poll","poll":{"question":"Q?","options":["1","2","3","4","5","6","7","8","9","10","11","12","13"]}}`, 400, "poll.options", "invalid"},
		{"a blank poll option", `{` + to + `"type":"poll","poll":{"question":"Q?","options":["Yes"," "]}}`, 400, "poll.options", "invalid"},
		{"more selectable than options", `{` + to + `"type":"poll","poll":{"question":"Q?","options":["a","b"],"selectable":3}}`, 400, "poll.selectable", "invalid"},
		{"a poll without a question", `{` + to + `"type":"poll","poll":{"question":" ","options":["a","b"]}}`, 400, "poll.question", "invalid"},
		{"a reaction of two emojis", `{` + to + `"type":"reaction","target":{"id":"` + ours + `"},"emoji":"👍👍"}`, 400, "emoji", "invalid"},
		{"a reaction of a letter", `{` + to + `"type":"reaction","target":{"id":"` + ours + `"},"emoji":"a"}`, 400, "emoji", "invalid"},
		{"a reaction of a word and an emoji", `{` + to + `"type":"reaction","target":{"id":"` + ours + `"},"emoji":"ok👍"}`, 400, "emoji", "invalid"},
		{"a reaction without emoji", `{` + to + `"type":"reaction","target":{"id":"` + ours + `"}}`, 400, "emoji", "invalid"},
		{"a reaction without target", `{` + to + `"type":"reaction","emoji":"👍"}`, 400, "target", "invalid"},
		{"a target by id and wa_id", `{` + to + `"type":"reaction","target":{"id":"` + ours + `","wa_id":"x"},"emoji":"👍"}`, 400, "target", "invalid"},
		{"a reaction in a group to a message not stored, no sender", `{"to":"` + group + `","type":"reaction","target":{"wa_id":"3EB0NOPE"},"emoji":"👍"}`, 400, "target.sender", "invalid"},
		{"a reaction to a message of another chat", `{"to":"+491709876543","type":"reaction","target":{"id":"` + ours + `"},"emoji":"👍"}`, 400, "target", "invalid"},
		{"mentions not in the text", `{` + to + `"text":"Hi all","mentions":["+491709876543"]}`, 400, "mentions", "invalid"},
		{"a mention of a longer number", `{` + to + `"text":"Hi @4917098765430","mentions":["+491709876543"]}`, 400, "mentions", "invalid"},
		{"a mention of a group", `{` + to + `"text":"Hi @120363025246125486","mentions":["` + group + `"]}`, 400, "mentions", "invalid"},
		{"eleven contacts", `{` + to + `"type":"contacts","contacts":[` + strings.Repeat(`{"name":"a","phones":["+491701234567"]},`, 10) + `{"name":"a","phones":["+491701234567"]}]}`, 400, "contacts", "invalid"},
		{"a card with a bad number", `{` + to + `"type":"contacts","contacts":[{"name":"Jane","phones":["0170 1234567"]}]}`, 400, "contacts[0].phones", "invalid"},
		{"a card that is no vCard", `{` + to + `"type":"contacts","contacts":[{"name":"Jane","vcard":"Jane, +49170"}]}`, 400, "contacts[0].vcard", "invalid"},
		{"a card without a name", `{` + to + `"type":"contacts","contacts":[{"phones":["+491701234567"]}]}`, 400, "contacts[0].name", "invalid"},
		{"a voice note of a PNG", `{` + to + `"type":"voice","media_id":"` + png + `"}`, 415, "media_id", "unsupported_media_type"},
		{"a voice note of Ogg Vorbis", `{` + to + `"type":"voice","media_id":"` + vorbis + `"}`, 415, "media_id", "unsupported_media_type"},
		{"a sticker of a JPEG", `{` + to + `"type":"sticker","media_id":"` + jpeg + `"}`, 415, "media_id", "unsupported_media_type"},
		{"an image of WebP", `{` + to + `"type":"image","media_id":"` + webp + `"}`, 415, "media_id", "unsupported_media_type"},
		{"a video of a PNG", `{` + to + `"type":"video","media_id":"` + png + `"}`, 415, "media_id", "unsupported_media_type"},
		{"an image without its file", `{` + to + `"type":"image","text":"x"}`, 400, "media_id", "invalid"},
		{"an edit of Alice's message", `{` + to + `"type":"edit","target":{"wa_id":"` + theirs.ID + `"},"text":"mine now"}`, 409, "target", "not_ours"},
		{"an edit of a location", `{` + to + `"type":"edit","target":{"id":"` + loc + `"},"text":"x"}`, 409, "target", "not_editable"},
		{"an edit older than 15 minutes", `{` + to + `"type":"edit","target":{"wa_id":"3EB0OLD"},"text":"too late"}`, 409, "target", "edit_window_passed"},
		{"an edit of a message not stored", `{` + to + `"type":"edit","target":{"wa_id":"3EB0NOPE"},"text":"x"}`, 404, "target", "not_found"},
		{"an edit of an unknown id", `{` + to + `"type":"edit","target":{"id":"msg_nope"},"text":"x"}`, 404, "target", "not_found"},
		{"a blank edit", `{` + to + `"type":"edit","target":{"id":"` + ours + `"},"text":" "}`, 400, "text", "invalid"},
		{"a revoke of Alice's message", `{` + to + `"type":"revoke","target":{"wa_id":"` + theirs.ID + `"}}`, 409, "target", "not_ours"},
		{"a reaction to a reaction", `{` + to + `"type":"reaction","target":{"id":"REACTION"},"emoji":"👍"}`, 409, "target", "not_content"},
		{"a forward of nothing stored", `{` + to + `"forward":{"id":"msg_nope"}}`, 404, "forward", "not_found"},
		{"a forward with text", `{` + to + `"forward":{"id":"` + ours + `"},"text":"x"}`, 400, "text", "invalid"},
		{"a forward of the wrong type", `{` + to + `"type":"image","forward":{"id":"` + ours + `"}}`, 400, "type", "invalid"},
		{"a forward by wa_id without chat", `{` + to + `"forward":{"wa_id":"` + oursView["wa_id"].(string) + `"}}`, 400, "forward.chat", "invalid"},
		{"a reply to an unknown id", `{` + to + `"text":"x","reply_to":"msg_nope"}`, 404, "reply_to", "not_found"},
		{"a reply to a message of another chat", `{"to":"+491709876543","text":"x","reply_to":"` + ours + `"}`, 400, "reply_to", "invalid"},
	} {
		t.Run(c.name, func(t *testing.T) {
			body := c.body
			if strings.Contains(body, "REACTION") {
				reaction := e.post(t, `{`+to+`"type":"reaction","target":{"id":"`+ours+`"},"emoji":"👍"}`)
				e.sent(t, reaction)
				body = strings.Replace(body, "REACTION", reaction, 1)
				before++
			}
			r := do(t, "POST", e.url+"/v1/messages", strings.NewReader(body), e.writer)
			got := errorOf(t, r)
			if r.status != c.status || got["field"] != c.field || got["code"] != c.code {
				t.Errorf("%d %v; want %d %s naming %q", r.status, got, c.status, c.code, c.field)
			}
			if c.code == "edit_window_passed" && !strings.Contains(got["message"].(string), "15 minutes") {
				t.Errorf("the refusal does not say why: %v", got["message"])
			}
			if c.name == "a revoke of Alice's message" && !strings.Contains(got["message"].(string), "group admin") {
				t.Errorf("the refusal does not say what it would take: %v", got["message"])
			}
		})
	}

	// A message of ours not sent yet cannot be edited or revoked.
	e.sb.Disconnect("test", time.Hour)
	queued := e.post(t, `{"to":"+491701234567","text":"Still queued"}`)
	for _, kind := range []string{"edit", "revoke"} {
		body := `{` + to + `"type":"` + kind + `","target":{"id":"` + queued + `"}` + map[string]string{"edit": `,"text":"x"`}[kind] + `}`
		r := do(t, "POST", e.url+"/v1/messages", strings.NewReader(body), e.writer)
		if got := errorOf(t, r); r.status != 409 || got["code"] != "not_sent" || got["field"] != "target" {
			t.Errorf("%s of a queued message: %d %v", kind, r.status, got)
		}
	}
	if n := len(e.sb.Sent()); n != before {
		t.Errorf("%d messages sent from bad requests", n-before)
	}
}

// An Idempotency-Key covers every field: the same key with another
// emoji, target or option is another request (422), the same request
// again the same message.
func TestIdempotencyCoversEveryField(t *testing.T) {
	e := messageServer(t, 1<<20)
	ours := e.post(t, `{"to":"+491701234567","text":"Our text"}`)
	e.sent(t, ours)
	h := with(e.writer, "Idempotency-Key", "react-1")
	body := `{"to":"+491701234567","type":"reaction","target":{"id":"` + ours + `"},"emoji":"👍"}`
	r := do(t, "POST", e.url+"/v1/messages", strings.NewReader(body), h)
	if r.status != 202 {
		t.Fatalf("POST: %d %v", r.status, r.body)
	}
	id := r.body["id"]
	if again := do(t, "POST", e.url+"/v1/messages", strings.NewReader(body), h); again.status != 202 || again.body["id"] != id {
		t.Errorf("the same request again: %d %v", again.status, again.body)
	}
	for _, other := range []string{
		strings.Replace(body, "👍", "👎", 1),
		`{"to":"+491701234567","type":"revoke","target":{"id":"` + ours + `"}}`,
		`{"to":"+491701234567","type":"poll","poll":{"question":"Q","options":["a","b"]}}`,
		`{"to":"+491701234567","type":"location","location":{"latitude":1,"longitude":2}}`,
	} {
		if r := do(t, "POST", e.url+"/v1/messages", strings.NewReader(other), h); r.status != 422 || errorOf(t, r)["field"] != "Idempotency-Key" {
			t.Errorf("%s with the same key: %d %v, want 422", other, r.status, r.body)
		}
	}
	h2 := with(e.writer, "Idempotency-Key", "poll-1")
	poll := func(opts string) reply {
		return do(t, "POST", e.url+"/v1/messages", strings.NewReader(`{"to":"+491701234567","type":"poll","poll":{"question":"Q","options":[`+opts+`]}}`), h2)
	}
	if r := poll(`"a","b"`); r.status != 202 {
		t.Fatalf("poll: %d %v", r.status, r.body)
	}
	if r := poll(`"a","c"`); r.status != 422 {
		t.Errorf("the same key with another option: %d %v, want 422", r.status, r.body)
	}
}
