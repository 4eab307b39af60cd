package chromium

import (
	"net/url"
	"testing"
	"time"
)

func TestAskedLifetime(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for line, want := range map[string]int64{
		"_ga=1; max-age=63072000; path=/": 63072000,
		"_ga=1; Path=/; Max-Age=0":        0,
		"a=b":                             0,
		"a=b; Expires=Fri, 01 Jan 2027 00:00:00 GMT; Path=/": 365 * 86400,
		"a=b; expires=yesterday":                             -1,
	} {
		if got := askedLifetime(line, now); got != want {
			t.Errorf("%q: %d, want %d", line, got, want)
		}
	}
}

func TestGoogleCollect(t *testing.T) {
	for u, want := range map[string]bool{
		"https://www.google-analytics.com/g/collect?v=2&tid=G-X1":            true,
		"https://region1.google-analytics.com/g/collect?v=2&tid=G-X1":        true,
		"https://www.google-analytics.com/collect?v=1&tid=UA-1-1":            true,
		"https://stats.g.doubleclick.net/g/collect?v=2&tid=G-X1":             true,
		"https://analytics.google.com/g/collect?v=2&tid=G-X1":                true,
		"https://www.shop.test/metrics/g/collect?v=2&tid=G-X1":               false, // not the path a server-side tag serves
		"https://sgtm.shop.test/g/collect?v=2&tid=G-X1":                      true,  // a first-party server-side tag
		"https://googleads.g.doubleclick.net/pagead/viewthroughconversion/1": true,
		"https://www.googleadservices.com/pagead/conversion/1/":              true,
		"https://www.google.com/pagead/1p-user-list/1/":                      true,
		"https://www.googletagmanager.com/gtag/js?id=G-X1":                   false, // the library, not a hit
		"https://www.googletagmanager.com/gtm.js?id=GTM-X1":                  false,
		"https://www.shop.test/collect":                                      false,
		"https://notgoogle-analytics.com/g/collect?v=2":                      false,
		"https://www.google.com/search?q=collect":                            false,
	} {
		p, err := url.Parse(u)
		if err != nil {
			t.Fatal(err)
		}
		if got := googleCollect(p); got != want {
			t.Errorf("googleCollect(%s) = %v, want %v", u, got, want)
		}
	}
}
