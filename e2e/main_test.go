// Package e2e tests the banner in a real Chromium against the real server.
//
// One browser runs for the whole package; each test gets a fresh browser
// context (its own cookies and storage). Third-party URLs are intercepted
// with the CDP Fetch domain, answered with local stubs and recorded, so a
// test can assert what a page attempted before and after consent.
package e2e

import (
	"bytes"
	"context"
	"database/sql"
	"flag"
	"fmt"
	"iter"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/fetch"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/google/uuid"

	"github.com/koekje/koekje/cmd/koekje/cli"
	"github.com/koekje/koekje/config"
	"github.com/koekje/koekje/server"
	"github.com/koekje/koekje/server/postgres/pgtest"
	"github.com/koekje/koekje/server/proof"
	"github.com/koekje/koekje/server/sqlite"
)

// hostName is the test website; the browser resolves it to 127.0.0.1.
const hostName = "www.belvast.test"

var (
	browserCtx context.Context
	skipReason string
	axeSource  string

	koekjeURL  string // the consent server, revision 1
	koekjeURL2 string // the same store and keys, the site at revision 2
	hostURL    string // the website that embeds the banner
	dbPath     string
	store      *sqlite.DB // the servers' store
)

func TestMain(m *testing.M) {
	if slices.Contains(os.Environ(), asKoekje) {
		os.Exit(cli.Main())
	}
	// The browser tests spend most of their time waiting for the page, so
	// more of them than cores run at once, unless -parallel says otherwise.
	flag.Parse()
	set := false
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == "test.parallel" })
	if !set {
		flag.Set("test.parallel", "4")
	}
	code := run(m)
	pgtest.StopShared()
	os.Exit(code)
}

func run(m *testing.M) int {
	dir, err := os.MkdirTemp("", "koekje-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	tmpDir = dir

	stop, err := startServers(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer stop()
	defer stopBrowser()
	return m.Run()
}

var (
	tmpDir      string // the package's temporary directory, removed at the end
	browserOnce sync.Once
	browserErr  error // Chromium is there but did not start
	stopBrowser = func() {}
	axeOnce     sync.Once
	axeErr      error
)

// chromePath is the Chromium the tests run, once browser has found it.
var chromePath string

// chromeOptions are the flags every Chromium of the tests runs with.
func chromeOptions(chrome string) []chromedp.ExecAllocatorOption {
	return append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chrome),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-site-isolation-trials", true),
		chromedp.Flag("disable-features", "Translate,IsolateOrigins,site-per-process,LocalNetworkAccessChecks"),
		chromedp.Flag("host-resolver-rules", "MAP "+hostName+" 127.0.0.1, MAP *.localhost 127.0.0.1, MAP * ~NOTFOUND, EXCLUDE 127.0.0.1, EXCLUDE localhost"),
		chromedp.Env("TMPDIR="+tmpDir, "XDG_CONFIG_HOME="+tmpDir, "XDG_CACHE_HOME="+tmpDir),
	)
}

// browser starts the package's one Chromium the first time a test needs
// it, so a run of tests that need none starts none. Without Chromium the
// test skips with an install hint, except under CI=true, where it fails.
func browser(t testing.TB) context.Context {
	t.Helper()
	browserOnce.Do(func() {
		chrome := os.Getenv("CHROME_PATH")
		if chrome == "" {
			chrome = "/usr/bin/chromium"
		}
		chromePath = chrome
		if _, err := os.Stat(chrome); err != nil {
			skipReason = fmt.Sprintf("no Chromium at %s: install it with `apt-get install -y chromium` or set CHROME_PATH", chrome)
			return
		}
		opts := append(chromeOptions(chrome), chromedp.UserDataDir(filepath.Join(tmpDir, "profile")))
		allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
		ctx, cancel := chromedp.NewContext(allocCtx)
		stopBrowser = func() { cancel(); cancelAlloc() }
		if err := chromedp.Do(ctx); err != nil {
			browserErr = fmt.Errorf("start Chromium: %w", err)
			return
		}
		browserCtx = ctx
	})
	if skipReason != "" {
		if os.Getenv("CI") == "true" {
			t.Fatal(skipReason)
		}
		t.Skip(skipReason)
	}
	if browserErr != nil {
		t.Fatal(browserErr)
	}
	return browserCtx
}

