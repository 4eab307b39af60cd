package e2e

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/koekje/koekje/server/consent"
	"github.com/koekje/koekje/server/scan"
)

// A site owner signs in, reads the chart, finds a visitor, verifies the log
// and downloads an export, with the keyboard and mouse, and axe finds no
// violation on any page.
func TestConsole(t *testing.T) {
	t.Parallel()
	// A visitor makes a choice first, so there is something to see.
	visitor := newTab(t)
	visitor.open("/")
	visitor.click(button("Alles accepteren"))
	id := visitor.consentID()

	// A scan of the site that found a cookie set before any choice, as
	// koekje scan --record stores it.
	report, err := json.Marshal(scan.Report{Site: "demo", ConfigHash: "sha256:0", Started: time.Now(), Pages: []string{hostURL + "/"},
		Violations: []scan.Finding{{Kind: "cookie", Profile: "before", Page: hostURL + "/", Name: "_ga", Domain: hostName,
			SetBy: "script", Source: hostURL + "/ga.js", Category: "analytics", Message: "analytics cookie _ga set before any choice"}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := store.AddScan(context.Background(), &consent.Scan{Site: "demo", StartedAt: time.Now(), ConfigHash: "sha256:0",
		Verdict: consent.ScanFail, Violations: 1, URLs: []string{hostURL + "/"}, Report: report}); err != nil {
		t.Fatal(err)
	}

	tb := newTab(t)
	tb.do(chromedp.Navigate(koekjeURL + "/admin"))
	tb.waitFor(`document.querySelector('#token')`)
	tb.axe("sign-in page")
	tb.do(chromedp.SendKeys(chromedp.CSS("#token"), "e2e-admin"), chromedp.Submit(chromedp.CSS("#token")))
	tb.waitFor(`location.pathname === '/admin' && document.querySelector('table')`)
	tb.axe("dashboard")

	// The demo site's own page: the layout test sites share its name.
	tb.click(`document.querySelector('main a[href="/admin/sites/demo"]')`)
	tb.waitFor(`document.querySelector('svg.chart')`)
	if n := eval[int](tb, `document.querySelectorAll('svg.chart[role=img] polyline').length`); n < 4 {
		t.Errorf("chart has %d lines", n)
	}
	tb.axe("site page")
	// The failing scan stands out beside the statistics, with its finding.
	if alert := eval[string](tb, `document.querySelector('section[aria-labelledby=scans] [role=alert]')?.textContent ?? ''`); !strings.Contains(alert, "1 violation") {
		t.Errorf("no alert for the failing scan: %q", alert)
	}
	if list := eval[string](tb, `document.querySelector('section[aria-labelledby=scans] ol.violations')?.textContent ?? ''`); !strings.Contains(list, "_ga set before any choice") {
		t.Errorf("the scan's violation is not listed: %q", list)
	}

	tb.click(`[...document.querySelectorAll('button')].find(b => b.textContent === 'Verify log')`)
	tb.waitFor(`document.querySelector('section[aria-labelledby=proof] p[role=status]')`)
	if msg := eval[string](tb, `document.querySelector('section[aria-labelledby=proof] p[role=status]').textContent`); !strings.HasPrefix(msg, "The log is intact") {
		t.Errorf("verify: %s", msg)
	}
	tb.axe("verify result")

	csv := eval[string](tb, `fetch(document.querySelector('a[href*="format=csv"]').href).then(r => r.text())`)
	if !strings.HasPrefix(csv, "record_id,consent_id,") || !strings.Contains(csv, id.String()) {
		t.Errorf("CSV download: %.200s", csv)
	}

	// Every record of the site, newest first, filtered by action; a record
	// opens to every stored field.
	tb.click(`document.querySelector('main a[href^="/admin/sites/demo/records"]')`)
	tb.waitFor(`document.readyState === 'complete' && document.querySelector('#action')`)
	// The filter chosen and sent as a person would, through the form's own
	// submission (no node handle held across the navigation it starts).
	eval[bool](tb, `(() => { const a = document.querySelector('#action'); a.value = 'accept_all'; a.form.requestSubmit(); return true })()`)
	tb.waitFor(`location.search.includes('action=accept_all') && document.querySelector('tbody tr')`)
	if rows := eval[string](tb, `[...document.querySelectorAll('tbody tr')].map(r => r.cells[3].textContent).join()`); !strings.Contains(rows, "accept_all") || strings.Contains(rows, "reject_all") {
		t.Errorf("records filtered by accept_all: %s", rows)
	}
	tb.click(`document.querySelector('tbody tr summary')`)
	tb.waitFor(`document.querySelector('tbody tr details[open] dl.fields')`)
	if row := eval[string](tb, `document.querySelector('tbody tr').textContent`); !strings.Contains(row, "Record ID") || !strings.Contains(row, "Browser") || !strings.Contains(row, "Intact") {
		t.Errorf("an opened record: %s", row)
	}
	tb.axe("records page")

	tb.click(`[...document.querySelectorAll('nav a')].find(a => a.textContent.includes('Look up'))`)
	tb.waitFor(`document.querySelector('#consent_id')`)
	tb.do(chromedp.SendKeys(chromedp.CSS("#consent_id"), id.String()), chromedp.Submit(chromedp.CSS("#consent_id")))
	tb.waitFor(`document.querySelector('tbody tr')`)
	if row := eval[string](tb, `document.querySelector('tbody tr').textContent`); !strings.Contains(row, "accept_all") {
		t.Errorf("lookup row: %s", row)
	}
	tb.click(`document.querySelector('tbody tr summary')`)
	tb.waitFor(`document.querySelector('tbody tr details[open]')`)
	tb.axe("lookup page")

	tb.click(`document.querySelector('details[open] a[href*="/versions/"]')`)
	tb.waitFor(`document.querySelector('.shown')`)
	tb.axe("banner version page")

	tb.do(chromedp.Navigate(koekjeURL + "/admin/receipt/" + id.String()))
	tb.waitFor(`document.querySelector('dl.fields')`)
	if text := eval[string](tb, `document.querySelector('main').textContent`); !strings.Contains(text, "Dutch (nl)") || !strings.Contains(text, "granted") {
		t.Errorf("the console's receipt view: %s", text)
	}
	tb.axe("receipt view")
}
