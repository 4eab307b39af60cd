package sqlite

import (
	"context"
	"database/sql"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/koekje/koekje/server/consent"
	"github.com/koekje/koekje/server/keyfile"
)

// A database written by schema 1 (records indexed by the random consent ID
// itself) gets the consent keys of its records when it is opened.
func TestMigrateConsentKeys(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "old.db")
	old, err := sql.Open("sqlite3", "file:"+path+"?_journal_mode=WAL")
	if err != nil {
		t.Fatal(err)
	}
	tx, err := old.Begin()
	if err != nil {
		t.Fatal(err)
	}
	if err := migrations[0](tx, nil); err != nil {
		t.Fatal(err)
	}
	const n = 25000 // more than one page of the migration's walk
	a, b := uuid.New(), uuid.New()
	if _, err := tx.Exec(`INSERT INTO texts (id, value) VALUES (1, 'sha256:x'), (2, 'https://example.nl/'), (3, 'ua')`); err != nil {
		t.Fatal(err)
	}
	ins, err := tx.Prepare(`INSERT INTO records (record_id, site, seq, consent_id, recorded_at, action,
		choices, services, revision, config_hash, language, url, user_agent, ip, gpc, prev_hash, hash)
		VALUES (?, 'demo', ?, ?, ?, 'custom', '{"necessary":true}', '', 1, 1, 'nl', 2, 3, '192.0.2.0/24', 0, NULL, x'00')`)
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		id := uuid.New()
		switch i {
		case 7, n - 1:
			id = a
		case 100:
			id = b
		}
		rid := uuid.Must(uuid.NewV7())
		if _, err := ins.Exec(rid[:], i+1, id[:], 1_700_000_000_000_000+i); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := tx.Exec(`PRAGMA user_version = 1`); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	old.Close()

	db, err := Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for id, want := range map[uuid.UUID][]int64{a: {8, n}, b: {101}} {
		got, _, err := db.History(ctx, id, "", 0, 1000)
		if err != nil {
			t.Fatal(err)
		}
		var seqs []int64
		for _, r := range got {
			seqs = append(seqs, r.Seq)
		}
		if len(seqs) != len(want) || seqs[0] != want[0] || seqs[len(seqs)-1] != want[len(want)-1] {
			t.Errorf("history of %s: seqs %v, want %v", id, seqs, want)
		}
	}
	var missing int
	if err := db.read.QueryRow(`SELECT count(*) FROM records WHERE length(consent_key) != 16`).Scan(&missing); err != nil {
		t.Fatal(err)
	}
	if missing != 0 {
		t.Errorf("%d records have no consent key", missing)
	}
	// The records are append-only again.
	if _, err := db.write.Exec(`UPDATE records SET gpc = 1 WHERE seq = 1`); err == nil || !strings.Contains(err.Error(), "append-only") {
		t.Errorf("update after migration: %v, want the append-only refusal", err)
	}
	var version int
	db.write.QueryRow(`PRAGMA user_version`).Scan(&version)
	if version != len(migrations) {
		t.Errorf("user_version = %d, want %d", version, len(migrations))
	}
}

// Look-ups go through the consent key index, and an ID that shares a key
// with another (it differs only in its version bits) finds nothing.
func TestConsentKeyLookup(t *testing.T) {
	ctx := context.Background()
	db := openTemp(t)
	var plan []string
	key := uuid.New()
	rows, err := db.read.Query(`EXPLAIN QUERY PLAN SELECT `+recordColumns+` FROM records r
		WHERE r.consent_key = ? AND r.consent_id = ? ORDER BY r.id`, key[:], key[:])
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id, parent, unused int
		var detail string
		rows.Scan(&id, &parent, &unused, &detail)
		plan = append(plan, detail)
	}
	rows.Close()
	if p := strings.Join(plan, "; "); !strings.Contains(p, "USING INDEX records_consent_key") || strings.Contains(p, "TEMP B-TREE") {
		t.Errorf("history plan: %s", p)
	}

	rec := newTestRecord()
	if err := db.Append(ctx, rec); err != nil {
		t.Fatal(err)
	}
	if rec.ConsentID.Version() != 4 {
		t.Fatalf("minted consent ID %s is version %d", rec.ConsentID, rec.ConsentID.Version())
	}
	twin := rec.ConsentID
	twin[6] = twin[6]&0x0f | 0x50 // version 5: the same 122 bits, so the same key
	if db.ids.Key(twin) != db.ids.Key(rec.ConsentID) {
		t.Fatal("the twin should share the key")
	}
	got, _, err := db.History(ctx, twin, "", 0, 1000)
	if err != nil || len(got) != 0 {
		t.Errorf("history of the twin: %d records, %v; want none", len(got), err)
	}
	if got, _, _ := db.History(ctx, rec.ConsentID, "", 0, 1000); len(got) != 1 {
		t.Errorf("history of the minted ID: %d records, want 1", len(got))
	}
}

