package cli

import (
	"bytes"
	"context"
	"database/sql"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/koekje/koekje/server/consent"
	"github.com/koekje/koekje/server/sqlite"
	"github.com/koekje/koekje/server/translog"
	"github.com/koekje/koekje/server/witness"
)

// A database whose tail was cut together with its leaves and its own
// checkpoints agrees with itself; a running witness that cosigned the log
// before catches it.
func TestVerifyAgainstWitness(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "k.db")
	db, err := sqlite.Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := db.StartLog(ctx, "koekje.test/log")
	if err != nil {
		t.Fatal(err)
	}
	for range 10 {
		r := &consent.Record{Site: "demo", Action: consent.RejectAll, Choices: map[string]bool{"necessary": true},
			Revision: 1, ConfigHash: "sha256:x", Language: "nl"}
		if err := db.Append(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	w, err := witness.Open(filepath.Join(t.TempDir(), "w.db"), "witness.test", []string{signer.VerifierKey()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	ws := httptest.NewServer(w.Handler())
	defer ws.Close()
	wg := &translog.Witnessing{Store: db, LogKey: signer.VerifierKey(), Policy: 1, Client: http.DefaultClient,
		Witnesses: []*translog.WitnessClient{{URL: ws.URL, Key: w.VerifierKey()}}}
	if err := wg.Once(ctx); err != nil {
		t.Fatal(err)
	}
	if published, _ := db.LatestWitnessed(ctx); published == nil {
		t.Fatal("the cosigned checkpoint was not kept")
	}
	db.Close()
	env := func(k string) string { return map[string]string{"KOEKJE_DB": path}[k] }
	withWitness := []string{"verify", "--witness", ws.URL + "=" + w.VerifierKey()}
	var out bytes.Buffer
	if err := Run(ctx, withWitness, env, &out, &out); err != nil {
		t.Fatalf("verify before the cut: %v\n%s", err, out.String())
	}

	raw, err := sql.Open("sqlite3", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{`DROP TRIGGER records_append_only`, `DELETE FROM records WHERE seq > 6`, `DELETE FROM log_leaves WHERE idx >= 6`,
		`DELETE FROM log_hashes WHERE id >= ` + strconv.FormatInt(tlog.StoredHashIndex(0, 6), 10), `DELETE FROM log_checkpoints WHERE size > 6`, `DELETE FROM log_witnessed`,
		`CREATE TRIGGER records_append_only BEFORE UPDATE ON records BEGIN SELECT RAISE(ABORT, 'consent records are append-only'); END`} {
		if _, err := raw.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	raw.Close()
	out.Reset()
	if err := Run(ctx, []string{"verify"}, env, &out, &out); err != nil {
		t.Fatalf("the cut database should agree with itself: %v\n%s", err, out.String())
	}
	out.Reset()
	if err := Run(ctx, withWitness, env, &out, &out); err != ErrFailed || !strings.Contains(out.String(), `"reason":"log_mismatch"`) {
		t.Fatalf("verify against the witness after the cut: %v\n%s", err, out.String())
	}
}
