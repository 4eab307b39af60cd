package server_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"

	"github.com/andybalholm/brotli"

	"github.com/koekje/koekje/config"
	"github.com/koekje/koekje/server"
	"github.com/koekje/koekje/server/proof"
	"github.com/koekje/koekje/server/sqlite"
)

const adminToken = "test-admin-token"

// publicURL is the test servers' --public-url: httptest's default Host, so
// same-origin requests are the ones a browser would send.
const publicURL = "http://example.com"

type serverDeps = server.Deps

// newServer starts the real server on a file database in a temp dir.
func newServer(tb testing.TB, rateLimit float64) (*server.Server, *sqlite.DB) {
	tb.Helper()
	var db *sqlite.DB
	s := newServerWith(tb, func(d *serverDeps) {
		d.RateLimit = rateLimit
		db = d.Store.(*sqlite.DB)
	})
	return s, db
}

// newServerAt starts the real server on the database file at path.
func newServerAt(tb testing.TB, path string) (*server.Server, *sqlite.DB) {
	tb.Helper()
	var db *sqlite.DB
	s := newServerOn(tb, path, func(d *serverDeps) { db = d.Store.(*sqlite.DB) })
	return s, db
}

// newServerWith builds a server whose dependencies edit may change.
func newServerWith(tb testing.TB, edit func(*serverDeps)) *server.Server {
	tb.Helper()
	return newServerOn(tb, filepath.Join(tb.TempDir(), "koekje.db"), edit)
}

func newServerOn(tb testing.TB, path string, edit func(*serverDeps)) *server.Server {
	tb.Helper()
	s, err := buildServer(tb, path, edit)
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

// buildServer is newServerOn returning New's error.
func buildServer(tb testing.TB, path string, edit func(*serverDeps)) (*server.Server, error) {
	tb.Helper()
	db, err := sqlite.Open(path, nil)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	keys, err := proof.OpenKeys(context.Background(), db)
	if err != nil {
		tb.Fatal(err)
	}
	d := server.Deps{Config: config.Demo(), Store: db, Keys: keys, TokenKey: bytes.Repeat([]byte{7}, 64), AdminToken: adminToken, PublicURL: publicURL}
	edit(&d)
	return server.New(context.Background(), d)
}

type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) json(tb testing.TB) map[string]any {
	tb.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		tb.Fatalf("body is not JSON: %v: %q", err, r.body)
	}
	return m
}

func do(tb testing.TB, h http.Handler, method, path string, body string, headers ...string) response {
	tb.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	req.RemoteAddr = "203.0.113.77:4444"
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return response{rec.Code, rec.Header(), rec.Body.Bytes()}
}

// post records a choice and returns the response body.
func post(tb testing.TB, h http.Handler, body string, headers ...string) response {
	tb.Helper()
	return do(tb, h, "POST", "/api/v1/consents", body, append([]string{"Content-Type", "application/json"}, headers...)...)
}

// scenario is one request and what must come back: the row type of the API
// tables. A failure must be the JSON error with code and field; golden, if
// set, names a file in testdata/ that the body must equal (-update rewrites it).
type scenario struct {
	name         string
	method, path string
	headers      []string
	body         string
	status       int
	code, field  string
	golden       string
}

// postScenario is a scenario posting a choice as JSON; headers come after
// the Content-Type and may replace it.
func postScenario(name, body string, headers []string, status int, code, field string) scenario {
	return scenario{name: name, method: "POST", path: "/api/v1/consents", body: body,
		headers: append([]string{"Content-Type", "application/json"}, headers...), status: status, code: code, field: field}
}

// run sends the scenario's request to h and checks the answer.
func (sc scenario) run(t *testing.T, h http.Handler) response {
	t.Helper()
	r := do(t, h, sc.method, sc.path, sc.body, sc.headers...)
	if r.status != sc.status {
		t.Fatalf("%s %s: status = %d, want %d: %s", sc.method, sc.path, r.status, sc.status, r.body)
	}
	if sc.code != "" {
		var e struct {
			Error struct{ Code, Message, Field string }
		}
		if err := json.Unmarshal(r.body, &e); err != nil || e.Error.Code != sc.code || e.Error.Message == "" {
			t.Fatalf("body = %s, want a JSON error with code %s", r.body, sc.code)
		}
		if e.Error.Field != sc.field {
			t.Errorf("field = %q, want %q", e.Error.Field, sc.field)
		}
	}
	if sc.golden != "" {
		golden(t, sc.golden, r.body)
	}
	return r
}

