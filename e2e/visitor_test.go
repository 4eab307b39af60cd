package e2e

import (
	"fmt"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/fetch"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
)

// What a visitor meets after the first choice: later page loads, refusals
// and withdrawals, the settings layer, unfriendly pages.

// framesLoaded waits until the page has asked for both embeds n times in
// all: a frame whose src was set while the page was parsed can stay
// about:blank, so the requests are what counts.
func (tb *tab) framesLoaded(n int) {
	tb.t.Helper()
	tb.waitFor(`[...document.querySelectorAll('iframe')].every(f => f.src)`)
	tb.waitForRequests("youtube-nocookie.com/embed", n)
	tb.waitForRequests("google.com/maps", n)
}

// waitForRequests waits until n third-party requests to URLs containing u
// were made, and fails if there are more.
func (tb *tab) waitForRequests(u string, n int) {
	tb.t.Helper()
	poll(func() bool { return len(tb.requests(u, true)) >= n })
	if got := len(tb.requests(u, true)); got != n {
		tb.t.Fatalf("%d requests to %s, want %d", got, u, n)
	}
}

// Issue 12.1: granted embeds load again on a reload, on another page, and on
// a page whose frames come before the banner's script.
func TestEmbedsLoadOnLaterPages(t *testing.T) {
	t.Parallel()
	tb := newTab(t)
	tb.open("/")
	tb.click(button("Alles accepteren"))
	tb.framesLoaded(1)
	tb.do(chromedp.Reload())
	tb.framesLoaded(2)
	tb.open("/?page=2")
	tb.framesLoaded(3)
	tb.open("/?tail=1")
	tb.framesLoaded(4)
	if n := eval[int](tb, `document.querySelectorAll('koekje-embed').length`); n != 0 {
		t.Errorf("%d placeholders with the embeds granted", n)
	}
}

// Issue 12.1: "always allow YouTube" holds on a reload: the video loads.
func TestAlwaysAllowLoadsOnReload(t *testing.T) {
	t.Parallel()
	tb := newTab(t)
	tb.open("/")
	tb.click(button("Alles weigeren"))
	tb.consentID()
	tb.click(placeholderButton("Video", "YouTube altijd toestaan"))
	tb.waitForRequests("youtube-nocookie.com", 1)
	tb.do(chromedp.Reload())
	tb.waitForRequests("youtube-nocookie.com", 2)
	if len(tb.requests("google.com/maps", true)) != 0 {
		t.Error("the map loaded")
	}
}

// placeholderButton is the JS path of a button in the placeholder of the
// frame with this title.
func placeholderButton(frame, text string) string {
	return fmt.Sprintf(`[...document.querySelector('iframe[title=%s]').previousElementSibling.shadowRoot.querySelectorAll('button')].find(b => b.textContent === %q)`, frame, text)
}

// plantCookies sets the analytics and comment cookies a visitor may carry
// from before, on this host and on its parent domain, and one unrelated.
const plantCookies = `(() => {
	for (const c of ['_ga=GA1.1.1', '_ga_OLD=GS1', 'comment_author_abc=Jan', 'wp-saving-post=12', 'unrelated=1'])
		document.cookie = c + '; path=/'
	document.cookie = '_ga=GA1.1.2; path=/; domain=belvast.test'
	document.cookie = '_ga_PARENT=GS1; path=/; domain=belvast.test'
	return document.cookie.split('; ').length
})()`

// Issue 12.2: a first-visit "reject all" deletes cookies that were there
// before any choice.
func TestRejectDeletesEarlierCookies(t *testing.T) {
	t.Parallel()
	tb := newTab(t)
	tb.open("/")
	tb.waitFor(bannerOpen)
	if n := eval[int](tb, plantCookies); n != 7 {
		t.Fatalf("%d cookies planted: %s", n, eval[string](tb, `document.cookie`))
	}
	tb.click(button("Alles weigeren"))
	tb.waitFor(`document.cookie.includes('koekje=')`)
	tb.consentID()
	if got := eval[string](tb, `document.cookie.split('; ').map(c => c.split('=')[0]).sort().join(' ')`); got != "koekje unrelated" {
		t.Errorf("cookies after reject all: %s", got)
	}
}

