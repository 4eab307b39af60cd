package scan

import (
	"bytes"
	"fmt"
	"math"
	"net"
	"net/url"
	"slices"
	"strings"
	"time"

	"golang.org/x/net/publicsuffix"

	"github.com/koekje/koekje/config"
	"github.com/koekje/koekje/server/consent"
)

// Report is a scan's outcome.
type Report struct {
	Site string `json:"site"`
	// ConfigHash names the banner version the pages were held against
	// (the config_hash of the choices made under it).
	ConfigHash string    `json:"config_hash"`
	Started    time.Time `json:"started"`
	Seconds    float64   `json:"seconds"`
	Pages      []string  `json:"pages"`
	// Schedule is the site's schedule that ran the scan in koekje serve
	// (config.ScanSchedule.Every); empty for koekje scan.
	Schedule string `json:"schedule,omitempty"`
	// Violations break the rules of consent; Undeclared and Stale are
	// differences between the site and its declaration (warnings, unless
	// --strict).
	Violations []Finding                   `json:"violations"`
	Undeclared []Finding                   `json:"undeclared"`
	Stale      []Finding                   `json:"stale"`
	Profiles   [len(ProfileNames)]*Profile `json:"profiles"`
	// Omitted says what was left out of this copy of the report (Compact).
	Omitted string `json:"omitted,omitempty"`
	// Notes say what the scan left out of its own accord: sitemap entries
	// off the site's origins, the rest of a sitemap too large.
	Notes []string `json:"notes,omitempty"`
}

// Compact returns the report without its profiles' cookies, storage keys
// and requests, for a store that cannot hold the whole of it: the
// findings, the visits and the verdict stay whole.
func (r *Report) Compact() *Report {
	c := *r
	for i, p := range r.Profiles {
		if p != nil {
			q := *p
			q.Cookies, q.Storage, q.Requests = nil, nil, nil
			c.Profiles[i] = &q
		}
	}
	c.Omitted = "the profiles' cookies, storage keys and requests"
	return &c
}

// Clean reports whether the scan found no violations (and, when strict,
// nothing undeclared or stale either). A page that could not be scanned is
// a finding among the violations, so a scan that did not look at every
// page is never clean.
func (r *Report) Clean(strict bool) bool {
	return len(r.Violations) == 0 && (!strict || len(r.Undeclared)+len(r.Stale) == 0) && len(r.Pages) > 0
}

// Verdicts of a scan.
const (
	VerdictClean = consent.ScanClean
	// VerdictFail: violations, or under --strict undeclared or stale
	// cookies.
	VerdictFail = consent.ScanFail
	// VerdictInconclusive: nothing failed, but a page could not be
	// scanned, or not all it did was kept, so the scan does not show that
	// the site is clean.
	VerdictInconclusive = consent.ScanInconclusive
)

// Verdict is the scan's outcome: a violation fails it whatever else
// happened; else a page not scanned, or not wholly, makes it inconclusive.
func (r *Report) Verdict(strict bool) string {
	gaps := len(r.kinds(KindError, KindTruncated))
	switch {
	case len(r.Violations) > gaps, strict && len(r.Undeclared)+len(r.Stale) > 0:
		return VerdictFail
	case gaps > 0, len(r.Pages) == 0:
		return VerdictInconclusive
	}
	return VerdictClean
}

// NotScanned are the findings of kind KindError: the pages that could not
// be scanned, and the choices that could not be made.
func (r *Report) NotScanned() []Finding { return r.kinds(KindError) }

// Truncated are the findings of kind KindTruncated: what the scan could
// not read or keep.
func (r *Report) Truncated() []Finding { return r.kinds(KindTruncated) }

func (r *Report) kinds(kinds ...string) []Finding {
	var out []Finding
	for _, f := range r.Violations {
		if slices.Contains(kinds, f.Kind) {
			out = append(out, f)
		}
	}
	return out
}

