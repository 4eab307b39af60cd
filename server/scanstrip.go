package server

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/koekje/koekje/config"
	"github.com/koekje/koekje/server/consent"
	"github.com/koekje/koekje/server/schedule"
)

// maxStripDays bounds the console's strip of scans per day: a year.
const maxStripDays = 366

// scanStrip is what the console shows of a site's scans: one cell per UTC
// day of the period shown (its newest year at most), held to the site's
// schedule, with the alerts and the period's counts.
type scanStrip struct {
	Schedule *config.ScanSchedule
	Since    time.Time // the schedule's first scan on record
	Alerts   []string
	Days     []stripDay
	// Counts over the days shown: slots held to the schedule, those
	// missing, and the scheduled scans by verdict.
	Slots, Missing, Clean, Failed, Inconclusive int
}

// stripDay is one cell: its state (a class and a symbol, so colour is not
// the only sign), its words, and the day's newest report.
type stripDay struct {
	State, Symbol, Words, Report string
}

var stripSymbols = map[string]string{
	schedule.StateClean: "✓", schedule.StateFail: "✗", schedule.StateInconclusive: "?",
	schedule.StateMissing: "!", schedule.StateDue: "…", schedule.StateNone: "",
}

var stripWords = map[string]string{
	schedule.StateClean: "clean", schedule.StateFail: "failed", schedule.StateInconclusive: "inconclusive",
	schedule.StateMissing: "a scheduled scan missing", schedule.StateDue: "the scheduled scan due", schedule.StateNone: "not scanned",
}

// siteScanStrip judges site's scans over the days from from to to (to
// exclusive; zero: today).
func (s *Server) siteScanStrip(ctx context.Context, site *config.Site, from, to time.Time) (*scanStrip, error) {
	now := time.Now().UTC()
	end := now
	if !to.IsZero() && to.Before(now) {
		end = to.Add(-time.Nanosecond)
	}
	if from.IsZero() || end.Sub(from) > maxStripDays*24*time.Hour {
		from = end.AddDate(0, 0, 1-maxStripDays)
	}
	st, err := schedule.StatusOf(ctx, s.store, site, from, now)
	if err != nil {
		return nil, err
	}
	out := &scanStrip{Schedule: site.Scan, Since: st.Since}
	if site.Scan != nil {
		out.Alerts = st.Alerts()
	}
	for _, d := range st.Days {
		if d.Date.After(end) {
			break
		}
		out.Slots += d.Slots
		out.Missing += d.Missing
		cell := stripDay{State: d.State, Symbol: stripSymbols[d.State]}
		var words []string
		for _, sc := range d.Scans {
			if sc.Schedule == "" {
				continue
			}
			switch sc.Verdict {
			case consent.ScanClean:
				out.Clean++
			case consent.ScanFail:
				out.Failed++
			case consent.ScanInconclusive:
				out.Inconclusive++
			}
		}
		if n := len(d.Scans); n > 0 {
			cell.Report = "/admin/sites/" + site.ID + "/scans/" + d.Scans[0].ID.String() + "?format=text"
			words = append(words, plural(n, "scan", "scans"))
		}
		if d.Missing > 0 {
			words = append(words, fmt.Sprintf("%d of %d scheduled slots missing", d.Missing, d.Slots))
		}
		cell.Words = d.Date.Format("2006-01-02") + ": " + stripWords[d.State]
		if len(words) > 0 {
			cell.Words += " (" + strings.Join(words, ", ") + ")"
		}
		out.Days = append(out.Days, cell)
	}
	return out, nil
}
