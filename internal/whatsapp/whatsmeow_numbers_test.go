package whatsapp

import (
	"testing"

	"go.mau.fi/whatsmeow/proto/waVnameCert"
	"go.mau.fi/whatsmeow/types"
	"google.golang.org/protobuf/proto"
)

// IsOnWhatsApp's answers become NumberInfos: the JID without a device,
// the LID where the map has one, a business's verified name; a number not
// on WhatsApp has neither.
func TestNumberInfos(t *testing.T) {
	alice := types.NewJID("491701234567", types.DefaultUserServer)
	shop := types.NewJID("4930123456", types.DefaultUserServer)
	aliceLID := types.NewJID("201001234567", types.HiddenUserServer)
	got := numberInfos([]types.IsOnWhatsAppResponse{
		{Query: "+491701234567", JID: alice, IsIn: true},
		{Query: "+4930123456", JID: shop, IsIn: true, VerifiedName: &types.VerifiedName{
			Details: &waVnameCert.VerifiedNameCertificate_Details{VerifiedName: proto.String("Bäckerei Schmidt")}}},
		{Query: "+15550009999", JID: types.NewJID("15550009999", types.DefaultUserServer), IsIn: false},
	}, func(pn types.JID) types.JID {
		if pn == alice {
			return aliceLID
		}
		return types.EmptyJID
	})
	want := []NumberInfo{
		{Query: "+491701234567", OnWhatsApp: true, JID: "491701234567@s.whatsapp.net", LID: "201001234567@lid"},
		{Query: "+4930123456", OnWhatsApp: true, JID: "4930123456@s.whatsapp.net", BusinessName: "Bäckerei Schmidt"},
		{Query: "+15550009999"},
	}
	if len(got) != len(want) {
		t.Fatalf("got %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("answer %d: %+v, want %+v", i, got[i], want[i])
		}
	}
}
