// Package config loads and validates Koekje's site configuration: the sites,
// their categories, services and cookies, and the texts that describe them.
package config

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"time"
)

// Languages the banner has interface texts for: the 24 official languages
// of the EU. A site may use any subset.
var Languages = []string{
	"bg", "cs", "da", "de", "el", "en", "es", "et", "fi", "fr", "ga", "hr",
	"hu", "it", "lt", "lv", "mt", "nl", "pl", "pt", "ro", "sk", "sl", "sv",
}

// ConsentTypes are the Google Consent Mode v2 storage types a category can map to.
var ConsentTypes = []string{
	"ad_storage", "ad_user_data", "ad_personalization", "analytics_storage",
	"functionality_storage", "personalization_storage", "security_storage",
}

// Config is a whole configuration file.
type Config struct {
	Sites []*Site `yaml:"sites" json:"sites"`
	// Tokens are named admin tokens, stored as SHA-256 hashes.
	Tokens []*Token `yaml:"tokens" json:"-"`
	// Warnings are what Load found questionable but not wrong, with the
	// line and path of each, as check-config prints them.
	Warnings []Problem `yaml:"-" json:"-"`
}

// Token is a named admin credential. Only its hash is kept in the file.
type Token struct {
	Name   string `yaml:"name"`
	SHA256 string `yaml:"sha256"`
	Scope  string `yaml:"scope"`
}

// Site is one website that embeds the banner.
type Site struct {
	ID              string     `yaml:"id" json:"id"`
	Name            string     `yaml:"name" json:"name"`
	Controller      Controller `yaml:"controller" json:"controller"`
	Origins         []string   `yaml:"origins" json:"-"`
	Languages       []string   `yaml:"languages" json:"languages"`
	DefaultLanguage string     `yaml:"default_language" json:"default_language"`
	Revision        int        `yaml:"revision" json:"revision"`
	ChoiceMonths    int        `yaml:"choice_months" json:"choice_months"`
	RetentionMonths int        `yaml:"retention_months" json:"-"`
	// ADPC is how the consent server takes the browser's ADPC signals.
	ADPC ADPC `yaml:"adpc" json:"-"`
	// Formality is how the banner addresses a visitor in the languages
	// with two registers: "formal" (u, Sie) or "informal" (je, du); left
	// out, Dutch is informal and German formal.
	Formality string `yaml:"formality" json:"-"`
	Intro     Text   `yaml:"intro" json:"intro,omitempty"`
	// Authority is the supervisory authority a visitor may complain to
	// (GDPR art. 77); see Load for its default.
	Authority  *Authority  `yaml:"authority" json:"authority,omitempty"`
	Categories []*Category `yaml:"categories" json:"categories"`
	Services   []*Service  `yaml:"services" json:"services"`
	// Banner is how the banner looks and where it sits.
	Banner Banner `yaml:"banner" json:"banner"`
	// Scan is the site's scheduled scan, which koekje serve runs and
	// records; nil: none.
	Scan *ScanSchedule `yaml:"scan" json:"-"`
	// FirstParty, when set, is where the site's own reverse proxy forwards
	// to Koekje: the consent API then keeps the choice in a cookie it sets
	// itself and expires refused cookies, HttpOnly ones too.
	FirstParty *FirstParty `yaml:"first_party" json:"-"`
}

// ScanSchedule is how often koekje serve scans a site, and where.
type ScanSchedule struct {
	// Every is how often: one of ScanIntervals. Each period is a slot,
	// counted in UTC from midnight (from Monday for weekly); a slot
	// that ends without a scheduled scan is missing.
	Every string `yaml:"every"`
	// Pages are where each scan starts: the site's pages, or its sitemap
	// (a URL ending in .xml). Same-origin links are followed up to
	// PagesPerProfile.
	Pages []string `yaml:"pages"`
	// PagesPerProfile is how many pages each of the scanner's profiles
	// visits, the start pages included; default 10.
	PagesPerProfile int `yaml:"pages_per_profile"`
	// Strict makes undeclared and stale cookies fail the scan too.
	Strict bool `yaml:"strict"`
}

// ScanIntervals are the values of a scheduled scan's every, and the slots
// they mean.
var ScanIntervals = map[string]time.Duration{
	"6h":     6 * time.Hour,
	"12h":    12 * time.Hour,
	"daily":  24 * time.Hour,
	"weekly": 7 * 24 * time.Hour,
}