// axeScript is axe-core's source, read the first time a test asks.
func axeScript(t testing.TB) string {
	t.Helper()
	axeOnce.Do(func() { axeSource, axeErr = loadAxe() })
	if axeErr != nil {
		t.Fatal(axeErr)
	}
	return axeSource
}

// loadAxe reads axe-core from e2e/node_modules, installing it with npm
// first when it is missing (.ci/run does that too).
func loadAxe() (string, error) {
	path := filepath.Join("node_modules", "axe-core", "axe.min.js")
	if _, err := os.Stat(path); err != nil {
		cmd := exec.Command("npm", "ci", "--no-audit", "--no-fund", "--loglevel=error")
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			return "", fmt.Errorf("axe-core is missing and `npm ci` in e2e/ failed (%v); install Node.js and npm", err)
		}
	}
	b, err := os.ReadFile(path)
	return string(b), err
}

// startServers starts two consent servers on one store (revision 1 and 2 of
// the demo site, so a revision bump can be tested) and the host website.
func startServers(dir string) (func(), error) {
	dbPath = filepath.Join(dir, "koekje.db")
	db, err := sqlite.Open(dbPath, nil)
	if err != nil {
		return nil, err
	}
	store = db
	key := bytes.Repeat([]byte{42}, 64)
	keys, err := proof.OpenKeys(context.Background(), db)
	if err != nil {
		return nil, err
	}
	var servers []*httptest.Server
	for _, rev := range []int{1, 2} {
		cfg := config.Demo()
		cfg.Sites[0].Revision = rev
		cfg.Sites[0].Origins = append(cfg.Sites[0].Origins, "http://"+hostName+":*")
		cfg.Sites = append(cfg.Sites, layoutSites(cfg.Sites[0])...)
		cfg.Sites = append(cfg.Sites, irishSite(rev))
		cfg.Sites = append(cfg.Sites, polyglotSite(rev), sixPartySite(rev), pixelSite(rev), domainSite(rev), registerSite("formal", rev), registerSite("informal", rev))
		cfg.Sites = append(cfg.Sites, wildcardSite(rev), elsewhereSite(rev), scheduledSite(rev))
		ts := httptest.NewUnstartedServer(nil)
		srv, err := server.New(context.Background(), server.Deps{
			Config: cfg, Store: db, Keys: keys, TokenKey: key, AdminToken: "e2e-admin",
			PublicURL: "http://" + ts.Listener.Addr().String(),
		})
		if err != nil {
			return nil, err
		}
		ts.Config.Handler = srv
		ts.Start()
		servers = append(servers, ts)
	}
	koekjeURL, koekjeURL2 = servers[0].URL, servers[1].URL
	host := httptest.NewServer(http.HandlerFunc(hostPage))
	u, _ := url.Parse(host.URL)
	hostURL = "http://" + hostName + ":" + u.Port()
	return func() {
		host.Close()
		for _, s := range servers {
			s.Close()
		}
		db.Close()
	}, nil
}

// layoutSites are the demo site again in the other layouts, and once with
// a brand's own colours, its settings button always on in another corner.
func layoutSites(demo *config.Site) []*config.Site {
	site := func(id, layout, pos string) *config.Site {
		s := *demo
		s.ID, s.Banner.Layout, s.Banner.Position = id, layout, pos
		return &s
	}
	brand := site("brand", "box", "bottom-left")
	brand.Banner.Colors = config.Colors{
		Light: config.Palette{Accent: "#7c2d12", Text: "#2b2118", Background: "#fff8f0"},
		Dark:  config.Palette{Accent: "#fdba74", Text: "#fef3e2", Background: "#231a12"},
	}
	x, y := 24, 96
	brand.Banner.SettingsButton = config.SettingsButton{Show: "always", Position: "bottom-right", OffsetX: &x, OffsetY: &y}
	return []*config.Site{site("bar", "bar", "bottom"), site("bartop", "bar", "top"), site("modal", "modal", "center"), brand}
}

