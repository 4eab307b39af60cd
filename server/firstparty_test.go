package server_test

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/koekje/koekje/config"
	"github.com/koekje/koekje/server"
)

// The first-party demo: www.belvast.example forwards /consent/ to Koekje
// from the proxy at 192.0.2.1; its koekje cookie is on belvast.example.
const (
	fpHost  = "www.belvast.example"
	fpProxy = "192.0.2.1"
)

func firstPartyServer(t *testing.T, edit func(*serverDeps)) *server.Server {
	t.Helper()
	return newServerWith(t, func(d *serverDeps) {
		d.Config = firstPartyConfig()
		d.TrustedProxies = []string{fpProxy + "/32"}
		if edit != nil {
			edit(d)
		}
	})
}

func firstPartyConfig() *config.Config {
	cfg := config.Demo()
	site := cfg.Sites[0]
	site.Origins = append(site.Origins, "https://"+fpHost)
	site.FirstParty = &config.FirstParty{URL: "https://" + fpHost + "/consent/", CookieDomain: "belvast.example"}
	// WordPress's post cookie on the comment form's path.
	site.Services[1].Cookies[1].Path = "/reageren"
	return cfg
}

// viaProxy posts a choice as the site's proxy forwards it, with the
// visitor's Cookie header.
func viaProxy(t *testing.T, s http.Handler, body, cookie string) response {
	t.Helper()
	return doFrom(t, s, fpProxy+":4444", "POST", "/api/v1/sites/demo/consents", body,
		"Content-Type", "text/plain;charset=UTF-8", "Origin", "https://"+fpHost, "Host", "127.0.0.1:8080",
		"X-Forwarded-Host", fpHost, "X-Forwarded-For", "198.51.100.7", "X-Forwarded-Proto", "https", "Cookie", cookie)
}

