package server_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"flag"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/google/uuid"

	"github.com/koekje/koekje/config"
	"github.com/koekje/koekje/server"
	"github.com/koekje/koekje/server/consent"
	"github.com/koekje/koekje/server/export"
	"github.com/koekje/koekje/server/proof"
	"github.com/koekje/koekje/server/sqlite"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata")

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		os.MkdirAll("testdata", 0o755)
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file:\n%s", name, got)
	}
}

// fixedStore stamps records with a fixed clock and counted IDs, so exports
// are the same on every run.
func fixedStore(db *sqlite.DB) {
	t0 := time.Date(2026, 3, 1, 9, 30, 0, 0, time.UTC)
	var n int64
	var mu sync.Mutex
	db.Now = func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		n++
		return t0.Add(time.Duration(n) * 90 * time.Minute)
	}
	db.NewID = func() (uuid.UUID, error) {
		mu.Lock()
		defer mu.Unlock()
		return uuid.UUID{0x01, 0x9a, 0, 0, 0, 0, 0x70, 0, 0x80, 0, 0, 0, 0, 0, 0, byte(n)}, nil
	}
}

func seed(t *testing.T, db *sqlite.DB) []*consent.Record {
	t.Helper()
	a, b := uuid.MustParse("11111111-1111-4111-8111-111111111111"), uuid.MustParse("22222222-2222-4222-8222-222222222222")
	hash := config.Hash([]byte("v1"))
	recs := []*consent.Record{
		{ConsentID: a, Action: consent.AcceptAll, Choices: map[string]bool{"necessary": true, "functional": true, "analytics": true, "embeds": true}},
		{ConsentID: b, Action: consent.RejectAll, Choices: map[string]bool{"necessary": true, "functional": false, "analytics": false, "embeds": false}, GPC: true},
		{ConsentID: a, Action: consent.Custom, Choices: map[string]bool{"necessary": true, "functional": true, "analytics": false, "embeds": false}, Services: []string{"youtube"}},
		{ConsentID: a, Action: consent.Withdraw, Choices: map[string]bool{"necessary": true, "functional": false, "analytics": false, "embeds": false}, URL: `https://belvast.example/a,"quoted"`},
	}
	for _, r := range recs {
		r.Site, r.Revision, r.ConfigHash, r.Language = "demo", 1, hash, "nl"
		r.UserAgent, r.IP = "Mozilla/5.0 (test)", "198.51.100.0/24"
		if r.URL == "" {
			r.URL = "https://belvast.example/"
		}
		if err := db.Append(context.Background(), r); err != nil {
			t.Fatal(err)
		}
	}
	return recs
}

func auditGet(t *testing.T, s *server.Server, path string) response {
	t.Helper()
	return do(t, s, "GET", path, "", "Authorization", "Bearer "+adminToken)
}

func TestExportGolden(t *testing.T) {
	t.Parallel()
	s, db := newServer(t, 0)
	fixedStore(db)
	seed(t, db)
	for _, f := range []struct{ format, file, ctype string }{
		{"ndjson", "export.ndjson", "application/x-ndjson"},
		{"csv", "export.csv", "text/csv"},
		{"iso27560", "export-iso27560.json", "application/json"},
	} {
		t.Run(f.format, func(t *testing.T) {
			r := scenario{method: "GET", path: "/api/v1/sites/demo/consents?format=" + f.format,
				headers: []string{"Authorization", "Bearer " + adminToken}, status: 200, golden: f.file}.run(t, s)
			if !strings.HasPrefix(r.header.Get("Content-Type"), f.ctype) {
				t.Errorf("Content-Type %s, want %s", r.header.Get("Content-Type"), f.ctype)
			}
		})
	}
	// The CSV is RFC 4180: a header, CRLF, quoting, one row per record,
	// the summary last.
	cr := csv.NewReader(bytes.NewReader(auditGet(t, s, "/api/v1/sites/demo/consents?format=csv").body))
	cr.FieldsPerRecord = -1
	rows, err := cr.ReadAll()
	// This store keeps no log: the leaf columns are there and empty.
	if err != nil || len(rows) != 6 || rows[5][0] != export.SummaryCell || rows[0][0] != "record_id" || rows[4][slices.Index(rows[0], "hash")] == "" ||
		!slices.Equal(rows[0][len(rows[0])-2:], []string{"log_index", "log_salt"}) || rows[4][len(rows[4])-1] != "" {
		t.Errorf("csv: %v %v", err, rows)
	}
	var iso []map[string]any
	if err := json.Unmarshal(auditGet(t, s, "/api/v1/sites/demo/consents?format=iso27560").body, &iso); err != nil || len(iso) != 4 {
		t.Errorf("iso27560 is not a JSON array of 4: %v", err)
	}
}

