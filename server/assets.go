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

// encoded is one representation of a part of a bundle, with its headers
// made once.
type encoded struct {
	body                      []byte
	etag                      string
	etagH, encodingH, lengthH []string
}

// servedBundle is a site's bundle as the handler serves it: each of its
// two parts as identity, gzip and brotli. The compressed encodings are
// made once, by the server's background pass over every site after start
// (Deps.Precompress) or by the first request that wants them, whichever
// comes first.
type servedBundle struct {
	b         *static.Bundle
	plain     [2]encoded // the first part, the second
	once      sync.Once
	gzip, br  [2]encoded
	packedErr error
}

func newServedBundle(b *static.Bundle) *servedBundle {
	return &servedBundle{b: b, plain: [2]encoded{encode(&b.Part, b.JS, ""), encode(&b.More, b.More.JS, "")}}
}

func encode(p *static.Part, body []byte, name string) encoded {
	etag := `"` + p.ETag + name + `"`
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
		if sb.b.Brotli == nil || sb.b.More.Brotli == nil {
			sb.packedErr = sb.b.Compress()
		}
		if sb.packedErr == nil {
			for i, p := range []*static.Part{&sb.b.Part, &sb.b.More} {
				sb.gzip[i], sb.br[i] = encode(p, p.Gzip, "gzip"), encode(p, p.Brotli, "br")
			}
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
	longCache    = []string{"public, max-age=31536000, immutable"}
	crossOrigin  = []string{"cross-origin"}
	anyOrigin    = []string{"*"}
	javascript   = []string{"text/javascript; charset=utf-8"}
)

// bundle serves a site's banner, precompressed, with an ETag per encoding:
// the first part at /s/{site}.js, which names the second part, and the
// second at /s/{site}.{etag}.js. The first is cached briefly, so a new
// configuration reaches visitors soon; the second, whose name changes with
// it, for good. The first part loads the second in CORS mode, as its SRI
// hash requires, from whatever site embeds it.
func (s *Server) bundle(c echo.Context) error {
	name, ok := strings.CutSuffix(c.Param("file"), ".js")
	id, version, second := strings.Cut(name, ".")
	b := s.served[id]
	if ok && second && b != nil && version != b.b.More.ETag {
		// A first part cached, or a page opened, before a reload, a restart
		// or on another instance asks for the second part it was made with.
		// Only a configured site's: the index is kept per site, and a name
		// made up in the URL must not add to it.
		b = s.earlier.part(c.Request().Context(), s, id, version)
	}
	if !ok || b == nil || second && version != b.b.More.ETag {
		return consent.Errorf(consent.ENOTFOUND, "no such site")
	}
	part, cache := 0, shortCache
	if second {
		part, cache = 1, longCache
	}
	e := &b.plain[part]
	accept := c.Request().Header.Get("Accept-Encoding")
	switch {
	case acceptsEncoding(accept, "br") && b.pack() == nil:
		e = &b.br[part]
	case acceptsEncoding(accept, "gzip") && b.pack() == nil:
		e = &b.gzip[part]
	}
	h := c.Response().Header()
	h["Vary"] = varyEncoding
	h["Etag"] = e.etagH
	h["Cache-Control"] = cache
	h["Cross-Origin-Resource-Policy"] = crossOrigin
	if second {
		h["Access-Control-Allow-Origin"] = anyOrigin
	}
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
	h.Set("Link", s.adpcLink(s.cfg.Site("demo")))
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
