package e2e

import (
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/koekje/koekje/config"
)

// domainSite is the demo site with Google Analytics' cookies declared on
// the test website's registrable domain, where the analytics stub sets
// them, and long cookie names and domains.
func domainSite(rev int) *config.Site {
	s := demoSiteAt("domains", rev, "http://"+hostName+":*")
	for _, sv := range s.Services {
		for _, ck := range sv.Cookies {
			if strings.HasPrefix(ck.Name, "_ga") {
				ck.Domain = "belvast.test"
			}
		}
	}
	s.Services[1].Cookies = append(s.Services[1].Cookies, &config.Cookie{Name: "wordpress_logged_in_preferences_*", Domain: "comments.subdomain.belvast.test", Duration: "1d",
		Purpose: config.Text{"nl": "Voorkeuren", "en": "Preferences", "de": "Einstellungen", "fr": "Préférences"}})
	return s
}

// The declaration breaks no cookie name and no domain inside a word at
// 768 px and wider; it shows a cookie's declared domain, and a refusal
// deletes a cookie declared on the registrable domain from there.
func TestDeclarationKeepsWordsWholeAndUsesDomains(t *testing.T) {
	t.Parallel()
	tb := newTab(t)
	for _, w := range []int64{1280, 768} {
		tb.do(chromedp.EmulateViewport(w, 900))
		tb.open("/?site=domains&noembeds=1")
		tb.waitFor(`document.querySelector('.koekje-declaration td')`)
		broken := eval[[]string](tb, `(() => {
			const out = [], r = document.createRange()
			for (const td of document.querySelectorAll('.koekje-declaration td')) {
				const walk = document.createTreeWalker(td, NodeFilter.SHOW_TEXT)
				for (let n; n = walk.nextNode();) {
					for (const m of n.textContent.matchAll(/\S+/g)) {
						r.setStart(n, m.index)
						r.setEnd(n, m.index + m[0].length)
						const lines = new Set([...r.getClientRects()].map(x => Math.round(x.top)))
						if (lines.size > 1) out.push(m[0])
					}
				}
			}
			return out })()`)
		if len(broken) > 0 {
			t.Errorf("%d px: words broken across lines: %q", w, broken)
		}
	}
	domains := eval[[]string](tb, `[...document.querySelectorAll('.koekje-declaration tbody tr')].filter(r => r.cells[0].textContent.startsWith('_ga')).map(r => r.cells[2].textContent)`)
	if len(domains) != 2 || domains[0] != "belvast.test" || domains[1] != "belvast.test" {
		t.Errorf("_ga's domains in the declaration: %q", domains)
	}
	tb.click(button("Alles accepteren"))
	tb.waitFor(`document.cookie.includes('_ga=') && document.cookie.includes('_ga_TEST=')`)
	tb.click(`document.getElementById('settings')`)
	tb.click(bannerRoot + `.querySelector('#k-analytics')`)
	tb.click(button("Keuze opslaan"))
	tb.waitFor(`!document.cookie.includes('_ga')`)
	if got := eval[string](tb, `document.cookie`); !strings.Contains(got, "koekje=") {
		t.Errorf("cookies after refusing analytics: %q", got)
	}
}
