package export

import (
	"bytes"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/koekje/koekje/config"
	"github.com/koekje/koekje/server/consent"
)

// A visitor's user agent or page URL never becomes a live formula in a
// spreadsheet: cells starting with =, +, -, @, tab, CR or LF are made
// inert with an apostrophe; one that starts with an apostrophe gets one
// more, so the reader gives back exactly what was recorded, CR included.
func TestCSVCellsAreInert(t *testing.T) {
	site := config.Demo().Site("demo")
	for _, ua := range []string{`=HYPERLINK("https://evil.example","x")`, "+cmd|' /C calc'!A0", "@SUM(1+1)", "-1+1", "\t=1", "\r=1", "\n=1",
		"'", "'quoted", "''", "plain", "a;b,c\r\nd"} {
		for _, sep := range []byte{',', ';'} {
			var out bytes.Buffer
			w, err := NewWith("csv", site, &out, Options{Separator: sep, BOM: sep == ';'})
			if err != nil {
				t.Fatal(err)
			}
			r := &consent.Record{RecordID: uuid.New(), ConsentID: uuid.New(), Site: "demo", Seq: 1, RecordedAt: time.Now().UTC(), Action: consent.RejectAll,
				Choices: map[string]bool{"necessary": true, "retired": false}, UserAgent: ua, URL: ua}
			r.Hash = consent.RecordHash(r)
			if err := w.Write(r); err != nil {
				t.Fatal(err)
			}
			if err := w.End(NewSummary(consent.Filter{Site: "demo"}, nil)); err != nil {
				t.Fatal(err)
			}
			raw, err := NewReader(bytes.NewReader(out.Bytes()))
			if err != nil {
				t.Fatal(err)
			}
			cells, err := raw.row()
			if err != nil {
				t.Fatal(err)
			}
			guarded := strings.IndexByte("=+-@\t\r\n'", ua[0]) >= 0
			if cell := cells[raw.columns["user_agent"]]; (cell == "'"+ua) != guarded || (cell == ua) == guarded {
				t.Errorf("%q: written as %q", ua, cell)
			}
			rd, err := NewReader(&out)
			if err != nil {
				t.Fatal(err)
			}
			got, err := rd.Next()
			if err != nil {
				t.Fatalf("%q: %v", ua, err)
			}
			if got.UserAgent != ua || got.URL != ua || !bytes.Equal(consent.RecordHash(got), r.Hash) {
				t.Errorf("%q (%c): read back as %q, %q", ua, sep, got.UserAgent, got.URL)
			}
			if _, err := rd.Next(); err != io.EOF || rd.Summary() == nil || rd.Summary().Records != 1 {
				t.Errorf("%q: the summary: %v %+v", ua, err, rd.Summary())
			}
		}
	}
}

// Revert refuses an apostrophe the guard did not write, so a changed
// escaping is named rather than rehashed as a guess.
func TestRevert(t *testing.T) {
	for _, tt := range []struct {
		in, out string
		ok      bool
	}{
		{"plain", "plain", true}, {"", "", true}, {"'=1", "=1", true}, {"''x", "'x", true}, {"''", "'", true},
		{"=1", "", false}, {"'x", "", false}, {"'", "", false}, {"'''", "''", true},
	} {
		out, ok := Revert(tt.in)
		if ok != tt.ok || (ok && out != tt.out) {
			t.Errorf("Revert(%q) = %q, %v", tt.in, out, ok)
		}
		if ok && Inert(out) != tt.in {
			t.Errorf("Inert(Revert(%q)) = %q", tt.in, Inert(out))
		}
	}
}