// hostPage is a small website on another origin than the consent server,
// embedding the banner as DESIGN.md shows, under a strict CSP (no inline
// script or style without its nonce). Query: lang (html lang), rev=2 (the
// revision-2 server), dark=1 (a dark host theme the banner must not
// inherit), hostile=1 (CSS that attacks the banner), small=1 (a small
// frame with content below it), tail=1 (the banner script after the frames),
// site=ID (another site's banner: bar, bartop, modal, brand), nolink=1 (no
// data-koekje-settings link on the page), noembeds=1 and nodecl=1 (no
// blocked frames, no declaration), decl=tag (the banner's tag carries
// data-koekje-declaration, as earlier versions asked pages with a
// declaration to do), csp=nonce (a policy of nonces and
// 'strict-dynamic' alone, the banner's tag carrying the nonce), wide=1 (a
// page 1,200 px wide, wider than a phone's screen), preview=1 (the tag
// of the console's preview), scrollbar=1 (scrollbars that take room, as on
// a desktop without overlay scrollbars).
func hostPage(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/host.css":
		w.Header().Set("Content-Type", "text/css")
		fmt.Fprint(w, `body{background:#111;color:#eee;font:22px/1.2 Georgia,serif}button,a,p,h2{font:22px Georgia,serif!important;color:#f0f!important;letter-spacing:3px}iframe{display:block}`)
		return
	case "/wide.css":
		w.Header().Set("Content-Type", "text/css")
		fmt.Fprint(w, `main{width:1200px}`)
		return
	case "/scrollbar.css":
		w.Header().Set("Content-Type", "text/css")
		fmt.Fprint(w, `::-webkit-scrollbar{width:15px;height:15px;background:#ddd}::-webkit-scrollbar-thumb{background:#888}`)
		return
	case "/hostile.css":
		w.Header().Set("Content-Type", "text/css")
		fmt.Fprint(w, hostileCSS)
		return
	case "/":
	default:
		http.NotFound(w, r)
		return
	}
	q := r.URL.Query()
	lang := q.Get("lang")
	if lang == "" {
		lang = "nl"
	}
	base := koekjeURL
	if q.Get("rev") == "2" {
		base = koekjeURL2
	}
	var head string
	if q.Get("dark") == "1" {
		head += `<link rel="stylesheet" href="/host.css">`
	}
	if q.Get("scrollbar") == "1" {
		head += `<link rel="stylesheet" href="/scrollbar.css">`
	}
	if q.Get("wide") == "1" {
		head += `<link rel="stylesheet" href="/wide.css">`
	}
	if q.Get("hostile") == "1" {
		head += `<link rel="stylesheet" href="/hostile.css">`
	}
	site := q.Get("site")
	if site == "" {
		site = "demo"
	}
	csp := "script-src 'nonce-e2e' " + base + " https://www.googletagmanager.com"
	nonce := ""
	if q.Get("csp") == "nonce" {
		csp, nonce = "script-src 'nonce-e2e' 'strict-dynamic'", ` nonce="e2e"`
	}
	if q.Get("preview") == "1" {
		nonce += " data-koekje-preview"
	}
	if q.Get("decl") == "tag" {
		nonce += " data-koekje-declaration"
	}
	banner := fmt.Sprintf(`<script src="%s/s/%s.js"%s></script>`, base, url.PathEscape(site), nonce)
	link := `<p><a href="#" id="settings" data-koekje-settings>Cookie-instellingen</a></p>`
	if q.Get("nolink") == "1" {
		link = `<p><a href="#top" id="top">Naar boven</a></p>`
	}
	tail := ""
	if q.Get("tail") == "1" {
		banner, tail = "", banner
	}
	small := ""
	if q.Get("small") == "1" {
		small = `<iframe data-category="embeds" data-service="linkedin" data-src="https://www.linkedin.com/embed/x" title="Volgen" width="200" height="60"></iframe><p id="after">Daaronder.</p>`
	}
	embeds := `<iframe data-category="embeds" data-service="youtube" data-src="https://www.youtube-nocookie.com/embed/abc" title="Video" width="560" height="315"></iframe>
<iframe data-category="embeds" data-service="google-maps" data-src="https://www.google.com/maps/embed?pb=x" title="Kaart" width="400" height="300"></iframe>`
	if q.Get("noembeds") == "1" {
		embeds = ""
	}
	decl := `<div data-koekje-declaration></div>`
	if q.Get("nodecl") == "1" {
		decl = ""
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Security-Policy", "default-src 'self'; "+csp+"; connect-src "+base+"; style-src 'self'; frame-src https:; img-src 'self' data:")
	fmt.Fprintf(w, `<!doctype html>
<html lang="%s"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>Belvast test</title>%s
%s
<script type="text/plain" data-category="analytics" data-service="google-analytics" src="https://www.googletagmanager.com/gtag/js?id=G-TEST"></script>
<script type="text/plain" data-category="analytics" nonce="e2e">window.inlineRuns = (window.inlineRuns || 0) + 1</script>
</head><body>
<main><h1>Belvast</h1><p>Zakelijke telefonie.</p>
%s
%s
%s
%s</main>
%s
</body></html>`, lang, head, banner, embeds, small, decl, link, tail)
}

