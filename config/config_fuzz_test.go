package config_test

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/koekje/koekje/config"
)

// FuzzLoad: any bytes give a configuration or an error naming the file,
// never a panic; what loads passes the same checks again.
func FuzzLoad(f *testing.F) {
	demo, err := os.ReadFile("demo.yaml")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(demo)
	files, _ := filepath.Glob("testdata/*.yaml")
	for _, name := range files {
		b, _ := os.ReadFile(name)
		f.Add(b)
	}
	f.Add([]byte("sites: &a [*a]"))
	f.Add([]byte("sites:\n  - !!binary x"))
	f.Fuzz(func(t *testing.T, src []byte) {
		c, err := config.Load("fuzz.yaml", bytes.NewReader(src))
		if err != nil {
			if !bytes.HasPrefix([]byte(err.Error()), []byte("fuzz.yaml")) {
				t.Fatalf("error does not name the file: %v", err)
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