// Finding kinds.
const (
	KindCookie  = "cookie"  // a cookie where it must not be
	KindStorage = "storage" // a storage key where it must not be
	KindRequest = "request" // a request to another site where it must not be
	KindBanner  = "banner"  // no banner, one without a first-layer reject, or one asking despite GPC
	// KindTag is a Google tag that ran before the page's Consent Mode
	// defaults were set.
	KindTag      = "tag"
	KindUnseen   = "unseen"   // a declared cookie never seen
	KindDuration = "duration" // a declared duration unlike the real one
	// KindError is a page the scan could not scan, or a choice it could
	// not make: listed among the violations, as the scan cannot pass.
	KindError = "error"
	// KindTruncated is what the scan could not read (a message of the
	// browser too large) or keep (more than 1,000 cookies, storage keys or
	// hosts of requests in a profile): listed among the violations too.
	KindTruncated = "truncated"
)

// Finding is one thing the scan reports.
type Finding struct {
	Kind    string `json:"kind"`
	Profile string `json:"profile,omitempty"` // before, rejected, accepted, withdrawn, gpc
	Page    string `json:"page,omitempty"`
	Name    string `json:"name,omitempty"`   // cookie, storage key, or a late tag's command or request
	Domain  string `json:"domain,omitempty"` // cookie domain, storage origin, request host
	URL     string `json:"url,omitempty"`    // the request
	SetBy   string `json:"set_by,omitempty"` // header or script
	Source  string `json:"source,omitempty"` // the response, script or document behind it
	// Category is the declared category, if any.
	Category string `json:"category,omitempty"`
	Declared string `json:"declared,omitempty"` // declared duration
	Actual   string `json:"actual,omitempty"`   // real lifetime
	// Count is how many requests to the same host, or late Google tags
	// on the page, the finding stands for.
	Count      int         `json:"count,omitempty"`
	Message    string      `json:"message"`
	Suggestion *Suggestion `json:"suggestion,omitempty"`
}

// declared is one cookie of the configuration.
type declared struct {
	service  *config.Service
	cookie   *config.Cookie
	category string
	required bool
}

// index holds a site's declared cookies.
type index struct {
	site    *config.Site
	cookies []declared
}

func newIndex(s *config.Site) *index {
	ix := &index{site: s}
	for _, sv := range s.Services {
		if sv == nil {
			continue
		}
		c := s.Category(sv.Category)
		for _, ck := range sv.Cookies {
			if ck != nil {
				ix.cookies = append(ix.cookies, declared{service: sv, cookie: ck, category: sv.Category, required: c != nil && c.Required})
			}
		}
	}
	return ix
}

// match finds the declaration of a cookie (or storage key: they are named
// like cookies) named name on domain; domain "" means first party.
func (ix *index) match(name, domain string, thirdParty bool) *declared {
	for i, d := range ix.cookies {
		if !nameMatches(d.cookie.Name, name) {
			continue
		}
		if d.cookie.Domain == "" && thirdParty {
			continue
		}
		if d.cookie.Domain != "" && domain != "" {
			dom := strings.TrimPrefix(domain, ".")
			if dom != d.cookie.Domain && !strings.HasSuffix(dom, "."+d.cookie.Domain) {
				continue
			}
		}
		return &ix.cookies[i]
	}
	return nil
}

func nameMatches(pattern, name string) bool {
	if p, ok := strings.CutSuffix(pattern, "*"); ok {
		return strings.HasPrefix(name, p)
	}
	return pattern == name
}

// necessary reports whether a cookie or key may be there without consent:
// the banner's own (the koekje cookie, its koekje:<site> retry queue) or
// one declared in a required category. It returns the declared category.
func (ix *index) necessary(name, domain string, thirdParty bool) (bool, string) {
	if !thirdParty && (name == "koekje" || strings.HasPrefix(name, "koekje:")) {
		return true, "necessary"
	}
	d := ix.match(name, domain, thirdParty)
	if d == nil {
		return false, ""
	}
	return d.required, d.category
}

