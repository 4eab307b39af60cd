package server

import (
	"errors"
	"io"
	"mime"
	"net/http"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/koekje/koekje/server/consent"
	"github.com/koekje/koekje/server/export"
	"github.com/koekje/koekje/static"
)

// dailyCap bounds the records one consent ID may add in a UTC day: a token
// holder cannot grow one history without end.
const dailyCap = 100

// postConsent records one choice.
func (s *Server) postConsent(c echo.Context) error {
	r := c.Request()
	if !choiceMediaType(r.Header.Get("Content-Type")) {
		return consent.Errorf(codeUnsupported, "send the choice as application/json or text/plain")
	}
	body, err := readBody(c)
	if err != nil {
		return err
	}
	req, err := consent.DecodeRequest(body)
	if err != nil {
		return err
	}
	// POST /api/v1/sites/{site}/consents names the site in the path, so a
	// load balancer can route a site's writes to one instance; the body may
	// then leave it out, and may not name another.
	if p := c.Param("site"); p != "" {
		if req.Site != "" && req.Site != p {
			return consent.FieldErrorf(consent.EINVALID, "site", "the body names site %q, the path %q", safeSite(req.Site), p)
		}
		req.Site = p
	}
	if req.Site == "" {
		return consent.FieldErrorf(consent.EINVALID, "site", "required")
	}
	site := s.cfg.Site(req.Site)
	if site == nil {
		return consent.FieldErrorf(consent.ENOTFOUND, "site", "no such site")
	}
	if o := r.Header.Get("Origin"); o != "" && !site.AllowsOrigin(o, s.self) {
		s.refusals.refuse(s.log, site.ID, o)
		s.metrics.refused.WithLabelValues(site.ID).Inc()
		// The page may read this refusal, and only it, so that the banner
		// can tell the site's developer in the browser's console.
		c.Response().Header().Set("Access-Control-Allow-Origin", o)
		return consent.FieldErrorf(consent.EFORBIDDEN, "origin", "this page's origin %s may not record choices for site %s: add it to the site's origins in the configuration (check-config shows them)", safeSite(o), site.ID)
	}
	bundle := s.bundles[site.ID]
	rec, err := req.Validate(site, bundle.Hash, s.self)
	if err != nil {
		return err
	}
	ctx := r.Context()
	// A retry of a choice that was recorded gets the first answer.
	if rec.RequestID != "" {
		first, err := s.store.ByRequest(ctx, site.ID, rec.RequestID)
		if err != nil {
			return err
		}
		if first != nil {
			return s.replayed(c, first, rec.ConsentID)
		}
	}
	// A first choice has no consent ID yet: the store mints it. Adding to
	// an existing one needs its current token, within the daily cap.
	if rec.ConsentID != uuid.Nil {
		token := ""
		if req.Token != nil {
			token = *req.Token
		}
		tok, err := s.currentToken(ctx, token)
		if err != nil {
			return err
		}
		if tok == nil || tok.ID != rec.ConsentID || tok.Site != site.ID {
			return consent.FieldErrorf(consent.EUNAUTHORIZED, "token", "adding to an existing consent ID needs the newest token issued for it")
		}
		day := time.Now().UTC().Truncate(24 * time.Hour)
		n, err := s.store.CountSince(ctx, rec.ConsentID, day)
		if err != nil {
			return err
		}
		if n >= dailyCap {
			c.Response().Header().Set("Retry-After", strconv.Itoa(int(time.Until(day.Add(24*time.Hour)).Seconds())+1))
			return consent.Errorf(consent.ERATELIMIT, "this consent ID has recorded %d choices today; try again tomorrow", dailyCap)
		}
	}
	if rec.ConfigHash != bundle.Hash {
		ok, err := s.store.HasVersion(ctx, site.ID, rec.ConfigHash)
		if err != nil {
			return err
		}
		if !ok {
			return consent.FieldErrorf(consent.EINVALID, "config_hash", "this site never served a banner with this hash")
		}
	}
	rec.IP = consent.TruncateIP(c.RealIP())
	rec.UserAgent = consent.CapUserAgent(r.UserAgent())
	consent.ApplySignals(rec, site, browserSignals(r.Header))
	c.Response().Header().Set("Link", s.adpcLink(site))
	asked := rec.ConsentID
	if err := s.store.Append(ctx, rec); err != nil {
		return err
	}
	if rec.Replayed { // the same request ID raced in twice; the store kept one
		return s.replayed(c, rec, asked)
	}
	return s.answer(c, rec, rec.RecordID)
}

// replayed answers a retried POST with the record its request ID made, and
// the visitor's current token, while that record is still the visitor's
// newest: a request ID is not a lasting key to a visitor's history, so a
// replay after a newer choice gets a conflict and no token.
func (s *Server) replayed(c echo.Context, first *consent.Record, asked uuid.UUID) error {
	if asked != uuid.Nil && asked != first.ConsentID {
		return consent.FieldErrorf(consent.ECONFLICT, "request_id", "this request ID recorded a choice for another consent ID")
	}
	latest, err := s.store.Latest(c.Request().Context(), first.ConsentID, first.Site)
	if err != nil {
		return err
	}
	if latest == nil { // purged since
		return consent.FieldErrorf(consent.ENOTFOUND, "request_id", "the record of this request ID is gone")
	}
	if latest.RecordID != first.RecordID {
		return consent.FieldErrorf(consent.ECONFLICT, "request_id", "this request ID recorded a choice that a newer one replaced: its answer is not given again")
	}
	return s.answer(c, first, latest.RecordID)
}

