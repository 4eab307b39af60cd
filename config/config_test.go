package config_test

import (
	"flag"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/koekje/koekje/config"
)

var update = flag.Bool("update", false, "rewrite the expected error files in testdata")

func TestDemo(t *testing.T) {
	c := config.Demo()
	s := c.Site("demo")
	if s == nil {
		t.Fatal("demo site missing")
	}
	if got := len(s.Languages); got != 4 {
		t.Errorf("languages = %d, want 4", got)
	}
	for _, id := range []string{"necessary", "functional", "analytics", "embeds"} {
		if s.Category(id) == nil {
			t.Errorf("category %q missing", id)
		}
	}
	if !s.Category("necessary").Required {
		t.Error("necessary is not required")
	}
	if s.ChoiceMonths != 6 || s.Revision != 1 {
		t.Errorf("choice_months=%d revision=%d, want 6 and 1", s.ChoiceMonths, s.Revision)
	}
}

func TestOrigins(t *testing.T) {
	s := config.Demo().Site("demo")
	self := "https://consent.example.nl"
	tests := []struct {
		origin string
		want   bool
	}{
		{"https://consent.example.nl", true},
		{"http://localhost:3000", true},
		{"http://localhost", true},
		{"http://127.0.0.1:8080", true},
		{"https://localhost:3000", false},
		{"http://localhost.evil.example", false},
		{"http://evil.example", false},
		{"null", false},
		{"", false},
	}
	for _, tt := range tests {
		if got := s.AllowsOrigin(tt.origin, self); got != tt.want {
			t.Errorf("AllowsOrigin(%q) = %v, want %v", tt.origin, got, tt.want)
		}
	}
}

// TestOriginPatterns holds that every origin check-config accepts is one
// the server matches, in the browser's form: wildcard of one label, case
// and default ports.
func TestOriginPatterns(t *testing.T) {
	tests := []struct {
		pattern string
		allows  []string
		refuses []string
	}{
		{"https://*.example.nl",
			[]string{"https://www.example.nl", "https://shop.example.nl", "https://WWW.Example.NL", "https://www.example.nl:443"},
			[]string{"https://example.nl", "https://a.b.example.nl", "http://www.example.nl", "https://www.example.nl:8443", "https://wwwexample.nl", "https://www.example.nl.evil.example"}},
		{"HTTPS://WWW.Example.NL",
			[]string{"https://www.example.nl", "https://www.example.nl:443"},
			[]string{"https://shop.example.nl", "http://www.example.nl"}},
		{"https://www.example.nl:443",
			[]string{"https://www.example.nl"},
			[]string{"https://www.example.nl:8443"}},
		{"http://www.example.nl:80",
			[]string{"http://www.example.nl"},
			[]string{"https://www.example.nl"}},
		{"http://*.localhost:*",
			[]string{"http://app.localhost:3000", "http://app.localhost"},
			[]string{"http://localhost:3000", "https://app.localhost:3000"}},
		{"https://[::1]:8443",
			[]string{"https://[::1]:8443"},
			[]string{"https://[::1]"}},
	}
	for _, tt := range tests {
		t.Run(tt.pattern, func(t *testing.T) {
			cfg := siteWithOrigins(t, tt.pattern)
			s := cfg.Sites[0]
			for _, o := range tt.allows {
				if !s.AllowsOrigin(o, "") {
					t.Errorf("%s refuses %s", tt.pattern, o)
				}
			}
			for _, o := range tt.refuses {
				if s.AllowsOrigin(o, "") {
					t.Errorf("%s allows %s", tt.pattern, o)
				}
			}
		})
	}
	for _, bad := range []string{"https://*.nl", "https://www.*.example.nl", "https://*example.nl", "https://*", "ftp://example.nl", "https://example.nl:8443:*", "https://*.example.nl/"} {
		_, err := config.Load("sites.yaml", strings.NewReader(minimalSite(bad)))
		if err == nil || !strings.Contains(err.Error(), "sites[0].origins[0]: "+strconv.Quote(bad)) {
			t.Errorf("check-config on %q: %v, want an error naming the origin", bad, err)
		}
	}
	// self is the public URL however it is written.
	if !siteWithOrigins(t, "self").Sites[0].AllowsOrigin("https://consent.example.nl", "https://Consent.example.nl:443") {
		t.Error("self does not match the public URL with its default port")
	}
}

func minimalSite(origin string) string {
	return fmt.Sprintf(`sites:
  - id: s
    name: S
    controller: {organisation: S B.V., email: privacy@s.example, privacy_policy: "https://s.example/privacy"}
    origins: [%q]
    languages: [en]
    categories:
      - id: necessary
        required: true
        title: {en: Necessary}
        description: {en: Needed.}
`, origin)
}

func siteWithOrigins(t *testing.T, origin string) *config.Config {
	t.Helper()
	cfg, err := config.Load("sites.yaml", strings.NewReader(minimalSite(origin)))
	if err != nil {
		t.Fatalf("check-config refuses %q: %v", origin, err)
	}
	return cfg
}

