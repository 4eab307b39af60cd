package postgres_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/koekje/koekje/config"
	"github.com/koekje/koekje/server/consent"
	"github.com/koekje/koekje/server/postgres"
	"github.com/koekje/koekje/server/postgres/pgtest"
	"github.com/koekje/koekje/server/proof"
	"github.com/koekje/koekje/server/store"
	"github.com/koekje/koekje/server/store/storetest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	pgtest.StopShared()
	os.Exit(code)
}

// database is a fresh database, migrated, and a key file for it.
type database struct{ dsn, keyFile string }

var (
	dbMu sync.Mutex
	dbs  = map[string]database{}
)

// open opens a store on db (a fresh one when db is ""), closed when t ends.
func open(t testing.TB, name string) (*postgres.DB, string) {
	t.Helper()
	dbMu.Lock()
	d, ok := dbs[name]
	dbMu.Unlock()
	if !ok {
		d = database{pgtest.Shared(t).NewDatabaseFrom(t, postgres.Schema), filepath.Join(t.TempDir(), "koekje.key")}
		name = d.dsn
		dbMu.Lock()
		dbs[name] = d
		dbMu.Unlock()
	}
	db, err := postgres.Open(context.Background(), d.dsn, postgres.Options{KeyFile: d.keyFile})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db, name
}

func TestStore(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, name string) (store.Store, string) { return open(t, name) }, insider)
}

// insider runs a statement on the database with a connection of its own,
// as psql would.
func insider(t *testing.T, dsn, statement string, args ...any) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, statement, args...); err != nil {
		t.Fatalf("%s: %v", statement, err)
	}
}