func TestPostConsent(t *testing.T) {
	t.Parallel()
	s, _ := newServer(t, 0)
	first := post(t, s, `{"site":"demo","action":"accept_all"}`).json(t)
	id, token := first["consent_id"].(string), first["token"].(string)
	other := post(t, s, `{"site":"demo","action":"reject_all"}`).json(t)
	hash := s.Bundle("demo").Hash
	big := `{"site":"demo","action":"custom","url":"https://example.nl/` + strings.Repeat("a", 9000) + `"}`

	tests := []scenario{
		postScenario("json", `{"site":"demo","consent_id":null,"token":null,"choices":{"necessary":true,"functional":true,"analytics":false,"embeds":false},"action":"custom","revision":1,"config_hash":"`+hash+`","language":"nl","url":"http://example.com/contact?x=1#y","gpc":false}`, nil, 201, "", ""),
		postScenario("text/plain for sendBeacon", `{"site":"demo","action":"reject_all"}`, []string{"Content-Type", "text/plain;charset=UTF-8"}, 201, "", ""),
		postScenario("allowed origin", `{"site":"demo","action":"reject_all"}`, []string{"Origin", "http://localhost:3000"}, 201, "", ""),
		postScenario("same origin", `{"site":"demo","action":"reject_all"}`, []string{"Origin", "http://example.com"}, 201, "", ""),
		postScenario("append with token", `{"site":"demo","action":"withdraw","consent_id":"`+id+`","token":"`+token+`"}`, nil, 201, "", ""),
		postScenario("service granted", `{"site":"demo","action":"custom","services":{"youtube":true}}`, nil, 201, "", ""),
		postScenario("no content type", `{}`, []string{"Content-Type", ""}, 415, "unsupported_media_type", ""),
		postScenario("xml", `<a/>`, []string{"Content-Type", "application/xml"}, 415, "unsupported_media_type", ""),
		postScenario("too large", big, nil, 413, "too_large", ""),
		postScenario("empty body", ``, nil, 400, "malformed", ""),
		postScenario("truncated", `{"site":"demo","act`, nil, 400, "malformed", ""),
		postScenario("not an object", `[1,2]`, nil, 400, "malformed", ""),
		postScenario("wrong type", `{"site":"demo","action":"custom","choices":"yes"}`, nil, 400, "malformed", "choices"),
		postScenario("wrong type in choices", `{"site":"demo","action":"custom","choices":{"analytics":"yes"}}`, nil, 400, "malformed", "choices.analytics"),
		postScenario("unknown field", `{"site":"demo","action":"custom","colour":"red"}`, nil, 400, "malformed", "colour"),
		postScenario("duplicate key", `{"site":"demo","site":"other","action":"custom"}`, nil, 400, "malformed", "site"),
		postScenario("invalid utf-8", "{\"site\":\"demo\xff\",\"action\":\"custom\"}", nil, 400, "malformed", "site"),
		postScenario("trailing data", `{"site":"demo","action":"custom"} {}`, nil, 400, "malformed", ""),
		postScenario("huge number", `{"site":"demo","action":"custom","revision":1e400}`, nil, 400, "malformed", "revision"),
		postScenario("missing site", `{"action":"custom"}`, nil, 422, "invalid", "site"),
		postScenario("unknown site", `{"site":"nope","action":"custom"}`, nil, 404, "not_found", "site"),
		postScenario("NUL in site", `{"site":"demo\u0000","action":"custom"}`, nil, 404, "not_found", "site"),
		postScenario("origin not allowed", `{"site":"demo","action":"custom"}`, []string{"Origin", "https://evil.example"}, 403, "forbidden", "origin"),
		postScenario("unknown category", `{"site":"demo","action":"custom","choices":{"marketing":true}}`, nil, 422, "invalid", "choices.marketing"),
		postScenario("necessary refused", `{"site":"demo","action":"custom","choices":{"necessary":false}}`, nil, 422, "invalid", "choices.necessary"),
		postScenario("accept_all with refusal", `{"site":"demo","action":"accept_all","choices":{"analytics":false}}`, nil, 422, "invalid", "choices.analytics"),
		postScenario("reject_all with grant", `{"site":"demo","action":"reject_all","choices":{"analytics":true}}`, nil, 422, "invalid", "choices.analytics"),
		postScenario("missing action", `{"site":"demo"}`, nil, 422, "invalid", "action"),
		postScenario("unknown action", `{"site":"demo","action":"maybe"}`, nil, 422, "invalid", "action"),
		postScenario("old revision", `{"site":"demo","action":"custom","revision":2}`, nil, 422, "invalid", "revision"),
		postScenario("negative revision", `{"site":"demo","action":"custom","revision":-1}`, nil, 422, "invalid", "revision"),
		postScenario("malformed config hash", `{"site":"demo","action":"custom","config_hash":"md5:x"}`, nil, 422, "invalid", "config_hash"),
		postScenario("unknown config hash", `{"site":"demo","action":"custom","config_hash":"sha256:`+strings.Repeat("0", 64)+`"}`, nil, 422, "invalid", "config_hash"),
		postScenario("unknown language", `{"site":"demo","action":"custom","language":"xx"}`, nil, 422, "invalid", "language"),
		postScenario("javascript url", `{"site":"demo","action":"custom","url":"javascript:alert(1)"}`, nil, 422, "invalid", "url"),
		postScenario("unknown service", `{"site":"demo","action":"custom","services":{"tiktok":true}}`, nil, 422, "invalid", "services.tiktok"),
		postScenario("malformed consent id", `{"site":"demo","action":"custom","consent_id":"abc","token":"x"}`, nil, 422, "invalid", "consent_id"),
		postScenario("consent id without token", `{"site":"demo","action":"custom","consent_id":"`+id+`"}`, nil, 401, "unauthorized", "token"),
		postScenario("someone else's token", `{"site":"demo","action":"custom","consent_id":"`+id+`","token":"`+other["token"].(string)+`"}`, nil, 401, "unauthorized", "token"),
		postScenario("forged token", `{"site":"demo","action":"custom","consent_id":"`+id+`","token":"MTc5NTMzMTg2NnxhNmIwTjVI"}`, nil, 401, "unauthorized", "token"),
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := tt.run(t, s)
			if tt.status == 201 {
				m := r.json(t)
				for _, k := range []string{"consent_id", "record_id", "recorded_at", "token", "receipt_url"} {
					if s, _ := m[k].(string); s == "" {
						t.Errorf("response has no %s: %s", k, r.body)
					}
				}
			}
		})
	}
}

