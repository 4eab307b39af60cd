package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/koekje/koekje/server/postgres/pgtest"
	"github.com/koekje/koekje/server/translog"
)

// auditLog runs koekje log-audit against a server's log, keeping its state
// (the log's tiles among it) in state.
func auditLog(t *testing.T, base, logKey, state string) (translog.AuditResult, error) {
	t.Helper()
	var out bytes.Buffer
	err := Run(context.Background(), []string{"log-audit", "--url", base, "--log-key", logKey, "--allow-unwitnessed", "--state", state},
		func(string) string { return "" }, &out, &out)
	var res translog.AuditResult
	json.NewDecoder(&out).Decode(&res)
	return res, err
}

// The way out of a restore that never forks: a backup taken at 19 leaves,
// the public log grown to 37 and audited (log-audit keeps its tiles), the
// backup restored; serve starts degraded and records 5 choices, which
// wait. recover-log restores leaves 19 to 36 from the tiles of a mirror of
// the auditor's state, and the restarted server appends what waited and
// signs on: a tree that grows from the size-37 checkpoint, as the same
// auditor proves. Tiles that do not rebuild the reference's root restore
// nothing.
func TestRecoverLogFromTiles(t *testing.T) {
	t.Parallel()
	dir, backup, state := t.TempDir(), t.TempDir(), t.TempDir()
	env := map[string]string{"KOEKJE_DB": filepath.Join(dir, "k.db"), "KOEKJE_ADMIN_TOKEN": adminToken, "KOEKJE_RATE_LIMIT": "0"}
	base, _, stop := serveUntil(t, env)
	key, code := httpGet(t, base+"/log/key", "")
	if code != 200 {
		t.Fatalf("log key: %d", code)
	}
	logKey := strings.TrimSpace(string(key))
	postN(t, base, 19)
	if _, err := runCLI(t, env, "backup", "--to", filepath.Join(backup, "k.db")); err != nil {
		t.Fatal(err)
	}
	postN(t, base, 11)
	waitLogSize(t, base, 30) // published, so the reference holds it
	refFile := filepath.Join(dir, "k.db.key.log-reference")
	lagging, err := os.ReadFile(refFile) // the reference at 30 leaves
	if err != nil {
		t.Fatal(err)
	}
	postN(t, base, 7)
	waitLogSize(t, base, 37)
	if res, err := auditLog(t, base, logKey, state); err != nil || res.Size != 37 {
		t.Fatalf("log-audit at 37: %v %+v", err, res)
	}
	kept37, _ := httpGet(t, base+"/log/checkpoint", "")
	stop()

	for _, name := range []string{"k.db-wal", "k.db-shm"} {
		os.Remove(filepath.Join(dir, name))
	}
	copyFiles(t, backup, dir)
	// A reference older than what the log published (the key file's
	// directory restored from an older copy as well): it holds 30 leaves,
	// the public log 37. Restoring up to 30 alone would fork it.
	if err := os.WriteFile(refFile, lagging, 0o600); err != nil {
		t.Fatal(err)
	}
	base, _, stop = serveUntil(t, env)
	if status, _ := healthOf(t, base); status != "degraded" {
		t.Fatalf("healthz on the restored backup: %s", status)
	}
	postN(t, base, 5)
	// recover-log leaves a running server's database alone.
	if _, err := runCLI(t, env, "recover-log", "--tiles", state); err == nil || !strings.Contains(err.Error(), "stop it first") {
		t.Errorf("recover-log beside a running server: %v", err)
	}
	stop()

	// Tiles of another log restore nothing.
	other := t.TempDir()
	otherEnv := map[string]string{"KOEKJE_DB": filepath.Join(other, "k.db"), "KOEKJE_ADMIN_TOKEN": adminToken, "KOEKJE_RATE_LIMIT": "0"}
	otherBase, _, stopOther := serveUntil(t, otherEnv)
	postN(t, otherBase, 40)
	waitLogSize(t, otherBase, 40)
	otherTiles := httptest.NewServer(http.StripPrefix("/mirror", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		resp, err := http.Get(otherBase + "/log" + r.URL.Path)
		if err != nil {
			http.Error(w, err.Error(), 502)
			return
		}
		defer resp.Body.Close()
		w.WriteHeader(resp.StatusCode)
		var b bytes.Buffer
		b.ReadFrom(resp.Body)
		w.Write(b.Bytes())
	})))
	defer otherTiles.Close()
	if out, err := runCLI(t, env, "recover-log", "--tiles", otherTiles.URL+"/mirror/"); err == nil || !strings.Contains(err.Error(), "leaf 0 of the database is not the published one") {
		t.Errorf("recover-log from another log's tiles: %v\n%s", err, out)
	}
	stopOther()
	if n := rawCount(t, env["KOEKJE_DB"], `SELECT count(*) FROM log_leaves`); n != 19 {
		t.Fatalf("%d leaves after a refused recovery, want 19", n)
	}

	// A mirror of what the auditor kept, over HTTP.
	mirror := httptest.NewServer(http.FileServer(http.Dir(filepath.Join(state, url.PathEscape(strings.SplitN(logKey, "+", 2)[0])))))
	defer mirror.Close()
	out, err := runCLI(t, env, "recover-log", "--tiles", mirror.URL+"/")
	if err != nil || !strings.Contains(out, "restored leaves 19 to 36") || !strings.Contains(out, "18 of those leaves are of records this database does not hold") {
		t.Fatalf("recover-log: %v\n%s", err, out)
	}
	if _, err := runCLI(t, env, "recover-log", "--tiles", state); err == nil || !strings.Contains(err.Error(), "nothing to restore") {
		t.Errorf("recover-log again: %v", err)
	}

	base, logs, stop := serveUntil(t, env)
	status, reason := "", ""
	for deadline := time.Now().Add(10 * time.Second); status != "ok" && time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		status, reason = healthOf(t, base)
	}
	if status != "ok" {
		t.Fatalf("healthz after the recovery: %s %q\n%s", status, reason, logs)
	}
	postN(t, base, 3)
	waitLogSize(t, base, 45)
	res, err := auditLog(t, base, logKey, state)
	if err != nil || !res.OK || res.Size != 45 || res.Since != 37 {
		t.Errorf("log-audit after the recovery: %v %+v, want 45 leaves extending the 37 it saw", err, res)
	}
	keptFile := filepath.Join(t.TempDir(), "kept37")
	os.WriteFile(keptFile, kept37, 0o600)
	stop()
	if n := rawCount(t, env["KOEKJE_DB"], `SELECT count(*) FROM log_pending`); n != 0 {
		t.Errorf("%d records still wait", n)
	}
	// The records of leaves 19 to 36 were lost with the restore: verify
	// names the first, against the log the kept checkpoint signed, and
	// finds every record made since in it.
	out, err = runCLI(t, env, "verify", "--checkpoint", keptFile)
	if err != ErrFailed || !strings.Contains(out, `"records":27`) || !strings.Contains(out, `"reason":"missing","detail":"leaf 19 of this site has no record`) {
		t.Errorf("verify after the recovery: %v\n%s", err, out)
	}
	// A root the tiles do not rebuild restores nothing.
	if _, err := translog.MissingEntries(context.Background(), translog.TileDir{Dir: state, Origin: strings.SplitN(logKey, "+", 2)[0]},
		translog.Checkpoint{Size: 37, Hash: [32]byte{1}}, translog.Checkpoint{}, noEntries{}, 0); err == nil || !strings.Contains(err.Error(), "do not rebuild the root") {
		t.Errorf("tiles against another root: %v", err)
	}
}