// Issue 12.2: after a re-ask (new revision) "reject all" deletes what the
// old choice allowed, though nothing was granted in this page view.
func TestRejectAfterReaskDeletesCookies(t *testing.T) {
	t.Parallel()
	tb := newTab(t)
	tb.open("/")
	tb.click(button("Alles accepteren"))
	tb.waitFor(`document.cookie.includes('_ga_TEST=')`)
	eval[int](tb, plantCookies)
	tb.open("/?rev=2")
	tb.waitFor(bannerOpen)
	tb.click(button("Alles weigeren"))
	tb.waitFor(`!document.cookie.includes('_ga')`)
	if got := eval[string](tb, `document.cookie.split('; ').map(c => c.split('=')[0]).sort().join(' ')`); got != "koekje unrelated" {
		t.Errorf("cookies after reject all on the new revision: %s", got)
	}
}

// Issue 12.3: the settings layer starts with its heading, has no "null"
// anywhere, and every ARIA reference points at an element that exists.
func TestSettingsLayerHasNoDanglingText(t *testing.T) {
	t.Parallel()
	for _, lang := range []string{"nl", "en", "de", "fr"} {
		t.Run(lang, func(t *testing.T) {
			t.Parallel()
			tb := newTab(t)
			tb.open("/?lang=" + lang)
			tb.waitFor(bannerOpen)
			eval[bool](tb, `(koekje.show(), true)`)
			tb.waitFor(bannerRoot + `.querySelector('.cat')`)
			text := eval[string](tb, bannerRoot+`.querySelector('.k').innerText`)
			if first := strings.SplitN(strings.TrimSpace(text), "\n", 2)[0]; first != eval[string](tb, bannerRoot+`.querySelector('h2').textContent`) {
				t.Errorf("the settings layer starts with %q", first)
			}
			if strings.Contains(text, "null") || strings.Contains(text, "undefined") {
				t.Errorf("settings layer shows null or undefined:\n%s", text)
			}
			missing := eval[[]string](tb, `(() => { const root = `+bannerRoot+`, out = []
				for (const el of root.querySelectorAll('[aria-describedby],[aria-labelledby],[aria-controls],label[for]'))
					for (const a of ['aria-describedby', 'aria-labelledby', 'aria-controls', 'for'])
						for (const id of (el.getAttribute(a) || '').split(' ').filter(x => x))
							if (!root.getElementById(id)) out.push(a + '=' + id)
				return out })()`)
			if len(missing) != 0 {
				t.Errorf("references to missing elements: %v", missing)
			}
		})
	}
}

// Issue 12.4: a per-service grant shows as its own switch in the settings,
// and saving saves what the switches show.
func TestServiceSwitches(t *testing.T) {
	t.Parallel()
	tb := newTab(t)
	tb.open("/")
	tb.click(button("Alles weigeren"))
	id := tb.consentID()
	tb.click(placeholderButton("Video", "YouTube altijd toestaan"))
	waitRecords(t, 1, "consent_id = ? AND services = 'youtube'", id[:])
	tb.click(`document.getElementById('settings')`)
	tb.click(bannerRoot + `.querySelector('#k-embeds-b summary')`)
	state := eval[map[string]bool](tb, `(() => { const r = `+bannerRoot+`; return {
		youtube: r.getElementById('k-s-youtube').checked, maps: r.getElementById('k-s-google-maps').checked,
		embeds: r.getElementById('k-embeds').checked, visible: r.getElementById('k-s-youtube').getClientRects().length > 0 } })()`)
	if !state["youtube"] || state["maps"] || state["embeds"] || !state["visible"] {
		t.Fatalf("switches after always-allow YouTube: %v", state)
	}
	// YouTube off, Maps on: exactly that is saved.
	tb.click(bannerRoot + `.getElementById('k-s-youtube')`)
	tb.click(bannerRoot + `.getElementById('k-s-google-maps')`)
	tb.click(button("Keuze opslaan"))
	waitRecords(t, 1, "consent_id = ? AND services = 'google-maps'", id[:])
	tb.waitFor(`document.querySelector('iframe[title=Kaart]').src && !document.querySelector('iframe[title=Video]').src`)
	// Every switch off: nothing stays granted.
	tb.click(`document.getElementById('settings')`)
	tb.click(bannerRoot + `.querySelector('#k-embeds-b summary')`)
	tb.click(bannerRoot + `.getElementById('k-s-google-maps')`)
	tb.click(button("Keuze opslaan"))
	waitRecords(t, 1, "consent_id = ? AND action = 'withdraw' AND services = ''", id[:])
	tb.open("/")
	tb.waitFor(`document.querySelectorAll('koekje-embed').length === 2`)
	if n := len(tb.requests("youtube", true)); n != 1 {
		t.Errorf("YouTube requested %d times, want only while it was allowed", n)
	}
}