func TestExportFilters(t *testing.T) {
	t.Parallel()
	s, db := newServer(t, 0)
	fixedStore(db)
	seed(t, db)
	count := func(q string) int {
		r := auditGet(t, s, "/api/v1/sites/demo/consents?"+q)
		if r.status != 200 {
			t.Fatalf("%s: %d %s", q, r.status, r.body)
		}
		return bytes.Count(r.body, []byte("\n")) - 1 // the summary's line
	}
	tests := []struct {
		q    string
		want int
	}{
		{"", 4},
		{"from=2026-03-01T12:00:00Z", 3},     // records at 11:00, 12:30, 14:00, 15:30
		{"to=2026-03-01T12:30:00Z", 1},       // to is exclusive
		{"from=2026-03-01&to=2026-03-01", 4}, // a bare to date takes in the whole day
		{"from=2026-03-02", 0},
		{"consent_id=11111111-1111-4111-8111-111111111111", 3},
	}
	for _, tt := range tests {
		if got := count(tt.q); got != tt.want {
			t.Errorf("%q: %d records, want %d", tt.q, got, tt.want)
		}
	}
	for _, bad := range []struct {
		q      string
		status int
	}{
		{"format=xml", 422}, {"from=yesterday", 422}, {"from=2026-03-02&to=2026-03-01", 422}, {"consent_id=x", 422},
	} {
		if r := auditGet(t, s, "/api/v1/sites/demo/consents?"+bad.q); r.status != bad.status {
			t.Errorf("%s: %d, want %d", bad.q, r.status, bad.status)
		}
	}
	if r := auditGet(t, s, "/api/v1/sites/nope/consents"); r.status != 404 {
		t.Errorf("unknown site: %d", r.status)
	}
	if r := do(t, s, "GET", "/api/v1/sites/demo/consents", ""); r.status != 401 {
		t.Errorf("no token: %d", r.status)
	}
}

// Receipts verify with an independent JOSE library against the published
// JWKS, and keep verifying after the key is rotated.
func TestReceiptVerifiesWithJOSE(t *testing.T) {
	t.Parallel()
	s, db := newServer(t, 0)
	a := post(t, s, `{"site":"demo","action":"custom","choices":{"analytics":true}}`).json(t)
	id, token := a["consent_id"].(string), a["token"].(string)
	r := do(t, s, "GET", "/api/v1/consents/"+id+"/receipt?token="+token, "")
	if r.status != 200 {
		t.Fatalf("receipt: %d %s", r.status, r.body)
	}
	var rec struct {
		JWT    string         `json:"jwt"`
		Claims map[string]any `json:"claims"`
	}
	json.Unmarshal(r.body, &rec)
	claims := verifyJWT(t, s, rec.JWT)
	if claims["sub"] != id || claims["piiPrincipalId"] != id || claims["version"] != "KI-CR-v1.1.0" || claims["jurisdiction"] != "NL" {
		t.Errorf("claims: %v", claims)
	}
	purposes := claims["services"].([]any)[0].(map[string]any)["purposes"].([]any)
	states := map[string]string{}
	for _, p := range purposes {
		p := p.(map[string]any)
		states[p["purposeCategory"].([]any)[0].(string)] = p["state"].(string)
	}
	if states["analytics"] != "granted" || states["embeds"] != "refused" || states["necessary"] != "granted" {
		t.Errorf("purpose states: %v", states)
	}
	hist := history(t, s, id+"?token="+token)
	if claims["record_hash"] != hist[0]["hash"] || claims["record_id"] != hist[0]["record_id"] {
		t.Errorf("receipt does not name the stored record: %v vs %v", claims["record_hash"], hist[0]["hash"])
	}

	// Rotate: a new server on the same store signs with the new key and
	// still publishes the old one.
	old, _ := proof.OpenKeys(context.Background(), db)
	if _, err := old.Rotate(context.Background()); err != nil {
		t.Fatal(err)
	}
	keys, _ := proof.OpenKeys(context.Background(), db)
	s2, err := server.New(context.Background(), server.Deps{Config: config.Demo(), Store: db, Keys: keys,
		TokenKey: bytes.Repeat([]byte{7}, 64), AdminToken: adminToken, PublicURL: publicURL})
	if err != nil {
		t.Fatal(err)
	}
	verifyJWT(t, s2, rec.JWT)
	r2 := do(t, s2, "GET", "/api/v1/consents/"+id+"/receipt?token="+token, "")
	var rec2 struct{ JWT string }
	json.Unmarshal(r2.body, &rec2)
	if kid(t, rec2.JWT) == kid(t, rec.JWT) {
		t.Error("the rotated server signs with the old key")
	}
	verifyJWT(t, s2, rec2.JWT)

	if r := do(t, s, "GET", "/api/v1/consents/"+id+"/receipt", ""); r.status != 401 {
		t.Errorf("receipt without a token: %d", r.status)
	}
}

