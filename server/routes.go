package server

import (
	"net/http"

	"github.com/labstack/echo/v4"
)

// bundleRoute serves the banner script of each site.
const bundleRoute = "/s/:file"

// consoleCSSRoute is the console's style sheet, the one console answer that
// caches: it holds nothing of anyone's.
const consoleCSSRoute = "/admin/console.css"

// routes lists every route in one place, with the middleware that decides
// who may use it: none (public), cors (browsers on a site's origins),
// visitor (the visitor's own token, or an admin token), audit and admin
// (bearer tokens of that scope), signedIn and csrf (the console); form and
// noBody bound what a POST outside the consent API may send.
func (s *Server) routes() {
	e := s.echo
	e.Use(s.frame)
	audit, admin := s.bearer("audit"), s.bearer("admin")

	e.GET("/healthz", s.healthz)
	e.GET("/metrics", s.metricsHandler(), audit)
	e.GET("/", s.demoPage)
	e.GET("/demo/demo.css", s.demoAsset)
	e.GET("/demo/analytics.js", s.demoAsset)
	e.GET(bundleRoute, s.bundle)
	e.HEAD(bundleRoute, s.bundle) // caches and proxies ask before they fetch
	e.GET(adpcRoute, s.consentRequests)

	// CORS per route: group middleware would turn a wrong method's 405 into a 404.
	e.POST("/api/v1/consents", s.postConsent, s.cors, s.rateLimit())
	e.OPTIONS("/api/v1/consents", preflight, s.cors)
	e.POST("/api/v1/sites/:site/consents", s.postConsent, s.cors, s.rateLimit())
	e.OPTIONS("/api/v1/sites/:site/consents", preflight, s.cors)
	e.GET("/api/v1/consents/:id", s.getHistory, s.cors, s.visitor)
	e.OPTIONS("/api/v1/consents/:id", preflight, s.cors)
	e.GET("/api/v1/consents/:id/receipt", s.receipt, s.cors, s.visitor)
	e.OPTIONS("/api/v1/consents/:id/receipt", preflight, s.cors)
	e.GET("/api/v1/consents/:id/proof", s.logProof, s.cors, s.visitor)
	e.GET("/api/v1/keys", s.jwks)
	e.GET("/api/v1/openapi.json", openAPI)
	e.GET("/api/v1/export.schema.json", exportSchemaDoc)
	e.GET("/config/sites.schema.json", configSchema)
	e.GET("/.well-known/gpc.json", s.gpcJSON) // on first-party sites' origins

	// The transparency log: public and cacheable (C2SP tlog-tiles); mirrors
	// and caches ask with HEAD.
	getHead := []string{http.MethodGet, http.MethodHead}
	e.Match(getHead, "/log/checkpoint", s.logCheckpoint)
	e.Match(getHead, "/log/key", s.logKeyText)
	e.Match(getHead, "/log/policy", s.logPolicyText)
	e.Match(getHead, "/log/tile/*", newLogTiles(s, tileCacheBytes).serve)
	e.GET("/verify", s.verifyPage) // checks a receipt in the browser
	e.GET("/verify/verify.js", s.verifyPage)
	e.GET("/verify/verify.css", s.verifyPage)

	e.GET("/api/v1/sites/:site/verify", s.verify, audit)
	e.GET("/api/v1/sites/:site/consents", s.export, audit)
	e.GET("/api/v1/sites/:site/consents/:id/evidence", s.evidencePack, audit)
	e.GET("/api/v1/sites/:site/stats", s.stats, audit)
	e.GET("/api/v1/sites/:site/versions/:hash", s.version, audit)
	e.GET("/api/v1/sites/:site/scans", s.listScans, audit)
	e.GET("/api/v1/sites/:site/scans/days", s.listScanDays, audit)
	e.GET("/api/v1/sites/:site/scans/:id", s.scanReport, audit)
	e.POST("/api/v1/sites/:site/purge", s.purge, admin, noBody)
	e.POST("/api/v1/keys/rotate", s.rotateKey, admin, noBody)

	e.GET("/admin", s.consoleHome)
	e.GET(consoleCSSRoute, s.consoleCSS)
	e.POST("/admin/login", s.login, form)
	e.POST("/admin/logout", s.logout, form)
	e.GET("/admin/sites/:site", s.consoleSite, s.signedIn)
	e.POST("/admin/sites/:site/verify", s.consoleVerify, form, s.signedIn, s.csrf)
	e.GET("/admin/sites/:site/export", s.consoleExport, s.signedIn)
	e.GET("/admin/sites/:site/evidence/:id", s.evidencePack, s.signedIn)
	e.GET("/admin/sites/:site/preview", s.consolePreview, s.signedIn)
	e.GET("/admin/sites/:site/versions/:hash", s.consoleVersion, s.signedIn)
	e.GET("/admin/sites/:site/scans/:id", s.consoleScanReport, s.signedIn)
	e.GET("/admin/sites/:site/records", s.consoleRecords, s.signedIn)
	e.GET("/admin/lookup", s.consoleLookup, s.signedIn)
	e.GET("/admin/receipt/:id", s.consoleReceipt, s.signedIn)
}

func preflight(c echo.Context) error { return c.NoContent(http.StatusNoContent) }
