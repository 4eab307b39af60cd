package e2e

import (
	"bytes"
	"fmt"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/andybalholm/brotli"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/koekje/koekje/config"
	"github.com/koekje/koekje/static"
)

// BenchmarkBannerSideBySide loads the demo page with Koekje's banner and
// with vanilla-cookieconsent, Klaro and Orejime (from e2e/node_modules,
// each set up with the demo's categories in Dutch), and, when
// KOEKJE_BEFORE names a one-part bundle built by an earlier Koekje, with
// that, in turns, from one local server, each load in a new browser
// context (a cold cache) and once more in the same one (a warm cache), on
// a desktop and on an emulated mid-range phone (CPU ×4, RTT 165 ms,
// 8.1 Mbit/s). It logs the medians: when the banner was on screen (the
// first frame after it entered the page: a frame the page holds back
// shows it later), the brotli bytes it needs before it can show and in all,
// and how long after a click on its settings button they were on screen:
// on the cold load a click in the first frame that shows the banner, on
// the warm one a click once the page has loaded.
//
//	KOEKJE_BEFORE=before.js go test ./e2e -run '^$' -bench BannerSideBySide -benchtime 1x -v
//
// (-v: without it Go cuts a benchmark's log after ten lines.)
//
// (before.js: an earlier build's /s/demo.js, fetched without compression
// from `go run ./cmd/koekje` in a checkout of it.)
func BenchmarkBannerSideBySide(b *testing.B) {
	tools := []compareTool{{name: "Koekje", page: "/koekje.html", prefix: "/s/", first: "/s/demo.js"}}
	if before := os.Getenv("KOEKJE_BEFORE"); before != "" {
		tools = append(tools, compareTool{name: "Koekje before", page: "/before.html", prefix: "/before/", first: "/before/"})
	}
	tools = append(tools, compareTool{name: "vanilla-cookieconsent", page: "/cc.html", prefix: "/cc/", first: "/cc/"},
		compareTool{name: "Klaro", page: "/klaro.html", prefix: "/klaro/", first: "/klaro/"},
		compareTool{name: "Orejime", page: "/orejime.html", prefix: "/orejime/", first: "/orejime/"})
	srv := httptest.NewServer(compareHandler(b))
	b.Cleanup(srv.Close)
	rounds := 9
	for _, profile := range []string{"desktop", "phone"} {
		results := make([][]compareLoad, len(tools))
		for r := range rounds {
			// Each round starts with another tool, so none is always first.
			for j := range tools {
				i := (r + j) % len(tools)
				results[i] = append(results[i], compareRun(b, srv.URL, tools[i], profile))
			}
		}
		// On a shared machine the fastest load says more of a tool's own
		// cost than the median, which the neighbours' load moves.
		b.Logf("%s, %d loads each (median/fastest; ms after navigation start, or after the click):", profile, rounds)
		b.Logf("| %-21s | %8s | %8s | %11s | %11s | %13s | %13s |", "tool", "B before", "B in all", "shown cold", "shown warm", "settings cold", "settings warm")
		for i, tool := range tools {
			col := func(f func(compareLoad) float64) string {
				var v []float64
				for _, r := range results[i] {
					v = append(v, f(r))
				}
				return fmt.Sprintf("%.0f/%.0f", median(v), slices.Min(v))
			}
			b.Logf("| %-21s | %8.0f | %8.0f | %11s | %11s | %13s | %13s |", tool.name,
				results[i][0].firstBytes, results[i][0].allBytes,
				col(func(l compareLoad) float64 { return l.shown[0] }), col(func(l compareLoad) float64 { return l.shown[1] }),
				col(func(l compareLoad) float64 { return l.settings[0] }), col(func(l compareLoad) float64 { return l.settings[1] }))
		}
	}
}