func TestPostStoresCleanRecord(t *testing.T) {
	t.Parallel()
	s, _ := newServer(t, 0)
	r := post(t, s, `{"site":"demo","action":"custom","choices":{"analytics":true},"url":"http://user:pw@example.com/contact?email=a@b.nl#top"}`,
		"User-Agent", strings.Repeat("é", 400), "Sec-GPC", "1").json(t)
	recs := history(t, s, r["consent_id"].(string), "Authorization", "Bearer "+adminToken)
	if len(recs) != 1 {
		t.Fatalf("%d records", len(recs))
	}
	rec := recs[0]
	if rec["url"] != "http://example.com/contact" {
		t.Errorf("url = %v: query, fragment or user kept", rec["url"])
	}
	if rec["ip"] != "203.0.113.0/24" {
		t.Errorf("ip = %v, want the /24", rec["ip"])
	}
	if ua := rec["user_agent"].(string); len(ua) != 256 || !utf8.ValidString(ua) {
		t.Errorf("user agent has %d bytes (valid UTF-8: %v), want 256", len(ua), utf8.ValidString(ua))
	}
	// The header is recorded apart from the page's own reading, and the
	// visitor's explicit choice stands beside it.
	if rec["gpc_header"] != true || rec["gpc"] != false || rec["signal"] != "none" || rec["encoding"] != "koekje-record-v2" {
		t.Errorf("Sec-GPC: 1 beside an explicit choice recorded as gpc %v, gpc_header %v, signal %v, encoding %v; want false, true, none, koekje-record-v2",
			rec["gpc"], rec["gpc_header"], rec["signal"], rec["encoding"])
	}
	want := map[string]any{"necessary": true, "functional": false, "analytics": true, "embeds": false}
	got := rec["choices"].(map[string]any)
	for k, v := range want {
		if got[k] != v {
			t.Errorf("choices[%s] = %v, want %v", k, got[k], v)
		}
	}
	if rec["language"] != "nl" || rec["revision"] != float64(1) {
		t.Errorf("defaults not filled: %v", rec)
	}
}

func history(tb testing.TB, h http.Handler, id string, headers ...string) []map[string]any {
	tb.Helper()
	r := do(tb, h, "GET", "/api/v1/consents/"+id, "", headers...)
	if r.status != 200 {
		tb.Fatalf("history: %d %s", r.status, r.body)
	}
	var out struct{ Records []map[string]any }
	if err := json.Unmarshal(r.body, &out); err != nil {
		tb.Fatal(err)
	}
	return out.Records
}