// pgBackup copies a stopped PostgreSQL database (CREATE DATABASE …
// TEMPLATE), as a backup of it, and returns the copy's DSN.
func pgBackup(t *testing.T, cluster *pgtest.Cluster, dsn string) string {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	name := strings.TrimPrefix(u.Path, "/")
	ctx := context.Background()
	admin, err := pgx.Connect(ctx, cluster.DSN("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+name+"_bak TEMPLATE "+name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if admin, err := pgx.Connect(context.Background(), cluster.DSN("postgres")); err == nil {
			admin.Exec(context.Background(), "DROP DATABASE IF EXISTS "+name+"_bak WITH (FORCE)")
			admin.Close(context.Background())
		}
	})
	return cluster.DSN(name + "_bak")
}

// noEntries is a database whose log is empty.
type noEntries struct{}

func (noEntries) LogEntries(context.Context, int64, int64) ([][]byte, error) { return nil, nil }

// logSize reads the size of a server's published checkpoint.
func logSize(t *testing.T, base string) int64 {
	t.Helper()
	b, code := httpGet(t, base+"/log/checkpoint", "")
	if code != 200 {
		return -1
	}
	lines := strings.SplitN(string(b), "\n", 3)
	if len(lines) < 2 {
		return -1
	}
	n, _ := strconv.ParseInt(lines[1], 10, 64)
	return n
}