// answer writes the 201 of a recorded choice, with a token naming newest,
// the visitor's newest record. Written by hand: a token is base64url and the
// rest are UUIDs and a time, none of which need escaping.
func (s *Server) answer(c echo.Context, rec *consent.Record, newest uuid.UUID) error {
	token, err := s.tokens.issue(rec.ConsentID, newest, rec.Site)
	if err != nil {
		return err
	}
	s.setChoiceCookies(c, rec, token)
	b := make([]byte, 0, 400)
	b = append(b, `{"consent_id":"`...)
	b = export.AppendUUID(b, rec.ConsentID)
	b = append(b, `","record_id":"`...)
	b = export.AppendUUID(b, rec.RecordID)
	b = append(b, `","recorded_at":"`...)
	b = rec.RecordedAt.AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","token":`...)
	b = export.AppendJSONString(b, token)
	b = append(b, `,"receipt_url":"/api/v1/consents/`...)
	b = export.AppendUUID(b, rec.ConsentID)
	b = append(b, `/receipt"`...)
	b = s.appendNote(b, rec)
	b = append(b, "}\n"...)
	return c.JSONBlob(http.StatusCreated, b)
}

// choiceMediaType reports whether a choice may come as this Content-Type:
// application/json, or text/plain as the banner's fetch (keepalive) and
// navigator.sendBeacon send it. The forms browsers and clients send are
// matched without parsing.
func choiceMediaType(ct string) bool {
	switch ct {
	case "text/plain;charset=UTF-8", "application/json", "text/plain":
		return true
	}
	mt, _, err := mime.ParseMediaType(ct)
	return err == nil && (mt == "application/json" || mt == "text/plain")
}

// readBody reads at most consent.MaxBodyBytes; more is a 413.
func readBody(c echo.Context) ([]byte, error) {
	r := c.Request()
	if r.ContentLength > consent.MaxBodyBytes {
		return nil, consent.Errorf(codeTooLarge, "the body is larger than %d bytes", consent.MaxBodyBytes)
	}
	// A declared length sizes the buffer at once (one byte more, to see
	// the end); a chunked body grows it as it comes.
	size := 512
	if r.ContentLength > 0 {
		size = int(r.ContentLength) + 1
	}
	b, err := readAll(http.MaxBytesReader(c.Response(), r.Body, consent.MaxBodyBytes), size)
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		return nil, consent.Errorf(codeTooLarge, "the body is larger than %d bytes", consent.MaxBodyBytes)
	case err != nil:
		return nil, consent.Errorf(consent.EMALFORMED, "could not read the body")
	}
	return b, nil
}

// readAll is io.ReadAll starting from a buffer of the given size.
func readAll(r io.Reader, size int) ([]byte, error) {
	b := make([]byte, 0, size)
	for {
		n, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err == io.EOF {
			return b, nil
		}
		if err != nil {
			return b, err
		}
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
	}
}

// safeSite bounds a site name quoted back to the client.
func safeSite(s string) string {
	if len(s) > 64 || !utf8.ValidString(s) {
		return "(invalid)"
	}
	return s
}

// browserSignals reads the privacy signals a browser sends as headers on
// the consent POST. Sec-GPC has one valid value, "1"; anything else is no
// signal (the GPC specification's reading). ADPC's values go to the domain
// as sent, every line of them.
func browserSignals(h http.Header) consent.BrowserSignals {
	return consent.BrowserSignals{GPCHeader: h.Get("Sec-GPC") == "1", ADPC: h.Values("ADPC")}
}

// appendNote adds to an answer what the banner must know of the browser's
// signals. A choice that grants something while the browser sends Global
// Privacy Control stands over the signal, and the visitor is told so, in
// the record's language (note); the sentence comes with the answer, not
// the banner's bundle, so the many visitors who never see it do not
// download it. A choice the ADPC header cut down comes back as what holds
// (granted: the optional categories, and services, still granted), for
// the banner to apply: it cannot read the header itself.
func (s *Server) appendNote(b []byte, rec *consent.Record) []byte {
	site := s.cfg.Site(rec.Site)
	if site == nil {
		return b
	}
	if rec.Signal == consent.SignalADPC {
		b = append(b, `,"granted":[`...)
		n := 0
		for _, c := range site.Categories {
			if !c.Required && rec.Choices[c.ID] {
				if n++; n > 1 {
					b = append(b, ',')
				}
				b = export.AppendJSONString(b, c.ID)
			}
		}
		b = append(b, `],"services":[`...)
		for i, sv := range rec.Services {
			if i > 0 {
				b = append(b, ',')
			}
			b = export.AppendJSONString(b, sv)
		}
		b = append(b, ']')
	}
	if !consent.GPCOverridden(rec, site) {
		return b
	}
	b = append(b, `,"note":`...)
	return export.AppendJSONString(b, static.ServerText(site, rec.Language, "overridden"))
}
