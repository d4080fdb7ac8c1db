package whatsapp

import (
	"errors"
	"regexp"
	"strings"

	"go.mau.fi/whatsmeow/types"
)

var (
	e164      = regexp.MustCompile(`^\+[1-9][0-9]{6,14}$`)
	userPart  = regexp.MustCompile(`^[1-9][0-9]{6,14}$`)
	groupPart = regexp.MustCompile(`^[0-9]{5,20}(-[0-9]{5,20})?$`)
	lidPart   = regexp.MustCompile(`^[1-9][0-9]{4,19}$`)
)

// NormalizeRecipient turns what a client gives as a recipient into the
// chat JID the outbox and WhatsApp use: an E.164 number (+491701234567;
// spaces, dashes and brackets are ignored), a user JID
// (491701234567@s.whatsapp.net), a LID (a user WhatsApp names without
// their number: 201001234567@lid) or a group JID (120363...@g.us). The
// error says what is accepted.
func NormalizeRecipient(s string) (string, error) {
	s = strings.TrimSpace(s)
	if !strings.Contains(s, "@") {
		n := strings.NewReplacer(" ", "", "-", "", "(", "", ")", "", ".", "").Replace(s)
		if !e164.MatchString(n) {
			return "", errors.New("a phone number in E.164 form (+491701234567), a user JID (491701234567@s.whatsapp.net) or a group JID (...@g.us)")
		}
		return types.NewJID(n[1:], types.DefaultUserServer).String(), nil
	}
	jid, err := types.ParseJID(s)
	if err != nil || jid.Device != 0 {
		return "", errors.New("a valid JID: 491701234567@s.whatsapp.net or a group's ...@g.us")
	}
	switch jid.Server {
	case types.DefaultUserServer:
		if !userPart.MatchString(jid.User) {
			return "", errors.New("a user JID is the phone number's digits with country code, then @s.whatsapp.net")
		}
	case types.GroupServer:
		if !groupPart.MatchString(jid.User) {
			return "", errors.New("a group JID is digits (or digits-digits), then @g.us")
		}
	case types.HiddenUserServer:
		if !lidPart.MatchString(jid.User) {
			return "", errors.New("a LID is digits, then @lid")
		}
	default:
		return "", errors.New("a user (@s.whatsapp.net or @lid) or group (@g.us) JID")
	}
	return jid.ToNonAD().String(), nil
}
