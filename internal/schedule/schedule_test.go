package schedule

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

// at parses an RFC 3339 instant; the inputs are constants in this file.
func at(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

func ats(ss ...string) []time.Time {
	out := make([]time.Time, len(ss))
	for i, s := range ss {
		out[i] = at(s)
	}
	return out
}

func mustParse(t *testing.T, expr, tz string) *Spec {
	t.Helper()
	s, err := Parse(expr, tz)
	if err != nil {
		t.Fatalf("Parse(%q, %q): %v", expr, tz, err)
	}
	return s
}

func mustZone(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

func format(ts []time.Time, loc *time.Location) string {
	parts := make([]string, len(ts))
	for i, t := range ts {
		parts[i] = t.Format(time.RFC3339) + " (" + t.In(loc).Format("01-02 15:04 MST") + ")"
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

func equalTimes(a, b []time.Time) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !a[i].Equal(b[i]) {
			return false
		}
	}
	return true
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name, expr, tz string
		field          string
		mention        string // a word the message must contain (case-insensitive)
	}{
		{"empty", "", "", "cron", "5 fields"},
		{"blank", "   ", "UTC", "cron", "5 fields"},
		{"six fields (seconds)", "0 30 2 * * *", "", "cron", "seconds"},
		{"four fields", "30 2 * *", "", "cron", "exactly 5"},
		{"minute out of range", "61 * * * *", "", "cron", "minute"},
		{"hour out of range", "0 24 * * *", "", "cron", "hour"},
		{"day of month zero", "0 0 0 * *", "", "cron", "day-of-month"},
		{"month name typo", "0 0 1 jun1 *", "", "cron", "month"},
		{"weekday 7", "0 9 * * 7", "", "cron", "day-of-week"},
		{"zero step", "*/0 * * * *", "", "cron", "minute"},
		{"every", "@every 5m", "", "cron", "@every"},
		{"every upper case", "@EVERY 1h", "", "cron", "@every"},
		{"unknown descriptor", "@reboot", "", "cron", "@daily"},
		{"CRON_TZ prefix", "CRON_TZ=UTC 0 9 * * *", "", "cron", "timezone field"},
		{"TZ prefix", "TZ=Europe/Berlin 0 9 * * *", "Europe/Berlin", "cron", "timezone field"},
		{"TZ prefix alone", "TZ=UTC", "", "cron", "timezone field"},
		{"lower-case tz prefix", "cron_tz=UTC 0 9 * * *", "", "cron", "timezone field"},
		{"TZ inside a field", "0 TZ=UTC * * *", "", "cron", "hour"},
		{"never matches", "0 0 30 2 *", "", "cron", "never"},
		{"unknown zone", "0 9 * * *", "Mars/Olympus_Mons", "timezone", "IANA"},
		{"Local is not a zone name", "0 9 * * *", "Local", "timezone", "IANA"},
		{"zone path", "0 9 * * *", "../../etc/passwd", "timezone", "IANA"},
		{"expression checked before zone", "61 * * * *", "Mars/Olympus_Mons", "cron", "minute"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Parse(tt.expr, tt.tz)
			if err == nil {
				t.Fatalf("Parse(%q, %q) = %v, want error", tt.expr, tt.tz, s)
			}
			var perr *Error
			if !errors.As(err, &perr) {
				t.Fatalf("error %v (%T) is not *Error", err, err)
			}
			if perr.Field != tt.field {
				t.Errorf("Field = %q, want %q (message %q)", perr.Field, tt.field, perr.Message)
			}
			if perr.Message == "" || err.Error() == "" {
				t.Fatal("empty error message")
			}
			if !strings.Contains(strings.ToLower(perr.Message), strings.ToLower(tt.mention)) {
				t.Errorf("Message %q does not mention %q", perr.Message, tt.mention)
			}
			if strings.Contains(perr.Message, "\n") {
				t.Errorf("Message %q spans lines", perr.Message)
			}
		})
	}
}

