package server

import (
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/koekje/koekje/config"
	"github.com/koekje/koekje/server/consent"
)

// adpcRoute serves each site's consent requests as Advanced Data Protection
// Control's JSON (the consent requests resource): /adpc/{site}.json.
const adpcRoute = "/adpc/:file"

// consentRequest is one request of ADPC's consent requests list.
type consentRequest struct {
	ID   string `json:"id"`
	Text string `json:"text"`
}

// consentRequests answers GET /adpc/{site}.json: one request per optional
// category of the site, identified by consent.RequestID (so a new revision
// makes new identifiers), its text the category's title and description in
// the language asked for (?lang=, else Accept-Language, else the site's
// default), as the banner shows them. Public and cacheable, like the banner:
// a browser fetches it from the site's pages, which link to it.
func (s *Server) consentRequests(c echo.Context) error {
	id, ok := strings.CutSuffix(c.Param("file"), ".json")
	site := s.cfg.Site(id)
	if !ok || site == nil {
		return consent.FieldErrorf(consent.ENOTFOUND, "site", "no such site")
	}
	r := c.Request()
	lang := site.DefaultLanguage
	if l := r.URL.Query().Get("lang"); l != "" {
		if !site.HasLanguage(l) {
			return consent.FieldErrorf(consent.EINVALID, "lang", "the site does not offer this language (it offers %s)", strings.Join(site.Languages, ", "))
		}
		lang = l
	} else if l := acceptedLanguage(r.Header.Get("Accept-Language"), site); l != "" {
		lang = l
	}
	list := struct {
		ConsentRequests []consentRequest `json:"consentRequests"`
	}{ConsentRequests: []consentRequest{}}
	for _, cat := range site.Categories {
		if cat.Required {
			continue
		}
		text := inLanguage(cat.Title, lang, site.DefaultLanguage)
		if d := inLanguage(cat.Description, lang, site.DefaultLanguage); d != "" {
			text += ": " + d
		}
		list.ConsentRequests = append(list.ConsentRequests, consentRequest{ID: consent.RequestID(cat.ID, site.Revision), Text: text})
	}
	b, err := json.Marshal(list)
	if err != nil {
		return err
	}
	h := c.Response().Header()
	h.Set("Content-Language", lang)
	h.Set("Vary", "Accept-Language")
	h.Set("Cache-Control", "public, max-age=300")
	h.Set("Access-Control-Allow-Origin", "*")
	return c.JSONBlob(http.StatusOK, b)
}

// adpcLink is the Link header that points a site's pages, and the consent
// API's answers, to the site's consent requests; a site without optional
// categories requests nothing, which ADPC says with about:blank.
func (s *Server) adpcLink(site *config.Site) string {
	target := s.self + "/adpc/" + site.ID + ".json"
	if !slices.ContainsFunc(site.Categories, func(c *config.Category) bool { return !c.Required }) {
		target = "about:blank"
	}
	return "<" + target + `>; rel="consent-requests"; hreflang="` + strings.Join(site.Languages, " ") + `"`
}

// acceptedLanguage is the language of site that Accept-Language likes best
// (by q, then order), or "" for none.
func acceptedLanguage(header string, site *config.Site) string {
	best, bestQ := "", 0.0
	for _, part := range strings.Split(header, ",") {
		tag, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		q := 1.0
		if v, ok := strings.CutPrefix(strings.TrimSpace(params), "q="); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil || f < 0 || f > 1 {
				continue
			}
			q = f
		}
		primary, _, _ := strings.Cut(strings.ToLower(strings.TrimSpace(tag)), "-")
		if q > bestQ && site.HasLanguage(primary) {
			best, bestQ = primary, q
		}
	}
	return best
}

// inLanguage is t in lang, else in the site's default language.
func inLanguage(t config.Text, lang, def string) string {
	if v, ok := t[lang]; ok {
		return v
	}
	return t[def]
}
