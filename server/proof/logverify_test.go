package proof_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/koekje/koekje/server/consent"
	"github.com/koekje/koekje/server/proof"
	"github.com/koekje/koekje/server/sqlite"
)

// logged makes a store that keeps the log, with n records of site "demo",
// and a raw connection an attacker with the file would use.
func logged(t *testing.T, n int) (*sqlite.DB, string, *sql.DB) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "k.db")
	db, err := sqlite.Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	signer, err := db.StartLog(context.Background(), "koekje.test/log")
	if err != nil {
		t.Fatal(err)
	}
	for range n {
		r := &consent.Record{Site: "demo", Action: consent.AcceptAll, Choices: map[string]bool{"necessary": true, "analytics": true},
			Revision: 1, ConfigHash: "sha256:x", Language: "nl", IP: "192.0.2.0/24"}
		if err := db.Append(context.Background(), r); err != nil {
			t.Fatal(err)
		}
	}
	raw, err := sql.Open("sqlite3", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { raw.Close() })
	exec(t, raw, `DROP TRIGGER records_append_only`)
	return db, signer.VerifierKey(), raw
}

// verifyLog walks the chain, then holds it against the log (ref: a kept
// checkpoint, or nil for the database's own).
func verifyLog(t *testing.T, db *sqlite.DB, logKey string, ref []byte) *proof.Result {
	t.Helper()
	res := verify(t, db)
	key, err := db.LogAuditKey(context.Background(), "demo")
	if err != nil {
		t.Fatal(err)
	}
	if err := proof.VerifyLog(context.Background(), db, res, logKey, key, ref); err != nil {
		t.Fatal(err)
	}
	return res
}

func TestLogVerifies(t *testing.T) {
	db, key, _ := logged(t, 20)
	res := verifyLog(t, db, key, nil)
	if !res.OK || res.Log == nil || res.Log.Size != 20 || res.Log.Leaves != 20 || res.Log.Reference != proof.ReferenceDatabase {
		t.Fatalf("%+v %+v", res, res.Log)
	}
}

