package e2e

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/koekje/koekje/config"
)

// An editor checking a file against config/sites.schema.json gives the
// answer Load gives (valid or not), on the demo, the configuration reference's example and
// every file in config/testdata, fuzz corpus included. Like the schema test
// of the config package, it allows Load alone to refuse a file only for
// config.CrossFieldRules, and one thing more: the language server checks
// nothing in a file without a YAML document, which Load refuses. The server
// is yaml-language-server (the one of VS Code's YAML extension, Neovim,
// Helix and Zed), from e2e/package.json.
func TestSchemaInEditor(t *testing.T) {
	t.Parallel()
	node, err := exec.LookPath("node")
	_, lerr := os.Stat(filepath.Join("node_modules", "yaml-language-server"))
	if err != nil || lerr != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("no node or no yaml-language-server in node_modules: run `npm ci` in e2e/")
		}
		t.Skip("no node or no yaml-language-server: run `npm ci` in e2e/ (needs Node.js 20 or newer)")
	}
	type file struct {
		Name string `json:"name"`
		Src  string `json:"src"`
	}
	var files []file
	add := func(name string, src []byte) { files = append(files, file{name, string(src)}) }
	demo, err := os.ReadFile("../config/demo.yaml")
	if err != nil {
		t.Fatal(err)
	}
	add("demo.yaml", demo)
	reference, err := os.ReadFile("../config/README.md")
	if err != nil {
		t.Fatal(err)
	}
	example := ""
	for block := range strings.SplitSeq(string(reference), "```yaml\n") {
		if b, _, ok := strings.Cut(block, "```"); ok && strings.Contains(b, "\nsites:\n") {
			example = b
		}
	}
	if !strings.HasPrefix(example, "# yaml-language-server: $schema=") {
		t.Error("config/README.md has no configuration naming the schema")
	}
	add("reference example", []byte(example))
	err = filepath.WalkDir("../config/testdata", func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || strings.HasSuffix(path, ".err") {
			return err
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if strings.Contains(path, "/fuzz/") {
			_, lit, _ := strings.Cut(strings.TrimSpace(string(src)), "\n[]byte(")
			s, err := strconv.Unquote(strings.TrimSuffix(lit, ")"))
			if err != nil {
				return err
			}
			src = []byte(s)
		}
		add(strings.TrimPrefix(path, "../config/"), src)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	in, _ := json.Marshal(files)
	cmd := exec.Command(node, "schema_editor.mjs", "../config/sites.schema.json")
	cmd.Stdin = bytes.NewReader(in)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("yaml-language-server: %v\n%s", err, stderr.Bytes())
	}
	var answers []struct {
		Name   string
		Errors []string
	}
	if err := json.Unmarshal(out, &answers); err != nil || len(answers) != len(files) {
		t.Fatalf("%d answers for %d files: %v", len(answers), len(files), err)
	}
	same, gaps := 0, map[string]int{}
	for i, a := range answers {
		_, lerr := config.Load(a.Name, strings.NewReader(files[i].Src))
		switch {
		case lerr == nil && len(a.Errors) > 0:
			t.Errorf("%s: the editor refuses a file Load takes: %s", a.Name, strings.Join(a.Errors, "; "))
		case lerr != nil && len(a.Errors) == 0:
			var ce *config.Error
			if !errors.As(lerr, &ce) {
				t.Fatalf("%s: %v", a.Name, lerr)
			}
			for _, p := range ce.Problems {
				rule := p.Rule
				if rule == "" && !hasDocument(files[i].Src) {
					rule = "no document"
				}
				if _, ok := config.CrossFieldRules[rule]; !ok && rule != "no document" {
					t.Errorf("%s: the editor takes a file Load refuses, for a rule the schema checks:\n%v", a.Name, lerr)
					break
				}
				gaps[rule]++
			}
		default:
			same++
		}
	}
	t.Logf("%d files: the same answer for %d; only Load refuses for %v", len(files), same, gaps)
}

// hasDocument reports whether src holds anything but comments and space.
func hasDocument(src string) bool {
	for line := range strings.SplitSeq(src, "\n") {
		if l := strings.TrimSpace(line); l != "" && !strings.HasPrefix(l, "#") {
			return true
		}
	}
	return false
}
