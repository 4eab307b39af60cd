package e2e

import (
	"encoding/json"
	"os"
	"slices"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/koekje/koekje/config"
)

// polyglotSite is the demo site in every language the banner speaks. Its
// own texts (categories, purposes) stay English in each: what is under
// test are the banner's texts, whose lengths differ by language.
func polyglotSite(rev int) *config.Site {
	s := config.Demo().Site("demo")
	s.ID, s.Revision = "polyglot", rev
	s.Languages, s.DefaultLanguage = slices.Clone(config.Languages), "en"
	s.Origins = append(s.Origins, "http://"+hostName+":*")
	texts := []config.Text{}
	for _, c := range s.Categories {
		texts = append(texts, c.Title, c.Description)
	}
	for _, sv := range s.Services {
		for _, ck := range sv.Cookies {
			texts = append(texts, ck.Purpose)
		}
	}
	for _, t := range texts {
		en := t["en"]
		for _, l := range config.Languages {
			t[l] = en
		}
	}
	return s
}

// Every language fits a phone: on a 390 px screen both layers of the box
// show every button and the close button wholly and clickable, no text is
// under 12 px, and the first layer leaves at least half the screen free.
// Long words (Finnish, Hungarian, German, Greek) are what could break it.
func TestEveryLanguageFitsAPhone(t *testing.T) {
	t.Parallel()
	var texts map[string]map[string]any
	b, err := os.ReadFile("../static/texts.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &texts); err != nil {
		t.Fatal(err)
	}
	for _, lang := range config.Languages {
		t.Run(lang, func(t *testing.T) {
			t.Parallel()
			tb := newTab(t)
			tb.do(chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile))
			tb.open("/?site=polyglot&lang=" + lang)
			tb.waitFor(bannerOpen)
			tb.waitFor(`document.readyState === 'complete'`)
			if got := eval[string](tb, bannerRoot+`.querySelector('[lang]')?.lang ?? ''`); got != lang {
				t.Errorf("the banner is marked as %q, not %q", got, lang)
			}
			if got := eval[string](tb, bannerRoot+`.querySelector('#k-t').textContent`); got != texts[lang]["title"] || got == "" {
				t.Errorf("the banner's title is %q, not %q", got, texts[lang]["title"])
			}
			tb.checkLayer(lang + " first layer")
			r := eval[[]float64](tb, `(() => { const r = `+bannerOpen+`.getBoundingClientRect(); return [r.height, innerHeight] })()`)
			if r[0] > r[1]/2 {
				t.Errorf("%s: the box is %.0f px high on a %.0f px screen: more than half", lang, r[0], r[1])
			}
			eval[bool](tb, `(koekje.show(), true)`)
			tb.waitFor(bannerRoot + `.querySelector('.k').dataset.layer === 'settings'`)
			tb.click(bannerRoot + `.querySelector('#k-analytics-b summary')`)
			tb.waitFor(bannerRoot + `.querySelector('#k-analytics-b[open]')`)
			tb.checkLayer(lang + " settings layer")
		})
	}
}