// hostileCSS is what unfriendly pages do to a banner: reset every element
// (the banner's host too), scale rem, turn the text direction and make body
// the containing block of anything fixed.
const hostileCSS = `* { all: unset }
html { font-size: 8px; direction: rtl }
body { display: block; transform: translateX(0); overflow: hidden; height: 120px }
iframe { display: block }
`

// thirdParty answers an intercepted request to anyone but us. The analytics
// stub sets _ga cookies on the parent domain, as the real one does.
func thirdParty(u *url.URL) (status int64, contentType, body string) {
	switch {
	case strings.HasSuffix(u.Host, "googletagmanager.com") && u.Path == "/gtm.js":
		return 200, "text/javascript", gtmStandIn
	case strings.HasSuffix(u.Host, "googletagmanager.com"):
		return 200, "text/javascript", `window.gaLoads = (window.gaLoads || 0) + 1;
document.cookie = '_ga=GA1.1.42.1700000000; path=/; domain=belvast.test';
document.cookie = '_ga_TEST=GS1.1.1700000000; path=/; domain=belvast.test';
document.cookie = '_ga_HOST=GS1.1.1; path=/';`
	case strings.Contains(u.Host, "youtube") || strings.HasSuffix(u.Host, "google.com") || strings.HasSuffix(u.Host, "linkedin.com"):
		return 200, "text/html", `<!doctype html><title>embed</title><p>embedded</p>`
	}
	return 404, "text/plain", ""
}

// request is one request the page made, as the interceptor saw it.
type request struct {
	Method, URL string
	ThirdParty  bool
}

// tab is one test's browser context with its request log.
type tab struct {
	t   testing.TB
	ctx context.Context
	mu  sync.Mutex
	log []request
	// refuse makes the consent server look down: a consent POST gets a 503.
	// The first one still reaches the server, which records it; only its
	// answer is lost, as when a connection breaks after the write.
	refuse, reached bool
	// failMore makes the banner's second part fail to load, as on a
	// network that drops it; delayMore holds it back that long, as a slow
	// one does.
	failMore  bool
	delayMore time.Duration
}

// secondPart matches the address of a banner's second part.
var secondPart = regexp.MustCompile(`/s/[a-z0-9_-]+\.[0-9a-f]{16}\.js$`)

type tabOption func(*tab) error

// withGPC makes navigator.globalPrivacyControl true, as in a browser with
// Global Privacy Control switched on.
func withGPC(tb *tab) error {
	_, err := chromedp.Call(tb.ctx, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{
		Source: `Object.defineProperty(Navigator.prototype, 'globalPrivacyControl', {get: () => true})`,
	})
	return err
}

