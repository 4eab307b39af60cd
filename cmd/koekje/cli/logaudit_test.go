package cli

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/koekje/koekje/config"
	"github.com/koekje/koekje/server"
	"github.com/koekje/koekje/server/proof"
	"github.com/koekje/koekje/server/sqlite"
	"github.com/koekje/koekje/server/store/storetest"
	"github.com/koekje/koekje/server/translog"
	"github.com/koekje/koekje/server/witness"
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
	audit := func(args ...string) (translog.AuditResult, error) {
		var out bytes.Buffer
		err := Run(ctx, append([]string{"log-audit", "--url", ts.URL, "--log-key", signer.VerifierKey(), "--allow-unwitnessed"}, args...),
			func(k string) string {
				return map[string]string{"KOEKJE_LOG_AUDIT_STATE": filepath.Join(dir, "state")}[k]
			}, &out, &out)
		var res translog.AuditResult
		dec := json.NewDecoder(&out)
		dec.Decode(&res)
		rest, _ := io.ReadAll(io.MultiReader(dec.Buffered(), &out))
		if want := fmt.Sprintf("koekje log-audit: %d of %d leaves checked, ", res.Size, res.Size); res.OK && !strings.Contains(string(rest), want) {
			t.Errorf("no count of the leaves checked at the end (want %q):\n%s", want, rest)
		}
		return res, err
	}
	res, err := audit("--since", keptFile, "--site", "demo", "--audit-key", hex.EncodeToString(key))
	if err != nil || !res.OK || res.Size != 7 || res.Since != 2 || len(res.Leaves) != 4 || res.Leaves[0] != 0 || res.Leaves[3] != 6 {
		t.Fatalf("%v %+v", err, res)
	}
	// A retention purge of demo's records is in the log as an entry of its
	// own, which the site's auditor sees apart from its leaves; the other
	// site's auditor does not see it.
	if _, err := db.Purge(ctx, "demo", time.Now(), keys.SignCheckpoint); err != nil {
		t.Fatal(err)
	}
	// So is a recorded scan.
	if err := db.AddScan(ctx, storetest.NewScan("demo", 0)); err != nil {
		t.Fatal(err)
	}
	res, err = audit("--site", "demo", "--audit-key", hex.EncodeToString(key))
	if err != nil || !res.OK || res.Size != 9 || len(res.Leaves) != 4 || len(res.Purges) != 1 || res.Purges[0] != 7 ||
		len(res.Scans) != 1 || res.Scans[0] != 8 {
		t.Fatalf("after a purge and a scan: %v %+v", err, res)
	}
	otherKey, _ := db.LogAuditKey(ctx, "other")
	if res, err := audit("--site", "other", "--audit-key", hex.EncodeToString(otherKey)); err != nil || len(res.Leaves) != 3 || len(res.Purges) != 0 || len(res.Scans) != 0 {
		t.Errorf("another site's auditor: %v %+v", err, res)
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

// log-audit keeps, per log, the key and witness policy it pinned on first
// use and the newest checkpoint it verified: an older checkpoint replayed
// later fails without --since, another key fails, and a policy weaker than
// the pinned one fails until the auditor accepts it.
func TestLogAuditState(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	db, signer := openLog(t, filepath.Join(dir, "k.db"))
	defer db.Close()
	w, err := witness.Open(filepath.Join(dir, "w.db"), "witness.test", []string{signer.VerifierKey()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	ws := httptest.NewServer(w.Handler())
	defer ws.Close()
	policy, _ := translog.NewPolicy(signer.VerifierKey(), []string{w.VerifierKey()}, 1)
	keys, _ := proof.OpenKeys(ctx, db)
	s, err := server.New(ctx, server.Deps{Config: config.Demo(), Store: db, Keys: keys, TokenKey: bytes.Repeat([]byte{3}, 64),
		AdminToken: "log-audit-admin-token-0123456789", LogKey: signer.VerifierKey(), PublicURL: "http://localhost", Policy: policy})
	if err != nil {
		t.Fatal(err)
	}
	// A man in the middle, or a server rolled back, answers some paths
	// with what the test says.
	var mu sync.Mutex
	replay := map[string][]byte{}
	ts := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		mu.Lock()
		b, ok := replay[r.URL.Path]
		mu.Unlock()
		if ok {
			rw.Write(b)
			return
		}
		s.ServeHTTP(rw, r)
	}))
	defer ts.Close()
	wg := &translog.Witnessing{Store: db, LogKey: signer.VerifierKey(), Policy: 1, Client: http.DefaultClient,
		Witnesses: []*translog.WitnessClient{{URL: ws.URL, Key: w.VerifierKey()}}}
	size := int64(0)
	grow := func(n int) []byte {
		t.Helper()
		appendRecords(t, db, n)
		size += int64(n)
		for range 500 {
			if err := wg.Once(ctx); err == nil {
				if b, code := httpGet(t, ts.URL+"/log/checkpoint", ""); code == 200 && bytes.Contains(b, []byte("— witness.test")) {
					if cp, _, _ := translog.OpenCheckpoint(b, signer.VerifierKey()); cp.Size == size {
						return b
					}
				}
			}
			time.Sleep(10 * time.Millisecond)
		}
		t.Fatal("no cosigned checkpoint")
		return nil
	}
	state := filepath.Join(dir, "state")
	audit := func(args ...string) (translog.AuditResult, error) {
		t.Helper()
		var out bytes.Buffer
		err := Run(ctx, append([]string{"log-audit", "--url", ts.URL, "--state", state}, args...), func(string) string { return "" }, &out, &out)
		var res translog.AuditResult
		json.NewDecoder(&out).Decode(&res)
		return res, err
	}
	old := grow(3)
	if res, err := audit(); err == nil || !strings.Contains(res.Error, "--log-key the first time") {
		t.Fatalf("a first audit without a key: %v %+v", err, res)
	}
	if res, err := audit("--log-key", signer.VerifierKey()); err != nil || res.Size != 3 || len(res.Witnesses) != 1 {
		t.Fatalf("first audit: %v %+v", err, res)
	}
	grow(4)
	res, err := audit()
	if err != nil || res.Size != 7 || res.Since != 3 {
		t.Fatalf("second audit, with the pinned key: %v %+v", err, res)
	}
	for _, f := range []string{"key", "policy", "checkpoint", "tile/entries/000.p/" + strconv.FormatInt(res.Size, 10)} {
		if _, err := os.Stat(filepath.Join(res.State, f)); err != nil {
			t.Errorf("the state keeps no %s: %v", f, err)
		}
	}

	// The old cosigned checkpoint replayed: caught without --since.
	mu.Lock()
	replay["/log/checkpoint"] = old
	mu.Unlock()
	if res, err := audit(); err != ErrFailed || !strings.Contains(res.Error, "fewer than the") || !strings.Contains(res.Error, "rolled back") {
		t.Errorf("an old checkpoint replayed: %v %+v", err, res)
	}
	mu.Lock()
	delete(replay, "/log/checkpoint")
	mu.Unlock()

	other, _ := translog.NewSigner("localhost/log", bytes.Repeat([]byte{7}, 32))
	if res, err := audit("--log-key", other.VerifierKey()); err != ErrFailed || !strings.Contains(res.Error, "keeps its key for life") {
		t.Errorf("another key for the log: %v %+v", err, res)
	}

	// The policy weakened: no witness any more.
	none, _ := translog.NewPolicy(signer.VerifierKey(), nil, 0)
	mu.Lock()
	replay["/log/policy"] = none.Encode()
	mu.Unlock()
	if res, err := audit("--allow-unwitnessed"); err != ErrFailed || !strings.Contains(res.Error, "weaker than the one pinned") {
		t.Errorf("a weakened policy: %v %+v", err, res)
	}
	if res, err := audit("--accept-policy"); err != ErrFailed || !strings.Contains(res.Error, "--allow-unwitnessed") {
		t.Errorf("a policy without witnesses, accepted but not allowed: %v %+v", err, res)
	}
	if res, err := audit("--accept-policy", "--allow-unwitnessed"); err != nil || !res.Unwitnessed {
		t.Errorf("a policy without witnesses, accepted and allowed: %v %+v", err, res)
	}
}