// Issue 12.5: in forced-colours mode every switch keeps a visible border
// and shows its state with a mark, not only with colour.
func TestSwitchesInForcedColors(t *testing.T) {
	t.Parallel()
	tb := newTab(t, func(tb *tab) error {
		_, err := chromedp.Call(tb.ctx, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
			Features: []*emulation.MediaFeature{{Name: "forced-colors", Value: "active"}},
		})
		return err
	})
	tb.open("/")
	tb.waitFor(bannerOpen)
	if !eval[bool](tb, `matchMedia('(forced-colors: active)').matches`) {
		t.Fatal("forced colours are not emulated")
	}
	tb.click(button("Instellingen"))
	look := func(id string) map[string]string {
		return eval[map[string]string](tb, `(() => { const b = `+bannerRoot+`.getElementById('`+id+`'), s = getComputedStyle(b), k = getComputedStyle(b, '::before'), d = getComputedStyle(`+bannerRoot+`.querySelector('.k'))
			return {border: s.borderTopWidth, style: s.borderTopStyle, color: s.borderTopColor, bg: d.backgroundColor, mark: k.content, knob: k.backgroundColor} })()`)
	}
	off, on := look("k-analytics"), look("k-necessary")
	for name, s := range map[string]map[string]string{"off": off, "on": on} {
		if s["style"] == "none" || s["border"] == "0px" || s["color"] == s["bg"] {
			t.Errorf("%s switch has no visible border: %v", name, s)
		}
		if s["mark"] == "none" || s["mark"] == `""` || s["knob"] == s["bg"] {
			t.Errorf("%s switch has no visible knob or mark: %v", name, s)
		}
	}
	if off["mark"] == on["mark"] {
		t.Errorf("on and off show the same mark %s", on["mark"])
	}
}

// A page that redefines document.currentScript before the banner's tag,
// on the prototype or on the document, to answer null or a script of its
// own: the banner finds its script all the same, shows its first layer,
// fills the placeholders and the declaration from its second part, opens
// its settings and records the choice on its own server.
func TestHostileCurrentScript(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ name, define string }{
		{"null", `Object.defineProperty(Document.prototype, 'currentScript', {get: () => null})`},
		{"a script of the page", `Object.defineProperty(Document.prototype, 'currentScript', {get: () => document.createElement('script')})`},
		{"on the document", `Object.defineProperty(document, 'currentScript', {get: () => document.querySelector('script[type="text/plain"]')})`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tb := newTab(t, withCSPLog, func(tb *tab) error {
				_, err := chromedp.Call(tb.ctx, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: tt.define})
				return err
			})
			tb.open("/")
			tb.waitFor(bannerOpen)
			tb.waitFor(`[...document.querySelectorAll('koekje-embed')].every(e => e.shadowRoot.querySelector('.ph p'))`)
			tb.waitFor(`document.querySelector('[data-koekje-declaration] tbody tr')`)
			tb.click(button("Instellingen"))
			tb.waitFor(bannerOpen + `.dataset.layer === 'settings'`)
			tb.click(button("Alles accepteren"))
			id := tb.consentID()
			waitRecords(t, 1, "consent_id = ? AND action = 'accept_all'", id[:])
			tb.waitFor(`document.querySelectorAll('iframe[src]').length === 2`)
			if v := eval[[]string](tb, `cspViolations`); len(v) > 0 {
				t.Errorf("policy violations: %v", v)
			}
		})
	}
}