func TestParseValid(t *testing.T) {
	tests := []struct {
		expr, tz, wantZone string
	}{
		{"30 2 * * *", "", "UTC"},
		{"30 2 * * *", "UTC", "UTC"},
		{"  0 9 * * 1-5  ", "Europe/Berlin", "Europe/Berlin"},
		{"0 9 * jan,dec mon-fri", "America/New_York", "America/New_York"},
		{"*/15 8-17 1,15 * ?", "Europe/Berlin", "Europe/Berlin"},
		{"0 0 29 2 *", "UTC", "UTC"},
		{"@yearly", "UTC", "UTC"},
		{"@annually", "UTC", "UTC"},
		{"@monthly", "UTC", "UTC"},
		{"@weekly", "UTC", "UTC"},
		{"@daily", "America/New_York", "America/New_York"},
		{"@midnight", "UTC", "UTC"},
		{"@hourly", " Europe/Berlin ", "Europe/Berlin"},
	}
	for _, tt := range tests {
		t.Run(tt.expr+" "+tt.tz, func(t *testing.T) {
			s := mustParse(t, tt.expr, tt.tz)
			if got := s.Location().String(); got != tt.wantZone {
				t.Errorf("Location() = %q, want %q", got, tt.wantZone)
			}
		})
	}
}

// previewCase: the first len(want) runs strictly after from.
type previewCase struct {
	name, expr, tz, from string
	want                 []string
}

func runPreviewCases(t *testing.T, tests []previewCase) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := mustParse(t, tt.expr, tt.tz)
			want := ats(tt.want...)
			got := s.Preview(at(tt.from), len(want))
			if !equalTimes(got, want) {
				t.Errorf("%q in %s after %s:\n got  %s\n want %s", tt.expr, tt.tz, tt.from,
					format(got, s.Location()), format(want, s.Location()))
			}
			for _, g := range got {
				if g.Location() != time.UTC {
					t.Errorf("run %v is not in UTC", g)
				}
			}
			// Next agrees with the first preview entry.
			if n := s.Next(at(tt.from)); len(want) > 0 && !n.Equal(want[0]) {
				t.Errorf("Next = %v, want %v", n, want[0])
			}
		})
	}
}

func TestNextOrdinary(t *testing.T) {
	runPreviewCases(t, []previewCase{
		{"daily 09:00 Berlin across month boundary (winter)", "0 9 * * *", "Europe/Berlin", "2026-01-30T12:00:00Z",
			[]string{"2026-01-31T08:00:00Z", "2026-02-01T08:00:00Z", "2026-02-02T08:00:00Z"}},
		{"daily 09:00 Berlin across month boundary (summer)", "0 9 * * *", "Europe/Berlin", "2026-06-29T12:00:00Z",
			[]string{"2026-06-30T07:00:00Z", "2026-07-01T07:00:00Z"}},
		{"daily across year boundary New York", "@daily", "America/New_York", "2026-12-30T12:00:00Z",
			[]string{"2026-12-31T05:00:00Z", "2027-01-01T05:00:00Z"}},
		{"weekdays skip the weekend; a run at from is excluded", "0 9 * * 1-5", "Europe/Berlin", "2026-01-09T08:00:00Z",
			[]string{"2026-01-12T08:00:00Z", "2026-01-13T08:00:00Z", "2026-01-14T08:00:00Z"}},
		{"weekday names", "30 7 * * sat,sun", "UTC", "2026-01-01T00:00:00Z",
			[]string{"2026-01-03T07:30:00Z", "2026-01-04T07:30:00Z", "2026-01-10T07:30:00Z"}},
		{"hourly", "@hourly", "UTC", "2026-05-01T10:15:00Z",
			[]string{"2026-05-01T11:00:00Z", "2026-05-01T12:00:00Z", "2026-05-01T13:00:00Z"}},
		{"hourly in a half-hour zone", "@hourly", "Asia/Kolkata", "2026-05-01T10:15:00Z",
			[]string{"2026-05-01T10:30:00Z", "2026-05-01T11:30:00Z"}},
		{"sub-second before a run", "0 9 * * *", "UTC", "2026-05-01T08:59:59.999Z",
			[]string{"2026-05-01T09:00:00Z"}},
		{"monthly", "@monthly", "Europe/Berlin", "2026-01-15T00:00:00Z",
			[]string{"2026-01-31T23:00:00Z", "2026-02-28T23:00:00Z", "2026-03-31T22:00:00Z"}},
		{"leap day", "0 0 29 2 *", "UTC", "2026-01-01T00:00:00Z",
			[]string{"2028-02-29T00:00:00Z", "2032-02-29T00:00:00Z"}},
		{"day-of-month or day-of-week (cron OR rule)", "0 12 1 * mon", "UTC", "2026-06-20T00:00:00Z",
			[]string{"2026-06-22T12:00:00Z", "2026-06-29T12:00:00Z", "2026-07-01T12:00:00Z", "2026-07-06T12:00:00Z"}},
	})
}

