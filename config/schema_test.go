package config_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/parser"
	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/koekje/koekje/config"
)

func compileSchema(t testing.TB) *jsonschema.Schema {
	t.Helper()
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(config.Schema))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource("sites.schema.json", doc); err != nil {
		t.Fatal(err)
	}
	s, err := c.Compile("sites.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// schemaAnswer reads src as an editor would, as one YAML document turned
// into JSON, and validates it; a file that is not YAML is not valid.
func schemaAnswer(s *jsonschema.Schema, src []byte) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = &notYAML{"the parser failed"}
		}
	}()
	f, err := parser.ParseBytes(src, 0)
	if err != nil {
		return &notYAML{err.Error()}
	}
	var v any
	for _, d := range f.Docs {
		if d != nil && d.Body != nil {
			if err := yaml.NodeToValue(d.Body, &v); err != nil {
				return &notYAML{err.Error()}
			}
			break
		}
	}
	b, err := json.Marshal(v)
	if err != nil {
		return &notYAML{err.Error()}
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		return &notYAML{err.Error()}
	}
	return s.Validate(inst)
}

type notYAML struct{ msg string }

func (e *notYAML) Error() string { return "not a YAML document: " + e.msg }

// schemaCases are small changes to a valid file, each near one rule, so
// that every rule is held to the same answer on its own and not only
// inside a file that breaks many.
const schemaBase = `sites:
  - id: s
    name: S
    controller: {organisation: S B.V., email: privacy@s.example, privacy_policy: "https://s.example/privacy"}
    origins: ["https://s.example", "http://localhost:*", self]
    languages: [nl, en]
    categories:
      - id: necessary
        required: true
        title: {nl: Nodig, en: Needed}
        description: {nl: Nodig., en: Needed.}
      - id: stats
        title: {nl: Statistiek, en: Statistics}
        description: {nl: Tellen., en: Counting.}
    services:
      - id: ga
        name: Google Analytics
        category: stats
        provider: Google Ireland Ltd.
        cookies:
          - {name: _ga, duration: 2y, purpose: {nl: Herkennen, en: Recognise}}
`

