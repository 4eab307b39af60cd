package server

import (
	"bytes"
	"cmp"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"html/template"
	"maps"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/koekje/koekje/config"
	"github.com/koekje/koekje/server/consent"
	"github.com/koekje/koekje/server/evidence"
	"github.com/koekje/koekje/server/proof"
	"github.com/koekje/koekje/server/scan"
	"github.com/koekje/koekje/server/schedule"
)

// The console: server-rendered pages for site owners and auditors, signed
// in with an admin token that becomes a session cookie. No script.

var consolePages = template.Must(template.New("").Funcs(template.FuncMap{
	"join": func(s []string) string { return strings.Join(s, ", ") },
	"short": func(h string) string {
		return strings.TrimPrefix(h, "sha256:")[:min(12, len(strings.TrimPrefix(h, "sha256:")))]
	},
	"date":     func(t time.Time) string { return t.Format("2006-01-02") },
	"datetime": func(t time.Time) string { return t.Format("2006-01-02 15:04:05") },
	"hex":      func(b []byte) string { return hex.EncodeToString(b) },
	"profile":  scan.ProfileWords,
	"plural":   plural,
	// choices lists every category with its choice, in order.
	"choices": func(r *consent.Record) string {
		var out []string
		for _, k := range slices.Sorted(maps.Keys(r.Choices)) {
			v := "refused"
			if r.Choices[k] {
				v = "granted"
			}
			out = append(out, k+": "+v)
		}
		return strings.Join(out, ", ")
	},
	"actions": func() []string { return consent.Actions },
	"granted": func(r *consent.Record) string {
		var g []string
		for k, v := range r.Choices {
			if v {
				g = append(g, k)
			}
		}
		g = append(g, r.Services...)
		slices.Sort(g)
		return strings.Join(g, ", ")
	},
	// sites lists the sites of rows, each once, in order.
	"sites": func(rows []recordRow) []string {
		var out []string
		for _, r := range rows {
			if !slices.Contains(out, r.Record.Site) {
				out = append(out, r.Record.Site)
			}
		}
		return out
	},
}).ParseFS(templateFS, "templates/console/*.html"))

const consoleCSP = "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; " +
	"connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"

// page is what every console page gets.
type page struct {
	Title   string
	Message string
	Session *session
	Sites   []*config.Site
}

func (s *Server) render(c echo.Context, status int, name string, data any) error {
	var buf bytes.Buffer
	if err := consolePages.ExecuteTemplate(&buf, name, data); err != nil {
		return err
	}
	h := c.Response().Header()
	h["Content-Security-Policy"] = []string{consoleCSP}
	h.Set("Cache-Control", "no-store")
	return c.HTMLBlob(status, buf.Bytes())
}

func (s *Server) page(c echo.Context, title string, sess *session) page {
	return page{Title: title, Session: sess, Sites: s.cfg.Sites}
}

func (s *Server) consoleHome(c echo.Context) error {
	sess, err := s.session(c, time.Now())
	if err != nil {
		return err
	}
	if sess == nil {
		return s.loginPage(c, http.StatusOK, "")
	}
	type row struct {
		Site  *config.Site
		Total int
		Scan  *consent.Scan // the latest recorded scan, if any
		// Alerts are what the site's scheduled scans need attention for.
		Alerts []string
	}
	var rows []row
	for _, site := range s.cfg.Sites {
		days, err := s.store.Stats(c.Request().Context(), consent.Filter{Site: site.ID, From: time.Now().AddDate(0, 0, -30)}, nil)
		if err != nil {
			return err
		}
		n := 0
		for _, d := range days {
			n += d.Total
		}
		r := row{Site: site, Total: n}
		latest, err := s.store.Scans(c.Request().Context(), site.ID, uuid.Nil, 1)
		if err != nil {
			return err
		}
		if len(latest) > 0 {
			r.Scan = latest[0]
		}
		if site.Scan != nil {
			now := time.Now()
			st, err := schedule.StatusOf(c.Request().Context(), s.store, site, now.AddDate(0, 0, -30), now)
			if err != nil {
				return err
			}
			r.Alerts = st.Alerts()
		}
		rows = append(rows, r)
	}
	// A site whose latest scan found violations, or whose schedule needs
	// attention, comes first.
	rank := func(r row) int {
		if r.Scan != nil && !r.Scan.Clean() || len(r.Alerts) > 0 {
			return 0
		}
		return 1
	}
	slices.SortStableFunc(rows, func(a, b row) int { return cmp.Compare(rank(a), rank(b)) })
	degraded := ""
	if s.degraded != nil {
		degraded = s.degraded()
	}
	return s.render(c, http.StatusOK, "dashboard", struct {
		page
		Rows     []row
		Degraded string // why the log's proof does not advance, as /healthz says
	}{s.page(c, "Sites", sess), rows, degraded})
}

