package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/koekje/koekje/config"
	"github.com/koekje/koekje/server/consent"
	"github.com/koekje/koekje/server/scan"
	"github.com/koekje/koekje/server/sqlite"
)

// recordScan stores a scan report of site as koekje scan --record does,
// with violations cookies set before any choice (none: a clean scan).
func recordScan(t *testing.T, db *sqlite.DB, site, configHash string, started time.Time, violations ...string) *consent.Scan {
	t.Helper()
	r := &scan.Report{Site: site, ConfigHash: configHash, Started: started, Seconds: 4.2,
		Pages: []string{"http://shop.test/", "http://shop.test/contact"},
		Undeclared: []scan.Finding{{Kind: scan.KindCookie, Profile: scan.Accepted, Page: "http://shop.test/", Name: "_fbp",
			Domain: ".shop.test", Actual: "3 months", Message: "cookie _fbp is not declared"}},
		Stale: []scan.Finding{}}
	for _, name := range violations {
		r.Violations = append(r.Violations, scan.Finding{Kind: scan.KindCookie, Profile: scan.Before, Page: "http://shop.test/",
			Name: name, Domain: "shop.test", SetBy: "script", Source: "http://shop.test/tag.js",
			Message: "analytics cookie " + name + " set before any choice"})
	}
	var js bytes.Buffer
	if err := r.Write(&js, "json", false); err != nil {
		t.Fatal(err)
	}
	sc := &consent.Scan{Site: site, StartedAt: started, ConfigHash: configHash, Verdict: r.Verdict(false), Violations: len(r.Violations),
		Undeclared: len(r.Undeclared), URLs: r.Pages, Report: js.Bytes()}
	if err := db.AddScan(context.Background(), sc); err != nil {
		t.Fatal(err)
	}
	return sc
}

