package e2e

import (
	"testing"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
)

// withADPC makes the browser send an ADPC header with every request, as a
// browser that speaks ADPC does.
func withADPC(value string) tabOption {
	return func(tb *tab) error {
		if _, err := chromedp.Call(tb.ctx, network.Enable, network.EnableParams{}); err != nil {
			return err
		}
		_, err := chromedp.Call(tb.ctx, network.SetExtraHTTPHeaders, network.SetExtraHTTPHeadersParams{Headers: network.Headers{"ADPC": value}})
		return err
	}
}

// A browser's ADPC withdrawal reaches the page the visitor accepts all on:
// the record names the header and the signal that cut the choice down, and
// the banner applies what the server kept, which it records too (the
// header then changes nothing). The banner's POST goes to another origin
// than the page's, so the header passes the CORS preflight too.
func TestADPCWithdrawalApplied(t *testing.T) {
	t.Parallel()
	tb := newTab(t, withADPC("withdraw=analytics.r1"))
	tb.open("/?noembeds=1&nodecl=1")
	tb.click(button("Alles accepteren"))
	tb.waitFor(`koekje.allowed('functional') && !koekje.allowed('analytics')`)
	id := tb.consentID()
	waitRecords(t, 1, `consent_id = ? AND action = 'accept_all' AND signal = 'adpc' AND adpc = 'withdraw=analytics.r1' AND choices LIKE '%"analytics":false%'`, id[:])
	waitRecords(t, 1, `consent_id = ? AND action = 'custom' AND signal = 'none' AND adpc = 'withdraw=analytics.r1' AND choices LIKE '%"analytics":false%' AND choices LIKE '%"functional":true%'`, id[:])
}
