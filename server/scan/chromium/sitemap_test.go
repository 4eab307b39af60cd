package chromium

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/koekje/koekje/config"
)

func TestOrigins(t *testing.T) {
	site := &config.Site{Origins: []string{"self", "https://www.example.nl", "http://localhost:*"}}
	o := newOrigins(site, []string{"https://shop.example.nl/start", "https://shop.example.nl/sitemap.xml"})
	for u, want := range map[string]string{
		"https://shop.example.nl/a#top":     "https://shop.example.nl/a",
		" https://www.example.nl/b?x=1 ":    "https://www.example.nl/b?x=1",
		"http://localhost:8080/c":           "http://localhost:8080/c",
		"http://shop.example.nl/a":          "", // another scheme, another origin
		"https://shop.example.nl:8443/a":    "",
		"https://example.nl/":               "",
		"https://user:pw@shop.example.nl/a": "",
		"file:///etc/passwd":                "",
		"chrome://version/":                 "",
		"javascript:alert(1)":               "",
		"data:text/html,hi":                 "",
		"ftp://shop.example.nl/":            "",
		"//shop.example.nl/a":               "",
		"/relative":                         "",
		"":                                  "",
	} {
		got, ok := o.allow(u)
		if got != want || ok != (want != "") {
			t.Errorf("allow(%q) = %q, %v; want %q", u, got, ok, want)
		}
	}
}

// A sitemap index is fetched only as far as the pages wanted: its
// sitemaps one by one, none off the site's origins.
func TestSitemapIndexAsNeeded(t *testing.T) {
	var fetched atomic.Int32
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/xml")
		switch {
		case r.URL.Path == "/sitemap.xml":
			fmt.Fprint(w, `<?xml version="1.0" encoding="UTF-8"?><sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">`)
			fmt.Fprint(w, `<sitemap><loc>http://other.test/sitemap.xml</loc></sitemap><sitemap><loc>file:///etc/sitemap.xml</loc></sitemap>`)
			for i := range 12 {
				fmt.Fprintf(w, `<sitemap><loc>%s/sub/%d.xml</loc></sitemap>`, srv.URL, i)
			}
			fmt.Fprint(w, `</sitemapindex>`)
		case strings.HasPrefix(r.URL.Path, "/sub/"):
			fetched.Add(1)
			fmt.Fprintf(w, `<urlset><url><loc>%s%s/a</loc></url><url><loc>%s%s/b</loc>
<image:image xmlns:image="http://www.google.com/schemas/sitemap-image/1.1"><image:loc>%s/img.png</image:loc></image:image></url>
<url><loc>file:///etc/</loc></url></urlset>`, srv.URL, r.URL.Path, srv.URL, r.URL.Path, srv.URL)
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	start := []string{srv.URL + "/sitemap.xml"}
	pages, notes, err := expandSitemaps(context.Background(), start, 3, newOrigins(nil, start))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{srv.URL + "/sub/0.xml/a", srv.URL + "/sub/0.xml/b", srv.URL + "/sub/1.xml/a"}
	if strings.Join(pages, " ") != strings.Join(want, " ") || fetched.Load() != 2 {
		t.Errorf("pages %q from %d sitemaps; want %q from 2", pages, fetched.Load(), want)
	}
	if len(notes) != 1 || !strings.HasPrefix(notes[0], `3 URLs in the sitemaps are not on the site's origins, not visited (the first: "http://other.test/sitemap.xml")`) {
		t.Errorf("notes %q", notes)
	}
	if _, _, err := expandSitemaps(context.Background(), []string{srv.URL + "/none.xml"}, 3, newOrigins(nil, start)); err == nil || !strings.Contains(err.Error(), "HTTP 404") {
		t.Errorf("a sitemap that is not there: %v", err)
	}
}

// anyURL allows any location.
func anyURL(u string) (string, bool) { return u, true }

func TestParseSitemap(t *testing.T) {
	urlset := func(n int) string {
		var b strings.Builder
		b.WriteString(`<urlset>`)
		for i := range n {
			fmt.Fprintf(&b, `<url><loc> http://x.test/%d </loc><lastmod>2026-01-01</lastmod></url>`, i)
		}
		return b.String() + `</urlset>`
	}
	for _, tc := range []struct {
		name   string
		doc    string
		limit  int64
		want   int
		pages  int
		noted  bool
		hasErr bool
	}{
		{"whole", urlset(5), 1 << 20, 10, 5, false, false},
		{"only as many as wanted", urlset(50), 1 << 20, 3, 3, false, false},
		{"over the size limit", urlset(50), 500, 100, 7, true, false}, // 7 whole entries in 500 bytes
		{"unclosed", `<urlset><url><loc>http://x.test/</loc></url>`, 1 << 20, 10, 0, false, true},
		{"broken XML", `<urlset><url><loc>http://x.test/</loc></urlset>`, 1 << 20, 10, 0, false, true},
		{"loc elsewhere", `<urlset><loc>http://x.test/a</loc><url><x><loc>http://x.test/b</loc></x></url></urlset>`, 1 << 20, 10, 0, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sm, err := parseSitemap(strings.NewReader(tc.doc), tc.limit, tc.want, anyURL)
			if (err != nil) != tc.hasErr {
				t.Fatalf("error %v", err)
			}
			if err != nil {
				return
			}
			if len(sm.pages) != tc.pages || (len(sm.notes) > 0) != tc.noted {
				t.Errorf("%d pages %q, notes %q; want %d pages, a note %v", len(sm.pages), sm.pages, sm.notes, tc.pages, tc.noted)
			}
			for i, p := range sm.pages {
				if p != fmt.Sprintf("http://x.test/%d", i) {
					t.Errorf("page %d: %q", i, p)
				}
			}
		})
	}
}

// FuzzParseSitemap reads any document as a sitemap: never more than wanted,
// never a location longer than it keeps.
func FuzzParseSitemap(f *testing.F) {
	f.Add([]byte(`<urlset><url><loc>http://x.test/</loc></url></urlset>`))
	f.Add([]byte(`<sitemapindex><sitemap><loc>http://x.test/s.xml</loc></sitemap></sitemapindex>`))
	f.Add([]byte(`<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "b">]><urlset><url><loc>&a;&lt;</loc></url></urlset>`))
	f.Fuzz(func(t *testing.T, doc []byte) {
		sm, err := parseSitemap(bytes.NewReader(doc), 256, 5, anyURL)
		if err != nil {
			return
		}
		if len(sm.pages) > 5 || len(sm.sitemaps) > maxSitemapEntries {
			t.Fatalf("%d pages, %d sitemaps", len(sm.pages), len(sm.sitemaps))
		}
		for _, l := range append(sm.pages, sm.sitemaps...) {
			if l == "" || len(l) > 4096+len(doc) {
				t.Fatalf("location %q", l)
			}
		}
		if len(sm.notes) > 0 && len(doc) <= 256 {
			t.Fatalf("a note %q on a document of %d bytes", sm.notes, len(doc))
		}
	})
}
