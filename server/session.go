package server

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"time"

	"github.com/gorilla/securecookie"
	"github.com/labstack/echo/v4"
)

const (
	sessionCookie = "koekje_admin"
	loginCookie   = "koekje_login" // CSRF token of the sign-in form
	sessionLife   = 8 * time.Hour
)

// session is what the console's cookie holds once a token signed in.
type session struct {
	Scope   string `json:"s"`
	CSRF    string `json:"c"`
	Expires int64  `json:"e"`
}

// sessions seal console cookies with a key derived from the token key.
type sessions struct {
	sc *securecookie.SecureCookie
	// secure tells whether a request came over HTTPS (the public URL's
	// scheme, or a trusted proxy's word): cookies are then Secure.
	secure func(*http.Request) bool
}

func newSessions(key []byte) *sessions {
	k := sha256.Sum256(append([]byte("koekje-console-session\x00"), key...))
	sc := securecookie.New(k[:], nil)
	sc.SetSerializer(securecookie.JSONEncoder{})
	sc.MaxAge(int(sessionLife / time.Second))
	sc.HashFunc(sha256.New)
	return &sessions{sc: sc}
}

func randomToken() string {
	b := make([]byte, 24)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func (ss *sessions) cookie(c echo.Context, name, value string, maxAge int) *http.Cookie {
	return &http.Cookie{
		Name: name, Value: value, Path: "/admin", MaxAge: maxAge,
		HttpOnly: true, Secure: ss.secure != nil && ss.secure(c.Request()), SameSite: http.SameSiteStrictMode,
	}
}

// start signs a session in.
func (ss *sessions) start(c echo.Context, scope string, now time.Time) error {
	v, err := ss.sc.Encode(sessionCookie, session{Scope: scope, CSRF: randomToken(), Expires: now.Add(sessionLife).Unix()})
	if err != nil {
		return err
	}
	c.SetCookie(ss.cookie(c, sessionCookie, v, int(sessionLife/time.Second)))
	return nil
}

// get returns the request's session, or nil if it has none or it expired.
func (ss *sessions) get(c echo.Context, now time.Time) *session {
	ck, err := c.Cookie(sessionCookie)
	if err != nil {
		return nil
	}
	var s session
	if ss.sc.Decode(sessionCookie, ck.Value, &s) != nil || now.Unix() >= s.Expires {
		return nil
	}
	return &s
}

func (ss *sessions) end(c echo.Context) {
	c.SetCookie(ss.cookie(c, sessionCookie, "", -1))
}

// validCSRF compares the form's csrf field with want in constant time.
func validCSRF(c echo.Context, want string) bool {
	got := c.FormValue("csrf")
	return want != "" && subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}
