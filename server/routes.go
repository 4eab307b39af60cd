package server

import (
	"net/http"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
)

// routes lists every route in one place.
func (s *Server) routes() {
	e := s.echo
	e.Use(middleware.RecoverWithConfig(middleware.RecoverConfig{DisableStackAll: true}))
	e.Use(s.requestLog())
	e.Use(securityHeaders)

	e.GET("/healthz", s.healthz)
	e.GET("/", s.demoPage)
	e.GET("/demo.css", s.demoAsset)
	e.GET("/demo-analytics.js", s.demoAsset)
	e.GET("/s/:file", s.bundle)

	api := e.Group("/api/v1", s.cors)
	api.POST("/consents", s.postConsent, s.rateLimit())
	api.GET("/consents/:id", s.getHistory)
	api.OPTIONS("/consents", preflight)
	api.OPTIONS("/consents/:id", preflight)

	e.RouteNotFound("/*", func(echo.Context) error { return echo.ErrNotFound })
}

func preflight(c echo.Context) error { return c.NoContent(http.StatusNoContent) }
