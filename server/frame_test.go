package server

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/koekje/koekje/server/consent"
)

// The frame around every request: a panic becomes a logged 500 with the
// JSON error, and every request, the panicking one too, gets its metrics
// and one access-log line in slog's JSON shape without the client's address.
func TestFrame(t *testing.T) {
	t.Parallel()
	var errs, access bytes.Buffer
	s := &Server{echo: echo.New(), log: slog.New(slog.NewJSONHandler(&errs, nil)), metrics: NewMetrics(), accessLog: newAccessLog(&access)}
	s.echo.HTTPErrorHandler = s.handleError
	s.echo.Use(s.frame)
	s.echo.GET("/panic/:id", func(echo.Context) error { panic("boom") })
	s.echo.GET("/gone", func(echo.Context) error { return consent.Errorf(consent.ENOTFOUND, "gone") })
	s.echo.GET("/ok", func(c echo.Context) error { return c.String(http.StatusOK, "ok") })
	s.echo.GET("/full", func(echo.Context) error {
		return consent.Errorf(consent.EUNAVAILABLE, "the consent store is full")
	})
	s.echo.GET("/internal", func(echo.Context) error {
		return consent.Errorf(consent.EINTERNAL, "rate limiter: secret-cause")
	})

	for _, tt := range []struct {
		path   string
		status int
		code   string
		route  string
	}{
		{"/panic/secret-id", 500, consent.EINTERNAL, "/panic/:id"},
		{"/gone", 404, consent.ENOTFOUND, "/gone"},
		{"/ok", 200, "", "/ok"},
		{"/nowhere", 404, consent.ENOTFOUND, "unmatched"},
		{"/internal", 500, consent.EINTERNAL, "/internal"},
		{"/full", 503, consent.EUNAVAILABLE, "/full"},
		{"/ok?" + strings.Repeat("x", maxURIBytes), 414, codeURI, "/ok"},
	} {
		access.Reset()
		req := httptest.NewRequest("GET", tt.path, nil)
		req.RemoteAddr = "203.0.113.77:4444"
		rec := httptest.NewRecorder()
		before := time.Now().UTC().Truncate(time.Millisecond)
		s.echo.ServeHTTP(rec, req)
		if rec.Code != tt.status {
			t.Errorf("%s: status %d, want %d", tt.path, rec.Code, tt.status)
		}
		if rec.Header().Get("X-Content-Type-Options") != "nosniff" || rec.Header().Get("Content-Security-Policy") == "" {
			t.Errorf("%s: security headers missing: %v", tt.path, rec.Header())
		}
		if strings.Contains(rec.Body.String(), "secret") {
			t.Errorf("%s: an internal cause reached the client: %s", tt.path, rec.Body)
		}
		if tt.code != "" && !strings.Contains(rec.Body.String(), `"code":"`+tt.code+`"`) {
			t.Errorf("%s: body %s, want code %s", tt.path, rec.Body, tt.code)
		}
		line := access.String()
		if strings.Count(line, "\n") != 1 || strings.Contains(line, "203.0.113") || strings.Contains(line, "secret-id") {
			t.Errorf("%s: access log %q", tt.path, line)
		}
		var l struct {
			Time    time.Time
			Level   string
			Msg     string
			Method  string
			Route   string
			Status  int
			Latency time.Duration
		}
		if err := json.Unmarshal([]byte(line), &l); err != nil {
			t.Fatalf("%s: access log line is not JSON: %v: %q", tt.path, err, line)
		}
		if l.Level != "INFO" || l.Msg != "request" || l.Method != "GET" || l.Route != tt.route || l.Status != tt.status ||
			l.Latency <= 0 || l.Time.Before(before) || l.Time.After(time.Now()) {
			t.Errorf("%s: access log %+v", tt.path, l)
		}
	}
	if strings.Contains(errs.String(), `"route":"/full"`) {
		t.Errorf("a refusal of the store was logged again per request: %s", errs.String())
	}
	if !strings.Contains(errs.String(), `"msg":"panic"`) || !strings.Contains(errs.String(), "boom") || !strings.Contains(errs.String(), "frame_test.go") {
		t.Errorf("the panic was not logged with its stack: %s", errs.String())
	}
	for _, m := range []string{"BREW", "PROPFIND", "X-ANY"} {
		s.echo.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(m, "/ok", nil))
	}
	rec := httptest.NewRecorder()
	promhttp.HandlerFor(s.metrics.reg, promhttp.HandlerOpts{}).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	for _, want := range []string{
		`koekje_http_requests_total{method="other",route="/ok",status="405"} 3`,
		`koekje_http_requests_total{method="GET",route="/panic/:id",status="500"} 1`,
		`koekje_http_requests_total{method="GET",route="unmatched",status="404"} 1`,
	} {
		if !strings.Contains(rec.Body.String(), want) {
			t.Errorf("metrics lack %s:\n%s", want, rec.Body)
		}
	}
}

func TestAppendMillis(t *testing.T) {
	t.Parallel()
	for _, tm := range []time.Time{
		time.Date(2026, 11, 22, 8, 5, 9, 7_654_321, time.UTC),
		time.Date(1999, 1, 2, 23, 59, 59, 999_999_999, time.FixedZone("x", 3600)),
		time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Unix(0, 0),
	} {
		want := tm.UTC().AppendFormat(nil, "2006-01-02T15:04:05.000Z07:00")
		if got := appendMillis(nil, tm); string(got) != string(want) {
			t.Errorf("appendMillis(%v) = %s, want %s", tm, got, want)
		}
	}
}

// HSTS goes on every answer over TLS, the banner script's too; the
// document policies go on everything but the script.
func TestSecurityHeadersByKind(t *testing.T) {
	t.Parallel()
	s := &Server{echo: echo.New(), log: slog.New(slog.DiscardHandler), metrics: NewMetrics(), accessLog: newAccessLog(nil)}
	s.echo.HTTPErrorHandler = s.handleError
	s.echo.Use(s.frame)
	s.echo.GET(bundleRoute, func(c echo.Context) error { return c.String(http.StatusOK, "x") })
	s.echo.GET("/api", func(c echo.Context) error { return c.JSON(http.StatusOK, map[string]int{}) })
	for _, tt := range []struct {
		url             string
		hsts, documents bool
	}{
		{"https://consent.example/s/demo.js", true, false},
		{"https://consent.example/api", true, true},
		{"http://consent.example/s/demo.js", false, false},
		{"http://consent.example/api", false, true},
	} {
		rec := httptest.NewRecorder()
		s.echo.ServeHTTP(rec, httptest.NewRequest("GET", tt.url, nil))
		h := rec.Header()
		if h.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("%s: no nosniff", tt.url)
		}
		if got := h.Get("Strict-Transport-Security") != ""; got != tt.hsts {
			t.Errorf("%s: HSTS %v, want %v", tt.url, got, tt.hsts)
		}
		for _, k := range []string{"Content-Security-Policy", "X-Frame-Options", "Cross-Origin-Opener-Policy", "Referrer-Policy"} {
			if got := h.Get(k) != ""; got != tt.documents {
				t.Errorf("%s: %s present %v, want %v", tt.url, k, got, tt.documents)
			}
		}
	}
}
