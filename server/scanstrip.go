package server

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

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

// scanDays judges site's scans over the days from from to to (to
// exclusive; zero: today), a year at most, the newest.
func (s *Server) scanDays(ctx context.Context, site *config.Site, from, to time.Time) (*schedule.Status, error) {
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
	for i, d := range st.Days {
		if d.Date.After(end) {
			st.Days = st.Days[:i]
			break
		}
	}
	if len(st.Days) > 0 {
		last := st.Days[len(st.Days)-1].Date.AddDate(0, 0, 1)
		st.Missing = slices.DeleteFunc(st.Missing, func(t time.Time) bool { return !t.Before(last) })
	}
	return st, nil
}

// siteScanStrip is the console's strip of site's scans over the days from
// from to to.
func (s *Server) siteScanStrip(ctx context.Context, site *config.Site, from, to time.Time) (*scanStrip, error) {
	st, err := s.scanDays(ctx, site, from, to)
	if err != nil {
		return nil, err
	}
	out := &scanStrip{Schedule: site.Scan, Since: st.Since}
	if site.Scan != nil {
		out.Alerts = st.Alerts()
	}
	for _, d := range st.Days {
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

// listScanDays answers with a site's scans per UTC day over a period (a
// year at most; the last 30 days by default), held to its schedule: what
// an auditor checks a site's year against.
func (s *Server) listScanDays(c echo.Context) error {
	site, err := s.pathSite(c)
	if err != nil {
		return err
	}
	from, to, err := period(c)
	if err != nil {
		return err
	}
	if from.IsZero() && to.IsZero() {
		from = time.Now().UTC().AddDate(0, 0, -29)
	}
	st, err := s.scanDays(c.Request().Context(), site, from, to)
	if err != nil {
		return err
	}
	type scanOfDay struct {
		ID        string    `json:"id"`
		StartedAt time.Time `json:"started_at"`
		Verdict   string    `json:"verdict"`
		Schedule  string    `json:"schedule,omitempty"`
	}
	type day struct {
		Date    string      `json:"date"`
		State   string      `json:"state"`
		Slots   int         `json:"slots"`
		Missing int         `json:"missing"`
		Scans   []scanOfDay `json:"scans"`
	}
	days := make([]day, len(st.Days))
	for i, d := range st.Days {
		days[i] = day{Date: d.Date.Format(time.DateOnly), State: d.State, Slots: d.Slots, Missing: d.Missing, Scans: []scanOfDay{}}
		for _, sc := range d.Scans {
			days[i].Scans = append(days[i].Scans, scanOfDay{sc.ID.String(), sc.StartedAt, sc.Verdict, sc.Schedule})
		}
	}
	out := map[string]any{"site": site.ID, "days": days, "missing": nonNilTimes(st.Missing), "alerts": nonNilStrings(st.Alerts())}
	if site.Scan != nil {
		out["schedule"] = map[string]any{"every": site.Scan.Every, "pages": site.Scan.Pages}
	}
	if !st.Since.IsZero() {
		out["since"] = st.Since
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.JSON(http.StatusOK, out)
}

func nonNilTimes(t []time.Time) []time.Time {
	if t == nil {
		return []time.Time{}
	}
	return t
}

func nonNilStrings(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
