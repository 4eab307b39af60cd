package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/koekje/koekje/config"
	"github.com/koekje/koekje/static"
)

// pixelSite is a site whose only optional category is marketing, with a
// Meta Pixel: its first layer may name nothing but that purpose and Meta.
func pixelSite(rev int) *config.Site {
	s := demoSiteAt("pixel", rev, "http://"+hostName+":*")
	s.Languages, s.DefaultLanguage = []string{"nl", "en"}, "nl"
	s.Categories = []*config.Category{s.Categories[0], {ID: "marketing", ConsentMode: []string{"ad_storage", "ad_user_data", "ad_personalization"},
		Title:       config.Text{"nl": "Marketing", "en": "Marketing"},
		Description: config.Text{"nl": "De Meta Pixel meet of advertenties werken.", "en": "The Meta Pixel measures whether ads work."}}}
	s.Categories[0].Title = config.Text{"nl": "Noodzakelijk", "en": "Necessary"}
	s.Categories[0].Description = config.Text{"nl": "Zonder deze werkt de site niet.", "en": "The site cannot work without these."}
	own := s.Services[0]
	own.Cookies[0].Purpose = config.Text{"nl": "Je cookiekeuze", "en": "Your cookie choice"}
	s.Services = []*config.Service{own, {ID: "meta-pixel", Name: "Meta Pixel", Category: "marketing",
		Provider: "Meta Platforms Ireland Ltd.", PrivacyPolicy: "https://www.facebook.com/privacy/policy",
		Cookies: []*config.Cookie{{Name: "_fbp", Duration: "3mo", Purpose: config.Text{"nl": "Herkent je browser", "en": "Recognises your browser"}}}}}
	return s
}

// sixPartySite is the demo site in every language with six third parties.
func sixPartySite(rev int) *config.Site {
	s := polyglotSite(rev)
	s.ID = "sixparty"
	en := func(s string) config.Text {
		t := config.Text{}
		for _, l := range config.Languages {
			t[l] = s
		}
		return t
	}
	for _, p := range []struct{ id, name, provider string }{
		{"hotjar", "Hotjar", "Hotjar Ltd."}, {"tiktok", "TikTok Pixel", "TikTok Technology Limited"}, {"clarity", "Microsoft Clarity", "Microsoft Ireland Operations Ltd."},
	} {
		s.Services = append(s.Services, &config.Service{ID: p.id, Name: p.name, Category: "analytics", Provider: p.provider,
			Cookies: []*config.Cookie{{Name: "_" + p.id, Duration: "1y", Purpose: en("Measures visits")}}})
	}
	return s
}

// The first layer says what the site asks for: a site with only a Meta
// Pixel names marketing and Meta alone, in the singular, in Dutch and
// English; the demo names each of its optional categories, the comment
// form's too, and the three companies.
func TestFirstLayerNamesTheSitesPurposes(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ site, lang, want string }{
		{"pixel", "en", "We use cookies to make the site work. With your permission we also use them for this purpose: marketing. Meta then receives data about your visit. You can change your choice at any time."},
		{"pixel", "nl", "Wij gebruiken cookies om de site te laten werken. Met je toestemming gebruiken we ze ook voor dit doel: marketing. Meta krijgt dan gegevens over je bezoek. Je kunt je keuze altijd wijzigen."},
		{"demo", "nl", "Wij gebruiken cookies om de site te laten werken. Met je toestemming gebruiken we ze ook voor deze doelen: functioneel, statistieken en ingesloten inhoud. Google, Meta en LinkedIn krijgen dan gegevens over je bezoek. Je kunt je keuze altijd wijzigen."},
	} {
		t.Run(c.site+"-"+c.lang, func(t *testing.T) {
			t.Parallel()
			tb := newTab(t)
			tb.open(fmt.Sprintf("/?site=%s&lang=%s&noembeds=1&nodecl=1", c.site, c.lang))
			tb.waitFor(bannerOpen)
			got := eval[string](tb, bannerRoot+`.getElementById('k-d').firstChild.textContent`)
			if got != c.want {
				t.Errorf("first layer:\n got %q\nwant %q", got, c.want)
			}
		})
	}
}

