package cli

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

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

// logAndWitness opens a log and a witness of it, closed when the test ends.
func logAndWitness(t *testing.T) (*sqlite.DB, *translog.Signer, *witness.Witness) {
	t.Helper()
	db, signer := openLog(t, filepath.Join(t.TempDir(), "k.db"))
	t.Cleanup(func() { db.Close() })
	w, err := witness.Open(filepath.Join(t.TempDir(), "w.db"), "witness.test", []string{signer.VerifierKey()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	return db, signer, w
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
	db, signer, w := logAndWitness(t)
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

// A witness that refuses the log's checkpoints (here: it does not know the
// log) and one that never answers are not quiet: /healthz says degraded
// and names both, the metrics count them, one ERROR line each however many
// rounds fail, and /log/checkpoint still publishes the newest checkpoint
// signed at start rather than nothing.
func TestWitnessRefusalIsLoud(t *testing.T) {
	t.Parallel()
	other, _ := translog.NewSigner("other.test/log", bytes.Repeat([]byte{9}, 32))
	refusing, err := witness.Open(filepath.Join(t.TempDir(), "w.db"), "refusing.test", []string{other.VerifierKey()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer refusing.Close()
	rs := httptest.NewServer(refusing.Handler())
	defer rs.Close()
	release := make(chan struct{})
	silent := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if r.Method == "GET" {
			http.NotFound(rw, r)
			return
		}
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	defer silent.Close()
	defer close(release)
	silentKey, _ := translog.NewCosigner("silent.test", bytes.Repeat([]byte{8}, 32))

	env := map[string]string{"KOEKJE_DB": filepath.Join(t.TempDir(), "k.db"), "KOEKJE_ADMIN_TOKEN": adminToken, "KOEKJE_RATE_LIMIT": "0"}
	base, logs, stop := serveUntil(t, env, "--witness", rs.URL+"="+refusing.VerifierKey(), "--witness", silent.URL+"="+silentKey.VerifierKey(),
		"--witness-interval", "100ms", "--witness-timeout", "300ms")
	pol, _ := httpGet(t, base+"/log/policy", "")
	if !strings.Contains(string(pol), "witness refusing.test "+refusing.VerifierKey()+"\n") || !strings.Contains(string(pol), "group witnesses 2 refusing.test silent.test\nquorum witnesses\n") {
		t.Errorf("the published policy does not ask for both witnesses:\n%s", pol)
	}
	postN(t, base, 3)
	var health struct{ Status, Reason string }
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		b, _ := httpGet(t, base+"/healthz", "")
		json.Unmarshal(b, &health)
		if strings.Contains(health.Reason, rs.URL) && strings.Contains(health.Reason, silent.URL) {
			break
		}
	}
	if health.Status != "degraded" || !strings.Contains(health.Reason, rs.URL+" does not cosign") || !strings.Contains(health.Reason, silent.URL+" does not cosign") {
		t.Fatalf("healthz with a refusing and a silent witness: %+v", health)
	}
	postN(t, base, 2)
	time.Sleep(time.Second) // a few more failed rounds
	metrics, _ := httpGet(t, base+"/metrics", adminToken)
	for _, url := range []string{rs.URL, silent.URL} {
		if !strings.Contains(string(metrics), `koekje_witness_up{witness="`+url+`"} 0`) {
			t.Errorf("no koekje_witness_up 0 for %s", url)
		}
		if !regexp.MustCompile(`koekje_witness_failures_total\{witness="` + regexp.QuoteMeta(url) + `"\} [1-9]`).Match(metrics) {
			t.Errorf("no failures counted for %s", url)
		}
	}
	if b, code := httpGet(t, base+"/log/checkpoint", ""); code != 200 || !strings.Contains(string(b), "/log\n") {
		t.Errorf("/log/checkpoint while no witness cosigns: %d %s", code, b)
	}
	stop()
	if n := strings.Count(logs.String(), `"level":"ERROR","msg":"a witness refuses the log's checkpoint or does not answer`); n != 2 {
		t.Errorf("%d ERROR lines about witnesses, want one for each of two:\n%s", n, logs)
	}
	for _, url := range []string{rs.URL, silent.URL} {
		if !strings.Contains(logs.String(), `"witness":"`+url+`"`) {
			t.Errorf("no line names %s:\n%s", url, logs)
		}
	}
}

// A witness that fails and then cosigns again: one ERROR line when it
// starts failing however many rounds fail, an INFO line when it cosigns
// again, and the degraded reason and the metric's outcome follow it.
func TestWitnessRecoveryIsLogged(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, signer, w := logAndWitness(t)
	var down atomic.Bool
	real := w.Handler()
	ws := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if down.Load() {
			http.Error(rw, "overloaded", http.StatusServiceUnavailable)
			return
		}
		real.ServeHTTP(rw, r)
	}))
	defer ws.Close()
	logs := &syncBuffer{}
	var last atomic.Value
	wg := &translog.Witnessing{Store: db, LogKey: signer.VerifierKey(), Policy: 1, Client: http.DefaultClient,
		Log: slog.New(slog.NewJSONHandler(logs, nil)), Observe: func(_ string, err error) { last.Store(fmt.Sprint(err)) },
		Witnesses: []*translog.WitnessClient{{URL: ws.URL, Key: w.VerifierKey()}}}
	down.Store(true)
	appendRecords(t, db, 2)
	for range 3 {
		if err := wg.Once(ctx); err == nil {
			t.Fatal("a round without the witness succeeded")
		}
	}
	if n := strings.Count(logs.String(), `"level":"ERROR"`); n != 1 || !strings.Contains(wg.Degraded(), ws.URL) || last.Load() == "<nil>" {
		t.Errorf("three failed rounds: %d ERROR lines, degraded %q, last outcome %v\n%s", n, wg.Degraded(), last.Load(), logs)
	}
	down.Store(false)
	if err := wg.Once(ctx); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), `"level":"INFO","msg":"the witness cosigns the log's checkpoints again"`) || wg.Degraded() != "" || last.Load() != "<nil>" {
		t.Errorf("after the witness came back: degraded %q, last outcome %v\n%s", wg.Degraded(), last.Load(), logs)
	}
}