// Issue 12.6: a page that resets every element, scales rem, turns the text
// direction and transforms body: the banner is whole, readable, left to
// right, in view, and its buttons take clicks.
func TestHostileCSS(t *testing.T) {
	t.Parallel()
	tb := newTab(t, withCSPLog)
	tb.open("/?hostile=1")
	tb.waitFor(bannerOpen)
	got := eval[map[string]any](tb, `(() => { const r = `+bannerRoot+`, d = r.querySelector('.k'), b = d.getBoundingClientRect(), h = r.querySelector('h2')
		return {top: b.top, bottom: b.bottom, left: b.left, right: b.right, h2: getComputedStyle(h).fontSize, p: getComputedStyle(r.querySelector('p')).fontSize,
			dir: getComputedStyle(d).direction, modal: d.matches(':modal,:popover-open'), htop: h.getBoundingClientRect().top, vw: innerWidth, vh: innerHeight} })()`)
	if got["top"].(float64) < 0 || got["bottom"].(float64) > got["vh"].(float64) || got["left"].(float64) < 0 || got["right"].(float64) > got["vw"].(float64) {
		t.Errorf("dialog is not within the viewport: %v", got)
	}
	if got["htop"].(float64) < 0 {
		t.Errorf("heading cut off: %v", got)
	}
	if got["h2"] != "20px" || got["p"] != "16px" {
		t.Errorf("text sizes follow the page: heading %v, text %v", got["h2"], got["p"])
	}
	if got["dir"] != "ltr" || got["modal"] != true {
		t.Errorf("direction %v, in the top layer %v", got["dir"], got["modal"])
	}
	hit := eval[bool](tb, `(() => { const b = `+button("Alles weigeren")+`, r = b.getBoundingClientRect()
		return `+bannerRoot+`.elementFromPoint(r.x + r.width / 2, r.y + r.height / 2) === b })()`)
	if !hit {
		t.Error("reject all is covered by something else")
	}
	tb.click(button("Alles weigeren"))
	id := tb.consentID()
	waitRecords(t, 1, "consent_id = ? AND action = 'reject_all'", id[:])
	tb.waitFor(`document.querySelectorAll('koekje-embed').length === 2`)
	if h := eval[float64](tb, `document.querySelector('iframe[title=Video]').getBoundingClientRect().height`); h != 0 {
		t.Errorf("the blocked frame still takes %v px under its placeholder", h)
	}
	if v := eval[[]string](tb, `cspViolations`); len(v) != 0 {
		t.Errorf("CSP violations: %v", v)
	}
}

// inView reports, for each JS path, whether its element is wholly inside the
// viewport and is what a click at its centre hits.
func (tb *tab) inView(paths ...string) []bool {
	tb.t.Helper()
	return eval[[]bool](tb, `[`+strings.Join(paths, ",")+`].map(b => { const r = b.getBoundingClientRect()
		return r.top >= 0 && r.bottom <= innerHeight && r.left >= 0 && r.right <= innerWidth && `+bannerRoot+`.elementFromPoint(r.x + r.width / 2, r.y + r.height / 2) === b })`)
}

// Issue 12.7: on a 390 px phone the settings keep their heading, close
// button and every action in view while the category rows open; closing
// changes nothing.
func TestSettingsOnPhone(t *testing.T) {
	t.Parallel()
	tb := newTab(t)
	tb.do(chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile))
	tb.open("/")
	tb.click(button("Instellingen"))
	tb.waitFor(bannerRoot + `.querySelector('.cat')`)
	if eval[bool](tb, `[...`+bannerRoot+`.querySelectorAll('details')].some(m => m.open)`) {
		t.Error("category details are open before the visitor opens them")
	}
	for _, cat := range []string{"necessary", "functional", "analytics", "embeds"} {
		tb.click(bannerRoot + `.querySelector('#k-` + cat + `-b summary')`)
		tb.waitFor(bannerRoot + `.querySelector('#k-` + cat + `-b').open`)
	}
	if !eval[bool](tb, `(() => { const b = `+bannerRoot+`.querySelector('.body'); return b.scrollHeight > b.clientHeight })()`) {
		t.Fatal("the open rows fit the screen: the test proves nothing")
	}
	paths := []string{button("Alles accepteren"), button("Alles weigeren"), button("Keuze opslaan"), bannerRoot + `.querySelector('button[aria-label=Sluiten]')`, bannerRoot + `.querySelector('h2')`}
	// Scrolled to the end of the list, the same.
	for _, scrolled := range []bool{false, true} {
		if scrolled {
			eval[bool](tb, `(() => { const b = `+bannerRoot+`.querySelector('.body'); b.scrollTop = b.scrollHeight; return b.scrollTop > 0 })()`)
		}
		for i, ok := range tb.inView(paths...) {
			if !ok {
				t.Errorf("scrolled %v: %s is not in view", scrolled, paths[i])
			}
		}
	}
	tb.click(bannerRoot + `.querySelector('button[aria-label=Sluiten]')`)
	tb.waitFor(bannerRoot + `.querySelector('.k').dataset.layer === 'first'`)
	if eval[bool](tb, `document.cookie.includes('koekje=')`) || len(tb.requests("/api/v1/sites/", false)) != 0 {
		t.Error("closing the settings recorded a choice")
	}
}