// The purpose sentence joins its lists as the browser does in each of the
// 24 languages (British English for English): what Koekje writes at build
// time is what Chromium's Intl.ListFormat writes, but for the no-break
// space after Slovak's "a", which Chromium keeps only between two. Chromium
// has no list data for Irish and Maltese (it answers in English); the
// static package's test holds those to the Unicode CLDR's.
func TestListsJoinAsTheBrowserDoes(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile("../static/texts.json")
	if err != nil {
		t.Fatal(err)
	}
	var texts map[string]struct {
		And string `json:"and"`
	}
	if err := json.Unmarshal(raw, &texts); err != nil {
		t.Fatal(err)
	}
	lists := [][]string{{"Google"}, {"Google", "Meta"}, {"Google", "Meta", "LinkedIn"}, {"Google", "Meta", "Hotjar", "Instagram"}, {"Meta", "Hilton"}, {"Meta", "hierro"}}
	tb := newTab(t)
	tb.open("/?noembeds=1&nodecl=1")
	for _, lang := range config.Languages {
		tag := lang
		if lang == "en" {
			tag = "en-GB"
		}
		if !eval[bool](tb, fmt.Sprintf(`Intl.ListFormat.supportedLocalesOf(%q).length > 0`, tag)) {
			if lang != "ga" && lang != "mt" {
				t.Errorf("Chromium has no list format for %s", lang)
			}
			continue
		}
		for _, l := range lists {
			items, _ := json.Marshal(l)
			want := eval[string](tb, fmt.Sprintf(`new Intl.ListFormat(%q, {type: 'conjunction'}).format(%s)`, tag, items))
			got := static.JoinList(lang, texts[lang].And, l)
			if lang == "sk" {
				got, want = strings.ReplaceAll(got, "\u00a0", " "), strings.ReplaceAll(want, "\u00a0", " ")
			}
			if got != want {
				t.Errorf("%s %v: Koekje writes %q, Chromium %q", lang, l, got, want)
			}
		}
	}
}

// firstLayerInView checks the first layer at one screen size: the purpose
// sentence with its third parties, the privacy link and the three buttons
// are wholly on the screen and in the box's visible area without scrolling.
const firstLayerInView = `(() => {
	const root = ` + bannerRoot + `, out = []
	const vv = visualViewport, L = vv.offsetLeft, T = vv.offsetTop, R = L + vv.width, B = T + vv.height
	const body = root.querySelector('.body'), br = body.getBoundingClientRect()
	if (body.scrollHeight > body.clientHeight + 1) out.push('the text scrolls: ' + body.scrollHeight + ' > ' + body.clientHeight)
	const check = (what, el, clip) => {
		if (!el) return out.push(what + ' missing')
		const r = el.getBoundingClientRect()
		if (!(r.width > 0 && r.left >= L - 0.5 && r.top >= T - 0.5 && r.right <= R + 0.5 && r.bottom <= B + 0.5)) out.push(what + ' off the screen ' + JSON.stringify(r))
		if (clip && !(r.top >= br.top - 0.5 && r.bottom <= br.bottom + 0.5)) out.push(what + ' cut by the box ' + JSON.stringify(r))
		if (!clip && root.elementFromPoint(r.x + r.width / 2 - L, r.y + r.height / 2 - T) !== el) out.push(what + ' covered')
	}
	check('the purpose sentence', root.getElementById('k-d'), true)
	check('the privacy link', root.querySelector('#k-d a'), true)
	for (const b of root.querySelectorAll('.acts button')) check('"' + b.textContent + '"', b, false)
	if (root.querySelectorAll('.acts button').length !== 3) out.push('not three buttons')
	return out })()`

// phones are the screens every language's first layer must fit.
var phones = [][2]int64{{320, 568}, {360, 640}, {390, 844}}

