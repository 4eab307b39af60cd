package server_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/koekje/koekje/config"
	"github.com/koekje/koekje/server"
	"github.com/koekje/koekje/server/keyfile"
	"github.com/koekje/koekje/server/proof"
	"github.com/koekje/koekje/server/sqlite"
	"github.com/koekje/koekje/server/translog"
	"golang.org/x/mod/sumdb/tlog"
)

// browser is a cookie-keeping client that does not follow redirects.
type browser struct {
	t    *testing.T
	base string
	c    *http.Client
}

func newBrowser(t *testing.T, h http.Handler) *browser {
	ts := httptest.NewServer(h)
	t.Cleanup(ts.Close)
	jar, _ := cookiejar.New(nil)
	return &browser{t, ts.URL, &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

func (b *browser) get(path string) (*http.Response, string) {
	b.t.Helper()
	resp, err := b.c.Get(b.base + path)
	if err != nil {
		b.t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(body)
}

func (b *browser) post(path string, form url.Values) (*http.Response, string) {
	b.t.Helper()
	resp, err := b.c.PostForm(b.base+path, form)
	if err != nil {
		b.t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(body)
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func csrfOf(t *testing.T, page string) string {
	t.Helper()
	m := csrfField.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no CSRF field in %s", page)
	}
	return m[1]
}

// signIn signs in with the admin token and returns the dashboard.
func (b *browser) signIn() string {
	b.t.Helper()
	_, login := b.get("/admin")
	resp, _ := b.post("/admin/login", url.Values{"csrf": {csrfOf(b.t, login)}, "token": {adminToken}})
	if resp.StatusCode != http.StatusSeeOther {
		b.t.Fatalf("sign in: %d", resp.StatusCode)
	}
	var session *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == "koekje_admin" {
			session = c
		}
	}
	if session == nil || !session.HttpOnly || session.SameSite != http.SameSiteStrictMode || session.Path != "/admin" {
		b.t.Fatalf("session cookie: %+v", session)
	}
	_, dash := b.get("/admin")
	return dash
}

func TestConsoleSignIn(t *testing.T) {
	t.Parallel()
	s, _ := newServer(t, 0)
	b := newBrowser(t, s)
	resp, login := b.get("/admin")
	if resp.StatusCode != 200 || !strings.Contains(login, `type="password"`) {
		t.Fatalf("login page: %d", resp.StatusCode)
	}
	if csp := resp.Header.Get("Content-Security-Policy"); strings.Contains(csp, "unsafe") || !strings.Contains(csp, "form-action 'self'") {
		t.Errorf("console CSP: %s", csp)
	}
	// No CSRF token: refused. A wrong admin token: refused.
	if resp, _ := b.post("/admin/login", url.Values{"token": {adminToken}}); resp.StatusCode != 403 {
		t.Errorf("login without CSRF: %d", resp.StatusCode)
	}
	_, login = b.get("/admin")
	if resp, body := b.post("/admin/login", url.Values{"csrf": {csrfOf(t, login)}, "token": {"wrong"}}); resp.StatusCode != 401 || !strings.Contains(body, "not valid") {
		t.Errorf("wrong token: %d", resp.StatusCode)
	}
	dash := b.signIn()
	if !strings.Contains(dash, "Belvast VoIP") || !strings.Contains(dash, "Sign out") {
		t.Fatalf("dashboard: %s", dash)
	}
	// Sign out needs the CSRF token too, then the session is gone.
	if resp, _ := b.post("/admin/logout", url.Values{}); resp.StatusCode != 403 {
		t.Errorf("logout without CSRF: %d", resp.StatusCode)
	}
	b.post("/admin/logout", url.Values{"csrf": {csrfOf(t, dash)}})
	if resp, _ := b.get("/admin/sites/demo"); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("site page after sign-out: %d", resp.StatusCode)
	}
}

func TestConsolePages(t *testing.T) {
	t.Parallel()
	s, _ := newServer(t, 0)
	a := post(t, s, `{"site":"demo","action":"accept_all"}`).json(t)
	post(t, s, `{"site":"demo","action":"reject_all","gpc":true}`)
	post(t, s, `{"site":"demo","action":"custom","choices":{"analytics":true}}`)
	b := newBrowser(t, s)
	// Pages that need a session send a visitor without one to sign in.
	for _, p := range []string{"/admin/sites/demo", "/admin/lookup", "/admin/sites/demo/export?format=csv", "/admin/sites/demo/preview"} {
		if resp, _ := b.get(p); resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/admin?expired=1" {
			t.Errorf("%s without a session: %d %s", p, resp.StatusCode, resp.Header.Get("Location"))
		}
	}
	b.signIn()
	_, site := b.get("/admin/sites/demo")
	for _, want := range []string{`<svg`, `role="img"`, "format=csv&amp;separator=semicolon&amp;bom=true", "Choices per day", "Share granted per category", "<dd>3</dd>", "Verify log", "format=csv", "_ga_*", "(current)", `href="/admin/sites/demo/preview?lang=de"`} {
		if !strings.Contains(site, want) {
			t.Errorf("site page lacks %q", want)
		}
	}
	// Verify: a form with CSRF; without it, refused.
	if resp, _ := b.post("/admin/sites/demo/verify", url.Values{}); resp.StatusCode != 403 {
		t.Errorf("verify without CSRF: %d", resp.StatusCode)
	}
	_, verified := b.post("/admin/sites/demo/verify", url.Values{"csrf": {csrfOf(t, site)}})
	if !strings.Contains(verified, "The log is intact: 3 records verified") {
		t.Errorf("verify result missing")
	}
	if !strings.Contains(verified, "Checked the hash chain alone") || !strings.Contains(verified, "keeps no transparency log") {
		t.Errorf("verify does not say what it checked against: %s", verified)
	}
	// A header, 3 records and the summary.
	resp, csv := b.get("/admin/sites/demo/export?format=csv")
	if resp.StatusCode != 200 || strings.Count(csv, "\r\n") != 5 || !strings.Contains(resp.Header.Get("Content-Disposition"), "demo-consents.csv") {
		t.Errorf("download: %d %q", resp.StatusCode, resp.Header.Get("Content-Disposition"))
	}
	id := a["consent_id"].(string)
	_, look := b.get("/admin/lookup?consent_id=" + id)
	if !strings.Contains(look, "accept_all") || !strings.Contains(look, "/admin/receipt/"+id) || !strings.Contains(look, "/admin/sites/demo/evidence/"+id) || !strings.Contains(look, "/admin/sites/demo/versions/sha256:") || !strings.Contains(look, "Intact") {
		t.Errorf("lookup: %s", look)
	}
	if _, bad := b.get("/admin/lookup?consent_id=nonsense"); !strings.Contains(bad, "That is not a consent ID") {
		t.Error("lookup of nonsense")
	}
	// The console's receipt view is the console's, in English, naming the
	// language the visitor chose in.
	if resp, receipt := b.get("/admin/receipt/" + id); resp.StatusCode != 200 || !strings.Contains(receipt, "Receipt of the latest choice") ||
		!strings.Contains(receipt, "Dutch (nl)") || !strings.Contains(receipt, `<span class="ok">granted</span>`) || !strings.Contains(receipt, "/admin/console.css") ||
		!regexp.MustCompile(`<pre>[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+</pre>`).MatchString(receipt) {
		t.Errorf("receipt from the console: %d %s", resp.StatusCode, receipt)
	}
	hash := s.Bundle("demo").Hash
	_, version := b.get("/admin/sites/demo/versions/" + hash + "?lang=fr")
	if !strings.Contains(version, "Tout accepter") || !strings.Contains(version, "Statistiques") {
		t.Errorf("version page in French: %s", version)
	}
	_, preview := b.get("/admin/sites/demo/preview?lang=en")
	if !strings.Contains(preview, `<html lang="en">`) || !strings.Contains(preview, `src="/s/demo.js" data-koekje-preview`) {
		t.Errorf("preview: %s", preview)
	}
}

// A person in the console meets errors as a page; a script or curl asking
// the same route without text/html gets the JSON error.
func TestConsoleErrorsArePages(t *testing.T) {
	t.Parallel()
	s, _ := newServer(t, 0)
	b := newBrowser(t, s)
	b.signIn()
	req, _ := http.NewRequest("GET", b.base+"/admin/sites/nosuch", nil)
	req.Header.Set("Accept", "text/html,application/xhtml+xml")
	resp, err := b.c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 404 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") ||
		!strings.Contains(string(body), "no such site") || !strings.Contains(string(body), `href="/admin"`) {
		t.Errorf("console error page: %d %s %s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	if resp, body := b.get("/admin/sites/nosuch"); resp.StatusCode != 404 || !strings.Contains(body, `"code":"not_found"`) {
		t.Errorf("without text/html: %d %s", resp.StatusCode, body)
	}
}

// sessionCookie signs in through b and returns the session cookie's value.
func (b *browser) sessionCookie(token string) string {
	b.t.Helper()
	_, login := b.get("/admin")
	if resp, _ := b.post("/admin/login", url.Values{"csrf": {csrfOf(b.t, login)}, "token": {token}}); resp.StatusCode != http.StatusSeeOther {
		b.t.Fatalf("sign in: %d", resp.StatusCode)
	}
	u, _ := url.Parse(b.base + "/admin/")
	for _, c := range b.c.Jar.Cookies(u) {
		if c.Name == "koekje_admin" {
			return c.Value
		}
	}
	b.t.Fatal("no session cookie")
	return ""
}

// Sessions end for good: a cookie kept after logout, or made with a token
// that was removed or changed, is refused by every instance on the store,
// after restarts too, even if the token comes back.
func TestSessionRevocation(t *testing.T) {
	t.Parallel()
	const named = "a-named-audit-token-of-enough-length"
	sum := sha256.Sum256([]byte(named))
	withNamed := func(d *serverDeps) {
		cfg := config.Demo()
		cfg.Tokens = []*config.Token{{Name: "dpo", Scope: "audit", SHA256: "sha256:" + hex.EncodeToString(sum[:])}}
		d.Config = cfg
	}
	var db *sqlite.DB
	a := newServerWith(t, func(d *serverDeps) { withNamed(d); db = d.Store.(*sqlite.DB) })
	// Another instance, or the same after a restart, on the same store.
	instance := func(edit func(*serverDeps)) *server.Server {
		t.Helper()
		keys, err := proof.OpenKeys(context.Background(), db)
		if err != nil {
			t.Fatal(err)
		}
		d := server.Deps{Config: config.Demo(), Store: db, Keys: keys, TokenKey: bytes.Repeat([]byte{7}, 64), AdminToken: adminToken, PublicURL: publicURL}
		edit(&d)
		s, err := server.New(context.Background(), d)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	signedIn := func(s http.Handler, cookie string) bool {
		t.Helper()
		r := do(t, s, "GET", "/admin/sites/demo", "", "Cookie", "koekje_admin="+cookie)
		return r.status == 200
	}

	// Logout on one instance ends the session on the other too.
	b := newBrowser(t, a)
	loggedOut := b.sessionCookie(adminToken)
	other := instance(withNamed)
	if !signedIn(other, loggedOut) {
		t.Fatal("a live session is refused by another instance")
	}
	_, dash := b.get("/admin")
	b.post("/admin/logout", url.Values{"csrf": {csrfOf(t, dash)}})
	if signedIn(a, loggedOut) || signedIn(other, loggedOut) {
		t.Error("a session cookie kept after logout still works")
	}

	admin := newBrowser(t, a).sessionCookie(adminToken)
	dpo := newBrowser(t, a).sessionCookie(named)
	if !signedIn(instance(withNamed), admin) || !signedIn(instance(withNamed), dpo) {
		t.Fatal("sessions did not survive a restart with the same tokens")
	}
	// Restart with the named token removed and the admin token changed.
	changed := instance(func(d *serverDeps) { d.AdminToken = "a-new-admin-token-of-enough-length" })
	if signedIn(changed, admin) || signedIn(changed, dpo) {
		t.Error("a session of a removed or changed token still works")
	}
	// The tokens come back: their old sessions stay ended.
	back := instance(withNamed)
	if signedIn(back, admin) || signedIn(back, dpo) {
		t.Error("sessions ended by a token change came back with the token")
	}
	if logout := do(t, back, "GET", "/admin/sites/demo", "", "Cookie", "koekje_admin="+admin); logout.status != http.StatusSeeOther ||
		!strings.Contains(logout.header.Get("Set-Cookie"), "Max-Age=0") {
		t.Errorf("an ended session is not sent to sign in with its cookie cleared: %d %v", logout.status, logout.header)
	}
}

// The console lists a site's records newest first, fifty at a time, each
// with every stored field and a link to its visitor's evidence pack; the
// next page's link keeps the filters.
func TestConsoleRecords(t *testing.T) {
	t.Parallel()
	s, _ := newServer(t, 0)
	var gpcID string
	for i := range 120 {
		body := `{"site":"demo","action":"accept_all"}`
		if i%40 == 7 {
			body = `{"site":"demo","action":"reject_all","gpc":true}`
		}
		resp := post(t, s, body)
		if resp.status != 201 {
			t.Fatalf("choice %d: %d %s", i, resp.status, resp.body)
		}
		r := resp.json(t)
		if i == 87 {
			gpcID = r["consent_id"].(string)
		}
	}
	b := newBrowser(t, s)
	b.signIn()
	seqs := func(page string) []string {
		return regexp.MustCompile(`<tr[^>]*><td>(\d+)</td>`).FindAllString(page, -1)
	}
	_, first := b.get("/admin/sites/demo/records")
	if n := len(seqs(first)); n != 50 || !strings.Contains(first, "<tr><td>120</td>") || strings.Contains(first, "<tr><td>70</td>") {
		t.Fatalf("first page: %d records: %.3000s", n, first)
	}
	for _, want := range []string{"Europe/Amsterdam", " CET</td>", "Record ID", "Intact", `rel="next"`} {
		if !strings.Contains(first, want) {
			t.Errorf("the first page lacks %q", want)
		}
	}
	next := regexp.MustCompile(`href="([^"]+)" rel="next"`).FindStringSubmatch(first)
	_, second := b.get("/admin/sites/demo/records" + html.UnescapeString(next[1]))
	if got := seqs(second); len(got) != 50 || !strings.Contains(second, "<tr><td>70</td>") || strings.Contains(second, "<tr><td>71</td>") {
		t.Errorf("second page: %d records", len(got))
	}
	_, refused := b.get("/admin/sites/demo/records?action=reject_all&gpc=yes")
	if got := seqs(refused); len(got) != 3 || strings.Contains(refused, "<td>accept_all") || strings.Contains(refused, `rel="next"`) {
		t.Errorf("refusals with GPC: %d records", len(got))
	}
	_, one := b.get("/admin/sites/demo/records?consent_id=" + gpcID)
	if got := seqs(one); len(got) != 1 || !strings.Contains(one, "<tr><td>88</td>") || !strings.Contains(one, "(GPC)") {
		t.Errorf("one visitor: %d records", len(got))
	}
	// Each record links its visitor's evidence pack.
	pack := regexp.MustCompile(`href="(/admin/sites/demo/evidence/` + gpcID + `)"`).FindStringSubmatch(one)
	if pack == nil {
		t.Fatal("the record does not link its evidence pack")
	}
	if resp, zip := b.get(pack[1]); resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/zip" || !strings.HasPrefix(zip, "PK") {
		t.Errorf("the record's evidence pack: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	for _, q := range []string{"action=delete", "gpc=maybe", "before=-1", "consent_id=nonsense", "from=yesterday"} {
		if resp, body := b.get("/admin/sites/demo/records?" + q); resp.StatusCode != 422 {
			t.Errorf("?%s: %d %s", q, resp.StatusCode, body)
		}
	}
	if resp, _ := b.get("/admin/sites/nowhere/records"); resp.StatusCode != 404 {
		t.Errorf("records of an unknown site: %d", resp.StatusCode)
	}
}

// With a log, Verify says which checkpoint it held the site against, and
// that the database's own proves nothing against whoever controls it.
func TestConsoleVerifySaysWhatItChecked(t *testing.T) {
	t.Parallel()
	s, _, _ := newLoggedServer(t)
	for range 3 {
		post(t, s, `{"site":"demo","action":"accept_all"}`)
	}
	b := newBrowser(t, s)
	b.signIn()
	_, site := b.get("/admin/sites/demo")
	_, verified := b.post("/admin/sites/demo/verify", url.Values{"csrf": {csrfOf(t, site)}})
	for _, want := range []string{"The log is intact: 3 records verified", "Checked against the database&#39;s own newest checkpoint", "3 leaves", "koekje verify --witness"} {
		if !strings.Contains(verified, want) {
			t.Errorf("verify result lacks %q: %s", want, verified)
		}
	}
}

// With the log reference kept beside the key file, Verify holds the
// database's log against it: intact, it says so; a database whose log is
// behind the reference (a restored backup) or another tree of the same size
// (a rewritten tail) does not verify, whatever its own checkpoints say.
func TestVerifyHoldsTheLogAgainstItsReference(t *testing.T) {
	t.Parallel()
	kek, err := keyfile.Create(filepath.Join(t.TempDir(), "koekje.key"))
	if err != nil {
		t.Fatal(err)
	}
	ref, err := translog.OpenReference(kek)
	if err != nil {
		t.Fatal(err)
	}
	s, db, logKey := newLoggedServerWith(t, func(d *serverDeps) { d.LogReference = ref })
	for range 3 {
		post(t, s, `{"site":"demo","action":"accept_all"}`)
	}
	ctx := context.Background()
	cp, hashes, err := translog.Latest(ctx, db, logKey)
	if err != nil {
		t.Fatal(err)
	}
	if err := ref.Advance(cp, hashes); err != nil {
		t.Fatal(err)
	}
	post(t, s, `{"site":"demo","action":"reject_all"}`)
	r := do(t, s, "GET", "/api/v1/sites/demo/verify", "", "Authorization", "Bearer "+adminToken)
	if r.status != 200 || !strings.Contains(string(r.body), `"reference":"the database's newest checkpoint, proven to extend the log reference kept outside the database"`) ||
		!strings.Contains(string(r.body), `"reference_size":3`) {
		t.Fatalf("verify with an intact log: %d %s", r.status, r.body)
	}
	b := newBrowser(t, s)
	b.signIn()
	_, site := b.get("/admin/sites/demo")
	if _, page := b.post("/admin/sites/demo/verify", url.Values{"csrf": {csrfOf(t, site)}}); !strings.Contains(page, "the reference holds 3") || strings.Contains(page, "Whoever controls the database") {
		t.Errorf("the console's verify with a reference: %s", page)
	}

	for name, kept := range map[string]translog.Checkpoint{
		"restored backup": {Origin: cp.Origin, Size: cp.Size + 5, Hash: cp.Hash},
		"rewritten tail":  {Origin: cp.Origin, Size: cp.Size, Hash: tlog.Hash{1}},
	} {
		if err := ref.Accept(kept); err != nil {
			t.Fatal(err)
		}
		r := do(t, s, "GET", "/api/v1/sites/demo/verify", "", "Authorization", "Bearer "+adminToken)
		if r.status != 409 || !strings.Contains(string(r.body), `"reason":"log_mismatch"`) {
			t.Errorf("%s: verify answered %d %s", name, r.status, r.body)
		}
	}
}

// When proof cannot advance (a witness refuses, the log no longer extends
// its reference), the dashboard says so and why, as /healthz does.
func TestConsoleShowsDegraded(t *testing.T) {
	t.Parallel()
	why := "witness https://w.example does not cosign the log's checkpoints: 404 Not Found: unknown log"
	b := newBrowser(t, newServerWith(t, func(d *serverDeps) { d.Degraded = func() string { return why } }))
	dash := b.signIn()
	if !strings.Contains(dash, `role="alert" id="degraded">The transparency log is degraded: `+html.EscapeString(why)) {
		t.Errorf("the dashboard does not say the log is degraded:\n%s", dash)
	}
	healthy := newBrowser(t, newServerWith(t, func(d *serverDeps) { d.Degraded = func() string { return "" } }))
	if dash := healthy.signIn(); strings.Contains(dash, `id="degraded"`) {
		t.Errorf("a healthy log's dashboard says it is degraded")
	}
}
