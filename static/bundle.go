// Package static holds the banner's source and its texts, and builds the
// per-site bundle served at /s/{site}.js; the demo site sits apart in demo/.
package static

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"regexp"
	"slices"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	"github.com/andybalholm/brotli"

	"github.com/koekje/koekje/config"
)

//go:generate go run gen.go

// min holds the banner's script and styles as `go generate` minified them
// from the sources beside this file; TestMinifiedCurrent holds them current.
//
//go:embed min texts.json
var files embed.FS

//go:embed demo
var demo embed.FS

// Demo is the demo site: index.html and its assets. It is no input of any
// bundle.
var Demo, _ = fs.Sub(demo, "demo")

// Bundle is one site's banner in two parts, each a minified script with
// its share of the configuration and texts, compressed once (Build, or
// BuildPlain and later Compress). The first part, served at /s/{site}.js,
// shows the first layer and blocks what waits for consent; the second,
// served at MorePath and loaded by the first when needed, holds the
// settings layer, the declaration and the placeholders' texts.
type Bundle struct {
	Site    string
	Version []byte // what a visitor is shown: the site's configuration and texts, as JSON
	Hash    string // config.Hash(Version): the config_hash a choice refers to
	Part           // the first part
	More    Part   // the second part
}

// Part is one script of a bundle with its encodings.
type Part struct {
	JS     []byte
	Gzip   []byte
	Brotli []byte
	ETag   string // strong validator of JS; encodings append a suffix
}

// MorePath is where the second part is served: its name holds its ETag,
// so it may be cached for good, and a first part asks only for its own.
func (b *Bundle) MorePath() string { return "/s/" + b.Site + "." + b.More.ETag + ".js" }

// version is the JSON a bundle's hash covers.
type version struct {
	Site  json.RawMessage            `json:"site"`
	Texts map[string]json.RawMessage `json:"texts"`
}

// Build makes the bundle for one site, compressed.
func Build(s *config.Site) (*Bundle, error) {
	b, err := BuildPlain(s)
	if err != nil {
		return nil, err
	}
	return b, b.Compress()
}

// BuildPlain makes the bundle for one site without compressing it: a few
// milliseconds, where the compression takes tens (brotli at its best
// level). A server with many sites starts at once and compresses later.
func BuildPlain(s *config.Site) (*Bundle, error) {
	pub, err := s.Public()
	if err != nil {
		return nil, fmt.Errorf("encode site %s: %w", s.ID, err)
	}
	all, err := texts()
	if err != nil {
		return nil, err
	}
	v := version{Site: pub, Texts: map[string]json.RawMessage{}}
	parties := ThirdParties(s)
	for _, l := range s.Languages {
		t, ok := all[l]
		if !ok {
			return nil, fmt.Errorf("no banner texts for language %q", l)
		}
		if v.Texts[l], err = siteTexts(l, t, s, parties); err != nil {
			return nil, fmt.Errorf("texts for %q: %w", l, err)
		}
	}
	body, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	b := &Bundle{Site: s.ID, Version: body, Hash: config.Hash(body)}
	first, rest, err := ship(v, languages(s.DefaultLanguage, s.Languages))
	if err != nil {
		return nil, err
	}

	css, err := siteCSS(s)
	if err != nil {
		return nil, err
	}
	if b.More, err = morePart(rest); err != nil {
		return nil, err
	}
	// The second part's SRI hash, which a policy of hashes can allow too.
	sum := sha256.Sum256(b.More.JS)
	js, err := files.ReadFile("min/banner.js")
	if err != nil {
		return nil, err
	}
	b.JS = []byte(strings.NewReplacer(
		"KOEKJE_CONFIG", string(jsObject(first)), "KOEKJE_HASH", jsString(b.Hash), "KOEKJE_CSS", jsString(css),
		"KOEKJE_MORE", jsString(b.MorePath()[len("/s/"):]), "KOEKJE_SRI", jsString("sha256-"+base64.StdEncoding.EncodeToString(sum[:])),
	).Replace(string(js)))
	b.ETag = config.Hash(b.JS)[7:23]
	return b, nil
}

// languages are a site's languages in the order the banner lists them: the
// default first, so the banner needs no other word of it.
func languages(def string, all []string) []string {
	return append([]string{def}, slices.DeleteFunc(slices.Clone(all), func(l string) bool { return l == def })...)
}

