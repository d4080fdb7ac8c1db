package whatsapp

import (
	"context"
	"fmt"

	"go.mau.fi/whatsmeow/types"
)

// CheckNumbers asks WhatsApp (one usync query, IsOnWhatsApp) which phones
// have an account, with a business's verified name; the LID comes from
// whatsmeow's LID map, which the answer itself may have filled.
func (d *Whatsmeow) CheckNumbers(ctx context.Context, phones []string) ([]NumberInfo, error) {
	cli, err := d.connected()
	if err != nil {
		return nil, err
	}
	got, err := cli.IsOnWhatsApp(ctx, phones)
	if err != nil {
		return nil, fmt.Errorf("whatsapp: check numbers: %w", err)
	}
	lid := func(pn types.JID) types.JID {
		if cli.Store == nil || cli.Store.LIDs == nil {
			return types.EmptyJID
		}
		l, err := cli.Store.LIDs.GetLIDForPN(ctx, pn)
		if err != nil {
			return types.EmptyJID
		}
		return l
	}
	return numberInfos(got, lid), nil
}

// numberInfos maps IsOnWhatsApp's answers; lid looks up a number's LID
// (the empty JID when unknown).
func numberInfos(got []types.IsOnWhatsAppResponse, lid func(types.JID) types.JID) []NumberInfo {
	out := make([]NumberInfo, 0, len(got))
	for _, r := range got {
		n := NumberInfo{Query: r.Query, OnWhatsApp: r.IsIn}
		if r.IsIn && !r.JID.IsEmpty() {
			pn := r.JID.ToNonAD()
			n.JID = pn.String()
			if l := lid(pn); !l.IsEmpty() {
				n.LID = l.ToNonAD().String()
			}
		}
		if r.IsIn && r.VerifiedName != nil && r.VerifiedName.Details != nil {
			n.BusinessName = r.VerifiedName.Details.GetVerifiedName()
		}
		out = append(out, n)
	}
	return out
}
