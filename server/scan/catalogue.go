package scan

import (
	"fmt"
	"strings"

	"golang.org/x/net/publicsuffix"

	"github.com/koekje/koekje/config"
)

// Suggestion is a config entry for an undeclared cookie.
type Suggestion struct {
	Known    bool   `json:"known"` // false: "unknown", the entry is a skeleton to fill in
	Service  string `json:"service"`
	Name     string `json:"name"` // the service's name as visitors know it
	Provider string `json:"provider"`
	Category string `json:"category"`
	Cookie   string `json:"cookie"` // the cookie's name or family (_ga_*)
	Domain   string `json:"domain,omitempty"`
	Duration string `json:"duration"`
	Purpose  string `json:"purpose"`
	// YAML is the entry to add under the service's cookies.
	YAML string `json:"yaml"`
}

// known is one well-known cookie (or family, with a trailing *).
type known struct {
	name, domain                  string // domain: where it lives when it is third-party
	service, sname, provider, cat string
	duration, purpose             string
}

const (
	google   = "Google Ireland Ltd."
	meta     = "Meta Platforms Ireland Ltd."
	linkedin = "LinkedIn Ireland Unlimited Company"
	ms       = "Microsoft Ireland Operations Ltd."
)

// catalogue holds common cookies of the services Dutch and EU small-business
// sites embed. Durations are what the services document; the scan's own
// measurement goes into a suggestion when it has one.
var catalogue = []known{
	{"_ga", "", "google-analytics", "Google Analytics", google, "analytics", "2y", "Distinguishes visitors"},
	{"_ga_*", "", "google-analytics", "Google Analytics", google, "analytics", "2y", "Keeps the session state"},
	{"_gid", "", "google-analytics", "Google Analytics", google, "analytics", "1d", "Distinguishes visitors for a day"},
	{"_gat*", "", "google-analytics", "Google Analytics", google, "analytics", "1h", "Throttles the request rate"},
	{"_gcl_*", "", "google-ads", "Google Ads", google, "marketing", "3mo", "Links ad clicks to visits"},
	{"IDE", "doubleclick.net", "google-ads", "Google Ads", google, "marketing", "13mo", "Shows and measures ads"},
	{"NID", "google.com", "google-maps", "Google Maps", google, "embeds", "6mo", "Remembers preferences and shows ads"},
	{"AEC", "google.com", "google-maps", "Google Maps", google, "embeds", "6mo", "Detects abuse of the service"},
	{"SOCS", "google.com", "google-maps", "Google Maps", google, "embeds", "13mo", "Stores the visitor's choice about Google's cookies"},
	{"VISITOR_INFO1_LIVE", "youtube.com", "youtube", "YouTube", google + " (YouTube)", "embeds", "6mo", "Measures the connection for the player"},
	{"VISITOR_PRIVACY_METADATA", "youtube.com", "youtube", "YouTube", google + " (YouTube)", "embeds", "6mo", "Stores the visitor's cookie choice for YouTube"},
	{"YSC", "youtube.com", "youtube", "YouTube", google + " (YouTube)", "embeds", "session", "Counts views"},
	{"PREF", "youtube.com", "youtube", "YouTube", google + " (YouTube)", "embeds", "8mo", "Remembers player settings"},
	{"__Secure-YEC", "youtube.com", "youtube", "YouTube", google + " (YouTube)", "embeds", "13mo", "Detects abuse of the service"},
	{"_fbp", "", "facebook-pixel", "Facebook Pixel", meta, "marketing", "3mo", "Links visits to Facebook ads"},
	{"_fbc", "", "facebook-pixel", "Facebook Pixel", meta, "marketing", "3mo", "Stores the last Facebook ad click"},
	{"fr", "facebook.com", "facebook", "Facebook", meta, "embeds", "3mo", "Advertising"},
	{"datr", "facebook.com", "facebook", "Facebook", meta, "embeds", "13mo", "Recognises the browser for security"},
	{"sb", "facebook.com", "facebook", "Facebook", meta, "embeds", "13mo", "Recognises the browser for sign-in"},
	{"bcookie", "linkedin.com", "linkedin", "LinkedIn", linkedin, "embeds", "1y", "Recognises the browser"},
	{"bscookie", "linkedin.com", "linkedin", "LinkedIn", linkedin, "embeds", "1y", "Remembers a signed-in browser"},
	{"lidc", "linkedin.com", "linkedin", "LinkedIn", linkedin, "embeds", "1d", "Routes to a data centre"},
	{"li_gc", "linkedin.com", "linkedin", "LinkedIn", linkedin, "embeds", "6mo", "Stores the visitor's cookie choice for LinkedIn"},
	{"UserMatchHistory", "linkedin.com", "linkedin", "LinkedIn", linkedin, "marketing", "1mo", "Syncs LinkedIn ad IDs"},
	{"AnalyticsSyncHistory", "linkedin.com", "linkedin", "LinkedIn", linkedin, "marketing", "1mo", "Syncs with the li_sugr cookie"},
	{"li_sugr", "linkedin.com", "linkedin", "LinkedIn", linkedin, "marketing", "3mo", "Matches the browser to a person"},
	{"_hjSessionUser_*", "", "hotjar", "Hotjar", "Hotjar Ltd.", "analytics", "1y", "Distinguishes visitors"},
	{"_hjSession_*", "", "hotjar", "Hotjar", "Hotjar Ltd.", "analytics", "1h", "Keeps the session state"},
	{"_clck", "", "clarity", "Microsoft Clarity", ms, "analytics", "1y", "Distinguishes visitors"},
	{"_clsk", "", "clarity", "Microsoft Clarity", ms, "analytics", "1d", "Joins page views into a session"},
	{"MUID", "bing.com", "microsoft-ads", "Microsoft Advertising", ms, "marketing", "13mo", "Recognises the browser across Microsoft sites"},
	{"_uetsid", "", "microsoft-ads", "Microsoft Advertising", ms, "marketing", "1d", "Links ad clicks to visits"},
	{"_uetvid", "", "microsoft-ads", "Microsoft Advertising", ms, "marketing", "13mo", "Links ad clicks to visits"},
	{"_pk_id.*", "", "matomo", "Matomo", "", "analytics", "13mo", "Distinguishes visitors"},
	{"_pk_ses.*", "", "matomo", "Matomo", "", "analytics", "1h", "Keeps the session state"},
	{"__cf_bm", "", "cloudflare", "Cloudflare", "Cloudflare, Inc.", "necessary", "1h", "Tells bots from people"},
	{"cf_clearance", "", "cloudflare", "Cloudflare", "Cloudflare, Inc.", "necessary", "1y", "Remembers a passed challenge"},
	{"PHPSESSID", "", "php-session", "Session", "", "necessary", "session", "Keeps the visitor's session"},
	{"comment_author_*", "", "comments", "WordPress", "", "functional", "1y", "Remembers the comment form's name, e-mail and website"},
	{"wp-settings-*", "", "wordpress", "WordPress", "", "functional", "1y", "Remembers a signed-in user's settings"},
	{"wordpress_test_cookie", "", "wordpress", "WordPress", "", "necessary", "session", "Checks that cookies work"},
}

