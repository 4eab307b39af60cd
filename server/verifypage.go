package server

import (
	"embed"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"
)

//go:embed templates/verify
var verifyFS embed.FS

// verifyCSP: the page runs its own script and style only, and fetches
// nothing: a receipt is checked without sending it anywhere.
const verifyCSP = "default-src 'none'; script-src 'self'; style-src 'self'; form-action 'none'; base-uri 'none'; frame-ancestors 'none'"

// verifyPage serves the page that checks a receipt in the browser, and its
// script and style.
func (s *Server) verifyPage(c echo.Context) error {
	name := strings.TrimPrefix(c.Path(), "/verify")
	ct := map[string]string{"": "text/html; charset=utf-8", "/verify.js": "text/javascript; charset=utf-8", "/verify.css": "text/css; charset=utf-8"}[name]
	if name == "" {
		name = "/index.html"
	}
	b, err := verifyFS.ReadFile("templates/verify" + name)
	if err != nil {
		return err
	}
	h := c.Response().Header()
	h.Set("Content-Security-Policy", verifyCSP)
	h.Set("Cache-Control", "public, max-age=300")
	return c.Blob(http.StatusOK, ct, b)
}
