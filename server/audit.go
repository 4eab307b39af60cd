package server

import (
	"bufio"
	_ "embed"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/koekje/koekje/config"
	"github.com/koekje/koekje/server/consent"
	"github.com/koekje/koekje/server/proof"
)

// requireScope lets a request through with an admin bearer token of the
// scope, or of "admin", which includes every scope.
func (s *Server) requireScope(c echo.Context, scope string) error {
	got := s.admins.scope(c)
	if got == "admin" || (got != "" && got == scope) {
		return nil
	}
	c.Response().Header().Set("WWW-Authenticate", `Bearer realm="koekje"`)
	if got != "" {
		return consent.Errorf(consent.EUNAUTHORIZED, "this token's scope (%s) does not allow this", got)
	}
	return consent.Errorf(consent.EUNAUTHORIZED, "needs an admin bearer token")
}

// auditSite checks the token and returns the site named in the path.
func (s *Server) auditSite(c echo.Context) (*config.Site, error) {
	if err := s.requireScope(c, "audit"); err != nil {
		return nil, err
	}
	return s.pathSite(c)
}

// pathSite returns the configured site named in the path.
func (s *Server) pathSite(c echo.Context) (*config.Site, error) {
	site := s.cfg.Site(c.Param("site"))
	if site == nil {
		return nil, consent.FieldErrorf(consent.ENOTFOUND, "site", "no such site")
	}
	return site, nil
}

func (s *Server) keys(c echo.Context) error {
	c.Response().Header().Set("Cache-Control", "public, max-age=300")
	return c.JSON(http.StatusOK, s.keyring.Load().JWKS())
}

func (s *Server) verify(c echo.Context) error {
	site, err := s.auditSite(c)
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
	if err := s.requireScope(c, "admin"); err != nil {
		return err
	}
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
	n, err := s.store.Purge(c.Request().Context(), site.ID, before, s.keyring.Load().SignCheckpoint)
	if err != nil {
		return err
	}
	s.log.Info("purge", "site", site.ID, "records", n, "before", before)
	return c.JSON(http.StatusOK, map[string]any{"site": site.ID, "purged": n, "before": before.UTC().Format(time.RFC3339)})
}

// rotateKey adds a new signing key and signs with it from now on; the old
// keys stay in the JWKS. Admin scope only.
func (s *Server) rotateKey(c echo.Context) error {
	if err := s.requireScope(c, "admin"); err != nil {
		return err
	}
	k, err := proof.Rotate(c.Request().Context(), s.store)
	if err != nil {
		return err
	}
	keys, err := s.store.Keys(c.Request().Context())
	if err != nil {
		return err
	}
	ring, err := proof.NewKeyring(keys)
	if err != nil {
		return err
	}
	s.keyring.Store(ring)
	s.log.Info("signing key rotated", "kid", k.ID)
	return c.JSON(http.StatusCreated, map[string]string{"kid": k.ID})
}

// verifySite walks a site's chain with every published key.
func (s *Server) verifySite(c echo.Context, site *config.Site) (*proof.Result, error) {
	pubs, ids := s.keyring.Load().Public()
	return proof.Verify(c.Request().Context(), s.store, site.ID, pubs, ids)
}

func (s *Server) version(c echo.Context) error {
	site, err := s.auditSite(c)
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
	site, err := s.auditSite(c)
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
	if _, err := s.auditSite(c); err != nil {
		return err
	}
	return s.exportSite(c)
}

// exportSite streams the export of the site in the path; the caller has
// checked who asks.
func (s *Server) exportSite(c echo.Context) error {
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
	format := c.QueryParam("format")
	if format == "" {
		format = "ndjson"
	}
	w, err := NewExporter(format, site, c.Response())
	if err != nil {
		return err
	}
	h := c.Response().Header()
	h.Set("Content-Type", w.ContentType())
	h.Set("Content-Disposition", `attachment; filename="`+site.ID+`-consents.`+w.Extension()+`"`)
	h.Set("Cache-Control", "no-store")
	// An export may take longer than the server's write timeout.
	http.NewResponseController(c.Response()).SetWriteDeadline(time.Time{})
	c.Response().WriteHeader(http.StatusOK)
	err = s.store.Scan(c.Request().Context(), f, w.Write)
	if err == nil {
		err = w.Close()
	}
	if err != nil {
		s.log.Error("export ended early", "site", site.ID, "err", err)
	}
	return nil
}

