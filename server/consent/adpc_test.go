package consent_test

import (
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/koekje/koekje/config"
	"github.com/koekje/koekje/server/consent"
)

// The ADPC header is read as the specification writes it (one identifier,
// or a quoted list; several decisions and header lines; names in any case;
// unknown decisions left for later versions), and anything else is refused
// whole.
func TestParseADPC(t *testing.T) {
	for _, c := range []struct {
		in   []string
		want string
	}{
		{[]string{`withdraw=*`}, `withdraw=*`},
		{[]string{`consent="q1analytics q2recommendation"`}, `consent="q1analytics q2recommendation"`},
		{[]string{`withdraw=*, object=direct-marketing, consent="b a"`}, `consent="a b", withdraw=*, object=direct-marketing`},
		{[]string{`withdraw=q2, consent=q1`, `Withdraw=q3`}, `consent=q1, withdraw="q2 q3"`},
		{[]string{`consent=`, `consent=""`, ``, ` , `}, ``},
		{[]string{`consent="a  a"`, `consent=a`}, `consent=a`},
		{[]string{`later=something, withdraw=*`}, `withdraw=*`},
		{[]string{`consent=https://iab.com/tcf2/ns/#purpose1`}, `consent=https://iab.com/tcf2/ns/#purpose1`},
	} {
		a, err := consent.ParseADPC(c.in)
		if err != nil || a.String() != c.want {
			t.Errorf("%q: %q, %v; want %q", c.in, a.String(), err, c.want)
		}
	}
	for _, bad := range [][]string{
		{`withdraw`}, {`consent="a b`}, {`consent=a b`}, {`consent="a"b"`}, {`=a`}, {`con sent=a`},
		{"consent=a\x00"}, {"consent=é"}, {`consent=a\b`}, {strings.Repeat("consent=a, ", 200)},
		{`consent="` + strings.Repeat("a ", 65) + `"`}, {`consent=` + strings.Repeat("a", 257)},
	} {
		if a, err := consent.ParseADPC(bad); err == nil {
			t.Errorf("%q read as %q", bad, a.String())
		}
	}
}

// What a POST's ADPC header does to the banner's choice on the demo site
// (optional categories functional, analytics and embeds, at revision 1;
// YouTube is an embed).
func TestApplySignalsADPC(t *testing.T) {
	all := map[string]bool{"necessary": true, "functional": true, "analytics": true, "embeds": true}
	for _, c := range []struct {
		name        string
		action      string
		gpc         bool
		adpc        []string
		takeConsent bool
		wantADPC    string
		refused     []string
		signal      string
	}{
		{"withdraw all", consent.AcceptAll, false, []string{`withdraw=*`}, false, `withdraw=*`, []string{"analytics", "embeds", "functional"}, consent.SignalADPC},
		{"withdraw one", consent.AcceptAll, false, []string{`withdraw=analytics.r1`}, false, `withdraw=analytics.r1`, []string{"analytics"}, consent.SignalADPC},
		{"object", consent.Custom, false, []string{`object=direct-marketing`}, false, `object=direct-marketing`, []string{"analytics", "embeds", "functional"}, consent.SignalADPC},
		{"another revision's request", consent.AcceptAll, false, []string{`withdraw=analytics.r2, consent=x`}, false, ``, nil, consent.SignalNone},
		{"consent not taken", consent.AcceptAll, false, []string{`withdraw=*, consent=analytics.r1`}, false, `consent=analytics.r1, withdraw=*`, []string{"analytics", "embeds", "functional"}, consent.SignalADPC},
		{"consent taken", consent.AcceptAll, false, []string{`withdraw=*, consent=analytics.r1`}, true, `consent=analytics.r1, withdraw=*`, []string{"embeds", "functional"}, consent.SignalADPC},
		{"consent withdrawn in the same header", consent.AcceptAll, false, []string{`withdraw="* analytics.r1", consent=analytics.r1`}, true, `consent=analytics.r1, withdraw="* analytics.r1"`, []string{"analytics", "embeds", "functional"}, consent.SignalADPC},
		{"consent beside GPC", consent.AcceptAll, true, []string{`withdraw=*, consent=analytics.r1`}, true, `consent=analytics.r1, withdraw=*`, []string{"analytics", "embeds", "functional"}, consent.SignalADPC},
		{"consent never grants", consent.RejectAll, false, []string{`consent="analytics.r1 embeds.r1"`}, true, `consent="analytics.r1 embeds.r1"`, []string{"analytics", "embeds", "functional"}, consent.SignalNone},
		{"a refusal already", consent.RejectAll, true, []string{`withdraw=*`}, false, `withdraw=*`, []string{"analytics", "embeds", "functional"}, consent.SignalGPCPage},
		{"unreadable", consent.AcceptAll, false, []string{`withdraw="*`}, false, consent.ADPCInvalid, nil, consent.SignalNone},
		{"the necessary category", consent.AcceptAll, false, []string{`withdraw=necessary.r1`}, false, ``, nil, consent.SignalNone},
	} {
		site := *config.Demo().Site("demo")
		site.ADPC.Consent = c.takeConsent
		r := &consent.Record{Action: c.action, GPC: c.gpc, Choices: maps.Clone(all), Services: []string{"google-maps", "youtube"}}
		if c.action == consent.RejectAll {
			r.Choices = map[string]bool{"necessary": true, "functional": false, "analytics": false, "embeds": false}
			r.Services = nil
		}
		consent.ApplySignals(r, &site, consent.BrowserSignals{ADPC: c.adpc})
		var refused []string
		for k, v := range r.Choices {
			if !v {
				refused = append(refused, k)
			}
		}
		slices.Sort(refused)
		if r.ADPC != c.wantADPC || !slices.Equal(refused, c.refused) || r.Signal != c.signal || !r.Choices["necessary"] {
			t.Errorf("%s: adpc %q, refused %v, signal %q; want %q, %v, %q", c.name, r.ADPC, refused, r.Signal, c.wantADPC, c.refused, c.signal)
		}
		if slices.Contains(refused, "embeds") && len(r.Services) != 0 {
			t.Errorf("%s: embeds refused, services %v kept", c.name, r.Services)
		}
	}
}

// Whatever a browser sends as ADPC, the parser answers without a panic,
// within its limits, and what it read writes back to itself.
func FuzzParseADPC(f *testing.F) {
	for _, s := range []string{`withdraw=*, object=direct-marketing, consent="q1 q2"`, `consent=`, `consent="a`, "a=\x00", `x=y, "`} {
		f.Add(s, "")
	}
	f.Add(`withdraw=a`, `consent="b c"`)
	f.Fuzz(func(t *testing.T, a, b string) {
		got, err := consent.ParseADPC([]string{a, b})
		if err != nil {
			return
		}
		if n := len(got.Consent) + len(got.Withdraw) + len(got.Object); n > 64 {
			t.Errorf("%d identifiers read", n)
		}
		again, err := consent.ParseADPC([]string{got.String()})
		if err != nil || again.String() != got.String() {
			t.Errorf("%q read as %q, which reads back as %q, %v", []string{a, b}, got.String(), again.String(), err)
		}
	})
}
