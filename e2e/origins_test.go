package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/koekje/koekje/config"
)

// demoSiteAt is the demo site under another ID, for other origins.
func demoSiteAt(id string, rev int, origins ...string) *config.Site {
	s := config.Demo().Site("demo")
	s.ID, s.Revision, s.Origins = id, rev, origins
	return s
}

// wildcardSite is the demo site for any one-label subdomain of the test
// website's domain, its origin written in capitals as an operator may.
func wildcardSite(rev int) *config.Site {
	return demoSiteAt("wildcard", rev, "HTTP://*.BelVast.TEST:*")
}

// A choice made on a page whose origin matches a site's origins only by
// its wildcard and in another case is recorded: what check-config accepts,
// the server accepts.
func TestWildcardOriginInAnyCaseRecords(t *testing.T) {
	t.Parallel()
	tb := newTab(t)
	tb.open("/?site=wildcard")
	tb.click(button("Alles accepteren"))
	id := tb.consentID()
	waitRecords(t, 1, "consent_id = ? AND site = 'wildcard' AND action = 'accept_all'", id[:])
}

// elsewhereSite is the demo site configured for another origin than the
// test website's: its choices from the test website are refused.
func elsewhereSite(rev int) *config.Site {
	return demoSiteAt("elsewhere", rev, "https://www.example.nl")
}

// A page on an origin the site does not list shows the banner, but its
// choice is refused: the banner says so in the browser's console, naming
// the origin and the fix, and sends it only once on the page.
func TestRefusedOriginSaysSoInTheConsole(t *testing.T) {
	t.Parallel()
	tb := newTab(t)
	tb.open("/?site=elsewhere")
	eval[bool](tb, `(() => {
		window.__errors = []
		const error = console.error
		console.error = (...a) => { __errors.push(a.join(' ')); error.apply(console, a) }
		window.__posts = 0
		const f = window.fetch
		window.fetch = (u, o) => { if (String(u).includes('/consents')) __posts++; return f(u, o) }
		return true
	})()`)
	tb.click(button("Alles accepteren"))
	tb.waitFor(`__errors.length > 0`)
	msg := eval[string](tb, `__errors[0]`)
	for _, want := range []string{"Koekje: ", "http://" + hostName, "may not record choices for site elsewhere", "add it to the site's origins"} {
		if !strings.Contains(msg, want) {
			t.Errorf("console error %q lacks %q", msg, want)
		}
	}
	time.Sleep(1500 * time.Millisecond) // a retry, if any, would have gone by now
	if n := eval[int](tb, `__posts`); n != 1 {
		t.Errorf("%d POSTs of the refused choice, want 1", n)
	}
}
