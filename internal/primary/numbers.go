package primary

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"

	"app/internal/store"
	"app/internal/whatsapp"
)

// Number checks (issue 19; POST /v1/contacts/check). A worker answers
// what the cache (number_checks) holds fresh and leaves the rest to the
// primary as one check_numbers command with a deadline: numbers, "+" and
// digits, comma separated. The primary asks WhatsApp about as many as
// the pace allows (WHATSAPP_CHECKS_PER_MINUTE over any minute: accounts
// that look up too many numbers get banned), in batches of
// checkBatch, stores each answer in the cache and learns the LID pairs
// among them. The result: checks, the JSON of the []store.NumberCheck
// asked; held, the numbers the pace kept back (comma separated), and
// held_seconds, when the pace frees up again. A number WhatsApp did not
// answer for is recorded as not on WhatsApp.
const (
	cmdCheckNumbers = "check_numbers"
	// checkBatch is how many numbers one query to WhatsApp asks about.
	checkBatch = 100
	// defaultChecksPerMinute is the pace when none is configured.
	defaultChecksPerMinute = 600
)

// numberPace counts the numbers asked of WhatsApp in the last minute.
type numberPace struct {
	mu    sync.Mutex
	asked []paceMark // oldest first
}

type paceMark struct {
	at time.Time
	n  int
}

// take grants up to want lookups at now within perMinute, and says when
// more are free again (after the oldest lookup of the minute).
func (p *numberPace) take(now time.Time, want, perMinute int) (int, time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for len(p.asked) > 0 && !now.Before(p.asked[0].at.Add(time.Minute)) {
		p.asked = p.asked[1:]
	}
	used := 0
	for _, m := range p.asked {
		used += m.n
	}
	got := min(want, max(perMinute-used, 0))
	if got > 0 {
		p.asked = append(p.asked, paceMark{at: now, n: got})
	}
	if len(p.asked) == 0 {
		return got, 0
	}
	return got, p.asked[0].at.Add(time.Minute).Sub(now)
}

func (w *WhatsApp) checkNumbers(ctx context.Context, c *store.Command) (map[string]string, error) {
	notConnected := map[string]string{"code": "not_connected"}
	if w.Session().State != whatsapp.StateConnected {
		return notConnected, whatsapp.ErrNotConnected
	}
	numbers := splitList(c.Args["numbers"])
	perMinute := w.Cfg.ChecksPerMinute
	if perMinute <= 0 {
		perMinute = defaultChecksPerMinute
	}
	n, wait := w.numberPace.take(time.Now(), len(numbers), perMinute)
	res := map[string]string{}
	if held := numbers[n:]; len(held) > 0 {
		res["held"] = strings.Join(held, ",")
		res["held_seconds"] = strconv.Itoa(int(math.Ceil(wait.Seconds())))
	}
	var checks []store.NumberCheck
	var failed error
	for i := 0; i < n; i += checkBatch {
		batch := numbers[i:min(i+checkBatch, n)]
		got, err := w.Driver.CheckNumbers(ctx, batch)
		if err != nil {
			failed = err
			break
		}
		checks = append(checks, numberChecks(batch, got, time.Now())...)
	}
	// What WhatsApp answered is kept, even when a later batch failed.
	if err := w.Store.SaveNumberChecks(ctx, checks); err != nil {
		return nil, err
	}
	for _, ch := range checks {
		if err := w.learnPair(ctx, ch.JID, ch.LID); err != nil {
			w.Log.Warn().Err(err).Str("pn", ch.JID).Msg("Cannot record a checked number's LID; the check is kept.")
		}
	}
	if failed != nil {
		if errors.Is(failed, whatsapp.ErrNotConnected) {
			return notConnected, failed
		}
		return nil, failed
	}
	res, err := withJSON(res, "checks", checks)
	if err != nil {
		return nil, err
	}
	w.Log.Debug().Int("asked", n).Int("held", len(numbers)-n).Msg("Numbers checked.")
	return res, nil
}

// numberChecks are the checks of batch from WhatsApp's answers (matched
// by number), in batch's order.
func numberChecks(batch []string, got []whatsapp.NumberInfo, at time.Time) []store.NumberCheck {
	by := map[string]whatsapp.NumberInfo{}
	for _, g := range got {
		by[strings.TrimPrefix(g.Query, "+")] = g
	}
	out := make([]store.NumberCheck, 0, len(batch))
	for _, num := range batch {
		g, ok := by[strings.TrimPrefix(num, "+")]
		c := store.NumberCheck{Number: num, CheckedAt: at}
		if ok && g.OnWhatsApp {
			c.OnWhatsApp, c.JID, c.LID, c.BusinessName = true, g.JID, g.LID, g.BusinessName
		}
		out = append(out, c)
	}
	return out
}

// sandboxDirectory sets up the sandbox's directory from the JSON the
// worker checked: [{"number", "on_whatsapp", "lid", "business_name"}].
func sandboxDirectory(sb *whatsapp.Sandbox, list string) error {
	var entries []struct {
		Number       string `json:"number"`
		OnWhatsApp   bool   `json:"on_whatsapp"`
		LID          string `json:"lid"`
		BusinessName string `json:"business_name"`
	}
	if err := json.Unmarshal([]byte(list), &entries); err != nil {
		return err
	}
	infos := make([]whatsapp.NumberInfo, 0, len(entries))
	for _, e := range entries {
		infos = append(infos, whatsapp.NumberInfo{Query: e.Number, OnWhatsApp: e.OnWhatsApp, LID: e.LID, BusinessName: e.BusinessName})
	}
	sb.SetDirectory(infos)
	return nil
}
