package e2e

import (
	"strings"
	"testing"
	"time"

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
	// The banner asks for the second part at once, in vain.
	if !poll(func() bool { return tb.secondPartRequests() > 0 }) {
		t.Fatal("the page never asked for the second part")
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
	tb := newTab(t)
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

// The banner asks for its second part once, as soon as it runs, from
// <head> or from the end of <body>, on a page with blocked embeds, a
// declaration or neither: what needs it is filled without a click, and
// "Settings" opens without another request.
func TestSecondPartAtOnce(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name, query string
		ready       string // what the second part shows without a click
	}{
		{"embeds", "/?nodecl=1", `[...document.querySelectorAll('koekje-embed')].every(e => e.shadowRoot.querySelector('.ph p'))`},
		{"declaration", "/?noembeds=1", `document.querySelector('[data-koekje-declaration] table.koekje-declaration tbody tr')`},
		{"neither", "/?noembeds=1&nodecl=1", secondPartStart + ` >= 0`},
		{"tag in body", "/?tail=1", `document.querySelector('[data-koekje-declaration] table.koekje-declaration tbody tr')`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tb := newTab(t)
			tb.open(tt.query)
			tb.waitFor(bannerOpen)
			tb.waitFor(tt.ready)
			tb.waitFor(`document.readyState === 'complete'`)
			tb.click(button("Instellingen"))
			tb.waitFor(bannerOpen + `.dataset.layer === 'settings'`)
			if n := tb.secondPartRequests(); n != 1 {
				t.Errorf("%d requests for the second part, want 1", n)
			}
		})
	}
}

// paintAndSecondPart is when the page's first frame was painted and when
// the banner's second part had arrived, in ms after navigation start (-1:
// not yet).
const paintAndSecondPart = `[performance.getEntriesByType('paint').find(e => e.name === 'first-paint')?.startTime ?? -1,
	performance.getEntriesByType('resource').find(e => /\/s\/demo\.[0-9a-f]{16}\.js$/.test(e.name))?.responseEnd ?? -1]`

// A declaration in view fills in before the page's first frame, so
// nothing moves: with the banner's tag as the README shows it, with the
// attribute earlier versions asked for on the tag, and with a second part
// that comes late. The test fails at any layout shift.
func TestDeclarationWithoutLayoutShift(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name, query string
		delay       time.Duration
	}{
		{"tag", "/?noembeds=1&lang=en", 0},
		{"tag with the attribute", "/?noembeds=1&lang=en&decl=tag", 0},
		{"slow second part", "/?noembeds=1&lang=en", 300 * time.Millisecond},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tb := newTab(t, withTiming)
			tb.delayMore = tt.delay
			tb.open(tt.query)
			tb.waitFor(bannerOpen)
			tb.waitFor(`document.querySelectorAll('[data-koekje-declaration] tbody tr').length > 0`)
			tb.waitFor(`document.readyState === 'complete'`)
			if !eval[bool](tb, `document.querySelector('[data-koekje-declaration]').getBoundingClientRect().top < innerHeight / 2`) {
				t.Fatal("the declaration is not in view: the test proves nothing")
			}
			rows := eval[int](tb, `document.querySelectorAll('[data-koekje-declaration] tbody tr').length`)
			heads := eval[string](tb, `[...document.querySelectorAll('[data-koekje-declaration] th')].map(th => th.textContent).join('|')`)
			if rows < 5 || !strings.HasPrefix(heads, "Name|Provider") {
				t.Errorf("declaration: %d rows, heads %q", rows, heads)
			}
			// Two frames later, so that a shift would have been reported.
			eval[bool](tb, `new Promise(ok => requestAnimationFrame(() => requestAnimationFrame(() => ok(true))))`)
			if cls := eval[float64](tb, `layoutShift`); cls > 0 {
				t.Errorf("layout shift %.4f: %v", cls, eval[[]string](tb, `shifted`))
			}
			tb.waitFor(`performance.getEntriesByType('paint').length > 0`)
			if p := eval[[]float64](tb, paintAndSecondPart); p[0] < p[1] {
				t.Errorf("first frame at %.0f ms, before the second part at %.0f ms", p[0], p[1])
			}
		})
	}
}

// Only a declaration in view holds the page's first frame for the second
// part, and for a second at most: a page without one, or with one below
// the fold, is painted before a second part held back for 3 s arrives,
// and so is one in view.
func TestFirstFrameHeldOnlyForADeclaration(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ name, query string }{
		{"none", "/?noembeds=1&nodecl=1"},
		{"below the fold", "/"},
		{"in view", "/?noembeds=1"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tb := newTab(t)
			tb.delayMore = 3 * time.Second
			tb.open(tt.query)
			tb.waitFor(bannerOpen)
			tb.waitFor(paintAndSecondPart + `.every(t => t > 0)`)
			if p := eval[[]float64](tb, paintAndSecondPart); p[0] > p[1] {
				t.Errorf("first frame at %.0f ms, the second part at %.0f ms: the frame waited for it", p[0], p[1])
			}
			if tt.name == "below the fold" && eval[bool](tb, `document.querySelector('[data-koekje-declaration]').getBoundingClientRect().top < innerHeight`) {
				t.Error("the declaration is in view")
			}
			// It fills in what waited.
			tb.click(button("Instellingen"))
			tb.waitFor(bannerOpen + `.dataset.layer === 'settings'`)
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