// Auditors list a site's scans newest first, page through them, and fetch
// one report as JSON or text, with the admin token only.
func TestScanAPI(t *testing.T) {
	t.Parallel()
	s, db := newServer(t, 0)
	hash := s.Bundle("demo").Hash
	day := time.Date(2026, 11, 20, 6, 0, 0, 0, time.UTC)
	old := recordScan(t, db, "demo", "sha256:older", day)
	mid := recordScan(t, db, "demo", hash, day.Add(24*time.Hour))
	latest := recordScan(t, db, "demo", hash, day.Add(48*time.Hour), "_ga", "_gid")
	auth := []string{"Authorization", "Bearer " + adminToken}

	for _, sc := range []scenario{
		{name: "no token", method: "GET", path: "/api/v1/sites/demo/scans", status: 401, code: consent.EUNAUTHORIZED},
		{name: "wrong token", method: "GET", path: "/api/v1/sites/demo/scans/" + latest.ID.String(), headers: []string{"Authorization", "Bearer nope"}, status: 401, code: consent.EUNAUTHORIZED},
		{name: "unknown site", method: "GET", path: "/api/v1/sites/nope/scans", headers: auth, status: 404, code: consent.ENOTFOUND, field: "site"},
		{name: "limit 0", method: "GET", path: "/api/v1/sites/demo/scans?limit=0", headers: auth, status: 422, code: consent.EINVALID, field: "limit"},
		{name: "limit too big", method: "GET", path: "/api/v1/sites/demo/scans?limit=501", headers: auth, status: 422, code: consent.EINVALID, field: "limit"},
		{name: "bad cursor", method: "GET", path: "/api/v1/sites/demo/scans?cursor=7", headers: auth, status: 422, code: consent.EINVALID, field: "cursor"},
		{name: "bad scan ID", method: "GET", path: "/api/v1/sites/demo/scans/nope", headers: auth, status: 422, code: consent.EINVALID, field: "id"},
		{name: "unknown scan", method: "GET", path: "/api/v1/sites/demo/scans/0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b", headers: auth, status: 404, code: consent.ENOTFOUND, field: "id"},
		{name: "bad format", method: "GET", path: "/api/v1/sites/demo/scans/" + latest.ID.String() + "?format=pdf", headers: auth, status: 422, code: consent.EINVALID, field: "format"},
	} {
		t.Run(sc.name, func(t *testing.T) { sc.run(t, s) })
	}

	var page struct {
		Site       string `json:"site"`
		NextCursor string `json:"next_cursor"`
		Scans      []struct {
			ID         string    `json:"id"`
			StartedAt  time.Time `json:"started_at"`
			ConfigHash string    `json:"config_hash"`
			Violations int       `json:"violations"`
			Undeclared int       `json:"undeclared"`
			URLs       []string  `json:"urls"`
			Clean      bool      `json:"clean"`
			Current    bool      `json:"current_config"`
			ReportURL  string    `json:"report_url"`
			Report     any       `json:"report"`
		} `json:"scans"`
	}
	r := do(t, s, "GET", "/api/v1/sites/demo/scans?limit=2", "", auth...)
	if r.status != 200 {
		t.Fatalf("list: %d %s", r.status, r.body)
	}
	if err := json.Unmarshal(r.body, &page); err != nil {
		t.Fatal(err)
	}
	if page.Site != "demo" || len(page.Scans) != 2 || page.Scans[0].ID != latest.ID.String() || page.Scans[1].ID != mid.ID.String() || page.NextCursor != mid.ID.String() {
		t.Fatalf("first page: %s", r.body)
	}
	first := page.Scans[0]
	if first.Clean || first.Violations != 2 || first.Undeclared != 1 || !first.Current || len(first.URLs) != 2 || !first.StartedAt.Equal(latest.StartedAt) ||
		first.ReportURL != "/api/v1/sites/demo/scans/"+latest.ID.String() || first.Report != nil || !page.Scans[1].Clean {
		t.Errorf("listed scan: %s", r.body)
	}
	page.NextCursor = ""
	r = do(t, s, "GET", "/api/v1/sites/demo/scans?limit=2&cursor="+mid.ID.String(), "", auth...)
	if err := json.Unmarshal(r.body, &page); err != nil || r.status != 200 {
		t.Fatalf("second page: %d %s", r.status, r.body)
	}
	if len(page.Scans) != 1 || page.Scans[0].ID != old.ID.String() || page.Scans[0].Current || page.NextCursor != "" {
		t.Errorf("second page: %s", r.body)
	}

	r = do(t, s, "GET", page.Scans[0].ReportURL, "", auth...)
	if r.status != 200 || !bytes.Equal(r.body, old.Report) || !strings.HasPrefix(r.header.Get("Content-Type"), "application/json") ||
		r.header.Get("Content-Disposition") != `attachment; filename="demo-scan-20261120-060000.json"` {
		t.Errorf("JSON report: %d %v %s", r.status, r.header, r.body)
	}
	r = do(t, s, "GET", "/api/v1/sites/demo/scans/"+latest.ID.String()+"?format=text", "", auth...)
	text := string(r.body)
	if r.status != 200 || r.header.Get("Content-Type") != "text/plain; charset=utf-8" ||
		!strings.Contains(text, "FAIL  2 violations · 1 undeclared cookie · 0 stale declarations") ||
		!strings.Contains(text, "analytics cookie _gid set before any choice") || !strings.Contains(text, "set by script http://shop.test/tag.js") {
		t.Errorf("text report: %d %v\n%s", r.status, r.header, text)
	}
}

