package static

import (
	"bytes"
	"testing"

	"github.com/koekje/koekje/config"
)

// A stored banner version makes its second part again, byte for byte: the
// part the version's first part names.
func TestMoreOfAStoredVersion(t *testing.T) {
	demo := config.Demo().Sites[0]
	demo.Languages = []string{"en", "nl", "de", "fr"} // the default (nl) not first
	for _, s := range []*config.Site{config.Demo().Sites[0], demo} {
		b, err := BuildPlain(s)
		if err != nil {
			t.Fatal(err)
		}
		p, err := MoreOf(b.Version)
		if err != nil {
			t.Fatal(err)
		}
		if p.ETag != b.More.ETag || !bytes.Equal(p.JS, b.More.JS) {
			t.Errorf("%v: the second part made again differs (%s, want %s)", s.Languages, p.ETag, b.More.ETag)
		}
		if !bytes.Contains(b.JS, []byte(p.ETag)) {
			t.Errorf("the first part does not name %s", p.ETag)
		}
	}
	if _, err := MoreOf([]byte(`{"site":`)); err == nil {
		t.Error("a damaged version made a second part")
	}
}