func doFrom(t *testing.T, h http.Handler, peer, method, path, body string, headers ...string) response {
	t.Helper()
	var host string
	for i := 0; i+1 < len(headers); i += 2 {
		if headers[i] == "Host" {
			host = headers[i+1]
		}
	}
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	req.RemoteAddr = peer
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	if host != "" {
		req.Host = host
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return response{rec.Code, rec.Header(), rec.Body.Bytes()}
}

// setCookies are the answer's Set-Cookie headers by name and domain
// ("" for host-only).
func setCookies(t *testing.T, r response) map[string]*http.Cookie {
	t.Helper()
	out := map[string]*http.Cookie{}
	for _, line := range r.header.Values("Set-Cookie") {
		c, err := http.ParseSetCookie(line)
		if err != nil {
			t.Fatalf("Set-Cookie %q: %v", line, err)
		}
		key := c.Name + "@" + c.Domain
		if out[key] != nil {
			t.Errorf("two Set-Cookie for %s", key)
		}
		out[key] = c
	}
	return out
}

// Through the site's proxy, the answer sets the koekje cookie as the banner
// would write it: Secure, SameSite=Lax, on the site's cookie domain, for
// the months the site keeps a choice. Posted to Koekje's own origin, the
// same site's answer sets no cookie: the banner keeps the choice there.
func TestFirstPartyChoiceCookie(t *testing.T) {
	t.Parallel()
	s := firstPartyServer(t, nil)
	r := viaProxy(t, s, `{"action":"custom","choices":{"necessary":true,"functional":true,"analytics":false,"embeds":false},"services":{"youtube":true}}`, "")
	if r.status != 201 {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	ans := r.json(t)
	c := setCookies(t, r)["koekje@belvast.example"]
	if c == nil {
		t.Fatalf("no koekje cookie on belvast.example: %q", r.header.Values("Set-Cookie"))
	}
	if !c.Secure || c.SameSite != http.SameSiteLaxMode || c.HttpOnly || c.Path != "/" || c.MaxAge != 6*2630016 {
		t.Errorf("koekje cookie %s: want Secure, SameSite=Lax, readable by the banner, Path=/, Max-Age %d", c, 6*2630016)
	}
	v, err := url.PathUnescape(c.Value)
	if err != nil {
		t.Fatal(err)
	}
	want := strings.Join([]string{"1", ans["consent_id"].(string), "1", "functional", "youtube", ans["token"].(string), "0"}, "|")
	if v != want {
		t.Errorf("koekje cookie holds %q, want %q", v, want)
	}
	// Analytics is refused: its declared _ga is expired on the way.
	if setCookies(t, r)["_ga@"] == nil {
		t.Error("the refused _ga is not expired")
	}

	direct := doFrom(t, s, "198.51.100.7:4444", "POST", "/api/v1/sites/demo/consents", `{"action":"reject_all"}`,
		"Content-Type", "text/plain", "Origin", "https://"+fpHost, "Host", "consent.belvast.example")
	if direct.status != 201 || len(direct.header.Values("Set-Cookie")) != 0 {
		t.Errorf("a POST to Koekje's own origin: status %d, Set-Cookie %q; want 201 and none", direct.status, direct.header.Values("Set-Cookie"))
	}
	// A proxy Koekje does not trust cannot name the host by X-Forwarded-Host.
	untrusted := doFrom(t, s, "198.51.100.8:4444", "POST", "/api/v1/sites/demo/consents", `{"action":"reject_all"}`,
		"Content-Type", "text/plain", "Origin", "https://"+fpHost, "Host", "consent.belvast.example", "X-Forwarded-Host", fpHost)
	if len(untrusted.header.Values("Set-Cookie")) != 0 {
		t.Errorf("X-Forwarded-Host from an untrusted peer set %q", untrusted.header.Values("Set-Cookie"))
	}
}

// A refusal expires every declared cookie of what it refuses, on its
// declared path, host-only and on each domain from the host up: exact names always, a family's
// names as the Cookie header has them (HttpOnly ones are there too). Not
// the koekje cookie, not a cookie declared on another site's domain, not
// what is granted; and an acceptance expires nothing.
func TestFirstPartyRefusalExpiresCookies(t *testing.T) {
	t.Parallel()
	s := firstPartyServer(t, nil)
	header := "koekje=x; _ga=GA1.1.1; _ga_ABC=GS1; _ga_ABC=dup; comment_author_42=me; other=1; _gat=1; bad name=1"
	r := viaProxy(t, s, `{"action":"reject_all"}`, header)
	if r.status != 201 {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	got := setCookies(t, r)
	var expired []string
	for k, c := range got {
		if c.Name == "koekje" {
			continue
		}
		path := "/"
		if c.Name == "wp-saving-post" {
			path = "/reageren"
		}
		if c.MaxAge >= 0 || c.Value != "" || c.Path != path || !c.Secure {
			t.Errorf("%s: %s does not expire it", k, c)
		}
		expired = append(expired, k)
	}
	slices.Sort(expired)
	var want []string
	for _, n := range []string{"_ga", "_ga_ABC", "comment_author_42", "wp-saving-post"} {
		for _, d := range []string{"", "www.belvast.example", "belvast.example"} {
			want = append(want, n+"@"+d)
		}
	}
	slices.Sort(want)
	if !slices.Equal(expired, want) {
		t.Errorf("expired %v\nwant    %v", expired, want)
	}
	if got["koekje@belvast.example"] == nil || got["koekje@belvast.example"].MaxAge <= 0 {
		t.Errorf("the koekje cookie is not set: %v", got)
	}

	accepted := viaProxy(t, s, `{"action":"accept_all"}`, header)
	if n := len(accepted.header.Values("Set-Cookie")); n != 1 {
		t.Errorf("accept_all: %d Set-Cookie, want the koekje cookie alone: %q", n, accepted.header.Values("Set-Cookie"))
	}
}

// A family's names come from the request's Cookie header, at most 64 of
// them: a header of hundreds does not make an answer of hundreds of lines a domain.
func TestFirstPartyExpiresBoundedFamily(t *testing.T) {
	t.Parallel()
	s := firstPartyServer(t, nil)
	var b strings.Builder
	for i := range 500 {
		b.WriteString("_ga_" + strconv.Itoa(i) + "=1; ")
	}
	r := viaProxy(t, s, `{"action":"reject_all"}`, b.String())
	if r.status != 201 {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	n := 0
	for _, line := range r.header.Values("Set-Cookie") {
		if strings.HasPrefix(line, "_ga_") {
			n++
		}
	}
	if n != 64*3 {
		t.Errorf("%d expiries of _ga_* names, want 64 names × 3 domains", n)
	}
}

// Loading an embed once keeps the visitor's choice in the cookie and gives
// it the answer's token, the newest; without a choice there is no cookie
// to keep.
func TestFirstPartyLoadOnceKeepsChoice(t *testing.T) {
	t.Parallel()
	s := firstPartyServer(t, nil)
	first := viaProxy(t, s, `{"action":"custom","choices":{"necessary":true,"functional":true,"analytics":false,"embeds":false}}`, "")
	ans := first.json(t)
	cookie := setCookies(t, first)["koekje@belvast.example"]
	once := viaProxy(t, s, `{"action":"load_once","consent_id":"`+ans["consent_id"].(string)+`","token":"`+ans["token"].(string)+`","services":{"youtube":true}}`, "_ga=1; koekje="+cookie.Value)
	if once.status != 201 {
		t.Fatalf("status %d: %s", once.status, once.body)
	}
	got := setCookies(t, once)
	if len(got) != 1 || got["koekje@belvast.example"] == nil {
		t.Fatalf("load_once set %v, want the koekje cookie alone", got)
	}
	v, _ := url.PathUnescape(got["koekje@belvast.example"].Value)
	want := strings.Join([]string{"1", ans["consent_id"].(string), "1", "functional", "", once.json(t)["token"].(string), "0"}, "|")
	if v != want {
		t.Errorf("after load_once the cookie holds %q, want %q", v, want)
	}
	none := viaProxy(t, s, `{"action":"load_once","services":{"youtube":true}}`, "")
	if n := len(none.header.Values("Set-Cookie")); none.status != 201 || n != 0 {
		t.Errorf("load_once without a choice: status %d, %d Set-Cookie; want 201 and none", none.status, n)
	}
}

// A first-party site needs its proxy trusted: without --trusted-proxies
// the server does not start, and says which site and what to do.
func TestFirstPartyNeedsTrustedProxy(t *testing.T) {
	t.Parallel()
	_, err := buildServer(t, filepath.Join(t.TempDir(), "koekje.db"), func(d *serverDeps) { d.Config = firstPartyConfig() })
	if err == nil || !strings.Contains(err.Error(), "site demo is in first-party mode") || !strings.Contains(err.Error(), "--trusted-proxies") {
		t.Errorf("New without trusted proxies: %v; want a refusal naming the site and --trusted-proxies", err)
	}
}

// Forwarded headers from a proxy that is not trusted are named with the
// site they came for, once a site.
func TestUntrustedProxyNamesSite(t *testing.T) {
	t.Parallel()
	var logs syncBuffer
	s := firstPartyServer(t, func(d *serverDeps) { d.Log = slog.New(slog.NewJSONHandler(&logs, nil)) })
	for range 2 {
		doFrom(t, s, "10.0.0.9:4444", "GET", "/s/demo.js", "", "Host", fpHost, "X-Forwarded-For", "198.51.100.7")
	}
	doFrom(t, s, "10.0.0.9:4444", "GET", "/healthz", "", "Host", "consent.example", "X-Forwarded-For", "198.51.100.7")
	warned := logLines(&logs, "requests carry forwarded headers")
	if len(warned) != 2 {
		t.Fatalf("%d warnings, want one for site demo and one for no site: %v", len(warned), warned)
	}
	if w := warned[0]; w["site"] != "demo" || !strings.Contains(w["msg"].(string), "site demo is in first-party mode") {
		t.Errorf("warning %v, want it to name site demo and its first-party mode", w)
	}
	if w := warned[1]; w["site"] != nil {
		t.Errorf("warning %v names a site", w)
	}
}

// /.well-known/gpc.json is served on a first-party site's origin, through
// its proxy, and nowhere else.
func TestFirstPartyGPCJSON(t *testing.T) {
	t.Parallel()
	s := firstPartyServer(t, nil)
	r := doFrom(t, s, fpProxy+":4444", "GET", "/.well-known/gpc.json", "", "Host", "127.0.0.1:8080", "X-Forwarded-Host", fpHost)
	if r.status != 200 || r.header.Get("Content-Type") != "application/json" || strings.TrimSpace(string(r.body)) != `{"gpc":true}` {
		t.Errorf("through the proxy: %d %s %q", r.status, r.header.Get("Content-Type"), r.body)
	}
	own := doFrom(t, s, "198.51.100.7:4444", "GET", "/.well-known/gpc.json", "", "Host", "consent.belvast.example")
	if own.status != 404 {
		t.Errorf("on Koekje's own origin: %d, want 404", own.status)
	}
}