func TestNextInputZoneAndZero(t *testing.T) {
	s := mustParse(t, "0 9 * * *", "Europe/Berlin")
	ny := mustZone(t, "America/New_York")
	from := time.Date(2026, 1, 30, 7, 0, 0, 0, ny) // 12:00 UTC
	got := s.Next(from)
	if want := at("2026-01-31T08:00:00Z"); !got.Equal(want) || got.Location() != time.UTC {
		t.Errorf("Next(%v) = %v, want %v in UTC", from, got, want)
	}

	leap := mustParse(t, "0 0 29 2 *", "UTC")
	// 2100 is not a leap year: after 2096-02-29 the next leap day is 2104-02-29.
	if got := leap.Next(at("2097-03-01T00:00:00Z")); !got.IsZero() {
		t.Errorf("Next beyond 5 years = %v, want zero time", got)
	}
	if got := leap.Preview(at("2097-03-01T00:00:00Z"), 3); len(got) != 0 {
		t.Errorf("Preview with no runs = %v, want empty", got)
	}
	if got := leap.Preview(at("2092-03-01T00:00:00Z"), 3); !equalTimes(got, ats("2096-02-29T00:00:00Z")) {
		t.Errorf("Preview near the horizon = %v, want only 2096-02-29", got)
	}
	if got := s.Preview(from, 0); got == nil || len(got) != 0 {
		t.Errorf("Preview(n=0) = %#v, want empty non-nil", got)
	}
}

// Europe/Berlin 2026: 2026-03-29 02:00 CET -> 03:00 CEST (01:00 UTC);
// 2026-10-25 03:00 CEST -> 02:00 CET (01:00 UTC), 02:00-03:00 happens twice.
// America/New_York 2026: 2026-03-08 02:00 EST -> 03:00 EDT (07:00 UTC);
// 2026-11-01 02:00 EDT -> 01:00 EST (06:00 UTC), 01:00-02:00 happens twice.

