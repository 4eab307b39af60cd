package scan_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/koekje/koekje/config"
	"github.com/koekje/koekje/server"
	"github.com/koekje/koekje/server/proof"
	"github.com/koekje/koekje/server/scan"
	"github.com/koekje/koekje/server/sqlite"
)

var (
	chrome     string
	skipReason string
	cfg        *config.Config
	koekjeURL  string // the real consent server: the demo site, and the shop's banner
	shopURL    string // http://www.shop.test:<port>
	shopLocal  string // the same server as http://127.0.0.1:<port>, for Go's own client
	videoURL   string // http://video.test:<port>, a third party
	dbPath     string
	rules      string
)

// shared is the Chromium the tests share, each scan's profiles in browser
// contexts of their own (koekje scan's test covers a scan that starts its
// own), started on first use: a run of the unit tests alone does not.
var (
	sharedOnce sync.Once
	shared     *scan.Browser
	sharedErr  error
)

func sharedBrowser(tb testing.TB) *scan.Browser {
	tb.Helper()
	sharedOnce.Do(func() {
		shared, sharedErr = scan.StartBrowser(context.Background(), scan.Options{Chrome: chrome, HostResolverRules: rules})
	})
	if sharedErr != nil {
		tb.Fatal(sharedErr)
	}
	return shared
}

func TestMain(m *testing.M) {
	chrome = scan.ChromePath(os.Getenv)
	if _, err := os.Stat(chrome); err != nil {
		skipReason = fmt.Sprintf("no Chromium at %s: install it with `apt-get install -y chromium` or set CHROME_PATH", chrome)
		if os.Getenv("CI") == "true" {
			fmt.Fprintln(os.Stderr, "scan:", skipReason)
			os.Exit(1)
		}
		os.Exit(m.Run())
	}
	stop, err := start()
	if err != nil {
		fmt.Fprintln(os.Stderr, "scan:", err)
		os.Exit(1)
	}
	code := m.Run()
	if shared != nil {
		shared.Close()
	}
	stop()
	os.Exit(code)
}

// start runs the real Koekje server (the demo site and the shop) on a
// fresh database, the shop's website and a third-party video site.
func start() (func(), error) {
	dir, err := os.MkdirTemp("", "koekje-scan-test-")
	if err != nil {
		return nil, err
	}
	dbPath = filepath.Join(dir, "koekje.db")
	db, err := sqlite.Open(dbPath, nil)
	if err != nil {
		return nil, err
	}
	keys, err := proof.OpenKeys(context.Background(), db)
	if err != nil {
		return nil, err
	}
	shop, err := config.LoadFile("testdata/shop.yaml")
	if err != nil {
		return nil, err
	}
	cfg = config.Demo()
	cfg.Sites = append(cfg.Sites, shop.Sites...)
	ks := httptest.NewUnstartedServer(nil)
	srv, err := server.New(context.Background(), server.Deps{
		Config: cfg, Store: db, Keys: keys, TokenKey: bytes.Repeat([]byte{7}, 64), AdminToken: "scan-test-admin-token-0123456789",
		PublicURL: "http://" + ks.Listener.Addr().String(),
	})
	if err != nil {
		return nil, err
	}
	ks.Config.Handler = srv
	ks.Start()
	koekjeURL = ks.URL

	host := httptest.NewServer(http.HandlerFunc(shopPage))
	video := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprint(w, `<!doctype html><title>Video</title><p>A video player.</p>`)
	}))
	bad := httptest.NewServer(http.HandlerFunc(hostilePage))
	hostileURL, hostileLocal = "http://www.shop.test:"+port(bad.URL), bad.URL
	shopURL = "http://www.shop.test:" + port(host.URL)
	shopLocal = host.URL
	videoURL = "http://video.test:" + port(video.URL)
	rules = "MAP www.shop.test 127.0.0.1, MAP video.test 127.0.0.1, MAP * ~NOTFOUND, EXCLUDE 127.0.0.1, EXCLUDE localhost"
	return func() {
		host.Close()
		bad.Close()
		video.Close()
		ks.Close()
		db.Close()
		os.RemoveAll(dir)
	}, nil
}