func TestHistory(t *testing.T) {
	t.Parallel()
	s, _ := newServer(t, 0)
	a := post(t, s, `{"site":"demo","action":"accept_all"}`).json(t)
	id, old := a["consent_id"].(string), a["token"].(string)
	token := post(t, s, `{"site":"demo","action":"withdraw","consent_id":"`+id+`","token":"`+old+`"}`).json(t)["token"].(string)
	b := post(t, s, `{"site":"demo","action":"accept_all"}`).json(t)

	recs := history(t, s, id+"?token="+token)
	if len(recs) != 2 || recs[0]["action"] != "accept_all" || recs[1]["action"] != "withdraw" {
		t.Fatalf("history = %v", recs)
	}
	if recs[1]["prev_hash"] == "" || recs[1]["hash"] == recs[0]["hash"] {
		t.Error("records are not chained")
	}
	if len(history(t, s, id, "Authorization", "Bearer "+adminToken)) != 2 {
		t.Error("admin sees a different history")
	}
	get := func(name, path string, headers []string, status int, code, field string) scenario {
		return scenario{name: name, method: "GET", path: path, headers: headers, status: status, code: code, field: field}
	}
	tests := []scenario{
		get("no token", "/api/v1/consents/"+id, nil, 401, "unauthorized", ""),
		get("token before the last write", "/api/v1/consents/"+id+"?token="+old, nil, 401, "unauthorized", ""),
		get("token in the header", "/api/v1/consents/"+id, []string{"Authorization", "Bearer " + token}, 200, "", ""),
		get("other visitor's token", "/api/v1/consents/"+id+"?token="+b["token"].(string), nil, 401, "unauthorized", ""),
		get("wrong admin token", "/api/v1/consents/"+id, []string{"Authorization", "Bearer nope"}, 401, "unauthorized", ""),
		get("malformed id", "/api/v1/consents/not-a-uuid", []string{"Authorization", "Bearer " + adminToken}, 400, "malformed", "consent_id"),
		get("unknown id", "/api/v1/consents/00000000-0000-4000-8000-000000000000", []string{"Authorization", "Bearer " + adminToken}, 404, "not_found", "consent_id"),
		get("wrong method", "/api/v1/consents", nil, 405, "method_not_allowed", ""),
		get("unknown route", "/api/v2/anything", nil, 404, "not_found", ""),
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.run(t, s) })
	}
}

func TestRateLimit(t *testing.T) {
	t.Parallel()
	s, _ := newServer(t, 1)
	var last response
	for i := 0; i < 30; i++ {
		last = post(t, s, `{"site":"demo","action":"reject_all"}`)
		if last.status == 429 {
			break
		}
	}
	if last.status != 429 {
		t.Fatalf("no 429 after 30 requests at 1/s")
	}
	if last.header.Get("Retry-After") == "" {
		t.Error("429 without Retry-After")
	}
	if e, _ := last.json(t)["error"].(map[string]any); e == nil || e["code"] != "rate_limited" {
		t.Errorf("body = %s", last.body)
	}
}

func TestCORS(t *testing.T) {
	t.Parallel()
	s, _ := newServer(t, 0)
	r := do(t, s, "OPTIONS", "/api/v1/consents", "", "Origin", "http://127.0.0.1:5500", "Access-Control-Request-Method", "POST")
	if r.header.Get("Access-Control-Allow-Origin") != "http://127.0.0.1:5500" {
		t.Errorf("preflight from a configured origin not allowed: %v", r.header)
	}
	r = do(t, s, "OPTIONS", "/api/v1/consents", "", "Origin", "https://evil.example", "Access-Control-Request-Method", "POST")
	if got := r.header.Get("Access-Control-Allow-Origin"); got != "" {
		t.Errorf("preflight from an unknown origin allowed: %q", got)
	}
}

