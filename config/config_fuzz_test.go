package config_test

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/koekje/koekje/config"
)

// errorLine is the form of every line of a configuration error.
var errorLine = regexp.MustCompile(`^[^:]+:[1-9][0-9]*:[1-9][0-9]*: (\(top level\)|` + step + `(\.?` + step + `)*): .`)

// step is one step of a YAML path: a key, an index or a quoted key.
const step = `([A-Za-z0-9_-]+|\[[0-9]+\]|\["([^"\\]|\\.)*"\])`

// FuzzLoad: any bytes give a configuration or errors each naming the file,
// a line and column and a YAML path, never a panic; what loads passes the
// same checks again.
func FuzzLoad(f *testing.F) {
	demo, err := os.ReadFile("demo.yaml")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(demo)
	files, _ := filepath.Glob("testdata/*/*.yaml")
	more, _ := filepath.Glob("testdata/*.yaml")
	files = append(files, more...)
	for _, name := range files {
		b, _ := os.ReadFile(name)
		f.Add(b)
	}
	f.Add([]byte("sites: &a [*a]"))
	f.Add([]byte("sites:\n  - !!binary x"))
	f.Fuzz(func(t *testing.T, src []byte) {
		c, err := config.Load("fuzz.yaml", bytes.NewReader(src))
		if err != nil {
			for _, line := range strings.Split(err.Error(), "\n") {
				if !errorLine.MatchString(line) {
					t.Fatalf("error does not name the file, line and path: %q", line)
				}
			}
			return
		}
		if len(c.Sites) == 0 {
			t.Fatal("loaded a configuration without sites")
		}
		for _, s := range c.Sites {
			if s.Category("necessary") == nil || !s.HasLanguage(s.DefaultLanguage) {
				t.Fatalf("site %q loaded without necessary or its default language", s.ID)
			}
		}
	})
}
