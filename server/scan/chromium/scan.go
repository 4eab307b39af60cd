// Package chromium is the scanner's driver: it runs a real headless
// Chromium through a site's pages in the five profiles of package scan and
// hands what it recorded to scan.Check.
//
// A scan never records a consent: the scanner answers the banner's POSTs to
// the consent API itself, through CDP Fetch interception.
package chromium

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/koekje/koekje/config"
	"github.com/koekje/koekje/server/scan"
)

// Options say what to scan and how.
type Options struct {
	Site *config.Site
	// URLs are where the scan starts (a sitemap, a URL ending in .xml,
	// stands for the pages it lists); same-origin links are followed up
	// to Pages.
	URLs  []string
	Pages int // pages per profile, the start URLs included; at least len(URLs)
	// Chrome is the browser binary: CHROME_PATH, else /usr/bin/chromium.
	Chrome string
	// HostResolverRules is passed to Chromium as --host-resolver-rules
	// (tests map made-up third-party names to local servers with it).
	HostResolverRules string
	// Browser, when set, is a running Chromium the scan shares with other
	// scans (StartBrowser); else the scan starts a Chromium per profile
	// and stops them when done. Chrome and HostResolverRules are then
	// the browser's.
	Browser *Browser
	// Quiet is how long the network must have been idle after the load
	// event before a page counts as settled (default 200 ms); PageTimeout
	// bounds one page: its load, its settling and the scanner's look at
	// it (default 20 s). A page past it is not scanned, and its tab is
	// closed and replaced.
	Quiet, PageTimeout time.Duration
	// Timeout bounds the whole scan (default 10 minutes): the pages not
	// scanned by then are reported as such.
	Timeout time.Duration
	// BannerTimeout bounds the choice profiles' wait for their button in
	// the banner of the settled first page (default, and at most,
	// PageTimeout): a page without the banner waits it out.
	BannerTimeout time.Duration
	// Visited, when set, is called after each page a profile visited,
	// scanned or not, from the profiles' goroutines at once (progress).
	Visited func()
}

// ChromePath returns the browser the scanner drives: CHROME_PATH, else
// Debian's /usr/bin/chromium.
func ChromePath(getenv func(string) string) string {
	if p := getenv("CHROME_PATH"); p != "" {
		return p
	}
	return "/usr/bin/chromium"
}

// ErrNoChrome is returned when the browser binary is missing.
var ErrNoChrome = errors.New("no Chromium: install it (Debian: apt-get install -y chromium) or set CHROME_PATH")

// Run scans the site in five browsers side by side, one per profile.
func Run(ctx context.Context, o Options) (*scan.Report, error) {
	if o.Site == nil {
		return nil, errors.New("scan: no site")
	}
	if len(o.URLs) == 0 {
		return nil, errors.New("scan: no URL")
	}
	for _, u := range o.URLs {
		p, err := url.Parse(u)
		if err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
			return nil, fmt.Errorf("scan: %q is not an http(s) URL", u)
		}
	}
	if o.Browser == nil {
		if err := findChrome(&o); err != nil {
			return nil, err
		}
	}
	if o.Pages < len(o.URLs) {
		o.Pages = len(o.URLs)
	}
	if o.Quiet == 0 {
		o.Quiet = 200 * time.Millisecond
	}
	if o.PageTimeout == 0 {
		o.PageTimeout = 20 * time.Second
	}
	if o.BannerTimeout == 0 {
		o.BannerTimeout = o.PageTimeout
	}
	if o.Timeout == 0 {
		o.Timeout = 10 * time.Minute
	}
	texts, hash, err := bannerTexts(o.Site)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	// The scan's deadline bounds the sitemaps and the pages; the pages
	// not scanned by then are reported, while the end of ctx ends the scan.
	scanCtx, cancel := context.WithDeadline(ctx, start.Add(o.Timeout))
	defer cancel()
	var notes []string
	if slices.ContainsFunc(o.URLs, isSitemap) {
		urls, n, err := expandSitemaps(scanCtx, o.URLs, o.Pages, newOrigins(o.Site, o.URLs))
		if err != nil {
			return nil, err
		}
		o.URLs, notes = urls, n
	}

	// The browsers start together; each has a profile of its own. A
	// shared browser gives each profile a fresh browser context instead.
	var browsers [len(scan.ProfileNames)]*browser
	var errs [len(scan.ProfileNames)]error
	var wg sync.WaitGroup
	if o.Browser != nil {
		for i := range browsers {
			browsers[i] = o.Browser.b
		}
	} else {
		for i := range browsers {
			wg.Go(func() { browsers[i], errs[i] = startBrowser(ctx, &o) })
		}
		wg.Wait()
		defer func() {
			for _, b := range browsers {
				if b != nil {
					b.close()
				}
			}
		}()
		if err := errors.Join(errs[:]...); err != nil {
			return nil, fmt.Errorf("start Chromium: %w", err)
		}
	}

	// The profiles run side by side, each following the links it finds,
	// until the scan's deadline.
	var profiles [len(scan.ProfileNames)]*scan.Profile
	for i, name := range scan.ProfileNames {
		wg.Go(func() { profiles[i], errs[i] = browsers[i].profile(ctx, scanCtx, &o, texts, name, o.URLs) })
	}
	wg.Wait()
	if err := errors.Join(errs[:]...); err != nil {
		return nil, err
	}
	r := scan.Check(o.Site, profiles)
	r.Started = start.UTC().Truncate(time.Second)
	r.ConfigHash = hash
	r.Seconds = time.Since(start).Seconds()
	r.Notes = notes
	return r, nil
}

// findChrome fills in the browser binary, and checks that it is there.
func findChrome(o *Options) error {
	if o.Chrome == "" {
		o.Chrome = ChromePath(os.Getenv)
	}
	if _, err := os.Stat(o.Chrome); err != nil {
		return fmt.Errorf("%w (looked at %s)", ErrNoChrome, o.Chrome)
	}
	return nil
}

// Browser is a running Chromium that scans share (Options.Browser), for
// many scans in a row: starting and stopping five browsers takes longer
// than a small site's scan. Each profile of each scan runs in a browser
// context of its own, made for it and disposed of after it: its own
// cookies, storage and cache, as a fresh profile has.
type Browser struct{ b *browser }

// StartBrowser starts a Chromium with o's Chrome and HostResolverRules.
func StartBrowser(ctx context.Context, o Options) (*Browser, error) {
	if err := findChrome(&o); err != nil {
		return nil, err
	}
	b, err := startBrowser(ctx, &o)
	if err != nil {
		return nil, fmt.Errorf("start Chromium: %w", err)
	}
	b.shared = true
	return &Browser{b}, nil
}

// Close stops the browser.
func (b *Browser) Close() { b.b.close() }
