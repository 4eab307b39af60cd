package server_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

// logLines returns the JSON log lines whose message starts with prefix.
func logLines(logs *syncBuffer, prefix string) []map[string]any {
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(l), &m) == nil && strings.HasPrefix(fmt.Sprint(m["msg"]), prefix) {
			out = append(out, m)
		}
	}
	return out
}

// A choice refused for its origin is loud: a WARN naming site and origin
// (once, not once per visitor), a metric per site, and a line on the
// site's console page.
func TestRefusedOriginIsLoud(t *testing.T) {
	t.Parallel()
	var logs syncBuffer
	s := newServerWith(t, func(d *serverDeps) { d.Log = slog.New(slog.NewJSONHandler(&logs, nil)) })
	for range 3 {
		r := post(t, s, `{"site":"demo","action":"accept_all"}`, "Origin", "https://www.forgotten.example")
		if r.status != 403 {
			t.Fatalf("status %d, want 403: %s", r.status, r.body)
		}
	}
	warned := logLines(&logs, "choice refused")
	if len(warned) != 1 {
		t.Fatalf("%d log lines for three refusals from one origin, want 1: %v", len(warned), warned)
	}
	if w := warned[0]; w["level"] != "WARN" || w["site"] != "demo" || w["origin"] != "https://www.forgotten.example" {
		t.Errorf("log line %v, want a WARN naming site demo and the origin", w)
	}
	post(t, s, `{"site":"demo","action":"accept_all"}`, "Origin", "https://other.example")
	if n := len(logLines(&logs, "choice refused")); n != 2 {
		t.Errorf("%d log lines after a second origin, want 2", n)
	}

	m := do(t, s, "GET", "/metrics", "", "Authorization", "Bearer "+adminToken)
	if want := `koekje_consents_refused_origin_total{site="demo"} 4`; !bytes.Contains(m.body, []byte(want)) {
		t.Errorf("metrics lack %s", want)
	}

	b := newBrowser(t, s)
	b.signIn()
	_, page := b.get("/admin/sites/demo")
	for _, want := range []string{
		"3 choices refused from <code>https://www.forgotten.example</code> in the last 24 hours",
		"1 choice refused from <code>https://other.example</code> in the last 24 hours",
	} {
		if !strings.Contains(page, want) {
			t.Errorf("site page lacks %q", want)
		}
	}
}