// The console shows each site's latest scans beside its statistics: a
// site whose latest scan fails comes first on the dashboard, its page
// lists that scan's violations, and the reports download after sign-in.
func TestConsoleScans(t *testing.T) {
	t.Parallel()
	var db *sqlite.DB
	s := newServerWith(t, func(d *serverDeps) {
		shop := *d.Config.Sites[0]
		shop.ID, shop.Name = "shop", "Example Shop"
		d.Config.Sites = append(d.Config.Sites, &shop)
		db = d.Store.(*sqlite.DB)
	})
	day := time.Date(2026, 11, 20, 6, 0, 0, 0, time.UTC)
	recordScan(t, db, "demo", s.Bundle("demo").Hash, day)
	clean := recordScan(t, db, "shop", "sha256:older", day)
	failing := recordScan(t, db, "shop", s.Bundle("shop").Hash, day.Add(time.Hour), "_ga")

	b := newBrowser(t, s)
	if resp, _ := b.get("/admin/sites/shop/scans/" + failing.ID.String()); resp.StatusCode != 303 {
		t.Errorf("report download before sign-in: %d, want a redirect to sign in", resp.StatusCode)
	}
	dash := b.signIn()
	sites := dash[strings.Index(dash, "<tbody>"):]
	shopAt, demoAt := strings.Index(sites, "Example Shop"), strings.Index(sites, "Belvast VoIP")
	if shopAt < 0 || demoAt < 0 || shopAt > demoAt {
		t.Errorf("dashboard: the site with a failing scan is not first (shop at %d, demo at %d)", shopAt, demoAt)
	}
	if !strings.Contains(dash, `<tr class="failing"><td><a href="/admin/sites/shop">`) || !strings.Contains(dash, "Fails: 1 violation") ||
		!strings.Contains(dash, `<span class="ok">Clean</span>, 1 undeclared cookie, 0 stale declarations (2026-11-20)`) {
		t.Errorf("dashboard does not show the latest scans:\n%s", dash)
	}

	resp, page := b.get("/admin/sites/shop")
	if resp.StatusCode != 200 {
		t.Fatalf("site page: %d", resp.StatusCode)
	}
	alert := strings.Index(page, `<p class="bad" role="alert">The latest scan (2026-11-20 07:00:00 UTC) found 1 violation`)
	violation := strings.Index(page, "analytics cookie _ga set before any choice")
	table := strings.Index(page, "<caption>The latest scans, newest first</caption>")
	charts := strings.Index(page, `<h2 id="rates">`)
	if alert < 0 || violation < alert || table < violation || charts < table {
		t.Errorf("site page: alert at %d, violation at %d, scans table at %d, statistics at %d\n%s", alert, violation, table, charts, page)
	}
	rows := page[table:charts]
	failAt, cleanAt := strings.Index(rows, failing.ID.String()), strings.Index(rows, clean.ID.String())
	if failAt < 0 || cleanAt < failAt || !strings.Contains(rows, `<tr class="failing"><td>2026-11-20 07:00:00</td>`) ||
		!strings.Contains(rows, "(current)") || !strings.Contains(rows, "(not the served banner)") {
		t.Errorf("scans table:\n%s", rows)
	}

	resp, body := b.get("/admin/sites/shop/scans/" + failing.ID.String() + "?format=json")
	if resp.StatusCode != 200 || body != string(failing.Report) || !strings.HasPrefix(resp.Header.Get("Content-Disposition"), "attachment;") {
		t.Errorf("JSON download: %d %v", resp.StatusCode, resp.Header)
	}
	resp, body = b.get("/admin/sites/shop/scans/" + failing.ID.String() + "?format=text")
	if resp.StatusCode != 200 || !strings.Contains(body, "FAIL  1 violation") || !strings.Contains(body, "The site does not do what its banner says.") {
		t.Errorf("text download: %d\n%s", resp.StatusCode, body)
	}
	// A scan is reached through its own site only.
	if resp, _ := b.get("/admin/sites/demo/scans/" + failing.ID.String()); resp.StatusCode != 404 {
		t.Errorf("shop's scan through demo: %d", resp.StatusCode)
	}
	if _, page := b.get("/admin/sites/demo"); !strings.Contains(page, `<p class="ok" role="status">The latest scan (2026-11-20 06:00:00 UTC) found no violations; 1 undeclared cookie and 0 stale declarations`) {
		t.Errorf("demo's page does not show its clean scan")
	}
	b.post("/admin/logout", url.Values{"csrf": {csrfOf(t, dash)}})
	if resp, _ := b.get("/admin/sites/shop/scans/" + failing.ID.String()); resp.StatusCode != 303 {
		t.Errorf("report download after sign-out: %d", resp.StatusCode)
	}
}

