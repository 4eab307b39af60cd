package server

import (
	_ "embed"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/koekje/koekje/config"
	"github.com/koekje/koekje/server/consent"
	"github.com/koekje/koekje/server/export"
	"github.com/koekje/koekje/server/proof"
	"github.com/koekje/koekje/server/translog"
)

// pathSite returns the configured site named in the path.
func (s *Server) pathSite(c echo.Context) (*config.Site, error) {
	site := s.cfg.Site(c.Param("site"))
	if site == nil {
		return nil, consent.FieldErrorf(consent.ENOTFOUND, "site", "no such site")
	}
	return site, nil
}

func (s *Server) jwks(c echo.Context) error {
	c.Response().Header().Set("Cache-Control", "public, max-age=300")
	return c.JSON(http.StatusOK, s.keys.Ring().JWKS())
}

func (s *Server) verify(c echo.Context) error {
	site, err := s.pathSite(c)
	if err != nil {
		return err
	}
	res, err := s.verifySite(c, site)
	if err != nil {
		return err
	}
	status := http.StatusOK
	if !res.OK {
		status = http.StatusConflict
	}
	return c.JSON(status, res)
}

// purge deletes a site's records from before ?before=, leaving a signed
// checkpoint. Admin scope only.
func (s *Server) purge(c echo.Context) error {
	site, err := s.pathSite(c)
	if err != nil {
		return err
	}
	v := c.QueryParam("before")
	if v == "" {
		return consent.FieldErrorf(consent.EINVALID, "before", "required: a date or an RFC 3339 time")
	}
	before, err := consent.ParseTime(v, false)
	if err != nil {
		return consent.FieldErrorf(consent.EINVALID, "before", "%v", err)
	}
	if before.After(time.Now()) {
		return consent.FieldErrorf(consent.EINVALID, "before", "must not be in the future")
	}
	n, err := s.store.Purge(c.Request().Context(), site.ID, before, s.keys.SignCheckpoint)
	if err != nil {
		return err
	}
	s.log.Info("purge", "site", site.ID, "records", n, "before", before, "token", bearerName(c))
	return c.JSON(http.StatusOK, map[string]any{"site": site.ID, "purged": n, "before": before.UTC().Format(time.RFC3339)})
}

// rotateKey adds a new signing key and signs with it from now on; the old
// keys stay in the JWKS. Admin scope only.
func (s *Server) rotateKey(c echo.Context) error {
	k, err := s.keys.Rotate(c.Request().Context())
	if err != nil {
		return err
	}
	s.log.Info("signing key rotated", "kid", k.ID, "token", bearerName(c))
	return c.JSON(http.StatusCreated, map[string]string{"kid": k.ID})
}

// verifySite walks a site's chain with every published key, then holds it
// against the transparency log's newest checkpoint.
func (s *Server) verifySite(c echo.Context, site *config.Site) (*proof.Result, error) {
	ctx := c.Request().Context()
	pubs, ids := s.keys.Ring().Public()
	res, err := proof.Verify(ctx, s.store, site.ID, pubs, ids)
	if err != nil || s.logKey == "" {
		return res, err
	}
	key, err := s.store.LogAuditKey(ctx, site.ID)
	if err != nil {
		return nil, err
	}
	if s.logRef == nil {
		return res, proof.VerifyLog(ctx, s.store, res, s.logKey, key, nil)
	}
	// The database's newest checkpoint is held against the reference kept
	// beside the key file first: a database restored from a backup, or
	// whose tail was cut or rewritten, signs a checkpoint of its own that
	// the reference, outside the database, does not extend to.
	cp, signed, err := s.latestCheckpoint(ctx)
	if consent.ErrorCode(err) == consent.ENOTFOUND {
		return res, proof.VerifyLog(ctx, s.store, res, s.logKey, key, nil)
	}
	if err != nil {
		return nil, err
	}
	kept, ok := s.logRef.Checkpoint()
	if !ok {
		return res, proof.VerifyLog(ctx, s.store, res, s.logKey, key, nil)
	}
	if err := translog.Consistent(kept, cp, s.hashReader(ctx)); err != nil {
		res.OK, res.Reason, res.Detail = false, proof.LogMismatch, err.Error()
		return res, nil
	}
	if err := proof.VerifyLog(ctx, s.store, res, s.logKey, key, signed); err != nil || res.Log == nil {
		return res, err
	}
	res.Log.Reference, res.Log.ReferenceSize = proof.ReferenceKept, kept.Size
	return res, nil
}