// Issue 12.8: a withdrawal puts loaded embeds back behind placeholders at
// once, tells the page what was revoked, and offers a reload for the
// script that already ran.
func TestWithdrawalStopsWhatRuns(t *testing.T) {
	t.Parallel()
	tb := newTab(t, withCSPLog)
	tb.open("/")
	tb.click(button("Alles accepteren"))
	tb.framesLoaded(1)
	tb.waitFor(`window.gaLoads === 1`)
	eval[bool](tb, `(window.changes = [], koekje.on('change', e => changes.push(e)), window.sameDocument = true)`)
	tb.click(`document.getElementById('settings')`)
	tb.click(button("Alles weigeren"))
	tb.waitFor(`document.querySelectorAll('koekje-embed').length === 2`)
	if n := eval[int](tb, `document.querySelectorAll('iframe[src]').length`); n != 0 {
		t.Errorf("%d frames still loaded after the withdrawal", n)
	}
	ev := eval[map[string]any](tb, `changes[0]`)
	if ev["action"] != "reject_all" || !strings.Contains(fmt.Sprint(ev["revoked"]), "analytics") || !strings.Contains(fmt.Sprint(ev["revoked"]), "embeds") {
		t.Errorf("change event = %v", ev)
	}
	tb.waitFor(bannerRoot + `.querySelector('.k')?.dataset.layer === 'reload'`)
	if text := eval[string](tb, bannerRoot+`.querySelector('.k').innerText`); !strings.Contains(text, "opnieuw laadt") {
		t.Errorf("reload prompt: %q", text)
	}
	tb.click(button("Pagina opnieuw laden"))
	tb.waitFor(`window.sameDocument === undefined && document.readyState === 'complete'`)
	if eval[int](tb, `window.gaLoads || 0`) != 0 || eval[int](tb, `document.querySelectorAll('koekje-embed').length`) != 2 {
		t.Error("analytics or embeds came back after the reload")
	}
	if v := eval[[]string](tb, `cspViolations`); len(v) != 0 {
		t.Errorf("CSP violations: %v", v)
	}
}

// A withdrawal with nothing that ran closes without asking for a reload.
func TestWithdrawalWithoutScriptsNeedsNoReload(t *testing.T) {
	t.Parallel()
	tb := newTab(t)
	tb.open("/")
	tb.click(button("Instellingen"))
	tb.click(bannerRoot + `.querySelector('#k-embeds')`)
	tb.click(button("Keuze opslaan"))
	tb.framesLoaded(1)
	tb.click(`document.getElementById('settings')`)
	tb.click(button("Alles weigeren"))
	tb.waitFor(`document.querySelectorAll('koekje-embed').length === 2 && !(` + bannerOpen + `)`)
}

