package chromium_test

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/koekje/koekje/server/scan"
	"github.com/koekje/koekje/server/scan/chromium"
)

// hostileURL is a site whose pages break a scan in every way they can:
// http://www.shop.test:<port>, served by hostilePage; hostileLocal is the
// same server at 127.0.0.1, for Go's own client.
var hostileURL, hostileLocal string

// download is the file /download offers, unique to the run.
var download = fmt.Sprintf("koekje scan test %d %d", os.Getpid(), time.Now().UnixNano())

// hostilePage serves the pages of hostileURL; each has the shop's banner.
func hostilePage(w http.ResponseWriter, r *http.Request) {
	var body string
	switch r.URL.Path {
	case "/ok":
		body = `<p>An ordinary page.</p>`
	case "/ok2":
		// Statistics, once accepted: proof that a profile's choice holds.
		body = `<script type="text/plain" data-category="analytics">document.cookie = '_ga=GA1.1.1.2; max-age=63072000; path=/'</script>`
	case "/alert":
		body = `<script>alert('Welkom!')</script><script>addEventListener('load', () => { confirm('Sure?'); prompt('Name?') })</script>`
	case "/big":
		// A request too large for the scanner to read, more storage keys
		// than it keeps, a console message it drops.
		body = `<script>
fetch('/ping?' + 'x'.repeat(3 << 20)).catch(() => {})
for (let i = 0; i < 1200; i++) localStorage.setItem('k' + i, '1')
console.log('y'.repeat(3 << 20))
</script>`
	case "/sitemap-mixed.xml":
		// What a sitemap may list besides the site's pages.
		w.Header().Set("Content-Type", "application/xml")
		fmt.Fprint(w, `<?xml version="1.0" encoding="UTF-8"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">`)
		for _, u := range []string{"file:///etc/", "chrome://version/", "javascript:alert(1)", "data:text/html,hi",
			"http://other.test/", "ftp://www.shop.test/", hostileURL + "/ok", hostileURL + "/ok2"} {
			fmt.Fprintf(w, `<url><loc>%s</loc></url>`, u)
		}
		fmt.Fprint(w, `</urlset>`)
		return
	case "/download":
		// A page that downloads a file as it opens.
		body = `<a id="d" href="/file.bin" download>file</a><script>document.getElementById('d').click()</script>`
	case "/file.bin":
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Content-Disposition", `attachment; filename="koekje-scan-test.bin"`)
		fmt.Fprint(w, download)
		return
	case "/hide":
		// A page that hides what it stores from scripts looking from
		// inside: _ga through a cookie setter it then replaces, a
		// storage key without setItem, Object.keys that sees no key.
		body = `<script>
document.cookie = '_ga=GA1.1.5.6; max-age=63072000; path=/'
Object.defineProperty(Document.prototype, 'cookie', { get() { return '' }, set() {} })
localStorage['_hjid'] = '1'
sessionStorage['_hjsession'] = '1'
const keys = Object.keys
Object.keys = o => (o === localStorage || o === sessionStorage ? [] : keys(o))
</script>`
	case "/escape":
		// Names that would write on the terminal of whoever reads the
		// report: Chromium refuses ESC and newlines in a cookie's name,
		// not NEL; a storage key takes anything.
		body = `<script>
document.cookie = 'a\u0085CLEAN=1; max-age=600; path=/'
localStorage.setItem('\x1b[2J\x1b[31mtrack\nCLEAN  0 violations', '1')
</script>`
	case "/503":
		http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
		return
	case "/slow":
		// Longer than any page timeout the tests give.
		select {
		case <-r.Context().Done():
		case <-time.After(10 * time.Second):
		}
		return
	case "/loop":
		// Hangs the renderer a moment after the load.
		body = `<script>addEventListener('load', () => setTimeout(() => { for (;;) {} }, 50))</script>`
	case "/busy":
		// The network is never idle: a request that never ends, and
		// polling (which a starved renderer may pause).
		body = `<script>fetch('/slow'); setInterval(() => fetch('/ping?' + Math.random()), 30)</script>`
	case "/ping":
		return
	default:
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	fmt.Fprintf(w, `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Hostile</title>
<script src="%s/s/shop.js"></script></head><body><h1>Hostile</h1>%s</body></html>`, koekjeURL, body)
}

// formats writes r in every format, and reads JUnit's totals.
func formats(t *testing.T, r *scan.Report) (text, verdict string, tests, failures, errors int) {
	t.Helper()
	var b bytes.Buffer
	if err := r.Write(&b, "text", false); err != nil {
		t.Fatal(err)
	}
	text = b.String()
	b.Reset()
	if err := r.Write(&b, "json", false); err != nil {
		t.Fatal(err)
	}
	var js struct{ Verdict string }
	if err := json.Unmarshal(b.Bytes(), &js); err != nil {
		t.Fatal(err)
	}
	b.Reset()
	if err := r.Write(&b, "junit", false); err != nil {
		t.Fatal(err)
	}
	var ju struct {
		Tests    int `xml:"tests,attr"`
		Failures int `xml:"failures,attr"`
		Errors   int `xml:"errors,attr"`
	}
	if err := xml.Unmarshal(b.Bytes(), &ju); err != nil {
		t.Fatal(err)
	}
	return text, js.Verdict, ju.Tests, ju.Failures, ju.Errors
}

// A site that cannot be reached, or whose pages fail, is not clean: every
// format says the scan is inconclusive, and why.
func TestSiteDown(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := "http://www.shop.test:" + port("http://"+l.Addr().String()) + "/"
	l.Close()
	// The choice profiles stop at the first page, where they cannot
	// choose; the profiles before any choice and with GPC try every page.
	urls := []string{refused, "http://nowhere.test/", hostileURL + "/503", hostileURL + "/slow"}
	why := []string{"ERR_CONNECTION_REFUSED", "ERR_NAME_NOT_RESOLVED", "HTTP 503", "the page timeout (3s) passed"}
	start := time.Now()
	r := runWith(t, "shop", chromium.Options{URLs: urls, Pages: len(urls), PageTimeout: 3 * time.Second})
	// Five profiles side by side, two of them 3 s on /slow; far from the
	// two minutes of a page without a deadline, even on a busy machine.
	if took := time.Since(start); took > 40*time.Second {
		t.Errorf("the scan took %s", took)
	}
	if r.Clean(false) || r.Verdict(false) != scan.VerdictInconclusive || len(r.Pages) != 0 {
		t.Errorf("clean %v, verdict %s, pages %q; want inconclusive, nothing scanned", r.Clean(false), r.Verdict(false), r.Pages)
	}
	// Each profile says what became of its pages; nothing else is claimed
	// (not even that a declared cookie was never seen).
	want := []string{"error before", "error rejected /", "error accepted /", "error withdrawn /"}
	for _, u := range urls {
		want = append(want, "error before "+path(u), "error gpc "+path(u))
	}
	same(t, "findings", brief(r.Violations), want)
	for _, p := range []*scan.Profile{r.Profiles[0], r.Profiles[4]} {
		for i, v := range p.Visits {
			if v.Page != urls[i] || v.Status != scan.StatusError || !strings.Contains(v.Error, why[i]) {
				t.Errorf("%s: visit %+v, want %s not scanned: %s", p.Name, v, urls[i], why[i])
			}
		}
	}
	for _, p := range r.Profiles[1:4] {
		if len(p.Visits) != 1 || !p.Visits[0].Choice || !strings.Contains(p.Visits[0].Error, why[0]) {
			t.Errorf("%s: visits %+v, want a failed choice", p.Name, p.Visits)
		}
	}
	if len(r.Stale)+len(r.Undeclared) != 0 {
		t.Errorf("stale %q, undeclared %q of a site never seen", brief(r.Stale), brief(r.Undeclared))
	}
	text, verdict, tests, failures, errors := formats(t, r)
	if !strings.HasPrefix(strings.SplitN(text, "\n", 3)[2], "INCONCLUSIVE  11 pages not scanned") || strings.Contains(text, "CLEAN") ||
		!strings.Contains(text, "Inconclusive: no page could be scanned") || !strings.Contains(text, why[2]) {
		t.Errorf("text:\n%s", text)
	}
	if verdict != scan.VerdictInconclusive {
		t.Errorf("json verdict %q", verdict)
	}
	// A case per profile's page, and one for the scan: all in error.
	if tests != 12 || errors != 12 || failures != 0 {
		t.Errorf("junit: %d tests, %d failures, %d errors; want 12 errors", tests, failures, errors)
	}
}

func path(u string) string {
	_, p, _ := strings.Cut(strings.TrimPrefix(u, "http://"), "/")
	return "/" + p
}

// Dialogs are dismissed and noted: the page is scanned, and the choice
// profiles click their button behind them.
func TestDialogs(t *testing.T) {
	t.Parallel()
	// The page settles at once when its dialogs are dismissed; the page
	// timeout only leaves a busy machine time to open the settings.
	r := runWith(t, "shop", chromium.Options{URLs: []string{hostileURL + "/alert"}, Pages: 1, PageTimeout: 15 * time.Second})
	if v := r.Verdict(false); v != scan.VerdictClean {
		t.Errorf("verdict %s, want clean", v)
	}
	want := `alert "Welkom!", confirm "Sure?", prompt "Name?"`
	for _, p := range r.Profiles {
		if len(p.Pages) != 1 {
			t.Errorf("%s: pages %q, want the page scanned", p.Name, p.Pages)
		}
		for _, v := range p.Visits {
			if got := strings.Join(v.Dialogs, ", "); got != want || v.Status != scan.StatusScanned {
				t.Errorf("%s: %s %s, dialogs %s; want scanned, %s", p.Name, v.Page, v.Status, got, want)
			}
		}
	}
	// The choices, the withdrawal's two and GPC's refusal.
	var posts []int
	for _, p := range r.Profiles[1:] {
		posts = append(posts, p.ConsentPOSTs)
	}
	if !slices.Equal(posts, []int{1, 1, 2, 1}) {
		t.Errorf("consent POSTs %v; want 1, 1, 2, 1", posts)
	}
	_, _, _, _, errors := formats(t, r)
	if errors != 0 {
		t.Errorf("junit: %d errors", errors)
	}
}

// A page that never ends (a renderer in an endless loop after the load, a
// network never idle) is cut off at the page timeout and
// reported; the profile goes on in a new tab of the same browser context,
// where its choice still holds.
func TestEndlessPages(t *testing.T) {
	t.Parallel()
	start := time.Now()
	endless := []string{"/loop", "/busy"}
	urls := []string{hostileURL + "/ok"}
	for _, e := range endless {
		urls = append(urls, hostileURL+e)
	}
	urls = append(urls, hostileURL+"/ok2")
	// The page timeout leaves the ordinary pages time on a busy machine.
	// The withdrawn profile's ordinary page accepts, opens the settings
	// (the banner's second part) and saves: 4 s was too little for that on
	// a machine running the whole suite, nor 8 s at a load of 10.
	r := runWith(t, "shop", chromium.Options{URLs: urls, Pages: len(urls), PageTimeout: 12 * time.Second})
	// 2 endless pages of 12 s in each of five profiles, side by side: far
	// from the many minutes of pages without a deadline.
	if took := time.Since(start); took > 90*time.Second {
		t.Errorf("the scan took %s", took)
	}
	var want []string
	for _, p := range []string{scan.Before, scan.Rejected, scan.Accepted, scan.Withdrawn, scan.GPC} {
		for _, e := range endless {
			want = append(want, "error "+p+" "+e)
		}
	}
	same(t, "findings", brief(r.Violations), want)
	for _, f := range r.NotScanned() {
		if !strings.Contains(f.Message, "the page timeout (12s) passed") {
			t.Errorf("%s %s: %s", f.Profile, f.Page, f.Message)
		}
	}
	for _, p := range r.Profiles {
		if got := strings.Join(p.Pages, " "); got != hostileURL+"/ok "+hostileURL+"/ok2" {
			t.Errorf("%s: scanned %s; want /ok and /ok2", p.Name, got)
		}
	}
	if r.Verdict(false) != scan.VerdictInconclusive {
		t.Errorf("verdict %s", r.Verdict(false))
	}
	// The statistics of /ok2 ran after acceptance: the new tab kept the
	// choice.
	var ga []string
	for _, c := range r.Profiles[2].Cookies {
		if c.Name == "_ga" {
			ga = append(ga, path(c.Page))
		}
	}
	if strings.Join(ga, " ") != "/ok2" {
		t.Errorf("_ga after accept first seen on %q, want /ok2", ga)
	}
}

// The scan's own deadline holds whatever the pages do: the pages not
// scanned by then are reported, and the report comes.
func TestScanDeadline(t *testing.T) {
	t.Parallel()
	if skipReason != "" {
		t.Skip(skipReason)
	}
	slow := hostileURL + "/slow"
	urls := []string{slow, slow + "?2", slow + "?3", hostileURL + "/ok"}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	start := time.Now()
	// Each slow page would take 10 s and the page timeout is longer: only
	// the scan's deadline can end the scan in well under 30 s, even on a
	// busy machine.
	r, err := chromium.Run(ctx, chromium.Options{Site: cfg.Site("shop"), Browser: sharedBrowser(t), URLs: urls, Pages: len(urls),
		PageTimeout: 30 * time.Second, Timeout: 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 20*time.Second {
		t.Errorf("the scan took %s with a deadline of 3 s", took)
	}
	if r.Verdict(false) != scan.VerdictInconclusive {
		t.Errorf("verdict %s", r.Verdict(false))
	}
	// Every page is reported, each cut by the scan's deadline: the first
	// slow one while it loaded, the rest never tried.
	var got []string
	for _, v := range r.Profiles[0].Visits {
		why := v.Error
		if strings.Contains(why, "the scan's deadline (3s) passed") {
			why = "deadline"
		}
		got = append(got, path(v.Page)+" "+v.Status+" "+why)
	}
	if len(got) != len(urls) || got[len(got)-1] != "/ok error deadline" {
		t.Errorf("visits before any choice: %q, want all %d, the last past the deadline", got, len(urls))
	}
	for _, g := range got {
		if !strings.HasSuffix(g, " error deadline") {
			t.Errorf("visit %s", g)
		}
	}
}

// What the scanner keeps of a page is bounded, and the report says what
// was cut: a page that makes more than it keeps is not clean.
func TestBigPage(t *testing.T) {
	t.Parallel()
	r := runWith(t, "shop", chromium.Options{URLs: []string{hostileURL + "/big"}, Pages: 1, PageTimeout: 10 * time.Second})
	before := r.Profiles[0]
	if len(before.Pages) != 1 || len(before.Visits) != 1 {
		t.Fatalf("visits %+v, want the page scanned", before.Visits)
	}
	if v := before.Visits[0]; len(v.Cut) != 1 || !strings.HasPrefix(v.Cut[0], "the browser's Network.requestWillBeSent of 314") {
		t.Errorf("cut on the page: %q, want the request of 3 MiB", v.Cut)
	}
	if len(before.Storage) != 1000 {
		t.Errorf("%d storage keys, want 1000", len(before.Storage))
	}
	same(t, "cut of the profile", before.Cut, []string{"storage keys: 1000 kept, 200 more not"})
	var cut []string
	for _, f := range r.Truncated() {
		if f.Profile == scan.Before {
			cut = append(cut, f.Kind+" "+path(f.Page))
		}
	}
	slices.Sort(cut)
	same(t, "findings of what was cut before any choice", cut, []string{"truncated /", "truncated /big"})
	if v := r.Verdict(false); v != scan.VerdictFail {
		t.Errorf("verdict %s, want fail: storage keys before any choice", v)
	}
	var js bytes.Buffer
	if err := r.Write(&js, "json", false); err != nil || js.Len() > 4<<20 {
		t.Errorf("json report of %d bytes: %v", js.Len(), err)
	}
}

// Only the site's own pages of a sitemap are visited: not file:, chrome:,
// javascript: or data: URLs, nor other sites. The report says so.
func TestSitemapOnlyTheSite(t *testing.T) {
	t.Parallel()
	r := run(t, "shop", 5, hostileLocal+"/sitemap-mixed.xml")
	for _, p := range r.Profiles {
		var visited []string
		for _, v := range p.Visits {
			if !v.Choice {
				visited = append(visited, path(v.Page))
			}
		}
		if strings.Join(visited, " ") != "/ok /ok2" || len(p.Pages) != 2 {
			t.Errorf("%s visited %q, scanned %q; want /ok and /ok2", p.Name, visited, p.Pages)
		}
	}
	note := `6 URLs in the sitemaps are not on the site's origins, not visited (the first: "file:///etc/")`
	if len(r.Notes) != 1 || r.Notes[0] != note {
		t.Errorf("notes %q, want %q", r.Notes, note)
	}
	text, _, _, _, _ := formats(t, r)
	if !strings.Contains(text, "Notes\n  "+note) {
		t.Errorf("text:\n%s", text)
	}
}

// A download a page starts is refused, and noted: nothing lands in the
// Downloads folder of the user running the scan.
func TestDownloadRefused(t *testing.T) {
	t.Parallel()
	if skipReason != "" {
		t.Skip(skipReason)
	}
	// In browsers of its own, as koekje scan runs: a browser context of the
	// shared browser deletes its downloads when it goes. The next page
	// gives the download time to finish.
	r, err := chromium.Run(context.Background(), chromium.Options{Site: cfg.Site("shop"), URLs: []string{hostileURL + "/download", hostileURL + "/ok"},
		Pages: 2, Chrome: chrome, HostResolverRules: rules})
	if err != nil {
		t.Fatal(err)
	}
	home, err := os.UserHomeDir()
	if err != nil {
		t.Fatal(err)
	}
	// A file with the download's bytes, whatever its name (Chromium names
	// one it has not finished "Unconfirmed …").
	dir := filepath.Join(home, "Downloads")
	files, _ := os.ReadDir(dir)
	for _, f := range files {
		name := filepath.Join(dir, f.Name())
		if b, err := os.ReadFile(name); err == nil && string(b) == download {
			os.Remove(name)
			t.Errorf("the page's download was saved as %s", name)
		}
	}
	for _, p := range r.Profiles {
		for _, v := range p.Visits {
			if path(v.Page) != "/download" {
				continue
			}
			if len(v.Downloads) != 1 || !strings.HasSuffix(v.Downloads[0], "/file.bin (refused)") {
				t.Errorf("%s: %s: downloads %q, want /file.bin refused", p.Name, v.Page, v.Downloads)
			}
		}
	}
}

// What a page stores is read from outside it: a page that hides its
// cookies and storage keys from scripts cannot make itself clean.
func TestPageHidesItsStorage(t *testing.T) {
	t.Parallel()
	r := run(t, "shop", 1, hostileURL+"/hide")
	var got []string
	for _, f := range r.Violations {
		if f.Profile == scan.Before && (f.Kind == scan.KindCookie || f.Kind == scan.KindStorage) {
			got = append(got, f.Kind+" "+f.Name+" "+f.Domain)
		}
	}
	slices.Sort(got)
	same(t, "cookies and keys before any choice", got, []string{"cookie _ga www.shop.test", "storage _hjid " + hostileURL, "storage _hjsession " + hostileURL})
}

// The text report of a page that names its cookies and keys with terminal
// codes and line breaks writes them inert.
func TestEscapeCodesInert(t *testing.T) {
	t.Parallel()
	r := run(t, "shop", 1, hostileURL+"/escape")
	text, _, _, _, _ := formats(t, r)
	for _, c := range text {
		if c == 0x1b || c == 0x85 {
			t.Fatalf("%U in the text report:\n%s", c, text)
		}
	}
	for _, want := range []string{`a\u0085CLEAN`, `\x1b[2J\x1b[31mtrack\x0aCLEAN  0 violations`} {
		if !strings.Contains(text, want) {
			t.Errorf("no %s in the text report:\n%s", want, text)
		}
	}
}