func port(u string) string {
	p, _ := url.Parse(u)
	return p.Port()
}

// shopPage serves the shop: every page embeds the banner as the README
// says, plus what its path is about.
func shopPage(w http.ResponseWriter, r *http.Request) {
	var body string
	switch p := r.URL.Path; {
	case p == "/ga-early.js":
		// A tag pasted into the page without data-category: it runs at once.
		w.Header().Set("Content-Type", "text/javascript")
		fmt.Fprint(w, `document.cookie = '_ga=GA1.1.12345.67890; max-age=63072000; path=/; samesite=lax'`)
		return
	case p == "/track.js":
		// A tracker whose cookie comes with the script, in a header.
		w.Header().Set("Content-Type", "text/javascript")
		w.Header().Add("Set-Cookie", "_fbp=fb.1.1700000000.42; Max-Age=7776000; Path=/; SameSite=Lax")
		fmt.Fprint(w, `window.tracked = true`)
		return
	case p == "/ga.js":
		// The analytics stand-in, run once statistics are granted.
		w.Header().Set("Content-Type", "text/javascript")
		fmt.Fprint(w, `document.cookie = '_ga=GA1.1.1.2; max-age=63072000; path=/'; document.cookie = '_ga_SHOP1=GS1.1.3; max-age=63072000; path=/'`)
		return
	case p == "/sitemap.xml":
		w.Header().Set("Content-Type", "application/xml")
		fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?>
<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"><url><loc>%s/site/3</loc></url><url><loc>%s/site/5</loc></url></urlset>`, shopURL, shopURL)
		return
	case p == "/ga-early":
		body = `<script src="/ga-early.js"></script>`
	case p == "/iframe-early":
		body = `<iframe src="` + videoURL + `/embed/abc" title="Video" width="320" height="180"></iframe>`
	case p == "/undeclared":
		body = `<script type="text/plain" data-category="marketing" src="/track.js"></script>`
	case p == "/prefs":
		body = `<script type="text/plain" data-category="functional">document.cookie = 'prefs=dark; max-age=63072000; path=/'</script>`
	case p == "/nobanner":
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, `<!doctype html><html lang="en"><title>No banner</title><p>Nothing asks.</p>`)
		return
	case strings.HasPrefix(p, "/site/"):
		// A 20-page site: each page links to every other one.
		body = `<script type="text/plain" data-category="analytics" src="/ga.js"></script><nav>`
		for i := 1; i <= 20; i++ {
			body += fmt.Sprintf(`<a href="/site/%d#top">Page %d</a> `, i, i)
		}
		body += `</nav>`
	default:
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	fmt.Fprintf(w, `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Shop</title>
<script src="%s/s/shop.js"></script></head><body><h1>Shop</h1>%s
<p><a href="https://www.shop.test/privacy">Privacy</a></p></body></html>`, koekjeURL, body)
}

// run scans site's pages in the shared browser.
func run(t *testing.T, site string, pages int, urls ...string) *scan.Report {
	t.Helper()
	return runWith(t, site, scan.Options{URLs: urls, Pages: pages})
}