// On every phone, in every language, for the demo's categories and for a
// site with six third parties, the first layer shows its purpose sentence,
// the third parties, the privacy link and its three buttons without
// scrolling.
func TestFirstLayerWhollyInViewOnEveryPhone(t *testing.T) {
	t.Parallel()
	for _, site := range []string{"polyglot", "sixparty"} {
		for _, lang := range config.Languages {
			t.Run(site+"-"+lang, func(t *testing.T) {
				t.Parallel()
				tb := newTab(t)
				tb.do(chromedp.EmulateViewport(phones[0][0], phones[0][1], chromedp.EmulateMobile))
				tb.open(fmt.Sprintf("/?site=%s&lang=%s&noembeds=1&nodecl=1", site, lang))
				tb.waitFor(bannerOpen)
				if site == "sixparty" {
					if intro := eval[string](tb, bannerRoot+`.getElementById('k-d').textContent`); !strings.Contains(intro, "Hotjar") || !strings.Contains(intro, "TikTok") || !strings.Contains(intro, "Microsoft") {
						t.Errorf("the first layer names not all six: %q", intro)
					}
				}
				for _, p := range phones {
					tb.do(chromedp.EmulateViewport(p[0], p[1], chromedp.EmulateMobile))
					tb.waitFor(fmt.Sprintf(`visualViewport.width === %d`, p[0]))
					if out := eval[[]string](tb, firstLayerInView); len(out) > 0 {
						t.Errorf("%d×%d: %s", p[0], p[1], strings.Join(out, "; "))
					}
				}
			})
		}
	}
}

// The other layouts on every phone, in the demo's longer languages: the
// bar at the foot and the head of the screen, the modal and the box in
// a brand's corner show the whole first layer too.
func TestEveryLayoutWhollyInViewOnEveryPhone(t *testing.T) {
	t.Parallel()
	for _, site := range []string{"bar", "bartop", "modal", "brand"} {
		for _, lang := range []string{"de", "fr"} {
			t.Run(site+"-"+lang, func(t *testing.T) {
				t.Parallel()
				tb := newTab(t)
				for _, p := range phones {
					tb.do(chromedp.EmulateViewport(p[0], p[1], chromedp.EmulateMobile))
					tb.open(fmt.Sprintf("/?site=%s&lang=%s&noembeds=1&nodecl=1", site, lang))
					tb.waitFor(bannerOpen)
					tb.waitFor(`document.readyState === 'complete'`)
					if out := eval[[]string](tb, firstLayerInView); len(out) > 0 {
						t.Errorf("%d×%d: %s", p[0], p[1], strings.Join(out, "; "))
					}
				}
			})
		}
	}
}

// On a phone whose page is wider than the screen (the layout viewport then
// grows to the page's width), the first layer of the box, the bar and the
// modal is in the visual viewport, wholly, as on a page that fits.
func TestBannerInViewOnAWidePage(t *testing.T) {
	t.Parallel()
	for _, site := range []string{"demo", "bar", "bartop", "modal"} {
		t.Run(site, func(t *testing.T) {
			t.Parallel()
			tb := newTab(t)
			for _, p := range phones {
				tb.do(chromedp.EmulateViewport(p[0], p[1], chromedp.EmulateMobile))
				tb.open("/?wide=1&noembeds=1&nodecl=1&nolink=1&site=" + site)
				tb.waitFor(bannerOpen)
				tb.waitFor(`document.readyState === 'complete'`)
				if w := eval[float64](tb, `innerWidth`); w < 1000 {
					t.Fatalf("the layout viewport is %.0f px wide: the page is not wider than the screen", w)
				}
				if out := eval[[]string](tb, firstLayerInView); len(out) > 0 {
					t.Errorf("%d×%d: %s", p[0], p[1], strings.Join(out, "; "))
				}
			}
			// After the choice, its confirmation and the settings button are
			// in view too.
			tb.click(button("Alles accepteren"))
			tb.waitFor(statusRoot + `.querySelector('[role=status]').textContent !== ''`)
			for what, el := range map[string]string{
				"the confirmation":    statusRoot + `.querySelector('[role=status]')`,
				"the settings button": `document.querySelector('koekje-settings').shadowRoot.querySelector('.fab')`,
			} {
				if !eval[bool](tb, `(() => { const v = visualViewport, r = `+el+`.getBoundingClientRect()
					return r.width > 0 && r.left >= v.offsetLeft - 0.5 && r.top >= v.offsetTop - 0.5 && r.right <= v.offsetLeft + v.width + 0.5 && r.bottom <= v.offsetTop + v.height + 0.5 })()`) {
					t.Errorf("%s is off the screen: %s", what, eval[string](tb, `JSON.stringify(`+el+`.getBoundingClientRect())`))
				}
			}
		})
	}
}

