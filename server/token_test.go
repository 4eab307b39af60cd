package server

import (
	"bytes"
	"testing"

	"github.com/google/uuid"
)

// FuzzVisitorToken: whatever string comes in as a token, checking it never
// panics, and a token passes only if this key issued it: the one consent ID
// and site ever issued under it (at any time) is all that can come out.
func FuzzVisitorToken(f *testing.F) {
	tokens := newVisitorTokens(bytes.Repeat([]byte{9}, 64))
	id := uuid.MustParse("11111111-1111-4111-8111-111111111111")
	good, err := tokens.issue(id, "demo")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add(good[:len(good)-2])
	f.Add("")
	f.Add("MTc5NTMzMTg2NnxhNmIwTjVI")
	f.Add(string(bytes.Repeat([]byte("A"), 600)))
	f.Fuzz(func(t *testing.T, tok string) {
		gotID, site, ok := tokens.owner(tok)
		if tok == good {
			if !ok || gotID != id || site != "demo" || !tokens.check(tok, id, "demo") {
				t.Fatal("the issued token does not check")
			}
			return
		}
		if ok && (gotID != id || site != "demo") {
			t.Fatalf("a token that was never issued passed: %q gives %s on %q", tok, gotID, site)
		}
		if ok != tokens.check(tok, id, "demo") {
			t.Fatalf("owner and check disagree on %q", tok)
		}
	})
}

func TestTokenBindsSite(t *testing.T) {
	t.Parallel()
	tokens := newVisitorTokens(bytes.Repeat([]byte{9}, 64))
	id := uuid.New()
	tok, _ := tokens.issue(id, "demo")
	if !tokens.check(tok, id, "demo") || tokens.check(tok, id, "other") || tokens.check(tok, uuid.New(), "demo") {
		t.Error("token does not bind consent ID and site")
	}
	other := newVisitorTokens(bytes.Repeat([]byte{8}, 64))
	if other.check(tok, id, "demo") {
		t.Error("a token checks under another key")
	}
}