func (s *Server) version(c echo.Context) error {
	site, err := s.pathSite(c)
	if err != nil {
		return err
	}
	body, err := s.store.Version(c.Request().Context(), site.ID, c.Param("hash"))
	if err != nil {
		return err
	}
	c.Response().Header().Set("Cache-Control", "private, max-age=86400, immutable")
	return c.JSONBlob(http.StatusOK, body)
}

// period reads ?from= and ?to= (RFC 3339 or a date; to is exclusive, a bare
// date for to means the end of that day).
func period(c echo.Context) (from, to time.Time, err error) {
	parse := func(name string, endOfDay bool) (time.Time, error) {
		v := c.QueryParam(name)
		if v == "" {
			return time.Time{}, nil
		}
		t, err := consent.ParseTime(v, endOfDay)
		if err != nil {
			return t, consent.FieldErrorf(consent.EINVALID, name, "%v", err)
		}
		return t, nil
	}
	if from, err = parse("from", false); err != nil {
		return
	}
	if to, err = parse("to", true); err != nil {
		return
	}
	if !from.IsZero() && !to.IsZero() && !to.After(from) {
		err = consent.FieldErrorf(consent.EINVALID, "to", "must be after from")
	}
	return
}

func (s *Server) stats(c echo.Context) error {
	site, err := s.pathSite(c)
	if err != nil {
		return err
	}
	from, to, err := period(c)
	if err != nil {
		return err
	}
	cats := make([]string, len(site.Categories))
	for i, cat := range site.Categories {
		cats[i] = cat.ID
	}
	days, err := s.store.Stats(c.Request().Context(), consent.Filter{Site: site.ID, From: from, To: to}, cats)
	if err != nil {
		return err
	}
	type day struct {
		consent.DayStats
		Share map[string]float64 `json:"share"`
	}
	out := make([]day, len(days))
	for i, d := range days {
		out[i] = day{DayStats: d, Share: map[string]float64{}}
		for _, cat := range cats {
			if d.Total > 0 {
				out[i].Share[cat] = float64(d.Granted[cat]) / float64(d.Total)
			}
		}
	}
	return c.JSON(http.StatusOK, map[string]any{"site": site.ID, "days": out})
}

