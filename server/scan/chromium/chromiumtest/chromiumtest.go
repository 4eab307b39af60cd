// Package chromiumtest finds the Chromium that tests drive: under CI it
// must be there, elsewhere a test without it is skipped with the way to
// install it.
package chromiumtest

import (
	"os"
	"testing"

	"github.com/koekje/koekje/server/scan/chromium"
)

// Need returns the browser binary (CHROME_PATH, else Debian's chromium);
// without one it fails the test under CI=true and skips it otherwise.
func Need(tb testing.TB) string {
	tb.Helper()
	chrome := chromium.ChromePath(os.Getenv)
	if _, err := os.Stat(chrome); err != nil {
		if os.Getenv("CI") == "true" {
			tb.Fatalf("no Chromium at %s", chrome)
		}
		tb.Skipf("no Chromium at %s: install it with `apt-get install -y chromium` or set CHROME_PATH", chrome)
	}
	return chrome
}
