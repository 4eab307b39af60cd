package static_test

import (
	"bytes"
	"os"
	"testing"
	"regexp"

	"github.com/andybalholm/brotli"
	"github.com/koekje/koekje/config"
	"github.com/koekje/koekje/static"
)

func br(b []byte) int {
	var buf bytes.Buffer
	w := brotli.NewWriterLevel(&buf, 11)
	w.Write(b)
	w.Close()
	return buf.Len()
}

func TestSizes(t *testing.T) {
	b, _ := static.Build(config.Demo().Site("demo"))
	os.WriteFile("/tmp/sz/bundle.js", b.JS, 0o644)
	js := b.JS
	// config literal ends at first `,\w=\"sha256`
	i := regexp.MustCompile(`,[\w$]+="sha256:`).FindIndex(js)
	cfg := js[:i[0]]
	rest := js[i[0]:]
	j := bytes.Index(rest, []byte("`"))
	_ = j
	css := regexp.MustCompile(`"dialog,\.ph\{.*?"`).Find(rest)
	t.Logf("total %d | cfg %d raw %d br | rest %d raw %d br | css %d raw %d br", len(b.Brotli), len(cfg), br(cfg), len(rest), br(rest), len(css), br(css))
}
