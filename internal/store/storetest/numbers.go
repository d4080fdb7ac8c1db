package storetest

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"app/internal/store"
)

var _ = add(
	"NumberChecksAreReplacedAndReadByNumber", testNumberChecksAreReplacedAndReadByNumber,
)

// A number's check is found by the number, a second check replaces the
// first, and a number never checked is left out.
func testNumberChecksAreReplacedAndReadByNumber(t *testing.T, h Harness) {
	st := h.Open(t)
	ctx := context.Background()
	at := time.Now().Add(-time.Hour).Truncate(time.Millisecond)
	if got, err := st.NumberChecks(ctx, []string{"+491701234567"}); err != nil || len(got) != 0 {
		t.Fatalf("before any check: %+v, %v", got, err)
	}
	if err := st.SaveNumberChecks(ctx, nil); err != nil {
		t.Fatal(err)
	}
	first := []store.NumberCheck{
		{Number: "+491701234567", OnWhatsApp: true, JID: "491701234567@s.whatsapp.net", LID: aliceLID, CheckedAt: at},
		{Number: "+4930123456", OnWhatsApp: true, JID: "4930123456@s.whatsapp.net", BusinessName: "Bäckerei", CheckedAt: at},
		{Number: "+15550009999", CheckedAt: at},
	}
	if err := st.SaveNumberChecks(ctx, first); err != nil {
		t.Fatal(err)
	}
	later := at.Add(30 * time.Minute)
	if err := st.SaveNumberChecks(ctx, []store.NumberCheck{{Number: "+15550009999", OnWhatsApp: true, JID: "15550009999@s.whatsapp.net", CheckedAt: later}}); err != nil {
		t.Fatal(err)
	}
	got, err := st.NumberChecks(ctx, []string{"+15550009999", "+491701234567", "+4930123456", "+442071234567"})
	if err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(got, func(a, b store.NumberCheck) int { return strings.Compare(a.Number, b.Number) })
	want := []store.NumberCheck{
		{Number: "+15550009999", OnWhatsApp: true, JID: "15550009999@s.whatsapp.net", CheckedAt: later},
		first[0], first[1],
	}
	if len(got) != len(want) {
		t.Fatalf("checks %+v, want %+v", got, want)
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.Number != w.Number || g.OnWhatsApp != w.OnWhatsApp || g.JID != w.JID || g.LID != w.LID ||
			g.BusinessName != w.BusinessName || !g.CheckedAt.Equal(w.CheckedAt) {
			t.Errorf("check %d: %+v, want %+v", i, g, w)
		}
	}
}
