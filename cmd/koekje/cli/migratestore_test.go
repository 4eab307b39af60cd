package cli

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/koekje/koekje/config"
	"github.com/koekje/koekje/server/consent"
	"github.com/koekje/koekje/server/postgres"
	"github.com/koekje/koekje/server/postgres/pgtest"
	"github.com/koekje/koekje/server/proof"
	"github.com/koekje/koekje/server/sqlite"
	"github.com/koekje/koekje/server/store"
	"github.com/koekje/koekje/server/translog"
)

// migrateSites is the demo configuration with the demo site three times
// over, as demo, shop and blog.
func migrateSites(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("../../../config/demo.yaml")
	if err != nil {
		t.Fatal(err)
	}
	head, body, ok := strings.Cut(string(b), "sites:\n")
	if !ok {
		t.Fatal("demo.yaml has no sites:")
	}
	cfg := head + "sites:\n" + body
	for _, id := range []string{"shop", "blog"} {
		cfg += strings.Replace(body, "  - id: demo\n", "  - id: "+id+"\n", 1)
	}
	path := filepath.Join(t.TempDir(), "sites.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// answer is what POST /api/v1/consents answers.
type answer struct {
	ConsentID string `json:"consent_id"`
	RecordID  string `json:"record_id"`
	Token     string `json:"token"`
}

// visitor is one consent ID the test follows.
type visitor struct {
	site, id, token string
	last            answer
	requestID       string // of its first choice
}

// serveFor runs koekje serve with env until the returned stop is called.
func serveFor(t *testing.T, env map[string]string) (base string, stop func()) {
	t.Helper()
	addr := freeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	logs := &syncBuffer{}
	go func() {
		done <- Run(ctx, []string{"serve", "--addr", addr}, func(k string) string { return env[k] }, io.Discard, logs)
	}()
	base = "http://" + addr
	waitHealthy(t, base)
	return base, func() {
		cancel()
		if err := <-done; err != nil {
			t.Fatalf("serve: %v\n%s", err, logs.String())
		}
	}
}

func postChoice(t *testing.T, base, body string) (answer, int) {
	t.Helper()
	resp, err := http.Post(base+"/api/v1/consents", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var a answer
	json.NewDecoder(resp.Body).Decode(&a)
	return a, resp.StatusCode
}

func httpGet(t *testing.T, url, bearer string) ([]byte, int) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return b, resp.StatusCode
}

func newRequestID() string {
	b := make([]byte, 12)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// fillVisitors has n visitors per site make a first choice, a third of
// them change it and a sixth withdraw, over several connections at once.
func fillVisitors(t *testing.T, base string, sites []string, n int) []*visitor {
	t.Helper()
	var vs []*visitor
	for _, s := range sites {
		for range n {
			vs = append(vs, &visitor{site: s, requestID: newRequestID()})
		}
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var failed []string
	fail := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		failed = append(failed, fmt.Sprintf(format, args...))
	}
	work := make(chan int)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				v := vs[i]
				a, code := postChoice(t, base, fmt.Sprintf(`{"site":%q,"action":"accept_all","request_id":%q}`, v.site, v.requestID))
				if code != 201 {
					fail("first choice: %d", code)
					continue
				}
				v.id, v.token, v.last = a.ConsentID, a.Token, a
				for _, action := range []string{"reject_all", "withdraw"}[:i%6/2] {
					a, code = postChoice(t, base, fmt.Sprintf(`{"site":%q,"action":%q,"consent_id":%q,"token":%q,"request_id":%q}`,
						v.site, action, v.id, v.token, newRequestID()))
					if code != 201 {
						fail("%s: %d", action, code)
						break
					}
					v.last, v.token = a, a.Token // each write makes a new token
				}
			}
		}()
	}
	for i := range vs {
		work <- i
	}
	close(work)
	wg.Wait()
	if len(failed) > 0 {
		t.Fatalf("%d posts failed, the first: %s", len(failed), failed[0])
	}
	return vs
}

