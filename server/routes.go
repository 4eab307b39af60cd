package server

import (
	"net/http"

	"github.com/labstack/echo/v4"
)

// bundleRoute serves the banner script of each site.
const bundleRoute = "/s/:file"

// routes lists every route in one place.
func (s *Server) routes() {
	e := s.echo
	e.Use(s.frame)

	e.GET("/healthz", s.healthz)
	e.GET("/metrics", s.metricsHandler())
	e.GET("/", s.demoPage)
	e.GET("/demo/demo.css", s.demoAsset)
	e.GET("/demo/analytics.js", s.demoAsset)
	e.GET(bundleRoute, s.bundle)
	e.HEAD(bundleRoute, s.bundle) // caches and proxies ask before they fetch

	// CORS per route: group middleware would turn a wrong method's 405 into a 404.
	e.POST("/api/v1/consents", s.postConsent, s.cors, s.rateLimit())
	e.OPTIONS("/api/v1/consents", preflight, s.cors)
	e.GET("/api/v1/consents/:id", s.getHistory, s.cors)
	e.OPTIONS("/api/v1/consents/:id", preflight, s.cors)
	e.GET("/api/v1/consents/:id/receipt", s.receipt, s.cors)
	e.OPTIONS("/api/v1/consents/:id/receipt", preflight, s.cors)
	e.GET("/api/v1/keys", s.jwks)
	e.GET("/api/v1/openapi.json", openAPI)

	// Auditors: an admin bearer token of scope audit or admin.
	e.GET("/api/v1/sites/:site/verify", s.verify)
	e.GET("/api/v1/sites/:site/consents", s.export)
	e.GET("/api/v1/sites/:site/stats", s.stats)
	e.GET("/api/v1/sites/:site/versions/:hash", s.version)
	// Admin scope: changes.
	e.POST("/api/v1/sites/:site/purge", s.purge)
	e.POST("/api/v1/keys/rotate", s.rotateKey)

	// The console: a session cookie from an admin token; forms carry a CSRF token.
	e.GET("/admin", s.consoleHome)
	e.GET("/admin/console.css", s.consoleCSS)
	e.POST("/admin/login", s.login)
	e.POST("/admin/logout", s.logout)
	e.GET("/admin/sites/:site", s.consoleSite)
	e.POST("/admin/sites/:site/verify", s.consoleVerify)
	e.GET("/admin/sites/:site/export", s.consoleExport)
	e.GET("/admin/sites/:site/preview", s.consolePreview)
	e.GET("/admin/sites/:site/versions/:hash", s.consoleVersion)
	e.GET("/admin/lookup", s.consoleLookup)
	e.GET("/admin/receipt/:id", s.consoleReceipt)

}

func preflight(c echo.Context) error { return c.NoContent(http.StatusNoContent) }