func TestBundle(t *testing.T) {
	t.Parallel()
	s, _ := newServer(t, 0)
	plain := do(t, s, "GET", "/s/demo.js", "")
	if plain.status != 200 || !strings.Contains(plain.header.Get("Content-Type"), "javascript") {
		t.Fatalf("bundle: %d %v", plain.status, plain.header)
	}
	if !bytes.Contains(plain.body, []byte(`"Alles accepteren"`)) || bytes.Contains(plain.body, []byte(`"Stationsplein 12, 3511 ED Utrecht"`)) {
		t.Error("the first part does not carry the first layer's texts, or carries the settings layer's")
	}
	br := do(t, s, "GET", "/s/demo.js", "", "Accept-Encoding", "gzip, deflate, br")
	if br.header.Get("Content-Encoding") != "br" {
		t.Fatalf("Content-Encoding = %q", br.header.Get("Content-Encoding"))
	}
	got, err := io.ReadAll(brotli.NewReader(bytes.NewReader(br.body)))
	if err != nil || !bytes.Equal(got, plain.body) {
		t.Errorf("brotli body does not decode to the script: %v", err)
	}
	gz := do(t, s, "GET", "/s/demo.js", "", "Accept-Encoding", "gzip")
	zr, err := gzip.NewReader(bytes.NewReader(gz.body))
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := io.ReadAll(zr); !bytes.Equal(got, plain.body) {
		t.Error("gzip body does not decode to the script")
	}
	if br.header.Get("ETag") == gz.header.Get("ETag") || br.header.Get("Vary") != "Accept-Encoding" {
		t.Errorf("ETag/Vary: %v / %v", br.header, gz.header)
	}
	if !strings.Contains(br.header.Get("Cache-Control"), "max-age=") {
		t.Errorf("Cache-Control = %q", br.header.Get("Cache-Control"))
	}
	// A script gets the security headers that apply to a script, and none
	// of those that only a document obeys.
	if br.header.Get("X-Content-Type-Options") != "nosniff" || br.header.Get("Cross-Origin-Resource-Policy") != "cross-origin" {
		t.Errorf("script security headers: %v", br.header)
	}
	for _, h := range []string{"Content-Security-Policy", "X-Frame-Options", "Cross-Origin-Opener-Policy", "Referrer-Policy"} {
		if br.header.Get(h) != "" {
			t.Errorf("the script carries the document header %s", h)
		}
	}
	nm := do(t, s, "GET", "/s/demo.js", "", "Accept-Encoding", "br", "If-None-Match", br.header.Get("ETag"))
	if nm.status != 304 || len(nm.body) != 0 {
		t.Errorf("If-None-Match: %d, %d bytes", nm.status, len(nm.body))
	}
	if r := do(t, s, "GET", "/s/demo.js", "", "Accept-Encoding", "br;q=0, gzip"); r.header.Get("Content-Encoding") != "gzip" {
		t.Errorf("br;q=0 ignored: %q", r.header.Get("Content-Encoding"))
	}
	if r := do(t, s, "GET", "/s/nope.js", ""); r.status != 404 {
		t.Errorf("unknown site: %d", r.status)
	}
	head := do(t, s, "HEAD", "/s/demo.js", "", "Accept-Encoding", "br")
	if head.status != 200 || len(head.body) != 0 || head.header.Get("ETag") != br.header.Get("ETag") ||
		head.header.Get("Content-Length") != strconv.Itoa(len(br.body)) {
		t.Errorf("HEAD: %d, %d bytes, %v", head.status, len(head.body), head.header)
	}
	if head.header.Get("Access-Control-Allow-Origin") != "" {
		t.Error("the first part is open to CORS reads it does not need")
	}
}

// The second part is served under the name the first part gives it, for
// good, to any site's page in CORS mode; another version of it is not.
func TestBundleSecondPart(t *testing.T) {
	t.Parallel()
	s, _ := newServer(t, 0)
	first := do(t, s, "GET", "/s/demo.js", "")
	name := regexp.MustCompile(`demo\.[0-9a-f]{16}\.js`).Find(first.body)
	if name == nil {
		t.Fatal("the first part names no second part")
	}
	path := "/s/" + string(name)
	plain := do(t, s, "GET", path, "")
	if plain.status != 200 || !strings.Contains(plain.header.Get("Content-Type"), "javascript") ||
		!bytes.Contains(plain.body, []byte(`"Stationsplein 12, 3511 ED Utrecht"`)) {
		t.Fatalf("second part: %d %v", plain.status, plain.header)
	}
	sum := sha256.Sum256(plain.body)
	if !bytes.Contains(first.body, []byte("sha256-"+base64.StdEncoding.EncodeToString(sum[:]))) {
		t.Error("the first part does not carry the second part's SRI hash")
	}
	br := do(t, s, "GET", path, "", "Accept-Encoding", "br")
	got, err := io.ReadAll(brotli.NewReader(bytes.NewReader(br.body)))
	if br.header.Get("Content-Encoding") != "br" || err != nil || !bytes.Equal(got, plain.body) {
		t.Errorf("brotli second part: %q, %v", br.header.Get("Content-Encoding"), err)
	}
	if cc := br.header.Get("Cache-Control"); !strings.Contains(cc, "immutable") || br.header.Get("Access-Control-Allow-Origin") != "*" {
		t.Errorf("second part headers: %v", br.header)
	}
	if br.header.Get("ETag") == "" || br.header.Get("ETag") == first.header.Get("ETag") {
		t.Errorf("second part ETag %q", br.header.Get("ETag"))
	}
	if nm := do(t, s, "GET", path, "", "Accept-Encoding", "br", "If-None-Match", br.header.Get("ETag")); nm.status != 304 {
		t.Errorf("If-None-Match: %d", nm.status)
	}
	for _, p := range []string{"/s/demo.0000000000000000.js", "/s/nope." + string(name[5:]), "/s/demo..js", "/s/" + string(name[:len(name)-3])} {
		if r := do(t, s, "GET", p, ""); r.status != 404 {
			t.Errorf("%s: %d", p, r.status)
		}
	}
}

