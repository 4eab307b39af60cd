package server

import (
	"bytes"
	"crypto/hmac"
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

// session is what the console's cookie holds once a token signed in. The
// cookie alone is not enough: the session must be live in the store (logout
// ends it there, for every instance and across restarts), and the token
// that made it must still be configured.
type session struct {
	ID      []byte `json:"i"`
	Token   []byte `json:"t"` // the token's ID (tokenID), never the token
	Scope   string `json:"s"`
	CSRF    string `json:"c"`
	Expires int64  `json:"e"`
}

// sessions seal console cookies with a key derived from the token key.
type sessions struct {
	sc *securecookie.SecureCookie
	// idKey derives token IDs: a session names its token without a hash
	// that could be tried against guesses.
	idKey []byte
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
	idKey := sha256.Sum256(append([]byte("koekje-console-token-id\x00"), key...))
	return &sessions{sc: sc, idKey: idKey[:]}
}

// tokenID names the token whose SHA-256 is sum in sessions: an HMAC under a
// key the store keeps sealed, so the store's rows reveal nothing to try.
func (ss *sessions) tokenID(sum []byte) []byte {
	m := hmac.New(sha256.New, ss.idKey)
	m.Write(sum)
	return m.Sum(nil)[:16]
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

// startSession signs in with the token whose SHA-256 is sum.
func (s *Server) startSession(c echo.Context, scope string, sum []byte, now time.Time) error {
	id := make([]byte, 16)
	rand.Read(id)
	sess := session{ID: id, Token: s.sessions.tokenID(sum), Scope: scope, CSRF: randomToken(), Expires: now.Add(sessionLife).Unix()}
	if err := s.store.StartSession(c.Request().Context(), sess.ID, sess.Token, time.Unix(sess.Expires, 0)); err != nil {
		return err
	}
	v, err := s.sessions.sc.Encode(sessionCookie, sess)
	if err != nil {
		return err
	}
	c.SetCookie(s.sessions.cookie(c, sessionCookie, v, int(sessionLife/time.Second)))
	return nil
}

// session returns the request's live session, or nil if it has none, it
// expired or ended, or its token is no longer configured.
func (s *Server) session(c echo.Context, now time.Time) (*session, error) {
	ck, err := c.Cookie(sessionCookie)
	if err != nil {
		return nil, nil
	}
	var sess session
	if s.sessions.sc.Decode(sessionCookie, ck.Value, &sess) != nil || now.Unix() >= sess.Expires || !s.tokenConfigured(sess.Token) {
		return nil, nil
	}
	live, err := s.store.SessionLive(c.Request().Context(), sess.ID, now)
	if err != nil || !live {
		return nil, err
	}
	return &sess, nil
}

// tokenConfigured reports whether a token ID names a token configured now.
func (s *Server) tokenConfigured(id []byte) bool {
	for _, t := range s.tokenIDs {
		if bytes.Equal(t, id) {
			return true
		}
	}
	return false
}

// endSession ends the request's session in the store and clears its cookie.
func (s *Server) endSession(c echo.Context, sess *session) error {
	c.SetCookie(s.sessions.cookie(c, sessionCookie, "", -1))
	if sess == nil {
		return nil
	}
	return s.store.EndSession(c.Request().Context(), sess.ID, time.Now())
}

// validCSRF compares the form's csrf field with want in constant time.
func validCSRF(c echo.Context, want string) bool {
	got := c.FormValue("csrf")
	return want != "" && subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}
