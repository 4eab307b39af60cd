package sqlite_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/koekje/koekje/server/consent"
	"github.com/koekje/koekje/server/sqlite"
)

// MustOpen opens a store on a file in a fresh temporary directory.
func MustOpen(tb testing.TB) (*sqlite.DB, string) {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), "koekje.db")
	db, err := sqlite.Open(path, nil)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	return db, path
}

func newRecord(site string, consentID uuid.UUID) *consent.Record {
	return &consent.Record{
		ConsentID: consentID, Site: site, Action: consent.Custom,
		Choices:  map[string]bool{"necessary": true, "analytics": false},
		Revision: 1, ConfigHash: "sha256:" + string(bytes.Repeat([]byte("ab"), 32)),
		Language: "nl", URL: "https://example.nl/", UserAgent: "test", IP: "192.0.2.0/24",
	}
}

func TestAppendHistory(t *testing.T) {
	db, _ := MustOpen(t)
	ctx := context.Background()
	id := uuid.New()
	first, second := newRecord("demo", id), newRecord("demo", id)
	second.Action = consent.Withdraw
	for _, r := range []*consent.Record{first, newRecord("demo", uuid.New()), second} {
		if err := db.Append(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	got, _, err := db.History(ctx, id, "", 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Fatalf("history has %d records, want 2", len(got))
	}
	if got[0].RecordID != first.RecordID || got[1].RecordID != second.RecordID {
		t.Errorf("history out of order: %v, %v", got[0].RecordID, got[1].RecordID)
	}
	if got[1].Action != consent.Withdraw || got[0].Choices["necessary"] != true {
		t.Errorf("fields not kept: %+v", got[1])
	}
	if got[0].Seq != 1 || got[1].Seq != 3 {
		t.Errorf("seq = %d, %d; want 1, 3", got[0].Seq, got[1].Seq)
	}
	if !bytes.Equal(consent.RecordHash(got[1]), got[1].Hash) {
		t.Error("stored hash does not match the record read back")
	}
	if got[0].RecordID.Version() != 7 {
		t.Errorf("record id is version %d, want 7", got[0].RecordID.Version())
	}
}

func TestConcurrentAppendsChain(t *testing.T) {
	db, path := MustOpen(t)
	ctx := context.Background()
	const n = 500
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			site := "a"
			if i%3 == 0 {
				site = "b"
			}
			errs <- db.Append(ctx, newRecord(site, uuid.New()))
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	// Reopen: the chain continues from the stored head.
	db2, err := sqlite.Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db2.Close()
	r := newRecord("b", uuid.New())
	if err := db2.Append(ctx, r); err != nil {
		t.Fatal(err)
	}
	if want := int64((n+2)/3) + 1; r.Seq != want {
		t.Errorf("seq after reopen = %d, want %d", r.Seq, want)
	}
	if r.PrevHash == nil {
		t.Error("record after reopen has no prev_hash")
	}
}

func TestAppendAfterClose(t *testing.T) {
	db, _ := MustOpen(t)
	db.Close()
	err := db.Append(context.Background(), newRecord("demo", uuid.New()))
	if consent.ErrorCode(err) != consent.EUNAVAILABLE {
		t.Errorf("append after close: %v, want %s", err, consent.EUNAVAILABLE)
	}
}

func TestVersionsAndSecrets(t *testing.T) {
	db, _ := MustOpen(t)
	ctx := context.Background()
	if ok, err := db.HasVersion(ctx, "demo", "sha256:x"); err != nil || ok {
		t.Fatalf("HasVersion before put = %v, %v", ok, err)
	}
	for i := 0; i < 2; i++ {
		if err := db.PutVersion(ctx, "demo", "sha256:x", []byte(`{}`)); err != nil {
			t.Fatal(err)
		}
	}
	if ok, err := db.HasVersion(ctx, "demo", "sha256:x"); err != nil || !ok {
		t.Fatalf("HasVersion after put = %v, %v", ok, err)
	}
	if ok, _ := db.HasVersion(ctx, "other", "sha256:x"); ok {
		t.Error("version leaked to another site")
	}
	a, err := db.Secret(ctx, "k", 32)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := db.Secret(ctx, "k", 32)
	if len(a) != 32 || !bytes.Equal(a, b) {
		t.Errorf("secret not kept: %x vs %x", a, b)
	}
}

func TestDecodeChoices(t *testing.T) {
	for _, in := range []string{
		`{"analytics":false,"embeds":true,"necessary":true}`,
		`{}`,
		`{"a\"b":true}`,
		`{ "spaced" : true }`,
		`{"n":1}`,
	} {
		want := map[string]bool{}
		werr := json.Unmarshal([]byte(in), &want)
		got, err := sqlite.DecodeChoices([]byte(in))
		if (err != nil) != (werr != nil) || (err == nil && !maps.Equal(got, want)) {
			t.Errorf("%s: got %v, %v; want %v, %v", in, got, err, want, werr)
		}
	}
}

func TestEncodeChoices(t *testing.T) {
	for _, in := range []map[string]bool{
		{"necessary": true, "analytics": false, "embeds": true, "functional": false},
		{},
		{"a<b": true, "z": false},
		{"ü": true},
	} {
		want, _ := json.Marshal(in)
		got, err := sqlite.EncodeChoices(in)
		if err != nil || got != string(want) {
			t.Errorf("%v: %s, want %s", in, got, want)
		}
	}
}

// A clock that goes back does not make time go back along the chain.
func TestTimeNeverRunsBackwards(t *testing.T) {
	db, _ := MustOpen(t)
	t0 := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	times := []time.Time{t0, t0.Add(-time.Hour), t0.Add(time.Minute)}
	i := 0
	db.Now = func() time.Time { i++; return times[i-1] }
	var got []time.Time
	for range times {
		r := newRecord("demo", uuid.New())
		if err := db.Append(context.Background(), r); err != nil {
			t.Fatal(err)
		}
		got = append(got, r.RecordedAt)
	}
	if !got[1].Equal(t0) || !got[2].Equal(t0.Add(time.Minute)) {
		t.Errorf("recorded times %v", got)
	}
}

func count(t *testing.T, db *sqlite.DB) int {
	t.Helper()
	n := 0
	if err := db.Scan(context.Background(), consent.Filter{Site: "demo"}, func(*consent.Record) error { n++; return nil }); err != nil {
		t.Fatal(err)
	}
	return n
}

// A full disk fails whole batches with EUNAVAILABLE, writes nothing of them,
// and the store goes on once there is room, without a restart.
func TestFullDiskThenRoom(t *testing.T) {
	db, _ := MustOpen(t)
	ctx := context.Background()
	for i := 0; i < 5; i++ {
		if err := db.Append(ctx, newRecord("demo", uuid.New())); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.LimitSize(ctx, 1); err != nil {
		t.Fatal(err)
	}
	var failedN atomic.Int64
	var wg sync.WaitGroup
	for i := 0; i < 200; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := newRecord("demo", uuid.New())
			r.UserAgent = strings.Repeat("x", 200) + uuid.NewString() // new texts need new pages
			if err := db.Append(ctx, r); consent.ErrorCode(err) == consent.EUNAVAILABLE {
				failedN.Add(1)
			} else if err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	failed := int(failedN.Load())
	got := count(t, db)
	if failed == 0 || got != 5+200-failed {
		t.Fatalf("%d failed, %d stored: a failed batch left records behind or nothing failed", failed, got)
	}
	if err := db.LimitSize(ctx, 0); err != nil {
		t.Fatal(err)
	}
	r := newRecord("demo", uuid.New())
	if err := db.Append(ctx, r); err != nil {
		t.Fatalf("after making room: %v", err)
	}
	if want := int64(5 + 200 - failed + 1); r.Seq != want {
		t.Errorf("seq %d after recovery, want %d: failed batches used numbers", r.Seq, want)
	}
}

// BenchmarkAppend measures durable appends through group commit from many
// concurrent writers (synchronous=FULL: each batch is fsynced).
// BenchmarkAppend: durable appends from 32 goroutines per core, without and
// with the transparency log (a leaf, its tree hashes and a signed
// checkpoint per batch).
func BenchmarkAppend(b *testing.B) {
	for _, withLog := range []bool{false, true} {
		b.Run(fmt.Sprintf("log=%v", withLog), func(b *testing.B) {
			db, _ := MustOpen(b)
			ctx := context.Background()
			if withLog {
				if _, err := db.StartLog(ctx, "bench/log"); err != nil {
					b.Fatal(err)
				}
			}
			b.SetParallelism(32)
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := db.Append(ctx, newRecord("demo", uuid.New())); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}

// A full database refuses every write but logs at most one line every ten
// seconds, however many batches fail.
func TestFullDiskLogsOnce(t *testing.T) {
	var logs bytes.Buffer
	db, err := sqlite.Open(filepath.Join(t.TempDir(), "k.db"), slog.New(slog.NewJSONHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	if err := db.LimitSize(ctx, 1); err != nil {
		t.Fatal(err)
	}
	failed := 0
	for range 30 {
		r := newRecord("demo", uuid.Nil)
		r.UserAgent = strings.Repeat("x", 300) + uuid.NewString()
		if consent.ErrorCode(db.Append(ctx, r)) == consent.EUNAVAILABLE {
			failed++
		}
	}
	if failed < 5 {
		t.Fatalf("%d of 30 writes failed on a full database", failed)
	}
	if n := strings.Count(logs.String(), `"commit batch"`); n != 1 {
		t.Errorf("%d log lines for %d failed batches, want 1:\n%s", n, failed, logs.String())
	}
}

// A database whose append-only trigger was dropped is refused.
func TestMissingAppendOnlyTriggerRefused(t *testing.T) {
	db, path := MustOpen(t)
	if err := db.Append(context.Background(), newRecord("demo", uuid.Nil)); err != nil {
		t.Fatal(err)
	}
	db.Close()
	raw, err := sql.Open("sqlite3", path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := raw.Exec(`DROP TRIGGER records_append_only`); err != nil {
		t.Fatal(err)
	}
	raw.Close()
	if db, err := sqlite.Open(path, nil); err == nil || !strings.Contains(err.Error(), "append-only trigger") {
		if db != nil {
			db.Close()
		}
		t.Fatalf("opened a database without its append-only trigger: %v", err)
	}
}
