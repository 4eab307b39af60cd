package server

import (
	"log/slog"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
	"golang.org/x/time/rate"

	"github.com/koekje/koekje/server/consent"
)

// requestLog writes one line per request: method, route (the pattern, so no
// consent IDs or tokens), status and latency. Never an address.
func (s *Server) requestLog() echo.MiddlewareFunc {
	return middleware.RequestLoggerWithConfig(middleware.RequestLoggerConfig{
		HandleError:  true,
		LogStatus:    true,
		LogLatency:   true,
		LogMethod:    true,
		LogRoutePath: true,
		LogValuesFunc: func(c echo.Context, v middleware.RequestLoggerValues) error {
			s.metrics.observe(c, v.Status, v.Latency)
			s.log.LogAttrs(c.Request().Context(), slog.LevelInfo, "request",
				slog.String("method", v.Method), slog.String("route", v.RoutePath),
				slog.Int("status", v.Status), slog.Duration("latency", v.Latency))
			return nil
		},
	})
}

// securityHeaders go on every response. Pages and assets that need more
// (the demo page, the banner) set their own policy on top.
func securityHeaders(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		h := c.Response().Header()
		// Canonical keys and shared values: set on every response without allocating.
		h["X-Content-Type-Options"] = nosniff
		h["Referrer-Policy"] = noReferrer
		h["X-Frame-Options"] = deny
		h["Content-Security-Policy"] = apiCSP
		h["Cross-Origin-Opener-Policy"] = sameOrigin
		if c.Request().TLS != nil {
			h["Strict-Transport-Security"] = hsts
		}
		return next(c)
	}
}

var (
	nosniff    = []string{"nosniff"}
	noReferrer = []string{"no-referrer"}
	deny       = []string{"DENY"}
	apiCSP     = []string{"default-src 'none'; frame-ancestors 'none'; base-uri 'none'"}
	sameOrigin = []string{"same-origin"}
	hsts       = []string{"max-age=31536000"}
)

// selfOrigin is the origin the consent server is reached at.
func selfOrigin(c echo.Context) string {
	return c.Scheme() + "://" + c.Request().Host
}

// cors answers browsers from any configured origin of any site; which site
// an origin may write for is checked by the handler once it knows the site.
func (s *Server) cors(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		h := c.Response().Header()
		h.Add("Vary", "Origin")
		origin := c.Request().Header.Get("Origin")
		if origin == "" || !s.anySiteAllows(origin, selfOrigin(c)) {
			return next(c)
		}
		h.Set("Access-Control-Allow-Origin", origin)
		if c.Request().Method == "OPTIONS" {
			h.Set("Access-Control-Allow-Methods", "GET, POST")
			h.Set("Access-Control-Allow-Headers", "Content-Type, Authorization")
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
			return consent.Errorf(consent.EINTERNAL, "rate limiter: %v", strings.TrimSpace(err.Error()))
		},
	})
}

// Limits on a request's head. net/http refuses heads over MaxHeaderBytes
// with a plain-text 431; below that, these give the JSON error.
const (
	maxHeaderBytes = 8 << 10
	maxURIBytes    = 4 << 10
)

// limitHead refuses long URIs and large header sets before routing.
func limitHead(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		if len(r.RequestURI) > maxURIBytes {
			return consent.Errorf(consent.EURI, "the URI is longer than %d bytes", maxURIBytes)
		}
		n := 0
		for k, vs := range r.Header {
			for _, v := range vs {
				n += len(k) + len(v) + 4
			}
		}
		if n > maxHeaderBytes {
			return consent.Errorf(consent.EHEADERS, "the headers are larger than %d bytes", maxHeaderBytes)
		}
		return next(c)
	}
}
