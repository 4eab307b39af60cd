package consent

import (
	"slices"

	"github.com/koekje/koekje/config"
)

// The signals that can decide a record's choice (Record.Signal, from
// koekje-record-v2 on).
const (
	// SignalNone: the visitor's own choice in the banner decided, whatever
	// the browser signalled beside it (an explicit choice stands).
	SignalNone = "none"
	// SignalGPCPage: the page read Global Privacy Control
	// (navigator.globalPrivacyControl) and the banner refused for it.
	SignalGPCPage = "gpc-page"
	// SignalGPCHeader: the POST carried Sec-GPC: 1 and refused, without
	// the page's reading.
	SignalGPCHeader = "gpc-header"
	// SignalADPC: the POST's ADPC header withdrew consent or objected, and
	// a purpose the banner's choice granted was refused for it.
	SignalADPC = "adpc"
)

// Signals are the values Record.Signal may take.
var Signals = []string{SignalNone, SignalGPCPage, SignalGPCHeader, SignalADPC}

// ValidSignal reports whether s is one of Signals.
func ValidSignal(s string) bool {
	switch s {
	case SignalNone, SignalGPCPage, SignalGPCHeader, SignalADPC:
		return true
	}
	return false
}

// BrowserSignals are what the browser said on a consent POST besides the
// body: the page's own GPC reading travels in the body (Request.GPC).
type BrowserSignals struct {
	GPCHeader bool // Sec-GPC: 1
	// ADPC is the ADPC header's values as sent; nil without one.
	ADPC []string
}

// ApplySignals records the browser's signals on rec, which Validate made
// from the POST's body for site, and names the one that decided.
//
// An ADPC header that withdraws consent (to one of the site's requests, or
// to everything with *) or objects to direct marketing is honoured as a
// refusal: the purposes it names (every optional category, for * and for
// the objection, since Koekje cannot tell which of a site's purposes serve
// direct marketing) are refused, with the services granted under them,
// whatever the banner's choice granted; rec is then decided by ADPC. An
// ADPC consent is taken only as the specification and the site's
// configuration (adpc.consent, off by default) both allow: to a current
// request, not withdrawn in the same header and without GPC in the same
// request (conflicting expressions are no unambiguous consent). Even then
// it only keeps what the visitor granted in the banner from the same
// header's general withdrawal (a specific signal prevails over a general
// one); it never grants what the banner's choice refused. A header Koekje
// cannot read decides nothing and is recorded as ADPCInvalid.
//
// Global Privacy Control without an explicit choice is a refusal: the
// banner sends it as reject_all, quietly, and so does a client that only
// forwards the signal; rec is then decided by GPC, the page's reading
// before the header's. An explicit choice that grants something while GPC
// is on stands, and is recorded with the signal beside it.
func ApplySignals(rec *Record, site *config.Site, sig BrowserSignals) {
	rec.Encoding = EncodingV2
	rec.GPCHeader = sig.GPCHeader
	rec.Signal = SignalNone
	if sig.ADPC != nil {
		a, err := ParseADPC(sig.ADPC)
		if err != nil {
			rec.ADPC = ADPCInvalid
		} else {
			a = a.ForSite(site)
			rec.ADPC = a.String()
			if refuseForADPC(rec, site, a) {
				rec.Signal = SignalADPC
				return
			}
		}
	}
	if rec.Action == RejectAll {
		switch {
		case rec.GPC:
			rec.Signal = SignalGPCPage
		case rec.GPCHeader:
			rec.Signal = SignalGPCHeader
		}
	}
}

// refuseForADPC refuses in rec what a, read for site, withdraws or objects
// to, and reports whether that changed rec's choice.
func refuseForADPC(rec *Record, site *config.Site, a ADPC) bool {
	all := slices.Contains(a.Withdraw, "*") || slices.Contains(a.Object, ObjectDirectMarketing)
	gpc := rec.GPC || rec.GPCHeader
	changed := false
	refused := map[string]bool{}
	for _, c := range site.Categories {
		if c.Required {
			continue
		}
		id := RequestID(c.ID, site.Revision)
		withdrawn := slices.Contains(a.Withdraw, id)
		taken := site.ADPC.Consent && slices.Contains(a.Consent, id) && !withdrawn && !gpc
		if withdrawn || all && !taken {
			refused[c.ID] = true
			if rec.Choices[c.ID] {
				rec.Choices[c.ID] = false
				changed = true
			}
		}
	}
	kept := rec.Services[:0:0]
	for _, id := range rec.Services {
		if sv := site.Service(id); sv != nil && refused[sv.Category] {
			changed = true
			continue
		}
		kept = append(kept, id)
	}
	if len(kept) == 0 {
		kept = nil
	}
	rec.Services = kept
	return changed
}

// GPCOverridden reports whether rec, made for site, is an explicit choice
// that grants something while the browser sent Global Privacy Control (the
// page's reading or the header): the visitor's choice stood over the
// signal, and the banner tells them so.
func GPCOverridden(rec *Record, site *config.Site) bool {
	if rec.Signal != SignalNone || !rec.GPC && !rec.GPCHeader {
		return false
	}
	if len(rec.Services) > 0 {
		return true
	}
	for _, c := range site.Categories {
		if !c.Required && rec.Choices[c.ID] {
			return true
		}
	}
	return false
}
