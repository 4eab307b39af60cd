package sqlite_test

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/koekje/koekje/server/consent"
	"github.com/koekje/koekje/server/proof"
	"github.com/koekje/koekje/server/sqlite"
	"github.com/koekje/koekje/server/store/storetest"
	"github.com/koekje/koekje/server/translog"
)

// reopen opens the database at path again, with the log started under
// origin, as a restart of serve does.
func reopen(t *testing.T, path, origin string) (*sqlite.DB, *translog.Signer) {
	t.Helper()
	db, err := sqlite.Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	signer, err := db.StartLog(context.Background(), origin)
	if err != nil {
		t.Fatal(err)
	}
	return db, signer
}

// verifyLog checks site's chain and its leaves against the log.
func verifyLog(t *testing.T, db *sqlite.DB, site, logKey string) *proof.Result {
	t.Helper()
	ctx := context.Background()
	keys, err := proof.OpenKeys(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	pubs, ids := keys.Ring().Public()
	res, err := proof.Verify(ctx, db, site, pubs, ids)
	if err != nil {
		t.Fatal(err)
	}
	auditKey, err := db.LogAuditKey(ctx, site)
	if err != nil {
		t.Fatal(err)
	}
	if err := proof.VerifyLog(ctx, db, res, logKey, auditKey, nil); err != nil {
		t.Fatal(err)
	}
	return res
}

// A record slipped into the database with a valid hash and link, by a
// writer that bypassed the log, never gets a leaf: not at the next start,
// not at the one after (a start that took such records into the log
// would make verify say ok). Records written before the log was made
// are taken in once, when it is made.
func TestForgedRecordNeverLogged(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "koekje.db")
	before, err := sqlite.Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := before.Append(ctx, newRecord("demo", uuid.Nil)); err != nil {
		t.Fatal(err)
	}
	before.Close()

	db, signer := reopen(t, path, "127.0.0.1:8080/log")
	for range 2 {
		if err := db.Append(ctx, newRecord("demo", uuid.Nil)); err != nil {
			t.Fatal(err)
		}
	}
	if res := verifyLog(t, db, "demo", signer.VerifierKey()); !res.OK || res.Log.Leaves != 3 {
		t.Fatalf("before the forgery: %+v %+v", res, res.Log)
	}
	db.Close()

	// The forger's record: chained and hashed as the write path does,
	// but written without the log.
	forge(t, path)

	for restart := 1; restart <= 2; restart++ {
		if restart == 2 {
			// The log's name gone too, as if the log were new.
			raw, err := sql.Open("sqlite3", "file:"+path)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := raw.Exec(`DELETE FROM log_name`); err != nil {
				t.Fatal(err)
			}
			raw.Close()
		}
		db, signer := reopen(t, path, "127.0.0.1:8080/log")
		res := verifyLog(t, db, "demo", signer.VerifierKey())
		if res.OK || res.Reason != proof.NotInLog || res.Records != 4 {
			t.Errorf("restart %d: the forged record: %+v, want not_in_log of 4 records", restart, res)
		}
		db.Close()
	}
}

// A database whose log an earlier start renamed (the name followed each
// start's public URL) keeps, after the migration, the newest name a witness
// cosigned, else its newest checkpoint's; its newest checkpoint is signed
// again under that name at start, so the log is served at once.
func TestRenamedLogRepaired(t *testing.T) {
	t.Parallel()
	for _, witnessed := range []bool{true, false} {
		t.Run(fmt.Sprintf("witnessed=%v", witnessed), func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			path := filepath.Join(t.TempDir(), "koekje.db")
			db, first := reopen(t, path, "0.0.0.0:8080/log")
			for range 3 {
				if err := db.Append(ctx, newRecord("demo", uuid.Nil)); err != nil {
					t.Fatal(err)
				}
			}
			signed, err := db.LatestCheckpoint(ctx)
			if err != nil {
				t.Fatal(err)
			}
			cp, _, err := translog.OpenCheckpoint(signed, first.VerifierKey())
			if err != nil {
				t.Fatal(err)
			}
			seed, err := db.Secret(ctx, "log-signing-key", 32)
			if err != nil {
				t.Fatal(err)
			}
			db.Close()

			// What the old code left: the newest checkpoint signed under
			// the next start's name, the witness's copy under the first;
			// the schema before the log's name (and request IDs' hashes).
			renamed, err := translog.NewSigner("consent.example.nl/log", seed)
			if err != nil {
				t.Fatal(err)
			}
			under, err := renamed.Sign(cp.Size, cp.Hash)
			if err != nil {
				t.Fatal(err)
			}
			raw, err := sql.Open("sqlite3", "file:"+path)
			if err != nil {
				t.Fatal(err)
			}
			var version int
			raw.QueryRow(`PRAGMA user_version`).Scan(&version)
			for _, q := range []string{`UPDATE log_checkpoints SET signed = ? WHERE size = 3`, `DROP TABLE log_name`, fmt.Sprintf(`PRAGMA user_version = %d`, sqlite.SchemaBeforeLogName(t))} { // back before the log's name (and every migration after it)
				var args []any
				if strings.Contains(q, "?") {
					args = append(args, under)
				}
				if _, err := raw.Exec(q, args...); err != nil {
					t.Fatal(err)
				}
			}
			if witnessed {
				if _, err := raw.Exec(`INSERT INTO log_witnessed (size, cosigned) VALUES (3, ?)`, signed); err != nil {
					t.Fatal(err)
				}
			}
			raw.Close()

			want, wantKey := "consent.example.nl/log", renamed.VerifierKey()
			if witnessed {
				want, wantKey = "0.0.0.0:8080/log", first.VerifierKey()
			}
			db, signer := reopen(t, path, "localhost:9999/log")
			if signer.Origin() != want || signer.VerifierKey() != wantKey {
				t.Fatalf("the repaired log is named %q, want %q", signer.Origin(), want)
			}
			latest, err := db.LatestCheckpoint(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if got, _, err := translog.OpenCheckpoint(latest, wantKey); err != nil || got.Size != 3 || got.Hash != cp.Hash {
				t.Errorf("newest checkpoint after the repair: %+v %v\n%s", got, err, latest)
			}
			if res := verifyLog(t, db, "demo", wantKey); !res.OK || res.Log.Leaves != 3 {
				t.Errorf("verify after the repair: %+v %+v", res, res.Log)
			}
		})
	}
}

