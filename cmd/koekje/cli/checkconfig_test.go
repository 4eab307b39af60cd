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
	file := demoWith(t, "    # intro:", "    intro: {nl: Welkom., en: \"Welcome. {purposes}\", de: \"{purposes}\", fr: \"{purposes}\"}\n    # intro:",
		"    # scan:", "    scan: {every: weekly, pages: [\"http://localhost:8080/\"], strict: true}\n    # scan:")
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

// check-config says where a first-party site's banner is, where its cookie
// goes, and that serve needs the proxy trusted.
func TestCheckConfigFirstParty(t *testing.T) {
	t.Parallel()
	file := demoWith(t, "    # first_party:", "    first_party: {url: \"http://www.belvast.localhost:8080/consent/\", cookie_domain: belvast.localhost}\n    # first_party:",
		`origins: [self,`, `origins: ["http://www.belvast.localhost:8080", self,`)
	stdout, _, err := runCLIOut(t, nil, "check-config", file)
	want := "\n  first-party: the banner at http://www.belvast.localhost:8080/consent/s/demo.js, the koekje cookie on belvast.localhost; koekje serve needs the proxy in --trusted-proxies\n"
	if err != nil || !strings.Contains(stdout, want) {
		t.Errorf("check-config: %v\n%s\nwant a line%s", err, stdout, want)
	}
}

// demoWith writes the demo configuration with each old text replaced by
// the new one after it to a file, and returns its path.
func demoWith(t *testing.T, oldNew ...string) string {
	t.Helper()
	demo, err := os.ReadFile(filepath.Join("..", "..", "..", "config", "demo.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	src := string(demo)
	for i := 0; i+1 < len(oldNew); i += 2 {
		src = strings.Replace(src, oldNew[i], oldNew[i+1], 1)
	}
	file := filepath.Join(t.TempDir(), "sites.yaml")
	if err := os.WriteFile(file, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	return file
}
