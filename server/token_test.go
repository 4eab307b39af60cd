package server

import (
	"bytes"
	"testing"
	"time"

	"github.com/google/uuid"
)

// FuzzVisitorToken: whatever string comes in as a token, parsing it never
// panics, and a token passes only if this key issued it: the one consent ID,
// record and site ever issued under it (at any time) is all that can come out.
func FuzzVisitorToken(f *testing.F) {
	tokens := newVisitorTokens(bytes.Repeat([]byte{9}, 64))
	id := uuid.MustParse("11111111-1111-4111-8111-111111111111")
	rec := uuid.MustParse("22222222-2222-7222-8222-222222222222")
	good, err := tokens.issue(id, rec, "demo")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add(good[:len(good)-2])
	f.Add("")
	f.Add("MTc5NTMzMTg2NnxhNmIwTjVI")
	f.Add(string(bytes.Repeat([]byte("A"), 600)))
	f.Fuzz(func(t *testing.T, tok string) {
		got, ok := tokens.parse(tok)
		if tok == good {
			if !ok || got != (visitorToken{id, rec, "demo"}) {
				t.Fatal("the issued token does not parse back")
			}
			return
		}
		if ok && got != (visitorToken{id, rec, "demo"}) {
			t.Fatalf("a token that was never issued passed: %q gives %+v", tok, got)
		}
	})
}

func TestTokenBindsKey(t *testing.T) {
	t.Parallel()
	tokens := newVisitorTokens(bytes.Repeat([]byte{9}, 64))
	id, rec := uuid.New(), uuid.New()
	tok, _ := tokens.issue(id, rec, "demo")
	if got, ok := tokens.parse(tok); !ok || got.ID != id || got.Record != rec || got.Site != "demo" {
		t.Errorf("token does not carry consent ID, record and site: %+v", got)
	}
	other := newVisitorTokens(bytes.Repeat([]byte{8}, 64))
	if _, ok := other.parse(tok); ok {
		t.Error("a token parses under another key")
	}
	// A token of the old format (consent ID and site, no record) never
	// stopped working; it is refused.
	legacy, _ := tokens.sc.Encode(tokenName, append(id[:], "demo"...))
	if _, ok := tokens.parse(legacy); ok {
		t.Error("a token without a record is accepted")
	}
}

// A token is what securecookie would have issued, byte for byte: tokens
// issued before keep parsing, and those issued now parse with securecookie.
func TestTokenIsSecurecookies(t *testing.T) {
	t.Parallel()
	tokens := newVisitorTokens(bytes.Repeat([]byte{9}, 64))
	for _, site := range []string{"demo", "s", "a-site-with-a-longer-name-0123456789"} {
		id, rec := uuid.New(), uuid.New()
		v := append(append(append([]byte{tokenV2}, id[:]...), rec[:]...), site...)
		for {
			before := time.Now().Unix()
			got, err := tokens.issue(id, rec, site)
			if err != nil {
				t.Fatal(err)
			}
			want, err := tokens.sc.Encode(tokenName, v)
			if err != nil {
				t.Fatal(err)
			}
			if time.Now().Unix() != before {
				continue // a second passed: the dates may differ
			}
			if got != want {
				t.Fatalf("site %s: issued %q, securecookie %q", site, got, want)
			}
			break
		}
	}
}

// BenchmarkIssueToken issues the token of an answer.
func BenchmarkIssueToken(b *testing.B) {
	tokens := newVisitorTokens(bytes.Repeat([]byte{9}, 64))
	id, rec := uuid.New(), uuid.New()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := tokens.issue(id, rec, "demo"); err != nil {
			b.Fatal(err)
		}
	}
}
