package cli

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/koekje/koekje/server/postgres/pgtest"
	"github.com/koekje/koekje/server/translog"
)

// rawExec runs a statement on a SQLite file behind koekje's back.
func rawExec(t *testing.T, path, query string, args ...any) {
	t.Helper()
	raw, err := sql.Open("sqlite3", "file:"+path+"?_busy_timeout=5000")
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	if _, err := raw.Exec(query, args...); err != nil {
		t.Fatal(err)
	}
}

// waitOK waits until a server's /healthz says ok.
func waitOK(t *testing.T, base string, logs *syncBuffer) {
	t.Helper()
	status, reason := "", ""
	for deadline := time.Now().Add(10 * time.Second); status != "ok" && time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		status, reason = healthOf(t, base)
	}
	if status != "ok" {
		t.Fatalf("healthz: %s %q\n%s", status, reason, logs)
	}
}

// servedLogKey is a server's log key and the log's name.
func servedLogKey(t *testing.T, base string) (key, name string) {
	t.Helper()
	b, code := httpGet(t, base+"/log/key", "")
	if code != 200 {
		t.Fatalf("log key: %d %s", code, b)
	}
	key = strings.TrimSpace(string(b))
	name, _, _ = strings.Cut(key, "+")
	return key, name
}

// checkpointOrigin is the name on a server's published checkpoint.
func checkpointOrigin(t *testing.T, base string) string {
	t.Helper()
	b, code := httpGet(t, base+"/log/checkpoint", "")
	if code != 200 {
		t.Fatalf("checkpoint: %d %s", code, b)
	}
	origin, _, _ := strings.Cut(string(b), "\n")
	return origin
}