// newTabProfile opens a tab with compareProbe, as a desktop or as the
// emulated phone.
func newTabProfile(b *testing.B, profile string) *tab {
	tb := newTab(b, func(tb *tab) error {
		_, err := chromedp.Call(tb.ctx, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: compareProbe})
		return err
	})
	if profile == "phone" {
		tb.do(chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile))
		if _, err := chromedp.Call(tb.ctx, network.Enable, network.EnableParams{}); err != nil {
			b.Fatal(err)
		}
		if _, err := chromedp.Call(tb.ctx, network.EmulateNetworkConditionsByRule, network.EmulateNetworkConditionsByRuleParams{
			MatchedNetworkConditions: []*network.Conditions{{Latency: 165, DownloadThroughput: 8.1e6 / 8, UploadThroughput: 8.1e6 / 8}},
		}); err != nil {
			b.Fatal(err)
		}
		if _, err := chromedp.Call(tb.ctx, emulation.SetCPUThrottlingRate, emulation.SetCPUThrottlingRateParams{Rate: 4}); err != nil {
			b.Fatal(err)
		}
	}
	return tb
}

// compareTool is a banner in the comparison: its page, where its files
// are, and the files it needs before it can show (the rest, Koekje's
// second part, may come before it is shown or after).
type compareTool struct{ name, page, prefix, first string }

// compareLoad is one tool's cold and warm load.
type compareLoad struct {
	firstBytes, allBytes float64
	shown, settings      [2]float64
}

// compareProbe records when a banner is on screen (the first animation
// frame after it entered the page: none runs while the page holds its
// first frame back) and, after a click on its settings button, when its
// settings are (checked every frame). With ?cold in the address it clicks
// that button itself, in the first frame it is in.
const compareProbe = `
window.shown = 0; window.opened = 0;
const bannerIn = () => document.querySelector('koekje-banner, .klaro .cookie-notice, .orejime-Banner') || document.documentElement.classList.contains('show--consent');
const settingsOn = () => document.querySelector('koekje-banner')?.shadowRoot?.querySelector('.k[data-layer=settings] .cat') ||
  document.documentElement.classList.contains('show--preferences') && document.querySelector('#cc-main .pm') ||
  document.querySelector('.klaro .cookie-modal .cm-purpose, .orejime-Modal .orejime-Purpose');
window.settingsButton = () => document.querySelector('koekje-banner')?.shadowRoot?.querySelector('.acts button:last-child') ||
  document.querySelector('#cc-main .cm [data-role=show], .klaro .cookie-notice .cn-learn-more, .orejime-Banner-learnMoreButton');
new MutationObserver((ms, o) => {
  if (!bannerIn()) return
  o.disconnect()
  requestAnimationFrame(() => {
    shown = performance.now()
    if (location.search === '?cold') (function c() { const b = settingsButton(); if (b) b.click(); else requestAnimationFrame(c) })()
  })
}).observe(document, {childList: true, subtree: true, attributes: true});
document.addEventListener('click', () => {
  const t0 = performance.now();
  (function f() { if (settingsOn()) opened = performance.now() - t0; else requestAnimationFrame(f) })()
}, true);`

func compareRun(b *testing.B, base string, tool compareTool, profile string) compareLoad {
	tb := newTabProfile(b, profile)
	var out compareLoad
	for i := range 2 {
		// Cold, the page clicks as soon as the banner is on screen; warm,
		// once it has loaded (Navigate waits for that). A click from
		// script: vanilla-cookieconsent's box is still sliding in, under
		// the mouse, when it is in the page.
		query := ""
		if i == 0 {
			query = "?cold"
		}
		tb.do(chromedp.Navigate(base + tool.page + query))
		tb.waitFor(`shown > 0`)
		out.shown[i] = eval[float64](tb, `shown`)
		if i == 1 {
			tb.waitFor(`settingsButton()`)
			eval[bool](tb, `settingsButton().click() || true`)
		}
		tb.waitFor(`opened > 0`)
		out.settings[i] = eval[float64](tb, `opened`)
		if i == 0 {
			tb.waitFor(`document.readyState === 'complete'`)
			sizes := eval[[]float64](tb, `(() => { const r = performance.getEntriesByType('resource'), p = e => new URL(e.name).pathname
				const sum = s => r.filter(e => p(e).startsWith(s)).reduce((n, e) => n + e.encodedBodySize, 0)
				return [sum(`+jsString(tool.first)+`), sum(`+jsString(tool.prefix)+`)] })()`)
			out.firstBytes, out.allBytes = sizes[0], sizes[1]
		}
	}
	return out
}

