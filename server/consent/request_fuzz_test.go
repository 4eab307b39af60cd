package consent_test

import (
	"strings"
	"testing"

	"github.com/koekje/koekje/config"
	"github.com/koekje/koekje/server/consent"
)

// FuzzRequest feeds arbitrary bodies to the decoder and the validator: no
// panic, and whatever they accept is a well-formed record.
func FuzzRequest(f *testing.F) {
	for _, seed := range []string{
		`{"site":"demo","consent_id":null,"token":null,"choices":{"necessary":true,"functional":true,"analytics":false,"embeds":false},"action":"custom","revision":1,"config_hash":"sha256:` + strings.Repeat("a", 64) + `","language":"nl","url":"https://example.nl/contact?q=1#x","gpc":false}`,
		`{"site":"demo","action":"accept_all"}`,
		`{"site":"demo","action":"withdraw","consent_id":"11111111-1111-4111-8111-111111111111","token":"x"}`,
		`{"site":"demo","action":"custom","services":{"youtube":true},"choices":{"embeds":false}}`,
		`{"site":"demo","action":"reject_all","choices":{"necessary":false}}`,
		`{"site":"demo","site":"demo"}`,
		"{\"site\":\"\xff\"}",
		`[]`, `null`, `{`, ``,
	} {
		f.Add([]byte(seed))
	}
	site := config.Demo().Site("demo")
	hash := "sha256:" + strings.Repeat("0", 64)
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := consent.DecodeRequest(body)
		if err != nil {
			if code := consent.ErrorCode(err); code != consent.EMALFORMED {
				t.Fatalf("decode error with code %s: %v", code, err)
			}
			return
		}
		rec, err := req.Validate(site, hash, "http://example.com")
		if err != nil {
			if code := consent.ErrorCode(err); code != consent.EINVALID {
				t.Fatalf("validation error with code %s: %v", code, err)
			}
			return
		}
		if len(rec.Choices) != len(site.Categories) || !rec.Choices["necessary"] {
			t.Fatalf("accepted choices %v", rec.Choices)
		}
		if strings.ContainsAny(rec.URL, "?#@") {
			t.Fatalf("URL kept query, fragment or user: %q", rec.URL)
		}
		if !site.HasLanguage(rec.Language) || rec.Revision != site.Revision {
			t.Fatalf("language %q revision %d", rec.Language, rec.Revision)
		}
		for _, s := range rec.Services {
			if !site.HasService(s) {
				t.Fatalf("unknown service %q accepted", s)
			}
		}
	})
}

func TestTruncateIP(t *testing.T) {
	for in, want := range map[string]string{
		"203.0.113.77":             "203.0.113.0/24",
		"::ffff:203.0.113.77":      "203.0.113.0/24",
		"2001:db8:abcd:12:1:2:3:4": "2001:db8:abcd::/48",
		"fe80::1%eth0":             "fe80::/48",
		"not an address":           "",
		"":                         "",
	} {
		if got := consent.TruncateIP(in); got != want {
			t.Errorf("TruncateIP(%q) = %q, want %q", in, got, want)
		}
	}
}
