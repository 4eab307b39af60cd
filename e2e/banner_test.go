package e2e

import (
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/page"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

// Before any choice: the banner shows, nothing third-party is attempted, no
// cookie is set, embeds have no src and Consent Mode defaults to denied.
func TestNothingBeforeConsent(t *testing.T) {
	t.Parallel()
	tb := newTab(t)
	tb.open("/")
	tb.waitFor(bannerOpen)
	tb.waitFor(`document.readyState === 'complete'`)
	if got := tb.requests("", true); len(got) != 0 {
		t.Errorf("third-party requests before consent: %v", got)
	}
	if c := eval[string](tb, `document.cookie`); c != "" {
		t.Errorf("cookies before a choice: %q", c)
	}
	if n := eval[int](tb, `[...document.querySelectorAll('iframe')].filter(f => f.src).length`); n != 0 {
		t.Errorf("%d iframes have a src before consent", n)
	}
	if n := eval[int](tb, `window.gaLoads || 0`); n != 0 {
		t.Error("analytics ran before consent")
	}
	def := eval[map[string]any](tb, `(() => { const a = dataLayer[0]; return {cmd: a[0], kind: a[1], v: a[2]} })()`)
	if def["cmd"] != "consent" || def["kind"] != "default" {
		t.Fatalf("first dataLayer entry is not consent default: %v", def)
	}
	for _, k := range []string{"ad_storage", "ad_user_data", "ad_personalization", "analytics_storage", "functionality_storage", "personalization_storage", "security_storage"} {
		if v := def["v"].(map[string]any)[k]; v != "denied" {
			t.Errorf("default %s = %v, want denied", k, v)
		}
	}
	if n := len(tb.requests("/api/v1/sites/", false)); n != 0 {
		t.Errorf("%d requests to the consent API before a choice", n)
	}
}

func TestRejectAll(t *testing.T) {
	t.Parallel()
	tb := newTab(t)
	tb.open("/")
	tb.click(button("Alles weigeren"))
	id := tb.consentID()
	waitRecords(t, 1, "consent_id = ? AND action = 'reject_all'", id[:])
	if eval[bool](tb, `!!(`+bannerOpen+`)`) {
		t.Error("banner still open after reject")
	}
	if got := tb.requests("", true); len(got) != 0 {
		t.Errorf("third-party requests after reject: %v", got)
	}
	if !eval[bool](tb, `document.cookie.includes('koekje=')`) {
		t.Error("choice not kept in a cookie")
	}
	if eval[bool](tb, `koekje.allowed('analytics') || koekje.allowed('embeds')`) {
		t.Error("categories allowed after reject")
	}
}

// Accepting runs the blocked scripts and loads the embeds without a reload.
func TestAcceptAllActivatesWithoutReload(t *testing.T) {
	t.Parallel()
	tb := newTab(t)
	tb.open("/")
	eval[bool](tb, `window.sameDocument = true`)
	tb.click(button("Alles accepteren"))
	tb.waitFor(`window.gaLoads === 1 && window.inlineRuns === 1`)
	tb.waitFor(`[...document.querySelectorAll('iframe')].every(f => f.src && !f.hidden)`)
	if !eval[bool](tb, `window.sameDocument === true`) {
		t.Error("the page was reloaded")
	}
	id := tb.consentID()
	waitRecords(t, 1, "consent_id = ? AND action = 'accept_all'", id[:])
	upd := eval[map[string]any](tb, `(() => { const a = [...dataLayer].reverse().find(a => a[0] === 'consent' && a[1] === 'update'); return a && a[2] })()`)
	if upd["analytics_storage"] != "granted" || upd["ad_storage"] != "granted" {
		t.Errorf("consent update = %v", upd)
	}
	if len(tb.requests("googletagmanager.com", true)) != 1 || len(tb.requests("youtube-nocookie.com", true)) != 1 {
		t.Errorf("third-party requests: %v", tb.requests("", true))
	}
}

// Settings: every category with a toggle, nothing pre-ticked; a custom
// choice grants exactly what was ticked.
func TestCustomChoice(t *testing.T) {
	t.Parallel()
	tb := newTab(t)
	tb.open("/")
	tb.click(button("Instellingen"))
	tb.waitFor(bannerRoot + `.querySelector('#k-analytics')`)
	ticked := eval[[]string](tb, `[...`+bannerRoot+`.querySelectorAll('input[type=checkbox]')].filter(b => b.checked).map(b => b.id)`)
	if len(ticked) != 1 || ticked[0] != "k-necessary" {
		t.Errorf("pre-ticked: %v, want only k-necessary", ticked)
	}
	if !eval[bool](tb, bannerRoot+`.querySelector('#k-necessary').disabled`) {
		t.Error("necessary can be switched off")
	}
	tb.click(bannerRoot + `.querySelector('#k-analytics')`)
	tb.click(button("Keuze opslaan"))
	tb.waitFor(`window.gaLoads === 1`)
	id := tb.consentID()
	waitRecords(t, 1, `consent_id = ? AND action = 'custom' AND choices = '{"analytics":true,"embeds":false,"functional":false,"necessary":true}'`, id[:])
	if n := eval[int](tb, `[...document.querySelectorAll('iframe')].filter(f => f.src).length`); n != 0 {
		t.Errorf("%d embeds loaded without consent for embeds", n)
	}
	if len(tb.requests("youtube", true)) != 0 {
		t.Error("YouTube requested")
	}
}

// A script runs once, however often consent is given again.
func TestActivationExactlyOnce(t *testing.T) {
	t.Parallel()
	tb := newTab(t)
	tb.open("/")
	tb.click(button("Alles accepteren"))
	tb.waitFor(`window.gaLoads === 1`)
	tb.click(`document.getElementById('settings')`)
	tb.click(button("Alles accepteren"))
	tb.click(`document.getElementById('settings')`)
	tb.click(button("Keuze opslaan"))
	id := tb.consentID()
	waitRecords(t, 3, "consent_id = ?", id[:])
	if got := eval[[]int](tb, `[window.gaLoads, window.inlineRuns]`); got[0] != 1 || got[1] != 1 {
		t.Errorf("scripts ran %v times, want once each", got)
	}
	if n := len(tb.requests("googletagmanager.com", true)); n != 1 {
		t.Errorf("analytics requested %d times", n)
	}
}

// A blocked embed shows a placeholder naming its provider; "load once"
// loads that one embed, is recorded as load_once for that service, and
// grants nothing on the next page.
func TestPlaceholderLoadOnce(t *testing.T) {
	t.Parallel()
	tb := newTab(t)
	tb.open("/")
	tb.click(button("Alles weigeren"))
	id := tb.consentID()
	waitRecords(t, 1, "consent_id = ?", id[:])
	boxes := eval[[]string](tb, `[...document.querySelectorAll('koekje-embed')].map(b => b.shadowRoot.textContent)`)
	if len(boxes) != 2 || !strings.Contains(boxes[0], "YouTube") || !strings.Contains(boxes[1], "Maps") {
		t.Fatalf("placeholders: %q", boxes)
	}
	if w := eval[int](tb, `document.querySelector('koekje-embed').getBoundingClientRect().width`); w != 560 {
		t.Errorf("placeholder is %d px wide, want the iframe's 560", w)
	}
	tb.click(`[...document.querySelector('koekje-embed').shadowRoot.querySelectorAll('button')].find(b => b.textContent === 'Eén keer laden')`)
	tb.waitFor(`document.querySelector('iframe[title=Video]').src.includes('youtube')`)
	if n := eval[int](tb, `document.querySelectorAll('koekje-embed').length`); n != 1 {
		t.Errorf("%d placeholders left, want the map's", n)
	}
	if len(tb.requests("google.com/maps", true)) != 0 {
		t.Error("the map loaded too")
	}
	waitRecords(t, 1, "consent_id = ? AND action = 'load_once' AND services = 'youtube'", id[:])
	tb.open("/")
	tb.waitFor(`document.querySelectorAll('koekje-embed').length === 2`)
	if eval[bool](tb, `koekje.allowed('embeds')`) || len(tb.requests("youtube", true)) != 1 {
		t.Error("load once granted more than one page view")
	}
}

// "Always allow YouTube" grants that service only, is recorded, and holds on
// the next page.
func TestAlwaysAllowProvider(t *testing.T) {
	t.Parallel()
	tb := newTab(t)
	tb.open("/")
	tb.click(button("Alles weigeren"))
	tb.consentID()
	tb.click(`[...document.querySelector('koekje-embed').shadowRoot.querySelectorAll('button')].find(b => b.textContent.includes('altijd toestaan'))`)
	tb.waitFor(`document.querySelector('iframe[title=Video]').src`)
	id := tb.consentID()
	waitRecords(t, 1, "consent_id = ? AND services = 'youtube'", id[:])
	tb.open("/")
	tb.waitFor(`document.querySelector('iframe[title=Video]').src`)
	if eval[bool](tb, `!!document.querySelector('iframe[title=Kaart]').src`) {
		t.Error("the map loaded: always-allow granted more than its service")
	}
	if eval[bool](tb, `koekje.allowed('embeds')`) {
		t.Error("the whole embeds category was granted")
	}
}

// Withdrawing a category deletes its cookies, patterns and parent domains
// included, and leaves the rest alone.
func TestWithdrawalClearsCookies(t *testing.T) {
	t.Parallel()
	tb := newTab(t)
	tb.open("/")
	eval[bool](tb, `(document.cookie = 'unrelated=1; path=/', true)`)
	tb.click(button("Alles accepteren"))
	tb.waitFor(`document.cookie.includes('_ga=') && document.cookie.includes('_ga_TEST=') && document.cookie.includes('_ga_HOST=')`)
	tb.click(`document.getElementById('settings')`)
	tb.click(bannerRoot + `.querySelector('#k-analytics')`)
	tb.click(button("Keuze opslaan"))
	tb.waitFor(`!document.cookie.includes('_ga')`)
	// Analytics already ran on this page: the banner offers a reload.
	tb.click(button("Sluiten"))
	if !eval[bool](tb, `document.cookie.includes('unrelated=1') && document.cookie.includes('koekje=')`) {
		t.Errorf("other cookies removed: %q", eval[string](tb, `document.cookie`))
	}
	upd := eval[map[string]any](tb, `[...dataLayer].reverse().find(a => a[0] === 'consent' && a[1] === 'update')[2]`)
	if upd["analytics_storage"] != "denied" || upd["ad_storage"] != "granted" {
		t.Errorf("consent update after withdrawal = %v", upd)
	}
	tb.click(`document.getElementById('settings')`)
	tb.click(bannerRoot + `.querySelector('#k-embeds')`)
	tb.click(bannerRoot + `.querySelector('#k-functional')`)
	tb.click(button("Keuze opslaan"))
	id := tb.consentID()
	waitRecords(t, 1, "consent_id = ? AND action = 'withdraw'", id[:])
}

// A repeat visit with a valid choice shows nothing and calls nothing.
func TestRepeatVisit(t *testing.T) {
	t.Parallel()
	tb := newTab(t)
	tb.open("/")
	tb.click(button("Alles accepteren"))
	id := tb.consentID()
	waitRecords(t, 1, "consent_id = ?", id[:])
	posts := len(tb.requests("/api/v1/sites/", false))
	tb.open("/")
	tb.waitFor(`window.gaLoads === 1`)
	tb.waitFor(`document.readyState === 'complete'`)
	if eval[bool](tb, `!!(`+bannerOpen+`)`) {
		t.Error("banner shown again")
	}
	if n := len(tb.requests("/api/v1/sites/", false)); n != posts {
		t.Errorf("repeat visit called the consent API (%d calls, %d before)", n, posts)
	}
	if got := eval[string](tb, `koekje.consentId()`); got != id.String() {
		t.Errorf("consent ID %s after reload, want %s", got, id)
	}
}

// A new policy revision asks again, and the new choice joins the visitor's
// history under the same consent ID.
func TestRevisionBumpAsksAgain(t *testing.T) {
	t.Parallel()
	tb := newTab(t)
	tb.open("/")
	tb.click(button("Alles accepteren"))
	id := tb.consentID()
	tb.open("/?rev=2")
	tb.waitFor(bannerOpen)
	if eval[bool](tb, `koekje.allowed('analytics')`) {
		t.Error("old revision's consent still applies")
	}
	tb.click(button("Alles weigeren"))
	waitRecords(t, 1, "consent_id = ? AND revision = 2 AND action = 'reject_all'", id[:])
	waitRecords(t, 2, "consent_id = ?", id[:])
}

// Global Privacy Control refuses without a click, is recorded as the
// signal that decided, and the visitor can still opt in from Settings: the
// choice stands, recorded beside the signal, and the visitor is told that
// it overrides their browser's setting.
func TestGlobalPrivacyControl(t *testing.T) {
	t.Parallel()
	tb := newTab(t, withGPC)
	tb.open("/")
	id := tb.consentID()
	waitRecords(t, 1, "consent_id = ? AND action = 'reject_all' AND gpc = 1 AND signal = 'gpc-page' AND encoding = 2", id[:])
	if eval[bool](tb, `!!(`+bannerOpen+`)`) {
		t.Error("banner shown despite GPC")
	}
	tb.click(`document.getElementById('settings')`)
	if note := eval[string](tb, bannerRoot+`.querySelector('.note').textContent`); !strings.Contains(note, "Global Privacy Control") {
		t.Errorf("no GPC note in settings: %q", note)
	}
	tb.click(bannerRoot + `.querySelector('#k-analytics')`)
	tb.click(button("Keuze opslaan"))
	tb.waitFor(`window.gaLoads === 1`)
	waitRecords(t, 1, `consent_id = ? AND action = 'custom' AND gpc = 1 AND signal = 'none' AND choices LIKE '%"analytics":true%'`, id[:])
	tb.waitFor(statusRoot + `.querySelector('[role=status]').textContent === ` +
		jsQuote("Je keuze geldt op deze site in plaats van de Global Privacy Control-instelling van je browser."))
}

// Keyboard, in the modal layout: focus moves in, Tab stays inside, Escape
// leaves settings without granting, and focus returns to where it was on
// close.
func TestKeyboard(t *testing.T) {
	t.Parallel()
	tb := newTab(t)
	tb.open("/?site=modal")
	tb.waitFor(bannerOpen)
	tb.waitFor(bannerRoot + `.activeElement?.id === 'k-t'`)
	for i := 0; i < 12; i++ {
		tb.do(chromedp.KeyEvent(kb.Tab))
		if !eval[bool](tb, `document.activeElement.tagName === 'KOEKJE-BANNER'`) {
			t.Fatalf("Tab %d left the dialog for %s", i+1, eval[string](tb, `document.activeElement.outerHTML`))
		}
	}
	tb.click(button("Instellingen"))
	tb.do(chromedp.KeyEvent(kb.Escape))
	tb.waitFor(bannerRoot + `.querySelector('.k').dataset.layer === 'first'`)
	if eval[bool](tb, `document.cookie.includes('koekje=')`) || len(tb.requests("/api/v1/sites/", false)) != 0 {
		t.Error("Escape recorded a choice")
	}
	// Reach "Reject all" with the keyboard only and press Enter.
	for i := 0; i < 10 && eval[string](tb, bannerRoot+`.activeElement?.textContent`) != "Alles weigeren"; i++ {
		tb.do(chromedp.KeyEvent(kb.Tab))
	}
	tb.do(chromedp.KeyEvent(kb.Enter))
	tb.consentID()
	tb.do(chromedp.Focus(chromedp.CSS("#settings")), chromedp.KeyEvent(kb.Enter))
	tb.waitFor(bannerOpen)
	tb.do(chromedp.KeyEvent(kb.Escape))
	tb.waitFor(`!(` + bannerOpen + `)`)
	if id := eval[string](tb, `document.activeElement.id`); id != "settings" {
		t.Errorf("focus returned to %q, want the settings link", id)
	}
}

// The JS API: allowed, on('change'), consentId, show.
func TestJavaScriptAPI(t *testing.T) {
	t.Parallel()
	tb := newTab(t)
	tb.open("/")
	tb.waitFor(bannerOpen)
	eval[bool](tb, `(window.changes = [], koekje.on('change', e => changes.push(e)), true)`)
	if eval[bool](tb, `koekje.allowed('analytics')`) || !eval[bool](tb, `koekje.allowed('necessary')`) {
		t.Error("allowed() before a choice")
	}
	tb.click(button("Alles accepteren"))
	tb.waitFor(`changes.length === 1`)
	if got := eval[map[string]any](tb, `changes[0]`); got["action"] != "accept_all" || got["choices"].(map[string]any)["analytics"] != true {
		t.Errorf("change event = %v", got)
	}
	id := tb.consentID()
	eval[bool](tb, `(koekje.show(), true)`)
	tb.waitFor(bannerRoot + `.querySelector('.id code')?.textContent === '` + id.String() + `'`)
	href := eval[string](tb, bannerRoot+`.querySelector('.id a').href`)
	if !strings.Contains(href, "/api/v1/consents/"+id.String()+"/receipt?token=") {
		t.Errorf("receipt link = %s", href)
	}
}

// The cookie declaration lists every cookie in the page's language.
func TestDeclarationAndLanguage(t *testing.T) {
	t.Parallel()
	tb := newTab(t)
	tb.open("/?lang=de-DE")
	tb.waitFor(bannerOpen)
	if got := eval[string](tb, bannerRoot+`.querySelector('h2').textContent`); got != "Cookies auf dieser Website" {
		t.Errorf("German title = %q", got)
	}
	rows := eval[[]string](tb, `[...document.querySelectorAll('[data-koekje-declaration] tbody tr')].map(r => r.textContent)`)
	joined := strings.Join(rows, "\n")
	for _, want := range []string{"_ga", "_ga_*", "comment_author_*", "wp-saving-post", "VISITOR_INFO1_LIVE", "2 Jahre", "1 Tag"} {
		if !strings.Contains(joined, want) {
			t.Errorf("declaration lacks %q:\n%s", want, joined)
		}
	}
	tb.open("/?lang=es")
	tb.waitFor(bannerOpen)
	if got := eval[string](tb, bannerRoot+`.querySelector('h2').textContent`); got != "Cookies on this site" && got != "Cookies op deze site" {
		t.Errorf("fallback title = %q", got)
	}
}

// The host's dark 22 px serif theme does not reach the banner, and the
// banner fits a 320 px wide screen.
func TestIsolationAndReflow(t *testing.T) {
	t.Parallel()
	tb := newTab(t)
	tb.do(chromedp.EmulateViewport(320, 640))
	tb.open("/?dark=1")
	tb.waitFor(bannerOpen)
	style := eval[map[string]string](tb, `(() => { const b = `+button("Alles accepteren")+`, s = getComputedStyle(b); return {font: s.fontFamily, size: s.fontSize, spacing: s.letterSpacing} })()`)
	if strings.Contains(style["font"], "Georgia") || style["size"] == "22px" || style["spacing"] == "3px" {
		t.Errorf("host styles leaked into the banner: %v", style)
	}
	if w := eval[int](tb, bannerRoot+`.querySelector('.k').scrollWidth`); w > 320 {
		t.Errorf("dialog is %d px wide at a 320 px viewport", w)
	}
	sizes := eval[[]float64](tb, `[...`+bannerRoot+`.querySelectorAll('button')].flatMap(b => { const r = b.getBoundingClientRect(); return [r.width, r.height] })`)
	for _, s := range sizes {
		if s < 24 {
			t.Errorf("a button is smaller than 24 px: %v", sizes)
			break
		}
	}
	acc := eval[[]float64](tb, `['Alles accepteren', 'Alles weigeren'].map(t => [...`+bannerRoot+`.querySelectorAll('button')].find(b => b.textContent === t).getBoundingClientRect().height)`)
	if math.Abs(acc[0]-acc[1]) > 0.5 {
		t.Errorf("accept and reject differ in height: %v", acc)
	}
}

// withTiming records when the banner enters the page and every layout shift.
func withTiming(tb *tab) error {
	_, err := chromedp.Call(tb.ctx, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: `
window.koekjeShown = 0; window.layoutShift = 0;
new MutationObserver((ms, o) => { if (document.querySelector('koekje-banner')) { koekjeShown = performance.now(); o.disconnect() } })
  .observe(document, {childList: true, subtree: true});
window.shifted = [];
new PerformanceObserver(l => { for (const e of l.getEntries()) if (!e.hadRecentInput) { layoutShift += e.value; for (const x of e.sources || []) shifted.push((x.node?.nodeName || '?') + (x.node?.id ? '#' + x.node.id : '') + ' ' + JSON.stringify(x.previousRect) + '→' + JSON.stringify(x.currentRect)) } })
  .observe({type: 'layout-shift', buffered: true});`})
	return err
}

