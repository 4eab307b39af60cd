package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

// screenshotDir is where the layout screenshots go: $E2E_SCREENSHOTS/layouts,
// or "" when the variable is not set and no screenshots are taken (the
// checks of each layout run either way). It is never in the repository.
func screenshotDir(t *testing.T) string {
	dir := os.Getenv("E2E_SCREENSHOTS")
	if dir == "" {
		return ""
	}
	dir = filepath.Join(dir, "layouts")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// layouts are the sites of each layout the host page can embed.
var layouts = []struct{ site, name string }{
	{"demo", "box"}, {"bar", "bar-bottom"}, {"bartop", "bar-top"}, {"modal", "modal"}, {"brand", "box-brand"},
}

// checkLayer asserts what every layer must be in every layout and size:
// each action button and the close button wholly inside the viewport and
// what a click there hits, no text under 12 px, the modal in the centre of
// a larger screen, and no layout shift.
func (tb *tab) checkLayer(state string) {
	tb.t.Helper()
	got := eval[map[string]any](tb, `(() => {
		const root = `+bannerRoot+`, out = {outside: [], small: []}
		for (const b of root.querySelectorAll('.acts button, .x')) {
			const r = b.getBoundingClientRect()
			if (!(r.width > 0 && r.top >= 0 && r.left >= 0 && r.bottom <= innerHeight && r.right <= innerWidth && root.elementFromPoint(r.x + r.width / 2, r.y + r.height / 2) === b))
				out.outside.push(b.textContent + ' ' + JSON.stringify(r))
		}
		const walk = document.createTreeWalker(root, NodeFilter.SHOW_TEXT)
		for (let n; n = walk.nextNode();) {
			const el = n.parentElement
			if (!n.textContent.trim() || !el.getClientRects().length) continue
			const size = parseFloat(getComputedStyle(el).fontSize)
			if (size < 12) out.small.push(size + 'px: ' + n.textContent.slice(0, 30))
		}
		const d = root.querySelector('dialog'), r = d && d.getBoundingClientRect()
		out.offCentre = d && innerWidth >= 640 ? Math.abs(r.left - (innerWidth - r.right)) + Math.abs(r.top - (innerHeight - r.bottom)) : 0
		out.shift = window.layoutShift || 0
		out.shifted = window.shifted || []
		return out })()`)
	if o := got["outside"].([]any); len(o) > 0 {
		tb.t.Errorf("%s: buttons not wholly in view: %v", state, o)
	}
	if s := got["small"].([]any); len(s) > 0 {
		tb.t.Errorf("%s: text under 12 px: %v", state, s)
	}
	if off := got["offCentre"].(float64); off > 2 {
		tb.t.Errorf("%s: the modal is %.0f px off the centre of the screen", state, off)
	}
	if cls := got["shift"].(float64); cls > 0.001 {
		tb.t.Errorf("%s: layout shift %.4f: %v", state, cls, got["shifted"])
	}
}

// shoot saves a screenshot of the page as it is in dir, if there is one.
func (tb *tab) shoot(dir, name string) {
	tb.t.Helper()
	if dir == "" {
		return
	}
	png, err := chromedp.Run(tb.ctx, chromedp.CaptureScreenshot())
	if err != nil {
		tb.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
		tb.t.Fatal(err)
	}
}

// Issue 13: both layers of every layout at 1280×800 and 390×844, light and
// dark, checked, and photographed when E2E_SCREENSHOTS names a directory;
// the box and the bar leave at least half of a phone's screen free.
func TestLayouts(t *testing.T) {
	t.Parallel()
	dir := screenshotDir(t)
	for _, l := range layouts {
		for _, size := range [][2]int64{{1280, 800}, {390, 844}} {
			for _, mode := range []string{"light", "dark"} {
				name := fmt.Sprintf("%s-%dx%d-%s", l.name, size[0], size[1], mode)
				t.Run(name, func(t *testing.T) {
					t.Parallel()
					opts := []tabOption{withTiming}
					if mode == "dark" {
						opts = append(opts, withDarkMode)
					}
					tb := newTab(t, opts...)
					if size[0] < 600 {
						tb.do(chromedp.EmulateViewport(size[0], size[1], chromedp.EmulateMobile))
					} else {
						tb.do(chromedp.EmulateViewport(size[0], size[1]))
					}
					tb.open("/?site=" + l.site)
					tb.waitFor(bannerOpen)
					tb.waitFor(`document.readyState === 'complete'`)
					tb.checkLayer("first layer")
					if l.site != "modal" && size[0] < 600 {
						r := eval[[]float64](tb, `(() => { const r = `+bannerOpen+`.getBoundingClientRect(); return [r.height, innerHeight] })()`)
						if r[0] > r[1]/2 {
							t.Errorf("the %s is %.0f px high on a %.0f px screen: more than half", l.name, r[0], r[1])
						}
					}
					tb.shoot(dir, name+"-first")
					tb.click(button("Instellingen"))
					tb.waitFor(bannerRoot + `.querySelector('.k').dataset.layer === 'settings'`)
					tb.click(bannerRoot + `.querySelector('#k-analytics-b summary')`)
					tb.waitFor(bannerRoot + `.querySelector('#k-analytics-b[open]')`)
					tb.checkLayer("settings layer")
					tb.shoot(dir, name+"-settings")
				})
			}
		}
	}
	if dir != "" {
		t.Logf("screenshots in %s", dir)
	}
}

// The box and the bar neither dim nor block the page: its links take
// clicks and focus while the banner is open, and still nothing loads. The
// modal layout makes the page inert (TestTargetSizeAndInertPage).
func TestBoxAndBarLeaveThePageUsable(t *testing.T) {
	t.Parallel()
	for _, site := range []string{"demo", "bar", "bartop"} {
		t.Run(site, func(t *testing.T) {
			t.Parallel()
			tb := newTab(t)
			tb.open("/?site=" + site)
			tb.waitFor(bannerOpen)
			// The link is scrolled to the edge the banner does not cover (the page
			// given room to scroll).
			got := eval[map[string]any](tb, `(() => { const a = document.getElementById('settings'); document.body.style.padding = innerHeight + 'px 0'; a.scrollIntoView({block: '`+map[bool]string{true: "end", false: "start"}[site == "bartop"]+`'}); const r = a.getBoundingClientRect()
				a.focus()
				return {hit: document.elementFromPoint(r.x + 2, r.y + r.height / 2) === a, focus: document.activeElement === a, modal: !!`+bannerRoot+`.querySelector(':modal'),
					top: `+bannerOpen+`.matches(':popover-open')} })()`)
			if got["hit"] != true || got["focus"] != true || got["modal"] != false || got["top"] != true {
				t.Errorf("the page is blocked, or the banner is not in the top layer: %v", got)
			}
			if eval[int](tb, `window.gaLoads || 0`) != 0 || len(tb.requests("", true)) != 0 {
				t.Error("something loaded before a choice")
			}
			// The first layer is not a trap: Tab goes on into the page.
			tb.do(chromedp.Focus(chromedp.JSPath(bannerRoot + `.querySelector('h2')`)))
			left := false
			for i := 0; i < 8 && !left; i++ {
				tb.do(chromedp.KeyEvent(kb.Tab))
				left = eval[string](tb, `document.activeElement.tagName`) != "KOEKJE-BANNER"
			}
			if !left {
				t.Error("Tab does not leave the non-modal banner")
			}
			// Settings open in the modal, and Escape brings the box back.
			tb.click(button("Instellingen"))
			tb.waitFor(bannerRoot + `.querySelector(':modal')`)
			tb.do(chromedp.KeyEvent(kb.Escape))
			tb.waitFor(bannerRoot + `.querySelector('.k:popover-open')?.dataset.layer === 'first'`)
		})
	}
}

// The floating settings button: on by default only on a page without a
// settings link of its own, after a choice; in the corner and at the
// offsets the site sets; reached with Tab, it opens the settings, and focus
// comes back to it when they close.
func TestSettingsButton(t *testing.T) {
	t.Parallel()
	fab := `document.querySelector('koekje-settings')?.shadowRoot.querySelector('.fab')`
	visible := `!!` + fab + `?.matches(':popover-open')`
	t.Run("auto with a link", func(t *testing.T) {
		t.Parallel()
		tb := newTab(t)
		tb.open("/")
		tb.click(button("Alles weigeren"))
		tb.consentID()
		tb.waitFor(`document.readyState === 'complete'`)
		if eval[bool](tb, visible) {
			t.Error("the button shows on a page with its own settings link")
		}
	})
	t.Run("auto without a link", func(t *testing.T) {
		t.Parallel()
		tb := newTab(t)
		tb.open("/?nolink=1")
		tb.waitFor(bannerOpen)
		if eval[bool](tb, visible) {
			t.Error("the button shows before a choice, beside the banner")
		}
		tb.click(button("Alles accepteren"))
		tb.waitFor(visible)
		r := eval[[]float64](tb, `(() => { const r = `+fab+`.getBoundingClientRect(); return [r.left, innerHeight - r.bottom, r.width, r.height] })()`)
		if r[0] != 16 || r[1] != 16 || r[2] < 44 || r[3] < 44 {
			t.Errorf("button at left %v, bottom %v, %v×%v px; want 16, 16, at least 44×44", r[0], r[1], r[2], r[3])
		}
		if name := eval[string](tb, fab+`.textContent`); name != "Cookie-instellingen" {
			t.Errorf("button text %q", name)
		}
		tb.open("/?nolink=1")
		tb.waitFor(visible)
	})
	t.Run("always, keyboard", func(t *testing.T) {
		t.Parallel()
		tb := newTab(t, withGPC)
		tb.open("/?site=brand")
		tb.consentID()
		tb.waitFor(visible)
		r := eval[[]float64](tb, `(() => { const r = `+fab+`.getBoundingClientRect(); return [innerWidth - r.right, innerHeight - r.bottom] })()`)
		if r[0] != 24 || r[1] != 96 {
			t.Errorf("button %v px from the right and %v from the bottom, want 24 and 96", r[0], r[1])
		}
		reached := false
		for i := 0; i < 40 && !reached; i++ {
			tb.do(chromedp.KeyEvent(kb.Tab))
			reached = eval[string](tb, `document.activeElement.tagName`) == "KOEKJE-SETTINGS"
		}
		if !reached {
			t.Fatal("Tab never reaches the settings button")
		}
		tb.do(chromedp.KeyEvent(kb.Enter))
		tb.waitFor(bannerRoot + `.querySelector(':modal')?.dataset.layer === 'settings'`)
		if eval[bool](tb, visible) {
			t.Error("the button stays while the settings are open")
		}
		tb.do(chromedp.KeyEvent(kb.Escape))
		tb.waitFor(visible + ` && document.activeElement.tagName === 'KOEKJE-SETTINGS'`)
	})
}

// axe on a site with its own colours, light and dark, in both layers and
// with the settings button.
func TestBrandColoursAccessible(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{"light", "dark"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			opts := []tabOption{}
			if mode == "dark" {
				opts = append(opts, withDarkMode)
			}
			tb := newTab(t, opts...)
			tb.open("/?site=brand")
			tb.waitFor(bannerOpen)
			want := map[string]string{"light": "rgb(255, 248, 240)", "dark": "rgb(35, 26, 18)"}[mode]
			if bg := eval[string](tb, `getComputedStyle(`+bannerOpen+`).backgroundColor`); bg != want {
				t.Errorf("banner background %s, want the brand's %s", bg, want)
			}
			tb.axe("first layer")
			tb.click(button("Instellingen"))
			for _, cat := range []string{"necessary", "functional", "analytics", "embeds"} {
				tb.click(bannerRoot + `.querySelector('#k-` + cat + `-b summary')`)
			}
			tb.axe("settings layer")
			tb.click(button("Alles weigeren"))
			tb.waitFor(`!!document.querySelector('koekje-settings')?.shadowRoot.querySelector('.fab:popover-open')`)
			tb.axe("page with the settings button")
			if !strings.Contains(eval[string](tb, `document.querySelector('koekje-embed').shadowRoot.textContent`), "YouTube") {
				t.Error("no placeholder")
			}
		})
	}
}
