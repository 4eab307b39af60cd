package scan_test

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/koekje/koekje/server/scan"
)

// hostileURL is a site whose pages break a scan in every way they can:
// http://www.shop.test:<port>, served by hostilePage.
var hostileURL string

// hostilePage serves the pages of hostileURL; each has the shop's banner.
func hostilePage(w http.ResponseWriter, r *http.Request) {
	var body string
	switch r.URL.Path {
	case "/alert":
		body = `<script>alert('Welkom!')</script><script>addEventListener('load', () => { confirm('Sure?'); prompt('Name?') })</script>`
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

// A site that cannot be reached, or whose page fails, is not clean: every
// format says the scan is inconclusive, and why.
func TestSiteDown(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://www.shop.test:" + port("http://"+l.Addr().String()) + "/"
	l.Close()
	for _, tc := range []struct {
		name, url, why string
		timeout        time.Duration
	}{
		{"refused", closed, "ERR_CONNECTION_REFUSED", 0},
		{"dns", "http://nowhere.test/", "ERR_NAME_NOT_RESOLVED", 0},
		{"503", hostileURL + "/503", "HTTP 503", 0},
		{"slow", hostileURL + "/slow", "the page timeout (1s) passed", time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			start := time.Now()
			r := runWith(t, "shop", scan.Options{URLs: []string{tc.url}, Pages: 1, PageTimeout: tc.timeout})
			if took := time.Since(start); took > 15*time.Second {
				t.Errorf("the scan took %s", took)
			}
			if r.Clean(false) || r.Verdict(false) != scan.VerdictInconclusive || len(r.Pages) != 0 {
				t.Errorf("clean %v, verdict %s, pages %q; want inconclusive, nothing scanned", r.Clean(false), r.Verdict(false), r.Pages)
			}
			// Each profile says what became of its page; nothing else is
			// claimed (not even that a declared cookie was never seen).
			same(t, "findings", brief(r.Violations), []string{
				"error before", "error before " + path(tc.url), "error rejected " + path(tc.url), "error accepted " + path(tc.url)})
			for _, f := range r.NotScanned() {
				if f.Page != "" && !strings.Contains(f.Message, tc.why) {
					t.Errorf("%s: %q, want it to say %q", f.Profile, f.Message, tc.why)
				}
			}
			if len(r.Stale)+len(r.Undeclared) != 0 {
				t.Errorf("stale %q, undeclared %q of a site never seen", brief(r.Stale), brief(r.Undeclared))
			}
			text, verdict, tests, failures, errors := formats(t, r)
			if !strings.HasPrefix(strings.SplitN(text, "\n", 3)[2], "INCONCLUSIVE  4 pages not scanned") || strings.Contains(text, "CLEAN") ||
				!strings.Contains(text, "Inconclusive: no page could be scanned") || !strings.Contains(text, tc.why) {
				t.Errorf("text:\n%s", text)
			}
			if verdict != scan.VerdictInconclusive {
				t.Errorf("json verdict %q", verdict)
			}
			// A case per profile's page, and one for the scan: all in error.
			if tests != 4 || errors != 4 || failures != 0 {
				t.Errorf("junit: %d tests, %d failures, %d errors; want 4 errors", tests, failures, errors)
			}
		})
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
	r := runWith(t, "shop", scan.Options{URLs: []string{hostileURL + "/alert"}, Pages: 1, PageTimeout: 5 * time.Second})
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
	if r.Profiles[1].ConsentPOSTs != 1 || r.Profiles[2].ConsentPOSTs != 1 {
		t.Errorf("consent POSTs %d, %d; want a choice in each profile", r.Profiles[1].ConsentPOSTs, r.Profiles[2].ConsentPOSTs)
	}
	_, _, _, _, errors := formats(t, r)
	if errors != 0 {
		t.Errorf("junit: %d errors", errors)
	}
}
