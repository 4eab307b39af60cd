package consent

import (
	"errors"
	"slices"
	"strconv"
	"strings"

	"github.com/koekje/koekje/config"
)

// Advanced Data Protection Control (ADPC, dataprotectioncontrol.org/spec):
// a site lists its consent requests, each an identifier and a text, in a
// JSON resource its pages link to (Link: <…>; rel="consent-requests"), and
// the browser answers in the ADPC request header with consent=, withdraw=
// (an identifier, or * for every consent) and object= (direct-marketing,
// under GDPR art. 21(2)).

// Limits on an ADPC header: more is not read (ADPCInvalid).
const (
	MaxADPCBytes = 2048
	maxADPCIDs   = 64
)

// ADPCInvalid is what a record keeps of an ADPC header Koekje could not
// read: it decided nothing. No canonical form is a bare word.
const ADPCInvalid = "invalid"

// ObjectDirectMarketing is the one objection ADPC defines.
const ObjectDirectMarketing = "direct-marketing"

// ADPC is an ADPC header as read: the identifiers of each decision, sorted
// and each once. Decisions of other names are left out (the specification
// may add some).
type ADPC struct {
	Consent, Withdraw, Object []string
}

// ParseADPC reads the ADPC header's values (one or more header lines, each
// a comma-separated list of decisions). Each decision is a name, "=", and
// either one identifier or a double-quoted list of identifiers separated by
// spaces (empty lists allowed). An identifier is printable ASCII without
// space, quote, comma or backslash. Anything else — a decision without
// "=", an unterminated quote, control or non-ASCII bytes, a header over
// MaxADPCBytes or with more than 64 identifiers — is an error: the header
// is then not read at all.
func ParseADPC(values []string) (ADPC, error) {
	var a ADPC
	total, ids := 0, 0
	for _, v := range values {
		total += len(v) + 1
		if total > MaxADPCBytes {
			return ADPC{}, errors.New("ADPC header longer than " + strconv.Itoa(MaxADPCBytes) + " bytes")
		}
		for rest := v; ; {
			var item string
			var err error
			item, rest, err = nextDecision(rest)
			if err != nil {
				return ADPC{}, err
			}
			if item != "" {
				name, list, ok := strings.Cut(item, "=")
				name = strings.ToLower(strings.TrimRight(name, " \t"))
				if !ok || !isToken(name) {
					return ADPC{}, errors.New("ADPC decision " + strconv.Quote(item) + ": want name=value")
				}
				got, err := identifiers(strings.TrimLeft(list, " \t"))
				if err != nil {
					return ADPC{}, err
				}
				if ids += len(got); ids > maxADPCIDs {
					return ADPC{}, errors.New("ADPC header with more than " + strconv.Itoa(maxADPCIDs) + " identifiers")
				}
				switch name {
				case "consent":
					a.Consent = append(a.Consent, got...)
				case "withdraw":
					a.Withdraw = append(a.Withdraw, got...)
				case "object":
					a.Object = append(a.Object, got...)
				}
			}
			if rest == "" {
				break
			}
		}
	}
	for _, l := range []*[]string{&a.Consent, &a.Withdraw, &a.Object} {
		slices.Sort(*l)
		*l = slices.Compact(*l)
	}
	return a, nil
}

// nextDecision cuts the next comma-separated decision off s, minding
// quotes, trimmed of spaces and tabs.
func nextDecision(s string) (item, rest string, err error) {
	quoted := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"':
			quoted = !quoted
		case c == ',' && !quoted:
			return strings.Trim(s[:i], " \t"), s[i+1:], nil
		case c == '\t':
		case c < 0x20 || c > 0x7e:
			return "", "", errors.New("ADPC header with a control or non-ASCII byte")
		}
	}
	if quoted {
		return "", "", errors.New("ADPC header with an unterminated quote")
	}
	return strings.Trim(s, " \t"), "", nil
}

// identifiers reads a decision's value: one bare identifier, or a quoted
// list of them separated by spaces.
func identifiers(v string) ([]string, error) {
	if inner, ok := strings.CutPrefix(v, `"`); ok {
		inner, ok = strings.CutSuffix(inner, `"`)
		if !ok || strings.Contains(inner, `"`) {
			return nil, errors.New("ADPC value " + strconv.Quote(v) + ": a quote inside a quoted list")
		}
		var out []string
		for _, id := range strings.Fields(inner) {
			if !isIdentifier(id) {
				return nil, errors.New("ADPC identifier " + strconv.Quote(id) + ": not allowed")
			}
			out = append(out, id)
		}
		return out, nil
	}
	if v == "" {
		return nil, nil
	}
	if !isIdentifier(v) {
		return nil, errors.New("ADPC value " + strconv.Quote(v) + ": one identifier, or a quoted list")
	}
	return []string{v}, nil
}

func isIdentifier(s string) bool {
	if s == "" || len(s) > 256 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c > '~' || c == '"' || c == ',' || c == '\\' {
			return false
		}
	}
	return true
}

func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// String writes a in the header's own syntax, in a fixed order: consent,
// withdraw, object, each left out when empty, a list quoted when it has
// more than one identifier. It is what a record keeps (Record.ADPC).
func (a ADPC) String() string {
	var parts []string
	for _, d := range []struct {
		name string
		ids  []string
	}{{"consent", a.Consent}, {"withdraw", a.Withdraw}, {"object", a.Object}} {
		switch len(d.ids) {
		case 0:
		case 1:
			parts = append(parts, d.name+"="+d.ids[0])
		default:
			parts = append(parts, d.name+`="`+strings.Join(d.ids, " ")+`"`)
		}
	}
	return strings.Join(parts, ", ")
}

// RequestID is the ADPC identifier of an optional category of a site at
// its revision, as its consent requests list it: the category's ID, ".r"
// and the revision. The specification asks for a new identifier whenever a
// request's text changes; a site raises its revision when its policy
// changes, and Koekje asks everyone again then, so a consent given to one
// revision's request never counts for another's.
func RequestID(category string, revision int) string {
	return category + ".r" + strconv.Itoa(revision)
}

// ForSite keeps of a what concerns site's current consent requests: the
// identifiers of its optional categories at its revision, a withdrawal of
// everything (*), and the objection to direct marketing. Identifiers of
// other sites, of earlier revisions or unknown to the specification are
// dropped: they decide nothing here, and a record keeps no more of a
// browser's header than what it acted on.
func (a ADPC) ForSite(s *config.Site) ADPC {
	known := func(id string) bool {
		cat, rev, ok := strings.Cut(id, ".r")
		c := s.Category(cat)
		return ok && c != nil && !c.Required && rev == strconv.Itoa(s.Revision)
	}
	var out ADPC
	for _, id := range a.Consent {
		if known(id) {
			out.Consent = append(out.Consent, id)
		}
	}
	for _, id := range a.Withdraw {
		if id == "*" || known(id) {
			out.Withdraw = append(out.Withdraw, id)
		}
	}
	for _, id := range a.Object {
		if id == ObjectDirectMarketing {
			out.Object = append(out.Object, id)
		}
	}
	return out
}
