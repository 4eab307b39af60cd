// Package schedule runs each site's scheduled scans in koekje serve, and
// judges a site's record of them: a strip of verdicts per day, the slots
// that ended without a scan, and the alerts a site owner acts on.
//
// A schedule divides time into slots (config.ScanSchedule.Slot): every
// slot should hold one scan that the schedule ran. A slot that ended
// without one is missing, whatever the reason (the server was down, the
// browser failed to start), so a gap in the proof is shown, never skipped.
package schedule

import (
	"context"
	"strconv"
	"time"

	"github.com/google/uuid"

	"github.com/koekje/koekje/config"
	"github.com/koekje/koekje/server/consent"
	"github.com/koekje/koekje/server/store"
)

// The states of a day in the strip, worst first.
const (
	StateFail         = consent.ScanFail
	StateMissing      = "missing" // a slot of the schedule ended in it without a scheduled scan
	StateInconclusive = consent.ScanInconclusive
	StateClean        = consent.ScanClean
	StateDue          = "due"  // the current slot starts in it and has no scan yet
	StateNone         = "none" // nothing scanned, nothing expected
)

var stateRank = map[string]int{StateFail: 0, StateMissing: 1, StateInconclusive: 2, StateClean: 3, StateDue: 4, StateNone: 5}

// Grace is how long into its slot a scheduled scan may take before the
// slot counts as overdue: the scheduler starts a slot's scans at once, one
// site at a time, each bounded by ScanTimeout.
const Grace = time.Hour

// Day is one UTC day of a site's scan history.
type Day struct {
	Date  time.Time       // midnight UTC
	Scans []*consent.Scan // the scans started that day, scheduled or not, newest first
	// Slots counts the schedule's slots that start this day and have
	// ended (or are overdue); Missing those of them without a scheduled
	// scan.
	Slots, Missing int
	State          string // the worst of the day: one of the State constants
}

// Status is what a site's scans show against its schedule.
type Status struct {
	Schedule *config.ScanSchedule
	Days     []Day // oldest first, up to today
	// Latest is the newest scan the schedule ran, nil before the first.
	Latest *consent.Scan
	// Missing are the starts of the slots, within the days shown, that
	// ended (or are overdue) without a scheduled scan, oldest first.
	Missing []time.Time
	// Since is the start of the first slot held to the schedule: that of
	// the oldest scheduled scan on record; zero before the first.
	Since time.Time
}

// Alerts are what needs the site owner's attention, in words: the latest
// scheduled scan failed or was inconclusive, slots were missed, or none
// has been recorded at all.
func (st *Status) Alerts() []string {
	var out []string
	if st.Schedule == nil {
		return nil
	}
	if st.Latest == nil {
		return []string{"no scheduled scan has been recorded yet (every " + st.Schedule.Every + ")"}
	}
	switch st.Latest.Verdict {
	case consent.ScanFail:
		out = append(out, "the latest scheduled scan ("+st.Latest.StartedAt.Format("2006-01-02 15:04")+" UTC) failed")
	case consent.ScanInconclusive:
		out = append(out, "the latest scheduled scan ("+st.Latest.StartedAt.Format("2006-01-02 15:04")+" UTC) was inconclusive: not every page was scanned")
	}
	if n := len(st.Missing); n > 0 {
		last := st.Missing[n-1].Format("2006-01-02 15:04")
		if n == 1 {
			out = append(out, "the scheduled scan of the slot that began "+last+" UTC is missing")
		} else {
			out = append(out, strconv.Itoa(n)+" scheduled scans are missing; the latest missing slot began "+last+" UTC")
		}
	}
	return out
}