// export streams a period of records as NDJSON, CSV or ISO/IEC TS 27560
// JSON, row by row, so memory stays flat whatever the size.
func (s *Server) export(c echo.Context) error {
	site, err := s.pathSite(c)
	if err != nil {
		return err
	}
	from, to, err := period(c)
	if err != nil {
		return err
	}
	f := consent.Filter{Site: site.ID, From: from, To: to}
	if v := c.QueryParam("consent_id"); v != "" {
		var err error
		if f.ConsentID, err = consent.ParseID(v); err != nil {
			return err
		}
	}
	select {
	case s.exports <- struct{}{}:
		defer func() { <-s.exports }()
	default:
		c.Response().Header().Set("Retry-After", "10")
		return consent.Errorf(consent.ERATELIMIT, "%d exports are running; retry when one has finished", cap(s.exports))
	}
	opts, err := csvOptions(c)
	if err != nil {
		return err
	}
	out := &deadlineWriter{w: c.Response(), rc: http.NewResponseController(c.Response())}
	w, err := export.NewWith(c.QueryParam("format"), site, out, opts)
	if err != nil {
		return err
	}
	h := c.Response().Header()
	h.Set("Content-Type", w.ContentType())
	h.Set("Content-Disposition", `attachment; filename="`+site.ID+`-consents.`+w.Extension()+`"`)
	h.Set("Cache-Control", "no-store")
	// A complete export ends with trailers that count it; one that fails
	// after its 200 is cut off mid-stream (no final chunk), so no client
	// takes a partial file for a whole one.
	h.Set("Trailer", "Koekje-Export-Records, Koekje-Export-Status")
	c.Response().WriteHeader(http.StatusOK)
	n := 0
	var signed []byte
	if s.logKey != "" {
		// Read before the records: every leaf of the site below its size
		// is then one of the export's records (unless a purge or the
		// filter left it out), so a verifier sees a record cut off the end.
		signed, err = s.store.LatestCheckpoint(c.Request().Context())
	}
	if err == nil {
		err = s.store.Scan(c.Request().Context(), f, func(r *consent.Record) error { n++; return w.Write(r) })
	}
	if err == nil {
		var purges []*consent.Checkpoint
		if purges, err = s.store.Checkpoints(c.Request().Context(), site.ID); err == nil {
			err = w.End(export.NewSummary(f, signed).WithPurges(purges))
		}
	}
	if err != nil {
		s.log.Warn("export ended early", "site", site.ID, "records", n, "reason", withoutAddress(err))
		panic(http.ErrAbortHandler)
	}
	h.Set("Koekje-Export-Records", strconv.Itoa(n))
	h.Set("Koekje-Export-Status", "complete")
	return nil
}

// csvOptions reads a CSV export's separator (comma or semicolon) and
// whether it starts with a byte order mark.
func csvOptions(c echo.Context) (export.Options, error) {
	var o export.Options
	switch c.QueryParam("separator") {
	case "", "comma":
	case "semicolon":
		o.Separator = ';'
	default:
		return o, consent.FieldErrorf(consent.EINVALID, "separator", "must be comma or semicolon")
	}
	switch c.QueryParam("bom") {
	case "", "false":
	case "true":
		o.BOM = true
	default:
		return o, consent.FieldErrorf(consent.EINVALID, "bom", "must be true or false")
	}
	return o, nil
}

// maxExports bounds the exports that run at once below the store's eight
// readers, so exports that a client stalls cannot starve health checks,
// statistics and histories.
const maxExports = 4

// exportWriteTimeout is how long one chunk of an export may take to leave:
// an export may run longer than the server's write timeout, a stalled
// client may not.
const exportWriteTimeout = 30 * time.Second

// deadlineWriter gives every chunk of an export its own write deadline.
type deadlineWriter struct {
	w  io.Writer
	rc *http.ResponseController
}

func (d *deadlineWriter) Write(p []byte) (int, error) {
	if err := d.rc.SetWriteDeadline(time.Now().Add(exportWriteTimeout)); err != nil && !errors.Is(err, http.ErrNotSupported) {
		return 0, err
	}
	return d.w.Write(p)
}

// withoutAddress describes err without the addresses a network error
// names: logs never carry a client's address.
func withoutAddress(err error) string {
	var op *net.OpError
	if errors.As(err, &op) && op.Err != nil {
		return "client connection: " + op.Err.Error()
	}
	return err.Error()
}

//go:embed openapi.json
var openAPIDoc []byte

// openAPI serves the OpenAPI 3.1 document of this API.
func openAPI(c echo.Context) error {
	c.Response().Header().Set("Cache-Control", "public, max-age=300")
	return c.JSONBlob(http.StatusOK, openAPIDoc)
}

//go:embed export.schema.json
var exportSchema []byte

// exportSchemaDoc serves the JSON Schema of an NDJSON export's lines.
func exportSchemaDoc(c echo.Context) error {
	c.Response().Header().Set("Cache-Control", "public, max-age=300")
	return c.Blob(http.StatusOK, "application/schema+json", exportSchema)
}
