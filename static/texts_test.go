package static_test

import (
	"bytes"
	"encoding/json"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"unicode"

	"github.com/koekje/koekje/config"
	"github.com/koekje/koekje/static"
)

// sameAsEnglish are the texts that may read as the English one: words the
// language shares with English, by key and language.
var sameAsEnglish = map[string][]string{
	"name":     {"de"},
	"domain":   {"de"},
	"category": {"fr"},
}

// unitLanguages have their words for durations in texts.json (browsers
// lack them); every other language has them from Intl.
var unitLanguages = []string{"ga", "mt"}

func readTexts(t *testing.T) map[string]map[string]any {
	t.Helper()
	raw, err := os.ReadFile("texts.json")
	if err != nil {
		t.Fatal(err)
	}
	var all map[string]map[string]any
	if err := json.Unmarshal(raw, &all); err != nil {
		t.Fatal(err)
	}
	return all
}

var placeholder = regexp.MustCompile(`\{[a-z]+\}`)

// registers names the languages with a second register and its name: its
// texts are an object of the keys that differ.
var registers = map[string]string{"nl": "formal", "de": "informal"}

// dualLanguages have a form for two besides those for one and more.
var dualLanguages = []string{"sl"}

// forms is a text as its list of forms: a plain text has one; a text that
// depends on a count lists its forms for one, (two,) more.
func forms(v any) []string {
	switch x := v.(type) {
	case string:
		return []string{x}
	case []any:
		out := make([]string, len(x))
		for i, y := range x {
			out[i], _ = y.(string)
		}
		return out
	}
	return []string{""}
}

// Every language the configuration accepts has every text, with the
// placeholders the English one has, in words of its own.
func TestTextsComplete(t *testing.T) {
	all := readTexts(t)
	var langs []string
	for l := range all {
		langs = append(langs, l)
	}
	slices.Sort(langs)
	if want := slices.Sorted(slices.Values(config.Languages)); !slices.Equal(langs, want) {
		t.Fatalf("texts.json has %v, the configuration accepts %v", langs, want)
	}
	if len(langs) != 24 {
		t.Errorf("%d languages, want the 24 official languages of the EU", len(langs))
	}
	en := all["en"]
	for _, l := range langs {
		for k := range all[l] {
			if _, ok := en[k]; !ok && (k != "units" || !slices.Contains(unitLanguages, l)) && registers[l] != k {
				t.Errorf("%s has %q, which English has not", l, k)
			}
		}
		if _, ok := all[l]["units"]; ok != slices.Contains(unitLanguages, l) {
			t.Errorf("%s: units %v, want %v", l, ok, !ok)
		}
		for k, ev := range en {
			evs, vs := forms(ev), forms(all[l][k])
			if want := len(evs); len(vs) != want && (len(vs) != 3 || !slices.Contains(dualLanguages, l)) {
				t.Errorf("%s %q has %d forms, want %d", l, k, len(vs), want)
				continue
			}
			for i, v := range vs {
				ev := evs[min(i, len(evs)-1)]
				switch {
				case strings.TrimSpace(v) == "":
					t.Errorf("%s lacks %q", l, k)
					continue
				case v != strings.TrimSpace(v) && (k != "and" || v != strings.TrimRight(v, " ")) || strings.Contains(v, "  "):
					t.Errorf("%s %q has stray spaces: %q", l, k, v)
				case l != "en" && v == ev && !slices.Contains(sameAsEnglish[k], l):
					t.Errorf("%s %q is the English text %q", l, k, v)
				}
				want := slices.Compact(slices.Sorted(slices.Values(placeholder.FindAllString(ev, -1))))
				got := slices.Compact(slices.Sorted(slices.Values(placeholder.FindAllString(v, -1))))
				if !slices.Equal(got, want) {
					t.Errorf("%s %q has placeholders %v, English %v: %q", l, k, got, want, v)
				}
			}
		}
	}
	for k, ls := range sameAsEnglish {
		for _, l := range ls {
			if all[l][k] != en[k] {
				t.Errorf("sameAsEnglish lists %s %q, which differs from English", l, k)
			}
		}
	}
}

// A site may offer every language; Irish and Maltese carry the site's
// durations in words, since browsers have none for them.
func TestEveryLanguageBuilds(t *testing.T) {
	site := *config.Demo().Site("demo")
	site.Languages = config.Languages
	b, err := static.Build(&site)
	if err != nil {
		t.Fatal(err)
	}
	var v struct {
		Texts map[string]map[string]any `json:"texts"`
	}
	if err := json.Unmarshal(b.Version, &v); err != nil {
		t.Fatal(err)
	}
	if len(v.Texts) != 24 {
		t.Fatalf("%d languages in the version", len(v.Texts))
	}
	for lang, words := range map[string]map[string]string{
		"ga": {"2y": "2 bhliain", "6mo": "6 mhí", "14mo": "14 mí", "1d": "1 lá", "3mo": "3 mhí"},
		"mt": {"2y": "sentejn", "6mo": "6 xhur", "14mo": "14 xahar", "1d": "1 jum", "1y": "1 sena"},
		"nl": {"2y": "", "session": "tot je de browser sluit"},
	} {
		for d, want := range words {
			got, _ := v.Texts[lang][d].(string)
			if got != want {
				t.Errorf("%s %s in words: %q, want %q", lang, d, got, want)
			}
		}
	}
	for _, title := range []string{"Бисквитки на този сайт", "Fianáin ar an suíomh seo", "Sīkdatnes šajā vietnē"} {
		if !strings.Contains(string(b.JS), title) {
			t.Errorf("bundle lacks %q", title)
		}
	}
}

