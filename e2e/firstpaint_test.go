package e2e

import (
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
)

// phoneRTT is the emulated phone's round trip; a new origin costs three
// of them before its first request (DNS, TCP, TLS 1.3).
const phoneRTT = 165 * time.Millisecond

// BenchmarkFirstPartyFirstPaint loads one page on an emulated phone (390×844,
// CPU ×4) with the banner through the site's own proxy (first-party mode)
// and from Koekje's own origin, in turns, each load in a new browser
// context: a cold cache and no open connection. Browser-side network
// emulation delays requests but not connections, so the network is
// emulated below the browser: every connection, to the site or to Koekje,
// waits three round trips of 165 ms before it is made (a phone's DNS
// look-up and TCP and TLS handshakes), and every request one round trip.
// It logs the medians of first paint, first contentful paint and the
// banner's entry into the page, in ms after navigation start.
//
//	go test ./e2e -run '^$' -bench FirstPartyFirstPaint -benchtime 1x
func BenchmarkFirstPartyFirstPaint(b *testing.B) {
	fp := startFirstParty(b)
	site := slowLink(b, strings.TrimPrefix(fp.site, "http://"+fpHost+":"))
	consent := slowLink(b, strings.TrimPrefix(fp.koekje, "http://127.0.0.1:"))
	// The same page, with the banner from Koekje's origin under a name of
	// its own, as consent.example.nl is.
	html, err := os.ReadFile(filepath.Join(fp.files, "direct.html"))
	if err != nil {
		b.Fatal(err)
	}
	html = []byte(strings.Replace(string(html), fp.koekje, "http://consent.belvast.localhost:"+consent, 1))
	if err := os.WriteFile(filepath.Join(fp.files, "elsewhere.html"), html, 0o644); err != nil {
		b.Fatal(err)
	}
	pages := []struct{ name, path string }{{"first-party", "/"}, {"Koekje's origin", "/elsewhere.html"}}
	rounds := 9
	results := make([][][3]float64, len(pages))
	for r := range rounds {
		for j := range pages {
			i := (r + j) % len(pages)
			results[i] = append(results[i], paintRun(b, fmt.Sprintf("http://%s:%s%s", fpHost, site, pages[i].path)))
		}
	}
	b.Logf("phone (390×844, CPU ×4, RTT %s, 3 RTT a new connection), %d cold loads each, median/fastest, ms after navigation start:", phoneRTT, rounds)
	b.Logf("| %-16s | %11s | %24s | %15s |", "banner from", "first paint", "first contentful paint", "banner in page")
	for i, p := range pages {
		col := func(k int) string {
			var v []float64
			for _, r := range results[i] {
				v = append(v, r[k])
			}
			return fmt.Sprintf("%.0f/%.0f", median(v), slices.Min(v))
		}
		b.Logf("| %-16s | %11s | %24s | %15s |", p.name, col(0), col(1), col(2))
	}
}

// paintRun loads url once on the emulated phone and returns its first
// paint, first contentful paint and the banner's entry into the page.
func paintRun(b *testing.B, url string) [3]float64 {
	tb := newTab(b, func(tb *tab) error {
		_, err := chromedp.Call(tb.ctx, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: `
window.shown = 0;
new MutationObserver((ms, o) => { if (document.querySelector('koekje-banner')) { shown = performance.now(); o.disconnect() } })
  .observe(document, {childList: true, subtree: true});`})
		return err
	})
	tb.do(chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile))
	if _, err := chromedp.Call(tb.ctx, emulation.SetCPUThrottlingRate, emulation.SetCPUThrottlingRateParams{Rate: 4}); err != nil {
		b.Fatal(err)
	}
	tb.do(chromedp.Navigate(url))
	tb.waitFor(`window.shown > 0 && performance.getEntriesByType('paint').length === 2`)
	v := eval[[]float64](tb, `[...performance.getEntriesByType('paint').map(e => e.startTime), shown]`)
	if len(v) != 3 {
		b.Fatalf("paint entries %v", v)
	}
	return [3]float64(v)
}

// slowLink listens on a loopback port and forwards to the port target on
// 127.0.0.1 as a phone's network would: each new connection waits three
// round trips, and each chunk the browser sends one, before it goes on.
// It returns its port.
func slowLink(b *testing.B, target string) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				time.Sleep(3 * phoneRTT)
				up, err := net.Dial("tcp", "127.0.0.1:"+target)
				if err != nil {
					return
				}
				defer up.Close()
				go io.Copy(c, up)
				buf := make([]byte, 32<<10)
				for {
					n, err := c.Read(buf)
					if n > 0 {
						time.Sleep(phoneRTT)
						if _, err := up.Write(buf[:n]); err != nil {
							return
						}
					}
					if err != nil {
						return
					}
				}
			}()
		}
	}()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	return port
}