// morePart is the second part for rest, the second part's share of a
// version.
func morePart(rest []byte) (Part, error) {
	var p Part
	dcss, err := files.ReadFile("min/declaration.css")
	if err != nil {
		return p, err
	}
	js, err := files.ReadFile("min/more.js")
	if err != nil {
		return p, err
	}
	scss, err := files.ReadFile("min/settings.css")
	if err != nil {
		return p, err
	}
	p.JS = []byte(strings.NewReplacer(
		"KOEKJE_REST", string(jsObject(rest)), "KOEKJE_SCSS", jsString(string(scss)), "KOEKJE_DCSS", jsString(string(dcss)),
	).Replace(string(js)))
	p.ETag = config.Hash(p.JS)[7:23]
	return p, nil
}

// MoreOf makes the second part of a stored banner version (Bundle.Version)
// again, uncompressed: the part a first part built from that version by
// this build of Koekje asks for. A server serves the second parts of
// earlier versions with it, to pages that still run their first parts.
func MoreOf(body []byte) (*Part, error) {
	var v version
	if err := json.Unmarshal(body, &v); err != nil {
		return nil, fmt.Errorf("banner version: %w", err)
	}
	var site struct {
		Languages       []string `json:"languages"`
		DefaultLanguage string   `json:"default_language"`
	}
	if err := json.Unmarshal(v.Site, &site); err != nil {
		return nil, fmt.Errorf("banner version: %w", err)
	}
	_, rest, err := ship(v, languages(site.DefaultLanguage, site.Languages))
	if err != nil {
		return nil, fmt.Errorf("banner version: %w", err)
	}
	p, err := morePart(rest)
	return &p, err
}

// Compress fills Gzip and Brotli from JS in both parts.
func (b *Bundle) Compress() error {
	return errors.Join(b.Part.compress(), b.More.compress())
}

// compress fills the part's encodings. The same script is compressed once
// per process, however many servers or bundles carry it: brotli at its
// best level costs tens of milliseconds a bundle.
func (p *Part) compress() error {
	v, _ := packed.LoadOrStore(sha256.Sum256(p.JS), &encodings{})
	e := v.(*encodings)
	e.once.Do(func() {
		if e.gzip, e.err = gzipBytes(p.JS); e.err == nil {
			e.br, e.err = brotliBytes(p.JS)
		}
	})
	p.Gzip, p.Brotli = e.gzip, e.br
	return e.err
}

// packed holds the compressed encodings of every script compressed in this
// process, by the SHA-256 of the script. A process serves one set of sites
// and builds each once, so it grows with the sites, not with time.
var packed sync.Map

type encodings struct {
	once     sync.Once
	gzip, br []byte
	err      error
}

// ship is the version as the bundle carries it, in the first part's share
// and the rest, shorter on the wire: every text, a map from language to
// string in the version, becomes a list in the order of langs (the site's
// languages, its default first), the interface texts are listed per key,
// so no key is repeated for each language, and the keys the minifier
// shortened in the scripts are shortened alike.
func ship(v version, langs []string) (first, rest []byte, err error) {
	var site any
	if err := json.Unmarshal(v.Site, &site); err != nil {
		return nil, nil, err
	}
	texts := map[string]any{}
	for i, l := range langs {
		var t map[string]any
		if err := json.Unmarshal(v.Texts[l], &t); err != nil {
			return nil, nil, err
		}
		for k, s := range t {
			// A key only some languages have (a duration in words) is
			// null in the others.
			list, ok := texts[k].([]any)
			if !ok {
				list = make([]any, len(langs))
				texts[k] = list
			}
			list[i] = s
		}
	}
	// What the banner does not read stays in the version alone.
	if m, ok := site.(map[string]any); ok {
		m["languages"] = langs
		delete(m, "default_language")
		delete(m, "name")
		delete(m, "intro") // in the texts, with its purposes filled in
		if b, ok := m["banner"].(map[string]any); ok {
			delete(b, "position")
		}
	}
	props, err := shortProps()
	if err != nil {
		return nil, nil, err
	}
	f, r := split(map[string]any{"site": byLanguage(site, langs), "texts": texts}, "")
	if first, err = json.Marshal(rename(f, props)); err != nil {
		return nil, nil, err
	}
	rest, err = json.Marshal(rename(r, props))
	return first, rest, err
}