func TestHealthAndHeaders(t *testing.T) {
	t.Parallel()
	s, _ := newServer(t, 0)
	r := do(t, s, "GET", "/healthz", "")
	if r.status != 200 || r.json(t)["status"] != "ok" {
		t.Fatalf("healthz: %d %s", r.status, r.body)
	}
	for _, h := range []string{"X-Content-Type-Options", "Content-Security-Policy", "Referrer-Policy", "X-Frame-Options", "Cross-Origin-Opener-Policy"} {
		if r.header.Get(h) == "" {
			t.Errorf("no %s header", h)
		}
	}
	page := do(t, s, "GET", "/", "")
	if page.status != 200 || !bytes.Contains(page.body, []byte(`<script src="/s/demo.js">`)) {
		t.Fatalf("demo page: %d", page.status)
	}
	if csp := page.header.Get("Content-Security-Policy"); strings.Contains(csp, "unsafe-inline") || strings.Contains(csp, "unsafe-eval") {
		t.Errorf("demo page CSP is not strict: %s", csp)
	}
}

// openRaw opens the store's file for statements the store never makes.
func openRaw(t *testing.T, db *sqlite.DB) func(string) {
	t.Helper()
	raw, err := sql.Open("sqlite3", "file:"+db.Path())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { raw.Close() })
	return func(q string) {
		t.Helper()
		if _, err := raw.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
}

func TestMetrics(t *testing.T) {
	t.Parallel()
	s, _ := newServer(t, 0)
	post(t, s, `{"site":"demo","action":"accept_all"}`)
	post(t, s, `{"site":"nope","action":"accept_all"}`)
	do(t, s, "GET", "/s/demo.js", "")
	if r := do(t, s, "GET", "/metrics", ""); r.status != 401 {
		t.Errorf("metrics without a token: %d", r.status)
	}
	r := do(t, s, "GET", "/metrics", "", "Authorization", "Bearer "+adminToken)
	for _, want := range []string{
		`koekje_http_requests_total{method="POST",route="/api/v1/consents",status="201"} 1`,
		`koekje_http_requests_total{method="POST",route="/api/v1/consents",status="404"} 1`,
		`koekje_http_requests_total{method="GET",route="/s/:file",status="200"} 1`,
		`koekje_http_request_duration_seconds_bucket{route="/api/v1/consents",le="+Inf"} 2`,
		"go_goroutines",
	} {
		if !bytes.Contains(r.body, []byte(want)) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

// A client that goes away while its request waits is not a server fault.
func TestCancelledRequestIsNotInternal(t *testing.T) {
	t.Parallel()
	s, _ := newServer(t, 0)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	req := httptest.NewRequest("POST", "/api/v1/consents", strings.NewReader(`{"site":"demo","action":"accept_all"}`)).WithContext(ctx)
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, req)
	if rec.Code == 500 {
		t.Errorf("cancelled request answered 500: %s", rec.Body)
	}
}

// A server with many sites answers at once: bundles are compressed in the
// background after start, or by the first request that wants one. Racing
// requests for every site, in both encodings, each decode to the site's
// own script.
func TestManySitesCompressedOnDemand(t *testing.T) {
	t.Parallel()
	demo, err := os.ReadFile("../config/demo.yaml")
	if err != nil {
		t.Fatal(err)
	}
	head, block, ok := bytes.Cut(demo, []byte("\n  - id: demo\n"))
	if !ok {
		t.Fatal("demo.yaml has no demo site")
	}
	const n = 4
	yaml := append(bytes.Clone(head), '\n')
	for i := 0; i < n; i++ {
		yaml = fmt.Appendf(yaml, "  - id: s%d\n%s\n", i, block)
	}
	cfg, err := config.Load("many.yaml", bytes.NewReader(yaml))
	if err != nil {
		t.Fatal(err)
	}
	s := newServerWith(t, func(d *serverDeps) { d.Config, d.Precompress = cfg, true })
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		for _, enc := range []string{"br", "gzip"} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				path := fmt.Sprintf("/s/s%d.js", i)
				plain := do(t, s, "GET", path, "")
				r := do(t, s, "GET", path, "", "Accept-Encoding", enc)
				if r.status != 200 || r.header.Get("Content-Encoding") != enc {
					t.Errorf("%s %s: %d %q", path, enc, r.status, r.header.Get("Content-Encoding"))
					return
				}
				var zr io.Reader = brotli.NewReader(bytes.NewReader(r.body))
				if enc == "gzip" {
					gz, err := gzip.NewReader(bytes.NewReader(r.body))
					if err != nil {
						t.Error(err)
						return
					}
					zr = gz
				}
				got, err := io.ReadAll(zr)
				if err != nil || !bytes.Equal(got, plain.body) || !bytes.Contains(got, fmt.Appendf(nil, `"s%d"`, i)) {
					t.Errorf("%s %s does not decode to the site's script: %v", path, enc, err)
				}
			}()
		}
	}
	wg.Wait()
}