// Issue 12.10: the texts name who is behind the site and its third parties.
func TestContentNamesParties(t *testing.T) {
	t.Parallel()
	tb := newTab(t)
	tb.do(chromedp.EmulateViewport(320, 640))
	tb.open("/")
	tb.waitFor(bannerOpen)
	intro := eval[string](tb, bannerRoot+`.getElementById('k-d').textContent`)
	if !strings.Contains(intro, "Google, Meta en LinkedIn") || strings.Contains(intro, "andere partijen") {
		t.Errorf("first layer: %q", intro)
	}
	tb.click(button("Instellingen"))
	who := eval[string](tb, bannerRoot+`.querySelector('.who').textContent`)
	for _, want := range []string{"Belvast VoIP B.V., Stationsplein 12, 3511 ED Utrecht", "privacy@belvast.example", "Autoriteit Persoonsgegevens"} {
		if !strings.Contains(who, want) {
			t.Errorf("settings do not name %q: %q", want, who)
		}
	}
	if href := eval[string](tb, bannerRoot+`.querySelector('.who a[href*=autoriteit]').href`); href != "https://www.autoriteitpersoonsgegevens.nl/" {
		t.Errorf("authority link %q", href)
	}
	tb.click(button("Alles weigeren"))
	if got := eval[string](tb, placeholderButton("Video", "YouTube altijd toestaan")+`.textContent`); got != "YouTube altijd toestaan" {
		t.Errorf("placeholder button %q", got)
	}
	decl := `document.querySelector('[data-koekje-declaration]')`
	heads := eval[[]string](tb, `[...`+decl+`.querySelectorAll('th')].map(h => h.textContent)`)
	if strings.Join(heads, "|") != "Naam|Aanbieder|Domein|Soort|Looptijd|Doel" {
		t.Errorf("declaration headers %v", heads)
	}
	rows := eval[[]string](tb, `[...`+decl+`.querySelectorAll('tbody tr')].map(r => [...r.cells].map(c => c.textContent.replace(/^.*?: /, '')).join('|'))`)
	joined := strings.Join(rows, "\n")
	for _, want := range []string{"_ga|Google Ireland Ltd.|www.belvast.test|", "VISITOR_INFO1_LIVE|Google Ireland Ltd. (YouTube)|youtube.com|"} {
		if !strings.Contains(joined, want) {
			t.Errorf("declaration lacks %q:\n%s", want, joined)
		}
	}
	if n := eval[int](tb, decl+`.querySelectorAll('a[href="https://www.linkedin.com/legal/privacy-policy"]').length`); n != 1 {
		t.Errorf("%d links to LinkedIn's policy", n)
	}
	if !strings.Contains(eval[string](tb, decl+`.textContent`), "Autoriteit Persoonsgegevens") {
		t.Error("the declaration does not name the authority")
	}
	if w := eval[[]int](tb, `[document.documentElement.scrollWidth, `+decl+`.scrollWidth, `+decl+`.clientWidth]`); w[0] > 320 || w[1] > w[2] {
		t.Errorf("the declaration overflows at 320 px: page %d, table %d in %d", w[0], w[1], w[2])
	}
	tb.axe("declaration at 320 px")
	for lang, want := range map[string]string{"de": "Laufzeit", "fr": "Durée de vie"} {
		tb.open("/?lang=" + lang)
		tb.waitFor(decl + `.querySelector('th')`)
		if !strings.Contains(eval[string](tb, decl+`.querySelector('thead').textContent`), want) {
			t.Errorf("%s headers lack %q", lang, want)
		}
	}
}

// Issue 12.11: placeholders leave no empty frame box under them, fit a small
// frame without covering what follows, and follow a dark page.
func TestPlaceholderFitsAndFollowsThePage(t *testing.T) {
	t.Parallel()
	tb := newTab(t)
	tb.open("/?small=1&dark=1")
	tb.click(button("Alles weigeren"))
	tb.waitFor(`document.querySelectorAll('koekje-embed').length === 3`)
	got := eval[map[string]float64](tb, `(() => { const f = document.querySelector('iframe[title=Volgen]'), box = f.previousElementSibling, ph = box.shadowRoot.querySelector('div'),
		after = document.getElementById('after').getBoundingClientRect(), r = box.getBoundingClientRect()
		const lum = c => c.match(/\d+/g).slice(0, 3).reduce((s, v) => s + +v, 0) / 765
		return {frame: document.querySelector('iframe[title=Video]').getBoundingClientRect().height, bottom: r.bottom, after: after.top,
			overflow: ph.scrollHeight - ph.clientHeight, width: r.width, dark: lum(getComputedStyle(ph).backgroundColor)} })()`)
	if got["frame"] != 0 {
		t.Errorf("a blocked frame keeps a %v px box under iframe { display: block }", got["frame"])
	}
	if got["bottom"] > got["after"] || got["overflow"] > 0 {
		t.Errorf("the small frame's placeholder spills over what follows: %v", got)
	}
	if got["width"] != 200 {
		t.Errorf("small placeholder is %v px wide, want the frame's 200", got["width"])
	}
	if got["dark"] > 0.3 {
		t.Errorf("placeholder on a dark page is light (%.2f)", got["dark"])
	}
}

// Issue 12.11: with the system in dark mode, a light page gets light
// placeholders.
func TestPlaceholderLightPageInDarkMode(t *testing.T) {
	t.Parallel()
	tb := newTab(t, withDarkMode)
	tb.open("/")
	tb.click(button("Alles weigeren"))
	tb.waitFor(`document.querySelectorAll('koekje-embed').length === 2`)
	if lum := eval[float64](tb, `(() => { const c = getComputedStyle(document.querySelector('koekje-embed').shadowRoot.querySelector('div')).backgroundColor
		return c.match(/\d+/g).slice(0, 3).reduce((s, v) => s + +v, 0) / 765 })()`); lum < 0.7 {
		t.Errorf("placeholder on a light page is dark (%.2f)", lum)
	}
}