// A cookie's lifetime (the declaration's column) and how long data is kept
// (the retention sentence beside it in the same row) are named in words of
// their own in every language: no word of the one begins the same as a
// word of the other.
func TestLifetimeIsNotRetention(t *testing.T) {
	stem := func(w string) string {
		r := []rune(strings.ToLower(w))
		return string(r[:min(len(r), 5)])
	}
	for l, texts := range readTexts(t) {
		life, _ := texts["duration"].(string)
		kept, _ := texts["retention"].(string)
		seen := map[string]bool{}
		for _, w := range strings.FieldsFunc(kept, func(r rune) bool { return !unicode.IsLetter(r) }) {
			seen[stem(w)] = true
		}
		for _, w := range strings.FieldsFunc(life, func(r rune) bool { return !unicode.IsLetter(r) }) {
			if len([]rune(w)) >= 4 && seen[stem(w)] {
				t.Errorf("%s: the lifetime %q and the retention %q share %q", l, life, kept, w)
			}
		}
	}
}

// French sets a narrow no-break space before its high punctuation.
func TestFrenchPunctuationSpacing(t *testing.T) {
	for k, v := range readTexts(t)["fr"] {
		for _, f := range forms(v) {
			for _, p := range []string{":", ";", "?", "!"} {
				if i := strings.Index(f, p); i > 0 && !strings.HasSuffix(f[:i], "\u202f") {
					t.Errorf("fr %q: %q lacks the narrow no-break space before %q", k, f, p)
				}
			}
		}
	}
}

// The second register of Dutch (formal, u) and German (informal, du) has
// texts for the keys of the first that address the visitor, with the same
// placeholders and forms; a site's formality picks it, and the other
// register's words are gone from every text the banner shows.
func TestRegisters(t *testing.T) {
	all := readTexts(t)
	for l, name := range registers {
		other, ok := all[l][name].(map[string]any)
		if !ok || len(other) == 0 {
			t.Fatalf("%s has no %q texts", l, name)
		}
		for k, v := range other {
			base, ok := all[l][k]
			if !ok {
				t.Errorf("%s %s %q replaces nothing", l, name, k)
				continue
			}
			bs, vs := forms(base), forms(v)
			if len(bs) != len(vs) {
				t.Errorf("%s %s %q has %d forms, want %d", l, name, k, len(vs), len(bs))
				continue
			}
			for i := range vs {
				want := slices.Compact(slices.Sorted(slices.Values(placeholder.FindAllString(bs[i], -1))))
				got := slices.Compact(slices.Sorted(slices.Values(placeholder.FindAllString(vs[i], -1))))
				if !slices.Equal(got, want) || vs[i] == bs[i] {
					t.Errorf("%s %s %q: %q beside %q", l, name, k, vs[i], bs[i])
				}
			}
		}
	}
	for _, c := range []struct {
		lang, formality string
		avoid           *regexp.Regexp
	}{
		{"nl", "", regexp.MustCompile(`(?i)\b(u|uw)\b`)},
		{"nl", "informal", regexp.MustCompile(`(?i)\b(u|uw)\b`)},
		{"nl", "formal", regexp.MustCompile(`(?i)\b(je|jij|jouw)\b`)},
		{"de", "", regexp.MustCompile(`(?i)\b(du|dich|dein|deine|deiner|deinen)\b`)},
		{"de", "formal", regexp.MustCompile(`(?i)\b(du|dich|dein|deine|deiner|deinen)\b`)},
		{"de", "informal", regexp.MustCompile(`\b(Sie|Ihr|Ihre|Ihrer|Ihren|Ihnen)\b`)},
	} {
		site := *config.Demo().Site("demo")
		site.Formality = c.formality
		for k, text := range introTexts(t, &site)[c.lang] {
			if s, ok := text.(string); ok && c.avoid.MatchString(s) {
				t.Errorf("%s %q: %q says %q", c.lang, c.formality, k, c.avoid.FindString(s))
			}
			if k == "formal" || k == "informal" {
				t.Errorf("%s %q: the version keeps %q", c.lang, c.formality, k)
			}
		}
	}
}

// The server's own texts come in the site's register and, for a language
// the texts lack, in the site's default language; no bundle carries them.
func TestServerTexts(t *testing.T) {
	site := *config.Demo().Site("demo")
	for _, c := range []struct{ formality, lang, want string }{
		{"", "nl", "Je keuze geldt op deze site in plaats van de Global Privacy Control-instelling van je browser."},
		{"formal", "nl", "Uw keuze geldt op deze site in plaats van de Global Privacy Control-instelling van uw browser."},
		{"", "de", "Ihre Auswahl gilt auf dieser Website anstelle der Einstellung Global Privacy Control Ihres Browsers."},
		{"informal", "de", "Deine Auswahl gilt auf dieser Website anstelle der Einstellung Global Privacy Control deines Browsers."},
		{"", "xx", "Je keuze geldt op deze site in plaats van de Global Privacy Control-instelling van je browser."},
	} {
		site.Formality = c.formality
		if got := static.ServerText(&site, c.lang, "overridden"); got != c.want {
			t.Errorf("%s %q: %q, want %q", c.lang, c.formality, got, c.want)
		}
	}
	b, err := static.Build(&site)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range static.ServerTexts {
		for _, l := range site.Languages {
			text := static.ServerText(&site, l, k)
			if text == "" || bytes.Contains(b.JS, []byte(text)) || bytes.Contains(b.More.JS, []byte(text)) {
				t.Errorf("the server's text %q in %s is empty or in a bundle: %q", k, l, text)
			}
		}
	}
}