func TestDSTGap(t *testing.T) {
	runPreviewCases(t, []previewCase{
		// Berlin, 2026-03-29.
		{"Berlin daily 02:30 runs once at 03:00 CEST", "30 2 * * *", "Europe/Berlin", "2026-03-27T12:00:00Z",
			[]string{"2026-03-28T01:30:00Z", "2026-03-29T01:00:00Z", "2026-03-30T00:30:00Z"}},
		{"Berlin daily 02:00 (start of gap) runs at 03:00 CEST", "0 2 * * *", "Europe/Berlin", "2026-03-28T12:00:00Z",
			[]string{"2026-03-29T01:00:00Z", "2026-03-30T00:00:00Z"}},
		{"Berlin daily 03:00 (end of gap) is unaffected", "0 3 * * *", "Europe/Berlin", "2026-03-28T12:00:00Z",
			[]string{"2026-03-29T01:00:00Z", "2026-03-30T01:00:00Z"}},
		{"Berlin every 15 min in hour 2 collapses into one run", "*/15 2 * * *", "Europe/Berlin", "2026-03-28T12:00:00Z",
			[]string{"2026-03-29T01:00:00Z", "2026-03-30T00:00:00Z", "2026-03-30T00:15:00Z"}},
		{"Berlin */30 in hour 2 collapses into one run", "*/30 2 * * *", "Europe/Berlin", "2026-03-29T00:00:00Z",
			[]string{"2026-03-29T01:00:00Z", "2026-03-30T00:00:00Z", "2026-03-30T00:30:00Z"}},
		{"Berlin fixed hours 1-3 merge the gap run with 03:00", "0 1-3 * * *", "Europe/Berlin", "2026-03-28T23:30:00Z",
			[]string{"2026-03-29T00:00:00Z", "2026-03-29T01:00:00Z", "2026-03-29T23:00:00Z"}},
		{"Berlin hourly skips the missing hour", "0 * * * *", "Europe/Berlin", "2026-03-28T23:30:00Z",
			[]string{"2026-03-29T00:00:00Z", "2026-03-29T01:00:00Z", "2026-03-29T02:00:00Z"}},
		{"Berlin hourly at :30 keeps a one-hour cadence", "30 * * * *", "Europe/Berlin", "2026-03-28T23:45:00Z",
			[]string{"2026-03-29T00:30:00Z", "2026-03-29T01:30:00Z", "2026-03-29T02:30:00Z"}},
		{"Berlin every 30 min keeps a 30-minute cadence", "*/30 * * * *", "Europe/Berlin", "2026-03-29T00:00:00Z",
			[]string{"2026-03-29T00:30:00Z", "2026-03-29T01:00:00Z", "2026-03-29T01:30:00Z"}},
		{"Berlin */1 hour step is every hour", "0 */1 * * *", "Europe/Berlin", "2026-03-28T23:30:00Z",
			[]string{"2026-03-29T00:00:00Z", "2026-03-29T01:00:00Z", "2026-03-29T02:00:00Z"}},
		// New York, 2026-03-08.
		{"New York daily 02:30 runs once at 03:00 EDT", "30 2 * * *", "America/New_York", "2026-03-07T12:00:00Z",
			[]string{"2026-03-08T07:00:00Z", "2026-03-09T06:30:00Z"}},
		{"New York */30 in hour 2 collapses into one run", "*/30 2 * * *", "America/New_York", "2026-03-08T05:00:00Z",
			[]string{"2026-03-08T07:00:00Z", "2026-03-09T06:00:00Z", "2026-03-09T06:30:00Z"}},
		{"New York hourly skips the missing hour", "0 * * * *", "America/New_York", "2026-03-08T05:30:00Z",
			[]string{"2026-03-08T06:00:00Z", "2026-03-08T07:00:00Z", "2026-03-08T08:00:00Z"}},
		{"New York every 30 min keeps a 30-minute cadence", "*/30 * * * *", "America/New_York", "2026-03-08T06:15:00Z",
			[]string{"2026-03-08T06:30:00Z", "2026-03-08T07:00:00Z", "2026-03-08T07:30:00Z"}},
		// Lord Howe shifts by 30 minutes: 2026-10-04 02:00 +1030 -> 02:30 +11 (15:30 UTC).
		{"Lord Howe daily 02:15 runs at 02:30 +11", "15 2 * * *", "Australia/Lord_Howe", "2026-10-03T00:00:00Z",
			[]string{"2026-10-03T15:30:00Z", "2026-10-04T15:15:00Z"}},
		// robfig by itself returns 02:30 +11 here: after 01:30 its minute loop crosses the gap without rechecking the hour.
		{"Lord Howe daily 01:30 just before the gap runs once a day", "30 1 * * *", "Australia/Lord_Howe", "2026-10-03T12:00:00Z",
			[]string{"2026-10-03T15:00:00Z", "2026-10-04T14:30:00Z"}},
		// Santiago skips midnight: 2026-09-06 00:00 -04 -> 01:00 -03 (04:00 UTC).
		{"Santiago midnight runs at 01:00 -03", "0 0 * * *", "America/Santiago", "2026-09-05T12:00:00Z",
			[]string{"2026-09-06T04:00:00Z", "2026-09-07T03:00:00Z"}},
	})
}

