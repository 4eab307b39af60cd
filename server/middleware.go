package server

import (
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
	"golang.org/x/time/rate"

	"github.com/koekje/koekje/server/consent"
)

// frame wraps every request in one layer: it sets the security headers,
// refuses oversized heads, turns errors and panics into the JSON error, and
// counts and logs the request. One layer instead of four, and a log line
// written by hand, keep what every request pays small.
func (s *Server) frame(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := time.Now()
		s.handle(c, next)
		s.finish(c, start)
		return nil
	}
}

// handle runs next with the security headers set and the head checked,
// and answers whatever error or panic comes out of it.
func (s *Server) handle(c echo.Context, next echo.HandlerFunc) {
	defer func() {
		r := recover()
		if r == nil {
			return
		}
		if r == http.ErrAbortHandler {
			panic(r)
		}
		stack := make([]byte, 4<<10)
		stack = stack[:runtime.Stack(stack, false)]
		s.log.Error("panic", "route", c.Path(), "panic", fmt.Sprint(r), "stack", string(stack))
		c.Error(fmt.Errorf("panic: %v", r))
	}()
	s.securityHeaders(c)
	s.warnUntrustedProxy(c)
	err := checkHead(c.Request())
	if err == nil {
		err = next(c)
	}
	if err != nil {
		c.Error(err)
	}
}

// finish counts the request and logs it: method, route (the pattern, so no
// consent IDs or tokens), status and latency. Never an address.
func (s *Server) finish(c echo.Context, start time.Time) {
	d := time.Since(start)
	route := c.Path()
	if route == "" {
		route = "unmatched"
	}
	method, status := knownMethod(c.Request().Method), c.Response().Status
	s.metrics.observe(route, method, status, d)
	// A record without a caller (pc 0): the request log never prints one,
	// and finding it costs more than the rest of the line.
	r := slog.NewRecord(start.Add(d), slog.LevelInfo, "request", 0)
	r.AddAttrs(slog.String("method", method), slog.String("route", route), slog.Int("status", status), slog.Duration("latency", d))
	s.accessLog.Handle(c.Request().Context(), r)
}

// knownMethod names a request's method for metrics and logs: a client can
// send any token as a method, and each new one would be a new series.
func knownMethod(m string) string {
	switch m {
	case http.MethodGet, http.MethodPost, http.MethodHead, http.MethodOptions,
		http.MethodPut, http.MethodDelete, http.MethodPatch:
		return m
	}
	return "other"
}

// securityHeaders go on every response, as far as they apply to it: the
// banner script gets nosniff and HSTS when the server is reached over
// HTTPS (its own TLS, or an https public URL: the TLS proxy in front of
// it) (and, from its handler, its resource policy);
// the policies that only mean something for a document (CSP, frame and
// opener policies, referrer policy) go on everything else, which is JSON or
// HTML. Pages that need more (the demo page) set their own policy on top.
// Every console answer, downloads and error pages included, is no-store:
// it shows records and reports to a signed-in person only.
func (s *Server) securityHeaders(c echo.Context) {
	h := c.Response().Header()
	// Canonical keys and shared values: set on every response without allocating.
	h["X-Content-Type-Options"] = nosniff
	if c.Request().TLS != nil || s.https {
		h["Strict-Transport-Security"] = hsts
	}
	if p := c.Path(); strings.HasPrefix(p, "/admin") && p != consoleCSSRoute {
		// Set when the header goes out, over whatever a handler set.
		c.Response().Before(func() { h["Cache-Control"] = noStore })
	}
	if c.Path() == bundleRoute {
		return
	}
	h["Referrer-Policy"] = noReferrer
	h["X-Frame-Options"] = deny
	h["Content-Security-Policy"] = apiCSP
	h["Cross-Origin-Opener-Policy"] = sameOrigin
}

var (
	nosniff    = []string{"nosniff"}
	noReferrer = []string{"no-referrer"}
	deny       = []string{"DENY"}
	apiCSP     = []string{"default-src 'none'; frame-ancestors 'none'; base-uri 'none'"}
	sameOrigin = []string{"same-origin"}
	hsts       = []string{"max-age=31536000"}
	noStore    = []string{"no-store"}
)

// cors answers browsers from any configured origin of any site; which site
// an origin may write for is checked by the handler once it knows the site.
func (s *Server) cors(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		h := c.Response().Header()
		h.Add("Vary", "Origin")
		origin := c.Request().Header.Get("Origin")
		if origin == "" || !s.anySiteAllows(origin, s.self) {
			return next(c)
		}
		h.Set("Access-Control-Allow-Origin", origin)
		if c.Request().Method == "OPTIONS" {
			h.Set("Access-Control-Allow-Methods", "GET, POST")
			// A browser or an extension that adds the privacy signals as
			// request headers may have them checked like a page's own.
			h.Set("Access-Control-Allow-Headers", "Content-Type, Authorization, ADPC, Sec-GPC")
			h.Set("Access-Control-Max-Age", "86400")
		}
		return next(c)
	}
}

func (s *Server) anySiteAllows(origin, self string) bool {
	for _, site := range s.cfg.Sites {
		if site.AllowsOrigin(origin, self) {
			return true
		}
	}
	return false
}

// rateLimit limits public writes per client network (the truncated address,
// so one visitor cannot dodge it by hopping through a /64).
func (s *Server) rateLimit() echo.MiddlewareFunc {
	if s.limit <= 0 {
		return func(next echo.HandlerFunc) echo.HandlerFunc { return next }
	}
	burst := int(math.Max(10, math.Ceil(2*s.limit)))
	retry := strconv.Itoa(int(math.Max(1, math.Ceil(1/s.limit))))
	return middleware.RateLimiterWithConfig(middleware.RateLimiterConfig{
		Store: middleware.NewRateLimiterMemoryStoreWithConfig(middleware.RateLimiterMemoryStoreConfig{
			Rate: rate.Limit(s.limit), Burst: burst, ExpiresIn: 3 * time.Minute,
		}),
		IdentifierExtractor: func(c echo.Context) (string, error) {
			return consent.TruncateIP(c.RealIP()), nil
		},
		DenyHandler: func(c echo.Context, _ string, _ error) error {
			c.Response().Header().Set("Retry-After", retry)
			return consent.Errorf(consent.ERATELIMIT, "too many requests from your network; retry after %s s", retry)
		},
		ErrorHandler: func(c echo.Context, err error) error {
			// The cause goes to the log; the client learns only that it failed.
			return fmt.Errorf("rate limiter: %w", err)
		},
	})
}

// Limits on a request's head. net/http refuses heads over MaxHeaderBytes
// with a plain-text 431; below that, these give the JSON error.
const (
	maxHeaderBytes = 8 << 10
	maxURIBytes    = 4 << 10
)

// checkHead refuses long URIs and large header sets.
func checkHead(r *http.Request) error {
	if len(r.RequestURI) > maxURIBytes {
		return consent.Errorf(codeURI, "the URI is longer than %d bytes", maxURIBytes)
	}
	n := 0
	for k, vs := range r.Header {
		for _, v := range vs {
			n += len(k) + len(v) + 4
		}
	}
	if n > maxHeaderBytes {
		return consent.Errorf(codeHeaders, "the headers are larger than %d bytes", maxHeaderBytes)
	}
	return nil
}