// Global Privacy Control is recorded with its source: the page's reading
// (the body's gpc) apart from the Sec-GPC header. Without an explicit grant
// it is a refusal decided by the signal, the page's before the header's;
// an explicit grant while it is on stands, with the signal beside it.
func TestPostRecordsGPCWithItsSource(t *testing.T) {
	t.Parallel()
	s, _ := newServer(t, 0)
	for _, c := range []struct {
		body, secGPC string
		gpc, header  bool
		signal       string
	}{
		{`{"site":"demo","action":"reject_all"}`, "1", false, true, "gpc-header"},
		{`{"site":"demo","action":"reject_all","gpc":true}`, "", true, false, "gpc-page"},
		{`{"site":"demo","action":"reject_all","gpc":true}`, "1", true, true, "gpc-page"},
		{`{"site":"demo","action":"accept_all","gpc":true}`, "1", true, true, "none"},
		{`{"site":"demo","action":"reject_all"}`, "0", false, false, "none"},
		{`{"site":"demo","action":"reject_all"}`, "", false, false, "none"},
	} {
		var headers []string
		if c.secGPC != "" {
			headers = []string{"Sec-GPC", c.secGPC}
		}
		r := post(t, s, c.body, headers...).json(t)
		recs := history(t, s, r["consent_id"].(string), "Authorization", "Bearer "+adminToken)
		if len(recs) != 1 {
			t.Fatalf("%d records", len(recs))
		}
		rec := recs[0]
		if rec["gpc"] != c.gpc || rec["gpc_header"] != c.header || rec["signal"] != c.signal {
			t.Errorf("%s with Sec-GPC %q: gpc %v, gpc_header %v, signal %v; want %v, %v, %s", c.body, c.secGPC, rec["gpc"], rec["gpc_header"], rec["signal"], c.gpc, c.header, c.signal)
		}
	}
}

// An ADPC header on the POST is recorded as read, with its source: a
// withdrawal or an objection refuses what it names whatever the banner
// granted, an identifier the site never requested decides nothing, and a
// header that cannot be read is recorded as such, with the visitor's
// choice kept: never an error. Every answer links to the site's requests.
func TestPostRecordsADPC(t *testing.T) {
	t.Parallel()
	s, _ := newServer(t, 0)
	for _, c := range []struct {
		adpc, want, signal string
		granted            map[string]bool
	}{
		{`withdraw=analytics.r1`, `withdraw=analytics.r1`, "adpc", map[string]bool{"functional": true, "analytics": false, "embeds": true}},
		{`withdraw=*, object=direct-marketing`, `withdraw=*, object=direct-marketing`, "adpc", map[string]bool{"functional": false, "analytics": false, "embeds": false}},
		{`consent=analytics.r1`, `consent=analytics.r1`, "none", map[string]bool{"functional": true, "analytics": true, "embeds": true}},
		{`withdraw=someone-elses-purpose`, ``, "none", map[string]bool{"functional": true, "analytics": true, "embeds": true}},
		{`withdraw="*`, `invalid`, "none", map[string]bool{"functional": true, "analytics": true, "embeds": true}},
		{"consent=\x7f" + strings.Repeat("a", 3000), `invalid`, "none", map[string]bool{"functional": true, "analytics": true, "embeds": true}},
	} {
		r := post(t, s, `{"site":"demo","action":"accept_all","services":{"youtube":true}}`, "ADPC", c.adpc)
		if r.status != 201 {
			t.Fatalf("ADPC %q: %d %s", c.adpc, r.status, r.body)
		}
		if link := r.header.Get("Link"); link != `<http://example.com/adpc/demo.json>; rel="consent-requests"; hreflang="nl en de fr"` {
			t.Errorf("the answer's Link: %q", link)
		}
		recs := history(t, s, r.json(t)["consent_id"].(string), "Authorization", "Bearer "+adminToken)
		rec := recs[0]
		adpc, _ := rec["adpc"].(string)
		choices := rec["choices"].(map[string]any)
		for k, v := range c.granted {
			if choices[k] != v {
				t.Errorf("ADPC %q: %s is %v, want %v", c.adpc, k, choices[k], v)
			}
		}
		if _, kept := rec["services"]; kept != c.granted["embeds"] {
			t.Errorf("ADPC %q: services %v with embeds %v", c.adpc, rec["services"], c.granted["embeds"])
		}
		// What ADPC refused comes back for the banner to apply: what
		// still holds.
		answer := r.json(t)
		gs, has := answer["granted"].([]any)
		var want []any
		for _, cat := range []string{"functional", "analytics", "embeds"} {
			if c.granted[cat] {
				want = append(want, cat)
			}
		}
		if has != (c.signal == "adpc") || has && fmt.Sprint(gs) != fmt.Sprint(want) {
			t.Errorf("ADPC %q: the answer's granted %v (services %v) with signal %s; want %v", c.adpc, answer["granted"], answer["services"], c.signal, want)
		}
		if adpc != c.want || rec["signal"] != c.signal || rec["action"] != "accept_all" {
			t.Errorf("ADPC %q recorded as %q, signal %v, action %v; want %q, %s, accept_all", c.adpc, adpc, rec["signal"], rec["action"], c.want, c.signal)
		}
	}
}

