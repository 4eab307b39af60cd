package server

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"hash"
	"net/http"
	"strconv"
	"strings"
	"sync"
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
type visitorTokens struct {
	sc *securecookie.SecureCookie // parses tokens
	// macs hold HMAC-SHA256 under the key, each reset to its keyed state:
	// a token is issued on every write, and keying a new HMAC costs two
	// SHA-256 blocks and two digests.
	macs sync.Pool
}

func newVisitorTokens(key []byte) *visitorTokens {
	sc := securecookie.New(key, nil)
	sc.SetSerializer(securecookie.NopEncoder{})
	sc.MaxAge(int(tokenMaxAge / time.Second))
	sc.HashFunc(sha256.New)
	key = bytes.Clone(key)
	return &visitorTokens{sc: sc, macs: sync.Pool{New: func() any { return hmac.New(sha256.New, key) }}}
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

// issue makes a token naming a consent ID, its newest record and its site:
// securecookie's format (what parse reads), written here in one buffer:
// base64url of "date|value|mac", value being base64url of the token's
// bytes and mac the HMAC-SHA256 of "koekje-consent|date|value".
func (t *visitorTokens) issue(id, record uuid.UUID, site string) (string, error) {
	v := make([]byte, 0, 33+len(site))
	v = append(append(append(append(v, tokenV2), id[:]...), record[:]...), site...)
	b := make([]byte, 0, len(tokenName)+24+base64.URLEncoding.EncodedLen(len(v))+sha256.Size)
	b = append(b, tokenName+"|"...)
	b = strconv.AppendInt(b, time.Now().Unix(), 10)
	b = append(b, '|')
	b = base64.URLEncoding.AppendEncode(b, v)
	mac := t.macs.Get().(hash.Hash)
	mac.Reset()
	mac.Write(b)
	b = mac.Sum(append(b, '|'))
	t.macs.Put(mac)
	b = b[len(tokenName)+1:]
	return base64.URLEncoding.EncodeToString(b), nil
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
