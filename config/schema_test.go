package config_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"maps"
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

// goAnswer loads src: whether it loads, and the rule of each problem.
func goAnswer(t testing.TB, src []byte) (ok bool, rules []string) {
	_, err := config.Load("f.yaml", bytes.NewReader(src))
	if err == nil {
		return true, nil
	}
	var ce *config.Error
	if !errors.As(err, &ce) {
		t.Fatalf("not a config.Error: %v", err)
	}
	for _, p := range ce.Problems {
		rules = append(rules, p.Rule)
	}
	return false, rules
}

// TestSchemaAgrees holds sites.schema.json and Load to the same answer
// (valid or not) on the demo and every file in testdata: the fuzz corpus,
// and in testdata/schema a valid file and about a hundred changes of it,
// each near one rule, so that every rule is held to the same answer on its
// own and not only inside a file that breaks many. Where they differ, the file must break only rules in
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
	// Load tags every failed e-mail or URL check with its rule; the
	// schema's rough shape must still catch these.
	roughShape := map[string]bool{}
	for _, name := range []string{"address-with-a-name", "authority-mailto", "origin-ftp", "origin-with-a-path", "service-privacy-policy-ftp"} {
		roughShape[filepath.Join("testdata", "schema", name+".yaml")] = true
	}
	gaps := map[string]int{}
	var valid, invalid int
	for _, f := range files {
		goOK, rules := goAnswer(t, f.src)
		serr := schemaAnswer(s, f.src)
		if roughShape[f.name] {
			delete(roughShape, f.name)
			if serr == nil {
				t.Errorf("%s: the schema takes it", f.name)
			}
		}
		switch {
		case goOK && serr != nil:
			t.Errorf("%s: the schema refuses a file Load takes: %v", f.name, serr)
			continue
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
	for name := range roughShape {
		t.Errorf("%s is missing", name)
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
			Languages       struct{ Items struct{ Enum []string } }
			DefaultLanguage struct{ Enum []any } `json:"default_language"`
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
		{"default language", strs(site.Properties.DefaultLanguage.Enum), config.Languages},
		{"consent types", cat.Properties.ConsentMode.Items.Enum, config.ConsentTypes},
		{"scopes", token.Properties.Scope.Enum, config.Scopes},
		{"settings button shows", strs(banner.Properties.SettingsButton.Properties.Show.Enum), config.ButtonShows},
		{"settings button positions", strs(banner.Properties.SettingsButton.Properties.Position.Enum), config.ButtonPositions},
		{"layouts", strs(banner.Properties.Layout.Enum), slices.Sorted(maps.Keys(config.Layouts))},
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
// beyond config.CrossFieldRules, starting from testdata/schema.
func FuzzSchemaAgrees(f *testing.F) {
	s := compileSchema(f)
	files, _ := filepath.Glob("testdata/schema/*.yaml")
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		goOK, rules := goAnswer(t, src)
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
