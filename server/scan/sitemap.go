package scan

import (
	"context"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// isSitemap reports whether a start URL names a sitemap (a path ending in .xml).
func isSitemap(u string) bool {
	p, err := url.Parse(u)
	return err == nil && strings.HasSuffix(strings.ToLower(p.Path), ".xml")
}

type sitemapDoc struct {
	URLs     []sitemapLoc `xml:"url"`
	Sitemaps []sitemapLoc `xml:"sitemap"`
}

type sitemapLoc struct {
	Loc string `xml:"loc"`
}

// expandSitemaps replaces each sitemap among the start URLs with the pages
// it lists (a sitemap index: the pages of its sitemaps), up to limit pages.
func expandSitemaps(ctx context.Context, urls []string, limit int) ([]string, error) {
	var out []string
	seen := map[string]bool{}
	add := func(u string) {
		if u = strings.TrimSpace(u); u != "" && !seen[u] && len(out) < limit {
			seen[u] = true
			out = append(out, u)
		}
	}
	client := &http.Client{Timeout: 20 * time.Second}
	for _, u := range urls {
		if !isSitemap(u) {
			add(u)
			continue
		}
		doc, err := fetchSitemap(ctx, client, u)
		if err != nil {
			return nil, err
		}
		for _, l := range doc.URLs {
			add(l.Loc)
		}
		for _, m := range doc.Sitemaps {
			sub, err := fetchSitemap(ctx, client, strings.TrimSpace(m.Loc))
			if err != nil {
				return nil, err
			}
			for _, l := range sub.URLs {
				add(l.Loc)
			}
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("scan: the sitemaps %v list no pages", urls)
	}
	return out, nil
}

func fetchSitemap(ctx context.Context, client *http.Client, u string) (*sitemapDoc, error) {
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
	var doc sitemapDoc
	if err := xml.NewDecoder(io.LimitReader(resp.Body, 50<<20)).Decode(&doc); err != nil {
		return nil, fmt.Errorf("sitemap %s: %w", u, err)
	}
	return &doc, nil
}
