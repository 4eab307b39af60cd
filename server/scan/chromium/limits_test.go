package chromium

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"

	"github.com/koekje/koekje/config"
	"github.com/koekje/koekje/server/scan"
)

// A page that makes more than the scanner keeps leaves it with no more,
// and the report says how much more there was.
func TestSessionBounds(t *testing.T) {
	s := newSession(&Options{Site: config.Demo().Sites[0]}, nil, scan.Before, context.Background(), nil)
	s.page = "http://www.example.test/"
	long := strings.Repeat("l", 2000)
	for i := range 6000 {
		s.listen(&network.EventRequestWillBeSent{RequestID: network.RequestID(fmt.Sprint(i)),
			Request: &network.Request{URL: fmt.Sprintf("https://h%d.tracker.test/%s", i%1100, long)}})
		s.listen(&runtime.EventBindingCalled{Name: "__koekjeScan",
			Payload: fmt.Sprintf(`{"kind":"cookie","value":"c%d%s=; max-age=60","source":%q}`, i, long, "https://x.test/"+long)})
		if i < 1100 {
			s.listen(&runtime.EventBindingCalled{Name: "__koekjeScan",
				Payload: fmt.Sprintf(`{"kind":"storage","area":"localStorage","origin":"https://www.example.test","key":"k%d%s"}`, i, long)})
		}
	}
	var cookies []*network.Cookie
	for i := range 1100 {
		cookies = append(cookies, &network.Cookie{Name: fmt.Sprintf("c%d%s", i, long), Domain: "www.example.test", Path: "/"})
	}
	p := &scan.Profile{}
	seen := map[string]bool{}
	s.recordCookies(p, seen, s.page, cookies)
	s.recordCookies(p, seen, s.page, cookies) // a second look counts nothing twice

	if len(s.requests) != 1000 || s.cut[cutRequests] != 100 || s.requests[0].Count != 6 {
		t.Errorf("%d hosts of requests (the first %d times), %d cut; want 1000 (6 times), 100", len(s.requests), s.requests[0].Count, s.cut[cutRequests])
	}
	if len(s.storage) != 1000 || s.cut[cutStorage] != 100 {
		t.Errorf("%d storage keys, %d cut; want 1000, 100", len(s.storage), s.cut[cutStorage])
	}
	if len(p.Cookies) != 1000 || s.cut[cutCookies] != 100 {
		t.Errorf("%d cookies, %d cut; want 1000, 100", len(p.Cookies), s.cut[cutCookies])
	}
	if len(s.urls.urls) != maxInternal || len(s.inflight) != maxInternal || len(s.setters) != maxInternal {
		t.Errorf("%d URLs, %d requests in flight, %d setters kept; want %d of each", len(s.urls.urls), len(s.inflight), len(s.setters), maxInternal)
	}
	// The latest requests' URLs are the ones kept.
	if _, ok := s.urls.get("5999"); !ok {
		t.Error("the latest request's URL was not kept")
	}
	if _, ok := s.urls.get("0"); ok {
		t.Error("the first request's URL was kept")
	}
	for _, v := range []string{s.requests[0].URL, p.Cookies[0].Name, p.Cookies[0].Source, s.requests[0].Page} {
		if len(v) > maxName {
			t.Errorf("%d bytes kept of %.40q…", len(v), v)
		}
	}
	for _, k := range s.storage {
		if len(k.Key) > maxName {
			t.Errorf("storage key of %d bytes", len(k.Key))
		}
		break
	}
}

func TestClip(t *testing.T) {
	for _, tc := range []struct {
		in   string
		n    int
		want string
	}{
		{"short", 10, "short"},
		{"exactly10!", 10, "exactly10!"},
		{"a longer string", 10, "a longe…"},
		{"ééééé", 8, "éé…"}, // never half a character
	} {
		if got := clip(tc.in, tc.n); got != tc.want || len(got) > tc.n {
			t.Errorf("clip(%q, %d) = %q, want %q", tc.in, tc.n, got, tc.want)
		}
	}
}
