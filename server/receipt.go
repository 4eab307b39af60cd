package server

import (
	"bytes"
	"context"
	"embed"
	"encoding/json"
	"html/template"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	_ "time/tzdata"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/koekje/koekje/config"
	"github.com/koekje/koekje/server/consent"
	"github.com/koekje/koekje/server/export"
	"github.com/koekje/koekje/server/proof"
)

//go:embed templates/*.html templates/receipt.json templates/console
var templateFS embed.FS

var receiptPage = template.Must(template.ParseFS(templateFS, "templates/receipt.html"))

// History pages: 100 records unless the client asks for fewer or more.
const (
	historyPage    = 100
	maxHistoryPage = 1000
)

// getHistory returns a page of a visitor's records, oldest first, each with
// its hash; next_cursor, when present, fetches the following page.
func (s *Server) getHistory(c echo.Context) error {
	id := uuid.MustParse(c.Param("id")) // checked by the visitor middleware
	site, _ := c.Get(ctxVisitorSite).(string)
	limit, after := historyPage, int64(0)
	if v := c.QueryParam("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxHistoryPage {
			return consent.FieldErrorf(consent.EINVALID, "limit", "must be a whole number from 1 to %d", maxHistoryPage)
		}
		limit = n
	}
	if v := c.QueryParam("cursor"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 1 {
			return consent.FieldErrorf(consent.EINVALID, "cursor", "must be the next_cursor of an earlier page")
		}
		after = n
	}
	recs, next, err := s.store.History(c.Request().Context(), id, site, after, limit)
	if err != nil {
		return err
	}
	if len(recs) == 0 && after == 0 {
		return consent.FieldErrorf(consent.ENOTFOUND, "consent_id", "no records for this consent ID")
	}
	views := make([]export.Record, len(recs))
	for i, r := range recs {
		views[i] = export.View(r)
	}
	out := map[string]any{"consent_id": id, "records": views}
	if next != 0 {
		out["next_cursor"] = strconv.FormatInt(next, 10)
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.JSON(http.StatusOK, out)
}