// firstPart is what the first part of the banner reads: the first layer,
// the choice, Consent Mode and the cookies deleted on a refusal. The
// "reload" layer's texts come with the second part: a refused script can
// only have run before a choice made in the settings or a placeholder, or
// in the first layer shown when the settings could not load, which then
// closes without offering a reload. Items of a list are "*"; a path names
// its whole value.
var firstPart = map[string]bool{
	"site.id": true, "site.revision": true, "site.languages": true, "site.choice_months": true,
	"site.banner.layout": true, "site.banner.settings_button.show": true,
	"site.controller.organisation": true, "site.controller.privacy_policy": true,
	"site.categories.*.id": true, "site.categories.*.required": true, "site.categories.*.consent_mode": true,
	"site.services.*.id": true, "site.services.*.category": true,
	"site.services.*.cookies.*.name": true, "site.services.*.cookies.*.domain": true,
	"texts.title": true, "texts.intro": true, "texts.accept": true, "texts.reject": true, "texts.settings": true,
	"texts.failed": true, "texts.privacy": true, "texts.close": true,
	"texts.cookies": true, "texts.saved": true, "texts.withdrawn": true,
}

// split divides the value at path into the first part's share and the
// rest (nil where either has nothing). Lists keep their length in both, an
// item with nothing of its own an empty object, so the second part joins
// them item by item.
func split(v any, path string) (first, rest any) {
	if firstPart[path] {
		return v, nil
	}
	inner := false
	for p := range firstPart {
		if strings.HasPrefix(p, path+".") || path == "" {
			inner = true
			break
		}
	}
	if !inner {
		return nil, v
	}
	join := func(k string) string {
		if path == "" {
			return k
		}
		return path + "." + k
	}
	switch x := v.(type) {
	case map[string]any:
		f, r := map[string]any{}, map[string]any{}
		for k, y := range x {
			if a, b := split(y, join(k)); a != nil {
				f[k] = a
				if b != nil {
					r[k] = b
				}
			} else if b != nil {
				r[k] = b
			}
		}
		if len(r) == 0 {
			return f, nil
		}
		return f, r
	case []any:
		f, r := make([]any, len(x)), make([]any, len(x))
		some := false
		for i, y := range x {
			a, b := split(y, join("*"))
			f[i], r[i] = orEmpty(a), orEmpty(b)
			some = some || b != nil
		}
		if !some {
			return f, nil
		}
		return f, r
	}
	return nil, v
}

func orEmpty(v any) any {
	if v == nil {
		return map[string]any{}
	}
	return v
}

// shortProps reads the keys the minifier shortened in banner.js.
func shortProps() (map[string]string, error) {
	raw, err := files.ReadFile("min/props.json")
	if err != nil {
		return nil, err
	}
	var p map[string]string
	return p, json.Unmarshal(raw, &p)
}

// rename gives every key of v that the minifier shortened its short name.
func rename(v any, props map[string]string) any {
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, y := range x {
			if p, ok := props[k]; ok {
				k = p
			}
			out[k] = rename(y, props)
		}
		return out
	case []any:
		for i, y := range x {
			x[i] = rename(y, props)
		}
	}
	return v
}

// byLanguage turns every map holding exactly the site's languages into a
// list in their order.
func byLanguage(v any, langs []string) any {
	switch x := v.(type) {
	case map[string]any:
		list := make([]any, 0, len(langs))
		for _, l := range langs {
			if s, ok := x[l].(string); ok {
				list = append(list, s)
			}
		}
		if len(x) == len(langs) && len(list) == len(langs) {
			return list
		}
		for k, y := range x {
			x[k] = byLanguage(y, langs)
		}
	case []any:
		for i, y := range x {
			x[i] = byLanguage(y, langs)
		}
	}
	return v
}