// runWith scans site as o says, in the shared browser.
func runWith(t *testing.T, site string, o scan.Options) *scan.Report {
	t.Helper()
	if skipReason != "" {
		t.Skip(skipReason)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	o.Site, o.Browser = cfg.Site(site), sharedBrowser(t)
	r, err := scan.Run(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range r.Profiles {
		for _, v := range p.Visits {
			if v.Status != scan.StatusScanned {
				t.Logf("%s profile: %s: %s", p.Name, v.Page, v.Error)
			}
		}
	}
	if t.Failed() || testing.Verbose() {
		var b strings.Builder
		r.Write(&b, "text", false)
		t.Log("\n" + b.String())
	}
	return r
}

// brief writes findings as "kind profile name-or-host page-path set-by source-path".
func brief(fs []scan.Finding) []string {
	path := func(u string) string {
		if p, err := url.Parse(u); err == nil && p.Host != "" {
			return p.Path
		}
		return u
	}
	var out []string
	for _, f := range fs {
		name := f.Name
		if f.Kind == scan.KindRequest {
			name = f.Domain
		}
		s := strings.Join([]string{f.Kind, f.Profile, name, path(f.Page), f.SetBy, path(f.Source)}, " ")
		out = append(out, strings.TrimSpace(strings.Join(strings.Fields(s), " ")))
	}
	slices.Sort(out)
	return out
}

func same(t *testing.T, what string, got, want []string) {
	t.Helper()
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("%s:\ngot  %q\nwant %q", what, got, want)
	}
}

func names(cs []scan.Cookie) []string {
	var out []string
	for _, c := range cs {
		out = append(out, c.Name)
	}
	slices.Sort(out)
	return out
}

func TestDemoScansClean(t *testing.T) {
	t.Parallel()
	r := run(t, "demo", 1, koekjeURL+"/")
	same(t, "violations", brief(r.Violations), nil)
	same(t, "undeclared", brief(r.Undeclared), nil)
	before, rejected, accepted := r.Profiles[0], r.Profiles[1], r.Profiles[2]
	if len(before.Banners) != 1 || !before.Banners[0].Shown || !before.Banners[0].Reject || before.Banners[0].Lang != "nl" {
		t.Errorf("banner: %+v", before.Banners)
	}
	// The scan really chose: the banner's cookie in both choice profiles,
	// the analytics stand-in's cookies only after acceptance.
	same(t, "cookies before", names(before.Cookies), nil)
	same(t, "cookies after reject", names(rejected.Cookies), []string{"koekje"})
	same(t, "cookies after accept", names(accepted.Cookies), []string{"_ga", "_ga_BELVAST01", "koekje"})
	for _, c := range accepted.Cookies {
		if c.Name == "_ga" && (c.SetBy != "script" || !strings.HasSuffix(c.Source, "/demo/analytics.js") || c.ThirdParty) {
			t.Errorf("_ga: %+v, want set by script /demo/analytics.js, first party", c)
		}
	}
	// The embeds load only after acceptance (and fail: no network here).
	if len(accepted.Requests) == 0 {
		t.Error("no third-party request after acceptance: the embeds did not load")
	}
	// One POST per choice, answered by the scanner: nothing recorded.
	if before.ConsentPOSTs != 0 || rejected.ConsentPOSTs != 1 || accepted.ConsentPOSTs != 1 {
		t.Errorf("consent POSTs: %d, %d, %d; want 0, 1, 1", before.ConsentPOSTs, rejected.ConsentPOSTs, accepted.ConsentPOSTs)
	}
	db, err := sql.Open("sqlite3", "file:"+dbPath+"?_query_only=true&_busy_timeout=5000")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRow("SELECT count(*) FROM records").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("the store holds %d records after scans; a scan must record nothing", n)
	}
	// Declared but never seen here: the embeds' cookies (no network), the
	// comment form's.
	if !slices.Contains(brief(r.Stale), "unseen VISITOR_INFO1_LIVE") {
		t.Errorf("stale: %q", brief(r.Stale))
	}
	if !r.Clean(false) {
		t.Error("not clean")
	}
}

func TestTagSettingGABeforeConsent(t *testing.T) {
	t.Parallel()
	r := run(t, "shop", 1, shopURL+"/ga-early")
	same(t, "violations", brief(r.Violations), []string{
		"cookie before _ga /ga-early script /ga-early.js",
		"cookie rejected _ga /ga-early script /ga-early.js",
	})
	for _, f := range r.Violations {
		if f.Category != "analytics" {
			t.Errorf("%s: category %q, want analytics", f.Message, f.Category)
		}
	}
	same(t, "undeclared", brief(r.Undeclared), nil)
	if r.Clean(false) {
		t.Error("clean with violations")
	}
}

