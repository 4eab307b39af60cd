package server

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/koekje/koekje/config"
)

// schemaETag names the schema's version: it changes only with the binary.
var schemaETag = `"` + config.Hash(config.Schema)[len("sha256:"):][:32] + `"`

// configSchema serves the JSON Schema of sites.yaml, for editors (a
// "# yaml-language-server: $schema=…" line names it). Public, cacheable,
// and readable by editors that run in a browser.
func configSchema(c echo.Context) error {
	h := c.Response().Header()
	h.Set("Cache-Control", "public, max-age=3600")
	h.Set("ETag", schemaETag)
	h.Set("Access-Control-Allow-Origin", "*")
	if inm := c.Request().Header.Get("If-None-Match"); inm != "" && etagMatch(inm, schemaETag) {
		return c.NoContent(http.StatusNotModified)
	}
	return c.Blob(http.StatusOK, "application/schema+json", config.Schema)
}
