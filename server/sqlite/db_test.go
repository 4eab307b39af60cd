package sqlite_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"log/slog"
	"maps"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/google/uuid"

	"github.com/koekje/koekje/config"
	"github.com/koekje/koekje/server/consent"
	"github.com/koekje/koekje/server/sqlite"
	"github.com/koekje/koekje/server/store"
	"github.com/koekje/koekje/server/store/storetest"
	"github.com/koekje/koekje/server/translog"
)

// The shared store suite, on SQLite files in temporary directories.
func TestStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T, name string) (store.Store, string) {
		if name == "" {
			name = filepath.Join(t.TempDir(), "koekje.db")
		}
		db, err := sqlite.Open(name, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return db, name
	}, insider)
}

// insider runs a statement on the database file with a connection of its
// own, as the sqlite3 shell would.
func insider(t *testing.T, path, statement string, args ...any) {
	t.Helper()
	raw, err := sql.Open("sqlite3", path)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	if _, err := raw.Exec(statement, args...); err != nil {
		t.Fatalf("%s: %v", statement, err)
	}
}

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

var newRecord = storetest.NewRecord

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
// checkpoint per batch), and with the log guarded by its reference as serve
// runs it (each batch asks the guard before it signs).
func BenchmarkAppend(b *testing.B) {
	for _, mode := range []string{"none", "log", "guarded"} {
		b.Run("log="+mode, func(b *testing.B) {
			db, _ := MustOpen(b)
			ctx := context.Background()
			if mode != "none" {
				signer, err := db.StartLog(ctx, "bench/log")
				if err != nil {
					b.Fatal(err)
				}
				if mode == "guarded" {
					guard, err := translog.CheckLogState(ctx, db, db.KeyFile(), nil, signer.VerifierKey(), nil, false)
					if err != nil || guard.Held() {
						b.Fatalf("guard: %v %q", err, guard.Reason())
					}
					db.GuardLog(guard)
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

// A recorded scan report cannot be changed in place.
func TestScanReportsAppendOnly(t *testing.T) {
	db, path := MustOpen(t)
	if err := db.AddScan(context.Background(), storetest.NewScan("demo", 1)); err != nil {
		t.Fatal(err)
	}
	raw, err := sql.Open("sqlite3", path)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	if _, err := raw.Exec(`UPDATE scans SET violations = 0`); err == nil || !strings.Contains(err.Error(), "scan reports are append-only") {
		t.Errorf("update of a scan report: %v, want the append-only refusal", err)
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

// A damaged banner version is logged at ERROR, naming its site and hash.
func TestDamagedVersionLogged(t *testing.T) {
	t.Parallel()
	var logs bytes.Buffer
	path := filepath.Join(t.TempDir(), "k.db")
	db, err := sqlite.Open(path, slog.New(slog.NewJSONHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	body := []byte(`{"texts":{"nl":{"accept":"Alles accepteren"}}}`)
	hash := config.Hash(body)
	if err := db.PutVersion(ctx, "demo", hash, body); err != nil {
		t.Fatal(err)
	}
	insider(t, path, `UPDATE versions SET body = $1 WHERE site = 'demo'`, []byte(`{"texts":{"nl":{"accept":"Alles weigeren"}}}`))
	if _, err := db.Version(ctx, "demo", hash); consent.ErrorCode(err) != consent.EDAMAGED {
		t.Fatalf("the altered version: %v", err)
	}
	storetest.WantLogged(t, logs.Bytes(), "ERROR", "site", "demo", "hash", hash)
}