// Issue 12.12: the privacy link is a 24 px target, and in the modal layout
// the page behind the dialog takes neither focus nor clicks.
func TestTargetSizeAndInertPage(t *testing.T) {
	t.Parallel()
	tb := newTab(t)
	tb.open("/?site=modal")
	tb.waitFor(bannerOpen)
	size := eval[[]float64](tb, `(() => { const r = `+bannerRoot+`.querySelector('a').getBoundingClientRect(); return [r.width, r.height] })()`)
	if size[0] < 24 || size[1] < 24 {
		t.Errorf("privacy link is %v×%v px", size[0], size[1])
	}
	if eval[bool](tb, `(() => { const a = document.getElementById('settings'); a.focus(); return document.activeElement === a })()`) {
		t.Error("a link behind the dialog took focus")
	}
	if hit := eval[string](tb, `document.elementFromPoint(10, 10).tagName`); hit != "KOEKJE-BANNER" {
		t.Errorf("a click on the page behind the dialog reaches %s", hit)
	}
}

// withRefusingServer makes the consent server look down (see tab.refuse).
func withRefusingServer(tb *tab) error {
	tb.mu.Lock()
	tb.refuse = true
	tb.mu.Unlock()
	_, err := chromedp.Call(tb.ctx, fetch.Enable, fetch.EnableParams{Patterns: []*fetch.RequestPattern{
		{URLPattern: "*"}, {URLPattern: "*/consents", RequestStage: fetch.RequestStageResponse},
	}})
	return err
}

// Issue 12.9: the first POST is recorded but its answer lost (503), the
// server refuses the retries of that page load; the choice still applies,
// and on the next page load it is sent again and recorded exactly once.
func TestProofSurvivesAFailingServer(t *testing.T) {
	t.Parallel()
	tb := newTab(t, withRefusingServer)
	tb.open("/")
	tb.click(button("Alles accepteren"))
	tb.waitFor(`window.gaLoads === 1`)
	// The first answer was lost and at least one retry was refused.
	poll(func() bool { return len(tb.requests("/api/v1/sites/", false)) >= 2 })
	if n := len(tb.requests("/api/v1/sites/", false)); n < 2 {
		t.Fatalf("%d POSTs while the server refused, want a retry", n)
	}
	if got := eval[string](tb, `localStorage['koekje:demo'] || ''`); !strings.Contains(got, `"action":"accept_all"`) || !strings.Contains(got, `"request_id"`) {
		t.Fatalf("the unacknowledged choice is not kept: %q", got)
	}
	tb.mu.Lock()
	tb.refuse = false
	tb.mu.Unlock()
	tb.open("/")
	tb.waitFor(`koekje.consentId() && !localStorage['koekje:demo']`)
	id := tb.consentID()
	if n := records(t, "consent_id = ?", id[:]); n != 1 {
		t.Errorf("%d records of the choice, want exactly 1", n)
	}
	// The token in the cookie is the newest: a later choice is accepted.
	tb.click(`document.getElementById('settings')`)
	tb.click(button("Alles weigeren"))
	tb.click(button("Sluiten"))
	waitRecords(t, 1, "consent_id = ? AND action = 'reject_all'", id[:])
	tb.waitFor(`!localStorage['koekje:demo']`)
}

// Quick choices in a row each get recorded: each waits for the previous
// answer and its newest token.
func TestQuickChoicesAllRecorded(t *testing.T) {
	t.Parallel()
	tb := newTab(t)
	tb.open("/")
	tb.click(button("Instellingen"))
	tb.click(bannerRoot + `.querySelector('#k-embeds')`)
	tb.click(button("Keuze opslaan"))
	for _, b := range []string{"Alles accepteren", "Alles weigeren", "Alles accepteren"} {
		tb.click(`document.getElementById('settings')`)
		tb.click(button(b))
		if b == "Alles weigeren" {
			tb.click(button("Sluiten"))
		}
	}
	id := tb.consentID()
	waitRecords(t, 4, "consent_id = ?", id[:])
	tb.waitFor(`!localStorage['koekje:demo']`)
}