func (s *Server) loginPage(c echo.Context, status int, msg string) error {
	if msg == "" && c.QueryParam("expired") != "" {
		msg = "Your session ended. Sign in again."
	}
	csrf := randomToken()
	c.SetCookie(s.sessions.cookie(c, loginCookie, csrf, 3600))
	p := s.page(c, "Sign in", nil)
	p.Message = msg
	return s.render(c, status, "login", struct {
		page
		CSRF string
	}{p, csrf})
}

func (s *Server) login(c echo.Context) error {
	ck, err := c.Cookie(loginCookie)
	if err != nil || !validCSRF(c, ck.Value) {
		return s.loginPage(c, http.StatusForbidden, "The sign-in form expired. Try again.")
	}
	scope, sum, wait := s.checkToken(c, c.FormValue("token"))
	if wait > 0 {
		c.Response().Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(wait.Seconds()))))
		return s.loginPage(c, http.StatusTooManyRequests, fmt.Sprintf("Too many failed sign-ins from your network. Try again in %s.", wait.Round(time.Second)))
	}
	if scope == "" {
		return s.loginPage(c, http.StatusUnauthorized, "That token is not valid.")
	}
	c.SetCookie(s.sessions.cookie(c, loginCookie, "", -1))
	if err := s.startSession(c, scope, sum, time.Now()); err != nil {
		return err
	}
	return c.Redirect(http.StatusSeeOther, "/admin")
}

func (s *Server) logout(c echo.Context) error {
	sess, err := s.session(c, time.Now())
	if err != nil {
		return err
	}
	if sess != nil && !validCSRF(c, sess.CSRF) {
		return consent.Errorf(consent.EFORBIDDEN, "the form's CSRF token is missing or wrong")
	}
	if err := s.endSession(c, sess); err != nil {
		return err
	}
	return c.Redirect(http.StatusSeeOther, "/admin")
}

// consoleSite is a site's page: totals, charts, proof, versions, config.
func (s *Server) consoleSite(c echo.Context) error {
	return s.sitePage(c, sessionOf(c), nil)
}

func (s *Server) consoleVerify(c echo.Context) error {
	sess := sessionOf(c)
	site, err := s.pathSite(c)
	if err != nil {
		return err
	}
	res, err := s.verifySite(c, site)
	if err != nil {
		return err
	}
	return s.sitePage(c, sess, res)
}