// With several witnesses, verify holds the log against the newest
// checkpoint any of them cosigned, and every older one must be a tree the
// log extends: a tail cut below the older witness's checkpoint is named
// with that witness, one between the two fails against the newer.
func TestVerifyAgainstWitnesses(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "k.db")
	db, signer := openLog(t, path)
	var urls []string
	var witnessings []*translog.Witnessing
	for _, name := range []string{"early.test", "late.test"} {
		w, err := witness.Open(filepath.Join(t.TempDir(), name+".db"), name, []string{signer.VerifierKey()}, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer w.Close()
		ws := httptest.NewServer(w.Handler())
		defer ws.Close()
		urls = append(urls, ws.URL+"="+w.VerifierKey())
		witnessings = append(witnessings, &translog.Witnessing{Store: db, LogKey: signer.VerifierKey(), Policy: 1, Client: http.DefaultClient,
			Witnesses: []*translog.WitnessClient{{URL: ws.URL, Key: w.VerifierKey()}}})
	}
	appendRecords(t, db, 4) // early.test cosigns 4 leaves
	if err := witnessings[0].Once(ctx); err != nil {
		t.Fatal(err)
	}
	appendRecords(t, db, 6) // late.test cosigns 10
	if err := witnessings[1].Once(ctx); err != nil {
		t.Fatal(err)
	}
	db.Close()
	env := func(k string) string { return map[string]string{"KOEKJE_DB": path}[k] }
	both := []string{"verify", "--witness", urls[0], "--witness", urls[1]}
	var out bytes.Buffer
	if err := Run(ctx, both, env, &out, &out); err != nil || !strings.Contains(out.String(), `"ok":true`) {
		t.Fatalf("verify against both witnesses: %v\n%s", err, out.String())
	}
	if err := Run(ctx, []string{"verify", "--witness", urls[0], "--checkpoint", path}, env, &out, &out); err == nil || !strings.Contains(err.Error(), "one kind of reference") {
		t.Errorf("--witness with --checkpoint: %v", err)
	}

	cut := func(keep int) {
		raw, err := sql.Open("sqlite3", "file:"+path)
		if err != nil {
			t.Fatal(err)
		}
		defer raw.Close()
		for _, q := range []string{`DROP TRIGGER records_append_only`, fmt.Sprintf(`DELETE FROM records WHERE seq > %d`, keep), fmt.Sprintf(`DELETE FROM log_leaves WHERE idx >= %d`, keep),
			`DELETE FROM log_hashes WHERE id >= ` + strconv.FormatInt(tlog.StoredHashIndex(0, int64(keep)), 10), fmt.Sprintf(`DELETE FROM log_checkpoints WHERE size > %d`, keep), `DELETE FROM log_witnessed`,
			`CREATE TRIGGER records_append_only BEFORE UPDATE ON records BEGIN SELECT RAISE(ABORT, 'consent records are append-only'); END`} {
			if _, err := raw.Exec(q); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
		}
	}
	cut(7) // between the two: the newer checkpoint catches it
	out.Reset()
	if err := Run(ctx, both, env, &out, &out); err != ErrFailed || !strings.Contains(out.String(), `"reason":"log_mismatch"`) {
		t.Fatalf("a tail cut below late.test's checkpoint: %v\n%s", err, out.String())
	}
	cut(2) // below both: the older witness is named
	out.Reset()
	err := Run(ctx, both, env, &out, &out)
	if err == nil || !strings.Contains(err.Error(), "cosigned a checkpoint of 4 leaves that the database's log does not extend") {
		t.Fatalf("a tail cut below early.test's checkpoint: %v\n%s", err, out.String())
	}
}
