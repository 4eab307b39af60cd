package server

import (
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/koekje/koekje/config"
	"github.com/koekje/koekje/server/consent"
)

// First-party mode: a site's reverse proxy forwards a prefix of the site's
// own origin to Koekje (config.FirstParty). A consent POST that came that
// way is answered with the koekje cookie in Set-Cookie, which Safari keeps
// for the lifetime the site chose (it caps cookies written by scripts at 7
// days), and a refusal expires the refused services' declared cookies,
// the HttpOnly ones the banner cannot see included. A POST that reached
// Koekje's own origin is answered as before: the banner writes the cookie.

// choiceCookieName is the cookie that holds a visitor's choice on the site.
const choiceCookieName = "koekje"

// monthSeconds is the banner's month: 30.44 days.
const monthSeconds = 2630016

// maxExpiredNames bounds the cookies of the request's Cookie header that
// one answer expires by a declared pattern: a browser keeps about 180 a
// domain, and each costs a Set-Cookie per domain.
const maxExpiredNames = 64

// viaProxy reports whether a request for site came through the site's
// proxy: the host the browser asked is the first-party URL's.
func (s *Server) viaProxy(site *config.Site, r *http.Request) bool {
	return site != nil && site.FirstParty != nil && s.askedHost(r) == site.FirstParty.Host()
}

// askedHost is the host the browser asked for: X-Forwarded-Host from a
// trusted proxy (nginx passes its upstream's name as Host unless told),
// else Host; in lower case, without a default port.
func (s *Server) askedHost(r *http.Request) string {
	h := r.Host
	if s.fromProxy(r) {
		if x := r.Header.Get("X-Forwarded-Host"); x != "" {
			h, _, _ = strings.Cut(x, ",")
		}
	}
	h = strings.ToLower(strings.TrimSpace(h))
	if b, ok := strings.CutSuffix(h, ":443"); ok {
		return b
	}
	if b, ok := strings.CutSuffix(h, ":80"); ok {
		return b
	}
	return h
}

// setChoiceCookies adds to the answer of a POST that came through a
// first-party site's proxy the koekje cookie for rec and, for a choice,
// the expiry of every cookie it refuses. A POST to Koekje's own origin
// gets none: the banner keeps the choice there itself.
func (s *Server) setChoiceCookies(c echo.Context, rec *consent.Record, token string) {
	site := s.cfg.Site(rec.Site)
	r := c.Request()
	if !s.viaProxy(site, r) {
		return
	}
	h := c.Response().Header()
	header := r.Header.Get("Cookie")
	var value string
	if rec.Action == "load_once" {
		// Loading one embed once changes no choice, but the visitor's
		// newest token is this answer's: the cookie keeps its choice.
		value = withToken(cookieValue(header, choiceCookieName), rec.ConsentID.String(), token)
	} else {
		value = choiceValue(site, rec, token)
		for _, v := range expiredCookies(site, rec, header) {
			h.Add("Set-Cookie", v)
		}
	}
	if value != "" {
		h.Add("Set-Cookie", choiceCookie(site, value))
	}
}

// choiceValue is the koekje cookie's value for rec, as the banner writes
// and reads it: "1|consent id|revision|granted categories|granted
// services|token|gpc", percent-encoded as encodeURIComponent does.
func choiceValue(site *config.Site, rec *consent.Record, token string) string {
	var cats []string
	for _, c := range site.Categories {
		if c != nil && !c.Required && rec.Choices[c.ID] {
			cats = append(cats, c.ID)
		}
	}
	gpc := "0"
	if rec.GPC && rec.Action == "reject_all" {
		gpc = "1"
	}
	return uriEscape(strings.Join([]string{"1", rec.ConsentID.String(), strconv.Itoa(rec.Revision),
		strings.Join(cats, ","), strings.Join(rec.Services, ","), token, gpc}, "|"))
}

// withToken is the koekje cookie value v with its token replaced, when v
// is a choice of consent ID id; "" otherwise.
func withToken(v, id, token string) string {
	raw, err := url.PathUnescape(v)
	p := strings.Split(raw, "|")
	if err != nil || len(p) != 7 || p[0] != "1" || p[1] != id {
		return ""
	}
	p[5] = token
	return uriEscape(strings.Join(p, "|"))
}

// choiceCookie is the Set-Cookie of the koekje cookie: Secure (the site is
// https, or this machine, which browsers count as secure), SameSite=Lax,
// on the site's cookie domain or host, for the months the site keeps a
// choice. Not HttpOnly: the banner reads the choice from it.
func choiceCookie(site *config.Site, value string) string {
	b := make([]byte, 0, 160+len(value))
	b = append(b, choiceCookieName+"="...)
	b = append(b, value...)
	b = append(b, "; Path=/"...)
	if d := site.FirstParty.CookieDomain; d != "" {
		b = append(b, "; Domain="...)
		b = append(b, d...)
	}
	b = append(b, "; Max-Age="...)
	b = strconv.AppendInt(b, int64(site.ChoiceMonths)*monthSeconds, 10)
	b = append(b, "; Secure; SameSite=Lax"...)
	return string(b)
}

