package server

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"net/http"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/gorilla/securecookie"
	"github.com/labstack/echo/v4"

	"github.com/koekje/koekje/config"
)

// tokenName is mixed into every visitor token's MAC.
const tokenName = "koekje-consent"

// tokenMaxAge outlives the longest a choice may be kept (13 months).
const tokenMaxAge = 400 * 24 * time.Hour

// visitorTokens issue and check the tokens that bind a consent ID to a site
// and to the newest record of that visitor: only their holder can add to or
// read that visitor's history, and each write makes a new token, so an old
// one (from a browser history, a log, a copied cookie) stops working.
type visitorTokens struct{ sc *securecookie.SecureCookie }

func newVisitorTokens(key []byte) *visitorTokens {
	sc := securecookie.New(key, nil)
	sc.SetSerializer(securecookie.NopEncoder{})
	sc.MaxAge(int(tokenMaxAge / time.Second))
	sc.HashFunc(sha256.New)
	return &visitorTokens{sc}
}

// tokenV2 marks tokens that name a record; older ones (ID and site only)
// never stop working and are refused.
const tokenV2 = 2

// visitorToken is what a token names.
type visitorToken struct {
	ID     uuid.UUID // consent ID
	Record uuid.UUID // the newest record when it was issued
	Site   string
}

func (t *visitorTokens) issue(id, record uuid.UUID, site string) (string, error) {
	v := make([]byte, 0, 33+len(site))
	v = append(append(append(append(v, tokenV2), id[:]...), record[:]...), site...)
	return t.sc.Encode(tokenName, v)
}

// parse returns what a token names, if its MAC and age are good.
func (t *visitorTokens) parse(token string) (visitorToken, bool) {
	var v []byte
	if len(token) > 512 || t.sc.Decode(tokenName, token, &v) != nil || len(v) < 33 || v[0] != tokenV2 {
		return visitorToken{}, false
	}
	var tok visitorToken
	copy(tok.ID[:], v[1:17])
	copy(tok.Record[:], v[17:33])
	tok.Site = string(v[33:])
	return tok, true
}

// adminTokens checks bearer tokens: the one given on the command line and
// the named ones of the config, all kept as SHA-256 hashes and compared in
// constant time.
type adminTokens struct {
	hashes [][]byte
	scopes []string
	names  []string // the config's names; "admin-token" for --admin-token
}

func newAdminTokens(flagToken string, cfg []*config.Token) *adminTokens {
	a := &adminTokens{}
	if flagToken != "" {
		h := sha256.Sum256([]byte(flagToken))
		a.hashes = append(a.hashes, h[:])
		a.scopes = append(a.scopes, "admin")
		a.names = append(a.names, "admin-token")
	}
	for _, t := range cfg {
		h, err := hex.DecodeString(strings.TrimPrefix(t.SHA256, "sha256:"))
		if err != nil {
			continue // config validation has already refused it
		}
		a.hashes = append(a.hashes, h)
		a.scopes = append(a.scopes, t.Scope)
		a.names = append(a.names, t.Name)
	}
	return a
}

// bearerToken returns the request's bearer token, if it has a non-empty one.
func bearerToken(r *http.Request) (string, bool) {
	scheme, tok, ok := strings.Cut(r.Header.Get(echo.HeaderAuthorization), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") { // RFC 9110: schemes are case-insensitive
		return "", false
	}
	tok = strings.TrimLeft(tok, " ")
	return tok, tok != ""
}

// scopeOf returns the scope of a token, or "" if it is not one of ours.
// Every stored hash is compared, so timing tells nothing.
func (a *adminTokens) scopeOf(tok string) string {
	scope, _, _ := a.find(tok)
	return scope
}

// find returns the scope, name and SHA-256 of a token, or "" if it is not
// one of ours.
func (a *adminTokens) find(tok string) (scope, name string, sum []byte) {
	if tok == "" {
		return "", "", nil
	}
	h := sha256.Sum256([]byte(tok))
	found := -1
	for i, want := range a.hashes {
		if subtle.ConstantTimeCompare(h[:], want) == 1 {
			found = i
		}
	}
	if found < 0 {
		return "", "", nil
	}
	return a.scopes[found], a.names[found], h[:]
}
