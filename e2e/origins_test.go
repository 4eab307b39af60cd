package e2e

import (
	"testing"

	"github.com/koekje/koekje/config"
)

// wildcardSite is the demo site for any one-label subdomain of the test
// website's domain, its origin written in capitals as an operator may.
func wildcardSite(rev int) *config.Site {
	s := config.Demo().Site("demo")
	s.ID, s.Revision = "wildcard", rev
	s.Origins = []string{"HTTP://*.BelVast.TEST:*"}
	return s
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