// While the log is held, only what the write path queued gets a leaf when
// it lets go: a record slipped into the database with a queue row of its
// own (a MAC made up with sqlite3) is taken off the queue without a leaf,
// and stays not_in_log across restarts; verify does not count it as
// waiting either. A purge is refused while records wait.
func TestForgedQueueRowNeverLogged(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "koekje.db")
	db, signer := reopen(t, path, "127.0.0.1:8080/log")
	if err := db.Append(ctx, newRecord("demo", uuid.Nil)); err != nil {
		t.Fatal(err)
	}
	ref, err := translog.OpenReference(db.KeyFile())
	if err != nil {
		t.Fatal(err)
	}
	if err := ref.Accept(translog.Checkpoint{Origin: signer.Origin(), Size: 9, Hash: tlog.Hash{9}}); err != nil {
		t.Fatal(err)
	}
	guard, err := translog.CheckLogState(ctx, db, db.KeyFile(), nil, signer.VerifierKey(), nil, false)
	if err != nil || !guard.Held() {
		t.Fatalf("a reference ahead of the log: %v, held %v", err, guard.Held())
	}
	db.GuardLog(guard)
	if err := db.Append(ctx, newRecord("demo", uuid.Nil)); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Purge(ctx, "demo", time.Now().Add(time.Hour), func(*consent.Checkpoint) error { return nil }); err == nil || !strings.Contains(err.Error(), "signs nothing") {
		t.Errorf("a purge while the log is held: %v, want it refused", err)
	}
	db.Close()

	// The forger: a record chained and hashed as the write path does, by
	// a process that keeps no log, and a queue row beside it.
	forge(t, path)
	raw, err := sql.Open("sqlite3", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := raw.Exec(`INSERT INTO log_pending (record, mac) SELECT max(id), zeroblob(32) FROM records`); err != nil {
		t.Fatal(err)
	}
	raw.Close()

	var logs bytes.Buffer
	db, err = sqlite.Open(path, slog.New(slog.NewJSONHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if signer, err = db.StartLog(ctx, "127.0.0.1:8080/log"); err != nil {
		t.Fatal(err)
	}
	if n, err := db.LogPending(ctx, "demo", 10); err != nil || n != 1 {
		t.Errorf("records waiting: %d, %v; want the one the write path queued", n, err)
	}
	// The operator's word lets go: what waited is appended.
	if err := os.Remove(translog.ReferencePath(db.KeyFile())); err != nil {
		t.Fatal(err)
	}
	guard, err = translog.CheckLogState(ctx, db, db.KeyFile(), nil, signer.VerifierKey(), nil, true)
	if err != nil || guard.Held() {
		t.Fatalf("accepted: %v, held because %q", err, guard.Reason())
	}
	db.GuardLog(guard)
	if err := db.Append(ctx, newRecord("demo", uuid.Nil)); err != nil {
		t.Fatal(err)
	}
	for restart := 0; restart < 2; restart++ {
		if restart > 0 {
			db.Close()
			db, signer = reopen(t, path, "127.0.0.1:8080/log")
		}
		if l, err := db.LeafOf(ctx, "demo", 3); err != nil || l != nil {
			t.Errorf("restart %d: the forged record's leaf: %+v, %v; want none", restart, l, err)
		}
		res := verifyLog(t, db, "demo", signer.VerifierKey())
		if res.OK || res.Reason != proof.NotInLog || res.Records != 4 {
			t.Errorf("restart %d: verify: %+v, want not_in_log of 4 records", restart, res)
		}
	}
	if l, err := db.LeafOf(ctx, "demo", 2); err != nil || l == nil || l.Index != 1 {
		t.Errorf("the record that waited: leaf %+v, %v; want index 1", l, err)
	}
	if l, err := db.LeafOf(ctx, "demo", 4); err != nil || l == nil || l.Index != 2 {
		t.Errorf("the record after it: leaf %+v, %v; want index 2", l, err)
	}
	storetest.WantLogged(t, logs.Bytes(), "ERROR", "msg", "a record queued for the log without the write path's MAC gets no leaf: it was written behind the server's back", "site", "demo")
}

// forge appends an accept_all to the database at path, chained and hashed
// as the write path does, by a store that keeps no log: a forger's record.
func forge(t *testing.T, path string) *consent.Record {
	t.Helper()
	forger, err := sqlite.Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer forger.Close()
	forged := newRecord("demo", uuid.Nil)
	forged.Action = "accept_all"
	if err := forger.Append(context.Background(), forged); err != nil {
		t.Fatal(err)
	}
	return forged
}