// Interval is how long one slot of the schedule lasts.
func (s *ScanSchedule) Interval() time.Duration { return ScanIntervals[s.Every] }

// Slot returns the start of the slot t falls in: a multiple of the
// interval since 1970-01-01 UTC, weekly slots starting on Mondays.
func (s *ScanSchedule) Slot(t time.Time) time.Time {
	d := s.Interval()
	if d <= 0 {
		return t
	}
	// 1970-01-01 was a Thursday: weeks are counted from Monday 5 January.
	var epoch time.Time
	if d == ScanIntervals["weekly"] {
		epoch = time.Date(1970, 1, 5, 0, 0, 0, 0, time.UTC)
	} else {
		epoch = time.Unix(0, 0).UTC()
	}
	n := t.Sub(epoch) / d
	if t.Before(epoch.Add(n * d)) {
		n--
	}
	return epoch.Add(n * d)
}

// FirstParty is a site's first-party mode: its reverse proxy forwards a
// path prefix of the site's own origin to Koekje.
type FirstParty struct {
	// URL is the prefix on the site's origin, such as
	// https://www.example.nl/consent/: the banner's tag loads
	// URL + "s/{id}.js", and the proxy strips the path before forwarding.
	URL string `yaml:"url"`
	// CookieDomain is the Domain of the koekje cookie, the URL's host or a
	// parent of it (example.nl: one choice for www.example.nl and
	// shop.example.nl); empty, the cookie is the URL's host's alone.
	CookieDomain string `yaml:"cookie_domain"`
}

// Host is the host (and port, when not the scheme's default) that the
// site's proxy is reached at, in lower case, as a Host header names it.
func (f *FirstParty) Host() string {
	o, err := parseOrigin(f.Origin())
	if err != nil {
		return ""
	}
	if o.port != "" {
		return o.host + ":" + o.port
	}
	return o.host
}

// Hostname is Host without the port.
func (f *FirstParty) Hostname() string {
	u, err := url.Parse(f.URL)
	if err != nil {
		return ""
	}
	return strings.ToLower(u.Hostname())
}

// Origin is the site's origin the proxy serves, scheme and host.
func (f *FirstParty) Origin() string {
	u, err := url.Parse(f.URL)
	if err != nil {
		return ""
	}
	return strings.ToLower(u.Scheme + "://" + u.Host)
}

// Banner is the banner's layout, colours and settings button.
type Banner struct {
	// Layout is box (the default: a corner box that neither dims nor
	// blocks the page), bar (across the page's bottom or top) or modal (a
	// dialog that makes the page inert until a choice).
	Layout string `yaml:"layout" json:"layout"`
	// Position: for a box bottom-right (default), bottom-left,
	// bottom-center, top-right, top-left or top-center; for a bar bottom
	// (default) or top; for a modal center.
	Position       string         `yaml:"position" json:"position"`
	Colors         Colors         `yaml:"colors" json:"-"`
	SettingsButton SettingsButton `yaml:"settings_button" json:"settings_button"`
}

// Layouts are the banner's layouts and their positions; the first position
// is the default.
var Layouts = map[string][]string{
	"box":   {"bottom-right", "bottom-left", "bottom-center", "top-right", "top-left", "top-center"},
	"bar":   {"bottom", "top"},
	"modal": {"center"},
}

// Colors are a site's own colours for light and dark mode; what is not set
// keeps the default.
type Colors struct {
	Light Palette `yaml:"light"`
	Dark  Palette `yaml:"dark"`
}

// Palette is one colour scheme: "#rgb" or "#rrggbb" each.
type Palette struct {
	Accent     string `yaml:"accent"`     // main buttons, links, switches that are on
	Text       string `yaml:"text"`       // text, on Background
	Background string `yaml:"background"` // the banner's background
}

// The default palettes: calm, with main buttons in a dark slate (light) or
// a pale one (dark).
var (
	DefaultLight = Palette{Accent: "#334155", Text: "#1f2328", Background: "#ffffff"}
	DefaultDark  = Palette{Accent: "#cbd5e1", Text: "#ececef", Background: "#1c1c1f"}
)

