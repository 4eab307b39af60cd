package export

import (
	"bytes"
	"io"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/koekje/koekje/config"
	"github.com/koekje/koekje/server/consent"
)

// The reader takes whatever a file holds without panicking, and whatever
// it reads as a record rehashes to what its own encoding says: it never
// makes up a field.
func FuzzReader(f *testing.F) {
	site := config.Demo().Site("demo")
	index := int64(3)
	r := &consent.Record{RecordID: uuid.New(), ConsentID: uuid.New(), Site: "demo", Seq: 2, RecordedAt: time.Date(2026, 1, 2, 3, 4, 5, 6000, time.UTC),
		Action: consent.Custom, Choices: map[string]bool{"necessary": true, "analytics": false, "old": true}, Services: []string{"youtube"},
		Revision: 1, ConfigHash: "sha256:ab", Language: "nl", URL: "=x;\"y\"\r\n", UserAgent: "'ua", IP: "198.51.100.0/24",
		PrevHash: []byte{1}, LogIndex: &index, LogSalt: bytes.Repeat([]byte{2}, 32)}
	r.Hash = consent.RecordHash(r)
	for _, o := range []struct {
		format string
		opts   Options
	}{{"ndjson", Options{}}, {"csv", Options{}}, {"csv", Options{Separator: ';', BOM: true}}} {
		var out bytes.Buffer
		w, _ := NewWith(o.format, site, &out, o.opts)
		w.Write(r)
		w.End(NewSummary(consent.Filter{Site: "demo"}, nil))
		f.Add(out.Bytes())
	}
	f.Add([]byte("record_id;\r\n\"\"\"\r\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		rd, err := NewReader(bytes.NewReader(data))
		if err != nil {
			return
		}
		for range 1000 {
			rec, err := rd.Next()
			if err != nil {
				if err == io.EOF && rd.Summary() == nil {
					t.Fatal("io.EOF without a summary")
				}
				return
			}
			back, err := consent.DecodeRecord(consent.RecordEncoding(rec))
			if err != nil || !bytes.Equal(consent.RecordHash(back), consent.RecordHash(rec)) {
				t.Fatalf("a record read does not survive its own encoding: %v", err)
			}
		}
	})
}
