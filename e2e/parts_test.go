package e2e

import (
	"fmt"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
)

// The banner comes in two parts: the first request alone shows the first
// layer and blocks everything; the second (the settings layer, the
// declaration, the placeholders' words) comes when it is needed.

// secondPartStart is when the page began to load the banner's second part,
// in ms after navigation start, or -1 before it did.
const secondPartStart = `(performance.getEntriesByType('resource').find(e => /\/s\/demo\.[0-9a-f]{16}\.js$/.test(e.name))?.startTime ?? -1)`

// failedText is the Dutch settings button, and placeholder, of a second
// part that could not load.
const failedText = "Laden mislukt – opnieuw proberen"

func (tb *tab) setFailMore(fail bool) {
	tb.mu.Lock()
	tb.failMore = fail
	tb.mu.Unlock()
}

// secondPartRequests counts the requests for a second part so far.
func (tb *tab) secondPartRequests() int {
	n := 0
	for _, r := range tb.requests("/s/", false) {
		if secondPart.MatchString(strings.SplitN(r.URL, "?", 2)[0]) {
			n++
		}
	}
	return n
}

// Without the second part, the banner shows its first layer, blocks every
// script and frame, keeps Consent Mode denied and sets no cookie; the
// settings button says the settings could not load and, once the network
// is back, opens them.
func TestFirstRequestAlone(t *testing.T) {
	t.Parallel()
	tb := newTab(t)
	tb.setFailMore(true)
	tb.open("/?noembeds=1&nodecl=1")
	tb.waitFor(bannerOpen)
	// The browser idles and asks for the second part, in vain.
	if !poll(func() bool { return tb.secondPartRequests() > 0 }) {
		t.Fatal("the idle page never asked for the second part")
	}
	tb.waitFor(`document.readyState === 'complete'`)
	if r := tb.requests("", true); len(r) > 0 {
		t.Errorf("third-party requests before consent: %v", r)
	}
	if c := eval[string](tb, `document.cookie`); c != "" {
		t.Errorf("cookies before a choice: %q", c)
	}
	if !eval[bool](tb, `[...dataLayer].some(a => a[0] === 'consent' && a[1] === 'default' && a[2].analytics_storage === 'denied' && a[2].ad_storage === 'denied')`) {
		t.Error("no Consent Mode default of denied")
	}
	if n := eval[int](tb, `document.querySelectorAll('script[type="text/plain"][data-category]').length`); n != 2 || eval[bool](tb, `!!window.gaLoads || !!window.inlineRuns`) {
		t.Errorf("blocked scripts: %d still blocked, or one ran", n)
	}

	tb.click(button("Instellingen"))
	tb.waitFor(button(failedText))
	if layer := eval[string](tb, bannerOpen+`.dataset.layer`); layer != "first" {
		t.Errorf("layer %q after a failed load, want the first", layer)
	}
	if !eval[bool](tb, bannerRoot+`.activeElement === `+button(failedText)) {
		t.Error("focus is not on the button that tries again")
	}
	tb.setFailMore(false)
	tb.click(button(failedText))
	tb.waitFor(bannerOpen + `.dataset.layer === 'settings'`)
	if !eval[bool](tb, bannerRoot+`.querySelector('#k-analytics').checked === false`) {
		t.Error("the settings layer shows analytics granted")
	}
	if r := tb.requests("", true); len(r) > 0 {
		t.Errorf("third-party requests before consent: %v", r)
	}
}

// A blocked embed keeps its place while its placeholder waits for the
// second part; where that fails, the placeholder offers to try again and
// then shows its choices, still without a request to the provider.
func TestPlaceholderRetry(t *testing.T) {
	t.Parallel()
	// Without idle loading only the click retries.
	tb := newTab(t, noIdle)
	tb.setFailMore(true)
	tb.open("/?nodecl=1")
	embeds := `[...document.querySelectorAll('koekje-embed')]`
	tb.waitFor(embeds + `.length === 2 && ` + embeds + `.every(e => [...e.shadowRoot.querySelectorAll('button')].some(b => b.textContent === ` + jsString(failedText) + `))`)
	if h := eval[[]float64](tb, embeds+`.map(e => e.getBoundingClientRect().height)`); len(h) != 2 || h[0] < 315 || h[1] < 300 {
		t.Errorf("placeholders do not keep their frames' height: %v", h)
	}
	tb.setFailMore(false)
	tb.click(`[...document.querySelector('koekje-embed').shadowRoot.querySelectorAll('button')].find(b => b.textContent === ` + jsString(failedText) + `)`)
	tb.waitFor(embeds + `.every(e => [...e.shadowRoot.querySelectorAll('button')].some(b => b.textContent === 'Eén keer laden'))`)
	if r := tb.requests("", true); len(r) > 0 {
		t.Errorf("third-party requests before consent: %v", r)
	}
}