func (s *Server) sitePage(c echo.Context, sess *session, verify *proof.Result) error {
	site, err := s.pathSite(c)
	if err != nil {
		return err
	}
	from, to, err := period(c)
	if err != nil {
		return err
	}
	if from.IsZero() && to.IsZero() {
		from = time.Now().UTC().AddDate(0, 0, -29).Truncate(24 * time.Hour)
	}
	ctx := c.Request().Context()
	type cat struct{ ID, Title string }
	var cats []cat
	var catIDs []string
	titles := map[string]string{}
	for _, ct := range site.Categories {
		t := ct.Title["en"]
		if t == "" {
			t = ct.Title[site.DefaultLanguage]
		}
		cats, catIDs, titles[ct.ID] = append(cats, cat{ct.ID, t}), append(catIDs, ct.ID), t
	}
	days, err := s.store.Stats(ctx, consent.Filter{Site: site.ID, From: from, To: to}, catIDs)
	if err != nil {
		return err
	}
	totals := consent.DayStats{Actions: map[string]int{}, Granted: map[string]int{}}
	type dayRow struct {
		Day                                string
		Total, Accept, Reject, Custom, GPC int
		Shares                             []string
	}
	var rows []dayRow
	for _, d := range days {
		totals.Total += d.Total
		totals.GPC += d.GPC
		for k, v := range d.Actions {
			totals.Actions[k] += v
		}
		r := dayRow{Day: d.Day, Total: d.Total, Accept: d.Actions["accept_all"], Reject: d.Actions["reject_all"], Custom: d.Actions["custom"], GPC: d.GPC}
		for _, id := range catIDs {
			r.Shares = append(r.Shares, strconv.Itoa(100*d.Granted[id]/max(1, d.Total))+"%")
		}
		rows = append(rows, r)
	}
	var optional []string // a required category is granted by every record
	for _, ct := range site.Categories {
		if !ct.Required {
			optional = append(optional, ct.ID)
		}
	}
	choices, shares := consentCharts(days, optional, titles)
	versions, err := s.store.VersionsUsed(ctx, site.ID)
	if err != nil {
		return err
	}
	type cookieRow struct{ Category, Service, Provider, Cookie, Duration, Purpose string }
	var cookies []cookieRow
	for _, sv := range site.Services {
		for _, ck := range sv.Cookies {
			p := ck.Purpose["en"]
			if p == "" {
				p = ck.Purpose[site.DefaultLanguage]
			}
			cookies = append(cookies, cookieRow{titles[sv.Category], sv.ID, sv.Provider, ck.Name, ck.Duration, p})
		}
	}
	scans, err := s.store.Scans(ctx, site.ID, uuid.Nil, consoleScans)
	if err != nil {
		return err
	}
	strip, err := s.siteScanStrip(ctx, site, from, to)
	if err != nil {
		return err
	}
	var latestViolations []scan.Finding
	if len(scans) > 0 && !scans[0].Clean() {
		if latestViolations, err = s.violationsOf(c, site.ID, scans[0].ID); err != nil {
			return err
		}
	}
	dateOf := func(t time.Time, end bool) string {
		if t.IsZero() {
			return ""
		}
		if end {
			t = t.Add(-time.Nanosecond)
		}
		return t.Format(time.DateOnly)
	}
	return s.render(c, http.StatusOK, "site", struct {
		page
		Site                      *config.Site
		From, To                  string
		Totals                    consent.DayStats
		Days                      []consent.DayStats
		DayRows                   []dayRow
		Categories                []cat
		ChoicesChart, SharesChart template.HTML
		Verify                    *proof.Result
		Versions                  []consent.VersionUse
		Current                   string
		CookieRows                []cookieRow
		Scans                     []*consent.Scan
		LatestViolations          []scan.Finding
		Refused                   []refusedOrigin
		Strip                     *scanStrip
	}{s.page(c, site.Name, sess), site, dateOf(from, false), dateOf(to, true), totals, days, rows, cats, choices, shares,
		verify, versions, s.bundles[site.ID].Hash, cookies, scans, latestViolations, s.refusals.last24h(site.ID), strip})
}

// consoleScans is how many of a site's latest scans its page lists.
const consoleScans = 10

// violationsOf reads the violations of a recorded scan from its report.
func (s *Server) violationsOf(c echo.Context, site string, id uuid.UUID) ([]scan.Finding, error) {
	sc, err := s.store.ScanReport(c.Request().Context(), site, id)
	if err != nil {
		return nil, err
	}
	var r scan.Report
	if err := json.Unmarshal(sc.Report, &r); err != nil {
		return nil, fmt.Errorf("scan report %s: %w", id, err)
	}
	return r.Violations, nil
}

// consoleScanReport downloads a recorded scan's report, JSON or text.
func (s *Server) consoleScanReport(c echo.Context) error { return s.scanReport(c) }

// consoleExport downloads a period in one of the export formats.
func (s *Server) consoleExport(c echo.Context) error { return s.export(c) }

func (s *Server) consoleLookup(c echo.Context) error {
	sess := sessionOf(c)
	p := s.page(c, "Look up a visitor", sess)
	v := c.QueryParam("consent_id")
	var records []*consent.Record
	if v != "" {
		id, err := consent.ParseID(strings.TrimSpace(strings.ToLower(v)))
		if err != nil {
			p.Message = "That is not a consent ID: it looks like 3f2c8a10-5b7e-4c1d-9a2b-6e0f1d2c3b4a."
		} else if recs, next, err := s.store.History(c.Request().Context(), id, "", 0, maxHistoryPage); err != nil {
			return err
		} else if records = recs; len(recs) == 0 {
			p.Message = "No records for this consent ID."
		} else if next != 0 {
			p.Message = fmt.Sprintf("The first %d records of this consent ID; export it for all.", len(recs))
		}
	}
	rows, err := s.recordRows(c, records)
	if err != nil {
		return err
	}
	return s.render(c, http.StatusOK, "lookup", struct {
		page
		ID      string
		Records []recordRow
	}{p, v, rows})
}