// Exporter writes records in one export format.
type Exporter interface {
	Write(*consent.Record) error
	Close() error
	ContentType() string
	Extension() string
}

// NewExporter returns the writer of format: ndjson, csv or iso27560.
func NewExporter(format string, site *config.Site, out interface {
	Write([]byte) (int, error)
}) (Exporter, error) {
	bw := bufio.NewWriterSize(out, 64<<10)
	switch format {
	case "ndjson":
		return &ndjsonExporter{w: bw}, nil
	case "csv":
		e := &csvExporter{w: csv.NewWriter(bw), bw: bw, site: site}
		return e, e.header()
	case "iso27560":
		return &isoExporter{w: bw, enc: json.NewEncoder(bw), site: site}, nil
	}
	return nil, consent.FieldErrorf(consent.EINVALID, "format", "must be ndjson, csv or iso27560")
}

// exportView is one record in NDJSON: the history view with its consent ID.
type exportView struct {
	ConsentID uuid.UUID `json:"consent_id"`
	recordView
}

type ndjsonExporter struct {
	w   *bufio.Writer
	buf []byte
}

// Write appends the record as encoding/json would write an exportView,
// without reflection: exports are the one place that writes millions.
func (e *ndjsonExporter) Write(r *consent.Record) error {
	b := append(e.buf[:0], `{"consent_id":"`...)
	b = appendUUID(b, r.ConsentID)
	b = append(b, `","record_id":"`...)
	b = appendUUID(b, r.RecordID)
	b = append(b, `","site":`...)
	b = appendJSONString(b, r.Site)
	b = append(b, `,"seq":`...)
	b = strconv.AppendInt(b, r.Seq, 10)
	b = append(b, `,"recorded_at":"`...)
	b = r.RecordedAt.AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","action":`...)
	b = appendJSONString(b, r.Action)
	b = append(b, `,"choices":{`...)
	var keyBuf [8]string
	keys := keyBuf[:0]
	for k := range r.Choices {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, k)
		b = append(b, ':')
		b = strconv.AppendBool(b, r.Choices[k])
	}
	b = append(b, '}')
	if len(r.Services) > 0 {
		b = append(b, `,"services":[`...)
		for i, sv := range r.Services {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSONString(b, sv)
		}
		b = append(b, ']')
	}
	b = append(b, `,"revision":`...)
	b = strconv.AppendInt(b, int64(r.Revision), 10)
	b = append(b, `,"config_hash":`...)
	b = appendJSONString(b, r.ConfigHash)
	b = append(b, `,"language":`...)
	b = appendJSONString(b, r.Language)
	for _, f := range [...]struct{ name, v string }{{"url", r.URL}, {"user_agent", r.UserAgent}, {"ip", r.IP}} {
		if f.v != "" {
			b = append(b, `,"`...)
			b = append(b, f.name...)
			b = append(b, `":`...)
			b = appendJSONString(b, f.v)
		}
	}
	b = append(b, `,"gpc":`...)
	b = strconv.AppendBool(b, r.GPC)
	b = append(b, `,"prev_hash":"`...)
	b = hex.AppendEncode(b, r.PrevHash)
	b = append(b, `","hash":"`...)
	b = hex.AppendEncode(b, r.Hash)
	b = append(b, "\"}\n"...)
	e.buf = b
	_, err := e.w.Write(b)
	return err
}