// expiredCookies are the Set-Cookie headers that expire what rec refuses:
// the declared cookies of every service whose category is refused and
// that was not granted on its own. A cookie declared on another site's
// domain is not the site's to expire. Each name is expired on its declared
// path ("/" when none), host-only and on the host and every domain above it
// (but the top level), since the request does not say where a cookie was
// set; exact names always, names of a family (_ga_*) as the request's
// Cookie header has them. The koekje cookie itself is never among them.
func expiredCookies(site *config.Site, rec *consent.Record, cookieHeader string) []string {
	host := site.FirstParty.Hostname()
	var names []cookieAt
	var have []string // the request's cookie names, read when a family needs them
	read := false
	for _, sv := range site.Services {
		if sv == nil || rec.Choices[sv.Category] || slices.Contains(rec.Services, sv.ID) {
			continue
		}
		for _, ck := range sv.Cookies {
			if ck == nil || ck.Domain != "" && host != ck.Domain && !strings.HasSuffix(host, "."+ck.Domain) {
				continue
			}
			path := ck.Path
			if path == "" {
				path = "/"
			}
			prefix, family := strings.CutSuffix(ck.Name, "*")
			if !family {
				names = appendName(names, cookieAt{ck.Name, path})
				continue
			}
			if !read {
				have, read = cookieNames(cookieHeader, maxExpiredNames), true
			}
			for _, n := range have {
				if strings.HasPrefix(n, prefix) {
					names = appendName(names, cookieAt{n, path})
				}
			}
		}
	}
	domains := parentDomains(host)
	out := make([]string, 0, len(names)*(1+len(domains)))
	for _, n := range names {
		out = append(out, expiry(n.name, n.path, ""))
		for _, d := range domains {
			out = append(out, expiry(n.name, n.path, d))
		}
	}
	return out
}

// cookieAt is a cookie's name and the path it is set on.
type cookieAt struct{ name, path string }

func appendName(names []cookieAt, n cookieAt) []cookieAt {
	if n.name == choiceCookieName || !isToken(n.name) || slices.Contains(names, n) {
		return names
	}
	return append(names, n)
}

// expiry is the Set-Cookie that removes cookie name on path and domain
// ("" for the host-only cookie). Secure, so that it also reaches
// __Secure- cookies.
func expiry(name, path, domain string) string {
	v := name + "=; Path=" + path
	if domain != "" {
		v += "; Domain=" + domain
	}
	return v + "; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Secure"
}

// parentDomains are host and every domain above it but the top level
// (www.shop.example.nl: itself, shop.example.nl, example.nl); none for an
// IP address, which takes host-only cookies alone.
func parentDomains(host string) []string {
	if host == "" || net.ParseIP(strings.Trim(host, "[]")) != nil {
		return nil
	}
	var out []string
	for d := host; strings.Contains(d, "."); {
		out = append(out, d)
		_, d, _ = strings.Cut(d, ".")
	}
	return out
}

// cookieNames are the distinct names in a Cookie header, at most max, in
// their order; a name that is no RFC 6265 token is skipped, since no
// Set-Cookie could name it.
func cookieNames(header string, max int) []string {
	var out []string
	for part := range strings.SplitSeq(header, ";") {
		name, _, _ := strings.Cut(part, "=")
		name = strings.Trim(name, " \t")
		if !isToken(name) || slices.Contains(out, name) {
			continue
		}
		if len(out) == max {
			break
		}
		out = append(out, name)
	}
	return out
}

// cookieValue is the value of the first cookie called name in a Cookie
// header, or "".
func cookieValue(header, name string) string {
	for part := range strings.SplitSeq(header, ";") {
		n, v, ok := strings.Cut(part, "=")
		if ok && strings.Trim(n, " \t") == name {
			return strings.Trim(v, " \t")
		}
	}
	return ""
}

// isToken reports whether s is an RFC 7230 token, as a cookie's name must be.
func isToken(s string) bool {
	if s == "" || len(s) > 256 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' {
			continue
		}
		if !strings.ContainsRune("!#$%&'*+-.^_`|~", rune(c)) {
			return false
		}
	}
	return true
}

// uriEscape escapes s as JavaScript's encodeURIComponent does, so that the
// banner's decodeURIComponent reads what the server wrote.
func uriEscape(s string) string {
	const hex = "0123456789ABCDEF"
	b := make([]byte, 0, len(s)+16)
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("-_.!~*'()", c) >= 0 {
			b = append(b, c)
			continue
		}
		b = append(b, '%', hex[c>>4], hex[c&15])
	}
	return string(b)
}

// gpcJSON serves /.well-known/gpc.json (Global Privacy Control) on the
// origin of a first-party site, whose proxy forwards that path: the site
// honours the signal, since its banner takes it as a refusal. Koekje's own
// origin, and any host no site is served through, have none.
func (s *Server) gpcJSON(c echo.Context) error {
	for _, site := range s.cfg.Sites {
		if s.viaProxy(site, c.Request()) {
			h := c.Response().Header()
			h.Set("Cache-Control", "public, max-age=86400")
			h.Set("Access-Control-Allow-Origin", "*")
			return c.Blob(http.StatusOK, "application/json", gpcBody)
		}
	}
	return consent.Errorf(consent.ENOTFOUND, "no site is served through this host")
}

var gpcBody = []byte(`{"gpc":true}` + "\n")
