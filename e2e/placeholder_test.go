package e2e

import (
	"testing"
)

// A blocked frame's placeholder says what the content is (the frame's
// title), who provides it with a link to their privacy statement, and
// offers "always allow" (the primary) and "load once" as buttons that stand
// out from its background, its words centred in the frame's box, on a
// light page and a dark one; and nothing of the provider's is fetched.
func TestPlaceholderAsSpecified(t *testing.T) {
	t.Parallel()
	for _, theme := range []string{"light", "dark"} {
		t.Run(theme, func(t *testing.T) {
			t.Parallel()
			tb := newTab(t)
			path := "/?nodecl=1"
			if theme == "dark" {
				path += "&dark=1"
			}
			tb.open(path)
			tb.click(button("Alles weigeren"))
			ph := `document.querySelector('koekje-embed').shadowRoot.querySelector('.ph')`
			tb.waitFor(ph + `.querySelector('button')`)
			got := eval[map[string]any](tb, `(() => {
				const ph = `+ph+`, bg = e => getComputedStyle(e).backgroundColor
				const bs = [...ph.querySelectorAll('button')], a = ph.querySelector('a')
				const box = ph.getBoundingClientRect(), kids = [...ph.children].map(k => k.getBoundingClientRect())
				const top = Math.min(...kids.map(r => r.top)), bottom = Math.max(...kids.map(r => r.bottom))
				const left = Math.min(...kids.map(r => r.left)), right = Math.max(...kids.map(r => r.right))
				return {
					title: ph.querySelector('strong')?.textContent, text: ph.textContent,
					link: a?.href, linkText: a?.textContent,
					buttons: bs.map(b => b.textContent), main: bs.map(b => b.classList.contains('main')),
					standOut: bs.map(b => bg(b) !== bg(ph) && getComputedStyle(b).borderTopColor !== bg(ph) && getComputedStyle(b).borderTopWidth !== '0px'),
					dark: ph.classList.contains('dark'),
					dx: Math.abs((left + right) / 2 - (box.left + box.right) / 2), dy: Math.abs((top + bottom) / 2 - (box.top + box.bottom) / 2),
				} })()`)
			if got["title"] != "Video" {
				t.Errorf("title %q, want the frame's %q", got["title"], "Video")
			}
			if got["link"] != "https://policies.google.com/privacy" || got["linkText"] != "Privacyverklaring van Google Ireland Ltd. (YouTube)" {
				t.Errorf("privacy link %v %q", got["link"], got["linkText"])
			}
			if b := got["buttons"].([]any); len(b) != 2 || b[0] != "YouTube altijd toestaan" || b[1] != "Eén keer laden" {
				t.Errorf("buttons %q", b)
			}
			if m := got["main"].([]any); len(m) != 2 || m[0] != true || m[1] != false {
				t.Errorf("primary: %v, want always-allow alone", m)
			}
			for i, ok := range got["standOut"].([]any) {
				if ok != true {
					t.Errorf("button %d has the placeholder's own background or no border", i)
				}
			}
			if got["dark"] != (theme == "dark") {
				t.Errorf("dark: %v on a %s page", got["dark"], theme)
			}
			if dx, dy := got["dx"].(float64), got["dy"].(float64); dx > 2 || dy > 2 {
				t.Errorf("the words are %.0f px off the centre across, %.0f px down", dx, dy)
			}
			tb.axe(theme + " placeholders")
			for _, host := range []string{"youtube", "google.com", "policies.google"} {
				if r := tb.requests(host, true); len(r) != 0 {
					t.Errorf("fetched before a choice: %v", r)
				}
			}
		})
	}
}
