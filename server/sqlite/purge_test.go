package sqlite_test

import (
	"bytes"
	"context"
	"database/sql"
	"os"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/koekje/koekje/server/consent"
)

func noSign(cp *consent.Checkpoint) error { cp.KeyID, cp.Signature = "test", []byte{1}; return nil }

// On SQLite a purge also leaves nothing of the purged visitors in the
// files: their texts and request IDs are gone from the tables and the
// deleted bytes are not left in the database or its log (the shared suite
// checks what the store hands out).
func TestPurgeLeavesNoBytes(t *testing.T) {
	ctx := context.Background()
	db, path := MustOpen(t)
	past := time.Now().Add(-48 * time.Hour)
	db.Now = func() time.Time { return past }
	old := newRecord("demo", uuid.Nil)
	old.URL, old.UserAgent, old.RequestID = "https://example.nl/secret-page-of-visitor", "UA-of-a-purged-visitor/1.0", "request-of-purged-1"
	if err := db.Append(ctx, old); err != nil {
		t.Fatal(err)
	}
	shared := newRecord("demo", uuid.Nil) // its texts are shared with a record that stays
	if err := db.Append(ctx, shared); err != nil {
		t.Fatal(err)
	}
	db.Now = time.Now
	kept := newRecord("demo", uuid.Nil)
	if err := db.Append(ctx, kept); err != nil {
		t.Fatal(err)
	}
	n, err := db.Purge(ctx, "demo", time.Now().Add(-time.Hour), noSign)
	if err != nil || n != 2 {
		t.Fatalf("purge: %d, %v", n, err)
	}
	raw, err := sql.Open("sqlite3", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	var texts, requests int
	raw.QueryRow(`SELECT count(*) FROM texts WHERE value IN (?, ?)`, old.URL, old.UserAgent).Scan(&texts)
	raw.QueryRow(`SELECT count(*) FROM requests`).Scan(&requests)
	if texts != 0 || requests != 0 {
		t.Errorf("after the purge: %d texts and %d request IDs of purged records", texts, requests)
	}
	for _, f := range []string{path, path + "-wal"} {
		b, _ := os.ReadFile(f)
		if bytes.Contains(b, []byte(old.UserAgent)) || bytes.Contains(b, []byte("secret-page-of-visitor")) {
			t.Errorf("%s still holds the purged visitor's data", f)
		}
	}
}
