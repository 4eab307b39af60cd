package schedule_test

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/koekje/koekje/config"
	"github.com/koekje/koekje/server"
	"github.com/koekje/koekje/server/consent"
	"github.com/koekje/koekje/server/postgres"
	"github.com/koekje/koekje/server/postgres/pgtest"
	"github.com/koekje/koekje/server/proof"
	"github.com/koekje/koekje/server/scan/chromium/chromiumtest"
	"github.com/koekje/koekje/server/schedule"
	"github.com/koekje/koekje/server/sqlite"
	"github.com/koekje/koekje/server/store"
	"github.com/koekje/koekje/server/store/storetest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	pgtest.StopShared()
	os.Exit(code)
}

func needChrome(t *testing.T) { chromiumtest.Need(t) }

// A scheduled scan on SQLite: run at the start of the slot, recorded as
// the schedule's, committed to the log and verified there; the slot is
// not scanned twice.
func TestScheduledScanSQLite(t *testing.T) {
	t.Parallel()
	needChrome(t)
	path := filepath.Join(t.TempDir(), "k.db")
	db, err := sqlite.Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	verify := scheduled(t, []store.Store{db})

	// A scan by hand passed off as the schedule's, to fill a missed slot,
	// no longer opens its entry.
	ctx := context.Background()
	byHand := &consent.Scan{Site: "demo", StartedAt: time.Now(), ConfigHash: "sha256:0", Verdict: consent.ScanClean,
		URLs: []string{"https://www.example.nl/"}, Report: []byte(`{"site":"demo"}`)}
	if err := db.AddScan(ctx, byHand); err != nil {
		t.Fatal(err)
	}
	if res := verify(); !res.OK || res.Log == nil || res.Log.ScanEntries != 2 {
		t.Fatalf("two scans in the log: %+v", res)
	}
	raw, err := sql.Open("sqlite3", path)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	if _, err := raw.Exec(`DROP TRIGGER scans_append_only; UPDATE scans SET schedule = 'daily' WHERE schedule IS NULL`); err != nil {
		t.Fatal(err)
	}
	if res := verify(); res.OK || res.Reason != proof.Altered || !strings.Contains(res.Detail, "is not the scan its entry") {
		t.Errorf("a scan by hand relabelled as scheduled: %+v", res)
	}
}

// On PostgreSQL two instances look at once: one scans, the other leaves
// the slot to it.
func TestScheduledScanPostgres(t *testing.T) {
	t.Parallel()
	needChrome(t)
	dsn := pgtest.Shared(t).NewDatabase(t)
	keyFile := filepath.Join(t.TempDir(), "koekje.key")
	var stores []store.Store
	for range 2 {
		db, err := postgres.Open(context.Background(), dsn, postgres.Options{KeyFile: keyFile})
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		stores = append(stores, db)
	}
	scheduled(t, stores)
}