// registerSite is the demo site addressing visitors formally or informally.
func registerSite(formality string, rev int) *config.Site {
	s := demoSiteAt(formality, rev, "http://"+hostName+":*")
	s.Formality = formality
	return s
}

// A site's formality sets how Dutch and German address the visitor: u or
// je, Sie or du, in the first layer and the placeholders alike.
func TestFormality(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ site, lang, intro, blocked string }{
		{"demo", "nl", "Je kunt je keuze altijd wijzigen.", "als je dat toestaat"},
		{"formal", "nl", "U kunt uw keuze altijd wijzigen.", "als u dat toestaat"},
		{"demo", "de", "Sie können Ihre Wahl jederzeit ändern.", "wenn Sie es erlauben"},
		{"informal", "de", "Du kannst deine Wahl jederzeit ändern.", "wenn du es erlaubst"},
	} {
		t.Run(c.site+"-"+c.lang, func(t *testing.T) {
			t.Parallel()
			tb := newTab(t)
			tb.open(fmt.Sprintf("/?site=%s&lang=%s&nodecl=1", c.site, c.lang))
			tb.waitFor(bannerOpen)
			if got := eval[string](tb, bannerRoot+`.getElementById('k-d').textContent`); !strings.Contains(got, c.intro) {
				t.Errorf("first layer %q lacks %q", got, c.intro)
			}
			tb.waitFor(`document.querySelector('koekje-embed').shadowRoot.querySelector('button')`)
			if got := eval[string](tb, `document.querySelector('koekje-embed').shadowRoot.textContent`); !strings.Contains(got, c.blocked) {
				t.Errorf("placeholder %q lacks %q", got, c.blocked)
			}
		})
	}
}

// On a desktop whose scrollbars take room, the visual viewport is the
// layout viewport less the scrollbar: the banner is left where its layout
// puts it, the modal at its 640 px, the box 16 px from the scrollbar.
// (The package's Chromium hides scrollbars; this test starts one that
// shows them.)
func TestDesktopScrollbarLeavesTheBannerAlone(t *testing.T) {
	t.Parallel()
	browser(t)
	alloc, cancel := chromedp.NewExecAllocator(context.Background(),
		append(chromeOptions(chromePath), chromedp.UserDataDir(t.TempDir()), chromedp.Flag("hide-scrollbars", false))...)
	t.Cleanup(cancel)
	ctx, cancel := chromedp.NewContext(alloc)
	t.Cleanup(cancel)
	ctx, cancel = context.WithTimeout(ctx, 60*time.Second)
	t.Cleanup(cancel)
	tb := &tab{t: t, ctx: ctx}
	tb.do(chromedp.EmulateViewport(1280, 800))
	for site, want := range map[string]string{
		"modal": `r.width === 640 && Math.abs(r.left - (cw - r.right)) < 1`,
		"demo":  `Math.abs(cw - r.right - 16) < 1`,
		"bar":   `r.left === 0 && Math.abs(r.width - cw) < 1`,
	} {
		tb.open("/?scrollbar=1&site=" + site)
		tb.waitFor(bannerOpen)
		tb.waitFor(`document.readyState === 'complete'`)
		if !eval[bool](tb, `visualViewport.width < innerWidth`) {
			t.Fatalf("no scrollbar takes room: visual viewport %v", eval[[]float64](tb, `[visualViewport.width, innerWidth]`))
		}
		got := eval[map[string]any](tb, `(() => { const d = `+bannerOpen+`, r = d.getBoundingClientRect(), cw = document.documentElement.clientWidth
			return {ok: `+want+`, style: d.style.cssText, rect: JSON.stringify(r), cw} })()`)
		if got["ok"] != true || got["style"] != "" {
			t.Errorf("%s beside a scrollbar: %v", site, got)
		}
	}
}
