package static_test

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/koekje/koekje/config"
	"github.com/koekje/koekje/static"
)

// The demo site's banner (JS, CSS, configuration and four languages) as
// brotli on the wire, at most: the first part, which every visitor loads
// before the banner shows, and the second, loaded when needed.
const (
	firstBudget  = 6500
	secondBudget = 5000
)

func TestSizeBudget(t *testing.T) {
	b, err := static.Build(config.Demo().Site("demo"))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []struct {
		name   string
		part   static.Part
		budget int
	}{{"first part", b.Part, firstBudget}, {"second part", b.More, secondBudget}} {
		t.Logf("demo %s: %d B minified, %d B gzip, %d B brotli; budget %d, headroom %d",
			p.name, len(p.part.JS), len(p.part.Gzip), len(p.part.Brotli), p.budget, p.budget-len(p.part.Brotli))
		if len(p.part.Brotli) > p.budget {
			t.Errorf("brotli %s is %d bytes, over its %d-byte budget", p.name, len(p.part.Brotli), p.budget)
		}
	}
	for _, title := range []string{"Cookies op deze site", "Cookies on this site", "Cookies auf dieser Website", "Cookies sur ce site"} {
		if !bytes.Contains(b.JS, []byte(title)) {
			t.Errorf("first part lacks %q", title)
		}
	}
	for _, text := range []string{"Keuze opslaan", "Save choices", "Stationsplein 12"} {
		if bytes.Contains(b.JS, []byte(text)) || !bytes.Contains(b.More.JS, []byte(text)) {
			t.Errorf("%q is not in the second part alone", text)
		}
	}
	if !bytes.Contains(b.JS, []byte(b.MorePath()[len("/s/"):])) {
		t.Errorf("the first part does not name %s", b.MorePath())
	}
}

func TestVersionIsStableAndComplete(t *testing.T) {
	site := config.Demo().Site("demo")
	a, err := static.Build(site)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := static.Build(site)
	if a.Hash != b.Hash || !bytes.Equal(a.Brotli, b.Brotli) {
		t.Error("two builds of one site differ")
	}
	if a.Hash != config.Hash(a.Version) {
		t.Error("hash does not cover the version")
	}
	var v struct {
		Site  map[string]any            `json:"site"`
		Texts map[string]map[string]any `json:"texts"`
	}
	if err := json.Unmarshal(a.Version, &v); err != nil {
		t.Fatal(err)
	}
	if v.Site["name"] != "Belvast VoIP" || len(v.Texts) != 4 || v.Texts["nl"]["accept"] != "Alles accepteren" {
		t.Errorf("version does not hold what is shown: %s", a.Version[:200])
	}
	if _, ok := v.Site["origins"]; ok {
		t.Error("origins leak into the public config")
	}
	site.Revision++
	c, _ := static.Build(site)
	if c.Hash == a.Hash {
		t.Error("a new revision kept the old hash")
	}
}

// Only the site's languages are shipped.
func TestOnlySiteLanguages(t *testing.T) {
	site := config.Demo().Site("demo")
	site.Languages = []string{"en"}
	site.DefaultLanguage = "en"
	b, err := static.Build(site)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(b.JS, []byte("Alles accepteren")) {
		t.Error("Dutch texts shipped to an English-only site")
	}
}

// The first layer names the companies behind the optional services as
// visitors know them, in each language, and nothing the build alone needs
// reaches the stored version.
func TestIntroNamesThirdParties(t *testing.T) {
	site := config.Demo().Site("demo")
	if got := strings.Join(static.ThirdParties(site), ", "); got != "Google, Meta, LinkedIn" {
		t.Errorf("third parties %q", got)
	}
	b, err := static.Build(site)
	if err != nil {
		t.Fatal(err)
	}
	var v struct {
		Texts map[string]map[string]any `json:"texts"`
	}
	if err := json.Unmarshal(b.Version, &v); err != nil {
		t.Fatal(err)
	}
	for lang, want := range map[string]string{"nl": "Google, Meta en LinkedIn", "en": "Google, Meta and LinkedIn", "de": "Google, Meta und LinkedIn", "fr": "Google, Meta et LinkedIn"} {
		intro, _ := v.Texts[lang]["intro"].(string)
		if !strings.Contains(intro, want) || strings.Contains(intro, "{p}") {
			t.Errorf("%s intro: %q", lang, intro)
		}
		for _, k := range []string{"intro0", "and"} {
			if _, ok := v.Texts[lang][k]; ok {
				t.Errorf("%s texts keep %q", lang, k)
			}
		}
	}
	own := *site
	own.Services = site.Services[:2] // the site's own services only
	b, err = static.Build(&own)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b.Version, &v); err != nil {
		t.Fatal(err)
	}
	if intro := v.Texts["nl"]["intro"].(string); !strings.Contains(intro, "bij Instellingen") {
		t.Errorf("a site without third parties gets %q", intro)
	}
}

// A site's bundle carries the style of its own layout only, its settings
// button's unless it is off, and its own colours with a readable text
// colour on the accent.
func TestLayoutPieces(t *testing.T) {
	for _, tt := range []struct {
		layout, position, button string
		want, not                []string
	}{
		{"box", "top-left", "auto", []string{".box{inset", ".box{top:16px;left:16px}", ".fab{inset"}, []string{".bar{"}},
		{"bar", "top", "never", []string{".bar{inset", ".bar{top:0}"}, []string{".box{", ".fab"}},
		{"modal", "center", "always", []string{".fab{inset", "dialog::backdrop"}, []string{".box{", ".bar{"}},
	} {
		site := *config.Demo().Site("demo")
		site.Banner.Layout, site.Banner.Position, site.Banner.SettingsButton.Show = tt.layout, tt.position, tt.button
		b, err := static.Build(&site)
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range tt.want {
			if !bytes.Contains(b.JS, []byte(w)) {
				t.Errorf("%s bundle lacks %q", tt.layout, w)
			}
		}
		for _, n := range tt.not {
			if bytes.Contains(b.JS, []byte(n)) {
				t.Errorf("%s bundle carries %q", tt.layout, n)
			}
		}
	}
	site := *config.Demo().Site("demo")
	site.Banner.Colors.Light = config.Palette{Accent: "#fdba74", Background: "#231a12", Text: "#fef3e2"}
	b, err := static.Build(&site)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(b.JS, []byte("--bg:#231a12;--fg:#fef3e2;--acc:#fdba74;--on:#111;")) {
		t.Errorf("the site's light colours, with dark text on its pale accent, are not in its bundle")
	}
}