// SettingsButton is the floating button that reopens the settings, so a
// visitor can change or withdraw a choice from any page.
type SettingsButton struct {
	// Show is auto (default: when the page has no data-koekje-settings
	// element), always or never.
	Show string `yaml:"show" json:"show"`
	// Position is bottom-left (default), bottom-right, top-left or top-right.
	Position string `yaml:"position" json:"-"`
	// OffsetX and OffsetY are its distances in px from the page's side and
	// its top or bottom edge (default 16 each), to keep clear of the
	// page's own corner widgets.
	OffsetX *int `yaml:"offset_x" json:"-"`
	OffsetY *int `yaml:"offset_y" json:"-"`
}

// ButtonShows and ButtonPositions are the settings button's options; the
// first is the default.
var (
	ButtonShows     = []string{"auto", "always", "never"}
	ButtonPositions = []string{"bottom-left", "bottom-right", "top-left", "top-right"}
)

// Controller is the organisation responsible for the processing (GDPR art. 4(7)).
type Controller struct {
	Organisation  string `yaml:"organisation" json:"organisation"`
	Address       string `yaml:"address" json:"address,omitempty"`
	Email         string `yaml:"email" json:"email"`
	PrivacyPolicy string `yaml:"privacy_policy" json:"privacy_policy"`
	// Jurisdiction is the ISO 3166 country or region whose law applies, as
	// consent receipts name it; "EU" when empty.
	Jurisdiction string `yaml:"jurisdiction" json:"-"`
}

// Authority is a data protection supervisory authority.
type Authority struct {
	Name string `yaml:"name" json:"name"`
	URL  string `yaml:"url" json:"url"`
}

// DutchAuthority is the authority of sites under Dutch law, the default for
// a site whose jurisdiction is NL, or unset with Dutch as default language.
var DutchAuthority = Authority{Name: "Autoriteit Persoonsgegevens", URL: "https://www.autoriteitpersoonsgegevens.nl"}

// Authorities are the supervisory authorities of the EU countries with one
// authority for the whole country, by ISO 3166 code, named in the country's
// language (the first official one for BE and LU): the default authority
// of a site whose jurisdiction is that country. Germany has none: a German
// company answers to its federal state's authority, which the site names.
var Authorities = map[string]Authority{
	"AT": {"Österreichische Datenschutzbehörde", "https://www.dsb.gv.at"},
	"BE": {"Gegevensbeschermingsautoriteit", "https://www.gegevensbeschermingsautoriteit.be"},
	"BG": {"Комисия за защита на личните данни", "https://www.cpdp.bg"},
	"CY": {"Επίτροπος Προστασίας Δεδομένων Προσωπικού Χαρακτήρα", "https://www.dataprotection.gov.cy"},
	"CZ": {"Úřad pro ochranu osobních údajů", "https://uoou.gov.cz"},
	"DK": {"Datatilsynet", "https://www.datatilsynet.dk"},
	"EE": {"Andmekaitse Inspektsioon", "https://www.aki.ee"},
	"ES": {"Agencia Española de Protección de Datos", "https://www.aepd.es"},
	"FI": {"Tietosuojavaltuutetun toimisto", "https://tietosuoja.fi"},
	"FR": {"Commission nationale de l'informatique et des libertés (CNIL)", "https://www.cnil.fr"},
	"GR": {"Αρχή Προστασίας Δεδομένων Προσωπικού Χαρακτήρα", "https://www.dpa.gr"},
	"HR": {"Agencija za zaštitu osobnih podataka", "https://azop.hr"},
	"HU": {"Nemzeti Adatvédelmi és Információszabadság Hatóság", "https://naih.hu"},
	"IE": {"Data Protection Commission", "https://www.dataprotection.ie"},
	"IT": {"Garante per la protezione dei dati personali", "https://www.garanteprivacy.it"},
	"LT": {"Valstybinė duomenų apsaugos inspekcija", "https://vdai.lrv.lt"},
	"LU": {"Commission nationale pour la protection des données", "https://cnpd.public.lu"},
	"LV": {"Datu valsts inspekcija", "https://www.dvi.gov.lv"},
	"MT": {"Information and Data Protection Commissioner", "https://idpc.org.mt"},
	"NL": DutchAuthority,
	"PL": {"Urząd Ochrony Danych Osobowych", "https://uodo.gov.pl"},
	"PT": {"Comissão Nacional de Proteção de Dados", "https://www.cnpd.pt"},
	"RO": {"Autoritatea Națională de Supraveghere a Prelucrării Datelor cu Caracter Personal", "https://www.dataprotection.ro"},
	"SE": {"Integritetsskyddsmyndigheten", "https://www.imy.se"},
	"SI": {"Informacijski pooblaščenec", "https://www.ip-rs.si"},
	"SK": {"Úrad na ochranu osobných údajov Slovenskej republiky", "https://dataprotection.gov.sk"},
}

