package cli

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/koekje/koekje/config"
	"github.com/koekje/koekje/server"
	"github.com/koekje/koekje/server/consent"
	"github.com/koekje/koekje/server/export"
	"github.com/koekje/koekje/server/proof"
	"github.com/koekje/koekje/server/sqlite"
	"github.com/koekje/koekje/server/store/storetest"
	"github.com/koekje/koekje/server/translog"
)

// exportLog is a running server with a log, two sites and records of both.
type exportLog struct {
	t        *testing.T
	dir      string
	db       *sqlite.DB
	ts       *httptest.Server
	logKey   string
	auditKey string
}

const exportTestToken = "verify-export-admin-token-0123456789"

// newExportLog starts a server over a fresh (or, with path, an existing)
// SQLite database.
func newExportLog(t *testing.T, dir, path string) *exportLog {
	t.Helper()
	ctx := context.Background()
	db, err := sqlite.Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	signer, err := db.StartLog(ctx, "koekje.test/log")
	if err != nil {
		t.Fatal(err)
	}
	keys, _ := proof.OpenKeys(ctx, db)
	cfg := config.Demo()
	other := *cfg.Sites[0]
	other.ID = "other"
	cfg.Sites = append(cfg.Sites, &other)
	s, err := server.New(ctx, server.Deps{Config: cfg, Store: db, Keys: keys, TokenKey: bytes.Repeat([]byte{3}, 64),
		AdminToken: exportTestToken, LogKey: signer.VerifierKey(), PublicURL: "http://localhost"})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s)
	t.Cleanup(ts.Close)
	key, _ := db.LogAuditKey(ctx, "demo")
	return &exportLog{t: t, dir: dir, db: db, ts: ts, logKey: signer.VerifierKey(), auditKey: hex.EncodeToString(key)}
}