// The way out of a restore when no tiles of the missing leaves were kept:
// a backup taken at 19 leaves, the public log grown to 37, the backup
// restored; serve starts held and records 5 choices, which wait, and
// recover-log has no tiles to restore from. successor-log makes the log's
// successor under a new name and key: the 19 leaves carried, its statement
// at leaf 19 naming the old log's 37-leaf checkpoint and the lost leaves 19
// to 36, and the 5 records after it. The old name never signs again;
// verify names the gap, against the database and against the kept
// checkpoint of the old log; log-audit follows the new log; a statement
// changed in the database is caught.
func TestSuccessorLogAfterRestore(t *testing.T) {
	t.Parallel()
	dir, backup, state := t.TempDir(), t.TempDir(), t.TempDir()
	dbPath := filepath.Join(dir, "k.db")
	env := map[string]string{"KOEKJE_DB": dbPath, "KOEKJE_ADMIN_TOKEN": adminToken, "KOEKJE_RATE_LIMIT": "0"}
	base, _, stop := serveUntil(t, env)
	oldKey, oldName := servedLogKey(t, base)
	postN(t, base, 19)
	if _, err := runCLI(t, env, "backup", "--to", filepath.Join(backup, "k.db")); err != nil {
		t.Fatal(err)
	}
	postN(t, base, 18)
	time.Sleep(3 * translog.ReferenceEvery)
	kept37, _ := httpGet(t, base+"/log/checkpoint", "")
	if res, err := auditLog(t, base, oldKey, state); err != nil || res.Size != 37 {
		t.Fatalf("log-audit at 37: %v %+v", err, res)
	}
	stop()

	for _, name := range []string{"k.db-wal", "k.db-shm"} {
		os.Remove(filepath.Join(dir, name))
	}
	copyFiles(t, backup, dir)
	base, _, stop = serveUntil(t, env)
	if status, reason := healthOf(t, base); status != "degraded" || !strings.Contains(reason, "the database holds 19 leaves, the reference 37") {
		t.Fatalf("healthz on the restored backup: %s %q", status, reason)
	}
	postN(t, base, 5)
	if _, err := runCLI(t, env, "successor-log"); err == nil || !strings.Contains(err.Error(), "stop it first") {
		t.Errorf("successor-log beside a running server: %v", err)
	}
	stop()
	if _, err := runCLI(t, env, "recover-log", "--tiles", t.TempDir()); err == nil || !strings.Contains(err.Error(), "koekje successor-log") {
		t.Errorf("recover-log without tiles does not point to successor-log: %v", err)
	}

	out, err := runCLI(t, env, "successor-log")
	newName := oldName + "/2"
	for _, want := range []string{
		"the log " + oldName + " is succeeded by the log " + newName,
		"old log key: " + oldKey,
		"It holds its leaves 0 to 18",
		"It does not hold leaves 19 to 36: they were lost with a restore of the database, and no published tiles of them were kept",
		"give the new log key to the log's witnesses and auditors",
	} {
		if err != nil || !strings.Contains(out, want) {
			t.Fatalf("successor-log: %v, want %q in:\n%s", err, want, out)
		}
	}
	if _, err := runCLI(t, env, "successor-log"); err == nil || !strings.Contains(err.Error(), "nothing to succeed") {
		t.Errorf("successor-log again: %v", err)
	}
	// keys log-key under the same public URL gives the successor's key.
	if k, err := runCLI(t, env, "keys", "log-key", "--public-url", "http://"+strings.TrimSuffix(oldName, "/log")); err != nil || !strings.Contains(out, "new log key: "+strings.TrimSpace(k)) || !strings.HasPrefix(k, newName+"+") {
		t.Errorf("keys log-key after the succession: %v %q", err, k)
	}

	base, logs, stop := serveUntil(t, env)
	waitOK(t, base, logs)
	waitLogSize(t, base, 25) // 19 carried, the statement, the 5 that waited
	newKey, _ := servedLogKey(t, base)
	if !strings.HasPrefix(newKey, newName+"+") || !strings.Contains(out, "new log key: "+newKey) {
		t.Fatalf("the served log key %q is not the successor's:\n%s", newKey, out)
	}
	if o := checkpointOrigin(t, base); o != newName {
		t.Errorf("the checkpoint is of %q, want %q", o, newName)
	}
	postN(t, base, 3)
	waitLogSize(t, base, 28)
	// The auditor that saw 37 leaves of the old log follows the new one:
	// its statement is held to the old key pinned and the 37 it saw.
	res, err := auditLog(t, base, newKey, state)
	if err != nil || !res.OK || res.Size != 28 || len(res.Successions) != 1 || res.Successions[0].Seen != 37 ||
		res.Successions[0].Lost != "leaves 19 to 36 of "+oldName || !strings.Contains(res.Successions[0].Note, "those from 19 on are in the gap") {
		t.Errorf("log-audit of the successor: %v %+v", err, res)
	}
	// The console's and the API's "Verify log" name the gap too.
	if b, code := httpGet(t, base+"/api/v1/sites/demo/verify", adminToken); code != 200 || !strings.Contains(string(b), `"ok":true`) || !strings.Contains(string(b), `"lost":"leaves 19 to 36 of `+oldName) {
		t.Errorf("the server's verify after the succession: %d %s", code, b)
	}
	if _, err := auditLog(t, base, oldKey, t.TempDir()); err == nil {
		t.Errorf("log-audit under the old key verified the successor's checkpoint")
	}
	stop()
	// The old name signed nothing past the carried leaves, and the
	// successor nothing before its statement.
	if n := rawCount(t, dbPath, `SELECT count(*) FROM log_checkpoints WHERE size > 19 AND CAST(signed AS TEXT) NOT LIKE ? || char(10) || '%'`, newName); n != 0 {
		t.Errorf("%d checkpoints past 19 leaves not signed under %s", n, newName)
	}
	if n := rawCount(t, dbPath, `SELECT count(*) FROM log_checkpoints WHERE size <= 19 AND CAST(signed AS TEXT) NOT LIKE ? || char(10) || '%'`, oldName); n != 0 {
		t.Errorf("%d checkpoints of the carried leaves not signed under %s", n, oldName)
	}
	if n := rawCount(t, dbPath, `SELECT count(*) FROM log_pending`); n != 0 {
		t.Errorf("%d records still wait", n)
	}

	out, err = runCLI(t, env, "verify")
	for _, want := range []string{`"records":27`, `"successions":[{"entry":19,"predecessor":"` + oldName + `","predecessor_size":37`, `"lost":"leaves 19 to 36 of ` + oldName} {
		if err != nil || !strings.Contains(out, want) {
			t.Errorf("verify after the succession: %v, want %s in\n%s", err, want, out)
		}
	}
	keptFile := filepath.Join(t.TempDir(), "kept37")
	os.WriteFile(keptFile, kept37, 0o600)
	out, err = runCLI(t, env, "verify", "--checkpoint", keptFile)
	if err != nil || !strings.Contains(out, "the given checkpoint (37 leaves) is in that gap") || !strings.Contains(out, "earlier log "+oldName) {
		t.Errorf("verify against the old log's kept checkpoint: %v\n%s", err, out)
	}

	// The statement changed in the database (it now claims one leaf fewer
	// lost) fails verify, whatever else holds.
	rawExec(t, dbPath, `UPDATE log_leaves SET entry = CAST(replace(CAST(entry AS TEXT), 'lost 19 36', 'lost 19 35') AS BLOB) WHERE kind = 4`)
	out, err = runCLI(t, env, "verify")
	if err != ErrFailed || !strings.Contains(out, `"reason":"log_mismatch","detail":"leaf 19: successor statement`) {
		t.Errorf("verify after the statement was changed: %v\n%s", err, out)
	}
}

