package server

import (
	"context"
	"io/fs"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/labstack/echo/v4"

	"github.com/koekje/koekje/server/consent"
	"github.com/koekje/koekje/static"
)

func (s *Server) healthz(c echo.Context) error {
	if err := s.store.Ping(c.Request().Context()); err != nil {
		s.log.Error("health check", "err", err)
		return consent.Errorf(consent.EUNAVAILABLE, "the store does not answer")
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	if s.degraded != nil {
		if why := s.degraded(); why != "" {
			return c.JSON(http.StatusOK, map[string]string{"status": "degraded", "reason": why})
		}
	}
	return c.JSON(http.StatusOK, map[string]string{"status": "ok"})
}

// encoded is one representation of a bundle, with its headers made once.
type encoded struct {
	body                      []byte
	etag                      string
	etagH, encodingH, lengthH []string
}

// servedBundle is a site's bundle as the handler serves it: identity,
// gzip and brotli. The compressed encodings are made once, by the
// server's background pass over every site after start (Deps.Precompress)
// or by the first request that wants them, whichever comes first.
type servedBundle struct {
	b         *static.Bundle
	plain     encoded
	once      sync.Once
	gzip, br  encoded
	packedErr error
}

func newServedBundle(b *static.Bundle) *servedBundle {
	return &servedBundle{b: b, plain: encode(b, b.JS, "")}
}

func encode(b *static.Bundle, body []byte, name string) encoded {
	etag := `"` + b.ETag + name + `"`
	e := encoded{body: body, etag: etag, etagH: []string{etag}, lengthH: []string{strconv.Itoa(len(body))}}
	if name != "" {
		e.encodingH = []string{name}
	}
	return e
}

// pack compresses the bundle, once; after an error (none is expected of
// in-memory compression) the bundle is served uncompressed.
func (sb *servedBundle) pack() error {
	sb.once.Do(func() {
		if sb.b.Brotli == nil {
			sb.packedErr = sb.b.Compress()
		}
		if sb.packedErr == nil {
			sb.gzip, sb.br = encode(sb.b, sb.b.Gzip, "gzip"), encode(sb.b, sb.b.Brotli, "br")
		}
	})
	return sb.packedErr
}

// packAll compresses every site's bundle in the background, one at a
// time, so a server with a thousand sites answers at once after start and
// is soon serving them all precompressed.
func (s *Server) packAll(ctx context.Context) {
	for _, site := range s.cfg.Sites {
		if ctx.Err() != nil {
			return
		}
		if err := s.served[site.ID].pack(); err != nil {
			s.log.Error("compress banner", "site", site.ID, "err", err)
		}
	}
}

var (
	varyEncoding = []string{"Accept-Encoding"}
	shortCache   = []string{"public, max-age=300"}
	crossOrigin  = []string{"cross-origin"}
	javascript   = []string{"text/javascript; charset=utf-8"}
)

// bundle serves /s/{site}.js, precompressed, with an ETag per encoding.
func (s *Server) bundle(c echo.Context) error {
	id, ok := strings.CutSuffix(c.Param("file"), ".js")
	b := s.served[id]
	if !ok || b == nil {
		return consent.Errorf(consent.ENOTFOUND, "no such site")
	}
	e := &b.plain
	accept := c.Request().Header.Get("Accept-Encoding")
	switch {
	case acceptsEncoding(accept, "br") && b.pack() == nil:
		e = &b.br
	case acceptsEncoding(accept, "gzip") && b.pack() == nil:
		e = &b.gzip
	}
	h := c.Response().Header()
	h["Vary"] = varyEncoding
	h["Etag"] = e.etagH
	h["Cache-Control"] = shortCache
	h["Cross-Origin-Resource-Policy"] = crossOrigin
	if e.encodingH != nil {
		h["Content-Encoding"] = e.encodingH
	}
	if inm := c.Request().Header.Get("If-None-Match"); inm != "" && etagMatch(inm, e.etag) {
		return c.NoContent(http.StatusNotModified)
	}
	// A known length spares net/http the chunked encoding it uses for bodies
	// over 2 KiB, and the client the chunk parsing.
	h["Content-Length"] = e.lengthH
	h["Content-Type"] = javascript
	c.Response().WriteHeader(http.StatusOK)
	if c.Request().Method == http.MethodHead {
		return nil
	}
	_, err := c.Response().Write(e.body)
	return err
}

// acceptsEncoding reports whether an Accept-Encoding header allows enc
// (and does not refuse it with q=0).
func acceptsEncoding(header, enc string) bool {
	for part := range strings.SplitSeq(header, ",") {
		name, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		if !strings.EqualFold(strings.TrimSpace(name), enc) {
			continue
		}
		q := strings.ReplaceAll(params, " ", "")
		return q != "q=0" && q != "q=0.0" && q != "q=0.00" && q != "q=0.000"
	}
	return false
}

func etagMatch(header, etag string) bool {
	for part := range strings.SplitSeq(header, ",") {
		p := strings.TrimPrefix(strings.TrimSpace(part), "W/")
		if p == etag || p == "*" {
			return true
		}
	}
	return false
}

// demoCSP shows that the banner works under a strict policy: no inline
// script or style, no eval. No third-party script may run on this origin
// (the console's): analytics is a first-party stand-in; embeds are frames.
const demoCSP = "default-src 'self'; script-src 'self'; connect-src 'self'; " +
	"img-src 'self' data:; style-src 'self'; " +
	"frame-src https://www.youtube-nocookie.com https://www.google.com; " +
	"base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

func (s *Server) demoPage(c echo.Context) error {
	if s.bundles["demo"] == nil {
		return consent.Errorf(consent.ENOTFOUND, "this server has no demo site")
	}
	page, err := fs.ReadFile(static.Demo, "index.html")
	if err != nil {
		return err
	}
	h := c.Response().Header()
	h.Set("Content-Security-Policy", demoCSP)
	h.Set("Referrer-Policy", "strict-origin-when-cross-origin")
	return c.HTMLBlob(http.StatusOK, page)
}

func (s *Server) demoAsset(c echo.Context) error {
	name := strings.TrimPrefix(c.Path(), "/demo/")
	b, err := fs.ReadFile(static.Demo, name)
	if err != nil {
		return err
	}
	ct := "text/css; charset=utf-8"
	if strings.HasSuffix(name, ".js") {
		ct = "text/javascript; charset=utf-8"
	}
	return c.Blob(http.StatusOK, ct, b)
}