// Check holds what the profiles saw against the site's declaration.
func Check(s *config.Site, profiles [len(ProfileNames)]*Profile) *Report {
	ix := newIndex(s)
	before, accepted := profiles[0], profiles[2]
	r := &Report{Site: s.ID, Pages: before.Pages, Profiles: profiles,
		Violations: []Finding{}, Undeclared: []Finding{}, Stale: []Finding{}}
	for _, p := range r.Profiles {
		for _, v := range p.Visits {
			if v.Status == StatusScanned {
				continue
			}
			f := Finding{Kind: KindError, Profile: p.Name, Page: v.Page, Message: "not scanned: " + v.Error}
			if v.Choice {
				f.Message = fmt.Sprintf("could not choose, so nothing was seen %s: %s", profileWords[p.Name], v.Error)
			}
			r.Violations = append(r.Violations, f)
		}
	}
	for _, p := range r.Profiles {
		for _, v := range p.Visits {
			if len(v.Cut) > 0 {
				r.Violations = append(r.Violations, Finding{Kind: KindTruncated, Profile: p.Name, Page: v.Page,
					Message: "not all seen: " + strings.Join(v.Cut, "; ")})
			}
		}
		if len(p.Cut) > 0 {
			r.Violations = append(r.Violations, Finding{Kind: KindTruncated, Profile: p.Name,
				Message: "not all kept: " + strings.Join(p.Cut, "; ")})
		}
	}
	if len(before.Pages) == 0 {
		r.Violations = append(r.Violations, Finding{Kind: KindError, Profile: Before, Message: "no page could be scanned"})
	}
	// A declared cookie never seen is stale only if the scan saw all it
	// was to see.
	complete := len(r.Violations) == 0
	for _, b := range before.Banners {
		switch {
		case !b.Shown:
			r.Violations = append(r.Violations, Finding{Kind: KindBanner, Profile: Before, Page: b.Page,
				Message: "no banner: the page does not ask for consent"})
		case !b.Reject:
			r.Violations = append(r.Violations, Finding{Kind: KindBanner, Profile: Before, Page: b.Page,
				Message: fmt.Sprintf("the banner's first layer has no reject button (language %s)", b.Lang)})
		}
	}
	// GPC is a refusal the visitor already gave: a banner that asks again
	// did not take it.
	for _, b := range profiles[4].Banners {
		if b.Shown {
			r.Violations = append(r.Violations, Finding{Kind: KindBanner, Profile: GPC, Page: b.Page,
				Message: "the banner asks for consent although the browser sent Global Privacy Control, a refusal"})
		}
	}
	// Every profile but acceptance is one of a refusal, or of no choice.
	for _, p := range []*Profile{before, profiles[1], profiles[3], profiles[4]} {
		when := profileWords[p.Name]
		for _, c := range p.Cookies {
			ok, cat := ix.necessary(c.Name, c.Domain, c.ThirdParty)
			if ok {
				continue
			}
			f := Finding{Kind: KindCookie, Profile: p.Name, Page: c.Page, Name: c.Name, Domain: c.Domain,
				SetBy: c.SetBy, Source: c.Source, Category: cat}
			held := "set"
			if p.Name == Withdrawn {
				// Cookies the withdrawal left count as much as new ones.
				held = "held"
			}
			if cat != "" {
				f.Message = fmt.Sprintf("cookie %s (declared as %s) %s %s", c.Name, cat, held, when)
			} else {
				f.Message = fmt.Sprintf("cookie %s (not declared) %s %s", c.Name, held, when)
			}
			r.Violations = append(r.Violations, f)
		}
		for _, k := range p.Storage {
			third := !SameSite(Host(k.Origin), Host(k.Page))
			ok, cat := ix.necessary(k.Key, Host(k.Origin), third)
			if ok {
				continue
			}
			f := Finding{Kind: KindStorage, Profile: p.Name, Page: k.Page, Name: k.Key, Domain: k.Origin,
				Source: k.Source, Category: cat}
			f.Message = fmt.Sprintf("%s key %s written %s", k.Area, k.Key, when)
			r.Violations = append(r.Violations, f)
		}
		hosts := map[string]int{} // host → index of its finding
		for _, q := range p.Requests {
			h := Host(q.URL)
			if i, ok := hosts[h]; ok {
				r.Violations[i].Count += q.Count
				continue
			}
			hosts[h] = len(r.Violations)
			r.Violations = append(r.Violations, Finding{Kind: KindRequest, Profile: p.Name, Page: q.Page, Domain: h,
				URL: q.URL, Source: q.Initiator, Count: q.Count,
				Message: fmt.Sprintf("request to %s (%s) %s", h, strings.ToLower(q.Type), when)})
		}
	}
	// Late consent: in any profile, whatever the choice, a Google tag
	// must not run before Consent Mode's defaults are set.
	for _, p := range r.Profiles {
		for _, t := range p.Tags {
			r.Violations = append(r.Violations, Finding{Kind: KindTag, Profile: p.Name, Page: t.Page, Name: t.What,
				Source: t.Source, Count: t.Count,
				Message: fmt.Sprintf("a Google tag ran before the page set Consent Mode's defaults (%s), %s", t.What, profileWords[p.Name])})
		}
	}

	// After acceptance: cookies the declaration lacks.
	for _, c := range accepted.Cookies {
		if ok, _ := ix.necessary(c.Name, c.Domain, c.ThirdParty); ok || ix.match(c.Name, c.Domain, c.ThirdParty) != nil {
			continue
		}
		sg := suggest(s, c)
		r.Undeclared = append(r.Undeclared, Finding{Kind: KindCookie, Profile: Accepted, Page: c.Page, Name: c.Name,
			Domain: c.Domain, SetBy: c.SetBy, Source: c.Source, Actual: lifetimeText(c),
			Message:    fmt.Sprintf("cookie %s is not declared", c.Name),
			Suggestion: sg})
	}

	// Stale: declared cookies never seen, or living longer or shorter.
	var all []Cookie
	for _, p := range profiles {
		all = append(all, p.Cookies...)
	}
	for _, d := range ix.cookies {
		var hit *Cookie
		for i, c := range all {
			if m := ix.match(c.Name, c.Domain, c.ThirdParty); m != nil && m.cookie == d.cookie {
				hit = &all[i]
				break
			}
		}
		decl := d.cookie.Duration
		if hit == nil && !complete {
			continue
		}
		if hit == nil {
			r.Stale = append(r.Stale, Finding{Kind: KindUnseen, Name: d.cookie.Name, Domain: d.cookie.Domain, Category: d.category,
				Declared: decl, Message: fmt.Sprintf("declared cookie %s (%s) was never seen", d.cookie.Name, d.service.Name)})
			continue
		}
		if msg := compareDuration(decl, hit); msg != "" {
			r.Stale = append(r.Stale, Finding{Kind: KindDuration, Profile: profileOf(hit, profiles[:]...), Page: hit.Page,
				Name: hit.Name, Domain: hit.Domain, Category: d.category, Declared: decl, Actual: lifetimeText(*hit),
				SetBy: hit.SetBy, Source: hit.Source, Message: msg})
		}
	}
	return r
}

