// Package scan is the scanner's report model: what a scan of a site saw in
// five fresh profiles — before any choice, after "reject all", after
// "accept all", after withdrawing consent and with Global Privacy Control —
// and how that is held against the site's configuration (Check), judged
// (Verdict) and written (text, JSON, JUnit). It knows no browser: package
// chromium drives one and fills in the profiles, so that what reads and
// shows reports (the console, the stores) links no browser driver.
package scan

import (
	"time"
)

// The profiles.
const (
	Before   = "before"   // before any choice
	Rejected = "rejected" // after "reject all"
	Accepted = "accepted" // after "accept all"
	// Withdrawn: after "accept all", then every category switched off and
	// saved in the banner's settings, opened as a visitor opens them.
	Withdrawn = "withdrawn"
	// GPC: a browser that sends Global Privacy Control (the Sec-GPC: 1
	// header, navigator.globalPrivacyControl), a refusal; it clicks
	// nothing.
	GPC = "gpc"
)

// ProfileNames are the profiles in the order of a report.
var ProfileNames = [...]string{Before, Rejected, Accepted, Withdrawn, GPC}

// Cookie is a cookie the browser held after a page.
type Cookie struct {
	Name   string `json:"name"`
	Domain string `json:"domain"`
	Path   string `json:"path"`
	// Expires is empty for a session cookie; Lifetime is what was left of
	// it when the scanner first saw it, in seconds (0 for a session cookie).
	Expires  *time.Time `json:"expires,omitempty"`
	Lifetime int64      `json:"lifetime_seconds"`
	// Asked is the lifetime its setter asked for (Max-Age or Expires), in
	// seconds, when the scanner saw the write: Chromium keeps a cookie at
	// most 400 days, whatever it asks.
	Asked      *int64 `json:"asked_lifetime_seconds,omitempty"`
	ThirdParty bool   `json:"third_party"`
	// SetBy is "header" (a Set-Cookie response header), "script"
	// (document.cookie or cookieStore) or "" when the browser did not say.
	SetBy  string `json:"set_by,omitempty"`
	Source string `json:"source,omitempty"` // the response or script that set it
	Page   string `json:"page"`             // the page after which it was first seen
}

// StorageKey is a localStorage or sessionStorage key.
type StorageKey struct {
	Area   string `json:"area"` // localStorage or sessionStorage
	Origin string `json:"origin"`
	Key    string `json:"key"`
	Source string `json:"source,omitempty"` // the script that wrote it, when seen
	Page   string `json:"page"`
}

// Request is the first request to a host of another site than the page's.
type Request struct {
	URL       string `json:"url"`
	Type      string `json:"type,omitempty"`      // Document, Script, Image, …
	Initiator string `json:"initiator,omitempty"` // the script or document that made it
	Page      string `json:"page"`
	Count     int    `json:"count"` // the requests to the host
}

// Tag is a Google tag that ran on a page before the page's first Consent
// Mode default ("consent", "default"): a config or event command in its
// dataLayer, or a collection request of a Google tag.
type Tag struct {
	Page string `json:"page"`
	// What is the command (gtag config G-…) or the request's URL.
	What   string `json:"what"`
	Source string `json:"source,omitempty"` // the script that gave it, when seen
	Count  int    `json:"count"`            // the late commands and requests on the page
}

// Banner is what the first layer of the banner offered on a page.
type Banner struct {
	Page   string `json:"page"`
	Shown  bool   `json:"shown"`
	Lang   string `json:"lang,omitempty"`
	Accept bool   `json:"accept"` // an "accept all" button in the page's language
	Reject bool   `json:"reject"` // a "reject all" button, on the first layer
}

// Outcomes of a visit.
const (
	StatusScanned = "scanned"
	StatusError   = "error" // the page could not be scanned
)

// Visit is what became of one page of a profile.
type Visit struct {
	Page string `json:"page"`
	// Choice marks the visit of the first page on which a choice profile
	// clicked its button.
	Choice     bool    `json:"choice,omitempty"`
	Status     string  `json:"status"` // StatusScanned or StatusError
	Error      string  `json:"error,omitempty"`
	HTTPStatus int     `json:"http_status,omitempty"`
	Seconds    float64 `json:"seconds"`
	// Dialogs are the JavaScript dialogs the page opened, which the
	// scanner dismissed: "alert \"text\"", …
	Dialogs []string `json:"dialogs,omitempty"`
	// Downloads are the downloads the page started, which the scanner
	// refused: "<url> (refused)".
	Downloads []string `json:"downloads,omitempty"`
	// Cut are the browser's messages about the page too large to read:
	// the scanner may have missed what they said.
	Cut []string `json:"cut,omitempty"`
}

// Profile is what one profile saw: in Rejected and Accepted, only what
// happened from the click on; in Withdrawn, from the withdrawal on.
type Profile struct {
	Name string `json:"name"`
	// Pages are the pages scanned; Visits every page tried, with what
	// became of it.
	Pages    []string     `json:"pages"`
	Visits   []Visit      `json:"visits"`
	Cookies  []Cookie     `json:"cookies"`
	Storage  []StorageKey `json:"storage"`
	Requests []Request    `json:"third_party_requests"`
	Banners  []Banner     `json:"banners,omitempty"` // Before and GPC only
	// Tags are the Google tags that ran before the page's Consent Mode
	// defaults, one per page.
	Tags []Tag `json:"late_tags,omitempty"`
	// ConsentPOSTs counts the banner's POSTs the scanner answered.
	ConsentPOSTs int `json:"consent_posts"`
	// Cut says what did not fit in the profile's record: "cookies: 1000
	// kept, 12 more not", …
	Cut []string `json:"cut,omitempty"`
}
