package cli

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/koekje/koekje/server/keyfile"
	"github.com/koekje/koekje/server/translog"
	"github.com/koekje/koekje/server/witness"
)

// copyFiles copies the database's files (a backup taken while it is
// stopped) from one directory to another.
func copyFiles(t *testing.T, from, to string) {
	t.Helper()
	for _, name := range []string{"k.db", "k.db-wal", "k.db-shm"} {
		b, err := os.ReadFile(filepath.Join(from, name))
		if os.IsNotExist(err) {
			os.Remove(filepath.Join(to, name))
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(to, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

func postN(t *testing.T, base string, n int) {
	t.Helper()
	for range n {
		resp, err := http.Post(base+"/api/v1/consents", "text/plain", strings.NewReader(`{"site":"demo","action":"reject_all"}`))
		if err != nil || resp.StatusCode != 201 {
			t.Fatalf("post: %v %v", resp, err)
		}
		resp.Body.Close()
	}
}

// witnessedLog makes a database whose log key is made under a fixed name,
// in dir, and a witness of that log (not served yet).
func witnessedLog(t *testing.T) (dir string, env map[string]string, w *witness.Witness) {
	t.Helper()
	dir = t.TempDir()
	env = map[string]string{"KOEKJE_DB": filepath.Join(dir, "k.db"), "KOEKJE_ADMIN_TOKEN": adminToken, "KOEKJE_RATE_LIMIT": "0"}
	out, err := runCLI(t, env, "keys", "log-key", "--public-url", "http://127.0.0.1:1")
	if err != nil {
		t.Fatal(err)
	}
	w, err = witness.Open(filepath.Join(dir, "w.db"), "witness.test", []string{strings.TrimSpace(out)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	return dir, env, w
}

// serveErr runs serve on env and returns the error it stops with at start.
func serveErr(t *testing.T, env map[string]string, args ...string) error {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, append([]string{"serve", "--addr", freeAddr(t)}, args...), func(k string) string { return env[k] }, io.Discard, io.Discard)
	}()
	return <-done
}

// healthOf reads /healthz, which answers 200 while the store answers.
func healthOf(t *testing.T, base string) (status, reason string) {
	t.Helper()
	b, code := httpGet(t, base+"/healthz", "")
	if code != 200 {
		t.Fatalf("healthz: %d %s", code, b)
	}
	var health struct{ Status, Reason string }
	json.Unmarshal(b, &health)
	return health.Status, health.Reason
}

// rawCount runs a count on the database file behind the server's back.
func rawCount(t *testing.T, path, query string, args ...any) int {
	t.Helper()
	raw, err := sql.Open("sqlite3", "file:"+path+"?_busy_timeout=5000")
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	var n int
	if err := raw.QueryRow(query, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// The server never signs a fork of its own log, and never stops recording
// for it: a backup taken at 19 leaves, restored after the public log
// reached 37, starts degraded (/healthz 200 "degraded" naming both sizes,
// an ERROR line, koekje_log_held 1), keeps recording choices, which wait
// without a leaf, and signs nothing over 19; verify names both sizes. So
// does a tail cut in the database alone while it runs, and a log that is
// not empty without the reference file, until the operator accepts it:
// then what waited is appended.
func TestNoForkAfterRestore(t *testing.T) {
	t.Parallel()
	dir, backup := t.TempDir(), t.TempDir()
	env := map[string]string{"KOEKJE_DB": filepath.Join(dir, "k.db"), "KOEKJE_ADMIN_TOKEN": adminToken, "KOEKJE_RATE_LIMIT": "0"}
	base, _, stop := serveUntil(t, env)
	postN(t, base, 19)
	// koekje backup, as the README says, while the server runs.
	saved := filepath.Join(backup, "k.db")
	if out, err := runCLI(t, env, "backup", "--to", saved); err != nil || !strings.Contains(out, "backed up") {
		t.Fatalf("backup: %v %s", err, out)
	}
	if fi, err := os.Stat(saved); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("the backup: %v %v, want mode 0600", fi, err)
	}
	if _, err := runCLI(t, env, "backup", "--to", saved); err == nil {
		t.Error("a backup over an existing file was not refused")
	}
	postN(t, base, 18)
	stop()

	// Restore: the backup in place of the database, as an operator would.
	for _, name := range []string{"k.db-wal", "k.db-shm"} {
		os.Remove(filepath.Join(dir, name))
	}
	copyFiles(t, backup, dir)
	base, logs, stop := serveUntil(t, env)
	if status, reason := healthOf(t, base); status != "degraded" || !strings.Contains(reason, "the database holds 19 leaves, the reference 37") || !strings.Contains(reason, "Back up and restore") {
		t.Errorf("healthz on the restored backup: %s %q, want degraded naming 19 and 37", status, reason)
	}
	postN(t, base, 5) // recorded, each a 201, while the log signs nothing
	if m, _ := httpGet(t, base+"/metrics", adminToken); !strings.Contains(string(m), "\nkoekje_log_held 1\n") {
		t.Errorf("metrics while the log is held:\n%s", m)
	}
	stop()
	if n := strings.Count(logs.String(), `"level":"ERROR","msg":"the log signs nothing`); n != 1 {
		t.Errorf("%d ERROR lines for the restore, want one:\n%s", n, logs)
	}
	db := env["KOEKJE_DB"]
	if n := rawCount(t, db, `SELECT count(*) FROM log_checkpoints WHERE size > 19`); n != 0 {
		t.Errorf("%d checkpoints signed over the restored backup", n)
	}
	if n := rawCount(t, db, `SELECT count(*) FROM log_pending`); n != 5 {
		t.Errorf("%d records wait for the log, want the 5 made since the restore", n)
	}
	// verify, which checked the backup's chain as intact, names the fork.
	if out, err := runCLI(t, env, "verify"); err != ErrFailed || !strings.Contains(out, `"records":24`) || !strings.Contains(out, "the database holds 19 leaves, the reference 37") {
		t.Errorf("verify on the restored backup: %v\n%s", err, out)
	}

	// A tail cut in the database of a log that reached 5, while the
	// server runs: /healthz says it is degraded, the choices made next are
	// recorded, and a restart stays degraded.
	cut := t.TempDir()
	env = map[string]string{"KOEKJE_DB": filepath.Join(cut, "k.db"), "KOEKJE_ADMIN_TOKEN": adminToken, "KOEKJE_RATE_LIMIT": "0"}
	base, logs, stop = serveUntil(t, env)
	postN(t, base, 5)
	time.Sleep(2 * translog.ReferenceEvery) // the reference follows the log
	raw, err := sql.Open("sqlite3", "file:"+env["KOEKJE_DB"]+"?_busy_timeout=5000")
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{`DELETE FROM log_checkpoints WHERE size > 3`, `DELETE FROM log_leaves WHERE idx >= 3`} {
		if _, err := raw.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	raw.Close()
	status, reason := "", ""
	for deadline := time.Now().Add(5 * time.Second); status != "degraded" && time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		status, reason = healthOf(t, base)
	}
	if status != "degraded" || !strings.Contains(reason, "3 leaves") {
		t.Errorf("healthz after a tail cut while serving: %s %q, want degraded, naming the cut", status, reason)
	}
	postN(t, base, 2)
	stop()
	if !strings.Contains(logs.String(), `"level":"ERROR","msg":"the log signs nothing`) {
		t.Errorf("no ERROR line for the cut tail:\n%s", logs)
	}
	if n := rawCount(t, env["KOEKJE_DB"], `SELECT count(*) FROM log_checkpoints WHERE size > 3`); n != 0 {
		t.Errorf("%d checkpoints signed over the cut tail", n)
	}
	base, _, stop = serveUntil(t, env)
	if status, reason := healthOf(t, base); status != "degraded" || !strings.Contains(reason, "3 leaves") {
		t.Errorf("healthz after a restart on the cut tail: %s %q", status, reason)
	}
	stop()

	// No reference file beside a log that is not empty: degraded until
	// the operator accepts the log as it is; then what waited is appended.
	fresh := t.TempDir()
	env = map[string]string{"KOEKJE_DB": filepath.Join(fresh, "k.db"), "KOEKJE_ADMIN_TOKEN": adminToken, "KOEKJE_RATE_LIMIT": "0"}
	base, _, stop = serveUntil(t, env)
	postN(t, base, 2)
	stop()
	if err := os.Remove(filepath.Join(fresh, "k.db.key.log-reference")); err != nil {
		t.Fatal(err)
	}
	base, logs, stop = serveUntil(t, env)
	if status, reason := healthOf(t, base); status != "degraded" || !strings.Contains(reason, "--accept-log-state") {
		t.Errorf("healthz without the reference file: %s %q, want degraded naming --accept-log-state", status, reason)
	}
	postN(t, base, 1)
	time.Sleep(3 * translog.ReferenceEvery) // the keeper looks too, and says nothing more
	stop()
	if n := strings.Count(logs.String(), `"level":"ERROR"`); n != 1 {
		t.Errorf("%d ERROR lines without the reference file, want one:\n%s", n, logs)
	}
	base, _, stop = serveUntil(t, env, "--accept-log-state")
	for deadline := time.Now().Add(5 * time.Second); rawCount(t, env["KOEKJE_DB"], `SELECT count(*) FROM log_pending`) > 0 && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
	}
	postN(t, base, 1)
	if status, reason := healthOf(t, base); status != "ok" {
		t.Errorf("healthz after --accept-log-state: %s %q", status, reason)
	}
	stop()
	if _, err := os.Stat(filepath.Join(fresh, "k.db.key.log-reference")); err != nil {
		t.Errorf("no reference file after --accept-log-state: %v", err)
	}
	if out, err := runCLI(t, env, "verify"); err != nil || !strings.Contains(out, `"leaves":4`) {
		t.Errorf("verify after the record that waited was appended: %v\n%s", err, out)
	}
}

// A witness's cosigned checkpoint newer than the reference (here the
// reference file is gone) becomes the reference at start: a database cut
// below it is held, naming both sizes, instead of being taken as it is.
func TestWitnessCheckpointIsTheReference(t *testing.T) {
	t.Parallel()
	dir, env, w := witnessedLog(t)
	ws := httptest.NewServer(w.Handler())
	defer ws.Close()
	withWitness := []string{"--witness", ws.URL + "=" + w.VerifierKey(), "--witness-interval", "100ms"}
	base, _, stop := serveUntil(t, env, withWitness...)
	postN(t, base, 5)
	for deadline := time.Now().Add(10 * time.Second); rawCount(t, env["KOEKJE_DB"], `SELECT coalesce(max(size), 0) FROM log_witnessed`) != 5; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the witness did not cosign 5 leaves")
		}
	}
	stop()
	raw, err := sql.Open("sqlite3", "file:"+env["KOEKJE_DB"])
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{`DELETE FROM log_checkpoints WHERE size > 3`, `DELETE FROM log_leaves WHERE idx >= 3`, `DELETE FROM log_witnessed`} {
		if _, err := raw.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	raw.Close()
	if err := os.Remove(filepath.Join(dir, "k.db.key.log-reference")); err != nil {
		t.Fatal(err)
	}
	base, _, stop = serveUntil(t, env, withWitness...)
	if status, reason := healthOf(t, base); status != "degraded" || !strings.Contains(reason, "the database holds 3 leaves, the reference 5") {
		t.Errorf("healthz on a log cut below what the witness cosigned: %s %q", status, reason)
	}
	postN(t, base, 1)
	stop()
	if n := rawCount(t, env["KOEKJE_DB"], `SELECT count(*) FROM log_checkpoints WHERE size > 3`); n != 0 {
		t.Errorf("%d checkpoints signed below what the witness cosigned", n)
	}
}

// A checkpoint goes out only after the log reference beside the key file
// holds it, synced: a server killed at any moment has shown no one a tree
// its reference does not hold, so a restore after the kill is caught. While
// choices are recorded, every checkpoint /log/checkpoint serves, every
// proof's checkpoint and every checkpoint sent to the witness is at most the
// reference file's size read just after it was seen; and they do go out,
// up to the last record.
func TestNothingPublishedBeforeTheReference(t *testing.T) {
	t.Parallel()
	_, env, w := witnessedLog(t)
	kek, err := keyfile.Load(env["KOEKJE_DB"] + ".key")
	if err != nil {
		t.Fatal(err)
	}
	referenceSize := func() int64 {
		ref, err := translog.OpenReference(kek)
		if err != nil {
			t.Error(err)
			return -1
		}
		cp, ok := ref.Checkpoint()
		if !ok {
			return 0
		}
		return cp.Size
	}
	var mu sync.Mutex
	var early []string // what went out before the reference held it
	seen := func(what string, size int64) {
		if ref := referenceSize(); size > ref {
			mu.Lock()
			early = append(early, fmt.Sprintf("%s of %d leaves while the reference file held %d", what, size, ref))
			mu.Unlock()
		}
	}
	var sent atomic.Int64
	ws := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if _, note, ok := bytes.Cut(body, []byte("\n\n")); ok {
			if cp, err := translog.ParseCheckpoint(string(note)); err == nil {
				seen("a checkpoint sent to the witness", cp.Size)
				sent.Store(cp.Size)
			}
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		w.Handler().ServeHTTP(rw, r)
	}))
	defer ws.Close()
	base, _, stop := serveUntil(t, env, "--witness", ws.URL+"="+w.VerifierKey(), "--witness-interval", "100ms")
	defer stop()

	const writers, each = 3, 12
	var wg sync.WaitGroup
	for range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				a, code := postChoice(t, base, `{"site":"demo","action":"accept_all"}`)
				if code != 201 {
					t.Errorf("post: %d", code)
					return
				}
				b, code := httpGet(t, base+"/api/v1/consents/"+a.ConsentID+"/proof?token="+a.Token, "")
				if code != 200 {
					t.Errorf("the proof of a record: %d %s", code, b)
					return
				}
				p, err := translog.ParseProof(b)
				if err != nil {
					t.Error(err)
					return
				}
				cp, err := translog.ParseCheckpoint(string(p.Checkpoint))
				if err != nil {
					t.Error(err)
					return
				}
				seen("a proof's checkpoint", cp.Size)
			}
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	reads := 0
	for reading := true; reading; reads++ {
		select {
		case <-done:
			reading = false
		default:
		}
		b, code := httpGet(t, base+"/log/checkpoint", "")
		if code == 404 {
			continue // nothing published yet
		}
		cp, err := translog.ParseCheckpoint(string(b))
		if code != 200 || err != nil {
			t.Fatalf("/log/checkpoint: %d %v %s", code, err, b)
		}
		seen("/log/checkpoint", cp.Size)
	}
	for deadline := time.Now().Add(10 * time.Second); sent.Load() < writers*each; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the witness was sent %d leaves, want %d", sent.Load(), writers*each)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(early) > 0 {
		t.Errorf("%d checkpoints went out before the reference held them, e.g. %s", len(early), early[0])
	}
	t.Logf("%d reads of /log/checkpoint, %d proofs", reads, writers*each)
}
