// Package schedule computes when recurring (cron) schedules run.
//
// A [Spec] is a standard 5-field cron expression (minute, hour, day of month,
// month, day of week) or one of the descriptors @yearly, @annually, @monthly,
// @weekly, @daily, @midnight and @hourly, evaluated on the wall clock of an
// IANA time zone. Expressions are parsed by github.com/robfig/cron/v3; this
// package decides how wall-clock times map to real instants.
//
// # Daylight saving time
//
// The expression selects wall-clock times ("slots", to the minute). A slot
// that exists exactly once in the zone runs at that instant. Two kinds of
// slot need a rule, and the rule depends on whether the hour field matches
// every hour of the day ("*", "*/1", "0-23", @hourly):
//
// Fixed-hour specs (for example "30 2 * * *", "*/15 2 * * *", "0 9 * * 1-5",
// @daily) describe a time of day, and each slot runs exactly once:
//
//   - Gap (spring forward): a slot that does not exist that day runs once, at
//     the first instant after the gap, i.e. as soon as the skipped time has
//     passed. "30 2 * * *" in Europe/Berlin runs at 03:00 CEST (01:00 UTC) on
//     2026-03-29; in America/New_York at 03:00 EDT (07:00 UTC) on 2026-03-08.
//     All skipped slots of one gap share that instant, so they collapse into a
//     single run: "*/15 2 * * *" runs once (at 03:00) that day, not four
//     times, and "0 1-3 * * *" runs at 01:00 and 03:00.
//   - Overlap (fall back): a slot that occurs twice runs once, at its first
//     occurrence (still on daylight time). "30 2 * * *" in Europe/Berlin runs
//     at 02:30 CEST (00:30 UTC) on 2026-10-25 and not again at 02:30 CET;
//     "30 1 * * *" in America/New_York runs at 01:30 EDT (05:30 UTC) on
//     2026-11-01 and not at 01:30 EST.
//
// Every-hour specs (for example "0 * * * *", "*/30 * * * *", "* * * * *",
// @hourly) describe a cadence in elapsed time, and run at every real instant
// whose local wall clock matches:
//
//   - Gap: slots that do not exist are skipped; the cadence continues in real
//     time ("0 * * * *" in Europe/Berlin runs at 01:00 CET and then 03:00 CEST,
//     one real hour later).
//   - Overlap: the repeated hour runs in both occurrences, because each one is
//     a real hour ("0 * * * *" in America/New_York runs at 01:00 EDT, 01:00 EST
//     and 02:00 EST on 2026-11-01, one real hour apart).
//
// A step over some hours only (such as "0 */2 * * *") is a set of fixed
// hours and follows the fixed-hour rules.
//
// In every case runs are strictly increasing in absolute time, so [Spec.Runs]
// and [Spec.Preview] never return duplicates, and a fixed-time daily spec runs
// exactly once on every local calendar day.
//
// Zone data comes from the system (/usr/share/zoneinfo) when present; the
// package embeds time/tzdata as a fallback so that zone names resolve on hosts
// without the tzdata package.
package schedule

import (
	"fmt"
	"strings"
	"time"
	_ "time/tzdata" // fallback zone database for hosts without /usr/share/zoneinfo

	"github.com/robfig/cron/v3"
)

// horizonYears is how far Next looks ahead before giving up.
const horizonYears = 5

// allHours is the hour bit set of a spec that matches every hour of the day.
const allHours = 1<<24 - 1

// Spec is a recurring schedule: a cron expression evaluated in an IANA time zone.
type Spec struct {
	loc *time.Location
	// wall is the parsed expression with its Location set to UTC, so that
	// robfig's Next runs on a clock without DST: it answers "which wall-clock
	// time (slot) matches next", and this package maps slots to instants.
	wall *cron.SpecSchedule
	// everyHour reports whether the hour field matches all 24 hours.
	everyHour bool
}

// Error is a parse error naming the request field at fault.
type Error struct{ Field, Message string }

func (e *Error) Error() string {
	return "invalid " + e.Field + ": " + e.Message
}

const (
	fieldCron     = "cron"
	fieldTimezone = "timezone"

	allowedShape          = `5 fields (minute hour day-of-month month day-of-week) such as "30 2 * * *"`
	allowedDescriptors    = "@yearly, @annually, @monthly, @weekly, @daily, @midnight or @hourly"
	allowedDescriptorsAnd = "@yearly, @annually, @monthly, @weekly, @daily, @midnight and @hourly"
)

var descriptors = map[string]bool{
	"@yearly": true, "@annually": true, "@monthly": true, "@weekly": true,
	"@daily": true, "@midnight": true, "@hourly": true,
}