// A scan that could not scan every page is inconclusive: the console never
// words it clean nor failed, and lists what could not be scanned.
func TestConsoleInconclusiveScan(t *testing.T) {
	t.Parallel()
	var db *sqlite.DB
	s := newServerWith(t, func(d *serverDeps) { db = d.Store.(*sqlite.DB) })
	r := &scan.Report{Site: "demo", ConfigHash: s.Bundle("demo").Hash, Started: time.Date(2026, 11, 20, 6, 0, 0, 0, time.UTC),
		Pages: []string{"http://shop.test/"}, Undeclared: []scan.Finding{}, Stale: []scan.Finding{},
		Violations: []scan.Finding{{Kind: scan.KindError, Profile: scan.Rejected, Page: "http://shop.test/contact",
			Message: "the page could not be scanned: it did not settle within 20s"}}}
	if r.Verdict(false) != scan.VerdictInconclusive {
		t.Fatalf("the report's verdict: %s", r.Verdict(false))
	}
	var js bytes.Buffer
	if err := r.Write(&js, "json", false); err != nil {
		t.Fatal(err)
	}
	if err := db.AddScan(context.Background(), &consent.Scan{Site: "demo", StartedAt: r.Started, ConfigHash: r.ConfigHash,
		Verdict: r.Verdict(false), Violations: len(r.Violations), URLs: r.Pages, Report: js.Bytes()}); err != nil {
		t.Fatal(err)
	}
	b := newBrowser(t, s)
	dash := b.signIn()
	if !strings.Contains(dash, "Inconclusive: not every page was scanned") || strings.Contains(dash, "Fails:") || strings.Contains(dash, `<span class="ok">Clean</span>`) {
		t.Errorf("dashboard:\n%s", dash)
	}
	_, page := b.get("/admin/sites/demo")
	if !strings.Contains(page, "was inconclusive: not every page could be scanned, so it does not show the site clean") ||
		!strings.Contains(page, "it did not settle within 20s") || !strings.Contains(page, `<span class="bad">Inconclusive</span>`) ||
		strings.Contains(page, "found no violations") {
		t.Errorf("site page:\n%s", page)
	}
}

// An auditor reads a scheduled site's scans per day over the API: a day
// the server was down is missing, a failed scan fails its day, and the
// alerts say so; a period longer than a year shows its newest year.
func TestScanDays(t *testing.T) {
	t.Parallel()
	var db *sqlite.DB
	s := newServerWith(t, func(d *serverDeps) {
		db = d.Store.(*sqlite.DB)
		d.Config.Sites[0].Scan = &config.ScanSchedule{Every: "daily", Pages: []string{"https://www.example.nl/"}, PagesPerProfile: 10}
	})
	ctx := context.Background()
	today := time.Now().UTC().Truncate(24 * time.Hour)
	for _, n := range []int{-3, -1} {
		verdict, violations := consent.ScanClean, 0
		if n == -1 {
			verdict, violations = consent.ScanFail, 1
		}
		if err := db.AddScan(ctx, &consent.Scan{Site: "demo", StartedAt: today.AddDate(0, 0, n).Add(time.Minute), ConfigHash: "sha256:0",
			Verdict: verdict, Violations: violations, Schedule: "daily", Report: []byte(`{}`)}); err != nil {
			t.Fatal(err)
		}
	}
	from := today.AddDate(0, 0, -3).Format(time.DateOnly)
	r := do(t, s, "GET", "/api/v1/sites/demo/scans/days?from="+from, "", "Authorization", "Bearer "+adminToken)
	if r.status != 200 {
		t.Fatalf("%d %s", r.status, r.body)
	}
	var got struct {
		Schedule struct{ Every string }
		Since    time.Time
		Days     []struct {
			Date, State    string
			Slots, Missing int
			Scans          []struct{ Verdict, Schedule string }
		}
		Missing []time.Time
		Alerts  []string
	}
	if err := json.Unmarshal(r.body, &got); err != nil {
		t.Fatal(err)
	}
	var states []string
	for _, d := range got.Days {
		states = append(states, d.State)
	}
	// today: due within the first hour of the day, missing after it
	want := []string{"clean", "missing", "fail"}
	if len(states) != 4 || !slices.Equal(states[:3], want) || (states[3] != "due" && states[3] != "missing") {
		t.Errorf("days %q, want %q then today due or missing", states, want)
	}
	if got.Schedule.Every != "daily" || !got.Since.Equal(today.AddDate(0, 0, -3).Add(time.Minute)) || got.Days[1].Missing != 1 || got.Days[1].Slots != 1 ||
		len(got.Days[2].Scans) != 1 || got.Days[2].Scans[0].Schedule != "daily" {
		t.Errorf("scan days %s", r.body)
	}
	if len(got.Missing) == 0 || !got.Missing[0].Equal(today.AddDate(0, 0, -2)) || len(got.Alerts) != 2 {
		t.Errorf("missing %v, alerts %q", got.Missing, got.Alerts)
	}
	long := do(t, s, "GET", "/api/v1/sites/demo/scans/days?from=2020-01-01", "", "Authorization", "Bearer "+adminToken)
	if err := json.Unmarshal(long.body, &got); err != nil || len(got.Days) != 366 {
		t.Errorf("a period of years: %d days, %v", len(got.Days), err)
	}
}
