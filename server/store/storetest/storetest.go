// Package storetest is the test suite every consent store passes: each
// store's tests call Run with a way to open it, on a real database.
package storetest

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/koekje/koekje/config"
	"github.com/koekje/koekje/server/consent"
	"github.com/koekje/koekje/server/proof"
	"github.com/koekje/koekje/server/store"
	"github.com/koekje/koekje/server/translog"
)

// SyncLog waits until every record s committed so far is in the log: at
// once on a store that logs records as it commits them.
func SyncLog(t testing.TB, s store.Store) {
	t.Helper()
	if in, ok := s.(store.Integrator); ok {
		if _, err := in.Integrate(context.Background()); err != nil {
			t.Fatalf("integrate the log: %v", err)
		}
	}
}

// Insider changes a database open named behind its store's back, as
// someone holding the database alone would (sqlite3, psql): it runs one
// statement, its parameters written $1, $2, … on every store.
type Insider func(t *testing.T, db, statement string, args ...any)

// Opener opens a store. With db "" it makes a fresh database; with the
// name it returned before, it opens another store on that same database
// (the first may still be open, or closed). Stores are closed when t ends.
type Opener func(t *testing.T, db string) (s store.Store, name string)

// Run runs every test of the suite against the store open makes; insider
// changes its database as only someone outside the store could.
func Run(t *testing.T, open Opener, insider Insider) {
	for _, tc := range []struct {
		name string
		fn   func(*testing.T, Opener)
	}{
		{"AppendHistory", testAppendHistory},
		{"ConcurrentAppendsChain", testConcurrentAppendsChain},
		{"AppendAfterClose", testAppendAfterClose},
		{"VersionsAndSecrets", testVersionsAndSecrets},
		{"TimeNeverRunsBackwards", testTimeNeverRunsBackwards},
		{"RequestReplay", testRequestReplay},
		{"PurgeLeavesNoVisitorData", testPurge},
		{"HistoryPages", testHistoryPages},
		{"RecordPages", testRecordPages},
		{"Sessions", testSessions},
		{"SharedKeys", testSharedKeys},
		{"ScanStatsAndLookups", testScanStats},
		{"NoLogKept", testNoLog},
		{"Leases", testLeases},
		{"Log", testLog},
		{"PurgeInPublic", func(t *testing.T, open Opener) { testPurgeInPublic(t, open, insider) }},
		{"ScansInPublic", func(t *testing.T, open Opener) { testScansInPublic(t, open, insider) }},
		{"LogNamedForLife", testLogNamedForLife},
		{"ScanReports", testScanReports},
		{"DamagedVersion", func(t *testing.T, open Opener) { testDamagedVersion(t, open, insider) }},
		{"SignalsAndEncodings", testSignals},
		{"HeldLog", testHeldLog},
		{"SuccessorLog", testSuccessorLog},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, open) })
	}
}

// NewRecord is a valid first choice (no consent ID) on site, or a further
// one when consentID is set.
func NewRecord(site string, consentID uuid.UUID) *consent.Record {
	return &consent.Record{
		ConsentID: consentID, Site: site, Action: consent.Custom,
		Choices:  map[string]bool{"necessary": true, "analytics": false},
		Revision: 1, ConfigHash: "sha256:" + string(bytes.Repeat([]byte("ab"), 32)),
		Language: "nl", URL: "https://example.nl/", UserAgent: "test", IP: "192.0.2.0/24",
	}
}

// WantLogged fails t unless a line of logs (slog's JSON) is at level and
// carries each key of kv with its value.
func WantLogged(t testing.TB, logs []byte, level string, kv ...string) {
	t.Helper()
lines:
	for line := range bytes.Lines(logs) {
		var m map[string]any
		if json.Unmarshal(line, &m) != nil || m["level"] != level {
			continue
		}
		for i := 0; i+1 < len(kv); i += 2 {
			if m[kv[i]] != kv[i+1] {
				continue lines
			}
		}
		return
	}
	t.Errorf("no %s line with %q in the log:\n%s", level, kv, logs)
}

// VerifyChain checks site's chain with every key of s and fails t unless
// it verifies, returning the number of records.
func VerifyChain(t testing.TB, s store.Store, site string) int64 {
	t.Helper()
	ctx := context.Background()
	keys, err := s.Keys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var pubs []ed25519.PublicKey
	var ids []string
	if len(keys) > 0 {
		ring, err := proof.NewKeyring(keys)
		if err != nil {
			t.Fatal(err)
		}
		pubs, ids = ring.Public()
	}
	res, err := proof.Verify(ctx, s, site, pubs, ids)
	if err != nil {
		t.Fatal(err)
	}
	if !res.OK {
		t.Fatalf("chain of %s does not verify: %+v", site, res)
	}
	return res.Records
}