// Two instances on one database, 32 goroutines over 3 sites: every chain
// verifies, no record is lost or written twice, and the instances did
// meet (some batches were retried after the other moved a head).
func TestTwoInstancesOneChain(t *testing.T) {
	t.Parallel()
	a, name := open(t, "")
	b, _ := open(t, name)
	ctx := context.Background()
	const goroutines, each = 32, 60
	sites := []string{"s1", "s2", "s3"}
	var mu sync.Mutex
	seen := map[string]map[int64]uuid.UUID{}
	for _, s := range sites {
		seen[s] = map[int64]uuid.UUID{}
	}
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			db := a
			if g%2 == 1 {
				db = b
			}
			for i := range each {
				r := storetest.NewRecord(sites[(g+i)%3], uuid.Nil)
				if err := db.Append(ctx, r); err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				if prev, dup := seen[r.Site][r.Seq]; dup {
					t.Errorf("%s seq %d acknowledged twice: %v and %v", r.Site, r.Seq, prev, r.RecordID)
				}
				seen[r.Site][r.Seq] = r.RecordID
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	total := int64(0)
	for _, s := range sites {
		n := storetest.VerifyChain(t, a, s)
		total += n
		if n != int64(len(seen[s])) {
			t.Errorf("%s: %d records stored, %d acknowledged", s, n, len(seen[s]))
		}
		if err := a.Chain(ctx, s, func(r *consent.Record) error {
			if seen[s][r.Seq] != r.RecordID {
				return fmt.Errorf("%s seq %d is %v, acknowledged as %v", s, r.Seq, r.RecordID, seen[s][r.Seq])
			}
			return nil
		}); err != nil {
			t.Error(err)
		}
	}
	if total != goroutines*each {
		t.Errorf("%d records, want %d", total, goroutines*each)
	}
	t.Logf("retried batches: %d and %d", a.Retries(), b.Retries())
	if a.Retries()+b.Retries() == 0 {
		t.Error("no batch was ever retried: the two instances never wrote to one chain at once, so the test proved nothing")
	}
	// Time never runs backwards along a chain, whichever instance wrote.
	for _, s := range sites {
		var last time.Time
		a.Chain(ctx, s, func(r *consent.Record) error {
			if r.RecordedAt.Before(last) {
				t.Errorf("%s seq %d recorded at %v, before its predecessor's %v", s, r.Seq, r.RecordedAt, last)
			}
			last = r.RecordedAt
			return nil
		})
	}
}

// A purge racing appends never takes a text from under a record: every
// append succeeds, every record reads back with its texts, and the texts
// no record refers to are gone once the purge runs with no write beside it.
func TestPurgeRacingAppends(t *testing.T) {
	t.Parallel()
	db, name := open(t, "")
	other, _ := open(t, name)
	ctx := context.Background()
	keys, err := proof.OpenKeys(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	var stop atomic.Bool
	var appended atomic.Int64
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := other
			if g%2 == 0 {
				s = db
			}
			for i := 0; !stop.Load(); i++ {
				r := storetest.NewRecord("demo", uuid.Nil)
				// A few texts that every purge finds unreferenced for a moment
				// (their records are purged) and batches keep using again.
				r.URL = fmt.Sprintf("https://example.nl/page-%d", i%4)
				r.UserAgent = fmt.Sprintf("agent-%d", (i+g)%3)
				if err := s.Append(ctx, r); err != nil {
					t.Error(err)
					return
				}
				appended.Add(1)
			}
		}()
	}
	purged, purges := int64(0), 0
	for purges < 40 || appended.Load() < 400 {
		n, err := db.Purge(ctx, "demo", time.Now().Add(time.Hour), keys.SignCheckpoint)
		if err != nil {
			t.Fatalf("purge %d: %v", purges, err)
		}
		purged += n
		purges++
		if purges > 100000 {
			t.Fatal("appends made no progress")
		}
	}
	stop.Store(true)
	wg.Wait()
	if purged == 0 {
		t.Fatal("no purge deleted a record: it raced nothing")
	}
	kept := 0
	if err := db.Scan(ctx, consent.Filter{Site: "demo"}, func(r *consent.Record) error {
		kept++
		if !strings.HasPrefix(r.URL, "https://example.nl/page-") || !strings.HasPrefix(r.UserAgent, "agent-") || !strings.HasPrefix(r.ConfigHash, "sha256:") {
			return fmt.Errorf("seq %d lost a text: %q %q %q", r.Seq, r.URL, r.UserAgent, r.ConfigHash)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if int64(kept)+purged != appended.Load() {
		t.Errorf("%d kept + %d purged, %d appended", kept, purged, appended.Load())
	}
	storetest.VerifyChain(t, db, "demo")
	t.Logf("%d appends, %d purges deleting %d records", appended.Load(), purges, purged)

	// With nothing writing, a purge of everything leaves no text behind.
	if _, err := db.Purge(ctx, "demo", time.Now().Add(time.Hour), keys.SignCheckpoint); err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var texts, requests, records int
	if err := conn.QueryRow(ctx, `SELECT (SELECT count(*) FROM texts), (SELECT count(*) FROM requests), (SELECT count(*) FROM records)`).Scan(&texts, &requests, &records); err != nil {
		t.Fatal(err)
	}
	if texts != 0 || requests != 0 || records != 0 {
		t.Errorf("after purging everything: %d texts, %d request IDs, %d records", texts, requests, records)
	}
}

// Instances starting together migrate once; the records are append-only,
// and a database whose trigger is gone is refused.
func TestMigrationsAndAppendOnly(t *testing.T) {
	t.Parallel()
	first, name := open(t, "")
	ctx := context.Background()
	if err := first.Append(ctx, storetest.NewRecord("demo", uuid.Nil)); err != nil {
		t.Fatal(err)
	}
	if err := first.AddScan(ctx, storetest.NewScan("demo", 1)); err != nil {
		t.Fatal(err)
	}
	fresh := pgtest.Shared(t).NewDatabase(t)
	key := filepath.Join(t.TempDir(), "k.key")
	var wg sync.WaitGroup
	errs := make(chan error, 6)
	for range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			db, err := postgres.Open(ctx, fresh, postgres.Options{KeyFile: key})
			if err == nil {
				db.Close()
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("instances starting together: %v", err)
		}
	}
	conn, err := pgx.Connect(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `UPDATE records SET gpc = true`); err == nil || !strings.Contains(err.Error(), "append-only") {
		t.Errorf("update of a record: %v, want the append-only refusal", err)
	}
	if _, err := conn.Exec(ctx, `UPDATE scans SET violations = 0`); err == nil || !strings.Contains(err.Error(), "scan reports are append-only") {
		t.Errorf("update of a scan report: %v, want the append-only refusal", err)
	}
	if _, err := conn.Exec(ctx, `DROP TRIGGER records_append_only ON records`); err != nil {
		t.Fatal(err)
	}
	if db, err := postgres.Open(ctx, name, postgres.Options{KeyFile: dbs[name].keyFile}); err == nil || !strings.Contains(err.Error(), "append-only trigger") {
		if db != nil {
			db.Close()
		}
		t.Fatalf("opened a database without its append-only trigger: %v", err)
	}
}

// The keys are sealed under the key file: the database holds none in the
// clear, and without its key file (or with another) it opens no key.
func TestKeyFile(t *testing.T) {
	t.Parallel()
	db, name := open(t, "")
	ctx := context.Background()
	secret, err := db.Secret(ctx, store.VisitorTokenSecret, 64)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var inClear bool
	if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM secrets WHERE position($1::bytea IN sealed) > 0)`, secret).Scan(&inClear); err != nil || inClear {
		t.Errorf("the secret is stored in the clear (%v)", err)
	}
	if _, err := postgres.Open(ctx, name, postgres.Options{}); err == nil || !strings.Contains(err.Error(), "--key-file") {
		t.Errorf("opened without a key file: %v", err)
	}
	missing := filepath.Join(t.TempDir(), "missing.key")
	if _, err := postgres.Open(ctx, name, postgres.Options{KeyFile: missing}); err == nil || !strings.Contains(err.Error(), "sealed with a key file") {
		t.Errorf("opened with a missing key file: %v", err)
	}
	if _, err := os.Stat(missing); err == nil {
		t.Error("a key file was made for a database whose keys are sealed with another")
	}
}

// A record PostgreSQL could not store is refused alone, as invalid, and
// does not fail the batch it would have joined.
func TestUnstorableRecordRefused(t *testing.T) {
	t.Parallel()
	db, _ := open(t, "")
	r := storetest.NewRecord("demo", uuid.Nil)
	r.Language = "nl\x00"
	if err := db.Append(context.Background(), r); consent.ErrorCode(err) != consent.EINVALID {
		t.Errorf("a NUL in a text column: %v, want invalid", err)
	}
	if err := db.Append(context.Background(), storetest.NewRecord("demo", uuid.Nil)); err != nil {
		t.Fatal(err)
	}
}

// A damaged banner version is logged at ERROR, naming its site and hash.
func TestDamagedVersionLogged(t *testing.T) {
	t.Parallel()
	_, name := open(t, "")
	dbMu.Lock()
	d := dbs[name]
	dbMu.Unlock()
	var logs bytes.Buffer
	db, err := postgres.Open(context.Background(), d.dsn, postgres.Options{KeyFile: d.keyFile, Log: slog.New(slog.NewJSONHandler(&logs, nil))})
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
	insider(t, d.dsn, `UPDATE versions SET body = $1 WHERE site = 'demo'`, []byte(`{"texts":{"nl":{"accept":"Alles weigeren"}}}`))
	if _, err := db.Version(ctx, "demo", hash); consent.ErrorCode(err) != consent.EDAMAGED {
		t.Fatalf("the altered version: %v", err)
	}
	storetest.WantLogged(t, logs.Bytes(), "ERROR", "site", "demo", "hash", hash)
}
