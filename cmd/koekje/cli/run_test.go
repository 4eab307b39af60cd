package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/koekje/koekje/config"
	"github.com/koekje/koekje/server"
	"github.com/koekje/koekje/server/consent"
	"github.com/koekje/koekje/server/proof"
	"github.com/koekje/koekje/server/sqlite"
)

// adminToken is long enough to be accepted.
const adminToken = "test-admin-token-of-32-characters"

// syncBuffer is a bytes.Buffer safe to write from the server's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func waitHealthy(t *testing.T, base string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(base + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("server did not become healthy")
}

// TestServe runs the real wiring on a free port: flags and environment,
// config, store, server; then stops it as SIGTERM would.
func TestServe(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	addr := freeAddr(t)
	env := map[string]string{"KOEKJE_DB": filepath.Join(dir, "k.db"), "KOEKJE_RATE_LIMIT": "0"}
	var stderr syncBuffer
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, []string{"--addr", addr}, func(k string) string { return env[k] }, &bytes.Buffer{}, &stderr)
	}()
	base := "http://" + addr
	waitHealthy(t, base)

	resp, err := http.Post(base+"/api/v1/consents", "text/plain", strings.NewReader(`{"site":"demo","action":"accept_all"}`))
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		ConsentID string `json:"consent_id"`
	}
	json.NewDecoder(resp.Body).Decode(&got)
	resp.Body.Close()
	if resp.StatusCode != 201 || got.ConsentID == "" {
		t.Fatalf("post: %d %+v", resp.StatusCode, got)
	}
	if err := Run(context.Background(), []string{"health", "--addr", addr}, func(string) string { return "" }, io.Discard, io.Discard); err != nil {
		t.Errorf("health: %v", err)
	}
	generated, _ := os.ReadFile(env["KOEKJE_DB"] + ".admin-token")
	req, _ := http.NewRequest("GET", base+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(generated)))
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 200 {
		t.Errorf("the generated admin token does not work: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("run: %v", err)
	}
	if err := Run(context.Background(), []string{"health", "--addr", addr}, func(string) string { return "" }, io.Discard, io.Discard); err == nil {
		t.Error("health passed with the server stopped")
	}
	if _, err := os.Stat(env["KOEKJE_DB"]); err != nil {
		t.Errorf("database not at KOEKJE_DB: %v", err)
	}
	log := stderr.String()
	// The generated token is kept in a file of the user's own; the log
	// names the file, not the token.
	tokFile := env["KOEKJE_DB"] + ".admin-token"
	fi, err := os.Stat(tokFile)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("generated admin token file: %v %v", fi, err)
	}
	tok, _ := os.ReadFile(tokFile)
	if !strings.Contains(log, tokFile) || strings.Contains(log, strings.TrimSpace(string(tok))) {
		t.Errorf("the log should name %s and not hold the token:\n%s", tokFile, log)
	}
	// The next start reuses it.
	again, err := generatedToken(env["KOEKJE_DB"], io.Discard, slog.New(slog.DiscardHandler))
	if err != nil || again != strings.TrimSpace(string(tok)) || len(again) < minAdminToken {
		t.Errorf("second start: token %q, %v; want the first one", again, err)
	}
	for _, line := range strings.Split(strings.TrimSpace(log), "\n") {
		if strings.HasPrefix(line, "{") && !json.Valid([]byte(line)) {
			t.Errorf("log line is not JSON: %s", line)
		}
	}
	if !strings.Contains(log, `"route":"/api/v1/consents","status":201`) {
		t.Errorf("no request log line for the POST:\n%s", log)
	}
	if strings.Contains(log, "127.0.0.1\"") || strings.Contains(log, got.ConsentID) {
		t.Error("log carries an address or a consent ID")
	}
}

func TestCommands(t *testing.T) {
	t.Parallel()
	env := func(string) string { return "" }
	var out, errb bytes.Buffer
	if err := Run(context.Background(), []string{"version"}, env, &out, &errb); err != nil || !strings.HasPrefix(out.String(), "koekje ") {
		t.Errorf("version: %v %q", err, out.String())
	}
	if err := Run(context.Background(), []string{"frobnicate"}, env, &out, &errb); err == nil {
		t.Error("unknown command accepted")
	}
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(bad, []byte("sites:\n  - id: x\n    colour: red\n"), 0o644)
	err := Run(context.Background(), []string{"serve", "--config", bad, "--db", filepath.Join(t.TempDir(), "k.db")}, env, &out, &errb)
	if err == nil || !strings.Contains(err.Error(), "bad.yaml:3") {
		t.Errorf("bad config: %v", err)
	}
	if err := Run(context.Background(), []string{"serve", "--rate-limit", "-1"}, env, &out, &errb); err == nil {
		t.Error("negative rate limit accepted")
	}
	short := func(k string) string { return map[string]string{"KOEKJE_ADMIN_TOKEN": "change-me"}[k] }
	err = Run(context.Background(), []string{"serve", "--db", filepath.Join(t.TempDir(), "k.db")}, short, &out, &errb)
	if err == nil || !strings.Contains(err.Error(), "koekje token") {
		t.Errorf("a 9-character admin token: %v", err)
	}
}