// Category groups services a visitor grants or refuses together.
type Category struct {
	ID          string   `yaml:"id" json:"id"`
	Required    bool     `yaml:"required" json:"required,omitempty"`
	ConsentMode []string `yaml:"consent_mode" json:"consent_mode,omitempty"`
	Title       Text     `yaml:"title" json:"title"`
	Description Text     `yaml:"description" json:"description"`
}

// Service is a first- or third-party party that sets cookies in a category.
type Service struct {
	ID string `yaml:"id" json:"id"`
	// Name is the short name visitors know the service by ("YouTube"),
	// used on buttons; Provider is the legal entity behind it.
	Name          string `yaml:"name" json:"name"`
	Category      string `yaml:"category" json:"category"`
	Provider      string `yaml:"provider" json:"provider"`
	PrivacyPolicy string `yaml:"privacy_policy" json:"privacy_policy,omitempty"`
	// Retention is how long the data the service collects is kept, like
	// "14mo"; a cookie may say otherwise for its own data.
	Retention string    `yaml:"retention" json:"retention,omitempty"`
	Cookies   []*Cookie `yaml:"cookies" json:"cookies"`
}

// Cookie is one cookie, or a family of them when Name ends in "*".
type Cookie struct {
	Name   string `yaml:"name" json:"name"`
	Domain string `yaml:"domain" json:"domain,omitempty"`
	// Path is the path the cookie is set on, when it is not "/": a refusal
	// through a first-party proxy expires it there.
	Path     string `yaml:"path" json:"path,omitempty"`
	Duration string `yaml:"duration" json:"duration"`
	// Retention is how long the data this cookie carries is kept, where it
	// differs from its service's.
	Retention string `yaml:"retention" json:"retention,omitempty"`
	Purpose   Text   `yaml:"purpose" json:"purpose"`
}

// Text holds one string per language code.
type Text map[string]string

// Site returns the site with the given id, or nil.
func (c *Config) Site(id string) *Site {
	for _, s := range c.Sites {
		if s != nil && s.ID == id {
			return s
		}
	}
	return nil
}

// Category returns the category with the given id, or nil.
func (s *Site) Category(id string) *Category {
	for _, c := range s.Categories {
		if c != nil && c.ID == id { // nil: an empty entry, which validation reports
			return c
		}
	}
	return nil
}

// HasLanguage reports whether the site offers lang.
func (s *Site) HasLanguage(lang string) bool {
	for _, l := range s.Languages {
		if l == lang {
			return true
		}
	}
	return false
}

// AllowsOrigin reports whether a browser on origin may call the API for this
// site. self is the consent server's own origin ("https://consent.example.nl").
// Scheme and host compare case-insensitively and a default port (:80 for
// http, :443 for https) is the same as none, as browsers and
// validateOriginPattern read them: what check-config accepts, the server
// accepts.
func (s *Site) AllowsOrigin(origin, self string) bool {
	o, err := parseOrigin(origin)
	if err != nil || o.anyPort || o.wildcard {
		return false
	}
	for _, p := range s.Origins {
		if originMatches(p, o, self) {
			return true
		}
	}
	return false
}

func originMatches(pattern string, o origin, self string) bool {
	if pattern == "self" {
		pattern = self
	}
	p, err := parsePattern(pattern)
	if err != nil || p.scheme != o.scheme || (!p.anyPort && p.port != o.port) {
		return false
	}
	if !p.wildcard {
		return p.host == o.host
	}
	// *.example.nl is one label more: www.example.nl, not example.nl nor
	// a.b.example.nl.
	label, ok := strings.CutSuffix(o.host, "."+p.host)
	return ok && label != "" && !strings.Contains(label, ".")
}

