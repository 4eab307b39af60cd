package export

import (
	"bufio"
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/koekje/koekje/server/consent"
)

// The hand-written NDJSON writer says exactly what encoding/json says of an
// record's Line, awkward strings included.
func TestNDJSONMatchesEncodingJSON(t *testing.T) {
	logIndex := int64(41)
	recs := []*consent.Record{
		{RecordID: uuid.New(), ConsentID: uuid.New(), Site: "demo", Seq: 7, RecordedAt: time.Date(2026, 1, 2, 3, 4, 5, 123456000, time.UTC),
			Action: "custom", Choices: map[string]bool{"necessary": true, "b": false, "a": true}, Services: []string{"youtube", "maps"},
			Revision: 3, ConfigHash: "sha256:ab", Language: "nl", URL: "https://x.nl/<script>&\"q\"", UserAgent: "Ünïcode \u2028 \x01 \xff",
			IP: "2001:db8::/48", GPC: true, PrevHash: []byte{1, 2}, Hash: []byte{3}, LogIndex: &logIndex, LogSalt: []byte{0xab, 0xcd}},
		{RecordID: uuid.New(), ConsentID: uuid.New(), Site: "s", RecordedAt: time.Unix(0, 0).UTC(), Action: "reject_all",
			Choices: map[string]bool{}, Language: "en"},
	}
	for _, r := range recs {
		var got bytes.Buffer
		e := &ndjsonExporter{w: bufio.NewWriter(&got)}
		if err := e.Write(r); err != nil {
			t.Fatal(err)
		}
		e.Close()
		want, _ := json.Marshal(Line{r.ConsentID, View(r)})
		if got.String() != string(want)+"\n" {
			t.Errorf("got  %s\nwant %s", got.String(), want)
		}
	}
}
