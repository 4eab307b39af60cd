package scan

import (
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/koekje/koekje/config"
)

func TestSameSite(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want bool
	}{
		{"www.example.nl", "example.nl", true},
		{"cdn.example.nl", "www.example.nl", true},
		{"www.youtube.com", "www.example.nl", false},
		{"foo.github.io", "bar.github.io", false}, // a public suffix
		{"www.example.co.uk", "shop.example.co.uk", true},
		{"127.0.0.1", "127.0.0.1", true},
		{"127.0.0.1", "localhost", false},
	} {
		if got := SameSite(tc.a, tc.b); got != tc.want {
			t.Errorf("SameSite(%s, %s) = %v", tc.a, tc.b, got)
		}
	}
}

func TestCompareDuration(t *testing.T) {
	exp := time.Now()
	life := func(secs int64, asked ...int64) *Cookie {
		c := &Cookie{Name: "c", Expires: &exp, Lifetime: secs}
		if len(asked) > 0 {
			c.Asked = &asked[0]
		}
		return c
	}
	day := int64(86400)
	for _, tc := range []struct {
		decl string
		c    *Cookie
		want string // "" for agreement, else a part of the message
	}{
		{"1y", life(365 * day), ""},
		{"2y", life(400 * day), ""},                            // capped by Chromium, asked unknown
		{"2y", life(400*day, 730*day), ""},                     // capped, asked for 2 years
		{"1y", life(400*day, 730*day), "lives 2 years"},        // asked for 2 years, declared 1
		{"6mo", life(6 * 2630016), ""},                         // the banner's own months
		{"1d", life(30 * day), "declare duration: 1mo"},        // a month, declared a day
		{"session", life(day), "declared as a session cookie"}, // persistent, declared session
		{"1y", &Cookie{Name: "c"}, "but is a session cookie"},  // session, declared a year
		{"session", &Cookie{Name: "c"}, ""},
	} {
		got := compareDuration(tc.decl, tc.c)
		if (tc.want == "") != (got == "") || !strings.Contains(got, tc.want) {
			t.Errorf("%s vs %+v: %q, want %q", tc.decl, tc.c, got, tc.want)
		}
	}
}

func TestSuggest(t *testing.T) {
	site := config.Demo().Sites[0]
	yt := suggest(site, Cookie{Name: "VISITOR_PRIVACY_METADATA", Domain: ".youtube.com", ThirdParty: true, Lifetime: 180 * 86400})
	if !yt.Known || yt.Service != "youtube" || yt.Category != "embeds" || yt.Domain != "youtube.com" || yt.Duration != "6mo" {
		t.Errorf("youtube: %+v", yt)
	}
	// The demo has the youtube service: the entry goes under its cookies.
	if !strings.HasPrefix(yt.YAML, "# under services: youtube, cookies:\n- name: \"VISITOR_PRIVACY_METADATA\"") {
		t.Errorf("youtube yaml:\n%s", yt.YAML)
	}
	// A family, and a category the demo lacks (marketing) mapped to its embeds.
	fb := suggest(site, Cookie{Name: "_fbp", Domain: "belvast.example", Lifetime: 90 * 86400})
	if !fb.Known || fb.Cookie != "_fbp" || fb.Category != "embeds" || fb.Domain != "" {
		t.Errorf("_fbp: %+v", fb)
	}
	hj := suggest(site, Cookie{Name: "_hjSessionUser_123", Domain: "belvast.example", Lifetime: 365 * 86400})
	if hj.Cookie != "_hjSessionUser_*" || hj.Service != "hotjar" {
		t.Errorf("hotjar: %+v", hj)
	}
	// A domain that does not fit the catalogue's entry is not that cookie.
	un := suggest(site, Cookie{Name: "fr", Domain: "www.example.fr", Lifetime: 3600})
	if un.Known || un.Category != "unknown" || un.Duration != "1h" || !strings.Contains(un.YAML, "id: unknown") {
		t.Errorf("unknown: %+v", un)
	}
}

func TestNecessary(t *testing.T) {
	ix := newIndex(config.Demo().Sites[0])
	for _, tc := range []struct {
		name, domain string
		third        bool
		ok           bool
		cat          string
	}{
		{"koekje", "127.0.0.1", false, true, "necessary"},
		{"koekje:demo", "127.0.0.1", false, true, "necessary"},
		{"koekje", "tracker.test", true, false, ""},
		{"_ga_ABC", "127.0.0.1", false, false, "analytics"},
		{"comment_author_x", "127.0.0.1", false, false, "functional"},
		{"YSC", ".youtube.com", true, false, "embeds"},
		{"YSC", ".example.nl", true, false, ""},  // not on its declared domain
		{"_ga", "tracker.test", true, false, ""}, // declared first-party only
		{"session", "127.0.0.1", false, false, ""},
	} {
		ok, cat := ix.necessary(tc.name, tc.domain, tc.third)
		if ok != tc.ok || cat != tc.cat {
			t.Errorf("%s on %s: %v %q, want %v %q", tc.name, tc.domain, ok, cat, tc.ok, tc.cat)
		}
	}
}

// What a page chose reaches the text report inert: no terminal codes, no
// line of its own, no reordered text.
func TestTextIsInert(t *testing.T) {
	name := "\x1b[2J\x1b[31mtrack\nCLEAN  0 violations\u0085x\u2028y\u202ez\xff"
	r := &Report{Site: "shop", Pages: []string{"http://x.test/"},
		Violations: []Finding{{Kind: KindStorage, Profile: Before, Page: "http://x.test/\x07", Name: name, Domain: "http://x.test",
			Source: "http://x.test/\x1b.js", Message: "localStorage key " + name + " written before any choice"}},
		Undeclared: []Finding{{Kind: KindCookie, Profile: Accepted, Page: "http://x.test/", Name: name, Domain: "x.test", Actual: "session",
			Message: "cookie " + name + " is not declared", Suggestion: suggest(config.Demo().Sites[0], Cookie{Name: name, Domain: "x.test"})}},
		Stale: []Finding{}}
	var b strings.Builder
	if err := r.Write(&b, "text", false); err != nil {
		t.Fatal(err)
	}
	text := b.String()
	for i, c := range text {
		if c != '\n' && unsafeRune(c) || c == utf8.RuneError {
			t.Errorf("%U at %d in:\n%s", c, i, text)
		}
	}
	for _, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(line, "CLEAN") {
			t.Errorf("a line of the page's: %q", line)
		}
	}
	if want := `\x1b[2J\x1b[31mtrack\x0aCLEAN  0 violations\u0085x\u2028y\u202ez\xff`; strings.Count(text, want) != 2 {
		t.Errorf("the name, escaped, %d times, want 2 (the violation, the undeclared cookie):\n%s", strings.Count(text, want), text)
	}
}
