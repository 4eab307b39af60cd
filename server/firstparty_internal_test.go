package server

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
)

// Whatever a Cookie header holds, the names read from it are distinct
// tokens that it holds, at most the maximum, and each makes an expiring
// Set-Cookie that a client reads back as that name, expired.
func FuzzCookieNames(f *testing.F) {
	for _, s := range []string{"", "a=1", "_ga=GA1.1; _ga_X=GS1", " a = 1 ;b=2;;c", "a=1; a=2", "bad name=1; ok=2", "=x; \x00=1", "koekje=1|2", "\t_gid\t=1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, header string) {
		names := cookieNames(header, 8)
		if len(names) > 8 {
			t.Fatalf("%d names, more than 8", len(names))
		}
		for i, n := range names {
			if !isToken(n) || !strings.Contains(header, n) || slices.Contains(names[:i], n) {
				t.Fatalf("name %q: not a token, not in the header, or twice", n)
			}
			for _, d := range []string{"", "www.example.nl"} {
				c, err := http.ParseSetCookie(expiry(n, "/shop", d))
				if err != nil || c.Name != n || c.MaxAge >= 0 || c.Domain != d || c.Path != "/shop" || !c.Secure {
					t.Fatalf("expiry(%q, /shop, %q) = %q reads as %v, %v", n, d, expiry(n, "/shop", d), c, err)
				}
			}
		}
	})
}

// The koekje cookie's value is escaped as encodeURIComponent escapes, and
// reads back whole.
func FuzzURIEscape(f *testing.F) {
	f.Add("1|id|1|a,b||tok-_.=|0")
	f.Fuzz(func(t *testing.T, s string) {
		e := uriEscape(s)
		if strings.ContainsFunc(e, func(r rune) bool {
			return !strings.ContainsRune("-_.!~*'()%", r) && !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9')
		}) {
			t.Fatalf("uriEscape(%q) = %q keeps a character encodeURIComponent escapes", s, e)
		}
		if back, err := url.PathUnescape(e); err != nil || back != s {
			t.Fatalf("uriEscape(%q) = %q reads back as %q, %v", s, e, back, err)
		}
	})
}

func TestParentDomains(t *testing.T) {
	for host, want := range map[string][]string{
		"www.shop.example.nl":   {"www.shop.example.nl", "shop.example.nl", "example.nl"},
		"www.belvast.localhost": {"www.belvast.localhost", "belvast.localhost"},
		"localhost":             nil,
		"127.0.0.1":             nil,
		"[::1]":                 nil,
	} {
		if got := parentDomains(host); !slices.Equal(got, want) {
			t.Errorf("parentDomains(%q) = %v, want %v", host, got, want)
		}
	}
}
