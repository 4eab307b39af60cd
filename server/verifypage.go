package server

import (
	"bytes"
	"embed"
	"encoding/json"
	"html/template"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"
)

//go:embed templates/verify
var verifyFS embed.FS

// verifyCSP: the page runs its own script and style only, and fetches
// nothing: a receipt is checked without sending it anywhere.
const verifyCSP = "default-src 'none'; script-src 'self'; style-src 'self'; form-action 'none'; base-uri 'none'; frame-ancestors 'none'"

var (
	verifyTemplate = template.Must(template.ParseFS(verifyFS, "templates/verify/index.html"))
	// verifyWords are the page's texts in each language the banner speaks.
	verifyWords = func() map[string]map[string]string {
		raw, err := verifyFS.ReadFile("templates/verify/words.json")
		if err != nil {
			panic(err)
		}
		var w map[string]map[string]string
		if err := json.Unmarshal(raw, &w); err != nil {
			panic("templates/verify/words.json: " + err.Error())
		}
		return w
	}()
)

// verifyPage serves the page that checks a receipt in the browser, and its
// script and style. The page speaks the language ?lang= names (the receipt
// page passes the visitor's), else the browser's, and comes with this
// service's receipt keys and witness policy filled in: the ones its issuer
// publishes, which a visitor who pinned others replaces. The receipt and
// its proof come in the URL's fragment, which never reaches a server.
func (s *Server) verifyPage(c echo.Context) error {
	name := strings.TrimPrefix(c.Path(), "/verify")
	h := c.Response().Header()
	h.Set("Content-Security-Policy", verifyCSP)
	if name != "" {
		ct := map[string]string{"/verify.js": "text/javascript; charset=utf-8", "/verify.css": "text/css; charset=utf-8"}[name]
		b, err := verifyFS.ReadFile("templates/verify" + name)
		if err != nil {
			return err
		}
		h.Set("Cache-Control", "public, max-age=300")
		return c.Blob(http.StatusOK, ct, b)
	}
	lang := verifyLanguage(c.QueryParam("lang"), c.Request().Header.Get("Accept-Language"))
	words, _ := json.Marshal(verifyWords[lang])
	jwks, err := json.MarshalIndent(s.keys.Ring().JWKS(), "", " ")
	if err != nil {
		return err
	}
	var policy []byte
	if s.policy != nil {
		policy = s.policy.Encode()
	}
	var b bytes.Buffer
	if err := verifyTemplate.Execute(&b, map[string]any{
		"Lang": lang, "T": verifyWords[lang], "Words": template.JS(words), "JWKS": string(jwks), "Policy": string(policy),
	}); err != nil {
		return err
	}
	// The keys rotate: the page is asked for again each time.
	h.Set("Cache-Control", "no-cache")
	h.Set("Vary", "Accept-Language")
	return c.HTMLBlob(http.StatusOK, b.Bytes())
}

// verifyLanguage picks the page's language: the one asked for, else the
// first of the browser's that the page speaks, else English.
func verifyLanguage(asked, accept string) string {
	if _, ok := verifyWords[asked]; ok {
		return asked
	}
	for _, part := range strings.Split(accept, ",") {
		tag, _, _ := strings.Cut(strings.TrimSpace(part), ";")
		primary, _, _ := strings.Cut(strings.ToLower(tag), "-")
		if _, ok := verifyWords[primary]; ok {
			return primary
		}
	}
	return "en"
}
