package static_test

import (
	"bytes"
	"encoding/json"
	"slices"
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
	// A legal form after a comma goes with its comma.
	inc := *site
	inc.Services = append(slices.Clone(site.Services), &config.Service{ID: "vimeo", Category: "embeds", Provider: "Vimeo.com, Inc."})
	if got := static.ThirdParties(&inc); got[len(got)-1] != "Vimeo.com" {
		t.Errorf("third parties %q", got)
	}
	texts := introTexts(t, site)
	for lang, want := range map[string]string{
		"nl": "Met je toestemming gebruiken we ze ook voor deze doelen: functioneel, statistieken en ingesloten inhoud. Google, Meta en LinkedIn krijgen dan gegevens over je bezoek.",
		"en": "With your permission we also use them for these purposes: functional, statistics and embedded content. Google, Meta and LinkedIn then receive data about your visit.",
		"de": "Mit Ihrer Zustimmung nutzen wir sie außerdem für diese Zwecke: Funktional, Statistik und Eingebettete Inhalte. Google, Meta und LinkedIn erhalten dann Daten über Ihren Besuch.",
		"fr": "Avec votre accord, nous les utilisons aussi pour ces finalités\u202f: fonctionnels, statistiques et contenu intégré. Google, Meta et LinkedIn reçoivent alors des données sur votre visite.",
	} {
		intro, _ := texts[lang]["intro"].(string)
		if !strings.Contains(intro, want) || strings.ContainsAny(intro, "{}") {
			t.Errorf("%s intro: %q\nwant it to hold %q", lang, intro, want)
		}
		for _, k := range []string{"purposes", "parties", "and"} {
			if _, ok := texts[lang][k]; ok {
				t.Errorf("%s texts keep %q", lang, k)
			}
		}
	}
}

// The purpose sentence is built from what the site has: one category and
// one company read in the singular, two in the dual where a language has
// one, and a site without third parties names none.
func TestPurposeSentence(t *testing.T) {
	demo := config.Demo().Site("demo")
	// A site whose only optional category is a Meta Pixel.
	pixel := *demo
	pixel.Categories = []*config.Category{demo.Categories[0], {ID: "marketing",
		Title:       config.Text{"nl": "Marketing", "en": "Marketing", "de": "Marketing", "fr": "Marketing"},
		Description: config.Text{"nl": "Advertenties", "en": "Ads", "de": "Werbung", "fr": "Publicité"}}}
	pixel.Services = []*config.Service{demo.Services[0], {ID: "meta-pixel", Name: "Meta Pixel", Category: "marketing",
		Provider: "Meta Platforms Ireland Ltd.", Cookies: []*config.Cookie{{Name: "_fbp", Duration: "3mo",
			Purpose: config.Text{"nl": "x", "en": "x", "de": "x", "fr": "x"}}}}}
	texts := introTexts(t, &pixel)
	for lang, want := range map[string]string{
		"en": "We use cookies to make the site work. With your permission we also use them for this purpose: marketing. Meta then receives data about your visit. You can change your choice at any time.",
		"nl": "Wij gebruiken cookies om de site te laten werken. Met je toestemming gebruiken we ze ook voor dit doel: marketing. Meta krijgt dan gegevens over je bezoek. Je kunt je keuze altijd wijzigen.",
	} {
		if got := texts[lang]["intro"]; got != want {
			t.Errorf("%s, marketing alone:\n got %q\nwant %q", lang, got, want)
		}
	}

	// Slovene: two companies take the dual.
	sl := pixel
	sl.Languages, sl.DefaultLanguage = []string{"sl"}, "sl"
	sl.Categories = []*config.Category{withText(demo.Categories[0], "sl", "Nujni"), withText(pixel.Categories[1], "sl", "Oglaševanje")}
	sl.Services = append([]*config.Service{}, pixel.Services...)
	sl.Services = append(sl.Services, &config.Service{ID: "li", Name: "LinkedIn", Category: "marketing", Provider: "LinkedIn Ireland Unlimited Company",
		Cookies: []*config.Cookie{{Name: "li", Duration: "1d", Purpose: config.Text{"sl": "x"}}}})
	for _, sv := range sl.Services {
		for _, ck := range sv.Cookies {
			ck.Purpose = config.Text{"sl": "x"}
		}
	}
	if got, want := introTexts(t, &sl)["sl"]["intro"], "za ta namen: oglaševanje. Meta in LinkedIn nato prejmeta podatke"; !strings.Contains(got.(string), want) {
		t.Errorf("sl: %q lacks %q", got, want)
	}

	// No third parties: the purposes alone.
	own := *demo
	own.Services = demo.Services[:2]
	if got := introTexts(t, &own)["en"]["intro"].(string); strings.Contains(got, "receive") || !strings.Contains(got, "these purposes: functional, statistics and embedded content. You can") {
		t.Errorf("a site without third parties: %q", got)
	}

	// A site's own intro gets the sentence where it says {purposes}.
	mine := *demo
	mine.Intro = config.Text{"nl": "Welkom. {purposes}", "en": "Welcome. {purposes}", "de": "Willkommen.", "fr": "Bienvenue. {purposes} Merci."}
	texts = introTexts(t, &mine)
	if got := texts["en"]["intro"].(string); !strings.HasPrefix(got, "Welcome. With your permission") || !strings.HasSuffix(got, "about your visit.") {
		t.Errorf("own intro: %q", got)
	}
	if got := texts["de"]["intro"]; got != "Willkommen." {
		t.Errorf("own intro without {purposes}: %q", got)
	}
}

func withText(c *config.Category, lang, title string) *config.Category {
	x := *c
	x.Title, x.Description = config.Text{lang: title}, config.Text{lang: title}
	return &x
}

// introTexts builds a site and returns its texts by language as the
// version stores them.
func introTexts(t *testing.T, s *config.Site) map[string]map[string]any {
	t.Helper()
	b, err := static.Build(s)
	if err != nil {
		t.Fatal(err)
	}
	var v struct {
		Texts map[string]map[string]any `json:"texts"`
	}
	if err := json.Unmarshal(b.Version, &v); err != nil {
		t.Fatal(err)
	}
	return v.Texts
}

// Lists are joined as the browser's Intl.ListFormat joins them (the e2e
// suite holds every language against Chromium's).
func TestJoinList(t *testing.T) {
	for _, c := range []struct {
		lang, and string
		items     []string
		want      string
	}{
		{"en", "and", []string{"Google"}, "Google"},
		{"en", "and", []string{"Google", "Meta", "LinkedIn"}, "Google, Meta and LinkedIn"},
		{"es", "y", []string{"Google", "Instagram"}, "Google e Instagram"},
		{"es", "y", []string{"Google", "Hilton"}, "Google e Hilton"},
		{"es", "y", []string{"Google", "hierro"}, "Google y hierro"},
		{"es", "y", []string{"Google", "HubSpot"}, "Google y HubSpot"},
		{"mt", "u", []string{"Google", "Meta"}, "Google u Meta"},
		{"ga", "agus", []string{"Google", "Meta", "LinkedIn"}, "Google, Meta agus LinkedIn"},
		{"cs", "a\u00a0", []string{"Google", "Meta", "LinkedIn"}, "Google, Meta a\u00a0LinkedIn"},
		{"mt", "u", []string{"Google", "Meta", "LinkedIn"}, "Google, Meta, u LinkedIn"},
	} {
		if got := static.JoinList(c.lang, c.and, c.items); got != c.want {
			t.Errorf("%s %v: %q, want %q", c.lang, c.items, got, c.want)
		}
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
