package postgres_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/koekje/koekje/server/consent"
	"github.com/koekje/koekje/server/postgres"
	"github.com/koekje/koekje/server/proof"
	"github.com/koekje/koekje/server/store/storetest"
	"github.com/koekje/koekje/server/translog"
)

const testOrigin = "koekje.test/log"

// startLog starts the log on db, keeping the background integrator idle
// (a holder that is no instance has the lease) unless free is set.
func startLog(t *testing.T, db *postgres.DB, free bool) *translog.Signer {
	t.Helper()
	ctx := context.Background()
	if !free {
		if ok, err := db.Lease(ctx, "log", "a-test-holds-it", time.Hour); err != nil || !ok {
			t.Fatalf("hold the log lease: %v %v", ok, err)
		}
	}
	signer, err := db.StartLog(ctx, testOrigin)
	if err != nil {
		t.Fatal(err)
	}
	return signer
}

// connect opens a plain connection to the database dsn, closed when t ends.
func connect(t *testing.T, dsn string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// checkLog fails t unless the database holds one unforked log over every
// record: leaves 0…n-1, one per record, every stored checkpoint signing a
// prefix of the tree of those leaves, the newest the whole tree, and
// nothing left queued.
func checkLog(t *testing.T, db *postgres.DB, dsn, logKey string) int64 {
	t.Helper()
	ctx := context.Background()
	conn := connect(t, dsn)
	var records, leaves, distinct, maxIdx, queued int64
	if err := conn.QueryRow(ctx, `SELECT (SELECT count(*) FROM records), (SELECT count(*) FROM log_leaves),
		(SELECT count(DISTINCT (site, seq)) FROM log_leaves), (SELECT coalesce(max(idx), -1) FROM log_leaves),
		(SELECT count(*) FROM log_pending)`).Scan(&records, &leaves, &distinct, &maxIdx, &queued); err != nil {
		t.Fatal(err)
	}
	if leaves != records || distinct != records || maxIdx != records-1 || queued != 0 {
		t.Fatalf("%d records, %d leaves for %d records, last index %d, %d queued", records, leaves, distinct, maxIdx, queued)
	}
	var missing int64
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM records r WHERE NOT EXISTS
		(SELECT 1 FROM log_leaves l WHERE l.site = r.site AND l.seq = r.seq)`).Scan(&missing); err != nil || missing != 0 {
		t.Fatalf("%d records without a leaf (%v)", missing, err)
	}
	entries, err := db.LogEntries(ctx, 0, leaves)
	if err != nil {
		t.Fatal(err)
	}
	roots := make([]string, len(entries)+1)
	var tree translog.TreeBuilder
	roots[0] = fmt.Sprint(tree.Root())
	for i, e := range entries {
		tree.Add(e)
		roots[i+1] = fmt.Sprint(tree.Root())
	}
	rows, err := conn.Query(ctx, `SELECT signed FROM log_checkpoints ORDER BY size`)
	if err != nil {
		t.Fatal(err)
	}
	signed, err := pgx.CollectRows(rows, pgx.RowTo[[]byte])
	if err != nil || len(signed) == 0 {
		t.Fatalf("checkpoints: %d, %v", len(signed), err)
	}
	var last translog.Checkpoint
	for _, s := range signed {
		cp, _, err := translog.OpenCheckpoint(s, logKey)
		if err != nil {
			t.Fatal(err)
		}
		if cp.Size > leaves || fmt.Sprint(cp.Hash) != roots[cp.Size] {
			t.Fatalf("checkpoint of size %d is not a prefix of the log: a fork", cp.Size)
		}
		last = cp
	}
	if last.Size != leaves {
		t.Fatalf("the newest checkpoint has %d leaves of %d", last.Size, leaves)
	}
	var size int64
	var root []byte
	if err := conn.QueryRow(ctx, `SELECT size, root FROM log_state`).Scan(&size, &root); err != nil || size != leaves || string(root) != string(last.Hash[:]) {
		t.Fatalf("log state %d %x, want %d %x (%v)", size, root, leaves, last.Hash, err)
	}
	return leaves
}

// An integrator that computed a pass and was beaten to the log by another
// (an old lease holder that did not notice it lost the lease) writes
// nothing: its compare-and-set fails, it reads again and takes in only what
// the other left.
func TestIntegratorLosesRace(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	a, dsn := open(t, "")
	b, _ := open(t, dsn)
	signer := startLog(t, a, false)
	startLog(t, b, false)
	for range 10 {
		if err := a.Append(ctx, storetest.NewRecord("demo", uuid.Nil)); err != nil {
			t.Fatal(err)
		}
	}
	computed, resume := make(chan struct{}), make(chan struct{})
	var once sync.Once
	a.SetBeforeAdvance(func() {
		once.Do(func() {
			close(computed)
			<-resume
		})
	})
	type result struct {
		n   int64
		err error
	}
	done := make(chan result, 1)
	go func() {
		n, err := a.Integrate(ctx)
		done <- result{n, err}
	}()
	<-computed
	if n, err := b.Integrate(ctx); err != nil || n != 10 {
		t.Fatalf("b integrated %d, %v; want 10", n, err)
	}
	for range 5 {
		if err := b.Append(ctx, storetest.NewRecord("other", uuid.Nil)); err != nil {
			t.Fatal(err)
		}
	}
	close(resume)
	r := <-done
	if r.err != nil || r.n != 5 {
		t.Fatalf("a integrated %d, %v after losing the race; want the 5 b left", r.n, r.err)
	}
	if a.LogRaces() != 1 || b.LogRaces() != 0 {
		t.Errorf("races lost: a %d, b %d; want 1, 0", a.LogRaces(), b.LogRaces())
	}
	if n := checkLog(t, a, dsn, signer.VerifierKey()); n != 15 {
		t.Errorf("%d leaves, want 15", n)
	}
}

// Two instances take records and integrate at once, over and over: the log
// never forks and every record is in it exactly once.
func TestIntegratorsRace(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	a, dsn := open(t, "")
	b, _ := open(t, dsn)
	signer := startLog(t, a, false)
	startLog(t, b, false)
	stop := make(chan struct{})
	var integrators sync.WaitGroup
	var passes atomic.Int64
	for _, db := range []*postgres.DB{a, b} {
		integrators.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := db.Integrate(ctx); err != nil {
					t.Error(err)
					return
				}
				passes.Add(1)
			}
		})
	}
	var writers sync.WaitGroup
	for g := range 8 {
		db := []*postgres.DB{a, b}[g%2]
		writers.Go(func() {
			for i := range 40 {
				if err := db.Append(ctx, storetest.NewRecord([]string{"s1", "s2", "s3"}[(g+i)%3], uuid.Nil)); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	writers.Wait()
	close(stop)
	integrators.Wait()
	storetest.SyncLog(t, a)
	if n := checkLog(t, a, dsn, signer.VerifierKey()); n != 320 {
		t.Errorf("%d leaves, want 320", n)
	}
	t.Logf("%d integration passes, %d lost a race", passes.Load(), a.LogRaces()+b.LogRaces())
	keys, err := proof.OpenKeys(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	pubs, ids := keys.Ring().Public()
	for _, site := range []string{"s1", "s2", "s3"} {
		res, err := proof.Verify(ctx, b, site, pubs, ids)
		if err != nil {
			t.Fatal(err)
		}
		auditKey, _ := b.LogAuditKey(ctx, site)
		if err := proof.VerifyLog(ctx, b, res, signer.VerifierKey(), auditKey, nil); err != nil || !res.OK || res.Log.Pending != 0 {
			t.Errorf("%s against the log: %+v %v", site, res, err)
		}
	}
}

// Left to itself, the elected integrator takes every record in: the
// instances need nothing but StartLog.
func TestIntegratorRunsByItself(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	a, dsn := open(t, "")
	b, _ := open(t, dsn)
	signer := startLog(t, a, true)
	startLog(t, b, true)
	var last *consent.Record
	for i := range 20 {
		last = storetest.NewRecord("demo", uuid.Nil)
		if err := []*postgres.DB{a, b}[i%2].Append(ctx, last); err != nil {
			t.Fatal(err)
		}
	}
	start := time.Now()
	deadline := time.Now().Add(30 * time.Second)
	for {
		l, err := a.LeafOf(ctx, "demo", last.Seq)
		if err != nil {
			t.Fatal(err)
		}
		if l != nil {
			t.Logf("the last record's leaf was there %v after its commit", time.Since(start))
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the integrator did not take the records in")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if n := checkLog(t, a, dsn, signer.VerifierKey()); n != 20 {
		t.Errorf("%d leaves, want 20", n)
	}
}

// Held against the log, a chain rewritten with recomputed hashes, or cut
// at its tail, no longer verifies, though it verifies as a chain; records
// not yet integrated are reported as pending, not as slipped in.
func TestLogCatchesRewrites(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, dsn := open(t, "")
	signer := startLog(t, db, false)
	keys, err := proof.OpenKeys(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	for _, site := range []string{"cut", "rewritten"} {
		for range 6 {
			if err := db.Append(ctx, storetest.NewRecord(site, uuid.Nil)); err != nil {
				t.Fatal(err)
			}
		}
	}
	storetest.SyncLog(t, db)
	pending := storetest.NewRecord("cut", uuid.Nil)
	if err := db.Append(ctx, pending); err != nil {
		t.Fatal(err)
	}
	check := func(site string) *proof.Result {
		t.Helper()
		pubs, ids := keys.Ring().Public()
		res, err := proof.Verify(ctx, db, site, pubs, ids)
		if err != nil {
			t.Fatal(err)
		}
		auditKey, _ := db.LogAuditKey(ctx, site)
		if err := proof.VerifyLog(ctx, db, res, signer.VerifierKey(), auditKey, nil); err != nil {
			t.Fatal(err)
		}
		return res
	}
	if res := check("cut"); !res.OK || res.Records != 7 || res.Log.Leaves != 6 || res.Log.Pending != 1 {
		t.Fatalf("before any change: %+v %+v", res, res.Log)
	}
	conn := connect(t, dsn)
	// The record still queued was slipped in: it is not pending but leafless.
	if _, err := conn.Exec(ctx, `DELETE FROM log_pending`); err != nil {
		t.Fatal(err)
	}
	if res := check("cut"); res.OK || res.Reason != proof.NotInLog {
		t.Errorf("a record without a leaf that is not queued: %+v", res)
	}
	// The tail cut: two records whose leaves are in the log are gone.
	if _, err := conn.Exec(ctx, `DELETE FROM records WHERE site = 'cut' AND seq >= 5`); err != nil {
		t.Fatal(err)
	}
	if res := check("cut"); res.OK || res.Reason != proof.LogMissing {
		t.Errorf("a cut tail: %+v", res)
	}
	// A chain rewritten: another action, every hash recomputed, so the
	// chain alone verifies.
	var recs []*consent.Record
	if err := db.Chain(ctx, "rewritten", func(r *consent.Record) error { c := *r; recs = append(recs, &c); return nil }); err != nil {
		t.Fatal(err)
	}
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `ALTER TABLE records DISABLE TRIGGER records_append_only`); err != nil {
		t.Fatal(err)
	}
	var prev []byte
	for _, r := range recs {
		r.Action, r.PrevHash = consent.RejectAll, prev
		r.Hash = consent.RecordHash(r)
		prev = r.Hash
		if _, err := tx.Exec(ctx, `UPDATE records SET action = $1, prev_hash = $2, hash = $3 WHERE site = $4 AND seq = $5`,
			r.Action, r.PrevHash, r.Hash, r.Site, r.Seq); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := tx.Exec(ctx, `ALTER TABLE records ENABLE TRIGGER records_append_only`); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	pubs, ids := keys.Ring().Public()
	if res, err := proof.Verify(ctx, db, "rewritten", pubs, ids); err != nil || !res.OK {
		t.Fatalf("the rewritten chain should verify as a chain: %+v %v", res, err)
	}
	if res := check("rewritten"); res.OK || res.Reason != proof.Altered || res.Seq != 1 {
		t.Errorf("a rewritten chain: %+v", res)
	}
}

// How soon a record is in a signed checkpoint after its Append returned
// (go test -run '^$' -bench ProofReady -benchtime 4000x): two instances
// taking records from 16 writers, the elected integrator running by
// itself; and one writer at the instance that does not integrate, whose
// records wait for the integrator's next look at the queue. The time a
// leaf was signed is its first checkpoint's created_at.
func BenchmarkProofReady(b *testing.B) {
	b.Run("16-writers-two-instances", func(b *testing.B) { proofReady(b, 16, true) })
	b.Run("1-writer-other-instance", func(b *testing.B) { proofReady(b, 1, false) })
}

func proofReady(b *testing.B, writers int, both bool) {
	ctx := context.Background()
	x, dsn := open(b, "")
	y, _ := open(b, dsn)
	logged := []*postgres.DB{x}
	if both {
		logged = append(logged, y)
	}
	for _, db := range logged {
		if _, err := db.StartLog(ctx, testOrigin); err != nil {
			b.Fatal(err)
		}
	}
	type written struct {
		site string
		seq  int64
		at   time.Time
	}
	out := make([][]written, writers)
	var next atomic.Int64
	b.ResetTimer()
	var wg sync.WaitGroup
	for g := range writers {
		db := y
		if both && g%2 == 0 {
			db = x
		}
		wg.Go(func() {
			for n := next.Add(1); n <= int64(b.N); n = next.Add(1) {
				r := storetest.NewRecord(fmt.Sprintf("site-%d", n%100), uuid.Nil)
				if err := db.Append(ctx, r); err != nil {
					b.Error(err)
					return
				}
				out[g] = append(out[g], written{r.Site, r.Seq, time.Now()})
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close(ctx)
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(50 * time.Millisecond) {
		var queued int
		if err := conn.QueryRow(ctx, `SELECT count(*) FROM log_pending`).Scan(&queued); err != nil {
			b.Fatal(err)
		}
		if queued == 0 {
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("%d records still queued", queued)
		}
	}
	signedAt := map[string]time.Time{}
	rows, err := conn.Query(ctx, `SELECT l.site, l.seq, (SELECT c.created_at FROM log_checkpoints c WHERE c.size > l.idx ORDER BY c.size LIMIT 1)
		FROM log_leaves l`)
	if err != nil {
		b.Fatal(err)
	}
	for rows.Next() {
		var site string
		var seq int64
		var at time.Time
		if err := rows.Scan(&site, &seq, &at); err != nil {
			b.Fatal(err)
		}
		signedAt[fmt.Sprint(site, "/", seq)] = at
	}
	var lat []time.Duration
	for _, ws := range out {
		for _, w := range ws {
			at, ok := signedAt[fmt.Sprint(w.site, "/", w.seq)]
			if !ok {
				b.Fatalf("%s/%d has no leaf", w.site, w.seq)
			}
			lat = append(lat, max(at.Sub(w.at), 0))
		}
	}
	slices.Sort(lat)
	q := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))].Microseconds()) / 1000 }
	b.ReportMetric(q(0.5), "ms-p50")
	b.ReportMetric(q(0.99), "ms-p99")
	b.ReportMetric(q(1), "ms-max")
	var checkpoints float64
	conn.QueryRow(ctx, `SELECT count(*) FROM log_checkpoints`).Scan(&checkpoints)
	b.ReportMetric(float64(b.N)/checkpoints, "records/checkpoint")
}

// A database from before the log: its records are queued when the log's
// migration runs, and the integrator gives them leaves in the order they
// were written.
func TestLogTakesInOlderRecords(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	old, dsn := open(t, "")
	var written []*consent.Record
	for i := range 12 {
		r := storetest.NewRecord([]string{"demo", "other", "third"}[i%3], uuid.Nil)
		if err := old.Append(ctx, r); err != nil {
			t.Fatal(err)
		}
		written = append(written, r)
	}
	old.Close()
	conn := connect(t, dsn)
	for _, q := range []string{`DROP TRIGGER records_queue_for_log ON records`, `DROP FUNCTION koekje_queue_for_log()`,
		`DROP FUNCTION koekje_advance_log(bigint, bytea, bigint, bytea, bigint[])`,
		`DROP TABLE log_leaves, log_hashes, log_checkpoints, log_witnessed, log_state, log_pending`,
		// The migrations after the log's (scan reports, the queue's MACs,
		// and every one after them) are undone too, so that the log's runs
		// again.
		`DROP TABLE scans`, `DROP FUNCTION koekje_scans_append_only()`,
		fmt.Sprintf(`UPDATE schema_version SET version = %d`, postgres.SchemaBeforeLog)} {
		if _, err := conn.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	db, _ := open(t, dsn)
	signer := startLog(t, db, false)
	storetest.SyncLog(t, db)
	if n := checkLog(t, db, dsn, signer.VerifierKey()); n != 12 {
		t.Fatalf("%d leaves, want 12", n)
	}
	for i, r := range written {
		l, err := db.LeafOf(ctx, r.Site, r.Seq)
		if err != nil || l == nil || l.Index != int64(i) {
			t.Errorf("record %d (%s/%d): leaf %+v, %v; want index %d", i, r.Site, r.Seq, l, err, i)
		}
	}
}

// A record inserted with psql, hashed and linked as the write path does,
// is queued by the trigger like any other, but it never gets a leaf: not
// from this integrator, not after a restart; verify reports it as
// not_in_log. (The danger: the trigger queues it, and a log that took in
// every queued row would give it a leaf without any restart.)
func TestForgedRowNeverLogged(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, dsn := open(t, "")
	signer := startLog(t, db, false)
	for range 3 {
		if err := db.Append(ctx, storetest.NewRecord("demo", uuid.Nil)); err != nil {
			t.Fatal(err)
		}
	}
	storetest.SyncLog(t, db)
	var head *consent.Record
	if err := db.Chain(ctx, "demo", func(r *consent.Record) error { c := *r; head = &c; return nil }); err != nil || head == nil {
		t.Fatalf("chain: %v", err)
	}
	forged := *head
	forged.Seq, forged.RecordID, forged.Action = head.Seq+1, uuid.Must(uuid.NewV7()), consent.AcceptAll
	forged.Choices = map[string]bool{"necessary": true, "analytics": true}
	forged.RecordedAt = head.RecordedAt.Add(time.Second)
	forged.PrevHash = head.Hash
	forged.Hash = consent.RecordHash(&forged)
	conn := connect(t, dsn)
	if _, err := conn.Exec(ctx, `INSERT INTO records (site, seq, record_id, consent_id, consent_key, recorded_at, action, choices, services,
			revision, config_hash, language, url, user_agent, ip, gpc, prev_hash, hash)
		SELECT site, $1, $2, consent_id, consent_key, $3, 'accept_all', '{"analytics":true,"necessary":true}', services,
			revision, config_hash, language, url, user_agent, ip, gpc, $4, $5
		FROM records WHERE site = 'demo' AND seq = $6`,
		forged.Seq, forged.RecordID, forged.RecordedAt, forged.PrevHash, forged.Hash, head.Seq); err != nil {
		t.Fatal(err)
	}
	check := func(when string, db *postgres.DB) {
		t.Helper()
		storetest.SyncLog(t, db)
		if l, err := db.LeafOf(ctx, "demo", forged.Seq); err != nil || l != nil {
			t.Errorf("%s: the forged record's leaf: %+v, %v; want none", when, l, err)
		}
		keys, err := proof.OpenKeys(ctx, db)
		if err != nil {
			t.Fatal(err)
		}
		pubs, ids := keys.Ring().Public()
		res, err := proof.Verify(ctx, db, "demo", pubs, ids)
		if err != nil {
			t.Fatal(err)
		}
		auditKey, _ := db.LogAuditKey(ctx, "demo")
		if err := proof.VerifyLog(ctx, db, res, signer.VerifierKey(), auditKey, nil); err != nil {
			t.Fatal(err)
		}
		if res.OK || res.Reason != proof.NotInLog || res.Records != 4 {
			t.Errorf("%s: verify: %+v, want not_in_log of 4 records", when, res)
		}
	}
	// Queued by the trigger but not by the write path, it is not waiting
	// for the log either, however long the log takes (it may be held).
	if n, err := db.LogPending(ctx, "demo", forged.Seq); err != nil || n != 0 {
		t.Errorf("the forged record counted as waiting for the log: %d, %v", n, err)
	}
	check("at once", db)
	if db.LogRefused() != 1 {
		t.Errorf("refused records: %d, want 1", db.LogRefused())
	}
	db.Close()
	again, _ := open(t, dsn)
	startLog(t, again, false)
	check("after a restart", again)
}