func newTestRecord() *consent.Record {
	return &consent.Record{
		Site: "demo", Action: consent.AcceptAll, Choices: map[string]bool{"necessary": true},
		Revision: 1, ConfigHash: "sha256:x", Language: "nl", URL: "https://example.nl/",
		UserAgent: "test", IP: "192.0.2.0/24",
	}
}

// Readers do not map the file: a mapping keeps every page touched resident,
// once per connection.
func TestReadersDoNotMap(t *testing.T) {
	db := openTemp(t)
	var size int64
	if err := db.read.QueryRow(`PRAGMA mmap_size`).Scan(&size); err != nil {
		t.Fatal(err)
	}
	if size != 0 {
		t.Errorf("readers map %d bytes", size)
	}
}

// A database that refuses writes (SQLITE_READONLY, as when its file or
// file system turned read-only) gives "unavailable" with nothing of the
// batch stored, and the same store writes again once it may, without a
// restart and without a gap in the chain.
func TestReadOnlyThenWritable(t *testing.T) {
	ctx := context.Background()
	db := openTemp(t)
	if err := db.Append(ctx, newTestRecord()); err != nil {
		t.Fatal(err)
	}
	if _, err := db.write.Exec(`PRAGMA query_only = 1`); err != nil {
		t.Fatal(err)
	}
	rec := newTestRecord()
	err := db.Append(ctx, rec)
	if consent.ErrorCode(err) != consent.EUNAVAILABLE {
		t.Fatalf("append to a read-only database: %v, want unavailable", err)
	}
	var n int
	if err := db.read.QueryRow(`SELECT count(*) FROM records`).Scan(&n); err != nil || n != 1 {
		t.Fatalf("%d records after the refused write (%v), want 1", n, err)
	}
	if _, err := db.write.Exec(`PRAGMA query_only = 0`); err != nil {
		t.Fatal(err)
	}
	rec = newTestRecord()
	if err := db.Append(ctx, rec); err != nil {
		t.Fatalf("after the database is writable again: %v", err)
	}
	if rec.Seq != 2 {
		t.Errorf("seq %d after recovery, want 2", rec.Seq)
	}
}

// openTemp opens a store on a new database in a temporary directory.
func openTemp(t *testing.T) *DB {
	t.Helper()
	db, err := Open(filepath.Join(t.TempDir(), "koekje.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// A scan for one visitor goes through the consent key, with or without a
// site and period: never a walk over the site's whole chain.
func TestScanOneVisitorUsesConsentKey(t *testing.T) {
	ctx := context.Background()
	db := openTemp(t)
	rec := newTestRecord()
	if err := db.Append(ctx, rec); err != nil {
		t.Fatal(err)
	}
	for _, f := range []consent.Filter{
		{ConsentID: rec.ConsentID},
		{ConsentID: rec.ConsentID, Site: "demo"},
		{ConsentID: rec.ConsentID, Site: "demo", From: time.Now().Add(-time.Hour), To: time.Now().Add(time.Hour)},
	} {
		q, args, err := db.scanQuery(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		rows, err := db.read.Query("EXPLAIN QUERY PLAN "+q, args...)
		if err != nil {
			t.Fatal(err)
		}
		var plan []string
		for rows.Next() {
			var id, parent, unused int
			var detail string
			rows.Scan(&id, &parent, &unused, &detail)
			plan = append(plan, detail)
		}
		rows.Close()
		if p := strings.Join(plan, "; "); !strings.Contains(p, "USING INDEX records_consent_key") {
			t.Errorf("%+v: plan %s", f, p)
		}
		var n int
		if err := db.Scan(ctx, f, func(*consent.Record) error { n++; return nil }); err != nil || n != 1 {
			t.Errorf("%+v: %d records, %v; want 1", f, n, err)
		}
	}
}

// migrationIndex is the schema version just before migration m: a test
// that takes a database back before m names it, so that later migrations
// do not move it.
func migrationIndex(t testing.TB, m func(*sql.Tx, *keyfile.Key) error) int {
	t.Helper()
	for i, f := range migrations {
		if reflect.ValueOf(f).Pointer() == reflect.ValueOf(m).Pointer() {
			return i
		}
	}
	t.Fatal("no such migration")
	return 0
}

// SchemaBeforeLogName is the schema version before the log's name was
// kept, for the package's outside tests.
func SchemaBeforeLogName(t testing.TB) int { return migrationIndex(t, nameTheLog) }

// SchemaBeforeRequestHashes is the schema version before request IDs were
// kept as keyed hashes.
func SchemaBeforeRequestHashes(t testing.TB) int { return migrationIndex(t, hashRequestIDs) }
