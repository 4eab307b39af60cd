package config_test

import (
	"bytes"
	"encoding/json"
	"maps"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/koekje/koekje/config"
)

// schemaKeys is every key the schema knows.
func schemaKeys(t *testing.T) []string {
	t.Helper()
	var doc any
	if err := json.Unmarshal(config.Schema, &doc); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			if props, ok := v["properties"].(map[string]any); ok {
				for k := range props {
					seen[k] = true
				}
			}
			for _, x := range v {
				walk(x)
			}
		case []any:
			for _, x := range v {
				walk(x)
			}
		}
	}
	walk(doc)
	keys := slices.Sorted(maps.Keys(seen))
	if len(keys) < 40 {
		t.Fatalf("only %d keys in the schema: %v", len(keys), keys)
	}
	return keys
}

// readmeConfig is the YAML block of the configuration reference
// (README.md beside this package) that lists every option.
func readmeConfig(t *testing.T) (example string) {
	t.Helper()
	b, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	for block := range strings.SplitSeq(string(b), "```yaml\n") {
		if b, _, ok := strings.Cut(block, "```"); ok && strings.Contains(b, "\nsites:\n") {
			example = b
		}
	}
	if example == "" {
		t.Fatal("config/README.md has no configuration listing every option")
	}
	return example
}

// Every key of the schema appears in the demo config (in use, or in a
// comment where using it would change the demo) and in the reference's
// example, whose configuration loads and passes the schema; both name the
// schema for editors.
func TestDocumentedKeys(t *testing.T) {
	demo, err := os.ReadFile("demo.yaml")
	if err != nil {
		t.Fatal(err)
	}
	example := readmeConfig(t)
	for _, k := range schemaKeys(t) {
		key := regexp.MustCompile(`(?m)(^|[\s{,#-])` + regexp.QuoteMeta(k) + `:`)
		if !key.Match(demo) {
			t.Errorf("demo.yaml does not show %s", k)
		}
		if !key.MatchString(example) {
			t.Errorf("the reference's example does not show %s", k)
		}
	}
	if !bytes.HasPrefix(demo, []byte("# yaml-language-server: $schema=./sites.schema.json\n")) {
		t.Error("demo.yaml does not begin by naming its schema")
	}
	if !strings.HasPrefix(example, "# yaml-language-server: $schema=https://") {
		t.Error("the reference's example does not begin by naming its schema")
	}
	if _, err := config.Load("README.md", strings.NewReader(example)); err != nil {
		t.Errorf("the reference's example does not load:\n%v", err)
	}
	if err := schemaAnswer(compileSchema(t), []byte(example)); err != nil {
		t.Errorf("the reference's example fails the schema: %v", err)
	}
}