// fieldRules describes each of the five fields, in order, with the robfig
// parser option that parses that field on its own.
var fieldRules = [5]struct {
	name    string
	option  cron.ParseOption
	allowed string
}{
	{"minute", cron.Minute, "0-59"},
	{"hour", cron.Hour, "0-23"},
	{"day-of-month", cron.Dom, "1-31"},
	{"month", cron.Month, "1-12 or jan-dec"},
	{"day-of-week", cron.Dow, "0-6 (0 is Sunday) or sun-sat"},
}

var standardParser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// Parse parses a standard 5-field cron expression ("30 2 * * *", also descriptors like "@daily", "@hourly")
// in time zone tz ("Europe/Berlin", "America/New_York", "UTC"; empty means UTC).
// A bad expression returns an *Error with Field "cron"; an unknown zone an *Error with Field "timezone".
// Expressions with a seconds field, a "CRON_TZ="/"TZ=" prefix (the zone comes only from tz), "@every ..."
// (not calendar based) and expressions that match no real date (such as "0 0 30 2 *") are rejected.
func Parse(expr, tz string) (*Spec, error) {
	wall, err := parseCron(expr)
	if err != nil {
		return nil, err
	}
	loc, err := loadZone(tz)
	if err != nil {
		return nil, err
	}
	return &Spec{loc: loc, wall: wall, everyHour: wall.Hour&allHours == allHours}, nil
}

func cronError(format string, args ...any) error {
	return &Error{Field: fieldCron, Message: fmt.Sprintf(format, args...)}
}

func parseCron(expr string) (*cron.SpecSchedule, error) {
	e := strings.TrimSpace(expr)
	upper := strings.ToUpper(e)
	switch {
	case e == "":
		return nil, cronError("cron expression is empty; use %s or one of %s", allowedShape, allowedDescriptors)
	case strings.HasPrefix(upper, "CRON_TZ=") || strings.HasPrefix(upper, "TZ="):
		return nil, cronError("cron expression must not start with CRON_TZ= or TZ=; set the time zone in the timezone field and use %s", allowedShape)
	case strings.HasPrefix(e, "@"):
		if strings.HasPrefix(strings.ToLower(e), "@every") {
			return nil, cronError("@every intervals are not allowed; use %s or one of %s", allowedShape, allowedDescriptors)
		}
		if !descriptors[e] {
			return nil, cronError("cron descriptor %q is unknown; the allowed descriptors are %s", e, allowedDescriptorsAnd)
		}
	default:
		fields := strings.Fields(e)
		if len(fields) == 6 {
			return nil, cronError("cron expression has 6 fields but exactly 5 are allowed (minute hour day-of-month month day-of-week); a seconds field is not supported")
		}
		if len(fields) != 5 {
			return nil, cronError("cron expression has %d fields but exactly 5 are required (minute hour day-of-month month day-of-week), such as \"30 2 * * *\"", len(fields))
		}
		for i, f := range fields {
			rule := fieldRules[i]
			// robfig reads "TZ=" and "CRON_TZ=" prefixes (and panics on some);
			// no valid field contains "=", so reject it before parsing.
			invalid := strings.Contains(f, "=")
			if !invalid {
				_, err := cron.NewParser(rule.option).Parse(f)
				invalid = err != nil
			}
			if invalid {
				return nil, cronError("cron %s field %q is invalid; allowed are %s, * and lists, ranges and steps of them such as 1,15 or 1-5 or */15",
					rule.name, f, rule.allowed)
			}
		}
	}

	sched, err := standardParser.Parse(e)
	if err != nil {
		return nil, cronError("cron expression %q is invalid (%v); use %s or one of %s", e, err, allowedShape, allowedDescriptors)
	}
	spec, ok := sched.(*cron.SpecSchedule)
	if !ok {
		return nil, cronError("cron expression %q is not calendar based; use %s or one of %s", e, allowedShape, allowedDescriptors)
	}
	wall := *spec
	wall.Location = time.UTC
	// Every month/day/weekday combination recurs within 2024-2029 (which has
	// two leap days), so no match there means no match ever.
	if wall.Next(time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)).IsZero() {
		return nil, cronError("cron expression %q never matches a real date; use a day of month that exists in the chosen months (30 February never does)", e)
	}
	return &wall, nil
}

func loadZone(tz string) (*time.Location, error) {
	name := strings.TrimSpace(tz)
	if name == "" {
		return time.UTC, nil
	}
	msg := fmt.Sprintf("time zone %q is unknown; use an IANA time zone name such as \"Europe/Berlin\", \"America/New_York\" or \"UTC\"", name)
	if name == "Local" {
		// time.LoadLocation("Local") is the host's zone, not an IANA name.
		return nil, &Error{Field: fieldTimezone, Message: msg}
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, &Error{Field: fieldTimezone, Message: msg}
	}
	return loc, nil
}

