// Package scan proves whether a site does what its banner says. It drives a
// real headless Chromium through the site's pages in five fresh profiles —
// before any choice, after "reject all", after "accept all", after
// withdrawing consent (all clicked in the real banner) and with Global
// Privacy Control — records every cookie, storage key, request to another
// site and Google tag that runs before Consent Mode's defaults, and holds
// what it saw against the site's configuration.
//
// A scan never records a consent: the scanner answers the banner's POSTs to
// the consent API itself, through CDP Fetch interception.
package scan

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

// The profiles.
const (
	Before   = "before"   // before any choice
	Rejected = "rejected" // after "reject all"
	Accepted = "accepted" // after "accept all"
	// Withdrawn: after "accept all", then every category switched off and
	// saved in the banner's settings, opened as a visitor opens them.
	Withdrawn = "withdrawn"
	// GPC: a browser that sends Global Privacy Control (the Sec-GPC: 1
	// header, navigator.globalPrivacyControl), a refusal; it clicks
	// nothing.
	GPC = "gpc"
)

// profileNames are the profiles in the order of a report.
var profileNames = [...]string{Before, Rejected, Accepted, Withdrawn, GPC}

// Cookie is a cookie the browser held after a page.
type Cookie struct {
	Name   string `json:"name"`
	Domain string `json:"domain"`
	Path   string `json:"path"`
	// Expires is empty for a session cookie; Lifetime is what was left of
	// it when the scanner first saw it, in seconds (0 for a session cookie).
	Expires  *time.Time `json:"expires,omitempty"`
	Lifetime int64      `json:"lifetime_seconds"`
	// Asked is the lifetime its setter asked for (Max-Age or Expires), in
	// seconds, when the scanner saw the write: Chromium keeps a cookie at
	// most 400 days, whatever it asks.
	Asked      *int64 `json:"asked_lifetime_seconds,omitempty"`
	ThirdParty bool   `json:"third_party"`
	// SetBy is "header" (a Set-Cookie response header), "script"
	// (document.cookie or cookieStore) or "" when the browser did not say.
	SetBy  string `json:"set_by,omitempty"`
	Source string `json:"source,omitempty"` // the response or script that set it
	Page   string `json:"page"`             // the page after which it was first seen
}

// StorageKey is a localStorage or sessionStorage key.
type StorageKey struct {
	Area   string `json:"area"` // localStorage or sessionStorage
	Origin string `json:"origin"`
	Key    string `json:"key"`
	Source string `json:"source,omitempty"` // the script that wrote it, when seen
	Page   string `json:"page"`
}

// Request is the first request to a host of another site than the page's.
type Request struct {
	URL       string `json:"url"`
	Type      string `json:"type,omitempty"`      // Document, Script, Image, …
	Initiator string `json:"initiator,omitempty"` // the script or document that made it
	Page      string `json:"page"`
	Count     int    `json:"count"` // the requests to the host
}

// Tag is a Google tag that ran on a page before the page's first Consent
// Mode default ("consent", "default"): a config or event command in its
// dataLayer, or a collection request of a Google tag.
type Tag struct {
	Page string `json:"page"`
	// What is the command (gtag config G-…) or the request's URL.
	What   string `json:"what"`
	Source string `json:"source,omitempty"` // the script that gave it, when seen
	Count  int    `json:"count"`            // the late commands and requests on the page
}

// Banner is what the first layer of the banner offered on a page.
type Banner struct {
	Page   string `json:"page"`
	Shown  bool   `json:"shown"`
	Lang   string `json:"lang,omitempty"`
	Accept bool   `json:"accept"` // an "accept all" button in the page's language
	Reject bool   `json:"reject"` // a "reject all" button, on the first layer
}

// Outcomes of a visit.
const (
	StatusScanned = "scanned"
	StatusError   = "error" // the page could not be scanned
)

// Visit is what became of one page of a profile.
type Visit struct {
	Page string `json:"page"`
	// Choice marks the visit of the first page on which a choice profile
	// clicked its button.
	Choice     bool    `json:"choice,omitempty"`
	Status     string  `json:"status"` // StatusScanned or StatusError
	Error      string  `json:"error,omitempty"`
	HTTPStatus int     `json:"http_status,omitempty"`
	Seconds    float64 `json:"seconds"`
	// Dialogs are the JavaScript dialogs the page opened, which the
	// scanner dismissed: "alert \"text\"", …
	Dialogs []string `json:"dialogs,omitempty"`
	// Downloads are the downloads the page started, which the scanner
	// refused: "<url> (refused)".
	Downloads []string `json:"downloads,omitempty"`
	// Cut are the browser's messages about the page too large to read:
	// the scanner may have missed what they said.
	Cut []string `json:"cut,omitempty"`
}

// Profile is what one profile saw: in Rejected and Accepted, only what
// happened from the click on; in Withdrawn, from the withdrawal on.
type Profile struct {
	Name string `json:"name"`
	// Pages are the pages scanned; Visits every page tried, with what
	// became of it.
	Pages    []string     `json:"pages"`
	Visits   []Visit      `json:"visits"`
	Cookies  []Cookie     `json:"cookies"`
	Storage  []StorageKey `json:"storage"`
	Requests []Request    `json:"third_party_requests"`
	Banners  []Banner     `json:"banners,omitempty"` // Before and GPC only
	// Tags are the Google tags that ran before the page's Consent Mode
	// defaults, one per page.
	Tags []Tag `json:"late_tags,omitempty"`
	// ConsentPOSTs counts the banner's POSTs the scanner answered.
	ConsentPOSTs int `json:"consent_posts"`
	// Cut says what did not fit in the profile's record: "cookies: 1000
	// kept, 12 more not", …
	Cut []string `json:"cut,omitempty"`
}

// Run scans the site in five browsers side by side, one per profile.
func Run(ctx context.Context, o Options) (*Report, error) {
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
	var browsers [len(profileNames)]*browser
	var errs [len(profileNames)]error
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
	var profiles [len(profileNames)]*Profile
	for i, name := range profileNames {
		wg.Go(func() { profiles[i], errs[i] = browsers[i].profile(ctx, scanCtx, &o, texts, name, o.URLs) })
	}
	wg.Wait()
	if err := errors.Join(errs[:]...); err != nil {
		return nil, err
	}
	r := check(o.Site, profiles)
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