func profileOf(c *Cookie, ps ...*Profile) string {
	for _, p := range ps {
		for i := range p.Cookies {
			if &p.Cookies[i] == c || (p.Cookies[i].Name == c.Name && p.Cookies[i].Domain == c.Domain && p.Cookies[i].Page == c.Page) {
				return p.Name
			}
		}
	}
	return ""
}

// Seconds of the units a declared duration counts in; a month is 30.44
// days and a year 365.25, as the banner counts them.
var unitSeconds = map[string]float64{"h": 3600, "d": 86400, "w": 7 * 86400, "mo": 2630016, "y": 31557600}

// compareDuration says how a cookie's real lifetime differs from the
// declared one, or "" when they agree within 10 % (a day or two in a year,
// or the rounding of a declaration in months).
func compareDuration(decl string, c *Cookie) string {
	d, err := config.ParseDuration(decl)
	if err != nil {
		return ""
	}
	if d.N == 0 {
		if c.Expires == nil {
			return ""
		}
		return fmt.Sprintf("cookie %s is declared as a session cookie but lives %s", c.Name, lifetimeText(*c))
	}
	if c.Expires == nil {
		return fmt.Sprintf("cookie %s is declared to live %s but is a session cookie", c.Name, decl)
	}
	want := float64(d.N) * unitSeconds[d.Unit]
	got := float64(c.Lifetime)
	if c.Asked != nil && *c.Asked > 0 {
		got = float64(*c.Asked)
	} else if c.Lifetime >= browserCap-86400 {
		// Only the browser's cap is known: any declaration beyond it agrees.
		want = min(want, browserCap)
	}
	if math.Abs(got-want) <= 0.1*want {
		return ""
	}
	return fmt.Sprintf("cookie %s is declared to live %s but lives %s: declare duration: %s", c.Name, decl, lifetimeText(*c), durationValue(int64(got)))
}