func TestDSTOverlap(t *testing.T) {
	runPreviewCases(t, []previewCase{
		// Berlin, 2026-10-25: 02:00-03:00 CEST (00:00-01:00 UTC), then 02:00-03:00 CET (01:00-02:00 UTC).
		{"Berlin daily 02:30 runs once, at the first (CEST) occurrence", "30 2 * * *", "Europe/Berlin", "2026-10-24T12:00:00Z",
			[]string{"2026-10-25T00:30:00Z", "2026-10-26T01:30:00Z"}},
		{"Berlin */30 in hour 2 runs in the first occurrence only", "*/30 2 * * *", "Europe/Berlin", "2026-10-24T22:30:00Z",
			[]string{"2026-10-25T00:00:00Z", "2026-10-25T00:30:00Z", "2026-10-26T01:00:00Z"}},
		{"Berlin every 2 hours (fixed hours) runs 02:00 once", "0 */2 * * *", "Europe/Berlin", "2026-10-24T21:30:00Z",
			[]string{"2026-10-24T22:00:00Z", "2026-10-25T00:00:00Z", "2026-10-25T03:00:00Z"}},
		{"Berlin hourly runs in both occurrences", "0 * * * *", "Europe/Berlin", "2026-10-24T22:30:00Z",
			[]string{"2026-10-24T23:00:00Z", "2026-10-25T00:00:00Z", "2026-10-25T01:00:00Z", "2026-10-25T02:00:00Z"}},
		{"Berlin every 30 min runs in both occurrences", "*/30 * * * *", "Europe/Berlin", "2026-10-24T23:45:00Z",
			[]string{"2026-10-25T00:00:00Z", "2026-10-25T00:30:00Z", "2026-10-25T01:00:00Z", "2026-10-25T01:30:00Z", "2026-10-25T02:00:00Z"}},
		{"Berlin from the first occurrence, before the run", "45 2 * * *", "Europe/Berlin", "2026-10-25T00:40:00Z",
			[]string{"2026-10-25T00:45:00Z", "2026-10-26T01:45:00Z"}},
		{"Berlin from the second occurrence: already ran today", "45 2 * * *", "Europe/Berlin", "2026-10-25T01:10:00Z",
			[]string{"2026-10-26T01:45:00Z"}},
		{"Berlin hourly from the second occurrence", "50 * * * *", "Europe/Berlin", "2026-10-25T01:10:00Z",
			[]string{"2026-10-25T01:50:00Z", "2026-10-25T02:50:00Z"}},
		// New York, 2026-11-01: 01:00-02:00 EDT (05:00-06:00 UTC), then 01:00-02:00 EST (06:00-07:00 UTC).
		{"New York daily 01:30 runs once, at the first (EDT) occurrence", "30 1 * * *", "America/New_York", "2026-10-31T12:00:00Z",
			[]string{"2026-11-01T05:30:00Z", "2026-11-02T06:30:00Z"}},
		{"New York */30 in hour 1 runs in the first occurrence only", "*/30 1 * * *", "America/New_York", "2026-11-01T04:30:00Z",
			[]string{"2026-11-01T05:00:00Z", "2026-11-01T05:30:00Z", "2026-11-02T06:00:00Z"}},
		{"New York hourly runs in both occurrences", "0 * * * *", "America/New_York", "2026-11-01T04:30:00Z",
			[]string{"2026-11-01T05:00:00Z", "2026-11-01T06:00:00Z", "2026-11-01T07:00:00Z"}},
		{"New York every 30 min runs in both occurrences", "*/30 * * * *", "America/New_York", "2026-11-01T05:15:00Z",
			[]string{"2026-11-01T05:30:00Z", "2026-11-01T06:00:00Z", "2026-11-01T06:30:00Z", "2026-11-01T07:00:00Z"}},
		{"New York daily 02:30 after the overlap is unaffected", "30 2 * * *", "America/New_York", "2026-10-31T12:00:00Z",
			[]string{"2026-11-01T07:30:00Z", "2026-11-02T07:30:00Z"}},
		// Lord Howe: 2026-04-05 02:00 +11 -> 01:30 +1030 (15:00 UTC); 01:30-02:00 happens twice.
		{"Lord Howe daily 01:45 runs once", "45 1 * * *", "Australia/Lord_Howe", "2026-04-04T00:00:00Z",
			[]string{"2026-04-04T14:45:00Z", "2026-04-05T15:15:00Z"}},
		{"Lord Howe */30 in hour 2 after the overlap", "*/30 2 * * *", "Australia/Lord_Howe", "2026-04-04T12:00:00Z",
			[]string{"2026-04-04T15:30:00Z", "2026-04-04T16:00:00Z", "2026-04-05T15:30:00Z"}},
		// Santiago: 2026-04-05 00:00 -03 -> 2026-04-04 23:00 -04 (03:00 UTC); 23:00-24:00 on 04-04 happens twice.
		{"Santiago daily 23:30 runs once", "30 23 * * *", "America/Santiago", "2026-04-04T12:00:00Z",
			[]string{"2026-04-05T02:30:00Z", "2026-04-06T03:30:00Z"}},
		{"Santiago midnight after the repeated hour", "0 0 * * *", "America/Santiago", "2026-04-04T12:00:00Z",
			[]string{"2026-04-05T04:00:00Z", "2026-04-06T04:00:00Z"}},
	})
}

