package chromium

import (
	"context"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/koekje/koekje/config"
	"github.com/koekje/koekje/server/scan"
)

// isSitemap reports whether a start URL names a sitemap (a path ending in .xml).
func isSitemap(u string) bool {
	p, err := url.Parse(u)
	return err == nil && strings.HasSuffix(strings.ToLower(p.Path), ".xml")
}

// Sitemaps are bounded as the protocol bounds them: 50 MB (what comes
// after is not read) and 50,000 entries.
const (
	maxSitemap        = 50 << 20
	maxSitemapEntries = 50000
)

// origins are where a scan may go: http(s) on the origins of the URLs it
// was given, or on the site's configured origins. A sitemap or a page
// lists what it likes: file:, chrome:, data: and javascript: URLs, and
// other sites, are not visited.
type origins struct {
	site  *config.Site
	given map[string]bool
}

func newOrigins(site *config.Site, urls []string) origins {
	o := origins{site: site, given: map[string]bool{}}
	for _, u := range urls {
		if p, err := url.Parse(u); err == nil {
			o.given[p.Scheme+"://"+p.Host] = true
		}
	}
	return o
}

// allow returns u without its fragment, if the scan may visit it.
func (o origins) allow(u string) (string, bool) {
	p, err := url.Parse(strings.TrimSpace(u))
	if err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" || p.User != nil || p.Opaque != "" {
		return "", false
	}
	p.Fragment, p.RawFragment = "", ""
	origin := p.Scheme + "://" + p.Host
	if !o.given[origin] && (o.site == nil || !o.site.AllowsOrigin(origin, "")) {
		return "", false
	}
	return p.String(), true
}

// expandSitemaps replaces each sitemap among the start URLs with the pages
// it lists on the scan's origins, up to limit pages in all. The sitemaps
// of a sitemap index are fetched one by one, only while pages are wanted;
// a sitemap is read only as far as it is needed, and never past
// maxSitemap. The notes say what was left out.
func expandSitemaps(ctx context.Context, urls []string, limit int, allowed origins) (pages, notes []string, err error) {
	seen := map[string]bool{}
	add := func(u string) {
		if !seen[u] && len(pages) < limit {
			seen[u] = true
			pages = append(pages, u)
		}
	}
	client := &http.Client{Timeout: 20 * time.Second, CheckRedirect: func(r *http.Request, via []*http.Request) error {
		if _, ok := allowed.allow(r.URL.String()); !ok || len(via) >= 5 {
			return fmt.Errorf("a redirect to %s: not on the site's origins", clip(r.URL.String(), maxName))
		}
		return nil
	}}
	skipped := 0
	var firstSkipped string
	fetch := func(u string) (*sitemap, error) {
		sm, err := fetchSitemap(ctx, client, u, limit-len(pages), allowed)
		if err != nil {
			return nil, err
		}
		notes = append(notes, sm.notes...)
		if skipped += sm.skipped; firstSkipped == "" {
			firstSkipped = sm.firstSkipped
		}
		for _, p := range sm.pages {
			add(p)
		}
		return sm, nil
	}
	for _, u := range urls {
		if !isSitemap(u) {
			add(u)
			continue
		}
		if len(pages) >= limit {
			break
		}
		sm, err := fetch(u)
		if err != nil {
			return nil, nil, err
		}
		for _, s := range sm.sitemaps {
			if len(pages) >= limit {
				break
			}
			if _, err := fetch(s); err != nil {
				return nil, nil, err
			}
		}
	}
	if skipped > 0 {
		notes = append(notes, fmt.Sprintf("%s not on the site's origins, not visited (the first: %q)",
			scan.Plural(skipped, "URL in the sitemaps is", "URLs in the sitemaps are"), firstSkipped))
	}
	if len(pages) == 0 {
		return nil, notes, fmt.Errorf("scan: the sitemaps %v list no page on the site's origins", urls)
	}
	return pages, notes, nil
}

// sitemap is what one sitemap lists on the scan's origins: pages (a
// urlset), or sitemaps (an index); how many entries it lists elsewhere,
// and what was left unread.
type sitemap struct {
	pages, sitemaps []string
	skipped         int
	firstSkipped    string
	notes           []string
}

func fetchSitemap(ctx context.Context, client *http.Client, u string, want int, allowed origins) (*sitemap, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", u, nil)
	if err != nil {
		return nil, fmt.Errorf("sitemap %s: %w", u, err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("sitemap: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("sitemap %s: HTTP %d", u, resp.StatusCode)
	}
	sm, err := parseSitemap(resp.Body, maxSitemap, want, allowed.allow)
	if err != nil {
		return nil, fmt.Errorf("sitemap %s: %w", u, err)
	}
	for i, n := range sm.notes {
		sm.notes[i] = "sitemap " + clip(u, maxName) + ": " + n
	}
	return sm, nil
}

// parseSitemap reads the <loc> of each <url> and <sitemap> of a sitemap,
// keeping those allow allows (as it returns them), and stops after want
// pages, or at limit bytes (then noting it: the sitemap is read as far as
// that).
func parseSitemap(r io.Reader, limit int64, want int, allow func(string) (string, bool)) (*sitemap, error) {
	lr := &io.LimitedReader{R: r, N: limit + 1}
	d := xml.NewDecoder(lr)
	sm := &sitemap{}
	// Only <urlset><url><loc> and <sitemapindex><sitemap><loc> count:
	// the names of the first three elements open around a token, and how
	// deep it is.
	var names [3]string
	depth := 0
	var loc strings.Builder
	for len(sm.pages) < want && len(sm.sitemaps) < maxSitemapEntries {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			if lr.N <= 0 {
				sm.notes = append(sm.notes, fmt.Sprintf("over %d bytes, read as far as that", limit))
				break
			}
			return nil, err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if depth < len(names) {
				names[depth] = t.Name.Local
			}
			depth++
			loc.Reset()
		case xml.CharData:
			if depth == 3 && names[2] == "loc" && loc.Len() < 4096 {
				loc.Write(t)
			}
		case xml.EndElement:
			if l := strings.TrimSpace(loc.String()); depth == 3 && names[2] == "loc" && l != "" && (names[1] == "url" || names[1] == "sitemap") {
				u, ok := allow(l)
				switch {
				case !ok:
					if sm.skipped++; sm.firstSkipped == "" {
						sm.firstSkipped = clip(l, maxName)
					}
				case names[1] == "url":
					sm.pages = append(sm.pages, u)
				default:
					sm.sitemaps = append(sm.sitemaps, u)
				}
			}
			loc.Reset()
			depth--
		}
	}
	return sm, nil
}