// A log moved to a new public URL on a healthy database: serve under the
// new URL keeps the old name and says how to move; successor-log with that
// URL names the successor after it, carrying every leaf (no gap), and
// serve then signs under the new name with no warning. Without a new URL
// a healthy log has nothing to succeed.
func TestSuccessorLogRename(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	dbPath := filepath.Join(dir, "k.db")
	env := map[string]string{"KOEKJE_DB": dbPath, "KOEKJE_ADMIN_TOKEN": adminToken, "KOEKJE_RATE_LIMIT": "0"}
	base, _, stop := serveUntil(t, env)
	oldKey, oldName := servedLogKey(t, base)
	postN(t, base, 7)
	tiles := t.TempDir()
	if out, err := runCLI(t, env, "backup", "--tiles", tiles); err != nil {
		t.Fatalf("backup --tiles: %v\n%s", err, out)
	}
	waitLogSize(t, base, 7)
	state := t.TempDir()
	if res, err := auditLog(t, base, oldKey, state); err != nil || res.Size != 7 {
		t.Fatalf("log-audit at 7: %v %+v", err, res)
	}
	stop()
	if _, err := runCLI(t, env, "successor-log"); err == nil || !strings.Contains(err.Error(), "nothing to succeed") {
		t.Errorf("successor-log of a healthy log under its own name: %v", err)
	}

	env["KOEKJE_PUBLIC_URL"] = "https://consent.example.nl"
	base, logs, stop := serveUntil(t, env)
	waitOK(t, base, logs)
	if o := checkpointOrigin(t, base); o != oldName {
		t.Errorf("under a new public URL the log is %q, want %q", o, oldName)
	}
	stop()
	if !strings.Contains(logs.String(), "run koekje successor-log --public-url with the new URL") {
		t.Errorf("serve under a new public URL does not say how to move:\n%s", logs)
	}

	// The new URL as serve takes it, from KOEKJE_PUBLIC_URL.
	out, err := runCLI(t, env, "successor-log")
	if err != nil || !strings.Contains(out, "is succeeded by the log consent.example.nl/log") || !strings.Contains(out, "holds all its 7 leaves (0 to 6)") {
		t.Fatalf("successor-log under a new KOEKJE_PUBLIC_URL: %v\n%s", err, out)
	}
	base, logs, stop = serveUntil(t, env)
	waitOK(t, base, logs)
	if o := checkpointOrigin(t, base); o != "consent.example.nl/log" {
		t.Errorf("after the succession the log is %q", o)
	}
	postN(t, base, 2)
	waitLogSize(t, base, 10)
	// The old log's tiles are kept apart from the successor's.
	if _, err := runCLI(t, env, "backup", "--tiles", tiles); err == nil || !strings.Contains(err.Error(), "keeps the tiles of the log "+oldName+", not of consent.example.nl/log") {
		t.Errorf("backup --tiles of the successor into the old log's tiles: %v", err)
	}
	if out, err := runCLI(t, env, "backup", "--tiles", t.TempDir()); err != nil || !strings.Contains(out, "10 leaves") {
		t.Errorf("backup --tiles of the successor: %v\n%s", err, out)
	}
	newKey, _ := servedLogKey(t, base)
	res, err := auditLog(t, base, newKey, state)
	if err != nil || !res.OK || len(res.Successions) != 1 || res.Successions[0].Lost != "" || res.Successions[0].Note != "the successor carries the 7 leaves of "+oldName+" this auditor saw" {
		t.Errorf("log-audit after the rename: %v %+v", err, res)
	}
	stop()
	if strings.Contains(logs.String(), "the public URL does not name this log") {
		t.Errorf("serve still warns after the succession:\n%s", logs)
	}
	out, err = runCLI(t, env, "verify")
	if err != nil || !strings.Contains(out, `"checked":"the 7 leaves before it are the tree of the old log's last checkpoint"`) || strings.Contains(out, `"lost"`) {
		t.Errorf("verify after the rename: %v\n%s", err, out)
	}
}