// A SQLite store filled through the real server (three sites, changed
// choices and withdrawals, a key rotation, a purge) moves to PostgreSQL
// whole: every chain verifies there, lookups answer as before, old receipts
// verify against the new server's keys, old visitor tokens and request IDs
// still work, new records link onto the copied chains, and the target
// refuses a second copy.
func TestMigrateStore(t *testing.T) {
	t.Parallel()
	dsn := pgtest.Shared(t).NewDatabase(t)
	dir := t.TempDir()
	src := filepath.Join(dir, "k.db")
	pgKey := filepath.Join(dir, "pg.key")
	sites := []string{"demo", "shop", "blog"}
	srcEnv := map[string]string{"KOEKJE_DB": src, "KOEKJE_CONFIG": migrateSites(t), "KOEKJE_ADMIN_TOKEN": adminToken, "KOEKJE_RATE_LIMIT": "0"}
	dstEnv := map[string]string{"KOEKJE_DB": dsn, "KOEKJE_KEY_FILE": pgKey, "KOEKJE_CONFIG": srcEnv["KOEKJE_CONFIG"], "KOEKJE_ADMIN_TOKEN": adminToken, "KOEKJE_RATE_LIMIT": "0"}

	base, stop := serveFor(t, srcEnv)
	early := fillVisitors(t, base, sites, 300)
	cut := time.Now()
	receipt := func(base string, v *visitor) string {
		t.Helper()
		b, code := httpGet(t, base+"/api/v1/consents/"+v.id+"/receipt?token="+v.token, "")
		var r struct{ JWT string }
		if json.Unmarshal(b, &r); code != 200 || r.JWT == "" {
			t.Fatalf("receipt: %d %s", code, b)
		}
		return r.JWT
	}
	var receipts []string
	for _, v := range early[len(early)-5:] {
		receipts = append(receipts, receipt(base, v))
	}
	if _, code := postAdmin(t, base+"/api/v1/keys/rotate"); code != 201 {
		t.Fatalf("rotate: %d", code)
	}
	late := fillVisitors(t, base, sites, 300)
	for _, v := range late[:5] {
		receipts = append(receipts, receipt(base, v))
	}
	oldJWKS, _ := httpGet(t, base+"/api/v1/keys", "")
	logKey, _ := httpGet(t, base+"/log/key", "")
	keptCheckpoint := filepath.Join(dir, "kept.checkpoint")
	b, _ := httpGet(t, base+"/log/checkpoint", "")
	if err := os.WriteFile(keptCheckpoint, b, 0o600); err != nil {
		t.Fatal(err)
	}
	stop()
	// The oldest of one site's records go; the chain starts at the
	// checkpoint the purge signs.
	if out, err := runCLI(t, srcEnv, "purge", "--site", "blog", "--before", cut.UTC().Format(time.RFC3339Nano)); err != nil || !strings.Contains(out, "blog: purged") {
		t.Fatalf("purge: %v %s", err, out)
	}
	// A scan report recorded for one site comes along with its ID and times.
	srcDB, err := sqlite.OpenWith(src, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	scan := &consent.Scan{Site: "shop", StartedAt: time.Now().Add(-time.Minute).UTC().Truncate(time.Microsecond), ConfigHash: "sha256:x",
		Verdict: consent.ScanFail, Violations: 1, URLs: []string{"https://shop.example/", "https://shop.example/cart"}, Report: json.RawMessage(`{"violations":[{"cookie":"_ga"}]}`)}
	if err := srcDB.AddScan(context.Background(), scan); err != nil {
		t.Fatal(err)
	}
	// So does a console session: signed in before the move, still signed in.
	session := []byte("session-id-of-16")
	if err := srcDB.StartSession(context.Background(), session, []byte("token-id"), time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	srcDB.Close()
	lookups := map[string]string{}
	for _, v := range []*visitor{early[0], early[300], early[len(early)-1], late[0], late[len(late)/2+1]} {
		// The last early visitor is blog's, purged: the target must not
		// find it either.
		out, err := runCLI(t, map[string]string{"KOEKJE_DB": src}, "lookup", v.id)
		if err != nil && !strings.Contains(out, "no records") {
			t.Fatalf("lookup on the source: %v %s", err, out)
		}
		lookups[v.id] = out
	}

	var stdout, stderr bytes.Buffer
	if err := Run(context.Background(), []string{"migrate-store", "--from", src, "--to", dsn, "--key-file", pgKey},
		func(string) string { return "" }, &stdout, &stderr); err != nil {
		t.Fatalf("migrate-store: %v\n%s%s", err, stdout.String(), stderr.String())
	}
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	if len(lines) != len(sites)+1 {
		t.Fatalf("want a line per site and a summary:\n%s", stdout.String())
	}
	perSite := map[string]store.SiteCopy{}
	var total int64
	for _, l := range lines[:len(sites)] {
		var sc store.SiteCopy
		if err := json.Unmarshal([]byte(l), &sc); err != nil || !sc.OK || sc.Records == 0 || sc.Versions == 0 {
			t.Errorf("site line: %v %s", err, l)
		}
		perSite[sc.Site] = sc
		total += sc.Records
	}
	if perSite["blog"].Checkpoints != 1 || perSite["demo"].Checkpoints != 0 {
		t.Errorf("checkpoints: blog %d, demo %d; want 1, 0", perSite["blog"].Checkpoints, perSite["demo"].Checkpoints)
	}
	t.Log(lines[len(sites)])
	var sum store.CopySummary
	if err := json.Unmarshal([]byte(lines[len(sites)]), &sum); err != nil || !sum.OK || sum.Records != total || sum.SigningKeys != 2 ||
		sum.Sites != 3 || sum.Log != "copied: 3602 leaves" /* 3,600 records' leaves, the purge's entry and the scan's */ || sum.KeyFile != pgKey {
		t.Errorf("summary: %v %s", err, lines[len(sites)])
	}
	// Every record the source holds, and no other.
	srcDB, err = sqlite.OpenWith(src, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var srcTotal int64
	srcHeads, srcSeqs := map[string]string{}, map[string]int64{}
	for _, s := range sites {
		srcDB.Chain(context.Background(), s, func(r *consent.Record) error {
			srcTotal++
			srcHeads[s], srcSeqs[s] = hex.EncodeToString(r.Hash), r.Seq
			return nil
		})
	}
	srcDB.Close()
	if srcTotal != total || total < 2500 {
		t.Errorf("copied %d records; the source holds %d (want a few thousand)", total, srcTotal)
	}

	// The target, opened as a server would open it.
	if out, err := runCLI(t, dstEnv, "verify"); err != nil || strings.Count(out, `"ok":true`) != 3 || strings.Count(out, `"log":{`) != 3 ||
		!strings.Contains(out, `"purge_entries":1`) || !strings.Contains(out, `"scan_entries":1`) {
		t.Fatalf("verify on the target (blog's purge with its entry in the log): %v\n%s", err, out)
	}
	for _, s := range sites {
		if perSite[s].Head != srcHeads[s] {
			t.Errorf("%s: head %s on the target, %s on the source", s, perSite[s].Head, srcHeads[s])
		}
	}
	dst, err := postgres.Open(context.Background(), dsn, postgres.Options{KeyFile: pgKey})
	if err != nil {
		t.Fatal(err)
	}
	got, err := dst.ScanReport(context.Background(), "shop", scan.ID)
	live, lerr := dst.SessionLive(context.Background(), session, time.Now())
	dst.Close()
	if !live || lerr != nil || sum.Sessions != 1 {
		t.Errorf("the console session on the target: live %v (%v), %d copied", live, lerr, sum.Sessions)
	}
	if err != nil || !got.StartedAt.Equal(scan.StartedAt) || !got.RecordedAt.Equal(scan.RecordedAt) || string(got.Report) != string(scan.Report) ||
		strings.Join(got.URLs, " ") != strings.Join(scan.URLs, " ") || got.Violations != 1 || got.Verdict != consent.ScanFail || sum.Scans != 1 {
		t.Errorf("the scan on the target: %v %+v, want %+v", err, got, scan)
	}
	for id, want := range lookups {
		got, _ := runCLI(t, dstEnv, "lookup", id)
		if got != want {
			t.Errorf("lookup %s on the target:\n%s\nwant, as on the source:\n%s", id, got, want)
		}
	}
	if out, err := runCLI(t, nil, "migrate-store", "--from", src, "--to", dsn, "--key-file", pgKey, "--drop-log"); err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Errorf("a second copy into the same database: %v %s", err, out)
	}

	base, stop = serveFor(t, dstEnv)
	defer stop()
	jwks, _ := httpGet(t, base+"/api/v1/keys", "")
	if !bytes.Equal(jwks, oldJWKS) {
		t.Errorf("JWKS changed:\n%s\nwas\n%s", jwks, oldJWKS)
	}
	kids := map[string]bool{}
	for _, jwt := range receipts {
		rc := proof.CheckReceipt(jwt, jwks, nil, nil)
		if !rc.OK {
			t.Errorf("an old receipt against the target's keys: %s", rc.Error)
		}
		kids[rc.KeyID] = true
	}
	if len(kids) != 2 {
		t.Errorf("receipts signed by %d keys; want the retired and the current one", len(kids))
	}
	// The log is the one receipts were proven in: same key, and it
	// extends the checkpoint kept before the move; an old receipt's
	// proof, fetched from the new server, verifies.
	if b, _ := httpGet(t, base+"/log/key", ""); !bytes.Equal(b, logKey) {
		t.Errorf("log key on the target %q, was %q", b, logKey)
	}
	key := strings.TrimSpace(string(logKey))
	if out, err := runCLI(t, nil, "log-audit", "--url", base, "--log-key", key, "--since", keptCheckpoint, "--state", t.TempDir(), "--allow-unwitnessed"); err != nil {
		t.Errorf("log-audit of the target since the kept checkpoint: %v\n%s", err, out)
	}
	first := late[0]
	b, code := httpGet(t, base+"/api/v1/consents/"+first.id+"/proof?token="+first.token, "")
	if code != 200 {
		t.Fatalf("proof from the target: %d %s", code, b)
	}
	unwitnessed, _ := translog.NewPolicy(key, nil, 0)
	if rc := proof.CheckReceipt(receipts[len(receipts)-5], jwks, b, unwitnessed); !rc.OK {
		t.Errorf("an old receipt with its proof from the target: %s", rc.Error)
	}
	v := late[1]
	b, code = httpGet(t, base+"/api/v1/consents/"+v.id+"?token="+v.token, "")
	if code != 200 || !strings.Contains(string(b), v.last.RecordID) {
		t.Errorf("an old visitor token on the target: %d %s", code, b)
	}
	// A retried POST of a copied choice that is still the visitor's
	// newest gets its first answer; one a later choice replaced gets none.
	a, code := postChoice(t, base, fmt.Sprintf(`{"site":%q,"action":"accept_all","request_id":%q}`, v.site, v.requestID))
	if code != 201 || a.ConsentID != v.id {
		t.Errorf("a replayed request ID: %d %+v, want consent %s", code, a, v.id)
	}
	if a, code := postChoice(t, base, fmt.Sprintf(`{"site":%q,"action":"accept_all","request_id":%q}`, late[2].site, late[2].requestID)); code != 409 || a.Token != "" {
		t.Errorf("a replayed request ID of a choice replaced since: %d %+v, want 409 and no token", code, a)
	}
	// A visitor changes their mind on the target: the record links onto
	// the copied head of the chain.
	a, code = postChoice(t, base, fmt.Sprintf(`{"site":%q,"action":"withdraw","consent_id":%q,"token":%q}`, v.site, v.id, v.token))
	if code != 201 || a.ConsentID != v.id {
		t.Fatalf("a new choice with an old token: %d %+v", code, a)
	}
	if out, _, err := runCLIOut(t, dstEnv, "export", "--site", v.site, "--consent-id", v.id); err != nil {
		t.Fatalf("export: %v %s", err, out)
	} else {
		var last struct {
			Seq      int64  `json:"seq"`
			PrevHash string `json:"prev_hash"`
			RecordID string `json:"record_id"`
		}
		recs := strings.Split(strings.TrimSpace(out), "\n")
		json.Unmarshal([]byte(recs[len(recs)-2]), &last) // the summary is the last line
		if last.RecordID != a.RecordID || last.PrevHash != srcHeads[v.site] || last.Seq != srcSeqs[v.site]+1 {
			t.Errorf("the new record %+v does not link onto the copied head %s", last, srcHeads[v.site])
		}
	}
	b, code = httpGet(t, base+"/api/v1/sites/"+v.site+"/verify", adminToken)
	if code != 200 || !strings.Contains(string(b), `"ok":true`) {
		t.Errorf("verify after a new record: %d %s", code, b)
	}
}

func postAdmin(t *testing.T, url string) ([]byte, int) {
	t.Helper()
	req, _ := http.NewRequest("POST", url, nil)
	req.Header.Set("Authorization", "Bearer "+adminToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return b, resp.StatusCode
}

// A copy whose chain does not verify on the target commits nothing: the
// target stays empty, and takes the copy once the source is sound.
func TestMigrateStoreLeavesTargetEmptyOnFailure(t *testing.T) {
	t.Parallel()
	dsn := pgtest.Shared(t).NewDatabase(t)
	dir := t.TempDir()
	src := filepath.Join(dir, "k.db")
	db, err := sqlite.Open(src, nil)
	if err != nil {
		t.Fatal(err)
	}
	for range 50 {
		r := &consent.Record{Site: "voip-nl", Action: consent.RejectAll, Choices: map[string]bool{"necessary": true}, Revision: 1, ConfigHash: "sha256:x", Language: "nl"}
		if err := db.Append(context.Background(), r); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()
	// Someone changes a record in place behind the append-only trigger's back.
	raw, err := sql.Open("sqlite3", src)
	if err != nil {
		t.Fatal(err)
	}
	tamper := func(action string) {
		t.Helper()
		if _, err := raw.Exec(`DROP TRIGGER records_append_only;
			UPDATE records SET action = ? WHERE seq = 20;
			CREATE TRIGGER records_append_only BEFORE UPDATE ON records
			BEGIN SELECT RAISE(ABORT, 'consent records are append-only'); END;`, action); err != nil {
			t.Fatal(err)
		}
	}
	tamper(consent.AcceptAll)
	out, err := runCLI(t, nil, "migrate-store", "--from", src, "--to", dsn, "--key-file", filepath.Join(dir, "pg.key"))
	if err != ErrFailed || !strings.Contains(out, `"reason":"altered"`) || !strings.Contains(out, "nothing was committed") {
		t.Fatalf("a source with an altered record: %v\n%s", err, out)
	}
	conn, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var n int
	if err := conn.QueryRow(context.Background(), `SELECT (SELECT count(*) FROM records) + (SELECT count(*) FROM secrets)
		+ (SELECT count(*) FROM texts) + (SELECT count(*) FROM chain_heads)`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("the target after a failed copy holds %d rows (%v)", n, err)
	}
	tamper(consent.RejectAll)
	raw.Close()
	out, err = runCLI(t, nil, "migrate-store", "--from", src, "--to", dsn, "--key-file", filepath.Join(dir, "pg.key"))
	if err != nil || !strings.Contains(out, `"site":"voip-nl","ok":true,"records":50`) {
		t.Fatalf("the copy after the failed one: %v\n%s", err, out)
	}
}

// A banner version edited in the source is what no visitor saw: it is not
// copied, the copy fails naming it and commits nothing; put back, the
// copy goes through.
func TestMigrateStoreChecksVersions(t *testing.T) {
	t.Parallel()
	dsn := pgtest.Shared(t).NewDatabase(t)
	dir := t.TempDir()
	src := filepath.Join(dir, "k.db")
	db, err := sqlite.Open(src, nil)
	if err != nil {
		t.Fatal(err)
	}
	shown := []byte(`{"texts":{"nl":{"accept":"Alles accepteren","reject":"Alles weigeren"}}}`)
	later := []byte(`{"texts":{"nl":{"accept":"Akkoord","reject":"Weigeren"}}}`)
	for _, body := range [][]byte{shown, later} {
		if err := db.PutVersion(context.Background(), "voip-nl", config.Hash(body), body); err != nil {
			t.Fatal(err)
		}
		r := &consent.Record{Site: "voip-nl", Action: consent.RejectAll, Choices: map[string]bool{"necessary": true}, Revision: 1, ConfigHash: config.Hash(body), Language: "nl"}
		if err := db.Append(context.Background(), r); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()
	raw, err := sql.Open("sqlite3", src)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	setBody := func(body []byte) {
		t.Helper()
		if _, err := raw.Exec(`UPDATE versions SET body = ? WHERE hash = ?`, body, config.Hash(shown)); err != nil {
			t.Fatal(err)
		}
	}
	setBody([]byte(`{"texts":{"nl":{"accept":"Alles weigeren","reject":"Alles accepteren"}}}`))
	args := []string{"migrate-store", "--from", src, "--to", dsn, "--key-file", filepath.Join(dir, "pg.key")}
	out, err := runCLI(t, nil, args...)
	if err != ErrFailed || !strings.Contains(out, `"site":"voip-nl","ok":false,"records":2,"checkpoints":0,"versions":1,`) ||
		!strings.Contains(out, `"damaged_versions":["`+config.Hash(shown)+`"]`) ||
		!strings.Contains(out, "banner version "+config.Hash(shown)+" does not hash to its name") || !strings.Contains(out, "nothing was committed") {
		t.Fatalf("a source with an edited banner version: %v\n%s", err, out)
	}
	conn, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var n int
	if err := conn.QueryRow(context.Background(), `SELECT (SELECT count(*) FROM versions) + (SELECT count(*) FROM records)`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("the target after a failed copy holds %d rows (%v)", n, err)
	}
	setBody(shown)
	out, err = runCLI(t, nil, args...)
	if err != nil || !strings.Contains(out, `"site":"voip-nl","ok":true,"records":2,"checkpoints":0,"versions":2,`) || strings.Contains(out, "damaged") {
		t.Fatalf("the copy once the version is put back: %v\n%s", err, out)
	}
}

// With --drop-log the source's log stays behind, its key too: the target
// starts a log of its own.
func TestMigrateStoreDropLog(t *testing.T) {
	t.Parallel()
	dsn := pgtest.Shared(t).NewDatabase(t)
	dir := t.TempDir()
	src := filepath.Join(dir, "k.db")
	db, err := sqlite.Open(src, nil)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := db.StartLog(context.Background(), "consent.example.nl/log")
	if err != nil {
		t.Fatal(err)
	}
	for range 20 {
		r := &consent.Record{Site: "voip-nl", Action: consent.RejectAll, Choices: map[string]bool{"necessary": true}, Revision: 1, ConfigHash: "sha256:x", Language: "nl"}
		if err := db.Append(context.Background(), r); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()
	pgKey := filepath.Join(dir, "pg.key")
	out, err := runCLI(t, nil, "migrate-store", "--from", src, "--to", dsn, "--key-file", pgKey, "--drop-log")
	if err != nil || !strings.Contains(out, `"log":"dropped: 20 leaves stay in `+src+`; a new log`) {
		t.Fatalf("migrate-store --drop-log: %v\n%s", err, out)
	}
	env := map[string]string{"KOEKJE_DB": dsn, "KOEKJE_KEY_FILE": pgKey}
	out, err = runCLI(t, env, "keys", "log-key", "--public-url", "https://consent.example.nl")
	if err != nil || !strings.HasPrefix(out, "consent.example.nl/log+") || strings.TrimSpace(out) == signer.VerifierKey() {
		t.Errorf("the target's log key %q (%v); the source's was %s", out, err, signer.VerifierKey())
	}
	if out, err := runCLI(t, env, "verify"); err != nil || !strings.Contains(out, `"ok":true,"site":"voip-nl","records":20`) {
		t.Errorf("verify on the target: %v\n%s", err, out)
	}
	// Served, the target's new log takes the copied records.
	env["KOEKJE_ADMIN_TOKEN"] = adminToken
	base, stop := serveFor(t, env)
	defer stop()
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, _ := httpGet(t, base+"/log/checkpoint", "")
		if lines := strings.Split(string(b), "\n"); len(lines) > 1 && lines[1] == "20" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the target's log never took the 20 copied records: %q", b)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// A copied log that does not hold the copied records (a salt changed in
// the source) is not committed either.
func TestMigrateStoreChecksTheLog(t *testing.T) {
	t.Parallel()
	dsn := pgtest.Shared(t).NewDatabase(t)
	dir := t.TempDir()
	src := filepath.Join(dir, "k.db")
	db, err := sqlite.Open(src, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.StartLog(context.Background(), "consent.example.nl/log"); err != nil {
		t.Fatal(err)
	}
	for range 20 {
		r := &consent.Record{Site: "voip-nl", Action: consent.RejectAll, Choices: map[string]bool{"necessary": true}, Revision: 1, ConfigHash: "sha256:x", Language: "nl"}
		if err := db.Append(context.Background(), r); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()
	raw, err := sql.Open("sqlite3", src)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := raw.Exec(`UPDATE log_leaves SET salt = zeroblob(length(salt)) WHERE idx = 7`); err != nil {
		t.Fatal(err)
	}
	raw.Close()
	out, err := runCLI(t, nil, "migrate-store", "--from", src, "--to", dsn, "--key-file", filepath.Join(dir, "pg.key"))
	if err != ErrFailed || !strings.Contains(out, `"sequence":8,"detail":"it is not the record its leaf 7 commits to"`) {
		t.Fatalf("a source whose log does not hold a record: %v\n%s", err, out)
	}
	conn, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var n int
	if err := conn.QueryRow(context.Background(), `SELECT (SELECT count(*) FROM records) + (SELECT count(*) FROM log_leaves)`).Scan(&n); err != nil || n != 0 {
		t.Errorf("the target after a failed copy holds %d rows (%v)", n, err)
	}
}

// Bad flags and targets are refused, each saying what is wrong, before
// anything is written.
func TestMigrateStoreRefuses(t *testing.T) {
	t.Parallel()
	cluster := pgtest.Shared(t)
	dir := t.TempDir()
	src := filepath.Join(dir, "k.db")
	db, err := sqlite.Open(src, nil)
	if err != nil {
		t.Fatal(err)
	}
	r := &consent.Record{Site: "voip-nl", Action: consent.RejectAll, Choices: map[string]bool{"necessary": true}, Revision: 1, ConfigHash: "sha256:x", Language: "nl"}
	if err := db.Append(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	db.Close()
	key := filepath.Join(dir, "pg.key")
	empty := cluster.NewDatabase(t)
	// A database a later release set up: its schema is ahead of this binary's.
	newer := cluster.NewDatabase(t)
	conn, err := pgx.Connect(context.Background(), newer)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(context.Background(), `CREATE TABLE schema_version (version integer NOT NULL); INSERT INTO schema_version VALUES (99)`); err != nil {
		t.Fatal(err)
	}
	conn.Close(context.Background())
	wrongKey := filepath.Join(dir, "other.key")
	other, err := sqlite.OpenWith(filepath.Join(dir, "other.db"), sqlite.Options{KeyFile: wrongKey})
	if err != nil {
		t.Fatal(err)
	}
	other.Close()

	for _, c := range []struct {
		name string
		args []string
		want string
	}{
		{"no --from", []string{"--to", empty, "--key-file", key}, "--from is required"},
		{"--from a DSN", []string{"--from", empty, "--to", empty, "--key-file", key}, "--from must be a SQLite database file"},
		{"--from missing", []string{"--from", filepath.Join(dir, "nope.db"), "--to", empty, "--key-file", key}, "no such file"},
		{"no --to", []string{"--from", src, "--key-file", key}, "--to is required"},
		{"--to a file", []string{"--from", src, "--to", filepath.Join(dir, "x.db"), "--key-file", key}, "is not a PostgreSQL DSN"},
		{"--to of no known store", []string{"--from", src, "--to", "mysql://root:hunter2@db/koekje", "--key-file", key}, "no store for mysql:// DSNs"},
		{"no --key-file", []string{"--from", src, "--to", empty}, "--key-file is required"},
		{"an argument", []string{"--from", src, "--to", empty, "--key-file", key, "extra"}, "takes no arguments"},
		{"the wrong source key file", []string{"--from", src, "--from-key-file", wrongKey, "--to", empty, "--key-file", key}, "does not open with this key file"},
		{"a newer schema", []string{"--from", src, "--to", newer, "--key-file", key}, "newer than this binary's"},
		{"no server there", []string{"--from", src, "--to", "postgres://koekje@127.0.0.1:1/none?connect_timeout=2", "--key-file", key}, "--to:"},
	} {
		t.Run(c.name, func(t *testing.T) {
			out, err := runCLI(t, nil, append([]string{"migrate-store"}, c.args...)...)
			if err == nil || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error()+out, "hunter2") {
				t.Errorf("got %v (%s), want an error saying %q (and no password)", err, out, c.want)
			}
		})
	}
	t.Run("a running source", func(t *testing.T) {
		release, err := lockServe(src)
		if err != nil {
			t.Fatal(err)
		}
		defer release()
		_, err = runCLI(t, nil, "migrate-store", "--from", src, "--to", empty, "--key-file", key)
		if err == nil || !strings.Contains(err.Error(), "another koekje serve is using") {
			t.Errorf("got %v", err)
		}
	})
	conn, err = pgx.Connect(context.Background(), empty)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var n int
	if err := conn.QueryRow(context.Background(), `SELECT count(*) FROM records`).Scan(&n); err != nil && !strings.Contains(err.Error(), "does not exist") || n != 0 {
		t.Errorf("a refused copy wrote %d records (%v)", n, err)
	}
}

// Every table of the SQLite schema is copied by migrate-store or left
// behind on purpose: a table added later fails here until it is one or
// the other.
func TestMigrateStoreKnowsEveryTable(t *testing.T) {
	t.Parallel()
	handled := map[string]string{
		"texts": "copied", "records": "copied", "checkpoints": "copied", "versions": "copied", "secrets": "copied",
		"signing_keys": "copied", "requests": "copied", "sessions": "copied", "scans": "copied", "scan_entries": "copied, with the scans",
		"log_leaves": "copied", "log_hashes": "copied", "log_checkpoints": "copied", "log_witnessed": "copied",
		"log_name":    "copied (PostgreSQL keeps it in log_state)",
		"counters":    "SQLite's own (the texts generation its writer caches ids by)",
		"leases":      "held by processes of the old machine",
		"log_pending": "never copied: a database whose records wait for the log is refused until the log is recovered",
	}
	path := filepath.Join(t.TempDir(), "k.db")
	db, err := sqlite.Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	raw, err := sql.Open("sqlite3", path)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	rows, err := raw.Query(`SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		var name string
		rows.Scan(&name)
		n++
		if handled[name] == "" {
			t.Errorf("migrate-store neither copies nor leaves out table %s: copy it (server/sqlite/copy.go, server/postgres/copy.go) or say why not here", name)
		}
	}
	if n != len(handled) {
		t.Errorf("the schema has %d tables, this test knows %d", n, len(handled))
	}
}