func TestRuns(t *testing.T) {
	daily := mustParse(t, "0 9 * * *", "UTC")
	nine := func(day int) string { return fmt.Sprintf("2026-01-%02dT09:00:00Z", day) }
	tests := []struct {
		name     string
		from, to string
		max      int
		want     []string
		wantMore bool
	}{
		{"all runs fit", "2026-01-01T00:00:00Z", "2026-01-10T00:00:00Z", 20,
			[]string{nine(1), nine(2), nine(3), nine(4), nine(5), nine(6), nine(7), nine(8), nine(9)}, false},
		{"exactly max runs", "2026-01-01T00:00:00Z", "2026-01-10T00:00:00Z", 9,
			[]string{nine(1), nine(2), nine(3), nine(4), nine(5), nine(6), nine(7), nine(8), nine(9)}, false},
		{"truncated", "2026-01-01T00:00:00Z", "2026-01-10T00:00:00Z", 3,
			[]string{nine(1), nine(2), nine(3)}, true},
		{"one short", "2026-01-01T00:00:00Z", "2026-01-10T00:00:00Z", 8,
			[]string{nine(1), nine(2), nine(3), nine(4), nine(5), nine(6), nine(7), nine(8)}, true},
		{"from excluded, to included", nine(1), nine(3), 10,
			[]string{nine(2), nine(3)}, false},
		{"max 0 returns none but reports more", "2026-01-01T00:00:00Z", "2026-01-10T00:00:00Z", 0,
			nil, true},
		{"negative max", "2026-01-01T00:00:00Z", "2026-01-10T00:00:00Z", -5,
			nil, true},
		{"no runs in interval", "2026-01-01T10:00:00Z", "2026-01-02T08:59:59Z", 10,
			nil, false},
		{"max 0 and no runs", "2026-01-01T10:00:00Z", "2026-01-02T08:59:59Z", 0,
			nil, false},
		{"empty interval", nine(1), nine(1), 10,
			nil, false},
		{"reversed interval", nine(5), nine(1), 10,
			nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, more := daily.Runs(at(tt.from), at(tt.to), tt.max)
			if got == nil {
				t.Error("Runs returned a nil slice")
			}
			want := ats(tt.want...)
			if !equalTimes(got, want) || more != tt.wantMore {
				t.Errorf("Runs = %s, %v; want %s, %v", format(got, time.UTC), more, format(want, time.UTC), tt.wantMore)
			}
		})
	}
}