// On PostgreSQL the same way out: a copy of the database at 19 leaves (the
// backup) served after the log reached 37 is held, and its 5 records wait;
// successor-log refuses while the instance integrates, and with it stopped
// makes the successor: the restarted instance appends what waited after
// the statement, under the new name, and verify names the gap.
func TestSuccessorLogPostgres(t *testing.T) {
	t.Parallel()
	// The reference holds what the log published: 37.
	env, backup, logKey, base, stop := pgBackupAt19(t)
	oldName, _, _ := strings.Cut(logKey, "+")
	ctx := context.Background()
	stop()

	env["KOEKJE_DB"] = backup
	base, _, stop = serveUntil(t, env)
	if status, reason := healthOf(t, base); status != "degraded" || !strings.Contains(reason, "the database holds 19 leaves, the reference 37") {
		t.Errorf("healthz on the restored copy: %s %q", status, reason)
	}
	postN(t, base, 5)
	time.Sleep(time.Second) // the instance takes the log's lease
	if _, err := runCLI(t, env, "successor-log"); err == nil || !strings.Contains(err.Error(), "stop every instance") {
		t.Errorf("successor-log beside a serving instance: %v", err)
	}
	stop()
	// Another instance, on another machine, keeps its own copy of the key
	// file and its own reference: the old log's 37.
	other := t.TempDir()
	for _, name := range []string{"koekje.key", "koekje.key.log-reference"} {
		b, err := os.ReadFile(filepath.Join(filepath.Dir(env["KOEKJE_KEY_FILE"]), name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(other, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	conn, err := pgx.Connect(ctx, env["KOEKJE_DB"])
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	// The stopped instance's hold on the log runs out by itself.
	out, err := runCLI(t, env, "successor-log")
	for deadline := time.Now().Add(15 * time.Second); err != nil && strings.Contains(err.Error(), "stop every instance") && time.Now().Before(deadline); time.Sleep(250 * time.Millisecond) {
		out, err = runCLI(t, env, "successor-log")
	}
	if err != nil || !strings.Contains(out, "is succeeded by the log "+oldName+"/2") || !strings.Contains(out, "It does not hold leaves 19 to 36") {
		t.Fatalf("successor-log: %v\n%s", err, out)
	}
	base, logs, stop := serveUntil(t, env)
	waitOK(t, base, logs)
	waitLogSize(t, base, 25)
	if o := checkpointOrigin(t, base); o != oldName+"/2" {
		t.Errorf("the checkpoint is of %q", o)
	}
	postN(t, base, 2)
	waitLogSize(t, base, 27)
	stop()
	// The other instance's reference of the old log follows the successor
	// statement that carries it: it signs on.
	otherEnv := map[string]string{"KOEKJE_DB": env["KOEKJE_DB"], "KOEKJE_KEY_FILE": filepath.Join(other, "koekje.key"), "KOEKJE_ADMIN_TOKEN": adminToken, "KOEKJE_RATE_LIMIT": "0"}
	base, logs, stop = serveUntil(t, otherEnv)
	waitOK(t, base, logs)
	postN(t, base, 1)
	waitLogSize(t, base, 28)
	stop()
	if !strings.Contains(logs.String(), "the successor statement carries it") {
		t.Errorf("the other instance did not say its reference followed the successor:\n%s", logs)
	}
	var oldSigned int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM log_checkpoints WHERE size > 19 AND convert_from(signed, 'UTF8') NOT LIKE $1 || E'\n%'`, oldName+"/2").Scan(&oldSigned); err != nil {
		t.Fatal(err)
	}
	if oldSigned != 0 {
		t.Errorf("%d checkpoints past 19 leaves not signed under the successor's name", oldSigned)
	}
	out, err = runCLI(t, env, "verify")
	if err != nil || !strings.Contains(out, `"records":27`) || !strings.Contains(out, `"lost":"leaves 19 to 36 of `+oldName) {
		t.Errorf("verify after the succession: %v\n%s", err, out)
	}
}

// A successor log moves to PostgreSQL with its statement and the keys of
// its earlier names: migrate-store verifies the copy, and verify on the
// target checks the statement as on the source.
func TestMigrateStoreSuccessorLog(t *testing.T) {
	t.Parallel()
	dsn := pgtest.Shared(t).NewDatabase(t)
	dir := t.TempDir()
	src := filepath.Join(dir, "k.db")
	env := map[string]string{"KOEKJE_DB": src, "KOEKJE_ADMIN_TOKEN": adminToken, "KOEKJE_RATE_LIMIT": "0"}
	base, _, stop := serveUntil(t, env)
	postN(t, base, 6)
	waitLogSize(t, base, 6)
	stop()
	if out, err := runCLI(t, env, "successor-log", "--public-url", "https://consent.example.nl"); err != nil {
		t.Fatalf("successor-log: %v\n%s", err, out)
	}
	env["KOEKJE_PUBLIC_URL"] = "https://consent.example.nl"
	base, _, stop = serveUntil(t, env)
	postN(t, base, 2)
	waitLogSize(t, base, 9)
	stop()
	pgKey := filepath.Join(dir, "pg.key")
	if out, err := runCLI(t, nil, "migrate-store", "--from", src, "--to", dsn, "--key-file", pgKey); err != nil {
		t.Fatalf("migrate-store: %v\n%s", err, out)
	}
	out, err := runCLI(t, map[string]string{"KOEKJE_DB": dsn, "KOEKJE_KEY_FILE": pgKey}, "verify")
	if err != nil || !strings.Contains(out, `"records":8`) || !strings.Contains(out, `"checked":"the 6 leaves before it are the tree of the old log's last checkpoint"`) {
		t.Errorf("verify on the target: %v\n%s", err, out)
	}
}

// A log named and never written to moves to a new URL too: its successor
// carries nothing, and its statement is leaf 0.
func TestSuccessorLogOfEmptyLog(t *testing.T) {
	t.Parallel()
	env := map[string]string{"KOEKJE_DB": filepath.Join(t.TempDir(), "k.db"), "KOEKJE_ADMIN_TOKEN": adminToken, "KOEKJE_RATE_LIMIT": "0"}
	_, _, stop := serveUntil(t, env)
	stop()
	out, err := runCLI(t, env, "successor-log", "--public-url", "https://consent.example.nl")
	if err != nil || !strings.Contains(out, "which held no leaves: nothing is lost") {
		t.Fatalf("successor-log of an empty log: %v\n%s", err, out)
	}
	env["KOEKJE_PUBLIC_URL"] = "https://consent.example.nl"
	base, logs, stop := serveUntil(t, env)
	waitOK(t, base, logs)
	postN(t, base, 2)
	waitLogSize(t, base, 3)
	stop()
	out, err = runCLI(t, env, "verify")
	if err != nil || !strings.Contains(out, `"successions":[{"entry":0,`) {
		t.Errorf("verify: %v\n%s", err, out)
	}
}