func TestIframeBeforeConsent(t *testing.T) {
	t.Parallel()
	r := run(t, "shop", 1, shopURL+"/iframe-early")
	same(t, "violations", brief(r.Violations), []string{
		"request before video.test /iframe-early /iframe-early",
		"request rejected video.test /iframe-early /iframe-early",
	})
	for _, f := range r.Violations {
		if f.URL != videoURL+"/embed/abc" || f.Count != 1 {
			t.Errorf("%+v: want one request to %s/embed/abc", f, videoURL)
		}
	}
}

func TestUndeclaredAfterAcceptance(t *testing.T) {
	t.Parallel()
	r := run(t, "shop", 1, shopURL+"/undeclared")
	same(t, "violations", brief(r.Violations), nil)
	same(t, "undeclared", brief(r.Undeclared), []string{"cookie accepted _fbp /undeclared header /track.js"})
	sg := r.Undeclared[0].Suggestion
	if sg == nil || !sg.Known || sg.Service != "facebook-pixel" || sg.Category != "marketing" || sg.Duration != "3mo" {
		t.Fatalf("suggestion %+v, want facebook-pixel, marketing, 3mo", sg)
	}
	// The suggested entry is valid config.
	entry := "sites:\n  - id: x\n    name: X\n    controller: {organisation: X, email: x@x.test, privacy_policy: https://x.test/p}\n" +
		"    origins: [self]\n    languages: [en]\n    categories:\n      - {id: necessary, required: true, title: {en: N}, description: {en: N}}\n" +
		"      - {id: marketing, title: {en: M}, description: {en: M}}\n    services:\n" + indent(sg.YAML, "      ")
	if _, err := config.Load("suggested.yaml", strings.NewReader(entry)); err != nil {
		t.Errorf("the suggested entry does not load: %v\n%s", err, entry)
	}
	if r.Clean(false) != true || r.Clean(true) != false {
		t.Error("undeclared must fail only with --strict")
	}
}

func indent(s, by string) string {
	var b strings.Builder
	for line := range strings.SplitSeq(strings.TrimRight(s, "\n"), "\n") {
		b.WriteString(by + line + "\n")
	}
	return b.String()
}

func TestDeclaredDurationDiffers(t *testing.T) {
	t.Parallel()
	r := run(t, "shop", 1, shopURL+"/prefs")
	same(t, "violations", brief(r.Violations), nil)
	same(t, "undeclared", brief(r.Undeclared), nil)
	var got []scan.Finding
	for _, f := range r.Stale {
		if f.Kind == scan.KindDuration {
			got = append(got, f)
		}
	}
	same(t, "durations", brief(got), []string{"duration accepted prefs /prefs script /prefs"})
	// Config says a year, the cookie asks for two (Chromium keeps it 400 days).
	if len(got) == 1 && (got[0].Declared != "1y" || !strings.HasPrefix(got[0].Actual, "2 years")) {
		t.Errorf("declared %q, actual %q; want 1y and 2 years", got[0].Declared, got[0].Actual)
	}
	// The banner's own cookie lives the 6 months it is declared for.
	for _, f := range r.Stale {
		if f.Name == "koekje" {
			t.Errorf("koekje: %s", f.Message)
		}
	}
}

func TestMissingBanner(t *testing.T) {
	t.Parallel()
	// The choice profiles wait for a button that never comes: 1 s, not
	// the 20 s a page of a real site gets.
	r := runWith(t, "shop", scan.Options{URLs: []string{shopURL + "/nobanner"}, Pages: 1, BannerTimeout: time.Second})
	// The choice profiles could not choose: they saw nothing, and say so.
	same(t, "violations", brief(r.Violations), []string{"banner before /nobanner", "error accepted /nobanner", "error rejected /nobanner"})
	for _, p := range r.Profiles[1:] {
		if len(p.Visits) != 1 || !p.Visits[0].Choice || p.Visits[0].Status != scan.StatusError || !strings.Contains(p.Visits[0].Error, "button in the banner") {
			t.Errorf("%s: visits %+v, want one failed choice", p.Name, p.Visits)
		}
	}
	if v := r.Verdict(false); v != scan.VerdictFail {
		t.Errorf("verdict %s, want fail: a violation was seen", v)
	}
}