// suggest makes the config entry for an undeclared cookie: from the
// catalogue when it knows the cookie, else a skeleton marked unknown. The
// duration is the one the scan measured; the category is the site's own
// when it has one of that id.
func suggest(s *config.Site, c Cookie) *Suggestion {
	sg := &Suggestion{Service: "unknown", Name: "unknown", Provider: "unknown", Category: "unknown",
		Cookie: c.Name, Duration: durationValue(c.Lifetime), Purpose: "unknown"}
	if c.Asked != nil && *c.Asked > 0 {
		sg.Duration = durationValue(*c.Asked)
	}
	if c.ThirdParty {
		sg.Domain = registrable(c.Domain)
	}
	for _, k := range catalogue {
		if !nameMatches(k.name, c.Name) || (k.domain != "" && !strings.HasSuffix(strings.TrimPrefix(c.Domain, "."), k.domain)) {
			continue
		}
		sg.Known, sg.Service, sg.Name, sg.Provider, sg.Category, sg.Cookie, sg.Purpose =
			true, k.service, k.sname, k.provider, k.cat, k.name, k.purpose
		if sg.Provider == "" {
			sg.Provider = s.Controller.Organisation
		}
		if sg.Duration == "session" && k.duration != "session" && c.Expires == nil {
			sg.Duration = "session"
		}
		break
	}
	if sg.Known && s.Category(sg.Category) == nil {
		// The site has no category of that id: name one it has, if its
		// purpose is the same in all but name.
		alt := map[string]string{"marketing": "embeds", "embeds": "marketing", "analytics": "statistics", "statistics": "analytics"}
		if a := alt[sg.Category]; a != "" && s.Category(a) != nil {
			sg.Category = a
		}
	}
	var b strings.Builder
	if s.HasService(sg.Service) {
		fmt.Fprintf(&b, "# under services: %s, cookies:\n", sg.Service)
	} else {
		fmt.Fprintf(&b, "- id: %s\n  name: %s\n  category: %s\n  provider: %s\n  cookies:\n", sg.Service, sg.Name, sg.Category, sg.Provider)
	}
	ind := "    "
	if s.HasService(sg.Service) {
		ind = ""
	}
	fmt.Fprintf(&b, "%s- name: %q\n", ind, sg.Cookie)
	if sg.Domain != "" {
		fmt.Fprintf(&b, "%s  domain: %s\n", ind, sg.Domain)
	}
	fmt.Fprintf(&b, "%s  duration: %s\n%s  purpose: {en: %q}\n", ind, sg.Duration, ind, sg.Purpose)
	sg.YAML = b.String()
	return sg
}

// registrable is a cookie domain's registrable part: .www.youtube.com → youtube.com.
func registrable(domain string) string {
	d := strings.TrimPrefix(domain, ".")
	if r, err := publicsuffix.EffectiveTLDPlusOne(d); err == nil {
		return r
	}
	return d
}