// TestInvalid loads every testdata/*.yaml, which are all broken, and compares
// the error with the .err file beside it.
func TestInvalid(t *testing.T) {
	files, err := filepath.Glob("testdata/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no test files: %v", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			_, err := config.LoadFile(f)
			if err == nil {
				t.Fatal("loaded without error")
			}
			golden := strings.TrimSuffix(f, ".yaml") + ".err"
			if *update {
				if err := os.WriteFile(golden, []byte(err.Error()+"\n"), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, rerr := os.ReadFile(golden)
			if rerr != nil {
				t.Fatal(rerr)
			}
			if got := err.Error() + "\n"; got != string(want) {
				t.Errorf("error:\n%s\nwant:\n%s", got, want)
			}
		})
	}
}

func TestParseDuration(t *testing.T) {
	for _, ok := range []string{"session", "1h", "1d", "2w", "13mo", "2y", "50mo"} {
		if _, err := config.ParseDuration(ok); err != nil {
			t.Errorf("ParseDuration(%q): %v", ok, err)
		}
	}
	for _, bad := range []string{"", "0d", "1", "d", "1 d", "1m", "-1y", "99999y"} {
		if _, err := config.ParseDuration(bad); err == nil {
			t.Errorf("ParseDuration(%q) succeeded", bad)
		}
	}
}

// A site names its country's supervisory authority unless it names one
// itself: the Autoriteit Persoonsgegevens under Dutch law, or with Dutch as
// default language and no jurisdiction; a German site none, since the
// authority depends on its federal state.
func TestAuthorityDefault(t *testing.T) {
	site := func(extra string) string {
		return `sites:
  - id: s
    name: S
    controller: {organisation: S B.V., email: privacy@s.example, privacy_policy: "https://s.example/privacy"` + extra + `
    origins: ["https://s.example"]
    languages: [nl, en]
    categories:
      - id: necessary
        required: true
        title: {nl: Nodig, en: Needed}
        description: {nl: Nodig., en: Needed.}
`
	}
	tests := []struct {
		name, yaml string
		want       string
	}{
		{"dutch default language", site("}"), "Autoriteit Persoonsgegevens"},
		{"jurisdiction NL", site(", jurisdiction: NL}"), "Autoriteit Persoonsgegevens"},
		{"jurisdiction BE", site(", jurisdiction: BE}"), "Gegevensbeschermingsautoriteit"},
		{"jurisdiction pl", site(", jurisdiction: pl}"), "Urząd Ochrony Danych Osobowych"},
		{"jurisdiction DE", site(", jurisdiction: DE}"), ""},
		{"outside the EU", site(", jurisdiction: CH}"), ""},
		{"configured", site("}") + "    authority: {name: Der Hamburgische Beauftragte für Datenschutz und Informationsfreiheit, url: \"https://datenschutz-hamburg.de\"}\n", "Der Hamburgische Beauftragte für Datenschutz und Informationsfreiheit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := config.Load("t.yaml", strings.NewReader(tt.yaml))
			if err != nil {
				t.Fatal(err)
			}
			got := ""
			if a := c.Sites[0].Authority; a != nil {
				got = a.Name
			}
			if got != tt.want {
				t.Errorf("authority %q, want %q", got, tt.want)
			}
		})
	}
	if a := config.Demo().Site("demo").Authority; a == nil || a.URL != "https://www.autoriteitpersoonsgegevens.nl" {
		t.Errorf("demo authority = %+v", a)
	}
	// Every EU country but Germany has one, with a name and a web address.
	eu := strings.Fields("AT BE BG CY CZ DK EE ES FI FR GR HR HU IE IT LT LU LV MT NL PL PT RO SE SI SK")
	if len(config.Authorities) != len(eu) {
		t.Errorf("%d authorities, want %d", len(config.Authorities), len(eu))
	}
	for _, c := range eu {
		a, ok := config.Authorities[c]
		if u, err := url.Parse(a.URL); !ok || a.Name == "" || err != nil || u.Scheme != "https" || u.Path != "" {
			t.Errorf("authority of %s: %+v", c, a)
		}
	}
}

// Contrast follows WCAG 2: black on white 21:1, #767676 on white just above
// AA, #777 just below; a palette's defaults fill what a site leaves out.
func TestContrast(t *testing.T) {
	white, _ := config.ParseColor("#fff")
	for _, tt := range []struct {
		c    string
		want float64
	}{{"#000000", 21}, {"#767676", 4.54}, {"#777", 4.48}, {"#ffffff", 1}} {
		c, err := config.ParseColor(tt.c)
		if err != nil {
			t.Fatal(err)
		}
		if got := config.Contrast(c, white); got < tt.want-0.01 || got > tt.want+0.01 {
			t.Errorf("contrast of %s on white = %.3f, want %.2f", tt.c, got, tt.want)
		}
	}
	p := config.Palette{Accent: "#7c2d12"}.Resolve(config.DefaultLight)
	if p.Accent != "#7c2d12" || p.Background != config.DefaultLight.Background || p.Text != config.DefaultLight.Text {
		t.Errorf("resolved palette %+v", p)
	}
	s := config.Demo().Site("demo")
	if b := s.Banner; b.Layout != "box" || b.Position != "bottom-right" || b.SettingsButton.Show != "auto" || *b.SettingsButton.OffsetX != 16 {
		t.Errorf("banner defaults: %+v", b)
	}
}