// The banner is on screen soon after navigation starts, without waiting for
// the page's images or frames, and moves nothing on the page.
func TestBannerTimingAndNoLayoutShift(t *testing.T) {
	t.Parallel()
	tb := newTab(t, withTiming)
	var shown []float64
	for i := 0; i < 5; i++ {
		tb.open("/")
		tb.waitFor(bannerOpen)
		tb.waitFor(`document.readyState === 'complete'`)
		ms := eval[float64](tb, `koekjeShown`)
		if ms <= 0 {
			t.Fatal("banner time not recorded")
		}
		shown = append(shown, ms)
		if cls := eval[float64](tb, `layoutShift`); cls > 0.001 {
			t.Errorf("layout shift %.4f on load", cls)
		}
		if !eval[bool](tb, `(() => { const r = `+bannerRoot+`.querySelector('.k').getBoundingClientRect(); return r.height > 0 && r.width > 0 })()`) {
			t.Error("banner not visible")
		}
	}
	t.Logf("navigation start to banner in the page: %.1f ms (5 loads: %v)", median(shown), shown)
	tb.click(button("Alles weigeren"))
	tb.waitFor(`document.querySelectorAll('koekje-embed').length === 2`)
	if cls := eval[float64](tb, `layoutShift`); cls > 0.001 {
		t.Errorf("placeholders shifted the layout by %.4f", cls)
	}
}

func median(v []float64) float64 {
	s := append([]float64(nil), v...)
	slices.Sort(s)
	return s[len(s)/2]
}