// An origin is a browser origin or an entry of a site's origins list in
// its canonical form: scheme and host in lower case, the port left empty
// when it is the scheme's default.
type origin struct {
	scheme, host, port string
	anyPort            bool // host:* (patterns only)
	wildcard           bool // *.host (patterns only)
}

// parsePattern is parseOrigin of a site's origins entry or the server's
// own origin, parsed once: every API call from a page matches its origin
// against them, and url.Parse was most of that. Only these are kept, never
// the origin a request names.
func parsePattern(pattern string) (origin, error) {
	if v, ok := patterns.Load(pattern); ok {
		p := v.(parsedPattern)
		return p.o, p.err
	}
	o, err := parseOrigin(pattern)
	patterns.Store(pattern, parsedPattern{o, err})
	return o, err
}

type parsedPattern struct {
	o   origin
	err error
}

var patterns sync.Map // pattern → parsedPattern

// parseOrigin reads scheme://host[:port], with :* for any port and a
// leading *. for any one label. It takes no path, query, fragment or user.
func parseOrigin(s string) (origin, error) {
	var o origin
	scheme, rest, ok := strings.Cut(s, "://")
	o.scheme = strings.ToLower(scheme)
	if !ok || (o.scheme != "http" && o.scheme != "https") || rest == "" {
		return o, errNotOrigin
	}
	if strings.ContainsAny(rest, "/?#@") {
		return o, errPath
	}
	if h, ok := strings.CutSuffix(rest, ":*"); ok {
		rest, o.anyPort = h, true
	}
	if h, ok := strings.CutPrefix(rest, "*."); ok {
		rest, o.wildcard = h, true
	}
	u, err := url.Parse(o.scheme + "://" + rest)
	if err != nil || u.Host != rest || u.Hostname() == "" || strings.Contains(u.Hostname(), "*") {
		return o, errNotOrigin
	}
	if o.anyPort && u.Port() != "" {
		return o, errTwoPorts
	}
	o.host, o.port = strings.ToLower(u.Hostname()), u.Port()
	if strings.Contains(o.host, ":") {
		o.host = "[" + o.host + "]"
	}
	if (o.scheme == "http" && o.port == "80") || (o.scheme == "https" && o.port == "443") {
		o.port = ""
	}
	// A wildcard under a top-level domain alone (*.nl) would admit every
	// site of that country; *.localhost is this machine's.
	if o.wildcard && !strings.Contains(o.host, ".") && o.host != "localhost" {
		return o, errWideWildcard
	}
	return o, nil
}

var (
	errNotOrigin    = errors.New("is not an origin like https://www.example.nl, https://*.example.nl (any one label), http://localhost:* (any port) or self")
	errPath         = errors.New("must not have a path, query or user")
	errTwoPorts     = errors.New("has both a port and :*")
	errWideWildcard = errors.New("is a wildcard under a top-level domain: name the domain, such as https://*.example.nl")
)

// Public is what the banner needs to know about a site: everything but origins,
// tokens and retention. Its canonical JSON is what ConfigHash covers.
func (s *Site) Public() ([]byte, error) {
	return json.Marshal(s)
}

// Hash is "sha256:" followed by the hex SHA-256 of b.
func Hash(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// validateOriginPattern checks one entry of a site's origins list with the
// parser AllowsOrigin matches by.
func validateOriginPattern(o string) error {
	if o == "self" {
		return nil
	}
	if _, err := parseOrigin(o); err != nil {
		return fmt.Errorf("%q %w", o, err)
	}
	return nil
}

// HasService reports whether the site declares a service with this id.
func (s *Site) HasService(id string) bool { return s.Service(id) != nil }

// Service returns the service with the given id, or nil.
func (s *Site) Service(id string) *Service {
	for _, sv := range s.Services {
		if sv != nil && sv.ID == id {
			return sv
		}
	}
	return nil
}

// ADPC is how a site takes Advanced Data Protection Control signals: a
// withdrawal or an objection is always honoured as a refusal.
type ADPC struct {
	// Consent takes an ADPC consent to one of the site's current requests
	// as consent, as far as the specification allows (see
	// consent.ApplySignals): it then keeps a purpose the visitor granted in
	// the banner from the same header's withdrawal of everything. Off by
	// default: a browser's general withdrawal refuses every optional
	// purpose, whatever consents come with it.
	Consent bool `yaml:"consent"`
}