// checkIncreasing asserts that runs lie in (from, to], are in UTC and strictly increase.
func checkIncreasing(t *testing.T, runs []time.Time, from, to time.Time) {
	t.Helper()
	for i, r := range runs {
		if !r.After(from) || r.After(to) {
			t.Errorf("run %v outside (%v, %v]", r, from, to)
		}
		if r.Location() != time.UTC {
			t.Errorf("run %v not in UTC", r)
		}
		if i > 0 && !r.After(runs[i-1]) {
			t.Errorf("runs not strictly increasing: %v then %v", runs[i-1], r)
		}
	}
}

func TestRunsAcrossBothTransitions(t *testing.T) {
	tests := []struct {
		expr, tz string
		want     int // runs from 2026-03-01 to 2026-11-30 local (275 days)
	}{
		{"30 2 * * *", "Europe/Berlin", 275},
		{"*/30 2 * * *", "Europe/Berlin", 275*2 - 1}, // gap day: one run instead of two
		{"0 * * * *", "Europe/Berlin", 275 * 24},     // a lost and a gained hour cancel out
		{"*/30 * * * *", "Europe/Berlin", 275 * 48},
		{"30 1 * * *", "America/New_York", 275},
		{"*/30 1 * * *", "America/New_York", 275 * 2},
		{"30 2 * * *", "America/New_York", 275},
		{"0 * * * *", "America/New_York", 275 * 24},
		{"*/30 * * * *", "America/New_York", 275 * 48},
	}
	for _, tt := range tests {
		t.Run(tt.expr+" "+tt.tz, func(t *testing.T) {
			s := mustParse(t, tt.expr, tt.tz)
			from := time.Date(2026, 3, 1, 0, 0, 0, 0, s.Location()).Add(-time.Nanosecond)
			to := time.Date(2026, 12, 1, 0, 0, 0, 0, s.Location()).Add(-time.Nanosecond)
			runs, more := s.Runs(from, to, 100000)
			if more {
				t.Fatal("unexpected more")
			}
			checkIncreasing(t, runs, from, to)
			seen := make(map[time.Time]bool, len(runs))
			for _, r := range runs {
				if seen[r] {
					t.Errorf("duplicate run %v", r)
				}
				seen[r] = true
			}
			if len(runs) != tt.want {
				t.Errorf("got %d runs, want %d", len(runs), tt.want)
			}
			// Runs agrees with walking Next.
			if got := s.Preview(from, len(runs)); !equalTimes(got, runs) {
				t.Error("Preview and Runs disagree")
			}
		})
	}
}

// TestOncePerLocalDay2026: a fixed-time daily spec runs exactly once on every
// local calendar day of 2026, whatever the transitions do to that time.
func TestOncePerLocalDay2026(t *testing.T) {
	tests := []struct{ expr, tz string }{
		{"30 2 * * *", "Europe/Berlin"},
		{"30 2 * * *", "America/New_York"},
		{"30 1 * * *", "America/New_York"},
		{"0 2 * * *", "Europe/Berlin"},
		{"15 2 * * *", "Australia/Lord_Howe"},
		{"45 1 * * *", "Australia/Lord_Howe"},
		{"30 1 * * *", "Australia/Lord_Howe"},
		{"0 0 * * *", "America/Santiago"},
		{"30 23 * * *", "America/Santiago"},
	}
	for _, tt := range tests {
		t.Run(tt.expr+" "+tt.tz, func(t *testing.T) {
			s := mustParse(t, tt.expr, tt.tz)
			loc := s.Location()
			from := time.Date(2026, 1, 1, 0, 0, 0, 0, loc).Add(-time.Nanosecond)
			to := time.Date(2027, 1, 1, 0, 0, 0, 0, loc).Add(-time.Nanosecond)
			runs, more := s.Runs(from, to, 1000)
			if more {
				t.Fatal("unexpected more")
			}
			checkIncreasing(t, runs, from, to)
			perDay := map[string]int{}
			for _, r := range runs {
				perDay[r.In(loc).Format(time.DateOnly)]++
			}
			for d := time.Date(2026, 1, 1, 12, 0, 0, 0, loc); d.Year() == 2026; d = d.AddDate(0, 0, 1) {
				if n := perDay[d.Format(time.DateOnly)]; n != 1 {
					t.Errorf("%s: %d runs, want 1", d.Format(time.DateOnly), n)
				}
			}
			if len(runs) != 365 {
				t.Errorf("%d runs in 2026, want 365", len(runs))
			}
		})
	}
}

