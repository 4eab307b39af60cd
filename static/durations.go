package static

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/koekje/koekje/config"
)

// The banner writes a duration such as "2y" in words with the browser's
// Intl.NumberFormat ("2 jaar", "2 Jahre"). For Irish and Maltese, browsers
// have no such words (Chromium falls back to English, and the CLDR data of
// others has only "2 bl" or "2 y"), so texts.json holds them as "units":
// for each unit its forms for the CLDR plural categories one, two, few,
// many and other, with {n} for the count. A site's bundle carries each
// duration it names, in words, as a text keyed by the duration.

// pluralForms picks the form of a count for a language with units texts:
// 0 one, 1 two, 2 few, 3 many, 4 other (the CLDR plural rules).
var pluralForms = map[string]func(n int) int{
	"ga": func(n int) int {
		switch {
		case n == 1:
			return 0
		case n == 2:
			return 1
		case n >= 3 && n <= 6:
			return 2
		case n >= 7 && n <= 10:
			return 3
		}
		return 4
	},
	"mt": func(n int) int {
		switch m := n % 100; {
		case n == 1:
			return 0
		case n == 2:
			return 1
		case n == 0 || m >= 3 && m <= 10:
			return 2
		case m >= 11 && m <= 19:
			return 3
		}
		return 4
	},
}

// siteDurations lists every duration a site's cookies and services name,
// but "session", which is a text of its own.
func siteDurations(s *config.Site) []string {
	var out []string
	add := func(d string) {
		if d != "" && d != "session" && !slices.Contains(out, d) {
			out = append(out, d)
		}
	}
	for _, sv := range s.Services {
		add(sv.Retention)
		for _, ck := range sv.Cookies {
			add(ck.Duration)
			add(ck.Retention)
		}
	}
	return out
}

// durationWords writes each duration in lang's words from its units text.
func durationWords(lang string, units any, durations []string) (map[string]string, error) {
	form, ok := pluralForms[lang]
	if !ok {
		return nil, fmt.Errorf("units for %q, which has no plural rule", lang)
	}
	raw, err := json.Marshal(units)
	if err != nil {
		return nil, err
	}
	var forms map[string][5]string
	if err := json.Unmarshal(raw, &forms); err != nil {
		return nil, fmt.Errorf("units: %w", err)
	}
	out := map[string]string{}
	for _, d := range durations {
		p, err := config.ParseDuration(d)
		if err != nil {
			return nil, err
		}
		f := forms[p.Unit][form(p.N)]
		if f == "" {
			return nil, fmt.Errorf("units: no words for %q", d)
		}
		out[d] = strings.ReplaceAll(f, "{n}", strconv.Itoa(p.N))
	}
	return out, nil
}