// receipt signs the visitor's latest record as a JWT with Kantara claims,
// or shows it as a page for Accept: text/html. It reads that record alone.
func (s *Server) receipt(c echo.Context) error {
	id := uuid.MustParse(c.Param("id"))
	site, _ := c.Get(ctxVisitorSite).(string)
	rec, err := s.store.Latest(c.Request().Context(), id, site)
	if err != nil {
		return err
	}
	if rec == nil {
		return consent.FieldErrorf(consent.ENOTFOUND, "consent_id", "no records for this consent ID")
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	html := strings.Contains(c.Request().Header.Get("Accept"), "text/html")
	return s.signedReceipt(c, rec, html)
}

// signedReceipt answers with the signed receipt of rec, as JSON or as a page.
func (s *Server) signedReceipt(c echo.Context, rec *consent.Record, html bool) error {
	site, claims, jwt, err := s.signReceipt(c, rec)
	if err != nil {
		return err
	}
	if html {
		return s.receiptHTML(c, rec, site, claims, jwt)
	}
	return c.JSON(http.StatusOK, map[string]any{"jwt": jwt, "claims": claims})
}

// signReceipt signs the receipt of rec, once its proof holds (checkIntact).
func (s *Server) signReceipt(c echo.Context, rec *consent.Record) (*config.Site, *proof.Receipt, string, error) {
	site := s.cfg.Site(rec.Site)
	if site == nil {
		return nil, nil, "", consent.Errorf(consent.ENOTFOUND, "the site of this record is no longer configured")
	}
	idx, err := s.checkIntact(c, rec)
	if err != nil {
		return nil, nil, "", err
	}
	claims := proof.NewReceipt(rec, site, s.self, time.Now(), uuid.NewString())
	if idx >= 0 {
		claims.LogIndex = &idx
	}
	jwt, err := s.keys.Ring().SignJWT(claims)
	if err != nil {
		return nil, nil, "", err
	}
	return site, claims, jwt, nil
}

// receiptLeafWait is how long a receipt waits for its record's leaf in a
// signed checkpoint (PostgreSQL integrates within about a second).
var receiptLeafWait = 15 * time.Second

// checkIntact checks rec before anything is signed for it (see integrity)
// and returns its leaf's index, or -1 without a log. A mismatch is
// tampering: no receipt, an ERROR line and a metric. A record not yet in a
// signed checkpoint is waited for, then answered 503 with Retry-After.
func (s *Server) checkIntact(c echo.Context, rec *consent.Record) (int64, error) {
	ctx := c.Request().Context()
	deadline := time.Now().Add(receiptLeafWait)
	for {
		idx, why, err := s.integrity(ctx, rec)
		if why != "" {
			return -1, s.tampered(rec, why)
		}
		if err == nil {
			return idx, nil
		}
		if consent.ErrorCode(err) != consent.EUNAVAILABLE {
			return -1, err
		}
		if time.Now().After(deadline) {
			c.Response().Header().Set("Retry-After", "5")
			return -1, consent.Errorf(consent.EUNAVAILABLE, "the record is not in a signed checkpoint yet: its receipt is signed once it is; retry in a moment")
		}
		select {
		case <-ctx.Done():
			return -1, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// integrity checks that rec is what was recorded: its stored fields hash to
// its stored hash, the next record of its site links to that hash, and,
// where a log is kept, its leaf in the newest signed checkpoint commits to
// it. why says what does not match ("" when all does); err is a failure to
// check, of code consent.EUNAVAILABLE while the record is not yet in a
// signed checkpoint. The leaf's index is -1 without a log.
func (s *Server) integrity(ctx context.Context, rec *consent.Record) (idx int64, why string, err error) {
	if !bytes.Equal(consent.RecordHash(rec), rec.Hash) {
		return -1, "its fields no longer hash to its stored hash", nil
	}
	// An insider who rewrites a record and its stored hash together must
	// also rewrite every record after it, from the next one's link on.
	link, err := s.store.NextLink(ctx, rec.Site, rec.Seq)
	if err != nil {
		return -1, "", err
	}
	if link != nil && !bytes.Equal(link, rec.Hash) {
		return -1, "the next record of its site does not link to its hash", nil
	}
	if s.logKey == "" {
		return -1, "", nil
	}
	p, err := s.inclusionProof(ctx, rec)
	if err != nil {
		return -1, "", err
	}
	if _, err := p.Verify(rec.Hash, s.logKey); err != nil {
		return -1, "its hash is not what its leaf in the signed log commits to (" + err.Error() + ")", nil
	}
	return p.Index, "", nil
}

// tampered reports a record that no longer matches its proof: it gets no
// receipt.
func (s *Server) tampered(rec *consent.Record, why string) error {
	s.metrics.tampered.Inc()
	s.log.Error("a record was changed behind the server's back: no receipt is signed for it",
		"site", rec.Site, "seq", rec.Seq, "record_id", rec.RecordID, "why", why)
	return consent.Errorf(consent.ECONFLICT, "this record does not match its proof (%s): no receipt is signed for it; the site's auditor has been told in the server's log", why)
}

// receiptWords are the receipt page's texts in each language the banner
// speaks, from templates/receipt.json; a record in another language gets
// the English page.
var receiptWords = func() map[string]map[string]string {
	raw, err := templateFS.ReadFile("templates/receipt.json")
	if err != nil {
		panic(err)
	}
	var w map[string]map[string]string
	if err := json.Unmarshal(raw, &w); err != nil {
		panic("templates/receipt.json: " + err.Error())
	}
	return w
}()

// receiptZones are the EU countries whose capitals keep another time than
// Central European: the receipt page shows the time the way the site's
// visitors read it. Every other site, and one without a jurisdiction, is
// shown Central European Time. The zone data is compiled in (time/tzdata),
// so a machine without it shows the same.
var receiptZones = map[string]*time.Location{}

func init() {
	for country, zone := range map[string]string{
		"": "Europe/Amsterdam", "PT": "Europe/Lisbon", "IE": "Europe/Dublin",
		"BG": "Europe/Sofia", "CY": "Asia/Nicosia", "EE": "Europe/Tallinn", "FI": "Europe/Helsinki",
		"GR": "Europe/Athens", "LT": "Europe/Vilnius", "LV": "Europe/Riga", "RO": "Europe/Bucharest",
	} {
		loc, err := time.LoadLocation(zone)
		if err != nil {
			panic(err) // time/tzdata holds every zone above
		}
		receiptZones[country] = loc
	}
}

func receiptZone(jurisdiction string) *time.Location {
	if loc, ok := receiptZones[strings.ToUpper(jurisdiction)]; ok {
		return loc
	}
	return receiptZones[""]
}

func (s *Server) receiptHTML(c echo.Context, rec *consent.Record, site *config.Site, claims *proof.Receipt, jwt string) error {
	lang := rec.Language
	words, ok := receiptWords[lang]
	if !ok {
		lang, words = "en", receiptWords["en"]
	}
	type row struct{ Title, State string }
	var rows []row
	for _, p := range claims.Services[0].Purposes {
		rows = append(rows, row{p.Purpose, words[p.State]})
	}
	loc := receiptZone(site.Controller.Jurisdiction)
	data := map[string]any{
		"Lang": lang, "T": words, "Site": site, "Rec": rec, "Rows": rows, "Claims": claims, "JWT": jwt,
		"When": rec.RecordedAt.In(loc).Format("2006-01-02 15:04:05 MST"), "Action": words[rec.Action],
		"KeysURL": s.self + "/api/v1/keys",
	}
	// The proof link works where the page was opened with the visitor's
	// token in the query (the receipt link); an admin downloads it by API.
	// It is offered once a checkpoint that meets the log's witness policy
	// covers the record; until then the page says so and reloads. The
	// check link hands /verify the receipt and the proof in its fragment,
	// which no server sees, and the visitor's language.
	fragment := url.Values{"receipt": {jwt}}
	if tok := c.QueryParam("token"); tok != "" && claims.LogIndex != nil {
		p, err := s.cosignedProof(c.Request().Context(), rec)
		switch {
		case err == nil:
			data["ProofURL"] = s.self + "/api/v1/consents/" + rec.ConsentID.String() + "/proof?token=" + url.QueryEscape(tok)
			fragment.Set("proof", string(p.Encode()))
		case consent.ErrorCode(err) == consent.EUNAVAILABLE:
			data["Waiting"] = true
		default:
			return err
		}
	}
	data["VerifyURL"] = s.self + "/verify?lang=" + lang + "#" + fragment.Encode()
	h := c.Response().Header()
	h.Set("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("Content-Type", "text/html; charset=utf-8")
	c.Response().WriteHeader(http.StatusOK)
	return receiptPage.Execute(c.Response(), data)
}