// waitLogSize waits until a server publishes a checkpoint of n leaves (a
// checkpoint goes out once the log reference holds it, within
// translog.ReferenceEvery of its signing, and PostgreSQL integrates within
// about a second).
func waitLogSize(t *testing.T, base string, n int64) {
	t.Helper()
	for deadline := time.Now().Add(15 * time.Second); logSize(t, base) != n; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the log has %d leaves, want %d", logSize(t, base), n)
		}
	}
}

// pgBackupAt19 serves a new PostgreSQL database until its log publishes 19
// leaves, copies it (the backup) and serves it again until the log
// publishes 37, so the instance's reference holds 37. It returns the
// environment, the backup's DSN, the log key and the running server.
func pgBackupAt19(t *testing.T) (env map[string]string, backup, logKey, base string, stop func()) {
	t.Helper()
	cluster := pgtest.Shared(t)
	dsn := cluster.NewDatabase(t)
	env = map[string]string{"KOEKJE_DB": dsn, "KOEKJE_KEY_FILE": filepath.Join(t.TempDir(), "koekje.key"), "KOEKJE_ADMIN_TOKEN": adminToken, "KOEKJE_RATE_LIMIT": "0"}
	base, _, stop = serveUntil(t, env)
	logKey, _ = servedLogKey(t, base)
	postN(t, base, 19)
	waitLogSize(t, base, 19)
	stop()
	backup = pgBackup(t, cluster, dsn)
	base, _, stop = serveUntil(t, env)
	postN(t, base, 18)
	waitLogSize(t, base, 37)
	return env, backup, logKey, base, stop
}

