package sqlite_test

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/uuid"

	"github.com/koekje/koekje/server/consent"
	"github.com/koekje/koekje/server/sqlite"
)

// A request ID is kept only as a keyed hash: the database file holds no
// trace of it, and one stored in the clear by an older schema is hashed
// when the database is opened, and still found: a request ID in the
// clear would let anyone with a copy of the file replay it for a
// visitor's token.
func TestRequestIDsStoredHashed(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "koekje.db")
	db, err := sqlite.Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	const id, old = "visitor-request-0000000001", "older-request-000000000002"
	r := newRecord("demo", uuid.Nil)
	r.RequestID = id
	if err := db.Append(ctx, r); err != nil {
		t.Fatal(err)
	}
	o := newRecord("demo", uuid.Nil)
	o.RequestID = old
	if err := db.Append(ctx, o); err != nil {
		t.Fatal(err)
	}
	db.Close()
	for _, f := range []string{path, path + "-wal"} {
		b, err := os.ReadFile(f)
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		if bytes.Contains(b, []byte(id)) || bytes.Contains(b, []byte(old)) {
			t.Errorf("%s holds a request ID in the clear", filepath.Base(f))
		}
	}

	// What an older schema stored: one request ID in the clear.
	raw, err := sql.Open("sqlite3", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	var version int
	raw.QueryRow(`PRAGMA user_version`).Scan(&version)
	for _, q := range []string{
		fmt.Sprintf(`UPDATE requests SET request_id = '%s' WHERE record = (SELECT id FROM records WHERE seq = 2)`, old),
		// Back to before the hashing migration (and every migration after it).
		fmt.Sprintf(`PRAGMA user_version = %d`, sqlite.SchemaBeforeRequestHashes(t)),
	} {
		if _, err := raw.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	raw.Close()

	db, err = sqlite.Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, want := range []*consent.Record{r, o} {
		got, err := db.ByRequest(ctx, "demo", want.RequestID)
		if err != nil || got == nil || got.RecordID != want.RecordID {
			t.Errorf("by request %s: %+v, %v", want.RequestID, got, err)
		}
	}
	raw, err = sql.Open("sqlite3", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	rows, err := raw.Query(`SELECT request_id FROM requests`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		var v string
		rows.Scan(&v)
		n++
		if !consent.IsStored(v) || v == id || v == old {
			t.Errorf("stored request ID %q is not a keyed hash", v)
		}
	}
	if n != 2 {
		t.Errorf("%d stored request IDs, want 2", n)
	}
}