// appendUUID writes u in its canonical form without allocating.
func appendUUID(b []byte, u uuid.UUID) []byte {
	var s [36]byte
	hex.Encode(s[0:8], u[0:4])
	s[8] = '-'
	hex.Encode(s[9:13], u[4:6])
	s[13] = '-'
	hex.Encode(s[14:18], u[6:8])
	s[18] = '-'
	hex.Encode(s[19:23], u[8:10])
	s[23] = '-'
	hex.Encode(s[24:], u[10:])
	return append(b, s[:]...)
}

// appendJSONString quotes s as encoding/json does (HTML-safe escapes,
// invalid UTF-8 replaced), with a fast path for plain ASCII.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s)
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}
func (e *ndjsonExporter) Close() error        { return e.w.Flush() }
func (e *ndjsonExporter) ContentType() string { return "application/x-ndjson" }
func (e *ndjsonExporter) Extension() string   { return "ndjson" }

// csvExporter writes RFC 4180 CSV with a header row and one column per
// category of the site.
type csvExporter struct {
	w    *csv.Writer
	bw   *bufio.Writer
	site *config.Site
	row  []string
}

func (e *csvExporter) header() error {
	h := []string{"record_id", "consent_id", "site", "sequence", "recorded_at", "action"}
	for _, c := range e.site.Categories {
		h = append(h, "choice_"+c.ID)
	}
	h = append(h, "services", "revision", "config_hash", "language", "url", "user_agent", "ip", "gpc", "prev_hash", "hash")
	e.w.UseCRLF = true
	return e.w.Write(h)
}

func (e *csvExporter) Write(r *consent.Record) error {
	row := append(e.row[:0], r.RecordID.String(), r.ConsentID.String(), r.Site,
		strconv.FormatInt(r.Seq, 10), r.RecordedAt.Format(time.RFC3339Nano), r.Action)
	for _, c := range e.site.Categories {
		row = append(row, strconv.FormatBool(r.Choices[c.ID]))
	}
	row = append(row, strings.Join(r.Services, " "), strconv.Itoa(r.Revision), r.ConfigHash, r.Language,
		r.URL, r.UserAgent, r.IP, strconv.FormatBool(r.GPC), hex.EncodeToString(r.PrevHash), hex.EncodeToString(r.Hash))
	e.row = row
	return e.w.Write(row)
}

func (e *csvExporter) Close() error {
	e.w.Flush()
	if err := e.w.Error(); err != nil {
		return err
	}
	return e.bw.Flush()
}
func (e *csvExporter) ContentType() string { return "text/csv; charset=utf-8; header=present" }
func (e *csvExporter) Extension() string   { return "csv" }

// isoExporter writes a JSON array of consent records shaped after ISO/IEC
// TS 27560 (consent record information structure).
type isoExporter struct {
	w     *bufio.Writer
	enc   *json.Encoder
	site  *config.Site
	count int
}

// ISORecord is one consent record in the ISO/IEC TS 27560 structure.
type ISORecord struct {
	SchemaVersion    string          `json:"schema_version"`
	RecordID         string          `json:"record_id"`
	PiiPrincipalID   string          `json:"pii_principal_id"`
	ConsentStatus    string          `json:"consent_status"`
	Timestamp        string          `json:"timestamp"`
	CollectionMethod string          `json:"collection_method"`
	Event            string          `json:"event"`
	Notice           ISONotice       `json:"notice"`
	Controllers      []ISOController `json:"pii_controllers"`
	Purposes         []ISOPurpose    `json:"purposes"`
	Context          ISOContext      `json:"context"`
	Integrity        ISOIntegrity    `json:"integrity"`
}

// ISONotice identifies exactly what the visitor was shown.
type ISONotice struct {
	NoticeID string `json:"notice_id"` // the banner version's hash
	Version  int    `json:"version"`   // the policy revision
	Language string `json:"language"`
	URL      string `json:"url"`
}

// ISOController is the controller of the processing.
type ISOController struct {
	Name    string `json:"name"`
	Address string `json:"address,omitempty"`
	Contact string `json:"contact"`
	Policy  string `json:"privacy_notice_url"`
}