// TestElapsedCadence2026: every-hour specs keep their real-time cadence
// through both transitions, and the hourly count per local day follows the
// length of that day.
func TestElapsedCadence2026(t *testing.T) {
	tests := []struct {
		expr, tz string
		step     time.Duration
		gapDay   string
		overDay  string
	}{
		{"0 * * * *", "Europe/Berlin", time.Hour, "2026-03-29", "2026-10-25"},
		{"*/30 * * * *", "Europe/Berlin", 30 * time.Minute, "2026-03-29", "2026-10-25"},
		{"0 * * * *", "America/New_York", time.Hour, "2026-03-08", "2026-11-01"},
		{"*/30 * * * *", "America/New_York", 30 * time.Minute, "2026-03-08", "2026-11-01"},
		{"*/15 * * * *", "Australia/Lord_Howe", 15 * time.Minute, "2026-10-04", "2026-04-05"},
	}
	for _, tt := range tests {
		t.Run(tt.expr+" "+tt.tz, func(t *testing.T) {
			s := mustParse(t, tt.expr, tt.tz)
			loc := s.Location()
			from := time.Date(2026, 1, 1, 0, 0, 0, 0, loc).Add(-time.Nanosecond)
			to := time.Date(2027, 1, 1, 0, 0, 0, 0, loc).Add(-time.Nanosecond)
			runs, _ := s.Runs(from, to, 1<<20)
			checkIncreasing(t, runs, from, to)
			for i := 1; i < len(runs); i++ {
				if d := runs[i].Sub(runs[i-1]); d != tt.step {
					t.Fatalf("%v -> %v is %v apart, want %v", runs[i-1], runs[i], d, tt.step)
				}
			}
			if want := int(to.Sub(from) / tt.step); len(runs) != want {
				t.Errorf("%d runs, want %d", len(runs), want)
			}
			perDay := map[string]time.Duration{}
			for _, r := range runs {
				perDay[r.In(loc).Format(time.DateOnly)] += tt.step
			}
			gap := 24*time.Hour - time.Hour
			over := 24*time.Hour + time.Hour
			if tt.tz == "Australia/Lord_Howe" {
				gap, over = 24*time.Hour-30*time.Minute, 24*time.Hour+30*time.Minute
			}
			if got := perDay[tt.gapDay]; got != gap {
				t.Errorf("%s covers %v of runs, want %v", tt.gapDay, got, gap)
			}
			if got := perDay[tt.overDay]; got != over {
				t.Errorf("%s covers %v of runs, want %v", tt.overDay, got, over)
			}
		})
	}
}

// FuzzParse checks that Parse never panics and that accepted specs produce
// strictly increasing runs after the given instant.
func FuzzParse(f *testing.F) {
	for _, seed := range []string{
		"30 2 * * *", "*/15 2 * * *", "0 * * * *", "@daily", "@every 1m", "TZ=UTC",
		"0 TZ=UTC * * *", "CRON_TZ=", "* * * * * *", "1-2-3 * * * *", "*/ * * * *", "@",
		"0 0 31 2,4 *", "59 23 31 12 *",
	} {
		f.Add(seed, uint8(0), int64(1774740000))
	}
	zones := []string{"UTC", "Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "America/Santiago"}
	f.Fuzz(func(t *testing.T, expr string, zone uint8, unix int64) {
		s, err := Parse(expr, zones[int(zone)%len(zones)])
		if err != nil {
			var perr *Error
			if !errors.As(err, &perr) || perr.Message == "" {
				t.Fatalf("bad error %v", err)
			}
			return
		}
		from := time.Unix(unix%(1<<34), 0) // roughly years 1426-2514
		prev := from
		for _, r := range s.Preview(from, 5) {
			if !r.After(prev) {
				t.Fatalf("%q: run %v not after %v", expr, r, prev)
			}
			prev = r
		}
	})
}
