package evidence

import (
	"bytes"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/koekje/koekje/config"
)

// technicalNames lists what a message must keep as written in every
// language: quoted names ("record_hash"), and words holding a digit, dot,
// slash or underscore (keys.json, SHA-256, /log/key, koekje-record-v1).
func technicalNames(msg string) []string {
	out := quoted.FindAllString(msg, -1)
	for _, w := range strings.Fields(quoted.ReplaceAllString(msg, " ")) {
		w = strings.TrimLeft(strings.TrimRight(w, ".,;:)"), "(")
		if strings.ContainsAny(w, "0123456789./_") && !placeholder.MatchString(w) {
			out = append(out, w)
		}
	}
	return out
}

var quoted = regexp.MustCompile(`"[^"]+"`)

// Every supported language has README.txt's every message, none of them
// left in English, with the same placeholders and the same technical names
// as English; written out, each holds the pack's facts, fills every
// placeholder, and keeps its lines to the width.
func TestReadmeEveryLanguage(t *testing.T) {
	en := readmeTexts["en"]
	keys := readmeKeys()
	for _, lang := range config.Languages {
		m := readmeTexts[lang]
		if m == nil {
			t.Errorf("%s: no readme/%s.json", lang, lang)
			continue
		}
		var have []string
		for k := range m {
			have = append(have, k)
		}
		sort.Strings(have)
		for _, k := range keys {
			if m[k] == "" {
				t.Errorf("%s: no message %q", lang, k)
			}
		}
		for _, k := range have {
			if !slices.Contains(keys, k) {
				t.Errorf("%s: message %q is not in the outline", lang, k)
			}
		}
		for _, k := range keys {
			if lang != "en" && m[k] == en[k] && k != "site" {
				t.Errorf("%s: %q is left in English: %q", lang, k, m[k])
			}
			if got, want := placeholder.FindAllString(m[k], -1), placeholder.FindAllString(en[k], -1); !slices.Equal(sorted(got), sorted(want)) {
				t.Errorf("%s: %q has placeholders %v, English %v", lang, k, got, want)
			}
			for _, name := range technicalNames(en[k]) {
				if !strings.Contains(m[k], name) {
					t.Errorf("%s: %q does not keep %s: %q", lang, k, name, m[k])
				}
			}
		}
		for _, d := range []*readmeData{
			{V: &Verification{ConsentID: "0190c0de-0000-7000-8000-000000000001", Site: "demo", MadeAt: "2026-12-07T22:00:00Z", OK: true}, Count: 3, HasLog: true,
				Scans: 2, From: "2026-12-06", To: "2026-12-07"},
			{V: &Verification{ConsentID: "0190c0de-0000-7000-8000-000000000001", Site: "demo", MadeAt: "2026-12-07T22:00:00Z"}, Count: 3, From: "2026-12-06", To: "2026-12-07"},
		} {
			d.V.CheckedAgainst.Unwitnessed = d.HasLog
			var b bytes.Buffer
			readmeIn(&b, lang, d)
			text := b.String()
			flat := strings.Join(strings.Fields(text), " ") // as read, whatever the wrapping
			for _, want := range []string{d.V.ConsentID, d.V.MadeAt, "3", "records.ndjson", "koekje verify-receipt --keys keys.json", d.From, d.To} {
				if !strings.Contains(text, want) {
					t.Errorf("%s: README lacks %q:\n%s", lang, want, text)
				}
			}
			if strings.ContainsAny(text, "{}") {
				t.Errorf("%s: a placeholder is left:\n%s", lang, text)
			}
			if d.HasLog != strings.Contains(flat, strings.Join(strings.Fields(m["unwitnessed"]), " ")) || d.HasLog != strings.Contains(text, "policy.txt") {
				t.Errorf("%s: the log's part is written %v, want %v:\n%s", lang, !d.HasLog, d.HasLog, text)
			}
			if d.Scans > 0 != strings.Contains(flat, "scans/TIME-ID.tlog-proof") || d.Scans == 0 != strings.Contains(text, "- scans/: ") {
				t.Errorf("%s: the scans are not told as there are %d:\n%s", lang, d.Scans, text)
			}
			result := map[bool]string{true: m["verified_all"], false: m["verified_not"]}[d.V.OK]
			if said := strings.ReplaceAll(m["file_verification"], "{result}", result); !strings.Contains(flat, strings.Join(strings.Fields(said), " ")) {
				t.Errorf("%s: the verification's result is not said:\n%s", lang, text)
			}
			for _, line := range strings.Split(text, "\n") {
				if utf8.RuneCountInString(line) > readmeWidth && !strings.Contains(line, "koekje verify-receipt") && !strings.HasPrefix(line, m["title"]) {
					t.Errorf("%s: a line wider than %d: %q", lang, readmeWidth, line)
				}
			}
		}
	}
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	sort.Strings(s)
	return s
}