// compareHandler serves the demo page with each tool, and the tools'
// files brotli-compressed as Koekje serves its own.
func compareHandler(b *testing.B) http.Handler {
	bundle, err := static.Build(config.Demo().Site("demo"))
	if err != nil {
		b.Fatal(err)
	}
	index, err := fs.ReadFile(static.Demo, "index.html")
	if err != nil {
		b.Fatal(err)
	}
	demo := string(index)
	pages := map[string]string{
		"/koekje.html": demo,
		"/before.html": strings.Replace(demo, `<script src="/s/demo.js">`, `<script src="/before/demo.js">`, 1),
		"/cc.html": strings.Replace(demo, `<script src="/s/demo.js"></script>`,
			`<link rel="stylesheet" href="/cc/cookieconsent.css"><script defer src="/cc/cookieconsent.umd.js"></script><script defer src="/cc/init.js"></script>`, 1),
		"/klaro.html": strings.Replace(demo, `<script src="/s/demo.js"></script>`,
			`<script defer src="/klaro/config.js"></script><script defer src="/klaro/klaro.js"></script>`, 1),
		"/orejime.html": strings.Replace(demo, `<script src="/s/demo.js"></script>`,
			`<link rel="stylesheet" href="/orejime/orejime-standard.css"><script defer src="/orejime/config.js"></script><script defer src="/orejime/orejime-standard-nl.js"></script>`, 1),
	}
	files := map[string][]byte{"/s/demo.js": bundle.Brotli, bundle.MorePath(): bundle.More.Brotli, "/cc/init.js": compress(b, []byte(ccInit)),
		"/klaro/config.js": compress(b, []byte(klaroConfig)), "/orejime/config.js": compress(b, []byte(orejimeConfig))}
	if before := os.Getenv("KOEKJE_BEFORE"); before != "" {
		js, err := os.ReadFile(before)
		if err != nil {
			b.Fatal(err)
		}
		files["/before/demo.js"] = compress(b, js)
	}
	for _, f := range []struct{ dir, pkg, name string }{
		{"cc", "vanilla-cookieconsent", "cookieconsent.umd.js"}, {"cc", "vanilla-cookieconsent", "cookieconsent.css"},
		{"klaro", "klaro", "klaro.js"},
		{"orejime", "orejime", "orejime-standard-nl.js"}, {"orejime", "orejime", "orejime-standard.css"},
	} {
		raw, err := os.ReadFile(filepath.Join("node_modules", f.pkg, "dist", f.name))
		if err != nil {
			b.Fatalf("%v: run `npm ci` in e2e/", err)
		}
		files["/"+f.dir+"/"+f.name] = compress(b, raw)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p, ok := pages[r.URL.Path]; ok {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			fmt.Fprint(w, p)
			return
		}
		if strings.HasPrefix(r.URL.Path, "/demo/") {
			http.StripPrefix("/demo/", http.FileServerFS(static.Demo)).ServeHTTP(w, r)
			return
		}
		body, ok := files[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		ct := "text/javascript; charset=utf-8"
		if strings.HasSuffix(r.URL.Path, ".css") {
			ct = "text/css; charset=utf-8"
		}
		w.Header().Set("Content-Type", ct)
		w.Header().Set("Content-Encoding", "br")
		w.Header().Set("Cache-Control", "public, max-age=300")
		w.Write(body)
	})
}