// noIdle takes requestIdleCallback away, so the banner's second part
// comes only when the page needs it.
func noIdle(tb *tab) error {
	_, err := chromedp.Call(tb.ctx, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{
		Source: `window.requestIdleCallback = () => 0`,
	})
	return err
}

// A page with a blocked embed or a declaration asks for the second part
// without a click; a page with neither asks on "Settings", or when the
// browser idles.
func TestSecondPartWhenNeeded(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name, query string
		idle        bool
		ready       string // what the second part shows without a click
	}{
		{"embeds", "/?nodecl=1", false, `[...document.querySelectorAll('koekje-embed')].every(e => e.shadowRoot.querySelector('.ph p'))`},
		{"declaration", "/?noembeds=1", false, `document.querySelector('[data-koekje-declaration] table.koekje-declaration tbody tr')`},
		{"settings", "/?noembeds=1&nodecl=1", false, ""},
		{"idle", "/?noembeds=1&nodecl=1", true, secondPartStart + ` >= 0`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			opts := []tabOption{noIdle}
			if tt.idle {
				opts = nil
			}
			tb := newTab(t, opts...)
			tb.open(tt.query)
			tb.waitFor(bannerOpen)
			tb.waitFor(`document.readyState === 'complete'`)
			if tt.ready != "" {
				tb.waitFor(tt.ready)
				if n := tb.secondPartRequests(); n != 1 {
					t.Errorf("%d requests for the second part, want 1", n)
				}
			} else if eval[bool](tb, `new Promise(ok => setTimeout(() => ok(`+secondPartStart+` >= 0), 300))`) {
				t.Error("the second part came though nothing asked for it")
			}
			tb.click(button("Instellingen"))
			tb.waitFor(bannerOpen + `.dataset.layer === 'settings'`)
			if n := tb.secondPartRequests(); n != 1 {
				t.Errorf("%d requests for the second part, want 1", n)
			}
		})
	}
}

// The declaration fills in from the second part, in the page's language,
// with every cookie. A page whose banner tag says it carries one waits for
// the second part before its first frame, so nothing moves; without that,
// what follows a declaration in view moves once on a cold cache (the figure
// is logged).
func TestDeclarationFromSecondPart(t *testing.T) {
	t.Parallel()
	for _, tag := range []bool{true, false} {
		t.Run(fmt.Sprintf("tag=%v", tag), func(t *testing.T) {
			t.Parallel()
			tb := newTab(t, withTiming)
			query := "/?noembeds=1&lang=en"
			if tag {
				query += "&decl=tag"
			}
			tb.open(query)
			tb.waitFor(bannerOpen)
			tb.waitFor(`document.querySelectorAll('[data-koekje-declaration] tbody tr').length > 0`)
			tb.waitFor(`document.readyState === 'complete'`)
			rows := eval[int](tb, `document.querySelectorAll('[data-koekje-declaration] tbody tr').length`)
			heads := eval[string](tb, `[...document.querySelectorAll('[data-koekje-declaration] th')].map(th => th.textContent).join('|')`)
			if rows < 5 || !strings.HasPrefix(heads, "Name|Provider") {
				t.Errorf("declaration: %d rows, heads %q", rows, heads)
			}
			cls := eval[float64](tb, `layoutShift`)
			if tag && cls > 0.001 {
				t.Errorf("layout shift %.4f with the declaration announced on the banner's tag", cls)
			}
			t.Logf("layout shift with the declaration in view on a cold load: %.4f", cls)
		})
	}
}

// Under a policy of a nonce and 'strict-dynamic' alone, the second part
// loads (the first part passes its nonce on), and the browser reports no
// violation.
func TestSecondPartUnderNoncePolicy(t *testing.T) {
	t.Parallel()
	tb := newTab(t, func(tb *tab) error {
		_, err := chromedp.Call(tb.ctx, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: `
window.violations = [];
document.addEventListener('securitypolicyviolation', e => violations.push(e.violatedDirective + ' ' + e.blockedURI));`})
		return err
	})
	tb.open("/?csp=nonce")
	tb.waitFor(bannerOpen)
	tb.waitFor(`[...document.querySelectorAll('koekje-embed')].every(e => e.shadowRoot.querySelector('.ph p'))`)
	tb.click(button("Instellingen"))
	tb.waitFor(bannerOpen + `.dataset.layer === 'settings'`)
	if v := eval[[]string](tb, `violations`); len(v) > 0 {
		t.Errorf("policy violations: %v", v)
	}
}

// jsString quotes s as a JavaScript string.
func jsString(s string) string {
	return "'" + strings.ReplaceAll(strings.ReplaceAll(s, `\`, `\\`), "'", `\'`) + "'"
}
