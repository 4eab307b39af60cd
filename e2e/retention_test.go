package e2e

import (
	"slices"
	"strings"
	"testing"

	"github.com/koekje/koekje/config"
)

// How long a service keeps a cookie's data shows beside the cookie, in the
// settings layer and in the declaration, in the visitor's language with
// the browser's words for the duration: the cookie's own retention where
// it has one, else its service's, and nothing for a service without one.
func TestRetentionShown(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		lang, settings, kept string
		rows                 map[string]string
	}{
		{"nl", "Instellingen", "bewaard", map[string]string{
			"_ga": "Gegevens worden 14 maanden bewaard.", "_ga_*": "Gegevens worden 14 maanden bewaard.",
			"comment_author_*": "Gegevens worden 1 jaar bewaard.", "wp-saving-post": "Gegevens worden 1 dag bewaard.",
		}},
		{"en", "Settings", "kept", map[string]string{
			"_ga": "Data is kept for 14 months.", "_ga_*": "Data is kept for 14 months.",
			"comment_author_*": "Data is kept for 1 year.", "wp-saving-post": "Data is kept for 1 day.",
		}},
	} {
		t.Run(tt.lang, func(t *testing.T) {
			t.Parallel()
			tb := newTab(t)
			tb.open("/?lang=" + tt.lang)
			tb.waitFor(bannerOpen)
			// row is the visible text of a cookie's row in a table.
			row := func(root, name string) string {
				return eval[string](tb, `[...`+root+`.querySelectorAll('tbody tr')].find(r => r.querySelector('code')?.textContent === `+jsQuote(name)+`)?.innerText || ''`)
			}
			check := func(where, root string) {
				for name, want := range tt.rows {
					if got := row(root, name); !strings.Contains(got, want) {
						t.Errorf("%s: the row of %s lacks %q: %q", where, name, want, got)
					}
				}
				if got := row(root, "NID"); got == "" || strings.Contains(got, tt.kept) {
					t.Errorf("%s: the row of NID, whose service names no retention, is %q", where, got)
				}
			}
			check("declaration", `document.querySelector('[data-koekje-declaration]')`)

			// The settings, opened as a visitor does, every category unfolded.
			tb.click(button(tt.settings))
			tb.waitFor(bannerRoot + `.querySelector('.k').dataset.layer === 'settings'`)
			for _, id := range []string{"functional", "analytics", "embeds"} {
				tb.click(bannerRoot + `.querySelector('#k-` + id + `-b summary')`)
				tb.waitFor(bannerRoot + `.querySelector('#k-` + id + `-b').open`)
			}
			check("settings", bannerRoot)
		})
	}
}

func jsQuote(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}

// The banner writes durations with the browser's Intl.NumberFormat in
// every language but Irish and Maltese, whose words it carries itself
// (Chromium has no locale data for them): the others must be there.
func TestBrowserHasDurationWords(t *testing.T) {
	t.Parallel()
	tb := newTab(t)
	tb.open("/")
	var want []string
	for _, l := range config.Languages {
		if l != "ga" && l != "mt" {
			want = append(want, l)
		}
	}
	list := `['` + strings.Join(config.Languages, `','`) + `']`
	got := eval[[]string](tb, `Intl.NumberFormat.supportedLocalesOf(`+list+`)`)
	for _, l := range want {
		if !slices.Contains(got, l) {
			t.Errorf("Chromium cannot write durations in %s (it can in %v)", l, got)
		}
	}
	// Each of them has its own word for a year, not the English one.
	for _, l := range want {
		if w := eval[string](tb, `new Intl.NumberFormat('`+l+`', {style: 'unit', unit: 'year', unitDisplay: 'long'}).format(2)`); l != "en" && w == "2 years" {
			t.Errorf("%s: %q", l, w)
		}
	}
}

// irishSite is the demo site for an Irish company in Irish, Maltese and
// English (the site's own texts in English for all three): the languages
// whose durations the banner carries in words.
func irishSite(rev int) *config.Site {
	s := config.Demo().Site("demo")
	s.ID, s.Revision = "gaeilge", rev
	s.Languages, s.DefaultLanguage = []string{"ga", "mt", "en"}, "ga"
	s.Origins = append(s.Origins, "http://"+hostName+":*")
	a := config.Authorities["IE"]
	s.Controller.Jurisdiction, s.Authority = "IE", &a
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
		t["ga"], t["mt"] = t["en"], t["en"]
		delete(t, "nl")
		delete(t, "de")
		delete(t, "fr")
	}
	return s
}

// In Irish and Maltese, for which Chromium has no words, the declaration
// writes durations and retentions in the words the bundle carries.
func TestDurationsInIrishAndMaltese(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		lang string
		rows map[string][]string
	}{
		{"ga", map[string][]string{
			"_ga":            {"2 bhliain", "Coinnítear na sonraí ar feadh 14 mí."},
			"wp-saving-post": {"1 lá", "Coinnítear na sonraí ar feadh 1 lá."},
			"fr":             {"3 mhí"},
			"YSC":            {"go ndúnfaidh tú an brabhsálaí"},
		}},
		{"mt", map[string][]string{
			"_ga":              {"sentejn", "Id-data tinżamm għal 14 xahar."},
			"comment_author_*": {"1 sena", "Id-data tinżamm għal 1 sena."},
			"fr":               {"3 xhur"},
			"YSC":              {"sakemm tagħlaq il-browser"},
		}},
	} {
		t.Run(tt.lang, func(t *testing.T) {
			t.Parallel()
			tb := newTab(t)
			tb.open("/?site=gaeilge&lang=" + tt.lang)
			tb.waitFor(bannerOpen)
			for name, wants := range tt.rows {
				got := eval[string](tb, `[...document.querySelectorAll('[data-koekje-declaration] tbody tr')].find(r => r.querySelector('code')?.textContent === `+jsQuote(name)+`)?.innerText || ''`)
				for _, want := range wants {
					if !strings.Contains(got, want) {
						t.Errorf("the row of %s lacks %q: %q", name, want, got)
					}
				}
			}
			if who := eval[string](tb, `document.querySelector('[data-koekje-declaration] .who, [data-koekje-declaration] p')?.innerText || ''`); !strings.Contains(who, "Data Protection Commission") {
				t.Errorf("the declaration does not name the Irish authority: %q", who)
			}
		})
	}
}