// Location is the schedule's zone.
func (s *Spec) Location() *time.Location { return s.loc }

// Next returns the first run strictly after t (any zone in, UTC out), or the zero time if there is none
// within 5 years. See the package documentation for the daylight-saving rules.
func (s *Spec) Next(t time.Time) time.Time {
	t = t.UTC()
	limit := t.AddDate(horizonYears, 0, 0)
	var next time.Time
	if s.everyHour {
		next = s.nextElapsed(t, limit)
	} else {
		next = s.nextFixed(t)
	}
	if next.IsZero() || next.After(limit) {
		return time.Time{}
	}
	return next.UTC()
}

// wallClock returns the wall-clock reading of instant t in the schedule's zone,
// expressed as a UTC time with the same fields.
func (s *Spec) wallClock(t time.Time) time.Time {
	_, off := t.In(s.loc).Zone()
	return t.UTC().Add(time.Duration(off) * time.Second)
}

// nextFixed implements the fixed-hour rules: slot w runs at firstReach(w),
// the first instant at which the wall clock reads w or later. That is the
// first occurrence of a repeated time and the end of the gap for a skipped
// one. firstReach is non-decreasing in w, so walking slots in wall-clock
// order from t's wall clock finds the earliest run after t. Slots at or
// before t's wall clock have already been reached; slots just after it may
// also have been reached if t lies in the second occurrence of an overlap,
// and are skipped.
func (s *Spec) nextFixed(t time.Time) time.Time {
	w := s.wallClock(t)
	for {
		w = s.wall.Next(w)
		if w.IsZero() {
			return time.Time{}
		}
		if run := s.firstReach(w); run.After(t) {
			return run
		}
	}
}

// firstReach returns the earliest instant at which the wall clock of the
// schedule's zone reads w (given as a UTC time with the wall-clock fields) or
// later.
func (s *Spec) firstReach(w time.Time) time.Time {
	// No zone is ahead of UTC by more than 26 hours, so before probe the wall
	// clock reads earlier than w.
	probe := w.Add(-26 * time.Hour)
	for range 1000 {
		local := probe.In(s.loc)
		_, off := local.Zone()
		_, end := local.ZoneBounds()
		// In this zone period the wall clock is instant+off: it reads w at
		// w-off, or has already passed w when the period starts (a gap).
		run := w.Add(-time.Duration(off) * time.Second)
		if run.Before(probe) {
			run = probe
		}
		if end.IsZero() || run.Before(end) || !end.After(probe) {
			return run
		}
		probe = end
	}
	return probe // unreachable with real zone data
}

// nextElapsed implements the every-hour rules: the first instant after t
// whose wall clock matches the expression. It walks the zone's periods of
// constant UTC offset; inside one the wall clock is instant+offset.
func (s *Spec) nextElapsed(t, limit time.Time) time.Time {
	probe, after := t, t // probe selects the period; the run must be after `after`
	for {
		local := probe.In(s.loc)
		_, off := local.Zone()
		_, end := local.ZoneBounds()
		offset := time.Duration(off) * time.Second
		w := s.wall.Next(after.Add(offset))
		if w.IsZero() {
			return time.Time{}
		}
		run := w.Add(-offset)
		if end.IsZero() || run.Before(end) {
			return run
		}
		if end.After(limit) || !end.After(probe) {
			return time.Time{}
		}
		// Continue in the next period, with runs at or after its start.
		probe, after = end, end.Add(-time.Nanosecond)
	}
}

// Runs returns the runs in (from, to], oldest first, at most max (max <= 0 means none), and whether
// more runs existed beyond max in that interval. The slice is never nil.
func (s *Spec) Runs(from, to time.Time, max int) ([]time.Time, bool) {
	runs := []time.Time{}
	for t := from; ; {
		next := s.Next(t)
		if next.IsZero() || next.After(to) {
			return runs, false
		}
		if len(runs) >= max {
			return runs, true
		}
		runs = append(runs, next)
		t = next
	}
}

// Preview returns the next n runs after t, oldest first, in UTC. It returns fewer if the
// schedule has no further runs within 5 years of the last one, and none when n <= 0.
// The slice is never nil.
func (s *Spec) Preview(t time.Time, n int) []time.Time {
	runs := []time.Time{}
	for len(runs) < n {
		next := s.Next(t)
		if next.IsZero() {
			break
		}
		runs = append(runs, next)
		t = next
	}
	return runs
}
