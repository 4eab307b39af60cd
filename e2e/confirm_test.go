package e2e

import (
	"strings"
	"testing"

	"github.com/chromedp/cdproto/accessibility"
	"github.com/chromedp/chromedp"
)

// axStatus is what Chromium's accessibility tree holds of the banner's
// live region: whether it is there and not ignored, its live property and
// its text, as a screen reader gets them.
func axStatus(tb *tab) (shown bool, live, text string) {
	tb.t.Helper()
	res, err := chromedp.Call(tb.ctx, accessibility.GetFullAXTree, accessibility.GetFullAXTreeParams{})
	if err != nil {
		tb.t.Fatal(err)
	}
	byID := map[accessibility.NodeID]*accessibility.Node{}
	for _, n := range res.Nodes {
		byID[n.NodeID] = n
	}
	str := func(v *accessibility.Value) string {
		if v == nil {
			return ""
		}
		return strings.Trim(string(v.Value), `"`)
	}
	for _, n := range res.Nodes {
		if str(n.Role) != "status" {
			continue
		}
		for _, p := range n.Properties {
			if p.Name == "live" {
				live = str(p.Value)
			}
		}
		var words []string
		var walk func(id accessibility.NodeID)
		walk = func(id accessibility.NodeID) {
			c := byID[id]
			if c == nil {
				return
			}
			if str(c.Role) == "StaticText" {
				words = append(words, str(c.Name))
			}
			for _, k := range c.ChildIDs {
				walk(k)
			}
		}
		for _, k := range n.ChildIDs {
			walk(k)
		}
		return !n.Ignored, live, strings.Join(words, "")
	}
	return false, "", ""
}

// statusRoot is the shadow root of the banner's live region.
const statusRoot = `document.querySelector('koekje-status')?.shadowRoot`

// Saving a choice and withdrawing consent are confirmed in a live region
// that was there, empty, before: screen readers announce the change, and
// the words show at the foot of the screen, in the top layer, then go;
// clicks go through them to what they may cover.
func TestChoiceConfirmedInALiveRegion(t *testing.T) {
	t.Parallel()
	tb := newTab(t)
	tb.open("/?noembeds=1&nodecl=1")
	tb.click(button("Instellingen"))
	tb.waitFor(bannerRoot + `.querySelector('#k-functional')`)
	if got := eval[string](tb, `(() => { const r = `+statusRoot+`?.querySelector('[role=status]'); return r ? 'empty:' + r.textContent : 'none' })()`); got != "empty:" {
		t.Fatalf("before the choice the live region is %q, want there and empty", got)
	}
	said := func(want string) {
		t.Helper()
		tb.waitFor(statusRoot + `.querySelector('[role=status]').textContent === ` + jsQuote(want))
		got := eval[map[string]any](tb, `(() => {
			const r = `+statusRoot+`.querySelector('[role=status]'), b = r.getBoundingClientRect()
			return {open: r.matches(':popover-open'), inView: b.width > 0 && b.height > 0 && b.top >= 0 && b.bottom <= innerHeight && b.left >= 0 && b.right <= innerWidth,
				through: getComputedStyle(r).pointerEvents === 'none'} })()`)
		if got["open"] != true || got["inView"] != true || got["through"] != true {
			t.Errorf("%q is not shown on top of the page: %v", want, got)
		}
		if shown, live, text := axStatus(tb); !shown || live != "polite" || text != want {
			t.Errorf("a screen reader gets the status %v, live %q, saying %q; want %q, polite", shown, live, text, want)
		}
		tb.waitFor(statusRoot + `.querySelector('[role=status]').textContent === ''`)
	}
	tb.click(bannerRoot + `.querySelector('#k-functional')`)
	tb.click(button("Keuze opslaan"))
	said("Je keuze is opgeslagen.")

	tb.click(`document.getElementById('settings')`)
	tb.waitFor(bannerRoot + `.querySelector('#k-functional')`)
	tb.click(bannerRoot + `.querySelector('#k-functional')`)
	tb.click(button("Keuze opslaan"))
	said("Je toestemming is ingetrokken.")
	id := tb.consentID()
	waitRecords(t, 1, "consent_id = ? AND action = 'withdraw'", id[:])
}

// The console's preview keeps and sends no choice, so it confirms none.
func TestPreviewConfirmsNothing(t *testing.T) {
	t.Parallel()
	tb := newTab(t)
	tb.open("/?preview=1&noembeds=1&nodecl=1")
	tb.click(button("Alles accepteren"))
	tb.waitFor(`!(` + bannerOpen + `)`)
	// The confirmation would be there 99 ms after the choice.
	if got := eval[string](tb, `new Promise(done => setTimeout(() => done(`+statusRoot+`?.querySelector('[role=status]')?.textContent ?? 'none'), 500))`); got != "" {
		t.Errorf("the preview confirms %q", got)
	}
}