// post records one choice on site, with a user agent.
func (l *exportLog) post(site, action, ua string) {
	l.t.Helper()
	req, _ := http.NewRequest("POST", l.ts.URL+"/api/v1/consents", strings.NewReader(`{"site":"`+site+`","action":"`+action+`"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", ua)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 201 {
		l.t.Fatalf("post: %v %v", err, resp)
	}
	resp.Body.Close()
}

// export fetches the demo site's export through the API.
func (l *exportLog) export(query string) []byte {
	l.t.Helper()
	req, _ := http.NewRequest("GET", l.ts.URL+"/api/v1/sites/demo/consents?"+query, nil)
	req.Header.Set("Authorization", "Bearer "+exportTestToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		l.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		l.t.Fatalf("export: %d %s", resp.StatusCode, b)
	}
	return b
}

// verify runs koekje verify-export on data against the log at url.
func (l *exportLog) verify(data []byte, args ...string) (export.Verification, error) {
	l.t.Helper()
	f, err := os.CreateTemp(l.dir, "export")
	if err != nil {
		l.t.Fatal(err)
	}
	f.Write(data)
	f.Close()
	var out, errs bytes.Buffer
	if !strings.Contains(strings.Join(args, " "), "--policy") {
		args = append(args, "--policy", l.policyFile(nil), "--allow-unwitnessed")
	}
	args = append([]string{"verify-export", "--audit-key", l.auditKey, f.Name()}, args...)
	if !strings.Contains(strings.Join(args, " "), "--tiles") {
		args = append(args, "--log", l.ts.URL)
	}
	if !strings.Contains(strings.Join(args, " "), "--keys") {
		args = append(args, "--keys", l.ts.URL+"/api/v1/keys")
	}
	err = Run(context.Background(), args, func(string) string { return "" }, &out, &errs)
	var v export.Verification
	if jerr := json.Unmarshal(out.Bytes(), &v); jerr != nil {
		l.t.Fatalf("%v: %s %s", jerr, out.String(), errs.String())
	}
	return v, err
}

// policyFile writes the log's witness policy with these witnesses, all of
// which must cosign, and returns its path.
func (l *exportLog) policyFile(witnessKeys []string) string {
	l.t.Helper()
	p, err := translog.NewPolicy(l.logKey, witnessKeys, len(witnessKeys))
	if err != nil {
		l.t.Fatal(err)
	}
	f, err := os.CreateTemp(l.dir, "policy")
	if err != nil {
		l.t.Fatal(err)
	}
	f.Write(p.Encode())
	f.Close()
	return f.Name()
}

// rewrite reads an export, lets change alter its records, and writes it
// again in the same format with the same summary, recounted: what a forger
// with the export and Koekje's own code could make.
func rewrite(t *testing.T, data []byte, change func([]*consent.Record) []*consent.Record) []byte {
	t.Helper()
	rd, err := export.NewReader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	var recs []*consent.Record
	for {
		r, err := rd.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, r)
	}
	var out bytes.Buffer
	w, _ := export.New(rd.Format(), config.Demo().Site("demo"), &out)
	for _, r := range change(recs) {
		w.Write(r)
	}
	s := rd.Summary()
	s.FirstLeaf, s.LastLeaf = nil, nil
	w.End(s)
	return out.Bytes()
}

// relink recomputes every link and hash from record i on, as a forger who
// edits a record must to keep the chain whole.
func relink(recs []*consent.Record, i int) {
	for ; i < len(recs); i++ {
		if i > 0 {
			recs[i].PrevHash = recs[i-1].Hash
		}
		recs[i].Hash = consent.RecordHash(recs[i])
	}
}

// verify-export checks an export with the public log and the site's audit
// key alone, and names what was changed: an edited line, an edit with the
// chain recomputed, a record removed from the middle or the end (the
// summary recounted), records reordered, the CSV's formula guard taken off,
// a summary that no longer counts the records, a log that forked.
func TestVerifyExport(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	l := newExportLog(t, dir, filepath.Join(dir, "k.db"))
	for i, site := range []string{"demo", "other", "demo", "demo", "other", "other", "demo", "demo"} {
		ua := "Mozilla/5.0"
		if i == 2 {
			ua = "=HYPERLINK(\"https://evil.example\")" // made inert in the CSV
		}
		l.post(site, []string{"accept_all", "reject_all"}[i%2], ua)
	}
	nd := l.export("format=ndjson")
	csv := l.export("format=csv&separator=semicolon&bom=true")
	if !bytes.HasPrefix(csv, []byte("\ufeffrecord_id;consent_id;")) || !bytes.Contains(csv, []byte(`;"'=HYPERLINK(""https://evil.example"")";`)) {
		t.Fatalf("the spreadsheet CSV:\n%s", csv)
	}
	for name, data := range map[string][]byte{"ndjson": nd, "csv": csv} {
		v, err := l.verify(data)
		if err != nil || !v.OK || v.Records != 5 || v.Format != name || *v.FirstLeaf != 0 || *v.LastLeaf != 7 || v.LogSize != 8 || v.ExportSize != 8 {
			t.Fatalf("%s, intact: %v %+v", name, err, v)
		}
	}
	// A saved copy of the log verifies it as well as the live one.
	tiles := filepath.Join(dir, "tiles")
	for _, p := range []string{"checkpoint", "tile/0/000.p/8", "tile/entries/000.p/8"} {
		resp, err := http.Get(l.ts.URL + "/log/" + p)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("%s: %v %v", p, err, resp)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		os.MkdirAll(filepath.Dir(filepath.Join(tiles, p)), 0o700)
		os.WriteFile(filepath.Join(tiles, p), b, 0o600)
	}
	if v, err := l.verify(nd, "--tiles", tiles); err != nil || !v.OK {
		t.Fatalf("against saved tiles: %v %+v", err, v)
	}

	// A policy asking for a witness that did not cosign: the log's
	// checkpoint is refused.
	cosigner, _ := translog.NewCosigner("witness.test", bytes.Repeat([]byte{9}, 32))
	if v, err := l.verify(nd, "--policy", l.policyFile([]string{cosigner.VerifierKey()})); err != ErrFailed || !strings.Contains(v.Error, "fewer than its quorum") {
		t.Errorf("a witness asked for: %v %+v", err, v)
	}
	// A policy without witnesses is taken only when asked for.
	var out bytes.Buffer
	if err := Run(context.Background(), []string{"verify-export", "--audit-key", l.auditKey, "--log", l.ts.URL, "--policy", l.policyFile(nil), "x.ndjson"},
		func(string) string { return "" }, &out, &out); err == nil || !strings.Contains(err.Error(), "--allow-unwitnessed") {
		t.Errorf("a policy without witnesses, not allowed: %v", err)
	}

	bad := []struct {
		name string
		data []byte
		want string
	}{
		{"an edited line", bytes.Replace(nd, []byte(`"action":"reject_all"`), []byte(`"action":"accept_all"`), 1), "do not hash to its hash"},
		{"an edited cell", bytes.Replace(csv, []byte(";reject_all;"), []byte(";accept_all;"), 1), "do not hash to its hash"},
		{"an edit with the chain recomputed", rewrite(t, nd, func(r []*consent.Record) []*consent.Record {
			r[1].Action, r[1].Choices = consent.RejectAll, map[string]bool{"necessary": true, "functional": false, "analytics": false, "embeds": false}
			relink(r, 1)
			return r
		}), "does not commit to it"},
		{"a record removed", rewrite(t, nd, func(r []*consent.Record) []*consent.Record { return append(r[:2], r[3:]...) }), "record 3 is missing"},
		{"the first record removed", rewrite(t, nd, func(r []*consent.Record) []*consent.Record { return r[1:] }), "leaf 0 of the site, before the export's first record, has no record in the export, and no purge entry"},
		{"a record removed, the chain relinked", rewrite(t, nd, func(r []*consent.Record) []*consent.Record {
			r = append(r[:2], r[3:]...)
			for i := 2; i < len(r); i++ {
				r[i].Seq--
			}
			relink(r, 2)
			return r
		}), "does not commit to it"},
		{"the last record removed", rewrite(t, nd, func(r []*consent.Record) []*consent.Record { return r[:4] }), "cut off the end"},
		{"records reordered", rewrite(t, nd, func(r []*consent.Record) []*consent.Record { r[1], r[2] = r[2], r[1]; return r }), "out of order"},
		{"the last line removed, the summary kept", bytes.Join(slices.Delete(bytes.SplitAfter(nd, []byte("\n")), 4, 5), nil), "the summary counts 5 records"},
		{"the formula guard taken off", bytes.Replace(csv, []byte(`;"'=HYPERLINK`), []byte(`;"=HYPERLINK`), 1), "formula guard"},
		{"the summary cut off", nd[:bytes.LastIndex(nd[:len(nd)-1], []byte("\n"))+1], "without its summary"},
	}
	for _, tt := range bad {
		v, err := l.verify(tt.data)
		if err != ErrFailed || v.OK || !strings.Contains(v.Error, tt.want) {
			t.Errorf("%s: %v %+v", tt.name, err, v)
		}
	}

	// A retention purge of the oldest two records: the export that starts
	// after them verifies, their leaves accounted for by the purge's entry
	// in the log.
	req, _ := http.NewRequest("POST", l.ts.URL+"/api/v1/sites/demo/purge?before="+url.QueryEscape(time.Now().UTC().Format(time.RFC3339Nano)), nil)
	req.Header.Set("Authorization", "Bearer "+exportTestToken)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 200 {
		t.Fatalf("purge: %v %v", err, resp)
	} else {
		resp.Body.Close()
	}
	l.post("demo", "reject_all", "after the purge")
	// A recorded scan of the site is an entry of its own too, counted.
	if err := l.db.AddScan(context.Background(), storetest.NewScan("demo", 0)); err != nil {
		t.Fatal(err)
	}
	afterPurge := l.export("format=ndjson")
	if v, err := l.verify(afterPurge); err != nil || !v.OK || v.Records != 1 || v.PurgedLeaves != 5 || v.PurgeEntries != 1 || v.ScanEntries != 1 || v.PurgesSigned != 1 {
		t.Fatalf("an export after a purge: %v %+v", err, v)
	}
	// The purge's signature, checked against the site's keys, saved as a
	// file as an auditor pins them: a forged one is caught, and so is one
	// by a key the site does not have, or an export checked without keys.
	jwks := filepath.Join(t.TempDir(), "keys.json")
	if b, status := httpGet(t, l.ts.URL+"/api/v1/keys", ""); status != 200 {
		t.Fatalf("keys: %d", status)
	} else {
		os.WriteFile(jwks, b, 0o600)
	}
	if v, err := l.verify(afterPurge, "--keys", jwks); err != nil || !v.OK || v.PurgesSigned != 1 {
		t.Errorf("against the keys saved as a file: %v %+v", err, v)
	}
	sig := regexp.MustCompile(`"signature":"([0-9a-f])`)
	flip := map[byte]byte{'0': '1'}
	forged := sig.ReplaceAllFunc(afterPurge, func(m []byte) []byte {
		c := m[len(m)-1]
		if f, ok := flip[c]; ok {
			c = f
		} else {
			c = '0'
		}
		return append(m[:len(m)-1:len(m)-1], c)
	})
	for name, tt := range map[string]struct {
		data []byte
		args []string
		want string
	}{
		"a forged signature": {forged, nil, "its signature does not verify under key"},
		"another key's ID":   {regexp.MustCompile(`"key_id":"[^"]*"`).ReplaceAll(afterPurge, []byte(`"key_id":"AAAA"`)), nil, `is signed by key "AAAA", which the site's keys do not hold`},
		"no keys given":      {afterPurge, []string{"--keys", ""}, "whose signatures are checked against the site's keys"},
	} {
		if bytes.Equal(tt.data, afterPurge) && tt.args == nil {
			t.Fatalf("%s: the export was not changed", name)
		}
		if v, err := l.verify(tt.data, tt.args...); err != ErrFailed || !strings.Contains(v.Error, tt.want) {
			t.Errorf("%s: %v %+v", name, err, v)
		}
	}
	for name, tt := range map[string]struct {
		edited []byte
		want   string
	}{
		"the purge's time changed": {bytes.Replace(afterPurge, []byte(`"at":"20`), []byte(`"at":"19`), 1), "is not the purge its entry"},
		"the purge's rule changed": {bytes.Replace(afterPurge, []byte(`"before":"20`), []byte(`"before":"19`), 1), "is not the purge its entry"},
		"the purge left out":       {regexp.MustCompile(`,"purges":\[[^\]]*\]`).ReplaceAll(afterPurge, nil), "does not name"},
	} {
		if v, err := l.verify(tt.edited); err != ErrFailed || !strings.Contains(v.Error, tt.want) {
			t.Errorf("%s: %v %+v", name, err, v)
		}
	}

	// A log that forked: a copy of the database, made while the two
	// agreed, grows apart from the original under the same log key. An
	// export of the original does not verify against the copy's log.
	l.db.Close()
	l.ts.Close()
	copyDir := t.TempDir()
	for _, name := range []string{"k.db", "k.db.key"} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(copyDir, name), b, 0o600)
	}
	orig := newExportLog(t, dir, filepath.Join(dir, "k.db"))
	fork := newExportLog(t, dir, filepath.Join(copyDir, "k.db"))
	orig.post("other", "accept_all", "a")
	fork.post("other", "reject_all", "b")
	if orig.logKey != fork.logKey {
		t.Fatal("the copy signs with another key")
	}
	exp := orig.export("format=ndjson")
	if v, err := orig.verify(exp); err != nil || !v.OK || v.ExportSize != 12 { // 8 records, the purge's entry, a record, the scan's entry, a record
		t.Fatalf("the original's export against its own log: %v %+v", err, v)
	}
	fork.auditKey = orig.auditKey
	if v, err := fork.verify(exp); err != ErrFailed || !strings.Contains(v.Error, "forked") {
		t.Errorf("against the forked log: %v %+v", err, v)
	}
}