// recordRow is a record as the console shows it: every stored field, its
// time in the site's zone beside UTC, and what its proof says. A record
// changed behind the server's back is marked, with what no longer matches.
type recordRow struct {
	Record  *consent.Record
	Local   string // recorded_at in the site's time zone, with the zone
	Changed string // what no longer matches; "" when the record is intact
	Pending bool   // not in a signed checkpoint yet
}

// recordRows checks each record's proof for the console.
func (s *Server) recordRows(c echo.Context, records []*consent.Record) ([]recordRow, error) {
	rows := make([]recordRow, len(records))
	for i, r := range records {
		rows[i] = recordRow{Record: r, Local: r.RecordedAt.Format("2006-01-02 15:04:05 MST")}
		if site := s.cfg.Site(r.Site); site != nil {
			rows[i].Local = r.RecordedAt.In(receiptZone(site.Controller.Jurisdiction)).Format("2006-01-02 15:04:05 MST")
		}
		if _, why, err := s.integrity(c.Request().Context(), r); why != "" {
			rows[i].Changed = why
		} else if consent.ErrorCode(err) == consent.EUNAVAILABLE {
			rows[i].Pending = true
		} else if err != nil && consent.ErrorCode(err) != consent.ENOTFOUND {
			return nil, err
		}
	}
	return rows, nil
}

// recordsPage is how many records the console lists at a time; a page
// filtered by action or GPC searches at most recordsSpan records, so a
// filter that matches rarely costs what a full page does (about 50 ms on
// a million records) and pages on.
const (
	recordsPage = 50
	recordsSpan = 20000
)

// consoleRecords lists a site's records, newest first, filtered by period,
// action, GPC and consent ID, a page at a time (keyset paging on the
// sequence number, so the millionth record costs what the first does).
func (s *Server) consoleRecords(c echo.Context) error {
	site, err := s.pathSite(c)
	if err != nil {
		return err
	}
	from, to, err := period(c)
	if err != nil {
		return err
	}
	q := consent.Query{Site: site.ID, From: from, To: to, Limit: recordsPage}
	if q.Action = c.QueryParam("action"); q.Action != "" && !slices.Contains(consent.Actions, q.Action) {
		return consent.FieldErrorf(consent.EINVALID, "action", "must be one of %s", strings.Join(consent.Actions, ", "))
	}
	switch g := c.QueryParam("gpc"); g {
	case "":
	case "yes", "no":
		b := g == "yes"
		q.GPC = &b
	default:
		return consent.FieldErrorf(consent.EINVALID, "gpc", "must be yes or no")
	}
	if v := strings.TrimSpace(c.QueryParam("consent_id")); v != "" {
		if q.ConsentID, err = consent.ParseID(strings.ToLower(v)); err != nil {
			return err
		}
	}
	if v := c.QueryParam("before"); v != "" {
		if q.Before, err = strconv.ParseInt(v, 10, 64); err != nil || q.Before < 1 {
			return consent.FieldErrorf(consent.EINVALID, "before", "must be a sequence number")
		}
	}
	if q.Action != "" || q.GPC != nil {
		q.Span = recordsSpan
	}
	recs, next, err := s.store.Records(c.Request().Context(), q)
	if err != nil {
		return err
	}
	rows, err := s.recordRows(c, recs)
	if err != nil {
		return err
	}
	p := s.page(c, "Records of "+site.Name, sessionOf(c))
	switch {
	case len(rows) < recordsPage && next != 0:
		p.Message = fmt.Sprintf("%d matching records among the %d searched below this point; older records are searched on the next page.", len(rows), recordsSpan)
	case len(rows) == 0:
		p.Message = "No records match."
	}
	// The next page keeps every filter and moves the cursor.
	more := ""
	if next != 0 {
		v := c.QueryParams()
		v.Set("before", strconv.FormatInt(next, 10))
		more = "?" + v.Encode()
	}
	return s.render(c, http.StatusOK, "records", struct {
		page
		Site                           *config.Site
		From, To, Action, GPC, Consent string
		Records                        []recordRow
		Next                           string
		Zone                           string
	}{p, site, c.QueryParam("from"), c.QueryParam("to"), q.Action, c.QueryParam("gpc"), c.QueryParam("consent_id"), rows, more,
		receiptZone(site.Controller.Jurisdiction).String()})
}