func testAppendHistory(t *testing.T, open Opener) {
	db, _ := open(t, "")
	ctx := context.Background()
	first := NewRecord("demo", uuid.Nil)
	if err := db.Append(ctx, first); err != nil {
		t.Fatal(err)
	}
	id := first.ConsentID
	if id.Version() != 4 {
		t.Fatalf("minted consent ID %s is version %d", id, id.Version())
	}
	second := NewRecord("demo", id)
	second.Action = consent.Withdraw
	for _, r := range []*consent.Record{NewRecord("demo", uuid.New()), second} {
		if err := db.Append(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	got, next, err := db.History(ctx, id, "", 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || next != 0 {
		t.Fatalf("history has %d records (next %d), want 2", len(got), next)
	}
	if got[0].RecordID != first.RecordID || got[1].RecordID != second.RecordID {
		t.Errorf("history out of order: %v, %v", got[0].RecordID, got[1].RecordID)
	}
	if got[1].Action != consent.Withdraw || got[0].Choices["necessary"] != true || len(got[0].Choices) != 2 {
		t.Errorf("fields not kept: %+v", got[1])
	}
	if got[0].Seq != 1 || got[1].Seq != 3 {
		t.Errorf("seq = %d, %d; want 1, 3", got[0].Seq, got[1].Seq)
	}
	var middle *consent.Record
	if err := db.Chain(ctx, "demo", func(r *consent.Record) error {
		if r.Seq == 2 {
			middle = r
		}
		return nil
	}); err != nil || middle == nil {
		t.Fatalf("chain: %v", err)
	}
	if !bytes.Equal(got[1].PrevHash, middle.Hash) || !bytes.Equal(middle.PrevHash, got[0].Hash) {
		t.Error("the records do not chain")
	}
	for seq, want := range map[int64][]byte{1: got[0].Hash, 2: middle.Hash, 3: nil} {
		if link, err := db.NextLink(ctx, "demo", seq); err != nil || !bytes.Equal(link, want) {
			t.Errorf("the link after record %d is %x (%v), want %x", seq, link, err, want)
		}
	}
	if link, err := db.NextLink(ctx, "other", 1); err != nil || link != nil {
		t.Errorf("the link after a record of a site without records: %x, %v", link, err)
	}
	for i, want := range []*consent.Record{first, second} {
		if !bytes.Equal(consent.RecordHash(got[i]), got[i].Hash) || !bytes.Equal(got[i].Hash, want.Hash) {
			t.Errorf("record %d: stored hash does not match the record read back", i)
		}
		if !got[i].RecordedAt.Equal(want.RecordedAt) || got[i].RecordedAt.Location() != time.UTC {
			t.Errorf("record %d: recorded_at %v read back as %v", i, want.RecordedAt, got[i].RecordedAt)
		}
	}
	if got[0].RecordID.Version() != 7 {
		t.Errorf("record id is version %d, want 7", got[0].RecordID.Version())
	}
	if n := VerifyChain(t, db, "demo"); n != 3 {
		t.Errorf("chain has %d records, want 3", n)
	}
}

func testConcurrentAppendsChain(t *testing.T, open Opener) {
	db, name := open(t, "")
	ctx := context.Background()
	const n = 500
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			site := "a"
			if i%3 == 0 {
				site = "b"
			}
			errs <- db.Append(ctx, NewRecord(site, uuid.New()))
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if a, b := VerifyChain(t, db, "a"), VerifyChain(t, db, "b"); a+b != n || b != (n+2)/3 {
		t.Errorf("chains hold %d and %d records, want %d in all", a, b, n)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	// Reopened, the chain continues from the stored head.
	db2, _ := open(t, name)
	r := NewRecord("b", uuid.New())
	if err := db2.Append(ctx, r); err != nil {
		t.Fatal(err)
	}
	if want := int64((n+2)/3) + 1; r.Seq != want {
		t.Errorf("seq after reopen = %d, want %d", r.Seq, want)
	}
	if r.PrevHash == nil {
		t.Error("record after reopen has no prev_hash")
	}
	VerifyChain(t, db2, "b")
}

func testAppendAfterClose(t *testing.T, open Opener) {
	db, _ := open(t, "")
	db.Close()
	err := db.Append(context.Background(), NewRecord("demo", uuid.New()))
	if consent.ErrorCode(err) != consent.EUNAVAILABLE {
		t.Errorf("append after close: %v, want %s", err, consent.EUNAVAILABLE)
	}
}

func testVersionsAndSecrets(t *testing.T, open Opener) {
	db, _ := open(t, "")
	ctx := context.Background()
	h := config.Hash([]byte(`{"n":0}`))
	if ok, err := db.HasVersion(ctx, "demo", h); err != nil || ok {
		t.Fatalf("HasVersion before put = %v, %v", ok, err)
	}
	if _, err := db.Version(ctx, "demo", h); consent.ErrorCode(err) != consent.ENOTFOUND {
		t.Fatalf("Version before put: %v, want not found", err)
	}
	for i := range 2 {
		if err := db.PutVersion(ctx, "demo", h, fmt.Appendf(nil, `{"n":%d}`, i)); err != nil {
			t.Fatal(err)
		}
	}
	if ok, err := db.HasVersion(ctx, "demo", h); err != nil || !ok {
		t.Fatalf("HasVersion after put = %v, %v", ok, err)
	}
	if b, err := db.Version(ctx, "demo", h); err != nil || string(b) != `{"n":0}` {
		t.Errorf("Version = %s, %v; want the first body stored", b, err)
	}
	if ok, _ := db.HasVersion(ctx, "other", h); ok {
		t.Error("version leaked to another site")
	}
	a, err := db.Secret(ctx, "k", 32)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := db.Secret(ctx, "k", 32)
	c, _ := db.Secret(ctx, "other", 32)
	if len(a) != 32 || !bytes.Equal(a, b) || bytes.Equal(a, c) {
		t.Errorf("secret not kept: %x vs %x (other %x)", a, b, c)
	}
}

// A banner version whose body was changed in the database is not what
// visitors were shown: the store never returns it and says it is damaged;
// the same version of another site, and the site's other versions, are
// still served, and every stored version is listed, for verify to read.
func testDamagedVersion(t *testing.T, open Opener, insider Insider) {
	db, name := open(t, "")
	ctx := context.Background()
	shown := []byte(`{"texts":{"nl":{"accept":"Alles accepteren","reject":"Alles weigeren"}}}`)
	later := []byte(`{"texts":{"nl":{"accept":"Akkoord","reject":"Weigeren"}}}`)
	for _, v := range []struct {
		site string
		body []byte
	}{{"demo", shown}, {"demo", later}, {"other", shown}} {
		if err := db.PutVersion(ctx, v.site, config.Hash(v.body), v.body); err != nil {
			t.Fatal(err)
		}
	}
	// Reject and accept swapped: a banner that nudged visitors the other way.
	altered := []byte(`{"texts":{"nl":{"accept":"Alles weigeren","reject":"Alles accepteren"}}}`)
	insider(t, name, `UPDATE versions SET body = $1 WHERE site = $2 AND hash = $3`, altered, "demo", config.Hash(shown))

	b, err := db.Version(ctx, "demo", config.Hash(shown))
	var e *consent.Error
	if consent.ErrorCode(err) != consent.EDAMAGED || b != nil || !errors.As(err, &e) || e.Field != "hash" || !strings.Contains(e.Message, "damaged") {
		t.Errorf("an altered version: %q, %v; want no body and a %s error about the hash", b, err, consent.EDAMAGED)
	}
	if b, err := db.Version(ctx, "other", config.Hash(shown)); err != nil || !bytes.Equal(b, shown) {
		t.Errorf("the same version of another site: %q, %v", b, err)
	}
	if b, err := db.Version(ctx, "demo", config.Hash(later)); err != nil || !bytes.Equal(b, later) {
		t.Errorf("the site's other version: %q, %v", b, err)
	}
	// Stored under a name that is not its hash from the start: damaged too.
	if err := db.PutVersion(ctx, "demo", "sha256:"+strings.Repeat("0", 64), shown); err != nil {
		t.Fatal(err)
	}
	if b, err := db.Version(ctx, "demo", "sha256:"+strings.Repeat("0", 64)); consent.ErrorCode(err) != consent.EDAMAGED || b != nil {
		t.Errorf("a version stored under another name: %q, %v", b, err)
	}
	got, err := db.Versions(ctx, "demo")
	want := []string{config.Hash(shown), config.Hash(later), "sha256:" + strings.Repeat("0", 64)}
	slices.Sort(got)
	slices.Sort(want)
	if err != nil || !slices.Equal(got, want) {
		t.Errorf("versions of demo: %q, %v; want %q", got, err, want)
	}
	if got, err := db.Versions(ctx, "nobody"); err != nil || len(got) != 0 {
		t.Errorf("versions of a site without any: %q, %v", got, err)
	}
}

// A clock that goes back does not make time go back along the chain.
func testTimeNeverRunsBackwards(t *testing.T, open Opener) {
	db, _ := open(t, "")
	t0 := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	times := []time.Time{t0, t0.Add(-time.Hour), t0.Add(time.Minute)}
	i := 0
	db.SetClock(func() time.Time { i++; return times[min(i, len(times))-1] })
	var got []time.Time
	for range times {
		r := NewRecord("demo", uuid.New())
		if err := db.Append(context.Background(), r); err != nil {
			t.Fatal(err)
		}
		got = append(got, r.RecordedAt)
	}
	if !got[0].Equal(t0) || !got[1].Equal(t0) || !got[2].Equal(t0.Add(time.Minute)) {
		t.Errorf("recorded times %v", got)
	}
}

// A request ID records once: retries in the same batch and later ones get
// the first record, marked replayed.
func testRequestReplay(t *testing.T, open Opener) {
	db, _ := open(t, "")
	ctx := context.Background()
	const n = 20
	recs := make([]*consent.Record, n)
	var wg sync.WaitGroup
	for i := range recs {
		recs[i] = NewRecord("demo", uuid.Nil)
		recs[i].RequestID = "request-0123456789"
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := db.Append(ctx, recs[i]); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	replayed := 0
	for _, r := range recs {
		if r.RecordID != recs[0].RecordID || r.ConsentID != recs[0].ConsentID || !bytes.Equal(r.Hash, recs[0].Hash) {
			t.Fatalf("a retried request got another record: %v vs %v", r.RecordID, recs[0].RecordID)
		}
		if r.Replayed {
			replayed++
		}
		if r.RequestID != "request-0123456789" {
			t.Errorf("request ID lost: %q", r.RequestID)
		}
	}
	if replayed != n-1 {
		t.Errorf("%d of %d marked replayed, want %d", replayed, n, n-1)
	}
	later := NewRecord("demo", uuid.Nil)
	later.RequestID = "request-0123456789"
	if err := db.Append(ctx, later); err != nil || !later.Replayed || later.RecordID != recs[0].RecordID {
		t.Fatalf("a later retry: %v, replayed %v", err, later.Replayed)
	}
	other := NewRecord("other", uuid.Nil)
	other.RequestID = "request-0123456789"
	if err := db.Append(ctx, other); err != nil || other.Replayed {
		t.Fatalf("the same request ID on another site: %v, replayed %v", err, other.Replayed)
	}
	got, err := db.ByRequest(ctx, "demo", "request-0123456789")
	if err != nil || got == nil || got.RecordID != recs[0].RecordID {
		t.Fatalf("ByRequest: %v, %v", got, err)
	}
	if got, err := db.ByRequest(ctx, "demo", "never-made-0000000"); err != nil || got != nil {
		t.Errorf("ByRequest of an unknown ID: %v, %v", got, err)
	}
	if n := VerifyChain(t, db, "demo"); n != 1 {
		t.Errorf("%d records on demo, want 1", n)
	}
}

// A purge leaves nothing of the visitors it removed that the store can
// hand out: their request IDs go, the chain verifies from the signed
// checkpoint, the kept records keep their texts, and a later record with
// the purged texts stores them afresh.
func testPurge(t *testing.T, open Opener) {
	ctx := context.Background()
	db, _ := open(t, "")
	keys, err := proof.OpenKeys(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	past := time.Now().Add(-48 * time.Hour)
	db.SetClock(func() time.Time { return past })
	old := NewRecord("demo", uuid.Nil)
	old.URL, old.UserAgent, old.RequestID = "https://example.nl/secret-page-of-visitor", "UA-of-a-purged-visitor/1.0", "request-of-purged-1"
	if err := db.Append(ctx, old); err != nil {
		t.Fatal(err)
	}
	shared := NewRecord("demo", uuid.Nil) // its texts are shared with a record that stays
	if err := db.Append(ctx, shared); err != nil {
		t.Fatal(err)
	}
	db.SetClock(time.Now)
	kept := NewRecord("demo", uuid.Nil)
	if err := db.Append(ctx, kept); err != nil {
		t.Fatal(err)
	}
	n, err := db.Purge(ctx, "demo", time.Now().Add(-time.Hour), keys.SignCheckpoint)
	if err != nil || n != 2 {
		t.Fatalf("purge: %d, %v", n, err)
	}
	if n, err := db.Purge(ctx, "demo", time.Now().Add(-time.Hour), keys.SignCheckpoint); err != nil || n != 0 {
		t.Fatalf("second purge: %d, %v", n, err)
	}
	cp, err := db.LastCheckpoint(ctx, "demo")
	if err != nil || cp == nil || cp.Seq != 2 || !bytes.Equal(cp.Hash, shared.Hash) || cp.KeyID == "" {
		t.Fatalf("checkpoint %+v, %v", cp, err)
	}
	if cps, err := db.Checkpoints(ctx, "demo"); err != nil || len(cps) != 1 {
		t.Fatalf("checkpoints %v, %v", cps, err)
	}
	if got, _, err := db.History(ctx, old.ConsentID, "", 0, 10); err != nil || len(got) != 0 {
		t.Errorf("the purged visitor's history: %d records, %v", len(got), err)
	}
	if got, _, err := db.History(ctx, kept.ConsentID, "", 0, 10); err != nil || len(got) != 1 || got[0].URL != kept.URL || got[0].UserAgent != kept.UserAgent {
		t.Fatalf("the kept record lost its texts: %v %+v", err, got)
	}
	if r, _ := db.ByRequest(ctx, "demo", "request-of-purged-1"); r != nil {
		t.Error("the purged record's request ID still answers")
	}
	if n := VerifyChain(t, db, "demo"); n != 1 {
		t.Errorf("%d records verified after the purge, want 1", n)
	}
	again := NewRecord("demo", uuid.Nil)
	again.URL, again.UserAgent = old.URL, old.UserAgent
	if err := db.Append(ctx, again); err != nil {
		t.Fatal(err)
	}
	if again.Seq != 4 {
		t.Errorf("seq after the purge %d, want 4", again.Seq)
	}
	got, _, err := db.History(ctx, again.ConsentID, "", 0, 10)
	if err != nil || len(got) != 1 || got[0].URL != old.URL || got[0].UserAgent != old.UserAgent {
		t.Fatalf("a record after the purge points at deleted texts: %v %+v", err, got)
	}
	VerifyChain(t, db, "demo")
}

// History pages through one visitor's records across sites with a cursor.
func testHistoryPages(t *testing.T, open Opener) {
	db, _ := open(t, "")
	ctx := context.Background()
	first := NewRecord("a", uuid.Nil)
	if err := db.Append(ctx, first); err != nil {
		t.Fatal(err)
	}
	id := first.ConsentID
	want := []*consent.Record{first}
	for i := range 6 {
		site := "a"
		if i%2 == 0 {
			site = "b"
		}
		r := NewRecord(site, id)
		if err := db.Append(ctx, r); err != nil {
			t.Fatal(err)
		}
		if err := db.Append(ctx, NewRecord(site, uuid.Nil)); err != nil { // someone else
			t.Fatal(err)
		}
		want = append(want, r)
	}
	var got []*consent.Record
	var after int64
	pages := 0
	for {
		page, next, err := db.History(ctx, id, "", after, 3)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		got = append(got, page...)
		if next == 0 {
			break
		}
		if next <= after || pages > 5 {
			t.Fatalf("cursor %d after %d", next, after)
		}
		after = next
	}
	if pages != 3 || len(got) != len(want) {
		t.Fatalf("%d pages, %d records; want 3, %d", pages, len(got), len(want))
	}
	for i := range want {
		if got[i].RecordID != want[i].RecordID {
			t.Errorf("record %d is %v, want %v", i, got[i].RecordID, want[i].RecordID)
		}
	}
	onB, next, err := db.History(ctx, id, "b", 0, 100)
	if err != nil || next != 0 || len(onB) != 3 {
		t.Fatalf("history on b: %d records, %v", len(onB), err)
	}
	for _, r := range onB {
		if r.Site != "b" {
			t.Errorf("history on b has a record of %s", r.Site)
		}
	}
	if l, err := db.Latest(ctx, id, ""); err != nil || l == nil || l.RecordID != want[len(want)-1].RecordID {
		t.Errorf("latest: %v, %v", l, err)
	}
	if l, err := db.Latest(ctx, id, "b"); err != nil || l == nil || l.RecordID != want[len(want)-2].RecordID {
		t.Errorf("latest on b: %v, %v", l, err)
	}
	if l, err := db.Latest(ctx, uuid.New(), ""); err != nil || l != nil {
		t.Errorf("latest of an unknown ID: %v, %v", l, err)
	}
	if h, _, err := db.History(ctx, uuid.New(), "", 0, 10); err != nil || len(h) != 0 {
		t.Errorf("history of an unknown ID: %v, %v", h, err)
	}
}

// Records pages through one site's records, newest first, filtered by
// time, visitor, action and GPC, with a cursor.
func testRecordPages(t *testing.T, open Opener) {
	db, _ := open(t, "")
	ctx := context.Background()
	day := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	now := day
	db.SetClock(func() time.Time { return now })
	visitor := NewRecord("demo", uuid.Nil)
	if err := db.Append(ctx, visitor); err != nil {
		t.Fatal(err)
	}
	// seq 2..12 on demo: every third withdraws, every other sends GPC; the
	// visitor chooses again at 6 and 9. Another site's records in between.
	for seq := int64(2); seq <= 12; seq++ {
		now = day.Add(time.Duration(seq) * time.Minute)
		r := NewRecord("demo", uuid.Nil)
		if seq == 6 || seq == 9 {
			r = NewRecord("demo", visitor.ConsentID)
		}
		if seq%3 == 0 {
			r.Action, r.Choices = consent.Withdraw, map[string]bool{"necessary": true, "analytics": false}
		}
		r.GPC = seq%2 == 0
		if err := db.Append(ctx, r); err != nil {
			t.Fatal(err)
		}
		if err := db.Append(ctx, NewRecord("other", uuid.Nil)); err != nil {
			t.Fatal(err)
		}
	}
	yes := true
	seqs := func(q consent.Query) (pages []string) {
		t.Helper()
		q.Site = "demo"
		for range 20 {
			recs, next, err := db.Records(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			var p []string
			for _, r := range recs {
				if r.Site != "demo" {
					t.Errorf("a record of %s in demo's pages", r.Site)
				}
				p = append(p, fmt.Sprint(r.Seq))
			}
			pages = append(pages, strings.Join(p, " "))
			if next == 0 {
				return pages
			}
			if q.Before != 0 && next >= q.Before {
				t.Fatalf("cursor %d after %d", next, q.Before)
			}
			q.Before = next
		}
		t.Fatal("paging does not end")
		return nil
	}
	for _, c := range []struct {
		q    consent.Query
		want string
	}{
		{consent.Query{Limit: 5}, "[12 11 10 9 8 7 6 5 4 3 2 1]"},
		{consent.Query{Limit: 100}, "[12 11 10 9 8 7 6 5 4 3 2 1]"},
		{consent.Query{Limit: 4, From: day.Add(4 * time.Minute), To: day.Add(10 * time.Minute)}, "[9 8 7 6 5 4]"},
		{consent.Query{Limit: 2, Action: consent.Withdraw}, "[12 9 6 3]"},
		{consent.Query{Limit: 3, GPC: &yes}, "[12 10 8 6 4 2]"},
		{consent.Query{Limit: 2, Action: consent.Withdraw, GPC: &yes}, "[12 6]"},
		{consent.Query{Limit: 2, ConsentID: visitor.ConsentID}, "[9 6 1]"},
		{consent.Query{Limit: 2, ConsentID: uuid.New()}, "[]"},
		{consent.Query{Limit: 2, Action: "nonsense"}, "[]"},
		// A span of 4 sequence numbers a page: pages of fewer records, or
		// none, but the same records in the end.
		{consent.Query{Limit: 2, Action: consent.Withdraw, Span: 4}, "[12 9 6 3]"},
		{consent.Query{Limit: 2, Span: 4, From: day.Add(4 * time.Minute), To: day.Add(10 * time.Minute)}, "[9 8 7 6 5 4]"},
		{consent.Query{Limit: 2, GPC: &yes, Span: 3}, "[12 10 8 6 4 2]"},
	} {
		pages := seqs(c.q)
		if got := "[" + strings.Join(strings.Fields(strings.Join(pages, " ")), " ") + "]"; got != c.want {
			t.Errorf("%+v: %s, want %s", c.q, got, c.want)
		}
		for i, p := range pages[:len(pages)-1] {
			if n := len(strings.Fields(p)); n != c.q.Limit && (c.q.Span == 0 || n > c.q.Limit) {
				t.Errorf("%+v: page %d has %q, want %d records", c.q, i, p, c.q.Limit)
			}
		}
	}
	// The span bounds what one page reads: of 11 and 12, only 12 withdraws,
	// and the page says to go on below 11.
	recs, next, err := db.Records(ctx, consent.Query{Site: "demo", Action: consent.Withdraw, Span: 2, Limit: 2})
	if err != nil || len(recs) != 1 || recs[0].Seq != 12 || next != 11 {
		t.Errorf("a page of span 2: %d records, next %d, %v; want record 12 and next 11", len(recs), next, err)
	}
	recs, _, err = db.Records(ctx, consent.Query{Site: "nowhere", Limit: 10})
	if err != nil || len(recs) != 0 {
		t.Errorf("records of a site without any: %v, %v", recs, err)
	}
}

func testSessions(t *testing.T, open Opener) {
	db, name := open(t, "")
	ctx := context.Background()
	now := time.Now()
	a, b, c := []byte("session-a"), []byte("session-b"), []byte("session-c")
	tokA, tokB := []byte("token-a"), []byte("token-b")
	for _, s := range []struct {
		id, tok []byte
		exp     time.Time
	}{{a, tokA, now.Add(time.Hour)}, {b, tokB, now.Add(time.Hour)}, {c, tokA, now.Add(time.Minute)}} {
		if err := db.StartSession(ctx, s.id, s.tok, s.exp); err != nil {
			t.Fatal(err)
		}
	}
	live := func(s store.Store, id []byte, at time.Time) bool {
		t.Helper()
		ok, err := s.SessionLive(ctx, id, at)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	if !live(db, a, now) || !live(db, b, now) || !live(db, c, now) {
		t.Fatal("a started session is not live")
	}
	if live(db, c, now.Add(2*time.Minute)) {
		t.Error("an expired session is live")
	}
	if live(db, []byte("never"), now) {
		t.Error("an unknown session is live")
	}
	if err := db.EndSession(ctx, a, now); err != nil {
		t.Fatal(err)
	}
	other, _ := open(t, name) // ended for every instance
	if live(other, a, now) || !live(other, b, now) {
		t.Error("ending one session did not hold for another instance, or ended another")
	}
	n, err := db.EndSessionsExcept(ctx, [][]byte{tokA}, now)
	if err != nil || n != 1 || live(db, b, now) || !live(db, c, now) {
		t.Errorf("ending token b's sessions: %d, %v", n, err)
	}
	if n, err := db.EndSessionsExcept(ctx, nil, now); err != nil || n != 1 || live(db, c, now) {
		t.Errorf("ending every session: %d, %v", n, err)
	}
}

// Instances on one database share the keys: one reads a key another
// stored after both opened.
func testSharedKeys(t *testing.T, open Opener) {
	ctx := context.Background()
	a, name := open(t, "")
	b, _ := open(t, name)
	if keys, err := b.Keys(ctx); err != nil || len(keys) != 0 {
		t.Fatalf("keys of a new database: %v, %v", keys, err)
	}
	k1, err := proof.NewKey(time.Now().Add(-time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	k2, _ := proof.NewKey(time.Now())
	if err := a.AddKey(ctx, k2); err != nil {
		t.Fatal(err)
	}
	if err := a.AddKey(ctx, k1); err != nil {
		t.Fatal(err)
	}
	keys, err := b.Keys(ctx)
	if err != nil || len(keys) != 2 || keys[0].ID != k1.ID || !bytes.Equal(keys[1].Private, k2.Private) {
		t.Fatalf("the other instance reads %v, %v; want both keys, oldest first", keys, err)
	}
	if !keys[0].CreatedAt.Equal(k1.CreatedAt.Truncate(time.Microsecond)) {
		t.Errorf("created_at %v read back as %v", k1.CreatedAt, keys[0].CreatedAt)
	}
	sa, _ := a.Secret(ctx, store.VisitorTokenSecret, 64)
	sb, _ := b.Secret(ctx, store.VisitorTokenSecret, 64)
	if len(sa) != 64 || !bytes.Equal(sa, sb) {
		t.Error("two instances got different secrets")
	}
}

func testScanStats(t *testing.T, open Opener) {
	db, _ := open(t, "")
	ctx := context.Background()
	day := time.Date(2026, 3, 1, 23, 0, 0, 0, time.UTC)
	clock := day
	db.SetClock(func() time.Time { return clock })
	var ids []uuid.UUID
	var hashes [][]byte
	for i := range 6 {
		clock = day.Add(time.Duration(i) * 30 * time.Minute) // 23:00 … 01:30: two UTC days
		r := NewRecord("demo", uuid.Nil)
		r.Choices["analytics"] = i%2 == 0
		r.GPC = i == 5
		if i == 5 {
			r.Action = consent.RejectAll
			r.Choices["analytics"] = false
		}
		if i == 3 {
			r.ConfigHash = "sha256:" + string(bytes.Repeat([]byte("cd"), 32))
		}
		if err := db.Append(ctx, r); err != nil {
			t.Fatal(err)
		}
		ids, hashes = append(ids, r.ConsentID), append(hashes, r.Hash)
	}
	if err := db.Append(ctx, NewRecord("other", ids[0])); err != nil {
		t.Fatal(err)
	}
	seqs := func(f consent.Filter) []int64 {
		t.Helper()
		var out []int64
		if err := db.Scan(ctx, f, func(r *consent.Record) error { out = append(out, r.Seq); return nil }); err != nil {
			t.Fatal(err)
		}
		return out
	}
	for _, c := range []struct {
		f    consent.Filter
		want string
	}{
		{consent.Filter{Site: "demo"}, "[1 2 3 4 5 6]"},
		{consent.Filter{Site: "demo", From: day.Add(time.Hour)}, "[3 4 5 6]"},
		{consent.Filter{Site: "demo", To: day.Add(time.Hour)}, "[1 2]"},
		{consent.Filter{Site: "demo", From: day.Add(20 * time.Minute), To: day.Add(90 * time.Minute)}, "[2 3]"},
		{consent.Filter{Site: "demo", ConsentID: ids[2]}, "[3]"},
		{consent.Filter{ConsentID: ids[0]}, "[1 1]"},
		{consent.Filter{From: day.Add(2 * time.Hour)}, "[5 6 1]"},
		{consent.Filter{Site: "nowhere"}, "[]"},
	} {
		if got := fmt.Sprint(seqs(c.f)); got != c.want {
			t.Errorf("scan %+v: seqs %s, want %s", c.f, got, c.want)
		}
	}
	stats, err := db.Stats(ctx, consent.Filter{Site: "demo"}, []string{"necessary", "analytics", "missing"})
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprintf("%+v", stats); got != "[{Day:2026-03-01 Total:2 Actions:map[custom:2] GPC:0 Granted:map[analytics:1 missing:0 necessary:2]} "+
		"{Day:2026-03-02 Total:4 Actions:map[custom:3 reject_all:1] GPC:1 Granted:map[analytics:2 missing:0 necessary:4]}]" {
		t.Errorf("stats: %s", got)
	}
	if stats, err := db.Stats(ctx, consent.Filter{Site: "demo", From: day.Add(time.Hour)}, nil); err != nil || len(stats) != 1 || stats[0].Total != 4 {
		t.Errorf("stats from a time: %+v, %v", stats, err)
	}
	used, err := db.VersionsUsed(ctx, "demo")
	if err != nil || len(used) != 2 || used[0].Records != 5 || used[1].Records != 1 || used[1].Hash[7:9] != "cd" ||
		!used[0].Last.Equal(day.Add(150*time.Minute)) || !used[1].First.Equal(day.Add(90*time.Minute)) {
		t.Errorf("versions used: %+v, %v", used, err)
	}
	if n, err := db.CountSince(ctx, ids[0], day); err != nil || n != 2 {
		t.Errorf("count since: %d, %v; want 2", n, err)
	}
	if n, err := db.CountSince(ctx, ids[0], day.Add(time.Hour)); err != nil || n != 1 {
		t.Errorf("count since later: %d, %v; want 1", n, err)
	}
	if seq, ok, err := db.FindHash(ctx, "demo", hashes[3]); err != nil || !ok || seq != 4 {
		t.Errorf("find hash: %d, %v, %v", seq, ok, err)
	}
	if _, ok, err := db.FindHash(ctx, "other", hashes[3]); err != nil || ok {
		t.Errorf("find hash on another site: %v, %v", ok, err)
	}
	if cp, err := db.LastCheckpoint(ctx, "demo"); err != nil || cp != nil {
		t.Errorf("checkpoint before any purge: %v, %v", cp, err)
	}
	if err := db.PutVersion(ctx, "shown-only", "sha256:x", []byte("{}")); err != nil {
		t.Fatal(err)
	}
	if sites, err := db.Sites(ctx); err != nil || fmt.Sprint(sites) != "[demo other shown-only]" {
		t.Errorf("sites: %v, %v", sites, err)
	}
}

// A store that keeps no log answers the log's questions as empty.
func testNoLog(t *testing.T, open Opener) {
	db, _ := open(t, "")
	ctx := context.Background()
	r := NewRecord("demo", uuid.Nil)
	if err := db.Append(ctx, r); err != nil {
		t.Fatal(err)
	}
	if cp, err := db.LatestCheckpoint(ctx); err != nil || cp != nil {
		t.Errorf("latest checkpoint: %q, %v", cp, err)
	}
	if cp, err := db.LatestWitnessed(ctx); err != nil || cp != nil {
		t.Errorf("latest witnessed: %q, %v", cp, err)
	}
	if l, err := db.LeafOf(ctx, "demo", r.Seq); err != nil || l != nil {
		t.Errorf("leaf: %v, %v", l, err)
	}
	if e, err := db.LogEntries(ctx, 0, 256); err != nil || len(e) != 0 {
		t.Errorf("entries: %d, %v", len(e), err)
	}
	if _, err := db.LogHashes(ctx, []int64{0}); consent.ErrorCode(err) != consent.ENOTFOUND {
		t.Errorf("a hash of an empty log: %v, want not found", err)
	}
	k1, err := db.LogAuditKey(ctx, "demo")
	k2, _ := db.LogAuditKey(ctx, "other")
	if err != nil || len(k1) != 32 || bytes.Equal(k1, k2) {
		t.Errorf("audit keys: %x, %x, %v", k1, k2, err)
	}
}

// A lease is one holder's at a time, across stores on one database, until
// it runs out.
func testLeases(t *testing.T, open Opener) {
	ctx := context.Background()
	a, name := open(t, "")
	b, _ := open(t, name)
	for _, step := range []struct {
		s      store.Store
		holder string
		ttl    time.Duration
		want   bool
	}{
		{a, "a", time.Hour, true},
		{b, "b", time.Hour, false},   // a holds it
		{a, "a", time.Hour, true},    // a renews it
		{a, "a", -time.Second, true}, // a lets it run out
		{b, "b", time.Hour, true},    // so b takes it
		{a, "a", time.Hour, false},
	} {
		got, err := step.s.Lease(ctx, "retention", step.holder, step.ttl)
		if err != nil || got != step.want {
			t.Fatalf("%s takes the lease for %s: %v %v, want %v", step.holder, step.ttl, got, err, step.want)
		}
	}
	if got, err := a.Lease(ctx, "other", "a", time.Hour); err != nil || !got {
		t.Fatalf("another lease: %v %v", got, err)
	}
}

// The log on any store: every record gets one leaf committing to it under
// its site's tag, the checkpoint signs the tree of those leaves, inclusion
// and consistency proofs check, the sites verify against the log, and a
// purge leaves the leaves without their salts.
func testLog(t *testing.T, open Opener) {
	ctx := context.Background()
	st, name, signer, keys := openLogged(t, open)
	db := st
	past := time.Now().Add(-48 * time.Hour)
	st.SetClock(func() time.Time { return past })
	var recs []*consent.Record
	appendN := func(site string, n int) {
		var wg sync.WaitGroup
		out := make([]*consent.Record, n)
		for i := range n {
			out[i] = NewRecord(site, uuid.Nil)
			wg.Go(func() {
				if err := st.Append(ctx, out[i]); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		recs = append(recs, out...)
	}
	appendN("demo", 3)
	appendN("other", 2)
	st.SetClock(time.Now)
	appendN("demo", 2)
	SyncLog(t, st)

	openLatest := func() (translog.Checkpoint, []byte) {
		t.Helper()
		signed, err := st.LatestCheckpoint(ctx)
		if err != nil || signed == nil {
			t.Fatalf("latest checkpoint: %q, %v", signed, err)
		}
		cp, _, err := translog.OpenCheckpoint(signed, signer.VerifierKey())
		if err != nil {
			t.Fatal(err)
		}
		return cp, signed
	}
	cp, _ := openLatest()
	if cp.Size != int64(len(recs)) || cp.Origin != "koekje.test/log" {
		t.Fatalf("checkpoint %+v, want %d leaves", cp, len(recs))
	}
	entries, err := st.LogEntries(ctx, 0, cp.Size)
	if err != nil || int64(len(entries)) != cp.Size {
		t.Fatalf("entries: %d, %v", len(entries), err)
	}
	var tree translog.TreeBuilder
	for _, e := range entries {
		tree.Add(e)
	}
	if tree.Root() != cp.Hash {
		t.Fatal("the checkpoint does not sign the tree of the stored entries")
	}
	// An export carries each record's leaf index and salt: with the public
	// entries alone, its auditor finds each record's commitment in the log.
	exported := 0
	for _, site := range []string{"demo", "other"} {
		auditKey, err := st.LogAuditKey(ctx, site)
		if err != nil {
			t.Fatal(err)
		}
		err = st.Scan(ctx, consent.Filter{Site: site}, func(r *consent.Record) error {
			exported++
			if r.LogIndex == nil || *r.LogIndex >= int64(len(entries)) || len(r.LogSalt) != 32 {
				t.Errorf("export of %s/%d: leaf %v, salt %x", r.Site, r.Seq, r.LogIndex, r.LogSalt)
				return nil
			}
			leaf, err := translog.ParseLeaf(entries[*r.LogIndex])
			if err != nil {
				return err
			}
			if leaf.Commitment != translog.Commit(r.LogSalt, r.Hash) || leaf.SiteTag != translog.SiteTag(auditKey, *r.LogIndex) {
				t.Errorf("export of %s/%d: leaf %d is not its commitment under its site's tag", r.Site, r.Seq, *r.LogIndex)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if exported != len(recs) {
		t.Errorf("%d records exported, want %d", exported, len(recs))
	}
	hashes := tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) { return st.LogHashes(ctx, idx) })
	seen := map[int64]bool{}
	for _, r := range recs {
		l, err := st.LeafOf(ctx, r.Site, r.Seq)
		if err != nil || l == nil {
			t.Fatalf("leaf of %s/%d: %v, %v", r.Site, r.Seq, l, err)
		}
		if seen[l.Index] {
			t.Fatalf("leaf %d given twice", l.Index)
		}
		seen[l.Index] = true
		leaf, err := translog.ParseLeaf(l.Entry)
		if err != nil {
			t.Fatal(err)
		}
		auditKey, err := st.LogAuditKey(ctx, r.Site)
		if err != nil {
			t.Fatal(err)
		}
		if leaf.Commitment != translog.Commit(l.Salt, r.Hash) || leaf.SiteTag != translog.SiteTag(auditKey, l.Index) {
			t.Errorf("leaf %d does not commit to %s/%d under its site's tag", l.Index, r.Site, r.Seq)
		}
		p, err := tlog.ProveRecord(cp.Size, l.Index, hashes)
		if err != nil {
			t.Fatal(err)
		}
		if err := tlog.CheckRecord(p, cp.Size, cp.Hash, l.Index, tlog.RecordHash(l.Entry)); err != nil {
			t.Errorf("inclusion of leaf %d: %v", l.Index, err)
		}
	}
	verifyLog := func(site string) *proof.Result {
		t.Helper()
		pubs, ids := keys.Ring().Public()
		res, err := proof.Verify(ctx, st, site, pubs, ids)
		if err != nil {
			t.Fatal(err)
		}
		auditKey, err := st.LogAuditKey(ctx, site)
		if err != nil {
			t.Fatal(err)
		}
		if err := proof.VerifyLog(ctx, st, res, signer.VerifierKey(), auditKey, nil); err != nil {
			t.Fatal(err)
		}
		if !res.OK || res.Log == nil {
			t.Fatalf("%s against the log: %+v", site, res)
		}
		return res
	}
	if res := verifyLog("demo"); res.Log.Leaves != 5 || res.Log.Pending != 0 {
		t.Errorf("demo's leaves: %+v", res.Log)
	}
	if res := verifyLog("other"); res.Log.Leaves != 2 {
		t.Errorf("other's leaves: %+v", res.Log)
	}

	// Another store on the database carries the same log on.
	st2, _ := open(t, name)
	if _, err := st2.StartLog(ctx, "koekje.test/log"); err != nil {
		t.Fatal(err)
	}
	more := NewRecord("other", uuid.Nil)
	if err := st2.Append(ctx, more); err != nil {
		t.Fatal(err)
	}
	recs = append(recs, more)
	SyncLog(t, st2)
	SyncLog(t, st)
	cp2, _ := openLatest()
	if cp2.Size != cp.Size+1 {
		t.Fatalf("after one more record the log has %d leaves, want %d", cp2.Size, cp.Size+1)
	}
	p, err := tlog.ProveTree(cp2.Size, cp.Size, hashes)
	if err != nil {
		t.Fatal(err)
	}
	if err := tlog.CheckTree(p, cp2.Size, cp2.Hash, cp.Size, cp.Hash); err != nil {
		t.Errorf("the log did not only grow: %v", err)
	}

	n, err := st.Purge(ctx, "demo", time.Now().Add(-time.Hour), keys.SignCheckpoint)
	if err != nil || n != 3 {
		t.Fatalf("purge: %d, %v", n, err)
	}
	for _, r := range recs[:3] {
		if l, err := st.LeafOf(ctx, r.Site, r.Seq); err != nil || (l != nil && l.Salt != nil) {
			t.Errorf("the purged record %d keeps its salt: %+v, %v", r.Seq, l, err)
		}
	}
	SyncLog(t, st) // the purge's entry, queued on a store that logs after the commit
	cps, err := st.Checkpoints(ctx, "demo")
	if err != nil || len(cps) != 1 || cps[0].LogIndex == nil || cps[0].EntryIndex == nil || len(cps[0].EntrySalt) != translog.SaltSize {
		t.Fatalf("the purge checkpoint names no leaf or no entry of its own: %+v, %v", cps, err)
	}
	// The purge is in the log as an entry of its own kind, after every
	// leaf it purged, under the site's tag, committing to its checkpoint.
	cp3, _ := openLatest()
	if cp3.Size != cp2.Size+1 || *cps[0].EntryIndex != cp2.Size || *cps[0].LogIndex >= *cps[0].EntryIndex {
		t.Fatalf("after the purge the log has %d leaves (want %d), the entry is %d, the last purged leaf %d",
			cp3.Size, cp2.Size+1, *cps[0].EntryIndex, *cps[0].LogIndex)
	}
	entries, err = st.LogEntries(ctx, 0, cp3.Size)
	if err != nil {
		t.Fatal(err)
	}
	demoKey, err := st.LogAuditKey(ctx, "demo")
	if err != nil {
		t.Fatal(err)
	}
	entry, err := translog.ParseLeaf(entries[*cps[0].EntryIndex])
	if err != nil || entry.Kind != translog.KindPurge || entry.SiteTag != translog.SiteTag(demoKey, *cps[0].EntryIndex) ||
		entry.Commitment != translog.CommitPurge(cps[0].EntrySalt, proof.PurgeStatement(cps[0])) {
		t.Fatalf("the purge's entry %+v (%v) is not its checkpoint's commitment under demo's tag", entry, err)
	}
	if p, err := tlog.ProveTree(cp3.Size, cp2.Size, hashes); err != nil || tlog.CheckTree(p, cp3.Size, cp3.Hash, cp2.Size, cp2.Hash) != nil {
		t.Errorf("the purge's entry did not only grow the log: %v", err)
	}
	if res := verifyLog("demo"); res.Log.Leaves != 5 || res.Log.Purged != 3 || res.Records != 2 || res.Log.PurgeEntries != 1 {
		t.Errorf("demo after the purge: %d records, %+v", res.Records, res.Log)
	}
	if res := verifyLog("other"); res.Log.PurgeEntries != 0 {
		t.Errorf("another site counts demo's purge entry: %+v", res.Log)
	}

	// What one store saved as witnessed, every store on the database
	// publishes; the largest size is the newest.
	_, signed := openLatest()
	for _, w := range []struct {
		size int64
		note []byte
	}{{cp2.Size, append(signed, "— witness.test AAAA\n"...)}, {cp.Size, []byte("older")}} {
		if err := db.SaveWitnessed(ctx, w.size, w.note); err != nil {
			t.Fatal(err)
		}
	}
	for _, s := range []store.Store{st, st2} {
		if got, err := s.LatestWitnessed(ctx); err != nil || !bytes.HasSuffix(got, []byte("— witness.test AAAA\n")) {
			t.Errorf("latest witnessed: %q, %v", got, err)
		}
	}
}

// A purge's entry is held against its checkpoint: a checkpoint whose
// entry salt was changed, or that no longer names its entry, fails the
// site's verification against the log; a second purge adds a second entry
// and leaves the first one's alone.
func testPurgeInPublic(t *testing.T, open Opener, insider Insider) {
	ctx := context.Background()
	st, name, signer, keys := openLogged(t, open)
	clock := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	st.SetClock(func() time.Time { return clock })
	for range 6 {
		clock = clock.Add(time.Hour)
		if err := st.Append(ctx, NewRecord("demo", uuid.Nil)); err != nil {
			t.Fatal(err)
		}
	}
	SyncLog(t, st)
	purge := func(before time.Time) {
		t.Helper()
		if _, err := st.Purge(ctx, "demo", before, keys.SignCheckpoint); err != nil {
			t.Fatal(err)
		}
		SyncLog(t, st)
	}
	purge(time.Date(2026, 1, 1, 2, 30, 0, 0, time.UTC)) // records 1 and 2
	// A second purge from another store on the database that did not
	// start the log (koekje purge beside a running server) extends the
	// log too, and the first store goes on appending after it.
	other, _ := open(t, name)
	if _, err := other.Purge(ctx, "demo", time.Date(2026, 1, 1, 4, 30, 0, 0, time.UTC), keys.SignCheckpoint); err != nil { // 3 and 4
		t.Fatal(err)
	}
	SyncLog(t, st)
	clock = clock.Add(time.Hour)
	if err := st.Append(ctx, NewRecord("demo", uuid.Nil)); err != nil {
		t.Fatalf("a record after another store's purge: %v", err)
	}
	SyncLog(t, st)
	auditKey, err := st.LogAuditKey(ctx, "demo")
	if err != nil {
		t.Fatal(err)
	}
	check := func() *proof.Result {
		t.Helper()
		return verifyAgainstLog(t, st, keys, signer.VerifierKey(), "demo", auditKey)
	}
	res := check()
	if !res.OK || res.Log.PurgeEntries != 2 || res.Log.Purged != 4 || res.Records != 3 || res.Log.Leaves != 7 || len(res.Log.Purges) != 2 ||
		res.Log.Purges[0].Entry == nil || res.Log.Purges[1].Entry == nil || *res.Log.Purges[0].Entry <= *res.Log.Purges[1].Entry {
		t.Fatalf("two purges in public: %+v %+v", res, res.Log)
	}
	newest, older := *res.Log.Purges[0].Entry, *res.Log.Purges[1].Entry
	cps, err := st.Checkpoints(ctx, "demo")
	if err != nil {
		t.Fatal(err)
	}
	salt := cps[1].EntrySalt
	// Each keeps the rule it applied.
	if !cps[1].Before.Equal(time.Date(2026, 1, 1, 2, 30, 0, 0, time.UTC)) || !cps[0].Before.Equal(time.Date(2026, 1, 1, 4, 30, 0, 0, time.UTC)) {
		t.Errorf("the purges' rules: %v, %v", cps[1].Before, cps[0].Before)
	}

	insider(t, name, `UPDATE checkpoints SET entry_salt = $1 WHERE site = 'demo' AND entry_index = $2`, bytes.Repeat([]byte{7}, 32), older)
	if res := check(); res.OK || res.Reason != proof.Altered || !strings.Contains(res.Detail, fmt.Sprintf("entry %d commits to", older)) {
		t.Errorf("a purge checkpoint whose entry does not open: %+v", res)
	}
	insider(t, name, `UPDATE checkpoints SET entry_salt = $1 WHERE site = 'demo' AND entry_index = $2`, salt, older)
	if res := check(); !res.OK {
		t.Fatalf("the salt put back: %+v", res)
	}
	insider(t, name, `UPDATE checkpoints SET entry_index = NULL WHERE site = 'demo' AND entry_index = $1`, newest)
	if res := check(); res.OK || res.Reason != proof.LogMissing || !strings.Contains(res.Detail, fmt.Sprintf("leaf %d is a purge entry", newest)) {
		t.Errorf("a purge entry no checkpoint names: %+v", res)
	}
}

// A recorded scan is committed to the log as an entry of its own, under
// its site's tag: verify holds each entry to its scan and report, so a
// scan deleted behind the store's back is caught.
func testScansInPublic(t *testing.T, open Opener, insider Insider) {
	ctx := context.Background()
	st, name, signer, keys := openLogged(t, open)
	if err := st.Append(ctx, NewRecord("demo", uuid.Nil)); err != nil {
		t.Fatal(err)
	}
	var scans []*consent.Scan
	for i := range 2 {
		sc := NewScan("demo", i)
		if err := st.AddScan(ctx, sc); err != nil {
			t.Fatal(err)
		}
		scans = append(scans, sc)
	}
	SyncLog(t, st)
	listed, err := st.Scans(ctx, "demo", uuid.Nil, 10)
	if err != nil || len(listed) != 2 || listed[0].EntryIndex == nil || listed[1].EntryIndex == nil {
		t.Fatalf("the scans name no entries: %+v, %v", listed, err)
	}
	auditKey, err := st.LogAuditKey(ctx, "demo")
	if err != nil {
		t.Fatal(err)
	}
	entries, err := st.LogEntries(ctx, 0, 3)
	if err != nil || len(entries) != 3 {
		t.Fatalf("entries: %d, %v", len(entries), err)
	}
	newest, err := st.ScanReport(ctx, "demo", listed[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := translog.ParseLeaf(entries[*newest.EntryIndex])
	if err != nil || leaf.Kind != translog.KindScan || leaf.SiteTag != translog.SiteTag(auditKey, *newest.EntryIndex) ||
		leaf.Commitment != translog.KindScan.Commit(newest.EntrySalt, proof.ScanStatement(newest, newest.Report)) {
		t.Fatalf("the newest scan's entry %+v (%v) is not its commitment under demo's tag", leaf, err)
	}
	check := func() *proof.Result {
		t.Helper()
		return verifyAgainstLog(t, st, keys, signer.VerifierKey(), "demo", auditKey)
	}
	if res := check(); !res.OK || res.Log.ScanEntries != 2 || res.Log.Leaves != 1 {
		t.Fatalf("two scans in public: %+v %+v", res, res.Log)
	}
	insider(t, name, `UPDATE scan_entries SET entry_salt = $1 WHERE entry_index = $2`, bytes.Repeat([]byte{7}, 32), *newest.EntryIndex)
	if res := check(); res.OK || res.Reason != proof.Altered || !strings.Contains(res.Detail, fmt.Sprintf("is not the scan its entry %d commits to", *newest.EntryIndex)) {
		t.Errorf("a scan entry's salt changed: %+v", res)
	}
	insider(t, name, `UPDATE scan_entries SET entry_salt = $1 WHERE entry_index = $2`, newest.EntrySalt, *newest.EntryIndex)
	insider(t, name, `DELETE FROM scans WHERE site = 'demo' AND violations = 1`)
	if res := check(); res.OK || res.Reason != proof.LogMissing || !strings.Contains(res.Detail, "is a scan entry of this site") {
		t.Errorf("a recorded scan deleted behind the store's back: %+v", res)
	}
}

// openLogged opens a fresh store with its log started (named
// koekje.test/log) and its signing keys.
func openLogged(t *testing.T, open Opener) (st store.Store, name string, signer *translog.Signer, keys *proof.Keys) {
	t.Helper()
	st, name = open(t, "")
	signer, err := st.StartLog(context.Background(), "koekje.test/log")
	if err != nil {
		t.Fatal(err)
	}
	if keys, err = proof.OpenKeys(context.Background(), st); err != nil {
		t.Fatal(err)
	}
	return st, name, signer, keys
}

// verifyAgainstLog verifies site's chain, which must hold, and then holds
// it against the store's log under the site's audit key.
func verifyAgainstLog(t *testing.T, st store.Store, keys *proof.Keys, logKey, site string, auditKey []byte) *proof.Result {
	t.Helper()
	ctx := context.Background()
	pubs, ids := keys.Ring().Public()
	res, err := proof.Verify(ctx, st, site, pubs, ids)
	if err != nil || !res.OK {
		t.Fatalf("the chain: %+v, %v", res, err)
	}
	if err := proof.VerifyLog(ctx, st, res, logKey, auditKey, nil); err != nil {
		t.Fatal(err)
	}
	return res
}

// NewScan is a scan report of site as koekje scan --record stores it, with
// n violations.
func NewScan(site string, n int) *consent.Scan {
	verdict := consent.ScanClean
	if n > 0 {
		verdict = consent.ScanFail
	}
	return &consent.Scan{Site: site, StartedAt: time.Date(2026, 11, 20, 9, 30, 15, 123456789, time.UTC),
		ConfigHash: "sha256:" + string(bytes.Repeat([]byte("cd"), 32)), Verdict: verdict, Violations: n, Undeclared: 1, Stale: 2,
		URLs:   []string{"https://example.nl/", "https://example.nl/contact"},
		Report: []byte(fmt.Sprintf(`{"site": %q, "violations": [%s], "undeclared": [], "stale": []}`, site, strings.Repeat(`{"kind":"cookie"},`, n)+`{"kind":"banner"}`)),
	}
}

// Scan reports are kept whole, listed newest first a page at a time, read
// back per site, and kept by the retention purge.
func testScanReports(t *testing.T, open Opener) {
	ctx := context.Background()
	db, _ := open(t, "")
	at := time.Date(2026, 11, 21, 8, 0, 0, 0, time.UTC)
	db.SetClock(func() time.Time { return at })
	var demo []*consent.Scan
	for i := range 3 {
		sc := NewScan("demo", i)
		if err := db.AddScan(ctx, sc); err != nil {
			t.Fatal(err)
		}
		if sc.ID.Version() != 7 || !sc.RecordedAt.Equal(at) {
			t.Fatalf("stored scan: ID %s (version %d), recorded %v; want a UUIDv7 and the store's clock", sc.ID, sc.ID.Version(), sc.RecordedAt)
		}
		demo = append(demo, sc)
	}
	other := NewScan("other", 5)
	if err := db.AddScan(ctx, other); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []func(*consent.Scan){
		func(s *consent.Scan) { s.Report = []byte(`{"site":`) },
		func(s *consent.Scan) { s.Site = "" },
		func(s *consent.Scan) { s.Violations = -1 },
		func(s *consent.Scan) { s.Verdict = "" },
		func(s *consent.Scan) { s.Verdict = "passed" },
		func(s *consent.Scan) { s.Violations = 1 }, // and still clean
	} {
		sc := NewScan("demo", 0)
		bad(sc)
		if err := db.AddScan(ctx, sc); consent.ErrorCode(err) != consent.EINVALID {
			t.Errorf("bad scan %+v stored: %v", sc, err)
		}
	}

	got, err := db.Scans(ctx, "demo", uuid.Nil, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got[0].ID != demo[2].ID || got[2].ID != demo[0].ID {
		t.Fatalf("scans of demo: %d, want the 3 newest first", len(got))
	}
	g, w := got[0], demo[2]
	if g.Site != "demo" || !g.StartedAt.Equal(w.StartedAt.Truncate(time.Microsecond)) || !g.RecordedAt.Equal(at) ||
		g.ConfigHash != w.ConfigHash || g.Violations != 2 || g.Undeclared != 1 || g.Stale != 2 ||
		strings.Join(g.URLs, " ") != strings.Join(w.URLs, " ") || g.Report != nil || g.Clean() {
		t.Errorf("listed scan %+v, want the fields of %+v without the report", g, w)
	}
	if !got[2].Clean() || got[0].Verdict != consent.ScanFail {
		t.Errorf("a scan without violations is not clean: %+v", got[2])
	}
	// A scan a schedule ran says which; one koekje scan ran says none.
	daily := NewScan("sched", 0)
	daily.Schedule = "daily"
	if err := db.AddScan(ctx, daily); err != nil {
		t.Fatal(err)
	}
	byHand := NewScan("sched", 0)
	if err := db.AddScan(ctx, byHand); err != nil {
		t.Fatal(err)
	}
	if got, err := db.Scans(ctx, "sched", uuid.Nil, 2); err != nil || len(got) != 2 || got[0].Schedule != "" || got[1].Schedule != "daily" {
		t.Errorf("scans of a schedule and by hand read back as %+v, %v", got, err)
	}
	if got, err := db.ScanReport(ctx, "sched", daily.ID); err != nil || got.Schedule != "daily" {
		t.Errorf("a scheduled scan's report read back as %+v, %v", got, err)
	}
	// An inconclusive scan (a page not scanned) is stored as such: neither
	// clean nor failed, whatever its counts.
	unsure := NewScan("unsure", 0)
	unsure.Verdict = consent.ScanInconclusive
	if err := db.AddScan(ctx, unsure); err != nil {
		t.Fatal(err)
	}
	if got, err := db.Scans(ctx, "unsure", uuid.Nil, 1); err != nil || len(got) != 1 || got[0].Clean() || !got[0].Inconclusive() {
		t.Errorf("an inconclusive scan read back as %+v, %v", got, err)
	}
	page, err := db.Scans(ctx, "demo", got[0].ID, 1)
	if err != nil || len(page) != 1 || page[0].ID != demo[1].ID {
		t.Fatalf("page after the newest: %v, %v; want the middle scan", page, err)
	}
	if page, err := db.Scans(ctx, "demo", demo[0].ID, 10); err != nil || len(page) != 0 {
		t.Errorf("page after the oldest: %d scans, %v", len(page), err)
	}
	if none, err := db.Scans(ctx, "nowhere", uuid.Nil, 10); err != nil || len(none) != 0 {
		t.Errorf("scans of a site never scanned: %v, %v", none, err)
	}

	full, err := db.ScanReport(ctx, "demo", demo[1].ID)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(full.Report, demo[1].Report) || full.ID != demo[1].ID || full.Violations != 1 {
		t.Errorf("report read back: %s, want %s", full.Report, demo[1].Report)
	}
	if _, err := db.ScanReport(ctx, "demo", other.ID); consent.ErrorCode(err) != consent.ENOTFOUND {
		t.Errorf("another site's scan through demo: %v, want not found", err)
	}
	if _, err := db.ScanReport(ctx, "demo", uuid.Must(uuid.NewV7())); consent.ErrorCode(err) != consent.ENOTFOUND {
		t.Errorf("an unknown scan: %v, want not found", err)
	}

	// Scan reports hold no personal data: the retention purge keeps them.
	db.SetClock(time.Now)
	keys, err := proof.OpenKeys(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Append(ctx, NewRecord("demo", uuid.Nil)); err != nil {
		t.Fatal(err)
	}
	if n, err := db.Purge(ctx, "demo", time.Now().Add(time.Second), keys.SignCheckpoint); err != nil || n != 1 {
		t.Fatalf("purge: %d, %v", n, err)
	}
	if kept, err := db.Scans(ctx, "demo", uuid.Nil, 10); err != nil || len(kept) != 3 {
		t.Errorf("scans after the purge: %d, %v; want all 3", len(kept), err)
	}
}

// A log keeps the name it was made with for life: a later start under
// another public URL signs under the first name with the same key, and
// naming it otherwise is refused: a log must not rename itself at a start
// under another address.
func testLogNamedForLife(t *testing.T, open Opener) {
	ctx := context.Background()
	db, name := open(t, "")
	lk := db
	if o, err := lk.LogOrigin(ctx); err != nil || o != "" {
		t.Fatalf("a new database's log name: %q, %v; want none", o, err)
	}
	first, err := lk.StartLog(ctx, "127.0.0.1:8080/log")
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Append(ctx, NewRecord("demo", uuid.Nil)); err != nil {
		t.Fatal(err)
	}
	SyncLog(t, db)
	db.Close()

	again, _ := open(t, name)
	lk = again
	signer, err := lk.StartLog(ctx, "consent.example.nl/log")
	if err != nil {
		t.Fatal(err)
	}
	if signer.Origin() != "127.0.0.1:8080/log" || signer.VerifierKey() != first.VerifierKey() {
		t.Errorf("restarted under another public URL as %q (%s), want the log's first name and key %s", signer.Origin(), signer.VerifierKey(), first.VerifierKey())
	}
	if o, err := lk.LogOrigin(ctx); err != nil || o != "127.0.0.1:8080/log" {
		t.Errorf("log name after the restart: %q, %v", o, err)
	}
	if err := again.Append(ctx, NewRecord("demo", uuid.Nil)); err != nil {
		t.Fatal(err)
	}
	SyncLog(t, again)
	signed, err := again.LatestCheckpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if cp, _, err := translog.OpenCheckpoint(signed, first.VerifierKey()); err != nil || cp.Size != 2 {
		t.Errorf("checkpoint after the restart under another URL: %+v, %v\n%s", cp, err, signed)
	}
	if _, err := lk.NewLogSigner(ctx, "consent.example.nl/log"); !errors.Is(err, translog.ErrNamed) {
		t.Errorf("naming the log otherwise: %v, want it refused", err)
	}
	if s, err := lk.NewLogSigner(ctx, "127.0.0.1:8080/log"); err != nil || s.VerifierKey() != first.VerifierKey() {
		t.Errorf("the log's own name: %v", err)
	}
}

// Records of both encodings share a chain: a koekje-record-v1 record, as
// stored before the browser's signals were recorded, then records of
// koekje-record-v2 with their signals. Every reader gives each back with
// its encoding and signals, the chain verifies, and the records' GPC
// (the page's or the header's) is what the GPC filter and the stats count.
func testSignals(t *testing.T, open Opener) {
	db, _ := open(t, "")
	ctx := context.Background()
	old := NewRecord("demo", uuid.Nil)
	old.GPC = true
	if err := db.Append(ctx, old); err != nil {
		t.Fatal(err)
	}
	header := NewRecord("demo", old.ConsentID)
	header.Action, header.Encoding, header.GPCHeader, header.Signal = consent.RejectAll, consent.EncodingV2, true, consent.SignalGPCHeader
	adpc := NewRecord("demo", old.ConsentID)
	adpc.Encoding, adpc.ADPC, adpc.Signal = consent.EncodingV2, `withdraw=*, object=direct-marketing`, consent.SignalADPC
	plain := NewRecord("demo", old.ConsentID)
	plain.Encoding, plain.Signal = consent.EncodingV2, consent.SignalNone
	for _, r := range []*consent.Record{header, adpc, plain} {
		if err := db.Append(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	if old.Encoding != 0 || consent.EncodingOf(old) != consent.EncodingV1 {
		t.Fatalf("the record without signals is encoded as %d", consent.EncodingOf(old))
	}
	want := []*consent.Record{old, header, adpc, plain}
	check := func(how string, got []*consent.Record) {
		t.Helper()
		if len(got) != len(want) {
			t.Fatalf("%s: %d records, want %d", how, len(got), len(want))
		}
		for i, g := range got {
			w := want[i]
			if consent.EncodingOf(g) != consent.EncodingOf(w) || g.GPC != w.GPC || g.GPCHeader != w.GPCHeader || g.ADPC != w.ADPC || g.Signal != w.Signal {
				t.Errorf("%s: record %d read back as encoding %d, gpc %v, gpc_header %v, adpc %q, signal %q; want %d, %v, %v, %q, %q", how, i+1,
					consent.EncodingOf(g), g.GPC, g.GPCHeader, g.ADPC, g.Signal, consent.EncodingOf(w), w.GPC, w.GPCHeader, w.ADPC, w.Signal)
			}
			if !bytes.Equal(consent.RecordHash(g), w.Hash) {
				t.Errorf("%s: record %d does not rehash to its stored hash", how, i+1)
			}
		}
	}
	hist, _, err := db.History(ctx, old.ConsentID, "", 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	check("history", hist)
	var chain, scanned []*consent.Record
	if err := db.Chain(ctx, "demo", func(r *consent.Record) error { chain = append(chain, r); return nil }); err != nil {
		t.Fatal(err)
	}
	check("chain", chain)
	if err := db.Scan(ctx, consent.Filter{Site: "demo"}, func(r *consent.Record) error { scanned = append(scanned, r); return nil }); err != nil {
		t.Fatal(err)
	}
	check("export scan", scanned)
	if l, err := db.Latest(ctx, old.ConsentID, "demo"); err != nil || l == nil {
		t.Fatalf("latest: %v, %v", l, err)
	} else {
		if l.Signal != consent.SignalNone || consent.EncodingOf(l) != consent.EncodingV2 {
			t.Errorf("latest: signal %q, encoding %d", l.Signal, consent.EncodingOf(l))
		}
	}
	if n := VerifyChain(t, db, "demo"); n != 4 {
		t.Errorf("the chain has %d records, want 4", n)
	}
	yes := true
	got, _, err := db.Records(ctx, consent.Query{Site: "demo", GPC: &yes, Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	var seqs []int64
	for _, r := range got {
		seqs = append(seqs, r.Seq)
	}
	if !slices.Equal(seqs, []int64{2, 1}) {
		t.Errorf("records with GPC (the page's or the header's): %v, want [2 1]", seqs)
	}
	stats, err := db.Stats(ctx, consent.Filter{Site: "demo"}, []string{"analytics"})
	if err != nil {
		t.Fatal(err)
	}
	if len(stats) != 1 || stats[0].GPC != 2 || stats[0].Total != 4 {
		t.Errorf("stats: %+v; want 4 records, 2 with GPC", stats)
	}
}

// testHeldLog: while the log's tree does not extend its reference (a
// restored backup: the reference kept beside the key file is ahead of the
// database), the store signs nothing and keeps recording: each record is
// committed and waits in the log's queue, which verify counts as pending.
// Once the operator's word lets go (a restart with --accept-log-state),
// what waited is appended in the order it was written, then the records
// after it.
func testHeldLog(t *testing.T, open Opener) {
	ctx := context.Background()
	db, name := open(t, "")
	signer, err := db.StartLog(ctx, "127.0.0.1:8080/log")
	if err != nil {
		t.Fatal(err)
	}
	logKey := signer.VerifierKey()
	for range 3 {
		if err := db.Append(ctx, NewRecord("demo", uuid.Nil)); err != nil {
			t.Fatal(err)
		}
	}
	SyncLog(t, db)
	// The public log reached 40 leaves before this database was restored.
	ref, err := translog.OpenReference(db.KeyFile())
	if err != nil {
		t.Fatal(err)
	}
	if err := ref.Accept(translog.Checkpoint{Origin: signer.Origin(), Size: 40, Hash: tlog.Hash{7}}); err != nil {
		t.Fatal(err)
	}
	var logs lockedBuffer
	guard, err := translog.CheckLogState(ctx, db, db.KeyFile(), slog.New(slog.NewJSONHandler(&logs, nil)), logKey, nil, false)
	if err != nil {
		t.Fatalf("the start's check: %v, want the log held, not an error", err)
	}
	if why := guard.Reason(); !strings.Contains(why, "the database holds 3 leaves, the reference 40") {
		t.Errorf("held because %q, want both sizes named", why)
	}
	db.GuardLog(guard)
	for range 4 {
		if err := db.Append(ctx, NewRecord("demo", uuid.Nil)); err != nil {
			t.Fatalf("a record while the log is held: %v, want it recorded", err)
		}
	}
	SyncLog(t, db)
	size := func(s store.Store) int64 {
		t.Helper()
		signed, err := s.LatestCheckpoint(ctx)
		if err != nil {
			t.Fatal(err)
		}
		cp, _, err := translog.OpenCheckpoint(signed, logKey)
		if err != nil {
			t.Fatal(err)
		}
		return cp.Size
	}
	if n := size(db); n != 3 {
		t.Errorf("the log was signed at %d leaves while held, want 3", n)
	}
	pending := func(s store.Store) int64 {
		t.Helper()
		n, err := s.(proof.PendingStore).LogPending(ctx, "demo", 1000)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := pending(db); n != 4 {
		t.Errorf("%d records wait for the log, want 4", n)
	}
	if n := VerifyChain(t, db, "demo"); n != 7 {
		t.Errorf("%d records, want 7", n)
	}
	WantLogged(t, logs.Bytes(), "ERROR", "msg", "the log signs nothing until its tree is proven to extend what this server signed before; new records are kept and wait for the log")
	db.Close()

	// The operator's word: the reference file gone, a restart with
	// --accept-log-state. What waited is appended, in order.
	if err := os.Remove(translog.ReferencePath(db.KeyFile())); err != nil {
		t.Fatal(err)
	}
	again, _ := open(t, name)
	if _, err := again.StartLog(ctx, "127.0.0.1:8080/log"); err != nil {
		t.Fatal(err)
	}
	guard, err = translog.CheckLogState(ctx, again, again.KeyFile(), slog.New(slog.NewJSONHandler(&logs, nil)), logKey, nil, true)
	if err != nil || guard.Held() {
		t.Fatalf("accepted: %v, held because %q", err, guard.Reason())
	}
	again.GuardLog(guard)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		SyncLog(t, again)
		if size(again) == 7 || time.Now().After(deadline) {
			break
		}
	}
	if n := size(again); n != 7 {
		t.Fatalf("the log has %d leaves after it let go, want the 4 that waited appended: 7", n)
	}
	if err := again.Append(ctx, NewRecord("demo", uuid.Nil)); err != nil {
		t.Fatal(err)
	}
	SyncLog(t, again)
	for seq := int64(1); seq <= 8; seq++ {
		if l, err := again.LeafOf(ctx, "demo", seq); err != nil || l == nil || l.Index != seq-1 {
			t.Errorf("record %d: leaf %+v, %v; want index %d", seq, l, err, seq-1)
		}
	}
	if n := pending(again); n != 0 {
		t.Errorf("%d records still wait", n)
	}
}

// lockedBuffer is a log's output, written and read from several goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

// Bytes is a copy of what was written.
func (b *lockedBuffer) Bytes() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return bytes.Clone(b.b.Bytes())
}

// testSuccessorLog: a log's successor, on the same database with the log
// stopped, carries its leaves, appends the statement and signs under the
// new name and a new key; the old key is kept among the earlier keys; a
// statement that does not fit the log (another count of leaves, another
// key) is refused; the successor, started, appends on and verifies,
// naming what it succeeded.
func testSuccessorLog(t *testing.T, open Opener) {
	ctx := context.Background()
	first, name, signer, keys := openLogged(t, open)
	for range 3 {
		if err := first.Append(ctx, NewRecord("demo", uuid.Nil)); err != nil {
			t.Fatal(err)
		}
	}
	SyncLog(t, first)
	signed, err := first.LatestCheckpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cp, _, err := translog.OpenCheckpoint(signed, signer.VerifierKey())
	if err != nil || cp.Size != 3 {
		t.Fatalf("the old log: %+v %v", cp, err)
	}
	first.Close()
	db, _ := open(t, name)
	ls, ok := db.(store.LogSuccessor)
	if !ok {
		t.Fatal("the store cannot succeed its log")
	}
	statement := func(carried int64, key string) *translog.Successor {
		return &translog.Successor{Origin: "consent.example.nl/log", Predecessor: cp, PredecessorKey: key, Signed: signed, Carried: carried}
	}
	succeed := func(s *translog.Successor) (*translog.Signer, translog.Checkpoint, error) {
		// A stopped instance's hold on the log runs out by itself.
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
			signer, cp, err := ls.SucceedLog(ctx, s)
			if err == nil || !strings.Contains(err.Error(), "stop every instance") || time.Now().After(deadline) {
				return signer, cp, err
			}
		}
	}
	if _, _, err := succeed(statement(2, signer.VerifierKey())); err == nil {
		t.Error("a statement carrying 2 of the log's 3 leaves was taken")
	}
	other, _ := translog.NewSigner(signer.Origin(), bytes.Repeat([]byte{9}, 32))
	if _, _, err := succeed(statement(3, other.VerifierKey())); err == nil {
		t.Error("a statement naming another key than the log's was taken")
	}
	next, ncp, err := succeed(statement(3, signer.VerifierKey()))
	if err != nil {
		t.Fatal(err)
	}
	if next.Origin() != "consent.example.nl/log" || ncp.Size != 4 || next.VerifierKey() == signer.VerifierKey() {
		t.Errorf("the successor: %s %+v", next.VerifierKey(), ncp)
	}
	if earlier, err := db.EarlierLogKeys(ctx); err != nil || len(earlier) != 1 || earlier[0] != signer.VerifierKey() {
		t.Errorf("earlier keys %q (%v), want the old one", earlier, err)
	}
	if now, err := db.LogSigner(ctx); err != nil || now.VerifierKey() != next.VerifierKey() {
		t.Errorf("the log's signer after the succession: %v %v", now, err)
	}
	entries, err := db.LogEntries(ctx, 3, 4)
	if err != nil || len(entries) != 1 {
		t.Fatalf("the statement's entry: %v", err)
	}
	if s, err := translog.ParseSuccessor(entries[0]); err != nil || s.Carried != 3 || s.Predecessor != cp {
		t.Errorf("the statement in the log: %+v %v", s, err)
	}
	started, err := db.StartLog(ctx, "127.0.0.1:8080/log")
	if err != nil || started.VerifierKey() != next.VerifierKey() {
		t.Fatalf("the successor started: %v %v", started, err)
	}
	for range 2 {
		if err := db.Append(ctx, NewRecord("demo", uuid.Nil)); err != nil {
			t.Fatal(err)
		}
	}
	SyncLog(t, db)
	auditKey, err := db.LogAuditKey(ctx, "demo")
	if err != nil {
		t.Fatal(err)
	}
	res := verifyAgainstLog(t, db, keys, next.VerifierKey(), "demo", auditKey)
	if !res.OK || res.Log == nil || res.Log.Size != 6 || len(res.Log.Successions) != 1 || res.Log.Successions[0].Entry != 3 ||
		res.Log.Successions[0].Checked != "the 3 leaves before it are the tree of the old log's last checkpoint" {
		t.Errorf("verify after the succession: %+v %+v", res, res.Log)
	}
}
