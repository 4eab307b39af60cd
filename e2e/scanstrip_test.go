package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/koekje/koekje/config"
	"github.com/koekje/koekje/server/consent"
)

// scheduledSite is the demo site scanned daily by koekje serve's schedule
// (the test servers run no scheduler: the tests record its scans).
func scheduledSite(rev int) *config.Site {
	s := demoSiteAt("scheduled", rev, "https://www.example.nl")
	s.Name = "Scheduled B.V."
	s.Scan = &config.ScanSchedule{Every: "daily", Pages: []string{"https://www.example.nl/"}, PagesPerProfile: 10}
	return s
}

// A site owner, or an auditor, reads a site's scans per day: the strip
// shows a day whose scheduled scan is missing as missing (the server was
// down), a failed day as failed, each scanned day's report one click away,
// and the dashboard and the site's page alert on both; axe finds nothing.
func TestConsoleScanStrip(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	today := time.Now().UTC().Truncate(24 * time.Hour)
	day := func(n int) time.Time { return today.AddDate(0, 0, n).Add(5 * time.Minute) }
	for _, sc := range []struct {
		at       time.Time
		verdict  string
		schedule string
	}{
		{day(-4), consent.ScanClean, "daily"},
		{day(-3), consent.ScanClean, "daily"},
		// day -2: the server was down; nothing was scanned.
		{day(-1), consent.ScanFail, "daily"},
		{day(-1).Add(time.Hour), consent.ScanClean, ""}, // koekje scan by hand, after the fix
	} {
		n := 0
		if sc.verdict == consent.ScanFail {
			n = 1
		}
		if err := store.AddScan(ctx, &consent.Scan{Site: "scheduled", StartedAt: sc.at, ConfigHash: "sha256:0", Verdict: sc.verdict,
			Violations: n, URLs: []string{"https://www.example.nl/"}, Schedule: sc.schedule,
			Report: []byte(`{"site":"scheduled","schedule":"` + sc.schedule + `"}`)}); err != nil {
			t.Fatal(err)
		}
	}

	tb := newTab(t)
	tb.do(chromedp.Navigate(koekjeURL + "/admin"))
	tb.waitFor(`document.querySelector('#token')`)
	tb.do(chromedp.SendKeys(chromedp.CSS("#token"), "e2e-admin"), chromedp.Submit(chromedp.CSS("#token")))
	tb.waitFor(`location.pathname === '/admin' && document.querySelector('table')`)
	alerts := eval[string](tb, `[...document.querySelectorAll('main [role=alert]')].map(p => p.textContent).join('\n')`)
	missed := "Scheduled B.V.: the scheduled scan of the slot that began " + day(-2).Format("2006-01-02") + " 00:00 UTC is missing"
	if !strings.Contains(alerts, missed) && !strings.Contains(alerts, "Scheduled B.V.: 2 scheduled scans are missing") {
		t.Errorf("no alert on the dashboard for the missed day:\n%s", alerts)
	}
	if !strings.Contains(alerts, "Scheduled B.V.: the latest scheduled scan ("+day(-1).Format("2006-01-02 15:04")+" UTC) failed") {
		t.Errorf("no alert on the dashboard for the failed scan:\n%s", alerts)
	}
	tb.axe("dashboard with scan alerts")

	tb.click(`document.querySelector('main a[href="/admin/sites/scheduled#scans"]')`)
	tb.waitFor(`document.querySelector('ol.strip')`)
	cells := eval[[]string](tb, `[...document.querySelectorAll('ol.strip li')].slice(-5).map(li => li.textContent)`)
	want := []string{
		day(-4).Format("2006-01-02") + ": clean (1 scan)",
		day(-3).Format("2006-01-02") + ": clean (1 scan)",
		day(-2).Format("2006-01-02") + ": a scheduled scan missing (1 of 1 scheduled slots missing)",
		day(-1).Format("2006-01-02") + ": failed (2 scans)",
	}
	for i, w := range want {
		// each cell is its symbol, then its words
		if len(cells) < 5 || !strings.HasSuffix(cells[i], w) {
			t.Errorf("strip cell %d: %q, want %q (cells %q)", i, cells, w, cells)
			break
		}
	}
	// Today: due within the first hour, missing after it.
	if last := cells[len(cells)-1]; !strings.Contains(last, today.Format("2006-01-02")+": the scheduled scan due") &&
		!strings.Contains(last, today.Format("2006-01-02")+": a scheduled scan missing") {
		t.Errorf("today's cell: %q", last)
	}
	// The failed day's cell opens its newest report (the scan by hand).
	report := eval[string](tb, `fetch([...document.querySelectorAll('ol.strip li a')].at(-1).href).then(r => r.text())`)
	if !strings.Contains(report, "koekje scan of site scheduled") {
		t.Errorf("the day's report: %.200s", report)
	}
	summary := eval[string](tb, `document.querySelector('section[aria-labelledby=scans] ol.strip').previousElementSibling.textContent`)
	if !strings.Contains(summary, "Scanned on schedule daily") || !strings.Contains(summary, "2 clean, 1 failed, 0 inconclusive") {
		t.Errorf("the strip's summary: %q", summary)
	}
	tb.axe("site page with the scan strip")
}
