package export

import (
	"bytes"
	"encoding/csv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/koekje/koekje/config"
	"github.com/koekje/koekje/server/consent"
)

// A visitor's user agent or page URL never becomes a live formula in a
// spreadsheet: cells starting with =, +, -, @, tab or CR are made inert.
func TestCSVCellsAreInert(t *testing.T) {
	site := config.Demo().Site("demo")
	for _, ua := range []string{`=HYPERLINK("https://evil.example","x")`, "+cmd|' /C calc'!A0", "@SUM(1+1)", "-1+1", "\t=1", "\r=1"} {
		var out bytes.Buffer
		w, err := New("csv", site, &out)
		if err != nil {
			t.Fatal(err)
		}
		r := &consent.Record{RecordID: uuid.New(), ConsentID: uuid.New(), Site: "demo", RecordedAt: time.Now(), Action: consent.RejectAll,
			Choices: map[string]bool{}, UserAgent: ua, URL: ua}
		if err := w.Write(r); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		rows, err := csv.NewReader(&out).ReadAll()
		if err != nil || len(rows) != 2 {
			t.Fatalf("%q: %v %v", ua, err, rows)
		}
		for i, h := range rows[0] {
			if h == "user_agent" || h == "url" {
				// encoding/csv reads a CR inside a quoted cell as nothing.
				if got, want := rows[1][i], "'"+strings.ReplaceAll(ua, "\r", ""); got != want {
					t.Errorf("%s cell %q, want %q", h, got, want)
				}
			}
		}
	}
}
