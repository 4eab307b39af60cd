package cli

import (
	"context"
	"database/sql"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/koekje/koekje/server/translog"
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

// The server never signs a fork of its own log: a backup taken
// at 19 leaves, restored after the public log reached 37, is refused at
// start, naming both sizes, instead of being signed on from 19; so is a
// tail cut in the database alone, and a log that is not empty without the
// reference file, until the operator accepts it.
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
	err := serveErr(t, env)
	if err == nil || !strings.Contains(err.Error(), "19 leaves") || !strings.Contains(err.Error(), "37") || !strings.Contains(err.Error(), "Back up and restore") {
		t.Fatalf("serve on the restored backup: %v, want a refusal naming 19 and 37", err)
	}
	// verify, which checked the backup's chain as intact, names the fork.
	if out, err := runCLI(t, env, "verify"); err != ErrFailed || !strings.Contains(out, `"records":19`) || !strings.Contains(out, "the database holds 19 leaves, the reference 37") {
		t.Errorf("verify on the restored backup: %v\n%s", err, out)
	}
	raw, err := sql.Open("sqlite3", "file:"+env["KOEKJE_DB"])
	if err != nil {
		t.Fatal(err)
	}
	var n int
	raw.QueryRow(`SELECT count(*) FROM log_checkpoints WHERE size > 19`).Scan(&n)
	if n != 0 {
		t.Errorf("%d checkpoints signed over the restored backup", n)
	}
	raw.Close()

	// A tail cut in the database of a log that reached 5, while the
	// server runs: /healthz says it is degraded, and a restart is refused.
	cut := t.TempDir()
	env = map[string]string{"KOEKJE_DB": filepath.Join(cut, "k.db"), "KOEKJE_ADMIN_TOKEN": adminToken, "KOEKJE_RATE_LIMIT": "0"}
	base, logs, stop := serveUntil(t, env)
	postN(t, base, 5)
	time.Sleep(2 * translog.ReferenceEvery) // the reference follows the log
	raw, err = sql.Open("sqlite3", "file:"+env["KOEKJE_DB"]+"?_busy_timeout=5000")
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{`DELETE FROM log_checkpoints WHERE size > 3`, `DELETE FROM log_leaves WHERE idx >= 3`} {
		if _, err := raw.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	raw.Close()
	var health struct{ Status, Reason string }
	for deadline := time.Now().Add(5 * time.Second); health.Status != "degraded" && time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		b, code := httpGet(t, base+"/healthz", "")
		if code != 200 {
			t.Fatalf("healthz: %d %s", code, b)
		}
		json.Unmarshal(b, &health)
	}
	if health.Status != "degraded" || !strings.Contains(health.Reason, "3 leaves") {
		t.Errorf("healthz after a tail cut while serving: %+v, want degraded, naming the cut", health)
	}
	stop()
	if !strings.Contains(logs.String(), `"level":"ERROR","msg":"the log no longer extends what this server signed before"`) {
		t.Errorf("no ERROR line for the cut tail:\n%s", logs)
	}
	if err := serveErr(t, env); err == nil || !strings.Contains(err.Error(), "3 leaves") {
		t.Errorf("serve after a tail cut: %v, want a refusal", err)
	}

	// No reference file beside a log that is not empty: refused until the
	// operator accepts the log as it is.
	fresh := t.TempDir()
	env = map[string]string{"KOEKJE_DB": filepath.Join(fresh, "k.db"), "KOEKJE_ADMIN_TOKEN": adminToken, "KOEKJE_RATE_LIMIT": "0"}
	base, _, stop = serveUntil(t, env)
	postN(t, base, 2)
	stop()
	if err := os.Remove(filepath.Join(fresh, "k.db.key.log-reference")); err != nil {
		t.Fatal(err)
	}
	if err := serveErr(t, env); err == nil || !strings.Contains(err.Error(), "--accept-log-state") {
		t.Errorf("serve without the reference file: %v, want a refusal naming --accept-log-state", err)
	}
	base, _, stop = serveUntil(t, env, "--accept-log-state")
	postN(t, base, 1)
	stop()
	if _, err := os.Stat(filepath.Join(fresh, "k.db.key.log-reference")); err != nil {
		t.Errorf("no reference file after --accept-log-state: %v", err)
	}
}