// Judge holds scans (newest first, back to at least from) to the schedule
// over the days from from to now. Slots before since (the first scheduled
// scan's slot) are not held to it; zero since: none is.
func Judge(sched *config.ScanSchedule, scans []*consent.Scan, since, from, now time.Time) *Status {
	st := &Status{Schedule: sched, Since: since}
	from = midnight(from)
	today := midnight(now)
	if from.After(today) {
		from = today
	}
	for d := from; !d.After(today); d = d.AddDate(0, 0, 1) {
		st.Days = append(st.Days, Day{Date: d})
	}
	dayOf := func(t time.Time) int { return int(midnight(t).Sub(from) / (24 * time.Hour)) }
	scheduled := map[time.Time]bool{} // slots holding a scheduled scan
	for _, sc := range scans {
		if sc.Schedule != "" && (st.Latest == nil || sc.StartedAt.After(st.Latest.StartedAt)) {
			st.Latest = sc
		}
		if sched != nil && sc.Schedule != "" {
			scheduled[sched.Slot(sc.StartedAt)] = true
		}
		if i := dayOf(sc.StartedAt); !sc.StartedAt.Before(from) && i < len(st.Days) {
			st.Days[i].Scans = append(st.Days[i].Scans, sc)
		}
	}
	if sched != nil && sched.Interval() > 0 && !since.IsZero() {
		first := sched.Slot(since)
		for slot := sched.Slot(from); !slot.After(now); slot = slot.Add(sched.Interval()) {
			if slot.Before(first) || slot.Before(from) {
				continue
			}
			ended := !slot.Add(sched.Interval()).After(now)
			overdue := now.Sub(slot) > Grace
			if !ended && !overdue {
				continue
			}
			d := &st.Days[dayOf(slot)]
			d.Slots++
			if !scheduled[slot] {
				d.Missing++
				st.Missing = append(st.Missing, slot)
			}
		}
	}
	var current time.Time
	if sched != nil && sched.Interval() > 0 {
		current = sched.Slot(now)
	}
	for i := range st.Days {
		d := &st.Days[i]
		d.State = StateNone
		worse := func(s string) {
			if stateRank[s] < stateRank[d.State] {
				d.State = s
			}
		}
		for _, sc := range d.Scans {
			worse(sc.Verdict)
		}
		if d.Missing > 0 {
			worse(StateMissing)
		}
		if !current.IsZero() && midnight(current).Equal(d.Date) && !scheduled[current] {
			worse(StateDue)
		}
	}
	return st
}

func midnight(t time.Time) time.Time {
	y, m, d := t.UTC().Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}

// pageSize is how many scans Load reads at a time.
const pageSize = 500

// maxLoad bounds the scans Load reads looking for the schedule's first.
const maxLoad = 20 * pageSize

// Load reads site's scans back to from (newest first), and the start of
// the first slot held to the schedule: that of its oldest scheduled scan,
// looked for before from when none is after it.
func Load(ctx context.Context, db store.Scans, site string, from time.Time) (scans []*consent.Scan, since time.Time, err error) {
	before := uuid.Nil
	read := 0
	for read < maxLoad {
		page, err := db.Scans(ctx, site, before, pageSize)
		if err != nil {
			return nil, time.Time{}, err
		}
		read += len(page)
		for _, sc := range page {
			if sc.Schedule != "" && (since.IsZero() || sc.StartedAt.Before(since)) {
				since = sc.StartedAt
			}
			if !sc.StartedAt.Before(from) {
				scans = append(scans, sc)
			} else if !since.IsZero() && since.Before(from) {
				// The schedule began before the days shown: nothing
				// older changes what is shown.
				return scans, since, nil
			}
		}
		if len(page) < pageSize {
			break
		}
		before = page[len(page)-1].ID
	}
	return scans, since, nil
}

// StatusOf loads and judges site's scans over the days since from.
func StatusOf(ctx context.Context, db store.Scans, site *config.Site, from, now time.Time) (*Status, error) {
	scans, since, err := Load(ctx, db, site.ID, midnight(from))
	if err != nil {
		return nil, err
	}
	return Judge(site.Scan, scans, since, from, now), nil
}