// Deleting the newest records together with their leaves and the stored
// checkpoints passes against the database's own log, and is caught against
// a checkpoint kept from before.
func TestLogCatchesTruncatedTail(t *testing.T) {
	db, key, raw := logged(t, 20)
	kept, err := db.LatestCheckpoint(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	exec(t, raw, `DELETE FROM records WHERE seq > 15`)
	exec(t, raw, `DELETE FROM log_leaves WHERE idx >= 15`)
	exec(t, raw, `DELETE FROM log_hashes WHERE id >= ?`, tlog.StoredHashIndex(0, 15))
	exec(t, raw, `DELETE FROM log_checkpoints WHERE size > 15`)
	if res := verifyLog(t, db, key, nil); !res.OK {
		t.Fatalf("the truncated database should agree with itself: %+v", res)
	}
	res := verifyLog(t, db, key, kept)
	if res.OK || res.Reason != proof.LogMismatch {
		t.Fatalf("truncation against a kept checkpoint: %+v", res)
	}
}

// Deleting records whose leaves stay is caught by the database's own log.
func TestLogCatchesDeletedRecords(t *testing.T) {
	db, key, raw := logged(t, 20)
	exec(t, raw, `DELETE FROM records WHERE seq > 15`)
	if res := verify(t, db); !res.OK {
		t.Fatalf("the chain alone cannot see a cut tail: %+v", res)
	}
	res := verifyLog(t, db, key, nil)
	if res.OK || res.Reason != proof.LogMissing {
		t.Fatalf("%+v", res)
	}
}

// A chain rewritten with recomputed hashes verifies alone, and not against
// the leaves that committed to the old hashes.
func TestLogCatchesRewrittenChain(t *testing.T) {
	db, key, raw := logged(t, 10)
	var recs []*consent.Record
	db.Chain(context.Background(), "demo", func(r *consent.Record) error { c := *r; recs = append(recs, &c); return nil })
	var prev []byte
	for i, r := range recs {
		if i == 4 {
			r.Action, r.Choices = consent.RejectAll, map[string]bool{"necessary": true, "analytics": false}
			exec(t, raw, `UPDATE records SET action = ?, choices = ? WHERE site = 'demo' AND seq = ?`, r.Action, `{"analytics":false,"necessary":true}`, r.Seq)
		}
		if i >= 4 {
			r.PrevHash = prev
			r.Hash = consent.RecordHash(r)
			exec(t, raw, `UPDATE records SET prev_hash = ?, hash = ? WHERE site = 'demo' AND seq = ?`, r.PrevHash, r.Hash, r.Seq)
		}
		prev = r.Hash
	}
	if res := verify(t, db); !res.OK {
		t.Fatalf("the rewritten chain should verify alone: %+v", res)
	}
	res := verifyLog(t, db, key, nil)
	if res.OK || res.Reason != proof.Altered || res.Seq != 5 {
		t.Fatalf("%+v", res)
	}
}

// A purge shows in the answer; a purge checkpoint changed to cover a cut
// tail does not hide it.
func TestLogPurges(t *testing.T) {
	db, key, raw := logged(t, 20)
	keys, err := proof.OpenKeys(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	var fifth *consent.Record
	db.Chain(context.Background(), "demo", func(r *consent.Record) error {
		if r.Seq == 5 {
			fifth = r
		}
		return nil
	})
	if n, err := db.Purge(context.Background(), "demo", fifth.RecordedAt.Add(time.Microsecond), keys.SignCheckpoint); err != nil || n != 5 {
		t.Fatalf("purge: %d %v", n, err)
	}
	res := verifyLog(t, db, key, nil)
	if !res.OK || res.Log.Purged != 5 || res.Log.Leaves != 20 || len(res.Log.Purges) != 1 || res.Log.Purges[0].ThroughSeq != 5 {
		t.Fatalf("after a purge: %+v %+v", res, res.Log)
	}
	exec(t, raw, `DELETE FROM records WHERE seq > 15`)
	exec(t, raw, `UPDATE checkpoints SET log_index = 19`)
	res = verifyLog(t, db, key, nil)
	if res.OK || res.Reason != proof.LogMissing {
		t.Fatalf("a cut tail behind a stretched purge: %+v", res)
	}
}

// Many sites in one pass over the log say what each site's own pass says:
// interleaved leaves of three sites, one with a deleted record and one
// with a rewritten record, one untouched.
func TestLogSitesInOnePass(t *testing.T) {
	ctx := context.Background()
	db, key, raw := logged(t, 0)
	sites := []string{"a", "b", "c"}
	appendInterleaved(t, db, sites, 30)
	exec(t, raw, `DELETE FROM records WHERE site = 'b' AND seq = 10`)
	exec(t, raw, `UPDATE records SET action = 'reject_all' WHERE site = 'c' AND seq = 3`)
	together, auditKeys := walkSites(t, db, sites)
	if err := proof.VerifyLogSites(ctx, db, together, key, auditKeys, nil); err != nil {
		t.Fatal(err)
	}
	alone, _ := walkSites(t, db, sites)
	for i, res := range alone {
		if err := proof.VerifyLog(ctx, db, res, key, auditKeys[i], nil); err != nil {
			t.Fatal(err)
		}
		a, b := *res, *together[i]
		if a.OK != b.OK || a.Reason != b.Reason || a.Seq != b.Seq || a.Detail != b.Detail || (a.Log == nil) != (b.Log == nil) ||
			(a.Log != nil && (a.Log.Leaves != b.Log.Leaves || a.Log.Purged != b.Log.Purged)) {
			t.Errorf("site %s: alone %+v, together %+v", res.Site, a, b)
		}
	}
	if !together[0].OK || together[0].Log.Leaves != 10 {
		t.Errorf("untouched site a: %+v %+v", together[0], together[0].Log)
	}
	if together[1].OK || together[1].Reason != proof.LogMissing {
		t.Errorf("site b with a deleted record: %+v", together[1])
	}
	if together[2].OK {
		t.Errorf("site c with a rewritten record: %+v", together[2])
	}
}

// A leaf whose record a purge removed is found by its site tag, trying the
// site the database names for it first: a wrong name costs a search, never
// a wrong answer. A deleted record whose leaf is renamed to another site
// is still its own site's missing leaf.
func TestLogPurgedLeavesFoundBySiteTag(t *testing.T) {
	ctx := context.Background()
	db, key, raw := logged(t, 0)
	sites := []string{"a", "b", "c"}
	appendInterleaved(t, db, sites, 30)
	keys, err := proof.OpenKeys(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	if n, err := db.Purge(ctx, "a", time.Now().Add(time.Second), keys.SignCheckpoint); err != nil || n != 10 {
		t.Fatalf("purge: %d, %v", n, err)
	}
	verifyAll := func() []*proof.Result {
		t.Helper()
		results, auditKeys := walkSites(t, db, sites)
		if err := proof.VerifyLogSites(ctx, db, results, key, auditKeys, nil); err != nil {
			t.Fatal(err)
		}
		return results
	}
	// One of a's purged leaves named as b's.
	exec(t, raw, `UPDATE log_leaves SET site = 'b' WHERE idx = (SELECT min(idx) FROM log_leaves WHERE record IS NULL)`)
	res := verifyAll()
	for _, r := range res {
		if !r.OK || r.Log == nil {
			t.Fatalf("site %s: %+v", r.Site, r)
		}
	}
	if res[0].Log.Purged != 10 || res[0].Log.Leaves != 10 || res[1].Log.Purged != 0 {
		t.Errorf("purged leaves: a %+v, b %+v", res[0].Log, res[1].Log)
	}
	// b's newest record deleted, its leaf named as a's.
	exec(t, raw, `UPDATE log_leaves SET site = 'a' WHERE record = (SELECT id FROM records WHERE site = 'b' AND seq = 10)`)
	exec(t, raw, `DELETE FROM records WHERE site = 'b' AND seq = 10`)
	res = verifyAll()
	if !res[0].OK || res[1].OK || res[1].Reason != proof.LogMissing || !res[2].OK {
		t.Errorf("after deleting b's record: a %+v, b %+v, c %+v", res[0], res[1], res[2])
	}
}

// walkSites walks the chains of sites and returns their results with the
// sites' audit keys, ready to be held against the log.
func walkSites(t *testing.T, db *sqlite.DB, sites []string) ([]*proof.Result, [][]byte) {
	t.Helper()
	ctx := context.Background()
	keys, err := proof.OpenKeys(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	pubs, ids := keys.Ring().Public()
	var results []*proof.Result
	var auditKeys [][]byte
	for _, s := range sites {
		res, err := proof.Verify(ctx, db, s, pubs, ids)
		if err != nil {
			t.Fatal(err)
		}
		ak, err := db.LogAuditKey(ctx, s)
		if err != nil {
			t.Fatal(err)
		}
		results, auditKeys = append(results, res), append(auditKeys, ak)
	}
	return results, auditKeys
}

// appendInterleaved appends n records, going round sites.
func appendInterleaved(t *testing.T, db *sqlite.DB, sites []string, n int) {
	t.Helper()
	for i := range n {
		r := &consent.Record{Site: sites[i%len(sites)], Action: consent.AcceptAll, Choices: map[string]bool{"necessary": true, "analytics": true},
			Revision: 1, ConfigHash: "sha256:x", Language: "nl", IP: "192.0.2.0/24"}
		if err := db.Append(context.Background(), r); err != nil {
			t.Fatal(err)
		}
	}
}
