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