func kid(t *testing.T, jwt string) string {
	t.Helper()
	sig, err := jose.ParseSigned(jwt, []jose.SignatureAlgorithm{jose.EdDSA})
	if err != nil {
		t.Fatal(err)
	}
	return sig.Signatures[0].Header.KeyID
}

func verifyJWT(t *testing.T, s *server.Server, jwt string) map[string]any {
	t.Helper()
	r := do(t, s, "GET", "/api/v1/keys", "")
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(r.body, &set); err != nil {
		t.Fatalf("JWKS: %v: %s", err, r.body)
	}
	keys := set.Key(kid(t, jwt))
	if len(keys) != 1 {
		t.Fatalf("JWKS has %d keys for kid %s", len(keys), kid(t, jwt))
	}
	sig, _ := jose.ParseSigned(jwt, []jose.SignatureAlgorithm{jose.EdDSA})
	payload, err := sig.Verify(keys[0])
	if err != nil {
		t.Fatalf("receipt does not verify: %v", err)
	}
	var claims map[string]any
	json.Unmarshal(payload, &claims)
	return claims
}

func TestReceiptClaimsGolden(t *testing.T) {
	t.Parallel()
	rec := &consent.Record{
		RecordID: uuid.MustParse("019a0000-0000-7000-8000-000000000001"), ConsentID: uuid.MustParse("11111111-1111-4111-8111-111111111111"),
		Site: "demo", Seq: 42, RecordedAt: time.Date(2026, 3, 1, 11, 0, 0, 0, time.UTC), Action: consent.Custom,
		Choices:  map[string]bool{"necessary": true, "functional": true, "analytics": false, "embeds": false},
		Services: []string{"youtube"}, Revision: 1, ConfigHash: "sha256:" + strings.Repeat("ab", 32), Language: "nl",
		PrevHash: bytes.Repeat([]byte{1}, 32), Hash: bytes.Repeat([]byte{2}, 32),
	}
	claims := proof.NewReceipt(rec, config.Demo().Site("demo"), "https://consent.belvast.example",
		time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC), "9f0c2b1e-0000-4000-8000-000000000000")
	got, _ := json.MarshalIndent(claims, "", "  ")
	golden(t, "receipt-claims.json", append(got, '\n'))
}