func newTab(t testing.TB, opts ...tabOption) *tab {
	t.Helper()
	ctx, cancel := chromedp.NewContext(browser(t), chromedp.WithNewBrowserContext())
	t.Cleanup(cancel)
	if err := chromedp.Do(ctx); err != nil {
		t.Fatal(err)
	}
	tctx, tcancel := context.WithTimeout(ctx, 60*time.Second)
	t.Cleanup(tcancel)
	tb := &tab{t: t, ctx: tctx}
	t.Cleanup(tb.screenshotOnFailure)
	paused := chromedp.Events(ctx, fetch.RequestPaused)
	go tb.intercept(ctx, paused)
	if _, err := chromedp.Call(ctx, fetch.Enable, fetch.EnableParams{Patterns: []*fetch.RequestPattern{{URLPattern: "*"}}}); err != nil {
		t.Fatal(err)
	}
	for _, o := range opts {
		if err := o(tb); err != nil {
			t.Fatal(err)
		}
	}
	return tb
}

// screenshotOnFailure saves what the page showed when a test failed, in
// $E2E_SCREENSHOTS or the temporary directory, and names the file.
func (tb *tab) screenshotOnFailure() {
	if !tb.t.Failed() {
		return
	}
	dir := os.Getenv("E2E_SCREENSHOTS")
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "koekje-e2e-screenshots")
	}
	ctx, cancel := context.WithTimeout(tb.ctx, 10*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		tb.t.Logf("no screenshot: %v", err)
		return
	}
	os.MkdirAll(dir, 0o755)
	name := filepath.Join(dir, strings.NewReplacer("/", "_", " ", "_").Replace(tb.t.Name())+".png")
	if err := os.WriteFile(name, png, 0o644); err == nil {
		tb.t.Logf("screenshot of the failure: %s", name)
	}
}

func (tb *tab) intercept(ctx context.Context, paused iter.Seq2[fetch.EventRequestPaused, error]) {
	for ev, err := range paused {
		if err != nil {
			return
		}
		u, perr := url.Parse(ev.Request.URL)
		ours := perr == nil && (u.Hostname() == "127.0.0.1" || u.Hostname() == hostName || u.Hostname() == "localhost" || strings.HasSuffix(u.Hostname(), ".localhost"))
		if ev.ResponseStatusCode == 0 {
			tb.mu.Lock()
			tb.log = append(tb.log, request{Method: ev.Request.Method, URL: ev.Request.URL, ThirdParty: !ours})
			tb.mu.Unlock()
		}
		post := ev.Request.Method == "POST" && strings.HasSuffix(u.Path, "/consents")
		tb.mu.Lock()
		refuse, respond := tb.refuse && post, ev.ResponseStatusCode != 0
		more := !respond && perr == nil && secondPart.MatchString(u.Path)
		failMore, delayMore := tb.failMore && more, tb.delayMore
		if refuse && !respond && !tb.reached {
			tb.reached, refuse = true, false
		}
		tb.mu.Unlock()
		switch {
		case failMore:
			chromedp.Call(ctx, fetch.FailRequest, fetch.FailRequestParams{RequestID: ev.RequestID, ErrorReason: network.ErrorReasonConnectionReset})
			continue
		case refuse:
			chromedp.Call(ctx, fetch.FulfillRequest, fetch.FulfillRequestParams{
				RequestID: ev.RequestID, ResponseCode: 503, Body: []byte(`{"error":{"code":"unavailable","message":"down"}}`),
				ResponseHeaders: []*fetch.HeaderEntry{{Name: "Content-Type", Value: "application/json"}, {Name: "Access-Control-Allow-Origin", Value: hostURL}},
			})
			continue
		case respond:
			chromedp.Call(ctx, fetch.ContinueResponse, fetch.ContinueResponseParams{RequestID: ev.RequestID})
			continue
		case more && delayMore > 0:
			go func(id fetch.RequestID) {
				time.Sleep(delayMore)
				chromedp.Call(ctx, fetch.ContinueRequest, fetch.ContinueRequestParams{RequestID: id})
			}(ev.RequestID)
			continue
		case ours:
			chromedp.Call(ctx, fetch.ContinueRequest, fetch.ContinueRequestParams{RequestID: ev.RequestID})
			continue
		}
		status, ct, body := thirdParty(u)
		chromedp.Call(ctx, fetch.FulfillRequest, fetch.FulfillRequestParams{
			RequestID: ev.RequestID, ResponseCode: status, Body: []byte(body),
			ResponseHeaders: []*fetch.HeaderEntry{{Name: "Content-Type", Value: ct}},
		})
	}
}