// TestFollowsLinks scans a site of 20 linked pages up to a few, found by
// following links from one page, and reports in all three formats.
// BenchmarkTwentyPages times the scan of all 20.
func TestFollowsLinks(t *testing.T) {
	t.Parallel()
	const pages = 4
	r := runWith(t, "shop", scan.Options{URLs: []string{shopURL + "/site/1"}, Pages: pages})
	if len(r.Pages) != pages || len(r.Profiles[1].Pages) != pages || len(r.Profiles[2].Pages) != pages {
		t.Errorf("pages: %d, %d, %d; want %d in each profile", len(r.Pages), len(r.Profiles[1].Pages), len(r.Profiles[2].Pages), pages)
	}
	if !r.Clean(false) {
		t.Errorf("violations: %q", brief(r.Violations))
	}
	same(t, "accepted cookies", names(r.Profiles[2].Cookies), []string{"_ga", "_ga_SHOP1", "koekje"})

	var js bytes.Buffer
	if err := r.Write(&js, "json", false); err != nil {
		t.Fatal(err)
	}
	var back scan.Report
	if err := json.Unmarshal(js.Bytes(), &back); err != nil || len(back.Pages) != pages {
		t.Errorf("json: %v, %d pages", err, len(back.Pages))
	}
	var ju bytes.Buffer
	if err := r.Write(&ju, "junit", true); err != nil {
		t.Fatal(err)
	}
	var suites struct {
		Tests    int `xml:"tests,attr"`
		Failures int `xml:"failures,attr"`
	}
	if err := xml.Unmarshal(ju.Bytes(), &suites); err != nil {
		t.Fatal(err)
	}
	// A case per page of each profile, one per choice and one per stale
	// declaration (prefs is never set), failing under --strict.
	if suites.Tests != 3*pages+2+len(r.Stale) || suites.Failures != len(r.Stale) || len(r.Stale) == 0 {
		t.Errorf("junit: %d tests, %d failures; %d stale", suites.Tests, suites.Failures, len(r.Stale))
	}
}

// A sitemap stands for the pages it lists.
func TestSitemap(t *testing.T) {
	t.Parallel()
	r := run(t, "shop", 2, shopLocal+"/sitemap.xml")
	want := []string{shopURL + "/site/3", shopURL + "/site/5"}
	for i, p := range r.Profiles {
		if !slices.Equal(p.Pages, want) {
			t.Errorf("profile %d pages %q, want %q", i, p.Pages, want)
		}
	}
	same(t, "violations", brief(r.Violations), nil)
}

// BenchmarkTwentyPages times the scan of a 20-page site found through its
// links, in the shared browser and in three browsers of its own, as koekje
// scan does: the figure the README quotes, taken on demand (go test
// ./server/scan -run '^$' -bench TwentyPages) rather than in every run. A
// time is not asserted: the machines are shared and noisy.
func BenchmarkTwentyPages(b *testing.B) {
	if skipReason != "" {
		b.Skip(skipReason)
	}
	for _, bc := range []struct {
		name string
		own  bool
	}{{"shared", false}, {"own", true}} {
		b.Run(bc.name, func(b *testing.B) {
			o := scan.Options{Site: cfg.Site("shop"), URLs: []string{shopURL + "/site/1"}, Pages: 20, Chrome: chrome, HostResolverRules: rules}
			if !bc.own {
				o.Browser = sharedBrowser(b)
			}
			for b.Loop() {
				r, err := scan.Run(context.Background(), o)
				if err != nil {
					b.Fatal(err)
				}
				if len(r.Pages) != 20 || len(r.Profiles[1].Pages) != 20 || len(r.Profiles[2].Pages) != 20 {
					b.Fatalf("pages: %d, %d, %d; want 20 in each profile", len(r.Pages), len(r.Profiles[1].Pages), len(r.Profiles[2].Pages))
				}
			}
		})
	}
}