var schemaCases = []struct{ name, old, new string }{
	{"base", "", ""},
	// Each breaks one rule that only Load checks.
	{"duplicate service", "    services:\n", "    services:\n      - {id: ga, name: GA, category: stats, provider: G}\n"},
	{"duplicate category", "      - id: stats\n", "      - id: necessary\n        required: true\n        title: {nl: N, en: N}\n        description: {nl: N, en: N}\n      - id: stats\n"},
	{"duplicate token", "sites:\n", "tokens:\n  - {name: a, scope: audit, sha256: \"sha256:" + strings.Repeat("ab", 32) + "\"}\n  - {name: a, scope: admin, sha256: \"sha256:" + strings.Repeat("cd", 32) + "\"}\nsites:\n"},
	{"default language not offered", "    languages: [nl, en]\n", "    languages: [nl, en]\n    default_language: de\n"},
	{"text missing a language", "title: {nl: Statistiek, en: Statistics}", "title: {nl: Statistiek}"},
	{"text in a language not offered", "title: {nl: Statistiek, en: Statistics}", "title: {nl: Statistiek, en: Statistics, fr: Statistiques}"},
	{"unknown category", "category: stats", "category: marketing"},
	{"low contrast", "    services:\n", "    banner: {colors: {light: {accent: \"#ffff00\"}}}\n    services:\n"},
	{"low contrast with a default", "    services:\n", "    banner: {colors: {dark: {background: \"#ffffff\"}}}\n    services:\n"},
	{"address with a trailing dot", "privacy@s.example", "privacy@s.example."},
	{"URL with a space in the host", `"https://s.example/privacy"`, `"https://s .example/privacy"`},
	{"origin with a bad escape", `"https://s.example",`, `"https://s.exa%mple",`},
	{"origin with a user", `"https://s.example",`, `"https://u:p@s.example",`},
	{"second document", "", "---\nsites: []\n"},
	// Both checks.
	{"revision as text", "    languages:", "    revision: \"2\"\n    languages:"},
	{"name as a number", "name: S\n", "name: 2024\n"},
	{"required as text", "required: true", "required: \"true\""},
	{"null category", "    categories:\n", "    categories:\n      -\n"},
	{"no necessary category", "      - id: necessary\n        required: true\n        title: {nl: Nodig, en: Needed}\n        description: {nl: Nodig., en: Needed.}\n", ""},
	{"necessary not required", "        required: true\n", ""},
	{"necessary required: null", "        required: true\n", "        required:\n"},
	{"no categories", "    categories:\n", "    categories: []\n    x:\n"},
	{"no sites", "sites:\n  - id: s", "sites: []\nx:\n  - id: s"},
	{"bar at bottom-right", "    services:\n", "    banner: {layout: bar, position: bottom-right}\n    services:\n"},
	{"bar at top", "    services:\n", "    banner: {layout: bar, position: top}\n    services:\n"},
	{"box at top-center by default", "    services:\n", "    banner: {position: top-center}\n    services:\n"},
	{"default position at bottom", "    services:\n", "    banner: {position: bottom}\n    services:\n"},
	{"modal at center", "    services:\n", "    banner: {layout: modal, position: center}\n    services:\n"},
	{"popup layout", "    services:\n", "    banner: {layout: popup}\n    services:\n"},
	{"null banner", "    services:\n", "    banner:\n    services:\n"},
	{"offset 400", "    services:\n", "    banner: {settings_button: {offset_x: 400, offset_y: 0, show: never, position: top-left}}\n    services:\n"},
	{"offset 401", "    services:\n", "    banner: {settings_button: {offset_y: 401}}\n    services:\n"},
	{"offset -1", "    services:\n", "    banner: {settings_button: {offset_x: -1}}\n    services:\n"},
	{"show sometimes", "    services:\n", "    banner: {settings_button: {show: sometimes}}\n    services:\n"},
	{"colour by name", "    services:\n", "    banner: {colors: {light: {accent: teal}}}\n    services:\n"},
	{"colour #abc", "    services:\n", "    banner: {colors: {light: {accent: \"#123\"}}}\n    services:\n"},
	{"colour #abcd", "    services:\n", "    banner: {colors: {light: {accent: \"#1234\"}}}\n    services:\n"},
	{"duration in words", "duration: 2y", "duration: 2 years"},
	{"duration 0d", "duration: 2y", "duration: 0d"},
	{"duration session", "duration: 2y", "duration: session"},
	{"duration 9999y", "duration: 2y", "duration: 9999y"},
	{"duration 10000y", "duration: 2y", "duration: 10000y"},
	{"cookie family", "name: _ga,", "name: _ga_*,"},
	{"cookie name with a space", "name: _ga,", "name: \"_ga x\","},
	{"cookie name with a star inside", "name: _ga,", "name: \"_g*a\","},
	{"cookie domain", "name: _ga,", "name: _ga, domain: google.com,"},
	{"cookie domain with a path", "name: _ga,", "name: _ga, domain: google.com/x,"},
	{"service name with a leading space", "name: Google Analytics", "name: \" Google Analytics\""},
	{"service name with a trailing no-break space", "name: Google Analytics", "name: \"Google Analytics\u00a0\""},
	{"service name of 40", "name: Google Analytics", "name: " + strings.Repeat("é", 40)},
	{"service name of 41", "name: Google Analytics", "name: " + strings.Repeat("é", 41)},
	{"service name blank", "name: Google Analytics", "name: \"\u2003\""},
	{"site name of a no-break space", "name: S\n", "name: \"\u00a0\"\n"},
	{"site name of a vertical tab", "name: S\n", "name: \"\\v\"\n"},
	{"provider blank", "provider: Google Ireland Ltd.", "provider: \" \""},
	{"service privacy policy empty", "provider: Google Ireland Ltd.", "provider: Google Ireland Ltd.\n        privacy_policy: \"\""},
	{"service privacy policy ftp", "provider: Google Ireland Ltd.", "provider: Google Ireland Ltd.\n        privacy_policy: ftp://x.example"},
	{"service privacy policy upper case", "provider: Google Ireland Ltd.", "provider: Google Ireland Ltd.\n        privacy_policy: HTTPS://X.EXAMPLE"},
	{"null cookies", "        cookies:\n          - {name: _ga, duration: 2y, purpose: {nl: Herkennen, en: Recognise}}\n", "        cookies:\n"},
	{"cookie list as a mapping", "        cookies:\n          - {name", "        cookies:\n          {name"},
	{"unknown key", "name: S\n", "name: S\n    colour: red\n"},
	{"site id with capitals", "id: s\n", "id: S\n"},
	{"site id of 64", "id: s\n", "id: s" + strings.Repeat("x", 63) + "\n"},
	{"language xx", "[nl, en]", "[nl, en, xx]"},
	{"no languages", "[nl, en]", "[]"},
	{"default language empty", "    languages: [nl, en]\n", "    languages: [nl, en]\n    default_language: \"\"\n"},
	{"choice_months 0", "    languages:", "    choice_months: 0\n    languages:"},
	{"choice_months 13", "    languages:", "    choice_months: 13\n    languages:"},
	{"choice_months 14", "    languages:", "    choice_months: 14\n    languages:"},
	{"choice_months 6.0", "    languages:", "    choice_months: 6.0\n    languages:"},
	{"choice_months 6.5", "    languages:", "    choice_months: 6.5\n    languages:"},
	{"revision 0", "    languages:", "    revision: 0\n    languages:"},
	{"revision -1", "    languages:", "    revision: -1\n    languages:"},
	{"revision too large", "    languages:", "    revision: 99999999999999999999\n    languages:"},
	{"retention_months -1", "    languages:", "    retention_months: -1\n    languages:"},
	{"retention_months 24", "    languages:", "    retention_months: 24\n    languages:"},
	{"intro", "    languages: [nl, en]\n", "    languages: [nl, en]\n    intro: {nl: Hallo., en: Hello.}\n"},
	{"empty intro", "    languages: [nl, en]\n", "    languages: [nl, en]\n    intro: {}\n"},
	{"null intro", "    languages: [nl, en]\n", "    languages: [nl, en]\n    intro:\n"},
	{"authority", "    languages: [nl, en]\n", "    languages: [nl, en]\n    authority: {name: GBA, url: \"https://www.gba.example\"}\n"},
	{"authority blank", "    languages: [nl, en]\n", "    languages: [nl, en]\n    authority: {name: \" \", url: \"https://www.gba.example\"}\n"},
	{"authority mailto", "    languages: [nl, en]\n", "    languages: [nl, en]\n    authority: {name: GBA, url: \"mailto:x@gba.example\"}\n"},
	{"controller as text", "controller: {", "controller: x\n    c: {"},
	{"controller jurisdiction", "email: privacy@s.example,", "email: privacy@s.example, jurisdiction: BE, address: Straat 1,"},
	{"address with a name", "privacy@s.example", "\"S <privacy@s.example>\""},
	{"origin with a path", `"https://s.example",`, `"https://s.example/x",`},
	{"origin ftp", `"https://s.example",`, `"ftp://s.example",`},
	{"consent mode", "      - id: stats\n", "      - id: stats\n        consent_mode: [analytics_storage]\n"},
	{"consent mode unknown", "      - id: stats\n", "      - id: stats\n        consent_mode: [tracking]\n"},
	{"token", "sites:\n", "tokens:\n  - {name: dpo, scope: audit, sha256: \"sha256:" + strings.Repeat("ab", 32) + "\"}\nsites:\n"},
	{"token upper-case hash", "sites:\n", "tokens:\n  - {name: dpo, scope: audit, sha256: \"sha256:" + strings.Repeat("AB", 32) + "\"}\nsites:\n"},
	{"token scope root", "sites:\n", "tokens:\n  - {name: dpo, scope: root, sha256: \"sha256:" + strings.Repeat("ab", 32) + "\"}\nsites:\n"},
	{"token without a name", "sites:\n", "tokens:\n  - {scope: audit, sha256: \"sha256:" + strings.Repeat("ab", 32) + "\"}\nsites:\n"},
	{"anchors and a merge key", "    services:\n", "    banner: &b {layout: bar}\n    services:\n"},
	{"not YAML", "name: S\n", "name: [S\n"},
	{"a list", "sites:\n", "- sites:\n"},
	{"empty file", "sites:\n", "#"},
}