// ISOPurpose is one category and its state.
type ISOPurpose struct {
	PurposeID     string `json:"purpose_id"`
	Purpose       string `json:"purpose"`
	LawfulBasis   string `json:"lawful_basis"`
	ConsentStatus string `json:"consent_status"`
}

// ISOContext is where the choice was made.
type ISOContext struct {
	Site      string   `json:"site"`
	PageURL   string   `json:"page_url,omitempty"`
	UserAgent string   `json:"user_agent,omitempty"`
	Network   string   `json:"network,omitempty"`
	GPC       bool     `json:"gpc"`
	Services  []string `json:"granted_services,omitempty"`
}

// ISOIntegrity places the record in the hash chain.
type ISOIntegrity struct {
	Algorithm string `json:"algorithm"`
	Encoding  string `json:"encoding"`
	Sequence  int64  `json:"sequence"`
	Hash      string `json:"hash"`
	PrevHash  string `json:"prev_hash"`
}

// NewISORecord shapes r after ISO/IEC TS 27560.
func NewISORecord(r *consent.Record, site *config.Site) *ISORecord {
	status := "given"
	switch r.Action {
	case consent.RejectAll:
		status = "refused"
	case consent.Withdraw:
		status = "withdrawn"
	}
	c := site.Controller
	out := &ISORecord{
		SchemaVersion: "ISO/IEC TS 27560:2023", RecordID: r.RecordID.String(), PiiPrincipalID: r.ConsentID.String(),
		ConsentStatus: status, Timestamp: r.RecordedAt.Format(time.RFC3339Nano),
		CollectionMethod: proof.CollectionMethod(r), Event: r.Action,
		Notice:      ISONotice{NoticeID: r.ConfigHash, Version: r.Revision, Language: r.Language, URL: c.PrivacyPolicy},
		Controllers: []ISOController{{Name: c.Organisation, Address: c.Address, Contact: c.Email, Policy: c.PrivacyPolicy}},
		Context:     ISOContext{Site: r.Site, PageURL: r.URL, UserAgent: r.UserAgent, Network: r.IP, GPC: r.GPC, Services: r.Services},
		Integrity: ISOIntegrity{Algorithm: "SHA-256", Encoding: proof.RecordEncodingV1, Sequence: r.Seq,
			Hash: hex.EncodeToString(r.Hash), PrevHash: hex.EncodeToString(r.PrevHash)},
	}
	for _, cat := range site.Categories {
		p := ISOPurpose{PurposeID: cat.ID, Purpose: cat.Title[site.DefaultLanguage], LawfulBasis: "consent", ConsentStatus: "refused"}
		if cat.Required {
			p.LawfulBasis = "strictly necessary (ePrivacy Directive art. 5(3))"
		}
		if r.Choices[cat.ID] {
			p.ConsentStatus = "granted"
		}
		out.Purposes = append(out.Purposes, p)
	}
	return out
}

func (e *isoExporter) Write(r *consent.Record) error {
	sep := ",\n"
	if e.count == 0 {
		sep = "[\n"
	}
	e.count++
	if _, err := e.w.WriteString(sep); err != nil {
		return err
	}
	return e.enc.Encode(NewISORecord(r, e.site))
}

func (e *isoExporter) Close() error {
	end := "]\n"
	if e.count == 0 {
		end = "[]\n"
	}
	if _, err := e.w.WriteString(end); err != nil {
		return err
	}
	return e.w.Flush()
}
func (e *isoExporter) ContentType() string { return "application/json" }
func (e *isoExporter) Extension() string   { return "json" }

//go:embed openapi.json
var openAPIDoc []byte

// openAPI serves the OpenAPI 3.1 document of this API.
func openAPI(c echo.Context) error {
	c.Response().Header().Set("Cache-Control", "public, max-age=300")
	return c.JSONBlob(http.StatusOK, openAPIDoc)
}
