package e2e

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
)

// withCSPLog records Content-Security-Policy violations from the first script on.
func withCSPLog(tb *tab) error {
	_, err := chromedp.Call(tb.ctx, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: `window.cspViolations = [];
document.addEventListener('securitypolicyviolation', e => cspViolations.push(e.violatedDirective + ' ' + e.blockedURI))`})
	return err
}

func withDarkMode(tb *tab) error {
	_, err := chromedp.Call(tb.ctx, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
		Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: "dark"}},
	})
	return err
}

// axe runs axe-core (WCAG 2.0–2.2 A and AA rules) on the page and fails the
// test for each violation. axe reads open shadow roots, so the banner and
// the placeholders are checked too.
func (tb *tab) axe(state string) {
	tb.t.Helper()
	if !eval[bool](tb, `typeof axe !== 'undefined'`) {
		eval[bool](tb, axeScript(tb.t)+";true")
	}
	raw := eval[string](tb, `axe.run(document, {runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa']}})
		.then(r => JSON.stringify(r.violations.map(v => ({id: v.id, help: v.help, nodes: v.nodes.map(n => n.target.join(' ') + ': ' + n.failureSummary)}))))`)
	var violations []struct {
		ID, Help string
		Nodes    []string
	}
	if err := json.Unmarshal([]byte(raw), &violations); err != nil {
		tb.t.Fatal(err)
	}
	for _, v := range violations {
		tb.t.Errorf("%s: axe %s (%s):\n  %s", state, v.ID, v.Help, strings.Join(v.Nodes, "\n  "))
	}
}

// The demo page under its strict CSP, in light and dark: no CSP violation,
// no axe violation in the first layer, the settings layer and the page with
// its placeholders; accepting works under the CSP too.
func TestDemoPageAccessibleUnderStrictCSP(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{"light", "dark"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			opts := []tabOption{withCSPLog}
			if mode == "dark" {
				opts = append(opts, withDarkMode)
			}
			tb := newTab(t, opts...)
			tb.do(chromedp.Navigate(koekjeURL + "/"))
			tb.waitFor(bannerOpen)
			tb.axe("first layer")
			tb.click(button("Instellingen"))
			// Every category row open, so axe sees the services and cookies too.
			for _, cat := range []string{"necessary", "functional", "analytics", "embeds"} {
				tb.click(bannerRoot + `.querySelector('#k-` + cat + `-b summary')`)
			}
			tb.waitFor(`[...` + bannerRoot + `.querySelectorAll('details')].every(m => m.open)`)
			tb.axe("settings layer")
			tb.click(button("Alles weigeren"))
			tb.waitFor(`document.querySelectorAll('koekje-embed').length === 2`)
			tb.axe("page with placeholders")
			tb.click(`document.querySelector('[data-koekje-settings]')`)
			tb.click(button("Alles accepteren"))
			tb.waitFor(`window.dataLayer.some(a => a[0] === 'config')`)
			tb.waitFor(`document.querySelectorAll('iframe[src]').length === 2`)
			if v := eval[[]string](tb, `cspViolations`); len(v) != 0 {
				t.Errorf("CSP violations: %v", v)
			}
		})
	}
}

// Text in the banner has at least 4.5:1 contrast in light and dark; axe
// checks the same, this names the figures.
func TestContrast(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{"light", "dark"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			var opts []tabOption
			if mode == "dark" {
				opts = append(opts, withDarkMode)
			}
			tb := newTab(t, opts...)
			tb.open("/")
			tb.waitFor(bannerOpen)
			ratios := eval[map[string]float64](tb, `(() => {
				const lum = c => { const [r, g, b] = c.match(/\d+(\.\d+)?/g).slice(0, 3).map(Number).map(v => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4 }); return 0.2126 * r + 0.7152 * g + 0.0722 * b }
				const ratio = (a, b) => { const [x, y] = [lum(a), lum(b)].sort((p, q) => q - p); return (x + 0.05) / (y + 0.05) }
				const root = `+bannerRoot+`, dlg = root.querySelector('.k'), bg = getComputedStyle(dlg).backgroundColor
				const out = {text: ratio(getComputedStyle(dlg).color, bg)}
				for (const b of root.querySelectorAll('button')) { const s = getComputedStyle(b); const back = s.backgroundColor === 'rgba(0, 0, 0, 0)' ? bg : s.backgroundColor; out[b.textContent] = ratio(s.color, back) }
				return out })()`)
			for k, r := range ratios {
				if r < 4.5 {
					t.Errorf("%s: contrast %.2f:1 < 4.5:1", k, r)
				}
			}
		})
	}
}
