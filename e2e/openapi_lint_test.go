package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// The OpenAPI document passes Redocly's recommended rules with no error and
// no warning (e2e/redocly.yaml turns off only the licence rule). The linter
// comes from e2e/package.json, as axe-core does.
func TestOpenAPILints(t *testing.T) {
	t.Parallel()
	bin := filepath.Join("node_modules", ".bin", "redocly")
	if _, err := os.Stat(bin); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("no Redocly linter at %s: run `npm ci` in e2e/", bin)
		}
		t.Skip("no Redocly linter: run `npm ci` in e2e/ (needs Node.js 20.19 or newer)")
	}
	cmd := exec.Command(bin, "lint", filepath.Join("..", "server", "openapi.json"), "--config", "redocly.yaml", "--format", "stylish")
	cmd.Env = append(os.Environ(), "REDOCLY_TELEMETRY=off", "REDOCLY_SUPPRESS_UPDATE_NOTICE=true")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("redocly lint: %v\n%s", err, out)
	}
	// Findings are lines "line:col  warning|error  rule  message"; a notice
	// about the Node.js version is not one.
	if problem.Match(out) || !strings.Contains(string(out), "validated in") {
		t.Fatalf("redocly lint found problems:\n%s", out)
	}
}

var problem = regexp.MustCompile(`(?m)^\s*\d+:\d+\s+(warning|error)\s`)