// A site's own intro without {purposes} loads, with a warning at its line
// for each language that lacks it; the demo has none.
func TestIntroWithoutPurposesWarns(t *testing.T) {
	if w := config.Demo().Warnings; len(w) != 0 {
		t.Errorf("the demo warns: %v", w)
	}
	src := strings.Replace(string(demoSource(t)), "    # intro:", "    intro:\n      nl: \"Welkom. {purposes}\"\n      en: Welcome.\n      de: \"{purposes}\"\n      fr: Bienvenue.\n    # intro:", 1)
	c, err := config.Load("sites.yaml", strings.NewReader(src))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, w := range c.Warnings {
		got = append(got, w.In("sites.yaml"))
	}
	line := strings.Count(src[:strings.Index(src, "en: Welcome.")], "\n") + 1
	want := []string{
		fmt.Sprintf("sites.yaml:%d:11: sites[0].intro.en: has no {purposes}", line),
		fmt.Sprintf("sites.yaml:%d:11: sites[0].intro.fr: has no {purposes}", line+2),
	}
	if len(got) != len(want) {
		t.Fatalf("warnings:\n%s\nwant %d", strings.Join(got, "\n"), len(want))
	}
	for i := range want {
		if !strings.HasPrefix(got[i], want[i]) {
			t.Errorf("warning %q, want it to begin %q", got[i], want[i])
		}
	}
}

func demoSource(t *testing.T) []byte {
	b, err := os.ReadFile("demo.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// A cookie's domain with a leading dot is the same domain: it loads
// without the dot, as browsers and the scanner compare it.
func TestCookieDomainLeadingDot(t *testing.T) {
	src := strings.Replace(string(demoSource(t)), "          - name: _ga\n", "          - name: _ga\n            domain: .Belvast.example\n", 1)
	c, err := config.Load("sites.yaml", strings.NewReader(src))
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Site("demo").Services[2].Cookies[0]; got.Name != "_ga" || got.Domain != "belvast.example" {
		t.Errorf("%s on %q, want _ga on belvast.example", got.Name, got.Domain)
	}
}

// A scheduled scan gets its default pages per profile, and a page off the
// site's origins loads with a warning at its line.
func TestScanSchedule(t *testing.T) {
	src := strings.Replace(string(demoSource(t)), "    # scan:", "    scan:\n      every: daily\n      pages: [\"https://elsewhere.example/\", \"http://localhost:8080/\"]\n    # scan:", 1)
	c, err := config.Load("sites.yaml", strings.NewReader(src))
	if err != nil {
		t.Fatal(err)
	}
	sc := c.Sites[0].Scan
	if sc == nil || sc.Every != "daily" || sc.PagesPerProfile != 10 || sc.Interval() != 24*time.Hour || sc.Strict {
		t.Fatalf("scan schedule %+v", sc)
	}
	if len(c.Warnings) != 1 || !strings.Contains(c.Warnings[0].In("sites.yaml"), "sites[0].scan.pages[0]: https://elsewhere.example is not one of the site's origins") {
		t.Errorf("warnings %v, want one for the page off the origins", c.Warnings)
	}
}

// A first-party site's proxy is named by its host as a Host header names
// it (a default port left out) and by its origin, both in lower case.
func TestFirstPartyHost(t *testing.T) {
	for _, c := range []struct{ url, host, hostname, origin string }{
		{"https://WWW.Example.nl/consent/", "www.example.nl", "www.example.nl", "https://www.example.nl"},
		{"https://www.example.nl:443/consent/", "www.example.nl", "www.example.nl", "https://www.example.nl:443"},
		{"http://www.shop.localhost:8080/k/", "www.shop.localhost:8080", "www.shop.localhost", "http://www.shop.localhost:8080"},
	} {
		f := &config.FirstParty{URL: c.url}
		if f.Host() != c.host || f.Hostname() != c.hostname || f.Origin() != c.origin {
			t.Errorf("%s: host %q, hostname %q, origin %q; want %q, %q, %q", c.url, f.Host(), f.Hostname(), f.Origin(), c.host, c.hostname, c.origin)
		}
	}
}

// BenchmarkAllowsOrigin matches a page's origin against the demo site's
// origins, as every POST does.
func BenchmarkAllowsOrigin(b *testing.B) {
	s := config.Demo().Site("demo")
	b.ReportAllocs()
	for b.Loop() {
		if !s.AllowsOrigin("http://127.0.0.1:8080", "https://consent.example.nl") {
			b.Fatal("refused")
		}
	}
}
