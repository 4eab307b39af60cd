package static_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/koekje/koekje/static/internal/minify"
)

// The committed min/ files are what `go generate ./static` makes of the
// sources now.
func TestMinifiedCurrent(t *testing.T) {
	want, err := minify.All(os.DirFS("."))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range append(minify.Sources, "props.json") {
		got, err := os.ReadFile(filepath.Join("min", name))
		if err != nil {
			t.Errorf("%v: run `go generate ./static`", err)
			continue
		}
		if !bytes.Equal(got, want[name]) {
			t.Errorf("min/%s is stale: run `go generate ./static` and commit it", name)
		}
	}
}

// The server binary does not link the minifier: esbuild is for `go generate`.
func TestServerDoesNotLinkEsbuild(t *testing.T) {
	cmd := exec.Command("go", "list", "-deps", "./cmd/koekje")
	cmd.Dir = ".."
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	deps := strings.Fields(string(out))
	if len(deps) < 20 || !strings.Contains(string(out), "github.com/koekje/koekje/static\n") {
		t.Fatalf("go list -deps ./cmd/koekje gave %d packages without static: the test proves nothing", len(deps))
	}
	for _, d := range deps {
		if strings.Contains(d, "esbuild") {
			t.Errorf("the server links %s", d)
		}
	}
}