func TestReceiptPage(t *testing.T) {
	t.Parallel()
	s, _ := newServer(t, 0)
	a := post(t, s, `{"site":"demo","action":"reject_all","language":"en"}`).json(t)
	r := do(t, s, "GET", "/api/v1/consents/"+a["consent_id"].(string)+"/receipt?token="+a["token"].(string), "", "Accept", "text/html,*/*")
	if r.status != 200 || !strings.HasPrefix(r.header.Get("Content-Type"), "text/html") {
		t.Fatalf("%d %v", r.status, r.header)
	}
	for _, want := range []string{`<html lang="en">`, "Proof of your cookie choice", "Belvast VoIP", "rejected all", "/api/v1/keys"} {
		if !bytes.Contains(r.body, []byte(want)) {
			t.Errorf("page lacks %q", want)
		}
	}
	b := post(t, s, `{"site":"demo","action":"accept_all"}`).json(t)
	r = do(t, s, "GET", "/api/v1/consents/"+b["consent_id"].(string)+"/receipt?token="+b["token"].(string), "", "Accept", "text/html")
	if !bytes.Contains(r.body, []byte("Bewijs van je cookiekeuze")) || !bytes.Contains(r.body, []byte("alles geaccepteerd")) {
		t.Error("Dutch receipt page is not in Dutch")
	}
	// The time is shown as the site's visitors read it: Central European
	// for a Dutch site, Eastern European for a Finnish one.
	cet := regexp.MustCompile(`\d\d:\d\d:\d\d (CET|CEST)\b`)
	if !cet.Match(r.body) {
		t.Error("a Dutch site's receipt page does not show Central European Time")
	}
	fi := newServerWith(t, func(d *serverDeps) {
		d.Config = config.Demo()
		d.Config.Sites[0].Controller.Jurisdiction = "FI"
	})
	c := post(t, fi, `{"site":"demo","action":"accept_all","language":"en"}`).json(t)
	r = do(t, fi, "GET", "/api/v1/consents/"+c["consent_id"].(string)+"/receipt?token="+c["token"].(string), "", "Accept", "text/html")
	if !regexp.MustCompile(`\d\d:\d\d:\d\d (EET|EEST)\b`).Match(r.body) {
		t.Errorf("a Finnish site's receipt page does not show Eastern European Time: %s", r.body)
	}
}

func TestVerifyRouteAndScopes(t *testing.T) {
	t.Parallel()
	s, db := newServer(t, 0)
	for i := 0; i < 5; i++ {
		post(t, s, `{"site":"demo","action":"accept_all"}`)
	}
	r := auditGet(t, s, "/api/v1/sites/demo/verify")
	if r.status != 200 || r.json(t)["ok"] != true || r.json(t)["records"] != float64(5) || r.json(t)["head"] == "" {
		t.Fatalf("verify: %d %s", r.status, r.body)
	}
	// An audit-scope token from the config may read; a wrong one may not.
	cfg := config.Demo()
	cfg.Tokens = []*config.Token{{Name: "auditor", Scope: "audit", SHA256: config.Hash([]byte("audit-secret"))}}
	keys, _ := proof.OpenKeys(context.Background(), db)
	s2, err := server.New(context.Background(), server.Deps{Config: cfg, Store: db, Keys: keys, TokenKey: bytes.Repeat([]byte{7}, 64), PublicURL: publicURL})
	if err != nil {
		t.Fatal(err)
	}
	if r := do(t, s2, "GET", "/api/v1/sites/demo/verify", "", "Authorization", "Bearer audit-secret"); r.status != 200 {
		t.Errorf("audit token: %d", r.status)
	}
	if r := do(t, s2, "GET", "/api/v1/sites/demo/verify", "", "Authorization", "bEARER audit-secret"); r.status != 200 {
		t.Errorf("the scheme is case-insensitive (RFC 9110): %d", r.status)
	}
	if r := do(t, s2, "GET", "/api/v1/sites/demo/verify", "", "Authorization", "Bearer "+adminToken); r.status != 401 {
		t.Errorf("a token not in this server's config: %d", r.status)
	}
	// Tampering shows as 409 naming the record.
	raw := openRaw(t, db)
	raw("DROP TRIGGER records_append_only")
	raw(`UPDATE records SET action = 'reject_all' WHERE seq = 3`)
	r = auditGet(t, s, "/api/v1/sites/demo/verify")
	if r.status != 409 || r.json(t)["reason"] != "altered" || r.json(t)["sequence"] != float64(3) || r.json(t)["record_id"] == nil {
		t.Errorf("tampered: %d %s", r.status, r.body)
	}
}

func TestVersionAndStats(t *testing.T) {
	t.Parallel()
	s, _ := newServer(t, 0)
	post(t, s, `{"site":"demo","action":"accept_all"}`)
	post(t, s, `{"site":"demo","action":"reject_all","gpc":true}`)
	post(t, s, `{"site":"demo","action":"custom","choices":{"analytics":true}}`)
	hash := s.Bundle("demo").Hash
	r := auditGet(t, s, "/api/v1/sites/demo/versions/"+hash)
	if r.status != 200 || !bytes.Equal(r.body, s.Bundle("demo").Version) {
		t.Errorf("version: %d", r.status)
	}
	if r := auditGet(t, s, "/api/v1/sites/demo/versions/sha256:nope"); r.status != 404 {
		t.Errorf("unknown version: %d", r.status)
	}
	r = auditGet(t, s, "/api/v1/sites/demo/stats")
	var st struct {
		Days []struct {
			Total   int
			GPC     int
			Actions map[string]int
			Share   map[string]float64
		}
	}
	if err := json.Unmarshal(r.body, &st); err != nil || len(st.Days) != 1 {
		t.Fatalf("stats: %s", r.body)
	}
	d := st.Days[0]
	if d.Total != 3 || d.GPC != 1 || d.Actions["accept_all"] != 1 || d.Actions["custom"] != 1 {
		t.Errorf("stats: %+v", d)
	}
	if d.Share["analytics"] < 0.66 || d.Share["analytics"] > 0.67 || d.Share["necessary"] != 1 || d.Share["embeds"] < 0.33 || d.Share["embeds"] > 0.34 {
		t.Errorf("shares: %v", d.Share)
	}
}

