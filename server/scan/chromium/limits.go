package chromium

import (
	"unicode/utf8"

	"github.com/chromedp/cdproto/network"
)

// What the scanner keeps of what a page does is bounded, so that a hostile
// page cannot make the scanner's memory or its report grow with it.
const (
	// maxName bounds a name, key, URL or message taken from a page, in
	// bytes.
	maxName = 256
	// maxDialogs bounds the dialogs (and the browser's messages cut)
	// noted for one page.
	maxDialogs = 20
	// maxEntries bounds the cookies, the storage keys and the hosts of
	// third-party requests a profile keeps; the report says how many more
	// there were.
	maxEntries = 1000
	// maxInternal bounds what the scanner keeps to make sense of events:
	// requests in flight, their URLs, who set which cookie.
	maxInternal = 4096
	// maxOrigins bounds the origins of one page's frames whose storage is
	// read.
	maxOrigins = 32
)

// What did not fit, in the words of the report.
const (
	cutCookies  = "cookies"
	cutStorage  = "storage keys"
	cutRequests = "hosts of third-party requests"
	cutTags     = "pages with late Google tags"
)

// clip cuts s to at most n bytes, on a character boundary, marking the cut
// with "…".
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	i := n - len("…")
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i] + "…"
}

// recent maps the latest n requests to their URLs: a page can make any
// number of requests, and a response's cookies come soon after its
// request.
type recent struct {
	urls  map[network.RequestID]string
	order []network.RequestID // a ring: next is the oldest
	next  int
}

func newRecent(n int) *recent {
	return &recent{urls: map[network.RequestID]string{}, order: make([]network.RequestID, 0, n)}
}

func (r *recent) put(id network.RequestID, u string) {
	if _, ok := r.urls[id]; ok {
		r.urls[id] = u
		return
	}
	if len(r.order) < cap(r.order) {
		r.order = append(r.order, id)
	} else {
		delete(r.urls, r.order[r.next])
		r.order[r.next] = id
		r.next = (r.next + 1) % len(r.order)
	}
	r.urls[id] = u
}

func (r *recent) get(id network.RequestID) (string, bool) {
	u, ok := r.urls[id]
	return u, ok
}