// browserCap is the longest Chromium keeps a cookie: 400 days.
const browserCap = 400 * 86400

// lifetimeText is a cookie's lifetime in words.
func lifetimeText(c Cookie) string {
	if c.Expires == nil {
		return "session"
	}
	if c.Asked != nil && *c.Asked > c.Lifetime+86400 {
		return humanDuration(*c.Asked) + " (Chromium keeps it " + humanDuration(c.Lifetime) + ")"
	}
	return humanDuration(c.Lifetime)
}

func humanDuration(secs int64) string {
	v := durationValue(secs)
	d, err := config.ParseDuration(v)
	if err != nil || d.N == 0 {
		return v
	}
	names := map[string]string{"h": "hour", "d": "day", "w": "week", "mo": "month", "y": "year"}
	n := names[d.Unit]
	if d.N != 1 {
		n += "s"
	}
	return fmt.Sprintf("%d %s", d.N, n)
}

// durationValue writes a lifetime as a config duration, in the largest
// unit it is close to a whole count of.
func durationValue(secs int64) string {
	if secs <= 0 {
		return "session"
	}
	s := float64(secs)
	for _, u := range []string{"y", "mo", "w", "d", "h"} {
		n := math.Round(s / unitSeconds[u])
		if n >= 1 && math.Abs(s-n*unitSeconds[u]) <= 0.03*n*unitSeconds[u] {
			return fmt.Sprintf("%d%s", int(n), u)
		}
	}
	return fmt.Sprintf("%dh", max(1, int(math.Round(s/3600))))
}

// SameSite reports whether two hosts belong to the same site: the same
// registrable domain (public suffix + 1), or the same IP address or
// single-label host.
func SameSite(a, b string) bool {
	a, b = strings.ToLower(strings.TrimSuffix(a, ".")), strings.ToLower(strings.TrimSuffix(b, "."))
	if a == b {
		return true
	}
	if net.ParseIP(a) != nil || net.ParseIP(b) != nil {
		return false
	}
	ra, err1 := publicsuffix.EffectiveTLDPlusOne(a)
	rb, err2 := publicsuffix.EffectiveTLDPlusOne(b)
	return err1 == nil && err2 == nil && ra == rb
}

// Host is the host name of URL u, or "" when u does not parse.
func Host(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return ""
	}
	return p.Hostname()
}

// Recorded is what a store keeps of the report: the JSON report itself,
// and beside it what the console lists without reading it. A report too
// large for the store is kept without its profiles' details (Compact);
// compacted says so, with the whole report's size.
func (r *Report) Recorded(strict bool) (sc *consent.Scan, compacted int, err error) {
	var js bytes.Buffer
	if err := r.Write(&js, "json", false); err != nil {
		return nil, 0, err
	}
	if whole := js.Len(); whole > consent.MaxScanReport {
		js.Reset()
		if err := r.Compact().Write(&js, "json", false); err != nil {
			return nil, 0, err
		}
		if js.Len() > consent.MaxScanReport {
			return nil, 0, fmt.Errorf("record the scan: the report is %d bytes, %d without its profiles' details, over the store's limit of %d: nothing was recorded",
				whole, js.Len(), consent.MaxScanReport)
		}
		compacted = whole
	}
	return &consent.Scan{Site: r.Site, StartedAt: r.Started, ConfigHash: r.ConfigHash, Verdict: r.Verdict(strict),
		Violations: len(r.Violations), Undeclared: len(r.Undeclared), Stale: len(r.Stale),
		URLs: r.Pages, Schedule: r.Schedule, Report: js.Bytes()}, compacted, nil
}