// jsObject writes JSON as a JavaScript literal a little shorter: keys that
// are identifiers lose their quotes and true and false become !0 and !1,
// as a minifier would do.
func jsObject(j []byte) []byte {
	out := make([]byte, 0, len(j))
	for i := 0; i < len(j); i++ {
		switch {
		case bytes.HasPrefix(j[i:], []byte("true")):
			out, i = append(out, "!0"...), i+3
			continue
		case bytes.HasPrefix(j[i:], []byte("false")):
			out, i = append(out, "!1"...), i+4
			continue
		case j[i] != '"':
			out = append(out, j[i])
			continue
		}
		end := i + 1
		for ; j[end] != '"'; end++ {
			if j[end] == '\\' {
				end++
			}
		}
		s := j[i : end+1]
		if end+1 < len(j) && j[end+1] == ':' && identifier.Match(s[1:len(s)-1]) {
			s = s[1 : len(s)-1]
		}
		out = append(out, s...)
		i = end
	}
	return out
}

// jsString writes s as a JavaScript string literal in the quotes it holds
// fewer of.
func jsString(s string) string {
	s = strings.TrimSpace(s)
	q := "'"
	if strings.Count(s, "'") > strings.Count(s, `"`) {
		q = `"`
	}
	var b strings.Builder
	b.WriteString(q)
	for _, r := range s {
		switch r {
		case '\\', rune(q[0]):
			b.WriteByte('\\')
			b.WriteRune(r)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\u2028', '\u2029':
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteString(q)
	return b.String()
}

var spaces = regexp.MustCompile(`  +`)

var identifier = regexp.MustCompile(`^[A-Za-z_$][A-Za-z0-9_$]*$`)

// siteCSS is the style of a site's banner: its palette, the shared sheet,
// the sheet of its layout alone, and the settings button's unless the site
// turned the button off, with their positions.
func siteCSS(s *config.Site) (string, error) {
	b := s.Banner
	var css strings.Builder
	light, err := palette(b.Colors.Light.Resolve(config.DefaultLight))
	if err != nil {
		return "", err
	}
	dark, err := palette(b.Colors.Dark.Resolve(config.DefaultDark))
	if err != nil {
		return "", err
	}
	fab := ""
	if b.SettingsButton.Show != "never" {
		fab = ",.fab"
	}
	fmt.Fprintf(&css, ".k,.ph%s{%s}@media(prefers-color-scheme:dark){.k%s{%s}}.dark{%s}", fab, light, fab, dark, dark)
	sheets, places := []string{"banner.css"}, ""
	if b.Layout != "modal" {
		sheets = append(sheets, b.Layout+".css")
		places += fmt.Sprintf(".%s{%s}", b.Layout, place(b.Position, 16, 16))
	}
	if sb := b.SettingsButton; sb.Show != "never" {
		sheets = append(sheets, "button.css")
		places += fmt.Sprintf(".fab{%s}", place(sb.Position, *sb.OffsetX, *sb.OffsetY))
	}
	for _, name := range sheets {
		c, err := files.ReadFile("min/" + name)
		if err != nil {
			return "", err
		}
		css.Write(bytes.TrimSpace(c))
	}
	css.WriteString(places)
	return css.String(), nil
}

// place writes the CSS that puts a fixed element at a position such as
// "bottom-left", "top-center" or "bottom", x px from the side and y px from
// the top or bottom.
func place(pos string, x, y int) string {
	v, h, _ := strings.Cut(pos, "-")
	switch h {
	case "left", "right":
		return fmt.Sprintf("%s:%dpx;%s:%dpx", v, y, h, x)
	case "center":
		return fmt.Sprintf("%s:%dpx;left:0;right:0;margin-inline:auto", v, y)
	}
	return v + ":0" // a bar
}

// palette writes a palette as the banner's colour properties: the three a
// site sets, the text colour on the accent (black or white, whichever
// contrasts more), a line colour mixed from text and background that keeps
// 3:1 on the background (switches and borders), and a soft background for
// quiet buttons and notes that keeps the text at 4.5:1.
func palette(p config.Palette) (string, error) {
	var c [3]config.RGB
	for i, s := range []string{p.Accent, p.Text, p.Background} {
		var err error
		if c[i], err = config.ParseColor(s); err != nil {
			return "", err
		}
	}
	acc, fg, bg := c[0], c[1], c[2]
	on := config.RGB{255, 255, 255}
	if black := (config.RGB{17, 17, 17}); config.Contrast(black, acc) > config.Contrast(on, acc) {
		on = black
	}
	line := fg
	for t := 0.3; t <= 1; t += 0.05 {
		if m := bg.Mix(fg, t); config.Contrast(m, bg) >= 3 {
			line = m
			break
		}
	}
	soft := bg
	for t := 0.08; t > 0; t -= 0.01 {
		if m := bg.Mix(fg, t); config.Contrast(fg, m) >= config.MinContrast {
			soft = m
			break
		}
	}
	return fmt.Sprintf("--bg:%s;--fg:%s;--acc:%s;--on:%s;--line:%s;--soft:%s",
		short(bg), short(fg), short(acc), short(on), short(line), short(soft)), nil
}

// short writes a colour as #rgb where that is exact, else as #rrggbb.
func short(c config.RGB) string {
	h := c.Hex()
	if h[1] == h[2] && h[3] == h[4] && h[5] == h[6] {
		return string([]byte{'#', h[1], h[3], h[5]})
	}
	return h
}

// texts returns the interface texts of every language, keyed by language.
func texts() (map[string]json.RawMessage, error) {
	raw, err := files.ReadFile("texts.json")
	if err != nil {
		return nil, err
	}
	var t map[string]json.RawMessage
	if err := json.Unmarshal(raw, &t); err != nil {
		return nil, fmt.Errorf("texts.json: %w", err)
	}
	for l, v := range t {
		var compact bytes.Buffer
		if err := json.Compact(&compact, v); err != nil {
			return nil, err
		}
		t[l] = compact.Bytes()
	}
	return t, nil
}

// ServerTexts are the texts the consent server says itself, in its answers
// to the banner, rather than the banner's bundle: a sentence a visitor
// rarely needs costs every visitor nothing that way.
var ServerTexts = []string{"overridden"}

var parsedTexts = sync.OnceValues(texts)

// ServerText is the server's text key (one of ServerTexts) for site in
// lang, in the site's formality; in the site's default language when lang
// has none.
func ServerText(s *config.Site, lang, key string) string {
	all, err := parsedTexts()
	if err != nil {
		return ""
	}
	for _, l := range []string{lang, s.DefaultLanguage} {
		var t map[string]any
		if json.Unmarshal(all[l], &t) != nil {
			continue
		}
		if other, ok := t[s.Formality].(map[string]any); ok {
			maps.Copy(t, other)
		}
		if v, ok := t[key].(string); ok {
			return v
		}
	}
	return ""
}

// siteTexts makes one language's texts for a site: the first layer's intro
// (the site's own or Koekje's) gets the sentence of what a visitor is asked
// for in place of {purposes}; a language whose words for durations
// browsers lack gets each duration the site names in words; and what only
// the build needs is left out, so the stored version holds the sentences
// exactly as a visitor reads them.
func siteTexts(lang string, raw json.RawMessage, s *config.Site, parties []string) (json.RawMessage, error) {
	var t map[string]any
	if err := json.Unmarshal(raw, &t); err != nil {
		return nil, err
	}
	// A language with two registers holds the other one's texts under its
	// name: Dutch's "formal", German's "informal".
	if other, ok := t[s.Formality].(map[string]any); ok {
		maps.Copy(t, other)
	}
	intro, _ := t["intro"].(string)
	if own, ok := s.Intro[lang]; ok {
		intro = own
	}
	// Without a sentence, {purposes} leaves no double space behind.
	t["intro"] = strings.TrimSpace(spaces.ReplaceAllString(strings.ReplaceAll(intro, "{purposes}", purposes(lang, t, s, parties)), " "))
	if u, ok := t["units"]; ok {
		words, err := durationWords(lang, u, siteDurations(s))
		if err != nil {
			return nil, err
		}
		for d, w := range words {
			t[d] = w
		}
	}
	for _, k := range append([]string{"purposes", "parties", "and", "units", "formal", "informal"}, ServerTexts...) {
		delete(t, k)
	}
	return json.Marshal(t)
}

// purposes is the first layer's sentence of what a visitor is asked for:
// the titles of the site's optional categories, then the third parties
// that receive data, each in the language's form for one, two or more.
// A site with nothing optional has none.
func purposes(lang string, t map[string]any, s *config.Site, parties []string) string {
	var cats []string
	for _, c := range s.Categories {
		if !c.Required {
			cats = append(cats, asLabel(lang, c.Title[lang]))
		}
	}
	and, _ := t["and"].(string)
	var out []string
	if len(cats) > 0 {
		out = append(out, strings.ReplaceAll(form(t["purposes"], len(cats)), "{c}", JoinList(lang, and, cats)))
	}
	if len(parties) > 0 {
		out = append(out, strings.ReplaceAll(form(t["parties"], len(parties)), "{p}", JoinList(lang, and, parties)))
	}
	return strings.Join(out, " ")
}

// form picks a text's form for n things from its list: [one, more] or,
// in languages with a dual, [one, two, more].
func form(v any, n int) string {
	list, _ := v.([]any)
	i := len(list) - 1
	switch {
	case n == 1:
		i = 0
	case n == 2 && len(list) == 3:
		i = 1
	}
	if i < 0 {
		return ""
	}
	s, _ := list[i].(string)
	return s
}

// asLabel writes a category's title as it reads inside a sentence: with a
// small first letter, unless the language writes its nouns with a capital
// (German) or the title holds another capital ("Google Ads", "SEO").
func asLabel(lang, title string) string {
	r, n := utf8.DecodeRuneInString(title)
	if lang == "de" || strings.IndexFunc(title[n:], unicode.IsUpper) >= 0 {
		return title
	}
	return string(unicode.ToLower(r)) + title[n:]
}

// JoinList joins items as the language joins a list, as the browser's
// Intl.ListFormat does (British English for English): "A, B and C";
// Maltese with a comma before its last "u"; Spanish "e" for "y" before
// a word that begins with the sound i ("Google e Instagram"); Czech and
// Slovak keep their one-letter "a" on the line of the word after it (a
// no-break space, which texts.json writes in "and").
func JoinList(lang, and string, items []string) string {
	if len(items) < 2 {
		return strings.Join(items, "")
	}
	last := items[len(items)-1]
	if lang == "es" && and == "y" {
		l := strings.ToLower(last)
		if strings.HasPrefix(l, "i") || strings.HasPrefix(l, "hi") && (len(l) == 2 || !strings.ContainsRune("ae", rune(l[2]))) {
			and = "e"
		}
	}
	head := strings.Join(items[:len(items)-1], ", ")
	if lang == "mt" && len(items) > 2 {
		head += ","
	}
	if !strings.HasSuffix(and, "\u00a0") {
		and += " "
	}
	return head + " " + and + last
}

// legalWords are the trailing words of a company's legal name that a
// visitor does not need: legal forms, and the country or role of the entity.
var legalWords = map[string]bool{
	"ltd": true, "limited": true, "unlimited": true, "company": true, "inc": true, "llc": true,
	"corp": true, "corporation": true, "co": true, "plc": true, "uc": true, "bv": true, "nv": true,
	"gmbh": true, "ag": true, "kg": true, "sa": true, "sas": true, "sarl": true, "se": true,
	"ireland": true, "platforms": true, "operations": true, "europe": true, "emea": true,
	"international": true, "holdings": true, "&": true,
}

// ThirdParties names the companies other than the controller behind the
// site's optional services, as a visitor knows them: "Google Ireland Ltd."
// becomes "Google", "Meta Platforms Ireland Ltd." becomes "Meta".
func ThirdParties(s *config.Site) []string {
	var out []string
	for _, sv := range s.Services {
		if c := s.Category(sv.Category); c == nil || c.Required || sv.Provider == s.Controller.Organisation {
			continue
		}
		name := sv.Provider
		if i := strings.Index(name, " ("); i > 0 {
			name = name[:i]
		}
		words := strings.Fields(name)
		for len(words) > 1 && legalWords[strings.ToLower(strings.ReplaceAll(words[len(words)-1], ".", ""))] {
			words = words[:len(words)-1]
		}
		// "Vimeo.com, Inc." is "Vimeo.com", not "Vimeo.com,".
		if name = strings.TrimRight(strings.Join(words, " "), ","); !slices.Contains(out, name) {
			out = append(out, name)
		}
	}
	return out
}

func gzipBytes(b []byte) ([]byte, error) {
	var buf bytes.Buffer
	w, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if _, err := w.Write(b); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func brotliBytes(b []byte) ([]byte, error) {
	var buf bytes.Buffer
	w := brotli.NewWriterLevel(&buf, brotli.BestCompression)
	if _, err := w.Write(b); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