// scheduled runs a slot's scheduled scan on each store at once and checks
// it; it returns a verification of the site against the log.
func scheduled(t *testing.T, stores []store.Store) (verify func() *proof.Result) {
	ctx := context.Background()
	db := stores[0]
	var signer interface{ VerifierKey() string }
	for _, st := range stores {
		s, err := st.StartLog(ctx, "koekje.test/log")
		if err != nil {
			t.Fatal(err)
		}
		signer = s
	}
	keys, err := proof.OpenKeys(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	cfg := config.Demo()
	ks := httptest.NewUnstartedServer(nil)
	srv, err := server.New(ctx, server.Deps{Config: cfg, Store: db, Keys: keys,
		TokenKey: bytes.Repeat([]byte{1}, 64), AdminToken: "schedule-admin-token-0123456789", PublicURL: "http://" + ks.Listener.Addr().String()})
	if err != nil {
		t.Fatal(err)
	}
	ks.Config.Handler = srv
	ks.Start()
	defer ks.Close()
	// The site sets Google Analytics' cookie before any choice.
	site := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, `<!doctype html><html lang="en"><script src="%s/s/demo.js"></script>
<script>document.cookie = '_ga=GA1.1.1.1; max-age=63072000; path=/'</script><h1>Hi</h1>`, ks.URL)
	}))
	defer site.Close()
	cfg.Site("demo").Scan = &config.ScanSchedule{Every: "daily", Pages: []string{site.URL + "/"}, PagesPerProfile: 1}

	var recorded atomic.Int32
	var judged sync.Map
	scheds := make([]*schedule.Scheduler, len(stores))
	for i, st := range stores {
		scheds[i] = &schedule.Scheduler{Store: st, Sites: func() *config.Config { return cfg },
			Log: slog.New(slog.NewTextHandler(testWriter{t}, nil)), Holder: fmt.Sprintf("instance-%d", i),
			PageTimeout: time.Minute, ScanTimeout: 3 * time.Minute,
			Recorded: func(site, verdict string) { recorded.Add(1) },
			Judged:   func(site string, st *schedule.Status) { judged.Store(site, st) }}
	}
	var wg sync.WaitGroup
	for _, s := range scheds {
		wg.Go(func() { s.Tick(ctx) })
	}
	wg.Wait()
	if n := recorded.Load(); n != 1 {
		t.Fatalf("%d scans recorded by %d instances, want one", n, len(stores))
	}
	for _, st := range stores {
		storetest.SyncLog(t, st)
	}
	if c, ok := db.(store.Counters); ok && c.LogRefused() != 0 {
		t.Errorf("%d entries refused by the log", c.LogRefused())
	}
	scans, err := db.Scans(ctx, "demo", uuid.Nil, 10)
	if err != nil || len(scans) != 1 {
		t.Fatalf("scans on record: %d, %v; want one", len(scans), err)
	}
	sc := scans[0]
	if sc.Schedule != "daily" || sc.Verdict != consent.ScanFail || sc.EntryIndex == nil || sc.URLs[0] != site.URL+"/" {
		t.Errorf("the scheduled scan %+v: want the schedule's, failed (the _ga cookie), in the log", sc)
	}
	full, err := db.ScanReport(ctx, "demo", sc.ID)
	if err != nil || !bytes.Contains(full.Report, []byte(`"schedule": "daily"`)) {
		t.Errorf("the report does not say the schedule ran it: %v\n%.300s", err, full.Report)
	}
	// The scan looked; it chose nothing on the record.
	n := 0
	if err := db.Scan(ctx, consent.Filter{Site: "demo"}, func(*consent.Record) error { n++; return nil }); err != nil || n != 0 {
		t.Errorf("records after the scheduled scan: %d, %v", n, err)
	}
	auditKey, err := db.LogAuditKey(ctx, "demo")
	if err != nil {
		t.Fatal(err)
	}
	verify = func() *proof.Result {
		t.Helper()
		pubs, ids := keys.Ring().Public()
		res, err := proof.Verify(ctx, db, "demo", pubs, ids)
		if err != nil || !res.OK {
			t.Fatalf("verify: %+v, %v", res, err)
		}
		if err := proof.VerifyLog(ctx, db, res, signer.VerifierKey(), auditKey, nil); err != nil {
			t.Fatal(err)
		}
		return res
	}
	if res := verify(); !res.OK || res.Log == nil || res.Log.ScanEntries != 1 {
		t.Fatalf("verify against the log: %+v", res)
	}
	v, _ := judged.Load("demo")
	if st, _ := v.(*schedule.Status); st == nil || st.Latest == nil || st.Latest.ID != sc.ID || len(st.Missing) != 0 {
		t.Errorf("judged %+v, want the scan latest and nothing missing", v)
	}
	// The slot is done: no instance scans it again.
	for _, s := range scheds {
		if again := s.Tick(ctx); len(again) != 0 {
			t.Errorf("the slot scanned again: %+v", again)
		}
	}
	return verify
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(bytes.TrimSpace(p)))
	return len(p), nil
}
