package consent_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/koekje/koekje/server/consent"
)

func sample() *consent.Record {
	return &consent.Record{
		RecordID: uuid.Must(uuid.NewV7()), ConsentID: uuid.New(), Site: "demo", Seq: 12345,
		RecordedAt: time.Now(), Action: consent.Custom,
		Choices:  map[string]bool{"necessary": true, "functional": true, "analytics": false, "embeds": false},
		Revision: 1, ConfigHash: "sha256:" + string(bytes.Repeat([]byte("a"), 64)), Language: "nl",
		URL: "https://belvast.example/contact", UserAgent: "Mozilla/5.0 (X11; Linux x86_64) Chrome/156.0.0.0",
		IP: "203.0.113.0/24", PrevHash: bytes.Repeat([]byte{1}, 32),
	}
}

// Every field is covered: changing any one changes the hash.
func TestRecordHashCoversEveryField(t *testing.T) {
	base := sample()
	h := consent.RecordHash(base)
	edits := map[string]func(r *consent.Record){
		"record_id":   func(r *consent.Record) { r.RecordID = uuid.New() },
		"consent_id":  func(r *consent.Record) { r.ConsentID = uuid.New() },
		"site":        func(r *consent.Record) { r.Site = "other" },
		"recorded_at": func(r *consent.Record) { r.RecordedAt = r.RecordedAt.Add(time.Microsecond) },
		"action":      func(r *consent.Record) { r.Action = consent.AcceptAll },
		"choice": func(r *consent.Record) {
			r.Choices = map[string]bool{"necessary": true, "functional": true, "analytics": true, "embeds": false}
		},
		"services":    func(r *consent.Record) { r.Services = []string{"youtube"} },
		"revision":    func(r *consent.Record) { r.Revision = 2 },
		"config_hash": func(r *consent.Record) { r.ConfigHash += "0" },
		"language":    func(r *consent.Record) { r.Language = "en" },
		"url":         func(r *consent.Record) { r.URL += "x" },
		"user_agent":  func(r *consent.Record) { r.UserAgent += "x" },
		"ip":          func(r *consent.Record) { r.IP = "203.0.114.0/24" },
		"gpc":         func(r *consent.Record) { r.GPC = true },
		"prev_hash":   func(r *consent.Record) { r.PrevHash = bytes.Repeat([]byte{2}, 32) },
		// Shifting bytes between fields must not give the same encoding.
		"boundaries": func(r *consent.Record) { r.Site, r.Action = "dem", "ocustom" },
	}
	for name, edit := range edits {
		r := *base
		edit(&r)
		if bytes.Equal(consent.RecordHash(&r), h) {
			t.Errorf("changing %s keeps the hash", name)
		}
	}
	r := *base
	r.Seq = 1
	if !bytes.Equal(consent.RecordHash(&r), h) {
		t.Error("seq changes the hash; it is only the walking index")
	}
}

func BenchmarkRecordHash(b *testing.B) {
	r := sample()
	b.ReportAllocs()
	for b.Loop() {
		consent.RecordHash(r)
	}
}
