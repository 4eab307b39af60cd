package server_test

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/koekje/koekje/server"
)

// rawRequest writes req as is on a new connection and reads one response.
func rawRequest(t *testing.T, addr, req string) (*http.Response, []byte) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(conn, req); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no response: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, body
}

func post1(body string) string {
	return fmt.Sprintf("POST /api/v1/consents HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s", len(body), body)
}

// Malformed and abusive requests over a real connection: each gets its
// status and a JSON error with a code; none gets a 500.
func TestHostileRequests(t *testing.T) {
	t.Parallel()
	s, _ := newServer(t, 0)
	hs := httptest.NewUnstartedServer(s)
	hs.Config = s.HTTPServer("")
	hs.Start()
	defer hs.Close()
	addr := hs.Listener.Addr().String()
	deep := strings.Repeat(`{"a":`, 10000) + "1" + strings.Repeat("}", 10000)
	tests := []struct {
		name   string
		req    string
		status int
		code   string
	}{
		{"truncated JSON", post1(`{"site":"demo","action":"acc`), 400, "malformed"},
		{"only a brace", post1(`{`), 400, "malformed"},
		{"JSON null", post1(`null`), 422, "invalid"},
		{"a string", post1(`"demo"`), 400, "malformed"},
		{"site is a number", post1(`{"site":1,"action":"custom"}`), 400, "malformed"},
		{"action is an array", post1(`{"site":"demo","action":["custom"]}`), 400, "malformed"},
		{"gpc is a string", post1(`{"site":"demo","action":"custom","gpc":"yes"}`), 400, "malformed"},
		{"revision is a float", post1(`{"site":"demo","action":"custom","revision":1.5}`), 400, "malformed"},
		{"huge number", post1(`{"site":"demo","action":"custom","revision":99999999999999999999999}`), 400, "malformed"},
		{"negative revision", post1(`{"site":"demo","action":"custom","revision":-3}`), 422, "invalid"},
		{"unknown revision", post1(`{"site":"demo","action":"custom","revision":7}`), 422, "invalid"},
		{"huge string", post1(`{"site":"` + strings.Repeat("d", 7000) + `","action":"custom"}`), 404, "not_found"},
		{"deep nesting", post1(deep), 413, "too_large"},
		{"deep nesting within the limit", post1(`{"site":"demo","action":"custom","choices":` + strings.Repeat(`{"a":`, 500) + "1" + strings.Repeat("}", 500) + `}`), 400, "malformed"},
		{"invalid UTF-8", post1("{\"site\":\"de\xc3\x28mo\",\"action\":\"custom\"}"), 400, "malformed"},
		{"NUL byte in a value", post1(`{"site":"demo","action":"cus\u0000tom"}`), 422, "invalid"},
		{"raw NUL byte", post1("{\"site\":\"demo\x00\",\"action\":\"custom\"}"), 400, "malformed"},
		{"duplicate keys", post1(`{"site":"demo","action":"custom","action":"accept_all"}`), 400, "malformed"},
		{"duplicate category", post1(`{"site":"demo","action":"custom","choices":{"analytics":true,"analytics":false}}`), 400, "malformed"},
		{"unknown field", post1(`{"site":"demo","action":"custom","admin":true}`), 400, "malformed"},
		{"unknown category", post1(`{"site":"demo","action":"custom","choices":{"__proto__":true}}`), 422, "invalid"},
		{"body over the limit", post1(`{"site":"demo","action":"custom","url":"https://x.nl/` + strings.Repeat("a", 9000) + `"}`), 413, "too_large"},
		{"lying Content-Length", "POST /api/v1/consents HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100000\r\nConnection: close\r\n\r\n{}", 413, "too_large"},
		{"chunked body over the limit", "POST /api/v1/consents HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n2800\r\n" + strings.Repeat(" ", 0x2800) + "\r\n0\r\n\r\n", 413, "too_large"},
		{"form content type", "POST /api/v1/consents HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 6\r\nConnection: close\r\n\r\nsite=x", 415, "unsupported_media_type"},
		{"broken content type", "POST /api/v1/consents HTTP/1.1\r\nHost: x\r\nContent-Type: ;;;\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}", 415, "unsupported_media_type"},
		{"oversized headers", "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Junk: " + strings.Repeat("j", 10000) + "\r\nConnection: close\r\n\r\n", 431, "headers_too_large"},
		{"long URI", "GET /api/v1/consents/" + strings.Repeat("a", 5000) + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 414, "uri_too_long"},
		{"PUT", "PUT /api/v1/consents HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", 405, "method_not_allowed"},
		{"DELETE a history", "DELETE /api/v1/consents/11111111-1111-4111-8111-111111111111 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 405, "method_not_allowed"},
		{"TRACE", "TRACE / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 405, "method_not_allowed"},
		{"dot-dot in the path", "GET /s/../../etc/passwd HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 404, "not_found"},
		{"encoded dot-dot", "GET /s/..%2f..%2fetc%2fpasswd.js HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 404, "not_found"},
		{"encoded NUL in an ID", "GET /api/v1/consents/%00 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + adminToken + "\r\nConnection: close\r\n\r\n", 400, "malformed"},
		{"upper-case ID", "GET /api/v1/consents/11111111-1111-4111-8111-11111111111A HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + adminToken + "\r\nConnection: close\r\n\r\n", 400, "malformed"},
		{"double slash", "GET //api/v1/keys HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 404, "not_found"},
		{"token in another scheme", "GET /api/v1/sites/demo/verify HTTP/1.1\r\nHost: x\r\nAuthorization: Basic " + adminToken + "\r\nConnection: close\r\n\r\n", 401, "unauthorized"},
		{"empty bearer", "GET /api/v1/sites/demo/verify HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \r\nConnection: close\r\n\r\n", 401, "unauthorized"},
		{"multipart sign-in", "POST /admin/login HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=b\r\nContent-Length: 67108864\r\nConnection: close\r\n\r\n--b\r\n", 415, "unsupported_media_type"},
		{"large sign-in form", "POST /admin/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 67108864\r\nConnection: close\r\n\r\ntoken=", 413, "too_large"},
		{"chunked sign-in form", "POST /admin/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n2000\r\n" + strings.Repeat("a", 8192) + "\r\n0\r\n\r\n", 413, "too_large"},
		{"body on a purge", "POST /api/v1/sites/demo/purge?before=2020-01-01 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + adminToken + "\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello", 413, "too_large"},
		{"Host and X-Forwarded-Proto name the attacker's origin as self", strings.Replace(post1(`{"site":"demo","action":"custom"}`), "Host: x", "Host: evil.example\r\nX-Forwarded-Proto: https\r\nOrigin: https://evil.example", 1), 403, "forbidden"},
		{"forged visitor token", "GET /api/v1/consents/11111111-1111-4111-8111-111111111111?token=" + strings.Repeat("A", 600) + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 401, "unauthorized"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := rawRequest(t, addr, tt.req)
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tt.status, body)
			}
			var e struct {
				Error struct{ Code, Message string }
			}
			if err := json.Unmarshal(body, &e); err != nil || e.Error.Code != tt.code || e.Error.Message == "" {
				t.Errorf("body %q, want a JSON error with code %s", body, tt.code)
			}
			if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
				t.Errorf("Content-Type %q", ct)
			}
		})
	}
	// The server is still well after all that.
	if r := do(t, s, "GET", "/healthz", ""); r.status != 200 {
		t.Errorf("healthz after hostile requests: %d", r.status)
	}
}

// A client that sends its headers too slowly is cut off by the server's
// ReadHeaderTimeout instead of holding a connection forever.
func TestSlowHeaders(t *testing.T) {
	t.Parallel()
	s, _ := newServer(t, 0)
	hs := httptest.NewUnstartedServer(s)
	hs.Config = s.HTTPServer("")
	hs.Config.ReadHeaderTimeout = 300 * time.Millisecond
	hs.Start()
	defer hs.Close()
	conn, err := net.Dial("tcp", hs.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	io.WriteString(conn, "GET /healthz HTTP/1.1\r\nHost: x\r\n")
	start := time.Now()
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err = conn.Read(make([]byte, 1))
	if err == nil || time.Since(start) > 3*time.Second {
		t.Errorf("slow client kept its connection: %v after %s", err, time.Since(start))
	}
}

// X-Forwarded-For counts only from a trusted proxy.
func TestTrustedProxies(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name    string
		trusted []string
		want    string
	}{
		{"no proxy trusted", nil, "203.0.113.0/24"},
		{"peer is trusted", []string{"203.0.113.0/24"}, "198.51.100.0/24"},
		{"another proxy trusted", []string{"10.0.0.0/8"}, "203.0.113.0/24"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := newServerWith(t, func(d *serverDeps) { d.TrustedProxies = tt.trusted })
			a := post(t, s, `{"site":"demo","action":"accept_all"}`, "X-Forwarded-For", "198.51.100.23").json(t)
			recs := history(t, s, a["consent_id"].(string), "Authorization", "Bearer "+adminToken)
			if recs[0]["ip"] != tt.want {
				t.Errorf("stored network %v, want %s", recs[0]["ip"], tt.want)
			}
		})
	}
}

// Receipts, their page and cookies name the server by its public URL,
// whatever Host and X-Forwarded-Proto a client sends; a forwarded scheme
// counts only from a trusted proxy.
func TestPublicURL(t *testing.T) {
	t.Parallel()
	const public = "https://consent.example.nl"
	s := newServerWith(t, func(d *serverDeps) {
		d.PublicURL = public + "/"
		d.TrustedProxies = []string{"198.51.100.0/24"}
	})
	a := post(t, s, `{"site":"demo","action":"accept_all"}`).json(t)
	path := "/api/v1/consents/" + a["consent_id"].(string) + "/receipt?token=" + url.QueryEscape(a["token"].(string))
	evil := []string{"Host", "evil.example", "X-Forwarded-Proto", "https", "X-Forwarded-Host", "evil.example"}
	r := do(t, s, "GET", path, "", evil...)
	var got struct {
		JWT    string
		Claims struct{ Iss string }
	}
	if err := json.Unmarshal(r.body, &got); err != nil || r.status != 200 {
		t.Fatalf("receipt: %d %s", r.status, r.body)
	}
	payload, _ := base64.RawURLEncoding.DecodeString(strings.Split(got.JWT, ".")[1])
	if got.Claims.Iss != public || !strings.Contains(string(payload), `"iss":"`+public+`"`) {
		t.Errorf("issuer %q (signed: %s), want %s", got.Claims.Iss, payload, public)
	}
	page := do(t, s, "GET", path, "", append(evil, "Accept", "text/html")...)
	if !strings.Contains(string(page.body), public+"/api/v1/keys") || strings.Contains(string(page.body), "evil.example") {
		t.Errorf("receipt page links elsewhere than %s:\n%s", public, page.body)
	}
	// The public origin is self; the request's Host is not.
	if r := post(t, s, `{"site":"demo","action":"custom"}`, "Origin", public); r.status != 201 {
		t.Errorf("POST from the public origin: %d %s", r.status, r.body)
	}
	if r := post(t, s, `{"site":"demo","action":"custom"}`, append(evil, "Origin", "https://evil.example")...); r.status != 403 {
		t.Errorf("POST from the Host's origin: %d %s", r.status, r.body)
	}
	if _, err := server.New(context.Background(), server.Deps{PublicURL: "consent.example.nl/path"}); err == nil || !strings.Contains(err.Error(), "public URL") {
		t.Errorf("a public URL with a path: %v", err)
	}
}

// X-Forwarded-Proto makes the console's cookies Secure only from a trusted
// proxy (with an http public URL).
func TestForwardedProtoTrust(t *testing.T) {
	t.Parallel()
	s := newServerWith(t, func(d *serverDeps) { d.TrustedProxies = []string{"198.51.100.0/24"} })
	for _, tt := range []struct {
		peer   string
		secure bool
	}{
		{"203.0.113.9:1234", false}, // a client on the internet
		{"10.0.0.7:1234", false},    // a private peer that is no trusted proxy
		{"198.51.100.7:1234", true}, // the trusted proxy
	} {
		req := httptest.NewRequest("GET", "/admin", nil)
		req.RemoteAddr = tt.peer
		req.Header.Set("X-Forwarded-Proto", "https")
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, req)
		cookies := rec.Result().Cookies()
		if len(cookies) == 0 || cookies[0].Secure != tt.secure {
			t.Errorf("peer %s: cookies %v, want Secure=%v", tt.peer, cookies, tt.secure)
		}
	}
}

// Guessing tokens: after ten failures from one network (bearer tokens or
// console sign-ins) it gets 429 with Retry-After, even with a right token;
// other networks are not affected.
// failLimit is the server's: failures from one network before it must wait.
const failLimit = 10

func TestTokenGuessing(t *testing.T) {
	t.Parallel()
	s, _ := newServer(t, 0)
	verify := func(peer, token string) response {
		req := httptest.NewRequest("GET", "/api/v1/sites/demo/verify", nil)
		req.RemoteAddr = peer
		req.Header.Set("Authorization", "Bearer "+token)
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, req)
		return response{rec.Code, rec.Header(), rec.Body.Bytes()}
	}
	for i := range 10 {
		// Guesses from addresses across the /24 count together.
		if r := verify(fmt.Sprintf("203.0.113.%d:1000", i), fmt.Sprintf("guess-%d", i)); r.status != 401 {
			t.Fatalf("guess %d: %d", i, r.status)
		}
	}
	for _, tok := range []string{"guess-11", adminToken} {
		r := verify("203.0.113.200:1000", tok)
		var e struct{ Error struct{ Code string } }
		json.Unmarshal(r.body, &e)
		if r.status != 429 || e.Error.Code != "rate_limited" || r.header.Get("Retry-After") != "60" {
			t.Errorf("token %s from the guessing network: %d %q Retry-After %q", tok, r.status, r.body, r.header.Get("Retry-After"))
		}
	}
	if r := verify("198.51.100.1:1000", adminToken); r.status != 200 {
		t.Errorf("another network: %d", r.status)
	}
	// Visitors reading their own history with their token in the header are
	// no guessers, however many read from one network.
	a := post(t, s, `{"site":"demo","action":"accept_all"}`).json(t)
	for i := range 2 * failLimit {
		req := httptest.NewRequest("GET", "/api/v1/consents/"+a["consent_id"].(string), nil)
		req.RemoteAddr = "192.0.2.10:1000"
		req.Header.Set("Authorization", "Bearer "+a["token"].(string))
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, req)
		if rec.Code != 200 {
			t.Fatalf("visitor read %d: %d %s", i, rec.Code, rec.Body)
		}
	}
	// An admin token on a visitor route counts.
	req := httptest.NewRequest("GET", "/api/v1/consents/11111111-1111-4111-8111-111111111111", nil)
	req.RemoteAddr = "203.0.113.5:1000"
	req.Header.Set("Authorization", "Bearer "+adminToken)
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, req)
	if rec.Code != 429 {
		t.Errorf("visitor route from the guessing network: %d", rec.Code)
	}

	// The console's sign-in form, over a real connection (127.0.0.1).
	b := newBrowser(t, s)
	for i := range 10 {
		_, login := b.get("/admin")
		if resp, _ := b.post("/admin/login", url.Values{"csrf": {csrfOf(t, login)}, "token": {fmt.Sprint("guess-", i)}}); resp.StatusCode != 401 {
			t.Fatalf("sign-in guess %d: %d", i, resp.StatusCode)
		}
	}
	_, login := b.get("/admin")
	resp, body := b.post("/admin/login", url.Values{"csrf": {csrfOf(t, login)}, "token": {adminToken}})
	if resp.StatusCode != 429 || resp.Header.Get("Retry-After") == "" || !strings.Contains(body, "Too many failed sign-ins") {
		t.Errorf("sign-in after ten guesses: %d %s", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
}

// Junk bearer tokens on a public visitor route, which anyone may send,
// never lock the admin and audit tokens of their network out of the routes
// made for them; they block further tokens on the visitor routes only.
func TestVisitorRouteGuessesLockNoAdmin(t *testing.T) {
	t.Parallel()
	s, _ := newServer(t, 0)
	get := func(path, token string) int {
		req := httptest.NewRequest("GET", path, nil)
		req.RemoteAddr = "203.0.113.9:1000"
		req.Header.Set("Authorization", "Bearer "+token)
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, req)
		return rec.Code
	}
	const history = "/api/v1/consents/11111111-1111-4111-8111-111111111111"
	for i := range 3 * failLimit {
		if code := get(history, fmt.Sprint("junk-", i)); code != 401 && code != 429 {
			t.Fatalf("junk token %d: %d", i, code)
		}
	}
	if code := get(history, "junk-again"); code != 429 {
		t.Errorf("junk on the visitor route after %d: %d, want 429", 3*failLimit, code)
	}
	if code := get("/api/v1/sites/demo/verify", adminToken); code != 200 {
		t.Errorf("the admin token on an admin route from that network: %d, want 200", code)
	}
	if code := get("/metrics", adminToken); code != 200 {
		t.Errorf("the admin token on /metrics from that network: %d, want 200", code)
	}
}
