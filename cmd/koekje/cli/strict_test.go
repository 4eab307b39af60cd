package cli

import (
	"database/sql"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/koekje/koekje/server/sqlite"
)

// A command never does something other than what was asked: an argument
// it does not take is refused, naming the flag it was probably meant for,
// before anything is opened or served.
func TestCommandsRefuseStrayArguments(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	env := map[string]string{"KOEKJE_DB": filepath.Join(dir, "k.db"), "KOEKJE_ADMIN_TOKEN": "stray-argument-admin-token-0123"}
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"serve", "sites.yaml"}, `serve takes no arguments, only flags; got "sites.yaml": did you mean --config sites.yaml?`},
		{[]string{"serve", "--addr", "127.0.0.1:0", "0.0.0.0:8080"}, "did you mean --addr 0.0.0.0:8080?"},
		{[]string{"verify", "other.db"}, "did you mean --db other.db?"},
		{[]string{"export", "demo"}, "did you mean --site demo?"},
		{[]string{"purge", "--before", "2020-01-01", "demo"}, "did you mean --site demo?"},
		{[]string{"token", "admin"}, `token takes no arguments, only flags; got "admin" (koekje token -h lists its flags)`},
		{[]string{"health", "127.0.0.1:9"}, "did you mean --addr 127.0.0.1:9?"},
		{[]string{"backup", "copy.db"}, "did you mean --db copy.db?"},
		{[]string{"version", "now"}, `version takes no arguments`},
		{[]string{"keys", "list", "extra"}, `keys list takes one action; got "extra" too`},
		{[]string{"sites.yaml"}, `unknown command "sites.yaml": did you mean koekje serve --config sites.yaml?`},
	}
	for _, tt := range tests {
		out, err := runCLI(t, env, tt.args...)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("koekje %s: %v, want %q (output %q)", strings.Join(tt.args, " "), err, tt.want, out)
		}
	}
	if entries, _ := os.ReadDir(dir); len(entries) > 0 {
		t.Errorf("refused commands left %v behind", entries)
	}
	// Commands that take arguments still do.
	if _, err := runCLI(t, nil, "check-config", "../../../config/demo.yaml"); err != nil {
		t.Errorf("check-config FILE: %v", err)
	}
}

// Only the commands whose job it is make a database or a key file: keys,
// lookup or verify in the wrong directory say so and leave nothing behind.
func TestCommandsMakeNoStore(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	db := filepath.Join(dir, "koekje.db")
	for _, args := range [][]string{
		{"keys", "list"}, {"keys", "rotate"}, {"keys", "audit-key", "--site", "demo"},
		{"verify"}, {"export"}, {"lookup", "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b"}, {"purge", "--before", "2020-01-01"},
	} {
		out, err := runCLI(t, nil, append(args, "--db", db)...)
		if err == nil || !strings.Contains(err.Error(), "database "+db+" does not exist") {
			t.Errorf("koekje %s on no database: %v %q", strings.Join(args, " "), err, out)
		}
	}
	if entries, _ := os.ReadDir(dir); len(entries) > 0 {
		t.Errorf("left %v behind", entries)
	}
	// A database without its key file is not given a new one.
	s, err := sqlite.Open(db, nil)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	os.Rename(db+".key", filepath.Join(dir, "moved.key"))
	if _, err := runCLI(t, nil, "keys", "list", "--db", db); err == nil || !strings.Contains(err.Error(), "key file "+db+".key of "+db+" does not exist") {
		t.Errorf("keys list without the key file: %v", err)
	}
	if _, err := os.Stat(db + ".key"); err == nil {
		t.Error("keys list made a key file")
	}
	if out, err := runCLI(t, nil, "keys", "list", "--db", db, "--key-file", filepath.Join(dir, "moved.key")); err != nil || !strings.Contains(out, "(signs)") {
		t.Errorf("keys list with the key file: %v %q", err, out)
	}
}

// A read-only command never upgrades a schema: it says which command does,
// and the database keeps the schema it had.
func TestReadOnlyCommandsKeepTheSchema(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "k.db")
	s, err := sqlite.Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	raw, err := sql.Open("sqlite3", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	if _, err := raw.Exec(`PRAGMA user_version = 3`); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"verify"}, {"export"}, {"keys", "list"}} {
		_, err := runCLI(t, nil, append(args, "--db", path)...)
		if err == nil || !strings.Contains(err.Error(), "has schema 3") || !strings.Contains(err.Error(), "koekje serve does") {
			t.Errorf("koekje %s on schema 3: %v, want a refusal naming koekje serve", strings.Join(args, " "), err)
		}
		var v int
		raw.QueryRow(`PRAGMA user_version`).Scan(&v)
		if v != 3 {
			t.Fatalf("koekje %s changed the schema to %d", strings.Join(args, " "), v)
		}
	}
}

// token prints only entries check-config accepts.
func TestTokenScopes(t *testing.T) {
	t.Parallel()
	if _, err := runCLI(t, nil, "token", "--scope", "root"); err == nil || !strings.Contains(err.Error(), `--scope "root": want one of audit, admin`) {
		t.Errorf("token --scope root: %v", err)
	}
	for _, scope := range []string{"audit", "admin"} {
		if out, err := runCLI(t, nil, "token", "--scope", scope); err != nil || !strings.Contains(out, "scope: "+scope+"\n") {
			t.Errorf("token --scope %s: %v %q", scope, err, out)
		}
	}
}

// health prints what the server said, and fails on anything but 200.
func TestHealthPrintsTheStatus(t *testing.T) {
	t.Parallel()
	answer := map[string]any{"status": "degraded", "reason": "the log cannot advance"}
	status := http.StatusOK
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(status)
		json.NewEncoder(w).Encode(answer)
	}))
	defer ts.Close()
	addr := strings.TrimPrefix(ts.URL, "http://")
	if out, err := runCLI(t, nil, "health", "--addr", addr); err != nil || out != "degraded: the log cannot advance\n" {
		t.Errorf("health on a degraded server: %v %q", err, out)
	}
	answer = map[string]any{"status": "ok"}
	if out, err := runCLI(t, nil, "health", "--addr", addr); err != nil || out != "ok\n" {
		t.Errorf("health: %v %q", err, out)
	}
	status, answer = http.StatusServiceUnavailable, map[string]any{"error": map[string]string{"code": "unavailable", "message": "the store does not answer"}}
	if _, err := runCLI(t, nil, "health", "--addr", addr); err == nil || err.Error() != "healthz answered 503 the store does not answer" {
		t.Errorf("health on a failing server: %v", err)
	}
}

// version names the schema and says when the build is unstamped (a test
// binary is); a stamped one names its version and revision.
func TestVersion(t *testing.T) {
	out, err := runCLI(t, nil, "version")
	if err != nil || !strings.Contains(out, "unstamped") || !strings.Contains(out, "database schema ") {
		t.Errorf("version: %v %q", err, out)
	}
	Version, Revision, Built = "v1.2.3", "0123456789abcdef0123456789abcdef01234567", "2026-12-01T10:00:00Z"
	defer func() { Version, Revision, Built = "", "", "" }()
	out, err = runCLI(t, nil, "version")
	if err != nil || !strings.HasPrefix(out, "koekje v1.2.3\nrevision 0123456789abcdef0123456789abcdef01234567 (2026-12-01T10:00:00Z)\n") || strings.Contains(out, "unstamped") {
		t.Errorf("stamped version: %v %q", err, out)
	}
}
