package e2e

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/koekje/koekje/config"
	"github.com/koekje/koekje/server"
	"github.com/koekje/koekje/server/proof"
)

// fpHost is the first-party test website. Chromium counts *.localhost as
// a secure context even over plain http, so Secure cookies set there are
// kept as on an https site (no TLS to set up), and www.belvast.localhost
// has a parent domain, belvast.localhost, that cookies can be set on.
const fpHost = "www.belvast.localhost"

// fpSite is the first-party site's id; its choice is kept 13 months.
const (
	fpSite   = "firstparty"
	fpMonths = 13
)

// firstParty is a static website behind a real Caddy, which forwards
// /consent/ to a Koekje server of its own.
type firstParty struct {
	site   string       // the website's origin, through Caddy
	koekje string       // Koekje's own origin
	files  string       // the website's files
	slow   atomic.Int64 // how long Koekje waits before it answers a POST, in ns
}

// caddy finds Debian's caddy; without it the test skips with an install
// hint, except under CI=true, where it fails.
func caddy(t testing.TB) string {
	t.Helper()
	path, err := exec.LookPath("caddy")
	if err != nil {
		msg := "no caddy on PATH: install it with `apt-get install -y caddy`"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return path
}

// startFirstParty starts Koekje (trusting the proxy on loopback), the
// website's files and Caddy in front of both, configured as server/README.md
// says, and stops them when the test ends. The website sets an HttpOnly _ga
// on its parent domain at /ga, as a site's own server-side analytics does.
func startFirstParty(t testing.TB) *firstParty {
	t.Helper()
	bin := caddy(t)
	browser(t)
	dir := t.TempDir()
	port := freePort(t)
	fp := &firstParty{site: fmt.Sprintf("http://%s:%d", fpHost, port)}

	ts := httptest.NewUnstartedServer(nil)
	fp.koekje = "http://" + ts.Listener.Addr().String()
	cfg := config.Demo()
	s := *cfg.Sites[0]
	s.ID, s.ChoiceMonths = fpSite, fpMonths
	s.Origins = []string{"http://" + fpHost + ":*"}
	s.FirstParty = &config.FirstParty{URL: fp.site + "/consent/", CookieDomain: "belvast.localhost"}
	cfg.Sites = []*config.Site{&s}
	keys, err := proof.OpenKeys(context.Background(), store)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(context.Background(), server.Deps{
		Config: cfg, Store: store, Keys: keys, TokenKey: bytes.Repeat([]byte{42}, 64), AdminToken: "e2e-admin",
		PublicURL: fp.koekje, TrustedProxies: []string{"127.0.0.1/32"},
	})
	if err != nil {
		t.Fatal(err)
	}
	ts.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == "POST" {
			time.Sleep(time.Duration(fp.slow.Load()))
		}
		srv.ServeHTTP(w, r)
	})
	ts.Start()
	t.Cleanup(ts.Close)

	html := func(script string) string {
		return `<!doctype html><html lang="nl"><head><meta charset="utf-8"><title>Belvast</title>
<script src="` + script + `"></script>
<script type="text/plain" data-category="analytics" src="https://www.googletagmanager.com/gtag/js?id=G-TEST"></script>
</head><body><main><h1>Belvast</h1><p>Zakelijke telefonie.</p></main></body></html>`
	}
	files := filepath.Join(dir, "site")
	fp.files = files
	os.MkdirAll(files, 0o755)
	// index.html loads the banner through the proxy; direct.html from
	// Koekje's own origin, as a site without the proxy does; prefixed.html
	// from Koekje under a prefix of its own origin.
	os.WriteFile(filepath.Join(files, "index.html"), []byte(html("/consent/s/"+fpSite+".js")), 0o644)
	os.WriteFile(filepath.Join(files, "direct.html"), []byte(html(fp.koekje+"/s/"+fpSite+".js")), 0o644)
	os.WriteFile(filepath.Join(files, "prefixed.html"), []byte(html(fmt.Sprintf("http://consent.belvast.localhost:%d/k/s/%s.js", port, fpSite))), 0o644)
	caddyfile := readmeCaddyfile(t, fmt.Sprintf("%s:%d", fpHost, port), strings.TrimPrefix(fp.koekje, "http://"), files)
	os.WriteFile(filepath.Join(dir, "Caddyfile"), []byte(caddyfile), 0o644)
	logf, err := os.Create(filepath.Join(dir, "caddy.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "run", "--config", filepath.Join(dir, "Caddyfile"), "--adapter", "caddyfile")
	cmd.Env = append(os.Environ(), "HOME="+dir, "XDG_DATA_HOME="+dir, "XDG_CONFIG_HOME="+dir)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		logf.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logf.Name())
			t.Logf("caddy's log:\n%s", b)
		}
	})
	// Caddy is up when it forwards to Koekje.
	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, fmt.Sprintf("127.0.0.1:%d", port))
		}}}
	if !poll(func() bool {
		r, err := client.Get(fp.site + "/consent/healthz")
		if err != nil {
			return false
		}
		r.Body.Close()
		return r.StatusCode == 200
	}) {
		t.Fatal("caddy did not come up")
	}
	return fp
}