// flatWriter discards an export while sampling the live heap every 2,000
// rows, after a collection, so it sees what the export holds on to.
type flatWriter struct {
	rows, peak uint64
}

func (w *flatWriter) Write(p []byte) (int, error) {
	n := uint64(bytes.Count(p, []byte("\n")))
	w.rows += n
	if w.rows/2000 != (w.rows-n)/2000 {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		w.peak = max(w.peak, m.HeapAlloc)
	}
	return len(p), nil
}

// An export runs in flat memory: the live heap after 40,000 rows is where it
// was after 8,000. A store that kept ~300 bytes a row would add ~10 MB.
func TestExportFlatMemory(t *testing.T) {
	_, db := newServer(t, 0)
	site := config.Demo().Site("demo")
	const n = 40000
	var (
		wg     sync.WaitGroup
		failed atomic.Int64
	)
	work := make(chan struct{}, n)
	for range n {
		work <- struct{}{}
	}
	close(work)
	// As many appenders as the writer's largest batch: the rows take about
	// 80 commits instead of 240.
	for range 512 {
		wg.Go(func() {
			for range work {
				err := db.Append(context.Background(), &consent.Record{Site: "demo", Action: consent.AcceptAll,
					Choices: map[string]bool{"necessary": true, "functional": true, "analytics": true, "embeds": true}, Revision: 1,
					ConfigHash: "sha256:" + strings.Repeat("0", 64), Language: "nl", URL: "https://belvast.example/",
					UserAgent: strings.Repeat("u", 120), IP: "192.0.2.0/24"})
				if err != nil {
					failed.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if f := failed.Load(); f > 0 {
		t.Fatalf("%d of %d appends failed", f, n)
	}
	peak := func(limit int) uint64 {
		w := &flatWriter{}
		exp, _ := export.New("ndjson", site, w)
		count := 0
		err := db.Scan(context.Background(), consent.Filter{Site: "demo"}, func(r *consent.Record) error {
			if count++; count > limit {
				return io.EOF
			}
			return exp.Write(r)
		})
		if err != nil && err != io.EOF {
			t.Fatal(err)
		}
		if err := exp.Close(); err != nil {
			t.Fatal(err)
		}
		if w.rows != uint64(limit) || w.peak == 0 {
			t.Fatalf("exported %d rows (peak heap %d bytes), want %d", w.rows, w.peak, limit)
		}
		return w.peak
	}
	small, large := peak(8000), peak(n)
	t.Logf("live heap: %d KiB after 8,000 rows, %d KiB at 40,000", small>>10, large>>10)
	if large > small+4<<20 {
		t.Errorf("memory grows with the export: %d KiB at 8,000 rows, %d KiB at 40,000", small>>10, large>>10)
	}
}

// Purging and rotating keys need the admin scope; the audit scope may not.
func TestAdminActions(t *testing.T) {
	t.Parallel()
	s := newServerWith(t, func(d *serverDeps) {
		d.Config = config.Demo()
		d.Config.Tokens = []*config.Token{
			{Name: "dpo", Scope: "audit", SHA256: config.Hash([]byte("audit-secret"))},
			{Name: "ops", Scope: "admin", SHA256: config.Hash([]byte("admin-secret"))},
		}
	})
	a := post(t, s, `{"site":"demo","action":"accept_all"}`).json(t)
	old := do(t, s, "GET", "/api/v1/consents/"+a["consent_id"].(string)+"/receipt?token="+a["token"].(string), "")
	var oldReceipt struct{ JWT string }
	json.Unmarshal(old.body, &oldReceipt)

	audit, admin := []string{"Authorization", "Bearer audit-secret"}, []string{"Authorization", "Bearer admin-secret"}
	if r := do(t, s, "POST", "/api/v1/keys/rotate", "", audit...); r.status != 403 {
		t.Errorf("rotate with an audit token: %d, want 403 (known token, too small a scope)", r.status)
	}
	r := do(t, s, "POST", "/api/v1/keys/rotate", "", admin...)
	if r.status != 201 || r.json(t)["kid"] == kid(t, oldReceipt.JWT) {
		t.Fatalf("rotate: %d %s", r.status, r.body)
	}
	fresh := do(t, s, "GET", "/api/v1/consents/"+a["consent_id"].(string)+"/receipt?token="+a["token"].(string), "")
	var newReceipt struct{ JWT string }
	json.Unmarshal(fresh.body, &newReceipt)
	if kid(t, newReceipt.JWT) != r.json(t)["kid"] {
		t.Error("the running server does not sign with the new key")
	}
	verifyJWT(t, s, oldReceipt.JWT)
	verifyJWT(t, s, newReceipt.JWT)

	post(t, s, `{"site":"demo","action":"reject_all"}`)
	if r := do(t, s, "POST", "/api/v1/sites/demo/purge?before=2999-01-01", "", admin...); r.status != 422 {
		t.Errorf("purge up to the future: %d", r.status)
	}
	if r := do(t, s, "POST", "/api/v1/sites/demo/purge?before="+time.Now().Add(time.Second).Format(time.RFC3339), "", audit...); r.status != 403 {
		t.Errorf("purge with an audit token: %d, want 403", r.status)
	}
	r = do(t, s, "POST", "/api/v1/sites/demo/purge?before="+time.Now().UTC().Format(time.RFC3339Nano), "", admin...)
	if r.status != 200 || r.json(t)["purged"] != float64(2) {
		t.Fatalf("purge: %d %s", r.status, r.body)
	}
	// The checkpoint is signed with the rotated key and the chain still verifies.
	v := do(t, s, "GET", "/api/v1/sites/demo/verify", "", audit...)
	if v.status != 200 || v.json(t)["records"] != float64(0) {
		t.Errorf("verify after purge: %d %s", v.status, v.body)
	}
	post(t, s, `{"site":"demo","action":"custom"}`)
	if v := do(t, s, "GET", "/api/v1/sites/demo/verify", "", audit...); v.status != 200 || v.json(t)["records"] != float64(1) {
		t.Errorf("verify after purge and a new record: %d %s", v.status, v.body)
	}
}

// A banner version edited in the database is what no visitor saw: the API
// and the console answer 410 with code damaged, and not its body.
func TestDamagedVersionNotServed(t *testing.T) {
	t.Parallel()
	s, db := newServer(t, 0)
	hash := s.Bundle("demo").Hash
	api := "/api/v1/sites/demo/versions/" + hash
	page := "/admin/sites/demo/versions/" + hash + "?lang=fr"
	b := newBrowser(t, s)
	b.signIn()
	consolePage := func() (int, string) {
		t.Helper()
		req, _ := http.NewRequest("GET", b.base+page, nil)
		req.Header.Set("Accept", "text/html")
		resp, err := b.c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	if r := auditGet(t, s, api); r.status != 200 {
		t.Fatalf("the version before the edit: %d", r.status)
	}
	if code, body := consolePage(); code != 200 || !strings.Contains(body, "Tout accepter") {
		t.Fatalf("the console's version page before the edit: %d", code)
	}
	openRaw(t, db)(`UPDATE versions SET body = CAST(replace(CAST(body AS TEXT), 'Tout accepter', 'Tout refuser') AS BLOB) WHERE site = 'demo'`)

	r := auditGet(t, s, api)
	if r.status != http.StatusGone || r.json(t)["error"].(map[string]any)["code"] != consent.EDAMAGED ||
		bytes.Contains(r.body, []byte("Tout")) || r.header.Get("Cache-Control") != "" {
		t.Errorf("the API on the edited version: %d %v %s", r.status, r.header, r.body)
	}
	code, body := consolePage()
	if code != http.StatusGone || !strings.Contains(body, "damaged") || strings.Contains(body, "Tout") {
		t.Errorf("the console on the edited version: %d %s", code, body)
	}
}
