package config

import (
	"fmt"
	"net"
	"net/mail"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

var (
	idPattern       = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)
	cookiePattern   = regexp.MustCompile(`^[!#$%&'+\-.^_` + "`" + `|~0-9A-Za-z]+\*?$`)
	durationPattern = regexp.MustCompile(`^([1-9][0-9]{0,3})(h|d|w|mo|y)$`)
	// firstPartyURL is a prefix of an origin over https, or over http on
	// this machine; sites.schema.json has the same pattern.
	firstPartyURL = regexp.MustCompile(`^(https://[^/?#@\s]+|http://(localhost|[^/?#@\s]+\.localhost|127\.0\.0\.1)(:[0-9]+)?)/([^/?#\s]+/)+$`)
	// cookiePathPattern is a cookie's Path as a Set-Cookie may carry it.
	cookiePathPattern   = regexp.MustCompile(`^/[!-:<-~]*$`)
	cookieDomainPattern = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$`)
)

// Formalities are how a site's banner may address visitors in Dutch and
// German.
var Formalities = []string{"formal", "informal"}

// Scopes of admin tokens: audit reads and exports, admin may also change things.
var Scopes = []string{"audit", "admin"}

type validator struct{ errs, warns []Problem }

func (v *validator) add(path, format string, args ...any) {
	v.errs = append(v.errs, Problem{Path: path, Msg: fmt.Sprintf(format, args...)})
}

// warn reports what is allowed but probably not meant.
func (v *validator) warn(path, format string, args ...any) {
	v.warns = append(v.warns, Problem{Path: path, Msg: fmt.Sprintf(format, args...)})
}

// cross reports a failed check of a rule the JSON Schema cannot make.
func (v *validator) cross(rule, path, format string, args ...any) {
	v.errs = append(v.errs, Problem{Path: path, Msg: fmt.Sprintf(format, args...), Rule: rule})
}

// CrossFieldRules are the checks of Load that sites.schema.json cannot
// make: a value held against another part of the file, a computation, a
// parser's reading, or the file's shape. The schema's description lists
// them in these words; a file that breaks only these passes the schema and
// fails Load. Every other check is in both.
var CrossFieldRules = map[string]string{
	"unique-ids":       "site, category and service ids, and token names, are unique",
	"default-language": "default_language is one of the site's languages",
	"site-languages":   "every text has exactly the site's languages",
	"service-category": "a service's category is one of the site's categories",
	"contrast":         "text and accent colours have 4.5:1 contrast on the background (WCAG AA), defaults included",
	"email":            "controller.email is one address as Go's net/mail reads it; here only its rough shape is checked",
	"url":              "URLs and origins parse as Go's net/url reads them; here only their scheme and host's rough shape are checked",
	"first-party":      "first_party.url's origin is one of the site's origins, and its cookie_domain is that URL's host or a parent domain of it",
	"one-document":     "the file holds one YAML document",
}

func (c *Config) validate() (errs, warns []Problem) {
	v := &validator{}
	if len(c.Sites) == 0 {
		v.add("sites", "at least one site is required")
	}
	seen := map[string]bool{}
	for i, s := range c.Sites {
		p := fmt.Sprintf("sites[%d]", i)
		if s == nil {
			v.add(p, "empty site")
			continue
		}
		if seen[s.ID] {
			v.cross("unique-ids", p+".id", "duplicate site id %q", s.ID)
		}
		seen[s.ID] = true
		v.site(p, s)
	}
	names := map[string]bool{}
	for i, t := range c.Tokens {
		p := fmt.Sprintf("tokens[%d]", i)
		if t == nil {
			v.add(p, "empty token")
			continue
		}
		if t.Name == "" {
			v.add(p+".name", "required")
		} else if names[t.Name] {
			v.cross("unique-ids", p+".name", "duplicate token name %q", t.Name)
		}
		names[t.Name] = true
		if b, ok := strings.CutPrefix(t.SHA256, "sha256:"); !ok || len(b) != 64 || strings.Trim(b, "0123456789abcdef") != "" {
			v.add(p+".sha256", `must be "sha256:" and 64 lower-case hex digits (koekje token prints it)`)
		}
		if !slices.Contains(Scopes, t.Scope) {
			v.add(p+".scope", "must be one of %s", strings.Join(Scopes, ", "))
		}
	}
	return v.errs, v.warns
}

func (v *validator) site(p string, s *Site) {
	if !idPattern.MatchString(s.ID) {
		v.add(p+".id", "must be lower-case letters, digits, - or _ (at most 63), got %q", s.ID)
	}
	if strings.TrimSpace(s.Name) == "" {
		v.add(p+".name", "required")
	}
	v.controller(p+".controller", &s.Controller)
	if len(s.Origins) == 0 {
		v.add(p+".origins", "at least one origin is required")
	}
	for i, o := range s.Origins {
		if err := validateOriginPattern(o); err != nil {
			v.cross("url", fmt.Sprintf("%s.origins[%d]", p, i), "%v", err)
		}
	}
	if len(s.Languages) == 0 {
		v.add(p+".languages", "at least one language is required")
	}
	for i, l := range s.Languages {
		if !slices.Contains(Languages, l) {
			v.add(fmt.Sprintf("%s.languages[%d]", p, i), "unsupported language %q (supported: %s)", l, strings.Join(Languages, ", "))
		}
	}
	if len(s.Languages) > 0 && !slices.Contains(s.Languages, s.DefaultLanguage) {
		v.cross("default-language", p+".default_language", "%q is not one of the site's languages", s.DefaultLanguage)
	}
	if s.Revision < 1 {
		v.add(p+".revision", "must be 1 or more")
	}
	if s.ChoiceMonths < 1 || s.ChoiceMonths > 13 {
		v.add(p+".choice_months", "must be between 1 and 13 months, got %d", s.ChoiceMonths)
	}
	if s.Formality != "" && !slices.Contains(Formalities, s.Formality) {
		v.add(p+".formality", "must be one of %s, got %q", strings.Join(Formalities, ", "), s.Formality)
	}
	if s.RetentionMonths < 0 {
		v.add(p+".retention_months", "must not be negative")
	}
	if s.Intro != nil {
		v.text(p+".intro", s.Intro, s.Languages)
		// The banner fills in {purposes} from the categories and services,
		// so the first layer always says what a visitor is asked for.
		for _, l := range s.Languages {
			if t := s.Intro[l]; strings.TrimSpace(t) != "" && !strings.Contains(t, "{purposes}") {
				v.warn(join(p+".intro", l), "has no {purposes}: the first layer will not say what the visitor is asked to allow and who receives data; put {purposes} where Koekje should write it")
			}
		}
	}
	if a := s.Authority; a != nil {
		if strings.TrimSpace(a.Name) == "" {
			v.add(p+".authority.name", "required: the supervisory authority's name")
		}
		if !isWebURL(a.URL) {
			v.cross("url", p+".authority.url", "must be an http(s) URL, got %q", a.URL)
		}
	}
	v.categories(p, s)
	v.services(p, s)
	v.banner(p+".banner", &s.Banner)
	if s.Scan != nil {
		v.scan(p+".scan", s)
	}
	if s.FirstParty != nil {
		v.firstParty(p+".first_party", s)
	}
}

// MaxScanPages bounds a scheduled scan's start pages and its pages per
// profile, so that one site's schedule cannot occupy the scanner's browser
// for long.
const MaxScanPages = 50

func (v *validator) scan(p string, s *Site) {
	sc := s.Scan
	if _, ok := ScanIntervals[sc.Every]; !ok {
		v.add(p+".every", "must be one of 6h, 12h, daily, weekly, got %q", sc.Every)
	}
	if len(sc.Pages) == 0 {
		v.add(p+".pages", "at least one page (or the site's sitemap) is required")
	}
	if len(sc.Pages) > MaxScanPages {
		v.add(p+".pages", "at most %d pages, got %d", MaxScanPages, len(sc.Pages))
	}
	for i, u := range sc.Pages {
		pp := fmt.Sprintf("%s.pages[%d]", p, i)
		if !isWebURL(u) {
			v.cross("url", pp, "must be an http(s) URL, got %q", u)
			continue
		}
		if o, err := url.Parse(u); err == nil && !s.AllowsOrigin(o.Scheme+"://"+o.Host, "") {
			v.warn(pp, "%s is not one of the site's origins: the scan holds its pages against this site's declaration all the same", o.Scheme+"://"+o.Host)
		}
	}
	if sc.PagesPerProfile < 0 || sc.PagesPerProfile > MaxScanPages {
		v.add(p+".pages_per_profile", "must be between 1 and %d, got %d", MaxScanPages, sc.PagesPerProfile)
	}
}

// firstParty checks a site's first-party mode: a prefix of an origin the
// site may record from, over https (plain http only on this machine, where
// browsers count it as secure and keep Secure cookies).
func (v *validator) firstParty(p string, s *Site) {
	f := s.FirstParty
	u, err := url.Parse(f.URL)
	switch {
	case f.URL == "":
		v.add(p+".url", "required: the prefix of the site's own origin that its reverse proxy forwards to Koekje, like https://www.example.nl/consent/")
		return
	case !firstPartyURL.MatchString(f.URL):
		v.add(p+".url", "must be https://, the site's host and a path that begins and ends with / (not / alone), like https://www.example.nl/consent/; http:// only for localhost, *.localhost and 127.0.0.1; got %q", f.URL)
		return
	case err != nil || u.Hostname() == "" || u.User != nil:
		v.cross("url", p+".url", "is not a URL Go reads, got %q", f.URL)
		return
	}
	if !s.AllowsOrigin(f.Origin(), "") {
		v.cross("first-party", p+".url", "its origin %s must be one of the site's origins: the banner records choices from it", f.Origin())
	}
	if d := f.CookieDomain; d != "" {
		host := f.Hostname()
		switch {
		case !cookieDomainPattern.MatchString(d):
			v.add(p+".cookie_domain", "must be a domain name like example.nl, got %q", d)
		case net.ParseIP(strings.Trim(host, "[]")) != nil || (host != d && !strings.HasSuffix(host, "."+d)):
			v.cross("first-party", p+".cookie_domain", "must be %s or a domain above it (a browser takes the cookie only there), got %q", host, d)
		}
	}
}

func (v *validator) banner(p string, b *Banner) {
	if pos, ok := Layouts[b.Layout]; !ok {
		v.add(p+".layout", "must be box, bar or modal, got %q", b.Layout)
	} else if !slices.Contains(pos, b.Position) {
		v.add(p+".position", "a %s's position is one of %s, got %q", b.Layout, strings.Join(pos, ", "), b.Position)
	}
	v.palette(p+".colors.light", b.Colors.Light, DefaultLight)
	v.palette(p+".colors.dark", b.Colors.Dark, DefaultDark)
	sb := b.SettingsButton
	if !slices.Contains(ButtonShows, sb.Show) {
		v.add(p+".settings_button.show", "must be one of %s, got %q", strings.Join(ButtonShows, ", "), sb.Show)
	}
	if !slices.Contains(ButtonPositions, sb.Position) {
		v.add(p+".settings_button.position", "must be one of %s, got %q", strings.Join(ButtonPositions, ", "), sb.Position)
	}
	for i, o := range []*int{sb.OffsetX, sb.OffsetY} {
		if o != nil && (*o < 0 || *o > 400) {
			v.add(p+".settings_button."+[]string{"offset_x", "offset_y"}[i], "must be 0 to 400 (px), got %d", *o)
		}
	}
}

func (v *validator) controller(p string, c *Controller) {
	if strings.TrimSpace(c.Organisation) == "" {
		v.add(p+".organisation", "required")
	}
	if a, err := mail.ParseAddress(c.Email); err != nil || a.Address != c.Email {
		v.cross("email", p+".email", "must be an e-mail address, got %q", c.Email)
	}
	if !isWebURL(c.PrivacyPolicy) {
		v.cross("url", p+".privacy_policy", "must be an http(s) URL, got %q", c.PrivacyPolicy)
	}
}

func (v *validator) categories(p string, s *Site) {
	if len(s.Categories) == 0 {
		v.add(p+".categories", "at least one category is required")
		return
	}
	seen := map[string]bool{}
	for i, c := range s.Categories {
		cp := fmt.Sprintf("%s.categories[%d]", p, i)
		if c == nil {
			v.add(cp, "empty category")
			continue
		}
		if !idPattern.MatchString(c.ID) {
			v.add(cp+".id", "must be lower-case letters, digits, - or _, got %q", c.ID)
		}
		if seen[c.ID] {
			v.cross("unique-ids", cp+".id", "duplicate category id %q", c.ID)
		}
		seen[c.ID] = true
		if c.ID == "necessary" && !c.Required {
			v.add(cp+".required", "the necessary category must be required")
		}
		for j, t := range c.ConsentMode {
			if !slices.Contains(ConsentTypes, t) {
				v.add(fmt.Sprintf("%s.consent_mode[%d]", cp, j), "unknown consent type %q (one of %s)", t, strings.Join(ConsentTypes, ", "))
			}
		}
		v.text(cp+".title", c.Title, s.Languages)
		v.text(cp+".description", c.Description, s.Languages)
	}
	if !seen["necessary"] {
		v.add(p+".categories", `a category with id "necessary" is required`)
	}
}

func (v *validator) services(p string, s *Site) {
	seen := map[string]bool{}
	for i, sv := range s.Services {
		sp := fmt.Sprintf("%s.services[%d]", p, i)
		if sv == nil {
			v.add(sp, "empty service")
			continue
		}
		if !idPattern.MatchString(sv.ID) {
			v.add(sp+".id", "must be lower-case letters, digits, - or _, got %q", sv.ID)
		}
		if seen[sv.ID] {
			v.cross("unique-ids", sp+".id", "duplicate service id %q", sv.ID)
		}
		seen[sv.ID] = true
		if n := strings.TrimSpace(sv.Name); n == "" {
			v.add(sp+".name", "required: the short name visitors know the service by, like YouTube")
		} else if len([]rune(sv.Name)) > 40 || n != sv.Name {
			v.add(sp+".name", "must be at most 40 characters without leading or trailing spaces, got %q", sv.Name)
		}
		if s.Category(sv.Category) == nil {
			v.cross("service-category", sp+".category", "unknown category %q", sv.Category)
		}
		if strings.TrimSpace(sv.Provider) == "" {
			v.add(sp+".provider", "required")
		}
		if sv.PrivacyPolicy != "" && !isWebURL(sv.PrivacyPolicy) {
			v.cross("url", sp+".privacy_policy", "must be an http(s) URL, got %q", sv.PrivacyPolicy)
		}
		v.retention(sp+".retention", sv.Retention)
		for j, ck := range sv.Cookies {
			cp := fmt.Sprintf("%s.cookies[%d]", sp, j)
			if ck == nil {
				v.add(cp, "empty cookie")
				continue
			}
			if !cookiePattern.MatchString(ck.Name) {
				v.add(cp+".name", "must be a cookie name, optionally ending in * for a family, got %q", ck.Name)
			}
			if ck.Path != "" && !cookiePathPattern.MatchString(ck.Path) {
				v.add(cp+".path", "must begin with / and hold only printable ASCII without spaces or ;, got %q", ck.Path)
			}
			if ck.Domain != "" && strings.ContainsAny(ck.Domain, "/:* ") {
				v.add(cp+".domain", "must be a domain name, got %q", ck.Domain)
			}
			if _, err := ParseDuration(ck.Duration); err != nil {
				v.add(cp+".duration", "%v", err)
			}
			v.retention(cp+".retention", ck.Retention)
			v.text(cp+".purpose", ck.Purpose, s.Languages)
		}
	}
}

// retention checks an optional retention: a count and a unit, as for a
// cookie's duration; data is not kept "until the browser closes".
func (v *validator) retention(p, r string) {
	if r == "" {
		return
	}
	if d, err := ParseDuration(r); err != nil || d.N == 0 {
		v.add(p, `must be a count and a unit h, d, w, mo or y (like "14mo", "1y"), got %q`, r)
	}
}

func (v *validator) text(p string, t Text, langs []string) {
	for _, l := range langs {
		if strings.TrimSpace(t[l]) == "" {
			v.cross("site-languages", p, "missing text for language %q", l)
		}
	}
	for l := range t {
		if !slices.Contains(langs, l) {
			v.cross("site-languages", join(p, l), "text for language %q, which the site does not offer", l)
		}
	}
}

func isWebURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "https" || u.Scheme == "http") && u.Host != ""
}

// Duration is how long a cookie lives: a count of a unit, or the session.
type Duration struct {
	N    int    // 0 for a session cookie
	Unit string // h, d, w, mo, y
}

// ParseDuration reads "session", or a count and a unit: "1d", "13mo", "2y".
func ParseDuration(s string) (Duration, error) {
	if s == "session" {
		return Duration{}, nil
	}
	m := durationPattern.FindStringSubmatch(s)
	if m == nil {
		return Duration{}, fmt.Errorf(`must be "session" or a count and a unit h, d, w, mo or y (like "1d", "13mo", "2y"), got %q`, s)
	}
	n, _ := strconv.Atoi(m[1])
	return Duration{N: n, Unit: m[2]}, nil
}
