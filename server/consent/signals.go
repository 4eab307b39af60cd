package consent

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
}

// ApplySignals records the browser's signals on rec, which Validate made
// from the POST's body, and names the one that decided. Global Privacy
// Control without an explicit choice is a refusal: the banner sends it as
// reject_all, quietly, and so does a client that only forwards the
// signal; rec is then decided by GPC, the page's reading before the
// header's. An explicit choice that grants something while GPC is on
// stands, and is recorded with the signal beside it.
func ApplySignals(rec *Record, sig BrowserSignals) {
	rec.Encoding = EncodingV2
	rec.GPCHeader = sig.GPCHeader
	rec.Signal = SignalNone
	if rec.Action == RejectAll {
		switch {
		case rec.GPC:
			rec.Signal = SignalGPCPage
		case rec.GPCHeader:
			rec.Signal = SignalGPCHeader
		}
	}
}