// readmeCaddyfile is the Caddy configuration of server/README.md for this
// test's host, Koekje and files, on loopback without TLS (Chromium keeps
// Secure cookies on *.localhost over plain http), with one route more: /ga
// sets the HttpOnly _ga the site's own analytics would.
func readmeCaddyfile(t testing.TB, host, upstream, root string) string {
	t.Helper()
	b, err := os.ReadFile("../server/README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, block, ok := strings.Cut(string(b), "Caddy (it passes")
	_, block, ok2 := strings.Cut(block, "```\n")
	block, _, ok3 := strings.Cut(block, "```")
	if !ok || !ok2 || !ok3 || !strings.HasPrefix(block, "www.example.nl {\n") || !strings.Contains(block, "\thandle {\n") {
		t.Fatalf("server/README.md has no Caddy configuration for www.example.nl with a final handle block:\n%s", block)
	}
	block = strings.NewReplacer("www.example.nl {", "http://"+host+" {\n\tbind 127.0.0.1", "127.0.0.1:8080", upstream,
		"/var/www/example", root, "example-nl", fpSite).Replace(block)
	block = strings.Replace(block, "\thandle {\n", `	handle /ga {
		header Set-Cookie "_ga=GA1.1.7.1700000000; Domain=belvast.localhost; Path=/; Max-Age=63072000; HttpOnly"
		respond "analytics cookie set"
	}
	handle {
`, 1)
	// Koekje under a prefix of an origin of its own, which is no
	// first-party proxy.
	other := fmt.Sprintf("http://consent.%s {\n\tbind 127.0.0.1\n\thandle_path /k/* {\n\t\treverse_proxy %s\n\t}\n}\n", strings.TrimPrefix(host, "www."), upstream)
	return "{\n\tadmin off\n\tauto_https off\n}\n" + block + other
}

// freePort is a loopback port nothing listens on now.
func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// withCookieHook records every write of document.cookie in
// window.cookieWrites, before any script of the page runs.
func withCookieHook(tb *tab) error {
	_, err := chromedp.Call(tb.ctx, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: `
window.cookieWrites = [];
{
  const d = Object.getOwnPropertyDescriptor(Document.prototype, 'cookie');
  Object.defineProperty(Document.prototype, 'cookie', {
    configurable: true,
    get() { return d.get.call(this) },
    set(v) { window.cookieWrites.push(String(v)); d.set.call(this, v) }
  });
}`})
	return err
}

// cookies are the browser's cookies for url by name, HttpOnly ones too.
func (tb *tab) cookies(url string) map[string]*network.Cookie {
	tb.t.Helper()
	res, err := chromedp.Call(tb.ctx, network.GetCookies, network.GetCookiesParams{URLs: []string{url}})
	if err != nil {
		tb.t.Fatal(err)
	}
	out := map[string]*network.Cookie{}
	for _, c := range res.Cookies {
		out[c.Name] = c
	}
	return out
}

// plantGA has the website set its HttpOnly _ga on the parent domain.
func (tb *tab) plantGA(fp *firstParty) {
	tb.t.Helper()
	tb.do(chromedp.Navigate(fp.site + "/ga"))
	if c := tb.cookies(fp.site)["_ga"]; c == nil || !c.HTTPOnly || c.Domain != ".belvast.localhost" {
		tb.t.Fatalf("the site's _ga is not there as an HttpOnly cookie on .belvast.localhost: %+v", c)
	}
}

// First-party mode through a real Caddy: the page talks only to its own
// origin, the choice arrives in Set-Cookie for the site's 13 months, the
// banner never writes it, and "reject all" removes the HttpOnly _ga the
// site set on its parent domain. The same site without the proxy works
// as before: the banner writes the cookie, and an HttpOnly cookie stays.
func TestFirstPartyThroughCaddy(t *testing.T) {
	t.Parallel()
	fp := startFirstParty(t)

	t.Run("through the proxy", func(t *testing.T) {
		tb := newTab(t, withCookieHook)
		tb.plantGA(fp)
		tb.do(chromedp.Navigate(fp.site + "/"))
		tb.waitFor(bannerOpen)
		if link := eval[string](tb, `fetch('/').then(r => r.headers.get('Link'))`); link != `</consent/adpc/`+fpSite+`.json>; rel="consent-requests"` {
			t.Errorf("the page's Link header is %q, want ADPC's consent requests", link)
		}
		// The link leads, through the proxy, to the site's consent requests.
		if reqs := eval[string](tb, `fetch('/consent/adpc/`+fpSite+`.json').then(r => r.text())`); !strings.Contains(reqs, `"consentRequests"`) {
			t.Errorf("ADPC's consent requests through the proxy: %.200s", reqs)
		}
		if gpc := eval[string](tb, `fetch('/.well-known/gpc.json').then(r => r.text())`); strings.TrimSpace(gpc) != `{"gpc":true}` {
			t.Errorf("/.well-known/gpc.json through the proxy: %q", gpc)
		}
		start := time.Now()
		tb.click(button("Alles weigeren"))
		id := tb.consentID()
		waitRecords(t, 1, "consent_id = ? AND site = ? AND action = 'reject_all'", id[:], fpSite)
		var kc *network.Cookie
		if !poll(func() bool { kc = tb.cookies(fp.site)["koekje"]; return kc != nil }) {
			t.Fatal("no koekje cookie after reject all")
		}
		life := time.Until(time.Unix(int64(kc.Expires), 0)) + time.Since(start)
		want := time.Duration(fpMonths*2630016) * time.Second
		if math.Abs((life - want).Hours()) > 1 {
			t.Errorf("the koekje cookie lives %s, want the site's %d months (%s)", life, fpMonths, want)
		}
		if kc.Domain != ".belvast.localhost" || !kc.Secure || kc.HTTPOnly || kc.SameSite != network.CookieSameSiteLax || !strings.Contains(kc.Value, id.String()) {
			t.Errorf("koekje cookie %+v: want it on .belvast.localhost, Secure, readable by the banner, SameSite=Lax, with consent ID %s", kc, id)
		}
		if w := eval[[]string](tb, `cookieWrites.filter(c => /^\s*koekje=/.test(c))`); len(w) != 0 {
			t.Errorf("the banner wrote the koekje cookie itself: %q", w)
		}
		if c := tb.cookies(fp.site)["_ga"]; c != nil {
			t.Errorf("the HttpOnly _ga survived reject all: %+v", c)
		}
		if r := tb.requests(fp.koekje, false); len(r) != 0 {
			t.Errorf("the page went to Koekje's own origin: %v", r)
		}
		if r := tb.requests(fp.site+"/consent/api/v1/sites/"+fpSite+"/consents", false); len(r) != 1 {
			t.Errorf("%d consent POSTs through the proxy, want 1", len(r))
		}
		// The next page knows the choice from the cookie the server set.
		tb.do(chromedp.Navigate(fp.site + "/"))
		tb.waitFor(`window.koekje`)
		if eval[bool](tb, `!!(`+bannerOpen+`)`) || eval[string](tb, `koekje.consentId()`) != id.String() {
			t.Error("the choice was not kept for the next page")
		}
	})

	// A visitor who changes their mind and goes on before the answer came:
	// the next page holds to the new choice, which waits in the queue, not
	// to the cookie's older one, and the choice is recorded once.
	t.Run("leaving before the answer", func(t *testing.T) {
		tb := newTab(t, withCookieHook)
		tb.do(chromedp.Navigate(fp.site + "/"))
		tb.click(button("Alles accepteren"))
		id := tb.consentID()
		if !poll(func() bool {
			c := tb.cookies(fp.site)["koekje"]
			return c != nil && strings.Contains(c.Value, "analytics")
		}) {
			t.Fatal("no koekje cookie granting analytics after accept all")
		}
		tb.waitFor(`window.gaLoads === 1`)
		fp.slow.Store(int64(2 * time.Second))
		defer fp.slow.Store(0)
		eval[bool](tb, `(() => { koekje.show(); return true })()`)
		tb.waitFor(`[...` + bannerRoot + `.querySelectorAll('button')].some(b => b.textContent === 'Keuze opslaan')`)
		eval[bool](tb, `(() => { [...`+bannerRoot+`.querySelectorAll('button')].find(b => b.textContent === 'Alles weigeren').click(); location.href = '/?next'; return true })()`)
		tb.waitFor(`location.search === '?next' && window.koekje`)
		if c := tb.cookies(fp.site)["koekje"]; c == nil || !strings.Contains(c.Value, "analytics") {
			t.Fatalf("the answer came before the next page (cookie %+v): the test proves nothing", c)
		}
		if eval[bool](tb, `!!(`+bannerOpen+`) || koekje.allowed('analytics')`) || eval[int](tb, `window.gaLoads || 0`) != 0 {
			t.Error("the next page took the cookie's older choice: analytics allowed, or the banner asks again")
		}
		fp.slow.Store(0)
		waitRecords(t, 2, "consent_id = ?", id[:])
		waitRecords(t, 1, "consent_id = ? AND action = 'reject_all'", id[:])
		if !poll(func() bool {
			c := tb.cookies(fp.site)["koekje"]
			return c != nil && !strings.Contains(c.Value, "analytics")
		}) {
			t.Error("the cookie never took the rejection")
		}
		if w := eval[[]string](tb, `cookieWrites.filter(c => /^\s*koekje=/.test(c))`); len(w) != 0 {
			t.Errorf("the banner wrote the koekje cookie itself: %q", w)
		}
	})

	t.Run("without the proxy", func(t *testing.T) {
		tb := newTab(t, withCookieHook)
		tb.plantGA(fp)
		tb.do(chromedp.Navigate(fp.site + "/direct.html"))
		tb.click(button("Alles weigeren"))
		id := tb.consentID()
		waitRecords(t, 1, "consent_id = ? AND site = ? AND action = 'reject_all'", id[:], fpSite)
		if w := eval[[]string](tb, `cookieWrites.filter(c => /^\s*koekje=/.test(c))`); len(w) == 0 {
			t.Error("the banner did not write the koekje cookie")
		}
		if kc := tb.cookies(fp.site)["koekje"]; kc == nil || kc.Domain != fpHost {
			t.Errorf("koekje cookie %+v: want the banner's, on %s alone", kc, fpHost)
		}
		if r := tb.requests(fp.koekje+"/api/v1/sites/"+fpSite+"/consents", false); len(r) != 1 {
			t.Errorf("%d consent POSTs to Koekje's origin, want 1", len(r))
		}
		if c := tb.cookies(fp.site)["_ga"]; c == nil {
			t.Error("without the proxy the HttpOnly _ga is gone: the banner cannot reach it, so what did?")
		}
	})

	// Koekje behind a prefix on its own origin (consent.…/k/) is no
	// first-party proxy: the banner keeps the choice itself there too.
	t.Run("Koekje under a prefix of its own origin", func(t *testing.T) {
		tb := newTab(t, withCookieHook)
		tb.do(chromedp.Navigate(fp.site + "/prefixed.html"))
		tb.click(button("Alles weigeren"))
		id := tb.consentID()
		waitRecords(t, 1, "consent_id = ? AND site = ? AND action = 'reject_all'", id[:], fpSite)
		if w := eval[[]string](tb, `cookieWrites.filter(c => /^\s*koekje=/.test(c))`); len(w) == 0 {
			t.Error("the banner did not write the koekje cookie")
		}
		if r := tb.requests("http://consent.belvast.localhost:", false); len(r) < 2 {
			t.Errorf("%d requests to Koekje under its prefix, want the banner and the POST at least", len(r))
		}
	})
}