// requests returns the requests so far whose URL contains substr.
func (tb *tab) requests(substr string, thirdPartyOnly bool) []request {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	var out []request
	for _, r := range tb.log {
		if strings.Contains(r.URL, substr) && (!thirdPartyOnly || r.ThirdParty) {
			out = append(out, r)
		}
	}
	return out
}

func (tb *tab) do(actions ...chromedp.Action[chromedp.Void]) {
	tb.t.Helper()
	if err := chromedp.Do(tb.ctx, actions...); err != nil {
		tb.t.Fatal(err)
	}
}

func (tb *tab) open(path string) {
	tb.t.Helper()
	tb.do(chromedp.Navigate(hostURL + path))
}

// eval runs JavaScript in the page and decodes its result.
func eval[T any](tb *tab, js string) T {
	tb.t.Helper()
	v, err := chromedp.Run(tb.ctx, chromedp.Evaluate[T](js, chromedp.EvalAwaitPromise))
	if err != nil {
		tb.t.Fatalf("eval %s: %v", js, err)
	}
	return v
}

// poll checks cond every few milliseconds until it holds or 10 s have
// passed, and reports whether it held.
func poll(cond func() bool) bool {
	deadline := time.Now().Add(10 * time.Second)
	for tick := time.NewTicker(10 * time.Millisecond); ; <-tick.C {
		if cond() {
			tick.Stop()
			return true
		}
		if time.Now().After(deadline) {
			tick.Stop()
			return false
		}
	}
}

// waitFor waits until a JavaScript condition is true. The page checks it
// every few milliseconds itself and answers once, so a wait costs one call
// to the browser; a navigation that replaces the page makes it ask again.
func (tb *tab) waitFor(js string) {
	tb.t.Helper()
	waiter := `new Promise(done => { const end = performance.now() + 2000; (function check() {
		let ok = false; try { ok = !!(` + js + `) } catch (e) {}
		if (ok || performance.now() > end) done(ok); else setTimeout(check, 5) })() })`
	if !poll(func() bool {
		ok, err := chromedp.Run(tb.ctx, chromedp.Evaluate[bool](waiter, chromedp.EvalAwaitPromise))
		return err == nil && ok
	}) {
		tb.t.Fatalf("timed out waiting for %s", js)
	}
}

// Shadow DOM lookups of the banner.
const (
	bannerRoot = `document.querySelector('koekje-banner')?.shadowRoot`
	bannerOpen = bannerRoot + `?.querySelector('.k')`
)

// button finds a button of the banner by its text, as a JS path for clicks.
func button(text string) string {
	return fmt.Sprintf(`[...%s.querySelectorAll('button')].find(b => b.textContent === %q)`, bannerRoot, text)
}

// click clicks the element at a JS path like a user does, with the mouse.
func (tb *tab) click(jsPath string) {
	tb.t.Helper()
	tb.waitFor(jsPath)
	tb.do(chromedp.Click(chromedp.JSPath(jsPath)))
}

// consentID waits until the banner knows its consent ID (the server's
// answer arrived) and returns it.
func (tb *tab) consentID() uuid.UUID {
	tb.t.Helper()
	tb.waitFor(`window.koekje && koekje.consentId()`)
	id, err := uuid.Parse(eval[string](tb, `koekje.consentId()`))
	if err != nil {
		tb.t.Fatal(err)
	}
	return id
}

// records counts stored records, optionally of one action.
func records(t *testing.T, where string, args ...any) int {
	t.Helper()
	db, err := sql.Open("sqlite3", "file:"+dbPath+"?_query_only=true&_busy_timeout=5000")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	q := "SELECT count(*) FROM records"
	if where != "" {
		q += " WHERE " + where
	}
	if err := db.QueryRow(q, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// waitRecords waits until the store holds want records matching where.
func waitRecords(t *testing.T, want int, where string, args ...any) {
	t.Helper()
	got := 0
	if !poll(func() bool { got = records(t, where, args...); return got == want }) {
		t.Fatalf("%d records where %s, want %d", got, where, want)
	}
}
