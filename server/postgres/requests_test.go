package postgres_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/google/uuid"

	"github.com/koekje/koekje/server/consent"
	"github.com/koekje/koekje/server/postgres"
	"github.com/koekje/koekje/server/store/storetest"
)

// A request ID is kept only as a keyed hash; one stored in the clear by an
// older schema is hashed by the Open that migrates, and still found.
func TestRequestIDsStoredHashed(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, dsn := open(t, "")
	const id, old = "visitor-request-0000000001", "older-request-000000000002"
	r := storetest.NewRecord("demo", uuid.Nil)
	r.RequestID = id
	if err := db.Append(ctx, r); err != nil {
		t.Fatal(err)
	}
	o := storetest.NewRecord("demo", uuid.Nil)
	o.RequestID = old
	if err := db.Append(ctx, o); err != nil {
		t.Fatal(err)
	}
	db.Close()
	conn := connect(t, dsn)
	var clear int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM requests WHERE request_id IN ($1, $2)`, id, old).Scan(&clear); err != nil || clear != 0 {
		t.Errorf("request IDs stored in the clear: %d, %v", clear, err)
	}
	// What an older schema stored: one request ID in the clear.
	for _, q := range []string{`UPDATE requests SET request_id = '` + old + `' WHERE seq = 2`, fmt.Sprintf(`UPDATE schema_version SET version = %d`, postgres.SchemaBeforeRequestHashes) /* before the hashing, and every migration after it */} {
		if _, err := conn.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	again, _ := open(t, dsn)
	for _, want := range []*consent.Record{r, o} {
		got, err := again.ByRequest(ctx, "demo", want.RequestID)
		if err != nil || got == nil || got.RecordID != want.RecordID {
			t.Errorf("by request %s: %+v, %v", want.RequestID, got, err)
		}
	}
	rows, err := conn.Query(ctx, `SELECT request_id FROM requests`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var v string
		rows.Scan(&v)
		if !consent.IsStored(v) {
			t.Errorf("stored request ID %q is not a keyed hash", v)
		}
	}
}