func schemaCase(t *testing.T, old, new string) []byte {
	t.Helper()
	if old == "" {
		return []byte(schemaBase + new)
	}
	if old == "sites:\n" && new == "#" {
		return []byte("# nothing\n")
	}
	if !strings.Contains(schemaBase, old) {
		t.Fatalf("%q is not in the base file", old)
	}
	return []byte(strings.Replace(schemaBase, old, new, 1))
}

// TestSchemaAgrees holds sites.schema.json and Load to the same answer
// (valid or not) on the demo, every file in testdata, the fuzz corpus and
// the cases above. Where they differ, the file must break only rules in
// config.CrossFieldRules (which the schema's description lists), and every
// one of those rules must make a difference somewhere here, so that the
// list holds nothing the schema could check.
func TestSchemaAgrees(t *testing.T) {
	s := compileSchema(t)
	type file struct {
		name string
		src  []byte
	}
	var files []file
	demo, err := os.ReadFile("demo.yaml")
	if err != nil {
		t.Fatal(err)
	}
	files = append(files, file{"demo.yaml", demo})
	err = filepath.WalkDir("testdata", func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || strings.HasSuffix(path, ".err") {
			return err
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if strings.Contains(path, string(filepath.Separator)+"fuzz"+string(filepath.Separator)) {
			src = fuzzInput(t, path, src)
		}
		files = append(files, file{path, src})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range schemaCases {
		files = append(files, file{"case " + c.name, schemaCase(t, c.old, c.new)})
	}

	gaps := map[string]int{}
	var valid, invalid int
	for _, f := range files {
		rules, goOK := config.Rules(f.src)
		serr := schemaAnswer(s, f.src)
		switch {
		case goOK && serr != nil:
			t.Errorf("%s: the schema refuses a file Load takes: %v", f.name, serr)
		case !goOK && serr == nil:
			for _, r := range rules {
				if _, ok := config.CrossFieldRules[r]; !ok {
					_, err := config.Load(f.name, bytes.NewReader(f.src))
					t.Errorf("%s: the schema takes a file Load refuses, for a rule the schema should check:\n%v", f.name, err)
					break
				}
				gaps[r]++
			}
		case goOK:
			valid++
		default:
			invalid++
		}
	}
	t.Logf("%d files: %d valid and %d invalid for both; only Load refuses for %v", len(files), valid, invalid, gaps)
	for r := range config.CrossFieldRules {
		if gaps[r] == 0 {
			t.Errorf("rule %q never made a difference: the schema checks it, or no file here tests it", r)
		}
	}
	if valid < 10 {
		t.Errorf("only %d valid files: the comparison needs both kinds", valid)
	}
}

// fuzzInput reads a file of the fuzz corpus ("go test fuzz v1", then
// []byte("…")).
func fuzzInput(t *testing.T, path string, b []byte) []byte {
	t.Helper()
	lines := strings.SplitN(strings.TrimSpace(string(b)), "\n", 2)
	if len(lines) != 2 || lines[0] != "go test fuzz v1" {
		t.Fatalf("%s: not a fuzz corpus file", path)
	}
	lit, ok := strings.CutPrefix(lines[1], "[]byte(")
	lit, ok2 := strings.CutSuffix(lit, ")")
	src, err := strconv.Unquote(lit)
	if !ok || !ok2 || err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return []byte(src)
}

// The schema's lists are Go's lists, and its description names every
// rule it cannot check, in the words of config.CrossFieldRules.
func TestSchemaLists(t *testing.T) {
	var doc struct {
		Description string
		Definitions map[string]json.RawMessage
	}
	if err := json.Unmarshal(config.Schema, &doc); err != nil {
		t.Fatal(err)
	}
	for r, text := range config.CrossFieldRules {
		if !strings.Contains(doc.Description, r+": "+text) {
			t.Errorf("the schema's description does not name rule %s: %s", r, text)
		}
	}
	var site struct {
		Properties struct {
			Languages struct{ Items struct{ Enum []string } }
		}
	}
	var cat struct {
		Properties struct {
			ConsentMode struct{ Items struct{ Enum []string } } `json:"consent_mode"`
		}
	}
	var token struct {
		Properties struct{ Scope struct{ Enum []string } }
	}
	var banner struct {
		Properties struct {
			Layout         struct{ Enum []any }
			SettingsButton struct {
				Properties struct {
					Show, Position struct{ Enum []any }
				}
			} `json:"settings_button"`
		}
		AllOf []struct {
			Then, Else struct {
				Properties struct{ Position struct{ Enum []any } }
			}
		}
	}
	for name, v := range map[string]any{"site": &site, "category": &cat, "token": &token, "banner": &banner} {
		if err := json.Unmarshal(doc.Definitions[name], v); err != nil {
			t.Fatal(err)
		}
	}
	var text struct {
		PropertyNames struct{ Enum []string }
	}
	if err := json.Unmarshal(doc.Definitions["text"], &text); err != nil {
		t.Fatal(err)
	}
	strs := func(v []any) []string {
		var s []string
		for _, x := range v {
			if x, ok := x.(string); ok && x != "" {
				s = append(s, x)
			}
		}
		return s
	}
	layouts := map[string][]string{"bar": strs(banner.AllOf[0].Then.Properties.Position.Enum),
		"modal": strs(banner.AllOf[1].Then.Properties.Position.Enum), "box": strs(banner.AllOf[2].Else.Properties.Position.Enum)}
	for _, c := range []struct {
		name      string
		got, want []string
	}{
		{"languages", site.Properties.Languages.Items.Enum, config.Languages},
		{"text languages", text.PropertyNames.Enum, config.Languages},
		{"consent types", cat.Properties.ConsentMode.Items.Enum, config.ConsentTypes},
		{"scopes", token.Properties.Scope.Enum, config.Scopes},
		{"settings button shows", strs(banner.Properties.SettingsButton.Properties.Show.Enum), config.ButtonShows},
		{"settings button positions", strs(banner.Properties.SettingsButton.Properties.Position.Enum), config.ButtonPositions},
		{"layouts", strs(banner.Properties.Layout.Enum), slices.Sorted(func(yield func(string) bool) {
			for l := range config.Layouts {
				if !yield(l) {
					return
				}
			}
		})},
		{"bar positions", layouts["bar"], config.Layouts["bar"]},
		{"modal positions", layouts["modal"], config.Layouts["modal"]},
		{"box positions", layouts["box"], config.Layouts["box"]},
	} {
		got := c.got
		if c.name == "layouts" {
			got = slices.Sorted(slices.Values(got))
		}
		if !slices.Equal(got, c.want) {
			t.Errorf("%s: schema %v, Go %v", c.name, got, c.want)
		}
	}
}

// FuzzSchemaAgrees looks for files on which the schema and Load disagree
// beyond config.CrossFieldRules, starting from the cases above.
func FuzzSchemaAgrees(f *testing.F) {
	s := compileSchema(f)
	for _, c := range schemaCases {
		if c.old == "" || strings.Contains(schemaBase, c.old) {
			f.Add([]byte(strings.Replace(schemaBase, c.old, c.new, 1)))
		}
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		rules, goOK := config.Rules(src)
		serr := schemaAnswer(s, src)
		if goOK && serr != nil {
			t.Fatalf("the schema refuses a file Load takes: %v", serr)
		}
		if !goOK && serr == nil {
			for _, r := range rules {
				if _, ok := config.CrossFieldRules[r]; !ok {
					_, err := config.Load("fuzz.yaml", bytes.NewReader(src))
					t.Fatalf("the schema takes a file Load refuses:\n%v", err)
				}
			}
		}
	})
}
