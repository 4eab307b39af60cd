package consent

import (
	"errors"
	"io"
	"net/url"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
	"github.com/google/uuid"

	"github.com/koekje/koekje/config"
)

// Limits on what a request may carry and a record keeps.
const (
	MaxBodyBytes = 8 << 10
	MaxURLBytes  = 2048 // a page URL as sent; more is refused
	// A page is kept as origin and path, cut to StoredURLBytes: unique long
	// URLs would otherwise cost kilobytes a record.
	StoredURLBytes     = 512
	MaxUserAgentBytes  = 256
	MinRequestIDLength = 16
	MaxRequestIDLength = 64
)

// isConfigHash reports whether s is "sha256:" and 64 lowercase hex digits.
func isConfigHash(s string) bool {
	hex, ok := strings.CutPrefix(s, "sha256:")
	if !ok || len(hex) != 64 {
		return false
	}
	for i := 0; i < len(hex); i++ {
		if c := hex[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// Request is the body of POST /api/v1/consents.
type Request struct {
	Site       string          `json:"site"`
	ConsentID  *string         `json:"consent_id"`
	Token      *string         `json:"token"`
	Choices    map[string]bool `json:"choices"`
	Services   map[string]bool `json:"services"`
	Action     string          `json:"action"`
	Revision   *int            `json:"revision"`
	ConfigHash string          `json:"config_hash"`
	Language   string          `json:"language"`
	URL        string          `json:"url"`
	GPC        bool            `json:"gpc"`
	// RequestID, made by the client, makes a retried POST idempotent.
	RequestID string `json:"request_id"`
}

var strict = json.RejectUnknownMembers(true)

// DecodeRequest parses a request body strictly: unknown members, duplicate
// names, invalid UTF-8, wrong types and trailing data are all EMALFORMED.
func DecodeRequest(b []byte) (*Request, error) {
	var r Request
	if err := json.Unmarshal(b, &r, strict); err != nil {
		return nil, decodeError(err)
	}
	return &r, nil
}

func decodeError(err error) *Error {
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return Errorf(EMALFORMED, "truncated or empty JSON body")
	}
	var se *json.SemanticError
	if errors.As(err, &se) {
		field := pointerField(se.JSONPointer)
		switch {
		case errors.Is(se.Err, json.ErrUnknownName):
			return FieldErrorf(EMALFORMED, field, "unknown field %q", field)
		case se.GoType != nil:
			return FieldErrorf(EMALFORMED, field, "wrong type: cannot read a JSON %s as %s", kindName(se.JSONKind), goTypeName(se.GoType.String()))
		}
		return FieldErrorf(EMALFORMED, field, "invalid value")
	}
	var syn *jsontext.SyntacticError
	if errors.As(err, &syn) {
		msg := "invalid JSON"
		if syn.Err != nil {
			msg += ": " + syn.Err.Error()
		}
		return FieldErrorf(EMALFORMED, pointerField(syn.JSONPointer), "%s at byte %d", msg, syn.ByteOffset)
	}
	return Errorf(EMALFORMED, "invalid JSON body")
}

// pointerField turns "/choices/analytics" into "choices.analytics".
func pointerField(p jsontext.Pointer) string {
	s := strings.TrimPrefix(string(p), "/")
	s = strings.ReplaceAll(s, "/", ".")
	s = strings.ReplaceAll(strings.ReplaceAll(s, "~1", "/"), "~0", "~")
	if !utf8.ValidString(s) || len(s) > 64 {
		return "(invalid field name)"
	}
	return s
}

func kindName(k jsontext.Kind) string {
	switch k {
	case '"':
		return "string"
	case '0':
		return "number"
	case 't', 'f':
		return "boolean"
	case 'n':
		return "null"
	case '{':
		return "object"
	case '[':
		return "array"
	}
	return "value"
}

func goTypeName(t string) string {
	switch {
	case strings.HasPrefix(t, "map["):
		return "an object of booleans"
	case strings.Contains(t, "int"):
		return "an integer"
	case t == "bool":
		return "a boolean"
	case strings.Contains(t, "string"):
		return "a string"
	}
	return t
}

// Validate checks r against the site's configuration and returns the record
// to store. currentHash is the hash of the banner version the site serves now,
// used when the request names none; self is the consent server's origin (for
// sites whose origins include "self"). Server-side fields (IDs, time,
// address, user agent, chain) are left for the caller and the store.
func (r *Request) Validate(s *config.Site, currentHash, self string) (*Record, error) {
	rec := &Record{Site: s.ID, GPC: r.GPC}
	if r.RequestID != "" {
		if !validRequestID(r.RequestID) {
			return nil, FieldErrorf(EINVALID, "request_id", "must be %d to %d letters, digits, - or _", MinRequestIDLength, MaxRequestIDLength)
		}
		rec.RequestID = r.RequestID
	}
	if r.ConsentID != nil {
		id, err := ParseID(*r.ConsentID)
		if err != nil {
			return nil, FieldErrorf(EINVALID, "consent_id", "must be a UUID in canonical form or null")
		}
		rec.ConsentID = id
	}
	switch r.Action {
	case AcceptAll, RejectAll, Custom, Withdraw, LoadOnce:
		rec.Action = r.Action
	case "":
		return nil, FieldErrorf(EINVALID, "action", "required: one of %s", actionList)
	default:
		return nil, FieldErrorf(EINVALID, "action", "unknown action: must be one of %s", actionList)
	}
	choices, err := validateChoices(r.Choices, r.Action, s)
	if err != nil {
		return nil, err
	}
	rec.Choices = choices
	for id, granted := range r.Services {
		if !s.HasService(id) {
			return nil, FieldErrorf(EINVALID, "services."+safeKey(id), "unknown service")
		}
		if granted {
			if r.Action == RejectAll || r.Action == Withdraw {
				return nil, FieldErrorf(EINVALID, "services."+id, "%s with a granted service: use custom", r.Action)
			}
			rec.Services = append(rec.Services, id)
		}
	}
	slices.Sort(rec.Services)
	if r.Action == LoadOnce && len(rec.Services) != 1 {
		return nil, FieldErrorf(EINVALID, "services", "load_once grants exactly one service, for one page view")
	}

	rec.Revision = s.Revision
	if r.Revision != nil && *r.Revision != s.Revision {
		return nil, FieldErrorf(EINVALID, "revision", "revision %d is not the site's current revision %d", *r.Revision, s.Revision)
	}
	rec.ConfigHash = currentHash
	if r.ConfigHash != "" {
		if !isConfigHash(r.ConfigHash) {
			return nil, FieldErrorf(EINVALID, "config_hash", `must be "sha256:" and 64 lower-case hex digits`)
		}
		rec.ConfigHash = r.ConfigHash
	}
	rec.Language = s.DefaultLanguage
	if r.Language != "" {
		if !s.HasLanguage(r.Language) {
			return nil, FieldErrorf(EINVALID, "language", "the site does not offer this language (it offers %s)", strings.Join(s.Languages, ", "))
		}
		rec.Language = r.Language
	}
	if r.URL != "" {
		u, err := CleanURL(r.URL)
		if err != nil {
			return nil, err
		}
		if !s.AllowsOrigin(originOf(u), self) {
			return nil, FieldErrorf(EINVALID, "url", "the page is not on one of the site's configured origins")
		}
		rec.URL = u
	}
	return rec, nil
}

// originOf is the scheme://host[:port] of a cleaned URL.
func originOf(u string) string {
	scheme, rest, _ := strings.Cut(u, "://")
	if i := strings.IndexAny(rest, "/?#"); i >= 0 {
		rest = rest[:i]
	}
	return scheme + "://" + rest
}

func validRequestID(s string) bool {
	if len(s) < MinRequestIDLength || len(s) > MaxRequestIDLength {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

func validateChoices(in map[string]bool, action string, s *config.Site) (map[string]bool, error) {
	for id := range in {
		if s.Category(id) == nil {
			return nil, FieldErrorf(EINVALID, "choices."+safeKey(id), "unknown category")
		}
	}
	out := make(map[string]bool, len(s.Categories))
	for _, c := range s.Categories {
		v, given := in[c.ID]
		if !given {
			v = action == AcceptAll
		}
		if c.Required {
			if given && !v {
				return nil, FieldErrorf(EINVALID, "choices."+c.ID, "this category is always on and cannot be refused")
			}
			v = true
		}
		switch {
		case action == AcceptAll && !v:
			return nil, FieldErrorf(EINVALID, "choices."+c.ID, "accept_all with a refused category: use custom")
		case (action == RejectAll || action == Withdraw) && v && !c.Required:
			return nil, FieldErrorf(EINVALID, "choices."+c.ID, "%s with a granted category: use custom", action)
		}
		out[c.ID] = v
	}
	return out, nil
}

func safeKey(s string) string {
	if len(s) > 64 || !utf8.ValidString(s) {
		return "(invalid name)"
	}
	return s
}

// ParseID parses a consent ID, accepting only the canonical lower-case form.
func ParseID(s string) (uuid.UUID, error) {
	id, err := uuid.Parse(s)
	if err != nil || id.String() != s {
		return uuid.Nil, FieldErrorf(EINVALID, "consent_id", "not a UUID in canonical form")
	}
	return id, nil
}

// CleanURL keeps scheme, host and path of a page URL, cut to StoredURLBytes
// (at a rune boundary): query strings and fragments often carry personal
// data and are dropped.
func CleanURL(s string) (string, error) {
	if len(s) > MaxURLBytes {
		return "", FieldErrorf(EINVALID, "url", "longer than %d bytes", MaxURLBytes)
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", FieldErrorf(EINVALID, "url", "must be an absolute http(s) URL")
	}
	u.User, u.RawQuery, u.ForceQuery, u.Fragment, u.RawFragment = nil, "", false, "", ""
	return capBytes(u.String(), StoredURLBytes), nil
}

// CapUserAgent shortens a user agent to at most MaxUserAgentBytes of valid
// UTF-8.
func CapUserAgent(ua string) string {
	return capBytes(strings.ToValidUTF8(ua, ""), MaxUserAgentBytes)
}

// capBytes cuts valid UTF-8 s to at most n bytes, at a rune boundary.
func capBytes(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