// TestAuditorCommands runs the CLI against a database the server filled.
func TestAuditorCommands(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	db := filepath.Join(dir, "k.db")
	addr := freeAddr(t)
	env := func(k string) string {
		return map[string]string{"KOEKJE_DB": db, "KOEKJE_ADMIN_TOKEN": adminToken}[k]
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, []string{"serve", "--addr", addr}, env, &bytes.Buffer{}, &syncBuffer{}) }()
	waitHealthy(t, "http://"+addr)
	var id string
	for i := 0; i < 3; i++ {
		resp, err := http.Post("http://"+addr+"/api/v1/consents", "application/json", strings.NewReader(`{"site":"demo","action":"accept_all"}`))
		if err != nil {
			t.Fatal(err)
		}
		var got struct {
			ConsentID string `json:"consent_id"`
		}
		json.NewDecoder(resp.Body).Decode(&got)
		resp.Body.Close()
		id = got.ConsentID
	}
	req, _ := http.NewRequest("GET", "http://"+addr+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+adminToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{"koekje_store_records_written_total 3", "koekje_store_batch_records_count 3", "koekje_store_commit_duration_seconds_bucket"} {
		if !strings.Contains(string(metrics), want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	cli := func(args ...string) (string, error) {
		var out, errb bytes.Buffer
		err := Run(context.Background(), args, env, &out, &errb)
		return out.String() + errb.String(), err
	}
	if out, err := cli("verify"); err != nil || !strings.Contains(out, `"ok":true`) || !strings.Contains(out, `"records":3`) {
		t.Errorf("verify: %v %s", err, out)
	}
	if out, err := cli("lookup", id); err != nil || strings.Count(out, "\n") != 1 || !strings.Contains(out, id) {
		t.Errorf("lookup: %v %s", err, out)
	}
	if _, err := cli("lookup", "00000000-0000-4000-8000-000000000000"); !errors.Is(err, ErrFailed) {
		t.Errorf("lookup of an unknown ID: %v", err)
	}
	out, err := cli("export", "--format", "csv")
	if err != nil || strings.Count(out, "\r\n") != 5 || !strings.HasPrefix(out, "record_id,") { // a header, 3 records, the summary
		t.Errorf("export: %v %q", err, out)
	}
	// An export file holds personal data: the owner's only, even over an
	// existing file that others could read.
	outFile := filepath.Join(dir, "export.csv")
	os.WriteFile(outFile, []byte("old"), 0o644)
	os.Chmod(outFile, 0o644)
	if _, err := cli("export", "--format", "csv", "--out", outFile); err != nil {
		t.Errorf("export --out: %v", err)
	}
	if fi, err := os.Stat(outFile); err != nil || fi.Mode().Perm() != 0o600 || fi.Size() < 100 {
		t.Errorf("export file: %v %v", fi.Mode(), err)
	}
	if out, err := cli("purge", "--before", "2999-01-01"); err != nil || !strings.Contains(out, "purged 3 records") {
		t.Errorf("purge: %v %s", err, out)
	}
	if out, err := cli("verify"); err != nil || !strings.Contains(out, `"records":0`) {
		t.Errorf("verify after purge: %v %s", err, out)
	}
	if out, err := cli("keys", "rotate"); err != nil || strings.Count(out, "\n") != 3 || !strings.Contains(out, "(signs)") {
		t.Errorf("keys rotate: %v %s", err, out)
	}
	if out, err := cli("token", "--name", "dpo"); err != nil || !strings.Contains(out, "sha256: sha256:") {
		t.Errorf("token: %v %s", err, out)
	}
	demo := filepath.Join("..", "..", "..", "config", "demo.yaml")
	if out, err := cli("check-config", demo); err != nil || !strings.Contains(out, "_ga_*") || !strings.Contains(out, "configuration is valid") {
		t.Errorf("check-config: %v %s", err, out)
	}
}

// The daily purge signs its checkpoint with the key the API rotated to,
// not the key loaded at start.
func TestRetentionSignsWithCurrentKey(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, err := sqlite.Open(filepath.Join(t.TempDir(), "k.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	keys, err := proof.OpenKeys(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	first := keys.Ring().Current()
	cfg := config.Demo()
	cfg.Sites[0].RetentionMonths = 1
	db.Now = func() time.Time { return time.Now().AddDate(0, -3, 0) }
	r := &consent.Record{Site: "demo", Action: consent.RejectAll, Choices: map[string]bool{"necessary": true}, Revision: 1, ConfigHash: "sha256:x", Language: "nl"}
	if err := db.Append(ctx, r); err != nil {
		t.Fatal(err)
	}
	rotated, err := keys.Rotate(ctx) // as POST /api/v1/keys/rotate does
	if err != nil {
		t.Fatal(err)
	}
	server.PurgeExpired(ctx, slog.New(slog.DiscardHandler), cfg, db, time.Now(), keys)
	cp, err := db.LastCheckpoint(ctx, "demo")
	if err != nil || cp == nil {
		t.Fatalf("no checkpoint after the purge: %v", err)
	}
	if cp.KeyID != rotated.ID || cp.KeyID == first {
		t.Fatalf("checkpoint signed by %s; want the rotated key %s", cp.KeyID, rotated.ID)
	}
}

// The server and every command that opens the database refuse a key file
// that group or others may read, saying how to fix it; a database without
// its key file opens nothing.
func TestKeyFileRefused(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	db := filepath.Join(dir, "k.db")
	keyFile := filepath.Join(dir, "secret.key")
	env := func(k string) string {
		return map[string]string{"KOEKJE_DB": db, "KOEKJE_KEY_FILE": keyFile}[k]
	}
	// serve makes the database and the key file it is told of.
	made, err := sqlite.OpenWith(db, sqlite.Options{KeyFile: keyFile})
	if err != nil {
		t.Fatal(err)
	}
	made.Close()
	var out bytes.Buffer
	if err := Run(context.Background(), []string{"keys", "list"}, env, &out, &out); err != nil {
		t.Fatalf("keys list: %v %s", err, out.String())
	}
	for _, p := range []string{db, keyFile} {
		if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v %v, want mode 0600", p, fi.Mode(), err)
		}
	}
	if _, err := os.Stat(db + ".key"); err == nil {
		t.Error("a key file was made beside the database although KOEKJE_KEY_FILE names another")
	}
	os.Chmod(keyFile, 0o644)
	for _, args := range [][]string{{"serve", "--addr", "127.0.0.1:0"}, {"verify"}, {"export"}, {"lookup", "00000000-0000-4000-8000-000000000000"}, {"purge", "--before", "2000-01-01"}, {"keys", "list"}, {"keys", "audit-key", "--site", "demo"}} {
		err := Run(context.Background(), args, env, io.Discard, io.Discard)
		if err == nil || !strings.Contains(err.Error(), "chmod 600 "+keyFile) {
			t.Errorf("%s with a key file others may read: %v", args[0], err)
		}
	}
	os.Chmod(keyFile, 0o600)
	noKey := func(k string) string { return map[string]string{"KOEKJE_DB": db}[k] }
	if err := Run(context.Background(), []string{"verify"}, noKey, io.Discard, io.Discard); err == nil || !strings.Contains(err.Error(), "--key-file") {
		t.Errorf("verify without the key file: %v", err)
	}
}

// The transparency log is named after the public URL, not the listen address.
func TestLogOrigin(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"https://consent.example.nl":  "consent.example.nl/log",
		"https://Consent.Example.NL/": "consent.example.nl/log",
		"http://127.0.0.1:8080":       "127.0.0.1:8080/log",
	} {
		if got := logOrigin(in); got != want {
			t.Errorf("logOrigin(%q) = %q, want %q", in, got, want)
		}
	}
}

// serveUntilCleanup runs koekje serve on addr with env and args until the
// test ends, and waits until it answers; its log goes to logs.
func serveUntilCleanup(t *testing.T, addr string, env map[string]string, args ...string) (base string, logs *syncBuffer) {
	t.Helper()
	logs = &syncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, append([]string{"serve", "--addr", addr}, args...), func(k string) string { return env[k] }, io.Discard, logs)
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	base = "http://" + addr
	waitHealthy(t, base)
	return base, logs
}
