package cli

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"io"
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

// openLog opens a SQLite store at path with a log named koekje.test/log.
func openLog(t *testing.T, path string) (*sqlite.DB, *translog.Signer) {
	t.Helper()
	db, err := sqlite.Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := db.StartLog(context.Background(), "koekje.test/log")
	if err != nil {
		t.Fatal(err)
	}
	return db, signer
}

// appendRecords writes n records of the demo site.
func appendRecords(t *testing.T, db *sqlite.DB, n int) {
	t.Helper()
	for range n {
		r := &consent.Record{Site: "demo", Action: consent.RejectAll, Choices: map[string]bool{"necessary": true},
			Revision: 1, ConfigHash: "sha256:x", Language: "nl"}
		if err := db.Append(context.Background(), r); err != nil {
			t.Fatal(err)
		}
	}
}

// A database whose tail was cut together with its leaves and its own
// checkpoints agrees with itself; a running witness that cosigned the log
// before catches it.
func TestVerifyAgainstWitness(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "k.db")
	db, signer := openLog(t, path)
	appendRecords(t, db, 10)
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

// A witness whose answer carries lines besides its cosignature (a forged
// one under its own key, one under a witness the log does not know, a
// malformed one) gets only its verified cosignature into what the log
// publishes, and that verifies for anyone pinning the witness's key.
func TestLogKeepsOnlyVerifiedCosignatures(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, signer := openLog(t, filepath.Join(t.TempDir(), "k.db"))
	defer db.Close()
	w, err := witness.Open(filepath.Join(t.TempDir(), "w.db"), "witness.test", []string{signer.VerifierKey()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	own := strings.Split(w.VerifierKey(), "+")[1]
	keyHash, _ := hex.DecodeString(own)
	extra := "— witness.test " + base64.StdEncoding.EncodeToString(append(keyHash, make([]byte, 72)...)) + "\n" +
		"— other.witness " + base64.StdEncoding.EncodeToString(make([]byte, 76)) + "\n" +
		"not a signature line\n"
	real := w.Handler()
	ws := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		rec := httptest.NewRecorder()
		real.ServeHTTP(rec, r)
		rw.WriteHeader(rec.Code)
		if r.URL.Path == "/add-checkpoint" && rec.Code == 200 {
			io.WriteString(rw, extra)
		}
		rw.Write(rec.Body.Bytes())
	}))
	defer ws.Close()
	wg := &translog.Witnessing{Store: db, LogKey: signer.VerifierKey(), Policy: 1, Client: http.DefaultClient,
		Witnesses: []*translog.WitnessClient{{URL: ws.URL, Key: w.VerifierKey()}}}
	for round := range 3 {
		appendRecords(t, db, 1)
		if err := wg.Once(ctx); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		published, err := db.LatestWitnessed(ctx)
		if err != nil || published == nil {
			t.Fatalf("round %d: nothing kept: %v", round, err)
		}
		cp, names, err := translog.OpenWitnessed(published, signer.VerifierKey(), []string{w.VerifierKey()})
		if err != nil || len(names) != 1 || cp.Size != int64(round+1) {
			t.Fatalf("round %d: the published checkpoint: %+v %v %v\n%s", round, cp, names, err, published)
		}
		if n := strings.Count(string(published), "\n— "); n != 2 {
			t.Fatalf("round %d: %d signature lines, want the log's and the witness's:\n%s", round, n, published)
		}
	}
}
