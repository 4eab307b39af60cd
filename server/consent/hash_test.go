package consent_test

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/koekje/koekje/config"
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

// Link makes a record the next of its chain: a minted consent ID for a
// first choice, the head's time when the clock ran back, the link and the
// hash over all of it.
func TestLink(t *testing.T) {
	ids, err := consent.NewIDs(bytes.Repeat([]byte{1}, 16))
	if err != nil {
		t.Fatal(err)
	}
	headAt := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	prev := bytes.Repeat([]byte{9}, 32)
	r := sample()
	r.ConsentID = uuid.Nil
	key, err := consent.Link(r, ids, uuid.NewV7, 41, prev, headAt, headAt.Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if r.Seq != 42 || !bytes.Equal(r.PrevHash, prev) || !r.RecordedAt.Equal(headAt) || r.RecordID.Version() != 7 {
		t.Fatalf("linked: seq %d, time %v, record id v%d", r.Seq, r.RecordedAt, r.RecordID.Version())
	}
	if r.ConsentID.Version() != 4 || ids.Key(r.ConsentID) != key || !bytes.Equal(consent.RecordHash(r), r.Hash) {
		t.Fatal("the minted consent ID, its key or the hash does not hold")
	}
	known := r.ConsentID
	later := headAt.Add(time.Minute)
	if key2, err := consent.Link(r, ids, uuid.NewV7, 42, r.Hash, r.RecordedAt, later); err != nil || key2 != key || r.ConsentID != known || !r.RecordedAt.Equal(later) {
		t.Fatalf("a later choice: %v, kept consent ID %v, time %v", err, r.ConsentID == known, r.RecordedAt)
	}
	failing := func() (uuid.UUID, error) { return uuid.Nil, errors.New("no entropy") }
	if _, err := consent.Link(sample(), ids, failing, 0, nil, time.Time{}, time.Now()); err == nil {
		t.Error("a failing ID source gave no error")
	}
}

// A record's canonical encoding reads back to the fields it hashes, and
// the decoder refuses anything else without a panic.
func TestDecodeRecord(t *testing.T) {
	r := &consent.Record{RecordID: uuid.Must(uuid.NewV7()), ConsentID: uuid.New(), Site: "demo",
		RecordedAt: time.UnixMicro(1_765_000_000_123_456).UTC(), Action: consent.Custom,
		Choices:  map[string]bool{"necessary": true, "analytics": false, "embeds": true},
		Services: []string{"youtube"}, Revision: 3, ConfigHash: "sha256:ab", Language: "nl",
		URL: "https://example.nl/", UserAgent: "ua", IP: "192.0.2.0/24", GPC: true, PrevHash: bytes.Repeat([]byte{7}, 32)}
	enc := consent.RecordEncoding(r)
	got, err := consent.DecodeRecord(enc)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(consent.RecordHash(got), consent.RecordHash(r)) || got.Action != r.Action || got.RecordID != r.RecordID || !got.RecordedAt.Equal(r.RecordedAt) || !got.GPC {
		t.Errorf("decoded %+v, want %+v", got, r)
	}
	for _, bad := range [][]byte{nil, enc[:len(enc)-1], append(bytes.Clone(enc), 0), []byte("koekje-record-v2"), []byte("\x20koekje-record-v3")} {
		if _, err := consent.DecodeRecord(bad); err == nil {
			t.Errorf("decoded %q", bad)
		}
	}
}

// koekje-record-v2 covers the signals too, and leaves koekje-record-v1 as it
// was: a record without signals keeps its v1 hash, the same record under v2
// hashes otherwise, and the encoding's name is the first thing hashed, so
// neither passes for the other.
func TestRecordEncodingV2(t *testing.T) {
	v1 := sample()
	v1Hash := consent.RecordHash(v1)
	if enc := consent.RecordEncoding(v1); !bytes.HasPrefix(enc, append([]byte{byte(2 * len(consent.RecordEncodingV1))}, consent.RecordEncodingV1...)) ||
		consent.EncodingName(v1) != consent.RecordEncodingV1 {
		t.Fatalf("a record without signals is not encoded as %s", consent.RecordEncodingV1)
	}
	base := sample()
	base.Encoding, base.Signal = consent.EncodingV2, consent.SignalNone
	h := consent.RecordHash(base)
	if bytes.Equal(h, v1Hash) || consent.EncodingName(base) != consent.RecordEncodingV2 {
		t.Fatal("the same record hashes alike under both encodings")
	}
	for name, edit := range map[string]func(r *consent.Record){
		"gpc":        func(r *consent.Record) { r.GPC = true },
		"gpc_header": func(r *consent.Record) { r.GPCHeader = true },
		"adpc":       func(r *consent.Record) { r.ADPC = "withdraw=*" },
		"signal":     func(r *consent.Record) { r.Signal = consent.SignalADPC },
		// Moving bytes between the new fields must not give the same encoding.
		"boundaries": func(r *consent.Record) { r.ADPC, r.Signal = "withdraw=*n", "one" },
	} {
		r := *base
		edit(&r)
		if bytes.Equal(consent.RecordHash(&r), h) {
			t.Errorf("changing %s keeps the v2 hash", name)
		}
	}
	// A record of encoding 1 that carries a signal is hashed under v2: no
	// field is ever left out of the hash.
	r := *v1
	r.GPCHeader = true
	if consent.EncodingOf(&r) != consent.EncodingV2 || bytes.Equal(consent.RecordHash(&r), v1Hash) {
		t.Error("a signal on a record of encoding 1 is not hashed")
	}
	for _, rec := range []*consent.Record{v1, base, {Site: "d", Encoding: consent.EncodingV2, GPCHeader: true, ADPC: `withdraw=*, object=direct-marketing`, Signal: consent.SignalGPCHeader}} {
		got, err := consent.DecodeRecord(consent.RecordEncoding(rec))
		if err != nil {
			t.Fatal(err)
		}
		if consent.EncodingOf(got) != consent.EncodingOf(rec) || got.GPCHeader != rec.GPCHeader || got.ADPC != rec.ADPC || got.Signal != rec.Signal ||
			!bytes.Equal(consent.RecordHash(got), consent.RecordHash(rec)) {
			t.Errorf("decoded %+v, want %+v", got, rec)
		}
	}
	bad := *base
	bad.Signal = "browser"
	if _, err := consent.DecodeRecord(consent.RecordEncoding(&bad)); err == nil {
		t.Error("decoded a record whose signal is unknown")
	}
}

// The signal that decided: GPC turns no explicit grant into one, and a
// refusal with GPC on is the signal's (the page's reading first).
func TestApplySignals(t *testing.T) {
	for _, c := range []struct {
		action    string
		page, hdr bool
		want      string
	}{
		{consent.RejectAll, false, false, consent.SignalNone},
		{consent.RejectAll, true, false, consent.SignalGPCPage},
		{consent.RejectAll, false, true, consent.SignalGPCHeader},
		{consent.RejectAll, true, true, consent.SignalGPCPage},
		{consent.AcceptAll, true, true, consent.SignalNone},
		{consent.Custom, false, true, consent.SignalNone},
		{consent.Withdraw, true, true, consent.SignalNone},
	} {
		r := &consent.Record{Action: c.action, GPC: c.page}
		consent.ApplySignals(r, config.Demo().Site("demo"), consent.BrowserSignals{GPCHeader: c.hdr})
		if r.Signal != c.want || r.GPCHeader != c.hdr || r.GPC != c.page || r.Encoding != consent.EncodingV2 {
			t.Errorf("%s, page GPC %v, Sec-GPC %v: signal %q (gpc %v, header %v), want %q", c.action, c.page, c.hdr, r.Signal, r.GPC, r.GPCHeader, c.want)
		}
	}
}

func FuzzDecodeRecord(f *testing.F) {
	f.Add(consent.RecordEncoding(&consent.Record{Site: "demo", Action: consent.AcceptAll, Choices: map[string]bool{"a": true}}))
	f.Add(consent.RecordEncoding(&consent.Record{Site: "demo", Action: consent.RejectAll, GPCHeader: true, ADPC: "withdraw=*", Signal: consent.SignalADPC}))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := consent.DecodeRecord(b)
		if err != nil {
			return
		}
		if !bytes.Equal(consent.RecordEncoding(r), b) {
			t.Errorf("a record that decodes does not encode back to its bytes")
		}
	})
}
