package schedule

import (
	"slices"
	"testing"
	"time"

	"github.com/koekje/koekje/config"
	"github.com/koekje/koekje/server/consent"
)

func at(s string) time.Time {
	t, err := time.Parse("2006-01-02 15:04", s)
	if err != nil {
		panic(err)
	}
	return t
}

func scanAt(s, verdict, schedule string) *consent.Scan {
	return &consent.Scan{StartedAt: at(s), Verdict: verdict, Schedule: schedule}
}

func TestSlots(t *testing.T) {
	for _, c := range []struct{ every, t, want string }{
		{"daily", "2026-12-07 13:45", "2026-12-07 00:00"},
		{"daily", "2026-12-07 00:00", "2026-12-07 00:00"},
		{"12h", "2026-12-07 13:45", "2026-12-07 12:00"},
		{"6h", "2026-12-07 05:59", "2026-12-07 00:00"},
		{"weekly", "2026-12-07 13:45", "2026-12-07 00:00"}, // a Monday
		{"weekly", "2026-12-13 23:59", "2026-12-07 00:00"}, // the Sunday after
		{"weekly", "2026-12-14 00:00", "2026-12-14 00:00"},
		{"daily", "1969-12-31 23:00", "1969-12-31 00:00"},
	} {
		s := &config.ScanSchedule{Every: c.every}
		if got := s.Slot(at(c.t)); !got.Equal(at(c.want)) {
			t.Errorf("%s slot of %s: %s, want %s", c.every, c.t, got, c.want)
		}
	}
}

// A day whose scheduled scan is not on record shows missing, not skipped:
// the server was down on the 3rd; the 5th's scan failed; today's is due.
func TestJudgeDaily(t *testing.T) {
	sched := &config.ScanSchedule{Every: "daily"}
	scans := []*consent.Scan{ // newest first
		scanAt("2026-12-07 00:03", consent.ScanClean, ""), // koekje scan by hand: not the schedule's
		scanAt("2026-12-06 00:02", consent.ScanInconclusive, "daily"),
		scanAt("2026-12-05 00:02", consent.ScanFail, "daily"),
		scanAt("2026-12-04 00:02", consent.ScanClean, "daily"),
		scanAt("2026-12-02 00:02", consent.ScanClean, "daily"),
	}
	st := Judge(sched, scans, at("2026-12-02 00:02"), at("2026-12-01 00:00"), at("2026-12-07 01:30"))
	var got []string
	for _, d := range st.Days {
		got = append(got, d.Date.Format("02")+" "+d.State)
	}
	want := []string{"01 none", "02 clean", "03 missing", "04 clean", "05 fail", "06 inconclusive", "07 missing"}
	if !slices.Equal(got, want) {
		t.Errorf("days %q, want %q", got, want)
	}
	if st.Latest != scans[1] {
		t.Errorf("latest scheduled scan %+v, want the 6th's", st.Latest)
	}
	if !slices.Equal(st.Missing, []time.Time{at("2026-12-03 00:00"), at("2026-12-07 00:00")}) {
		t.Errorf("missing %v", st.Missing)
	}
	alerts := st.Alerts()
	if len(alerts) != 2 || alerts[0] != "the latest scheduled scan (2026-12-06 00:02 UTC) was inconclusive: not every page was scanned" ||
		alerts[1] != "2 scheduled scans are missing; the latest missing slot began 2026-12-07 00:00 UTC" {
		t.Errorf("alerts %q", alerts)
	}
	// Within the grace, today's slot is due, not missing.
	st = Judge(sched, scans, at("2026-12-02 00:02"), at("2026-12-06 00:00"), at("2026-12-07 00:30"))
	if got := st.Days[len(st.Days)-1].State; got != StateClean {
		// the hand-made scan of the 7th is clean; the due slot ranks below it
		t.Errorf("today within the grace: %s, want clean (a scan by hand, the slot due)", got)
	}
	if len(st.Missing) != 0 {
		t.Errorf("missing within the grace: %v", st.Missing)
	}
	// Before the schedule's first scan nothing is held to it.
	st = Judge(sched, scans[:1], time.Time{}, at("2026-12-01 00:00"), at("2026-12-07 12:00"))
	if len(st.Missing) != 0 || st.Latest != nil {
		t.Errorf("no scheduled scan on record: missing %v, latest %v", st.Missing, st.Latest)
	}
	if a := st.Alerts(); len(a) != 1 || a[0] != "no scheduled scan has been recorded yet (every daily)" {
		t.Errorf("alerts with none on record: %q", a)
	}
}

// With two slots a day, a day with one of them scanned still shows the
// other missing; a weekly slot is shown on the day it starts.
func TestJudgeSlotsPerDay(t *testing.T) {
	twice := &config.ScanSchedule{Every: "12h"}
	scans := []*consent.Scan{scanAt("2026-12-06 12:01", consent.ScanClean, "12h"), scanAt("2026-12-05 00:01", consent.ScanClean, "12h")}
	st := Judge(twice, scans, at("2026-12-05 00:01"), at("2026-12-05 00:00"), at("2026-12-06 23:00"))
	if d := st.Days[0]; d.Slots != 2 || d.Missing != 1 || d.State != StateMissing {
		t.Errorf("the 5th: %+v", d)
	}
	if d := st.Days[1]; d.Slots != 2 || d.Missing != 1 || d.State != StateMissing {
		t.Errorf("the 6th: %+v", d)
	}
	weekly := &config.ScanSchedule{Every: "weekly"}
	scans = []*consent.Scan{scanAt("2026-11-23 00:05", consent.ScanClean, "weekly")}
	st = Judge(weekly, scans, at("2026-11-23 00:05"), at("2026-11-23 00:00"), at("2026-12-08 00:00"))
	if !slices.Equal(st.Missing, []time.Time{at("2026-11-30 00:00"), at("2026-12-07 00:00")}) {
		t.Errorf("weekly missing %v", st.Missing)
	}
	if st.Days[7].State != StateMissing || st.Days[8].State != StateNone {
		t.Errorf("weekly days: 30th %s, 1st %s", st.Days[7].State, st.Days[8].State)
	}
}