// On PostgreSQL the same way out, while the instance serves: a copy of
// the database at 19 leaves (the backup) served after the log reached 37
// is degraded, its records wait in log_pending, and recover-log, run beside
// the serving instance, restores leaves 19 to 36 from a mirror of the
// auditor's tiles; the instance sees the tree extend its reference again,
// integrates what waited and signs on from 37.
func TestRecoverLogPostgres(t *testing.T) {
	t.Parallel()
	state := t.TempDir()
	env, backup, logKey, base, stop := pgBackupAt19(t)
	ctx := context.Background()
	if res, err := auditLog(t, base, logKey, state); err != nil || res.Size != 37 {
		t.Fatalf("log-audit at 37: %v %+v", err, res)
	}
	stop()

	// The backup restored in place of the database.
	env["KOEKJE_DB"] = backup
	base, logs, stop := serveUntil(t, env)
	if status, reason := healthOf(t, base); status != "degraded" || !strings.Contains(reason, "the database holds 19 leaves, the reference 37") {
		t.Errorf("healthz on the restored copy: %s %q", status, reason)
	}
	postN(t, base, 5)
	conn, err := pgx.Connect(ctx, env["KOEKJE_DB"])
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	time.Sleep(time.Second) // five integration rounds
	var signedOver, queued int
	if err := conn.QueryRow(ctx, `SELECT (SELECT count(*) FROM log_checkpoints WHERE size > 19), (SELECT count(*) FROM log_pending)`).Scan(&signedOver, &queued); err != nil {
		t.Fatal(err)
	}
	if signedOver != 0 || queued != 5 {
		t.Errorf("%d checkpoints signed over the restored copy and %d records queued, want none and 5", signedOver, queued)
	}

	mirror := httptest.NewServer(http.FileServer(http.Dir(filepath.Join(state, url.PathEscape(strings.SplitN(logKey, "+", 2)[0])))))
	defer mirror.Close()
	out, err := runCLI(t, env, "recover-log", "--tiles", mirror.URL+"/")
	if err != nil || !strings.Contains(out, "restored leaves 19 to 36") {
		t.Fatalf("recover-log beside the serving instance: %v\n%s", err, out)
	}
	waitLogSize(t, base, 42)
	status, reason := "", ""
	for deadline := time.Now().Add(10 * time.Second); status != "ok" && time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		status, reason = healthOf(t, base)
	}
	if status != "ok" {
		t.Errorf("healthz after the recovery: %s %q\n%s", status, reason, logs)
	}
	postN(t, base, 3)
	waitLogSize(t, base, 45)
	if res, err := auditLog(t, base, logKey, state); err != nil || !res.OK || res.Since != 37 {
		t.Errorf("log-audit after the recovery: %v %+v, want 45 leaves extending the 37 it saw", err, res)
	}
	stop()
	if !strings.Contains(logs.String(), `"msg":"the log extends what this server signed before again`) {
		t.Errorf("no line saying the log signs on again:\n%s", logs)
	}
}

// koekje backup --tiles keeps the log's tiles, only ever adding to them:
// taken with the backup at 19 leaves and again, alone, at 37, they are
// what recover-log restores the backup's log from; run on the restored
// database, held at 19, it leaves the 37 it kept as they were.
func TestBackupKeepsTiles(t *testing.T) {
	t.Parallel()
	dir, backup, tiles := t.TempDir(), t.TempDir(), t.TempDir()
	env := map[string]string{"KOEKJE_DB": filepath.Join(dir, "k.db"), "KOEKJE_ADMIN_TOKEN": adminToken, "KOEKJE_RATE_LIMIT": "0"}
	base, _, stop := serveUntil(t, env)
	postN(t, base, 19)
	if out, err := runCLI(t, env, "backup", "--to", filepath.Join(backup, "k.db"), "--tiles", tiles); err != nil || !strings.Contains(out, "kept the log's tiles in "+tiles+": 19 leaves") {
		t.Fatalf("backup with its tiles: %v\n%s", err, out)
	}
	postN(t, base, 18)
	if out, err := runCLI(t, env, "backup", "--tiles", tiles); err != nil || !strings.Contains(out, ": 37 leaves") {
		t.Fatalf("the tiles alone: %v\n%s", err, out)
	}
	stop()
	for _, name := range []string{"k.db-wal", "k.db-shm"} {
		os.Remove(filepath.Join(dir, name))
	}
	copyFiles(t, backup, dir)
	base, _, stop = serveUntil(t, env)
	postN(t, base, 2)
	if out, err := runCLI(t, env, "backup", "--tiles", tiles); err != nil || !strings.Contains(out, ": 37 leaves") {
		t.Errorf("the tiles of the restored database: %v\n%s", err, out)
	}
	stop()
	if _, err := os.Stat(filepath.Join(tiles, "tile", "entries", "000.p", "37")); err != nil {
		t.Errorf("the bundle of 37 leaves: %v", err)
	}
	if out, err := runCLI(t, env, "recover-log", "--tiles", tiles); err != nil || !strings.Contains(out, "restored leaves 19 to 36") {
		t.Fatalf("recover-log from the kept tiles: %v\n%s", err, out)
	}
	base, _, stop = serveUntil(t, env)
	waitLogSize(t, base, 39)
	stop()
}
