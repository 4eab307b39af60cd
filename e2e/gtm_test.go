package e2e

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// gtmStandIn stands for a Google Tag Manager container, served for
// www.googletagmanager.com/gtm.js. Like Tag Manager it reads window.dataLayer
// from the start and every later push: gtag's consent commands (the
// arguments objects gtag pushes) set the consent state, and the gtm.js event
// fires the container's tags on "All Pages" under their consent checks: a
// GA4 tag needing analytics_storage and an advertising tag needing
// ad_storage. window.gtmStandIn says what it saw and fired.
const gtmStandIn = `(function () {
  var dl = window.dataLayer = window.dataLayer || []
  var state = {}
  var gtm = window.gtmStandIn = { loads: (window.gtmStandIn ? window.gtmStandIn.loads : 0) + 1, consent: [], fired: [] }
  function hit(tag, url) { gtm.fired.push(tag); new Image().src = url }
  function handle(e) {
    if (e && typeof e === 'object' && e[0] === 'consent') {
      gtm.consent.push(e[1] + ' analytics_storage=' + e[2].analytics_storage + ' ad_storage=' + e[2].ad_storage)
      for (var k in e[2]) state[k] = e[2][k]
    } else if (e && e.event === 'gtm.js') {
      if (state.analytics_storage === 'granted') hit('ga4', 'https://www.google-analytics.com/g/collect?v=2&tid=G-XXXX&en=page_view')
      if (state.ad_storage === 'granted') hit('ads', 'https://googleads.g.doubleclick.net/pagead/viewthroughconversion/1/')
    }
  }
  for (var i = 0; i < dl.length; i++) handle(dl[i])
  var push = dl.push
  dl.push = function () { for (var i = 0; i < arguments.length; i++) handle(arguments[i]); return push.apply(dl, arguments) }
})()`

// The README's Google Tag Manager recipe, run in Chromium with a stand-in
// for the container: nothing reaches Google before a choice or after a
// refusal; after "Accept all" the container starts in the same page view,
// sees the consent update and fires its tags; with statistics alone granted
// only the GA4 tag fires; on a later page the container starts at once with
// the visitor's choice as the default.
func TestGTMRecipe(t *testing.T) {
	t.Parallel()
	snippet := readmeBlock(t, "Google Tag Manager and Consent Mode", "html", "gtm.js")
	snippet = strings.Replace(snippet, "https://consent.example.nl/s/example-nl.js", koekjeURL+"/s/demo.js", 1)
	if !strings.Contains(snippet, koekjeURL) || !strings.Contains(snippet, `type="text/plain" data-category="analytics"`) {
		t.Fatalf("the README's recipe is not Koekje's tag and a blocked container:\n%s", snippet)
	}
	site := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Shop</title>\n%s</head><body><h1>Shop</h1></body></html>", snippet)
	}))
	t.Cleanup(site.Close)
	pageURL := "http://" + hostName + ":" + strings.TrimPrefix(site.Listener.Addr().String(), "127.0.0.1:") + "/"
	google := func(tb *tab) int {
		return len(tb.requests("googletagmanager.com", true)) + len(tb.requests("google-analytics.com", true)) + len(tb.requests("doubleclick.net", true))
	}

	t.Run("accept", func(t *testing.T) {
		t.Parallel()
		tb := newTab(t)
		tb.do(chromedp.Navigate(pageURL))
		tb.waitFor(bannerOpen)
		if n := google(tb); n != 0 {
			t.Errorf("%d requests to Google before a choice", n)
		}
		tb.click(button("Accept all"))
		tb.waitFor(`window.gtmStandIn && gtmStandIn.fired.length === 2`)
		seen := eval[[]string](tb, `gtmStandIn.consent`)
		if len(seen) != 2 || seen[0] != "default analytics_storage=denied ad_storage=denied" || seen[1] != "update analytics_storage=granted ad_storage=granted" {
			t.Errorf("the container saw the consent commands %q", seen)
		}
		if n := len(tb.requests("googletagmanager.com/gtm.js?id=GTM-XXXX", true)); n != 1 {
			t.Errorf("the container was loaded %d times", n)
		}
		tb.waitForRequests("google-analytics.com/g/collect", 1)

		// A later page: the container starts at once, the visitor's choice
		// the default.
		tb.do(chromedp.Navigate(pageURL))
		tb.waitFor(`window.gtmStandIn && gtmStandIn.fired.length === 2`)
		if seen := eval[[]string](tb, `gtmStandIn.consent`); len(seen) != 1 || seen[0] != "default analytics_storage=granted ad_storage=granted" {
			t.Errorf("on a later page the container saw %q", seen)
		}
		if eval[bool](tb, `!!document.querySelector('koekje-banner')?.shadowRoot?.querySelector('.k')`) {
			t.Error("the banner asks again")
		}
	})

	t.Run("statistics only", func(t *testing.T) {
		t.Parallel()
		tb := newTab(t)
		tb.do(chromedp.Navigate(pageURL))
		tb.click(button("Settings"))
		tb.click(bannerRoot + `.getElementById('k-analytics')`)
		tb.click(button("Save choices"))
		tb.waitFor(`window.gtmStandIn && gtmStandIn.fired.length === 1`)
		if fired := eval[[]string](tb, `gtmStandIn.fired`); fired[0] != "ga4" {
			t.Errorf("with statistics alone the container fired %q", fired)
		}
		time.Sleep(500 * time.Millisecond) // an advertising hit, if any, would have gone by now
		if n := len(tb.requests("doubleclick.net", true)); n != 0 {
			t.Errorf("%d advertising requests without ad_storage", n)
		}
	})

	t.Run("reject", func(t *testing.T) {
		t.Parallel()
		tb := newTab(t)
		tb.do(chromedp.Navigate(pageURL))
		tb.click(button("Reject all"))
		id := tb.consentID()
		waitRecords(t, 1, "consent_id = ? AND action = 'reject_all'", id[:])
		tb.do(chromedp.Navigate(pageURL))
		tb.waitFor(`window.koekje && koekje.consentId()`)
		time.Sleep(500 * time.Millisecond) // a container, if it loaded, would be asked for by now
		if n := google(tb); n != 0 {
			t.Errorf("%d requests to Google after a refusal", n)
		}
	})
}
