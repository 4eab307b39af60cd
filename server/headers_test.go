package server_test

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

// Behind the TLS proxy, with an https public URL, every answer carries
// HSTS; with an http one, none does.
func TestHSTSWithAnHTTPSPublicURL(t *testing.T) {
	t.Parallel()
	s := newServerWith(t, func(d *serverDeps) { d.PublicURL = "https://consent.example.nl" })
	for _, path := range []string{"/healthz", "/s/demo.js", "/", "/admin", "/api/v1/keys"} {
		if got := do(t, s, "GET", path, "").header.Get("Strict-Transport-Security"); got != "max-age=31536000" {
			t.Errorf("%s: Strict-Transport-Security %q", path, got)
		}
	}
	plain, _ := newServer(t, 0)
	if got := do(t, plain, "GET", "/healthz", "").header.Get("Strict-Transport-Security"); got != "" {
		t.Errorf("over http: Strict-Transport-Security %q", got)
	}
}

// Every console answer, downloads and error pages included, is no-store;
// only its style sheet caches.
func TestConsoleAnswersAreNotStored(t *testing.T) {
	t.Parallel()
	s, _ := newServer(t, 0)
	id := post(t, s, `{"site":"demo","action":"accept_all"}`).json(t)["consent_id"].(string)
	b := newBrowser(t, s)
	check := func(path string, resp *http.Response) {
		t.Helper()
		if got := resp.Header.Get("Cache-Control"); got != "no-store" {
			t.Errorf("%s (%d): Cache-Control %q, want no-store", path, resp.StatusCode, got)
		}
	}
	login, _ := b.get("/admin")
	check("/admin", login)
	b.signIn()
	for _, path := range []string{
		"/admin", "/admin/sites/demo", "/admin/receipt/" + id, "/admin/lookup?consent_id=" + id,
		"/admin/sites/demo/export?format=csv", "/admin/sites/demo/export?format=ndjson",
		"/admin/sites/demo/versions/" + s.Bundle("demo").Hash, "/admin/sites/demo/preview",
		"/admin/sites/nope", "/admin/sites/demo/scans/11111111-1111-4111-8111-111111111111",
	} {
		resp, _ := b.get(path)
		check(path, resp)
	}
	resp, _ := b.post("/admin/logout", url.Values{})
	check("/admin/logout", resp)
	if resp, _ := b.get("/admin/console.css"); resp.Header.Get("Cache-Control") == "no-store" {
		t.Error("the console's style sheet is not cached")
	}
}

// Forwarded headers from a peer that is not a trusted proxy are ignored,
// and the log says so once, naming the peer and the flag.
func TestUntrustedProxyWarnsOnce(t *testing.T) {
	t.Parallel()
	var logs syncBuffer
	s := newServerWith(t, func(d *serverDeps) {
		d.Log = slog.New(slog.NewJSONHandler(&logs, nil))
		d.TrustedProxies = []string{"192.0.2.1/32"}
	})
	send := func(peer string, forwarded bool) {
		req := httptest.NewRequest("GET", "/healthz", nil)
		req.RemoteAddr = peer
		if forwarded {
			req.Header.Set("X-Forwarded-For", "198.51.100.23")
		}
		s.ServeHTTP(httptest.NewRecorder(), req)
	}
	send("10.0.0.5:4444", false)
	send("192.0.2.1:4444", true) // the trusted proxy
	if n := len(logLines(&logs, "requests carry forwarded headers")); n != 0 {
		t.Fatalf("%d warnings before an untrusted peer forwarded", n)
	}
	send("10.0.0.5:4444", true)
	send("10.0.0.5:4444", true)
	send("203.0.113.9:4444", true)
	warned := logLines(&logs, "requests carry forwarded headers")
	if len(warned) != 1 {
		t.Fatalf("%d warnings, want 1", len(warned))
	}
	if w := warned[0]; w["level"] != "WARN" || w["peer"] != "10.0.0.5" || !strings.Contains(w["msg"].(string), "--trusted-proxies") {
		t.Errorf("warning %v, want one naming the peer 10.0.0.5 and --trusted-proxies", w)
	}
}
