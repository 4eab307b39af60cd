package scan

import "unicode/utf8"

// What the scanner keeps of what a page does is bounded, so that a hostile
// page cannot make the scanner's memory or its report grow with it.
const (
	// maxName bounds a name, key, URL or message taken from a page, in
	// bytes.
	maxName = 256
	// maxDialogs bounds the dialogs noted for one page.
	maxDialogs = 20
)

// clip cuts s to at most n bytes, on a character boundary, marking the cut
// with "…".
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	i := n - len("…")
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i] + "…"
}