func compress(b *testing.B, raw []byte) []byte {
	var buf bytes.Buffer
	w := brotli.NewWriterLevel(&buf, brotli.BestCompression)
	w.Write(raw)
	if err := w.Close(); err != nil {
		b.Fatal(err)
	}
	return buf.Bytes()
}

// ccInit sets vanilla-cookieconsent up as the demo site: the same
// categories and the Dutch texts, with the analytics cookies in a table.
// Its default hides the banner from a headless browser, which it takes
// for a bot.
const ccInit = `CookieConsent.run({
  hideFromBots: false,
  categories: { necessary: { enabled: true, readOnly: true }, functional: {}, analytics: {}, embeds: {} },
  language: { default: 'nl', translations: { nl: {
    consentModal: {
      title: 'Cookies op deze site',
      description: 'We gebruiken cookies om de site te laten werken. Met je toestemming tellen we ook bezoeken en tonen we inhoud van Google, Meta en LinkedIn. Je kunt je keuze altijd wijzigen.',
      acceptAllBtn: 'Alles accepteren', acceptNecessaryBtn: 'Alles weigeren', showPreferencesBtn: 'Instellingen'
    },
    preferencesModal: {
      title: 'Cookie-instellingen', acceptAllBtn: 'Alles accepteren', acceptNecessaryBtn: 'Alles weigeren',
      savePreferencesBtn: 'Keuze opslaan', closeIconLabel: 'Sluiten',
      sections: [
        { title: 'Noodzakelijk', description: 'Zonder deze cookies werkt de site niet.', linkedCategory: 'necessary' },
        { title: 'Functioneel', description: 'Ze onthouden wat je in het reactieformulier invult.', linkedCategory: 'functional' },
        { title: 'Statistieken', description: 'Google Analytics telt bezoeken.', linkedCategory: 'analytics',
          cookieTable: { headers: { name: 'Naam', domain: 'Domein', desc: 'Doel' },
            body: [{ name: '_ga', domain: location.hostname, desc: 'Onderscheidt bezoekers' }, { name: '_ga_*', domain: location.hostname, desc: 'Houdt de sessie bij' }] } },
        { title: 'Ingesloten inhoud', description: 'Video\'s van YouTube en kaarten van Google Maps.', linkedCategory: 'embeds' }
      ]
    }
  } } }
})`

// klaroConfig sets Klaro up as the demo site (its own Dutch texts).
const klaroConfig = `window.klaroConfig = {
  version: 1, elementID: 'klaro', lang: 'nl', storageMethod: 'cookie', mustConsent: false, acceptAll: true,
  translations: { nl: { privacyPolicyUrl: 'https://belvast.example/privacy',
    purposes: { functional: 'Functioneel', analytics: 'Statistieken', embeds: 'Ingesloten inhoud' } } },
  services: [
    { name: 'comments', title: 'Reactieformulier', purposes: ['functional'] },
    { name: 'google-analytics', title: 'Google Analytics', purposes: ['analytics'], cookies: [/^_ga/] },
    { name: 'youtube', title: 'YouTube', purposes: ['embeds'] },
    { name: 'google-maps', title: 'Google Maps', purposes: ['embeds'] }
  ]
}`

// orejimeConfig sets Orejime up as the demo site (its Dutch build).
const orejimeConfig = `window.orejimeConfig = {
  privacyPolicyUrl: 'https://belvast.example/privacy',
  purposes: [
    { id: 'functional', title: 'Functioneel', description: 'Ze onthouden wat je in het reactieformulier invult.', cookies: [] },
    { id: 'analytics', title: 'Statistieken', description: 'Google Analytics telt bezoeken.', cookies: ['_ga', /^_ga_/] },
    { id: 'embeds', title: 'Ingesloten inhoud', description: 'Video\'s van YouTube en kaarten van Google Maps.', cookies: [] }
  ]
}`
