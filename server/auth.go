package server

import (
	"context"
	"errors"
	"mime"
	"net/http"
	"time"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/koekje/koekje/server/consent"
)

// Who may use a route is decided by the middleware below, named beside each
// route in routes.go; handlers read what it found from the context.

const (
	ctxSession     = "koekje.session"      // *session of a console request
	ctxVisitorSite = "koekje.visitor-site" // site of a visitor's token; "" for an admin
	ctxToken       = "koekje.token"        // name of the request's bearer token, for logs
)

// bearer lets a request through with an admin bearer token of scope, or of
// scope "admin", which includes every scope. No token or a wrong one is
// 401; a right token of too small a scope is 403.
func (s *Server) bearer(scope string) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			got, err := s.bearerScope(c, false)
			switch {
			case err != nil:
				return err
			case got == "":
				c.Response().Header().Set("WWW-Authenticate", `Bearer realm="koekje"`)
				return consent.Errorf(consent.EUNAUTHORIZED, "needs an admin bearer token")
			case got != "admin" && got != scope:
				return consent.Errorf(consent.EFORBIDDEN, "this token's scope (%s) does not allow this", got)
			}
			return next(c)
		}
	}
}

// visitor lets a request through with the visitor's current token for the
// consent ID in the path (Authorization: Bearer, or ?token= for links such
// as the receipt's), or with an admin bearer token.
func (s *Server) visitor(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		id, err := uuid.Parse(c.Param("id"))
		if err != nil || id.String() != c.Param("id") {
			return consent.FieldErrorf(consent.EMALFORMED, "consent_id", "not a UUID in canonical form")
		}
		token := c.QueryParam("token")
		if bearer, ok := bearerToken(c.Request()); ok {
			// A bearer that is no visitor token is an admin token, or a
			// guess at one: only those count as failures.
			if _, visitor := s.tokens.parse(bearer); !visitor {
				scope, err := s.bearerScope(c, true)
				if err != nil {
					return err
				}
				if scope != "" {
					c.Set(ctxVisitorSite, "")
					return next(c)
				}
			}
			token = bearer
		}
		tok, err := s.currentToken(c.Request().Context(), token)
		if err != nil {
			return err
		}
		if tok == nil || tok.ID != id {
			c.Response().Header().Set("WWW-Authenticate", `Bearer realm="koekje"`)
			return consent.Errorf(consent.EUNAUTHORIZED, "needs the visitor's current token or an admin bearer token")
		}
		c.Set(ctxVisitorSite, tok.Site)
		return next(c)
	}
}

// currentToken returns what a visitor token names if it is the newest one
// issued for its consent ID and site, or nil: every write rotates it.
func (s *Server) currentToken(ctx context.Context, token string) (*visitorToken, error) {
	tok, ok := s.tokens.parse(token)
	if !ok {
		return nil, nil
	}
	latest, err := s.store.Latest(ctx, tok.ID, tok.Site)
	if err != nil || latest == nil || latest.RecordID != tok.Record {
		return nil, err
	}
	return &tok, nil
}

// signedIn lets a console request through with a live session; others are
// sent to sign in.
func (s *Server) signedIn(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		sess, err := s.session(c, time.Now())
		if err != nil {
			return err
		}
		if sess == nil {
			c.SetCookie(s.sessions.cookie(c, sessionCookie, "", -1))
			return c.Redirect(http.StatusSeeOther, "/admin?expired=1")
		}
		c.Set(ctxSession, sess)
		return next(c)
	}
}

// csrf lets a console form through only with its session's CSRF token; it
// runs after signedIn.
func (s *Server) csrf(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if !validCSRF(c, sessionOf(c).CSRF) {
			return consent.Errorf(consent.EFORBIDDEN, "the form's CSRF token is missing or wrong")
		}
		return next(c)
	}
}

// maxFormBytes bounds a console form (a token, a CSRF token, a few fields).
const maxFormBytes = 4 << 10

// form lets a console form through only as a small URL-encoded body, checked
// before anything parses it: multipart bodies would be parsed into memory
// and temporary files, before any sign-in, up to 32 MiB each.
func form(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/x-www-form-urlencoded" {
			return consent.Errorf(codeUnsupported, "send the form as application/x-www-form-urlencoded")
		}
		if r.ContentLength > maxFormBytes {
			return consent.Errorf(codeTooLarge, "the form is larger than %d bytes", maxFormBytes)
		}
		r.Body = http.MaxBytesReader(c.Response(), r.Body, maxFormBytes)
		if err := r.ParseForm(); err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				return consent.Errorf(codeTooLarge, "the form is larger than %d bytes", maxFormBytes)
			}
			return consent.Errorf(consent.EMALFORMED, "the form cannot be read")
		}
		return next(c)
	}
}

// noBody refuses a body on a POST that takes none (purge, key rotation):
// nothing is read, so nothing is buffered.
func noBody(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if r := c.Request(); r.ContentLength > 0 || (r.ContentLength < 0 && r.Body != http.NoBody) {
			return consent.Errorf(codeTooLarge, "this request takes no body")
		}
		return next(c)
	}
}

// bearerName names the bearer token the request was let through with: its
// name in the config, or "admin-token". Never the token itself.
func bearerName(c echo.Context) string {
	name, _ := c.Get(ctxToken).(string)
	return name
}

// sessionOf is the session signedIn found.
func sessionOf(c echo.Context) *session {
	sess, _ := c.Get(ctxSession).(*session)
	return sess
}