// A browser or extension that adds the signals as request headers passes
// the consent API's CORS preflight.
func TestPreflightAllowsSignals(t *testing.T) {
	t.Parallel()
	s, _ := newServer(t, 0)
	r := do(t, s, "OPTIONS", "/api/v1/sites/demo/consents", "", "Origin", "http://localhost:3000",
		"Access-Control-Request-Method", "POST", "Access-Control-Request-Headers", "adpc, sec-gpc")
	allowed := strings.ToLower(r.header.Get("Access-Control-Allow-Headers"))
	if r.status != 204 || !strings.Contains(allowed, "adpc") || !strings.Contains(allowed, "sec-gpc") {
		t.Errorf("preflight: %d, Access-Control-Allow-Headers %q", r.status, r.header.Get("Access-Control-Allow-Headers"))
	}
}

// The site's consent requests, as ADPC's JSON: one per optional category,
// named for the revision, in the language asked for.
func TestConsentRequests(t *testing.T) {
	t.Parallel()
	s, _ := newServer(t, 0)
	r := do(t, s, "GET", "/adpc/demo.json", "", "Accept-Language", "fr;q=0.5, en-GB, nl;q=0.8")
	if r.status != 200 || r.header.Get("Content-Language") != "en" || r.header.Get("Access-Control-Allow-Origin") != "*" {
		t.Fatalf("%d %v %s", r.status, r.header, r.body)
	}
	var list struct {
		ConsentRequests []struct{ ID, Text string } `json:"consentRequests"`
	}
	if err := json.Unmarshal(r.body, &list); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, q := range list.ConsentRequests {
		ids = append(ids, q.ID)
		if !strings.Contains(q.Text, ": ") {
			t.Errorf("request %s has no title and description: %q", q.ID, q.Text)
		}
	}
	if strings.Join(ids, " ") != "functional.r1 analytics.r1 embeds.r1" || !strings.HasPrefix(list.ConsentRequests[1].Text, "Statistics") {
		t.Errorf("requests %v: %s", ids, r.body)
	}
	if r := do(t, s, "GET", "/adpc/demo.json?lang=nl", ""); r.header.Get("Content-Language") != "nl" || !bytes.Contains(r.body, []byte(`"analytics.r1"`)) {
		t.Errorf("in Dutch: %v %s", r.header, r.body)
	}
	for _, path := range []string{"/adpc/nobody.json", "/adpc/demo", "/adpc/demo.json?lang=xx"} {
		if r := do(t, s, "GET", path, ""); r.status != 404 && r.status != 422 {
			t.Errorf("%s: %d %s", path, r.status, r.body)
		}
	}
}

// A choice that grants something while the browser sends GPC stands, and
// the answer brings the banner the sentence that tells the visitor so, in
// the record's language; a refusal, or a choice without GPC, has none.
func TestAnswerNotesGPCOverride(t *testing.T) {
	t.Parallel()
	s, _ := newServer(t, 0)
	for _, c := range []struct {
		body, secGPC, note string
	}{
		{`{"site":"demo","action":"accept_all"}`, "1", "Je keuze geldt op deze site in plaats van de Global Privacy Control-instelling van je browser."},
		{`{"site":"demo","action":"custom","choices":{"analytics":true},"gpc":true,"language":"en"}`, "", "Your choice overrides your browser's Global Privacy Control setting on this site."},
		{`{"site":"demo","action":"load_once","services":{"youtube":true},"gpc":true,"language":"de"}`, "", "Ihre Auswahl gilt auf dieser Website anstelle der Einstellung Global Privacy Control Ihres Browsers."},
		{`{"site":"demo","action":"reject_all","gpc":true}`, "1", ""},
		{`{"site":"demo","action":"custom","choices":{"analytics":false},"gpc":true}`, "", ""},
		{`{"site":"demo","action":"accept_all"}`, "", ""},
	} {
		var headers []string
		if c.secGPC != "" {
			headers = []string{"Sec-GPC", c.secGPC}
		}
		got, _ := post(t, s, c.body, headers...).json(t)["note"].(string)
		if got != c.note {
			t.Errorf("%s with Sec-GPC %q: note %q, want %q", c.body, c.secGPC, got, c.note)
		}
	}
}