func (s *Server) consoleReceipt(c echo.Context) error {
	id, err := consent.ParseID(c.Param("id"))
	if err != nil {
		return err
	}
	rec, err := s.store.Latest(c.Request().Context(), id, "")
	if err != nil {
		return err
	}
	if rec == nil {
		return consent.Errorf(consent.ENOTFOUND, "no records for this consent ID")
	}
	site, claims, jwt, err := s.signReceipt(c, rec)
	if err != nil {
		return err
	}
	type purpose struct{ Title, ID, State string }
	var purposes []purpose
	for _, p := range claims.Services[0].Purposes {
		title := p.PurposeCategory[0]
		if ct := site.Category(p.PurposeCategory[0]); ct != nil && ct.Title["en"] != "" {
			title = ct.Title["en"]
		}
		purposes = append(purposes, purpose{title, p.PurposeCategory[0], p.State})
	}
	return s.render(c, http.StatusOK, "receipt", struct {
		page
		Site     *config.Site
		Row      recordRow
		Claims   *proof.Receipt
		JWT      string
		Purposes []purpose
		Language string
	}{s.page(c, "Receipt of the latest choice", sessionOf(c)), site,
		recordRow{Record: rec, Local: rec.RecordedAt.In(receiptZone(site.Controller.Jurisdiction)).Format("2006-01-02 15:04:05 MST")},
		claims, jwt, purposes, languageName(rec.Language)})
}

// consoleVersion shows a stored banner version as its visitors saw it.
func (s *Server) consoleVersion(c echo.Context) error {
	sess := sessionOf(c)
	site, err := s.pathSite(c)
	if err != nil {
		return err
	}
	hash := c.Param("hash")
	body, err := s.store.Version(c.Request().Context(), site.ID, hash)
	if err != nil {
		return err
	}
	sh, err := evidence.ShowVersion(body, c.QueryParam("lang"))
	if err != nil {
		return err
	}
	var pretty bytes.Buffer
	json.Indent(&pretty, body, "", "  ")
	return s.render(c, http.StatusOK, "version", struct {
		page
		Hash, Lang, Intro string
		Texts             map[string]any
		Cats              []evidence.ShownCategory
		Langs             []string
		JSON              string
	}{s.page(c, "Banner version of "+site.Name, sess), hash, sh.Lang, sh.Intro, sh.Texts, sh.Cats, sh.Site.Languages, pretty.String()})
}

// consolePreview is the live banner of a site in one language, in preview
// mode: choices made there are neither kept nor sent.
func (s *Server) consolePreview(c echo.Context) error {
	site, err := s.pathSite(c)
	if err != nil {
		return err
	}
	lang := c.QueryParam("lang")
	if !site.HasLanguage(lang) {
		lang = site.DefaultLanguage
	}
	return s.render(c, http.StatusOK, "preview", struct {
		Site *config.Site
		Lang string
	}{site, lang})
}

func (s *Server) consoleCSS(c echo.Context) error {
	b, err := templateFS.ReadFile("templates/console/console.css")
	if err != nil {
		return err
	}
	c.Response().Header().Set("Cache-Control", "public, max-age=300")
	return c.Blob(http.StatusOK, "text/css; charset=utf-8", b)
}

// languageNames are the banner's languages as the console (in English)
// names them.
var languageNames = map[string]string{
	"bg": "Bulgarian", "cs": "Czech", "da": "Danish", "de": "German", "el": "Greek", "en": "English",
	"es": "Spanish", "et": "Estonian", "fi": "Finnish", "fr": "French", "ga": "Irish", "hr": "Croatian",
	"hu": "Hungarian", "it": "Italian", "lt": "Lithuanian", "lv": "Latvian", "mt": "Maltese", "nl": "Dutch",
	"pl": "Polish", "pt": "Portuguese", "ro": "Romanian", "sk": "Slovak", "sl": "Slovenian", "sv": "Swedish",
}

// languageName is a language's English name with its code: "Dutch (nl)".
func languageName(code string) string {
	if n, ok := languageNames[code]; ok {
		return n + " (" + code + ")"
	}
	return code
}

// plural counts n of a thing: "1 scan", "3 scans".
func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return strconv.Itoa(n) + " " + many
}
