package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// check-config prints the configuration's warnings on standard error, with
// the file, line and path, and still finds it valid.
func TestCheckConfigWarns(t *testing.T) {
	t.Parallel()
	demo, err := os.ReadFile(filepath.Join("..", "..", "..", "config", "demo.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	src := strings.Replace(string(demo), "    # intro:", "    intro: {nl: Welkom., en: \"Welcome. {purposes}\", de: \"{purposes}\", fr: \"{purposes}\"}\n    # intro:", 1)
	src = strings.Replace(src, "    # scan:", "    scan: {every: weekly, pages: [\"http://localhost:8080/\"], strict: true}\n    # scan:", 1)
	file := filepath.Join(t.TempDir(), "sites.yaml")
	if err := os.WriteFile(file, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	stdout, stderr, err := runCLIOut(t, nil, "check-config", file)
	if err != nil || !strings.Contains(stdout, "configuration is valid") {
		t.Fatalf("check-config: %v %s", err, stdout)
	}
	if !strings.Contains(stdout, "\n  scanned by koekje serve, every weekly (slots in UTC), from http://localhost:8080/, 10 pages per profile, strict\n") {
		t.Errorf("check-config does not say the site's scan schedule:\n%s", stdout)
	}
	if want := "warning: " + file + ":"; !strings.HasPrefix(stderr, want) || !strings.Contains(stderr, "sites[0].intro.nl: has no {purposes}") || strings.Count(stderr, "\n") != 1 {
		t.Errorf("check-config's warnings:\n%s\nwant one for intro.nl, beginning %q", stderr, want)
	}
}
