package cli

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/koekje/koekje/config"
	"github.com/koekje/koekje/server"
	"github.com/koekje/koekje/server/proof"
	"github.com/koekje/koekje/server/sqlite"
)

// log-audit checks the public log from its tiles alone: the root, growth
// from a kept checkpoint, and one site's leaves found with its audit key;
// a changed entry or a kept checkpoint of another history fails it.
func TestLogAudit(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	db, err := sqlite.Open(filepath.Join(dir, "k.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	signer, err := db.StartLog(ctx, "koekje.test/log")
	if err != nil {
		t.Fatal(err)
	}
	keys, _ := proof.OpenKeys(ctx, db)
	cfg := config.Demo()
	other := *cfg.Sites[0]
	other.ID = "other"
	cfg.Sites = append(cfg.Sites, &other)
	s, err := server.New(ctx, server.Deps{Config: cfg, Store: db, Keys: keys, TokenKey: bytes.Repeat([]byte{3}, 64), AdminToken: "log-audit-admin-token-0123456789", LogKey: signer.VerifierKey(), PublicURL: "http://localhost"})
	if err != nil {
		t.Fatal(err)
	}
	var flip bool
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if flip && strings.HasPrefix(r.URL.Path, "/log/tile/entries/") {
			r.Header.Del("Accept-Encoding") // the bundle as it is, to change a byte of it
			rec := httptest.NewRecorder()
			s.ServeHTTP(rec, r)
			b := rec.Body.Bytes()
			b[len(b)-1] ^= 1
			w.Write(b)
			return
		}
		s.ServeHTTP(w, r)
	}))
	defer ts.Close()
	postTo := func(site string) {
		resp, err := http.Post(ts.URL+"/api/v1/consents", "application/json", strings.NewReader(`{"site":"`+site+`","action":"reject_all"}`))
		if err != nil || resp.StatusCode != 201 {
			t.Fatalf("post: %v %v", err, resp)
		}
		resp.Body.Close()
	}
	postTo("demo")
	postTo("other")
	kept, _ := db.LatestCheckpoint(ctx)
	keptFile := filepath.Join(dir, "kept")
	os.WriteFile(keptFile, kept, 0o600)
	for _, site := range []string{"demo", "other", "demo", "other", "demo"} {
		postTo(site)
	}
	key, _ := db.LogAuditKey(ctx, "demo")
	audit := func(args ...string) (logAudit, error) {
		var out bytes.Buffer
		err := Run(ctx, append([]string{"log-audit", "--url", ts.URL, "--log-key", signer.VerifierKey()}, args...), func(string) string { return "" }, &out, &out)
		var res logAudit
		json.NewDecoder(&out).Decode(&res)
		return res, err
	}
	res, err := audit("--since", keptFile, "--site", "demo", "--audit-key", hex.EncodeToString(key))
	if err != nil || !res.OK || res.Size != 7 || res.Since != 2 || len(res.Leaves) != 4 || res.Leaves[0] != 0 || res.Leaves[3] != 6 {
		t.Fatalf("%v %+v", err, res)
	}
	// A checkpoint of another history, signed with the log's own key.
	forger, _ := db.LogSigner(ctx)
	forged, _ := forger.Sign(2, tlog.Hash{9})
	forgedFile := filepath.Join(dir, "forged")
	os.WriteFile(forgedFile, forged, 0o600)
	if res, err := audit("--since", forgedFile); err != ErrFailed || !strings.Contains(res.Error, "does not extend") {
		t.Errorf("a kept checkpoint of another history: %v %+v", err, res)
	}
	flip = true
	if res, err := audit(); err != ErrFailed || !strings.Contains(res.Error, "rebuild") {
		t.Errorf("a changed entry: %v %+v", err, res)
	}
	// The site's auditor gets its key from the command line tool.
	var out bytes.Buffer
	if err := Run(ctx, []string{"keys", "audit-key", "--db", filepath.Join(dir, "k.db"), "--site", "demo"}, func(string) string { return "" }, &out, &out); err != nil ||
		strings.TrimSpace(out.String()) != hex.EncodeToString(key) {
		t.Errorf("keys audit-key: %v %q", err, out.String())
	}
}

// keys log-key names the log's key before the server ever started, as the
// server will sign with it.
func TestLogKeyBeforeStart(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "k.db")
	var out bytes.Buffer
	if err := Run(context.Background(), []string{"keys", "log-key", "--db", path, "--public-url", "https://consent.example.nl"}, func(string) string { return "" }, &out, &out); err != nil {
		t.Fatalf("%v %s", err, out.String())
	}
	db, err := sqlite.Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	signer, err := db.StartLog(context.Background(), logOrigin("https://consent.example.nl"))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(out.String()); got != signer.VerifierKey() || !strings.HasPrefix(got, "consent.example.nl/log+") {
		t.Fatalf("log-key %q, the server signs with %q", got, signer.VerifierKey())
	}
}
