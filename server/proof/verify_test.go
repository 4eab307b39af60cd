package proof_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/koekje/koekje/server/consent"
	"github.com/koekje/koekje/server/proof"
	"github.com/koekje/koekje/server/sqlite"
)

// chain makes a store with n records of site "demo" and returns it, the
// records in order, and a raw connection for tampering.
func chain(t *testing.T, n int) (*sqlite.DB, []*consent.Record, *sql.DB) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "k.db")
	db, err := sqlite.Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	var recs []*consent.Record
	for i := 0; i < n; i++ {
		r := &consent.Record{ConsentID: uuid.New(), Site: "demo", Action: consent.AcceptAll,
			Choices: map[string]bool{"necessary": true, "analytics": true}, Revision: 1,
			ConfigHash: "sha256:x", Language: "nl", IP: "192.0.2.0/24"}
		if err := db.Append(context.Background(), r); err != nil {
			t.Fatal(err)
		}
		recs = append(recs, r)
	}
	raw, err := sql.Open("sqlite3", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { raw.Close() })
	if _, err := raw.Exec(`DROP TRIGGER records_append_only`); err != nil {
		t.Fatal(err)
	}
	return db, recs, raw
}

func verify(t *testing.T, db *sqlite.DB) *proof.Result {
	t.Helper()
	keys, err := proof.OpenKeys(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	pubs, ids := keys.Ring().Public()
	res, err := proof.Verify(context.Background(), db, "demo", pubs, ids)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func exec(t *testing.T, raw *sql.DB, q string, args ...any) {
	t.Helper()
	if _, err := raw.Exec(q, args...); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

func TestVerifyIntact(t *testing.T) {
	db, recs, _ := chain(t, 20)
	res := verify(t, db)
	if !res.OK || res.Records != 20 || res.Head == "" {
		t.Fatalf("intact chain: %+v", res)
	}
	if res.Head != sprintHex(recs[19].Hash) {
		t.Errorf("head = %s, want the last record's hash", res.Head)
	}
}

func sprintHex(b []byte) string {
	const digits = "0123456789abcdef"
	out := make([]byte, 0, 2*len(b))
	for _, c := range b {
		out = append(out, digits[c>>4], digits[c&15])
	}
	return string(out)
}

// Each kind of tampering is detected and named, at the right record.
func TestVerifyTampering(t *testing.T) {
	tests := []struct {
		name   string
		tamper func(t *testing.T, raw *sql.DB, recs []*consent.Record)
		reason string
		at     int // index of the record named
	}{
		{"changed field", func(t *testing.T, raw *sql.DB, recs []*consent.Record) {
			exec(t, raw, `UPDATE records SET choices = '{"analytics":false,"necessary":true}' WHERE record_id = ?`, recs[7].RecordID[:])
		}, proof.Altered, 7},
		{"changed time", func(t *testing.T, raw *sql.DB, recs []*consent.Record) {
			exec(t, raw, `UPDATE records SET recorded_at = recorded_at - 86400000000 WHERE record_id = ?`, recs[3].RecordID[:])
		}, proof.Altered, 3},
		{"deleted record", func(t *testing.T, raw *sql.DB, recs []*consent.Record) {
			exec(t, raw, `DELETE FROM records WHERE record_id = ?`, recs[5].RecordID[:])
		}, proof.Missing, 6},
		{"deleted and renumbered", func(t *testing.T, raw *sql.DB, recs []*consent.Record) {
			exec(t, raw, `DELETE FROM records WHERE record_id = ?`, recs[5].RecordID[:])
			exec(t, raw, `UPDATE records SET seq = -seq WHERE seq > 6`)
			exec(t, raw, `UPDATE records SET seq = -seq - 1 WHERE seq < 0`)
		}, proof.Missing, 6},
		{"two records swapped", func(t *testing.T, raw *sql.DB, recs []*consent.Record) {
			exec(t, raw, `UPDATE records SET seq = -1 WHERE record_id = ?`, recs[10].RecordID[:])
			exec(t, raw, `UPDATE records SET seq = 11 WHERE record_id = ?`, recs[11].RecordID[:])
			exec(t, raw, `UPDATE records SET seq = 12 WHERE record_id = ?`, recs[10].RecordID[:])
		}, proof.Reordered, 11},
		{"forged record inserted", func(t *testing.T, raw *sql.DB, recs []*consent.Record) {
			// Make room after record 9 and put a forged record there, correctly
			// hashed and linked to record 9, as someone with the code would.
			insertForged(t, raw, recs[8], recs[8].Hash)
		}, proof.Inserted, -1},
		{"unlinked record inserted", func(t *testing.T, raw *sql.DB, recs []*consent.Record) {
			insertForged(t, raw, recs[8], []byte("links to nothing"))
		}, proof.Inserted, -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db, recs, raw := chain(t, 20)
			tt.tamper(t, raw, recs)
			res := verify(t, db)
			if res.OK {
				t.Fatal("tampered chain verified")
			}
			if res.Reason != tt.reason {
				t.Fatalf("reason = %s (%s), want %s", res.Reason, res.Detail, tt.reason)
			}
			if tt.at >= 0 && (res.RecordID == nil || *res.RecordID != recs[tt.at].RecordID) {
				t.Errorf("named record %v (seq %d), want %v (seq %d)", res.RecordID, res.Seq, recs[tt.at].RecordID, recs[tt.at].Seq)
			}
			if tt.reason == proof.Inserted && (res.RecordID == nil || *res.RecordID != forgedID || res.Seq != 10) {
				t.Errorf("named %v at %d, want the forged record %v at 10", res.RecordID, res.Seq, forgedID)
			}
		})
	}
}

var forgedID uuid.UUID

// insertForged renumbers the records after after and puts a self-consistent
// forged record in the gap, linked to prev.
func insertForged(t *testing.T, raw *sql.DB, after *consent.Record, prev []byte) {
	t.Helper()
	exec(t, raw, `UPDATE records SET seq = -seq - 1 WHERE seq > ?`, after.Seq)
	exec(t, raw, `UPDATE records SET seq = -seq WHERE seq < 0`)
	forged := *after
	forged.RecordID, forged.ConsentID, forged.Seq, forged.PrevHash = uuid.Must(uuid.NewV7()), uuid.New(), after.Seq+1, prev
	forged.RecordedAt = after.RecordedAt.Add(time.Microsecond)
	forged.Hash = consent.RecordHash(&forged)
	forgedID = forged.RecordID
	exec(t, raw, `INSERT INTO records (record_id, site, seq, consent_id, recorded_at, action, choices, services,
		revision, config_hash, language, url, user_agent, ip, gpc, prev_hash, hash)
		SELECT ?, site, ?, ?, ?, action, choices, services, revision, config_hash, language, url, user_agent, ip, gpc, ?, ?
		FROM records WHERE record_id = ?`,
		forged.RecordID[:], forged.Seq, forged.ConsentID[:], forged.RecordedAt.UnixMicro(), forged.PrevHash, forged.Hash, after.RecordID[:])
}

// Purging keeps the chain verifiable from a signed checkpoint; a forged
// checkpoint does not verify.
func TestPurgeThenVerify(t *testing.T) {
	db, recs, raw := chain(t, 10)
	keys, err := proof.OpenKeys(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	n, err := db.Purge(context.Background(), "demo", recs[6].RecordedAt.Add(time.Microsecond), keys.SignCheckpoint)
	if err != nil || n < 1 {
		t.Fatalf("purge: %d, %v", n, err)
	}
	res := verify(t, db)
	if !res.OK || res.Records != int64(10-n) {
		t.Fatalf("after purging %d: %+v", n, res)
	}
	// The chain goes on from the checkpoint after a restart, too.
	r := &consent.Record{ConsentID: uuid.New(), Site: "demo", Action: consent.RejectAll, Choices: map[string]bool{"necessary": true}, Revision: 1, ConfigHash: "sha256:x", Language: "nl"}
	if err := db.Append(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	if res := verify(t, db); !res.OK || res.Records != int64(11-n) {
		t.Fatalf("after an append: %+v", res)
	}
	exec(t, raw, `UPDATE checkpoints SET seq = seq - 1`)
	if res := verify(t, db); res.OK || res.Reason != proof.BadCheckpoint {
		t.Errorf("forged checkpoint: %+v", res)
	}
}

func TestPurgeEverythingThenAppend(t *testing.T) {
	db, recs, _ := chain(t, 3)
	keys, _ := proof.OpenKeys(context.Background(), db)
	if _, err := db.Purge(context.Background(), "demo", time.Now().Add(time.Hour), keys.SignCheckpoint); err != nil {
		t.Fatal(err)
	}
	if res := verify(t, db); !res.OK || res.Records != 0 {
		t.Fatalf("empty after purge: %+v", res)
	}
	r := &consent.Record{ConsentID: uuid.New(), Site: "demo", Action: consent.RejectAll, Choices: map[string]bool{"necessary": true}, Revision: 1, ConfigHash: "sha256:x", Language: "nl"}
	if err := db.Append(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	if r.Seq != 4 || string(r.PrevHash) != string(recs[2].Hash) {
		t.Errorf("chain restarted: seq %d", r.Seq)
	}
	if res := verify(t, db); !res.OK || res.Records != 1 {
		t.Fatalf("%+v", res)
	}
}

// A key rotated through one Keys (another instance, or the keys command)
// signs through every other once it refreshes.
func TestKeysRefresh(t *testing.T) {
	db, _, _ := chain(t, 1)
	ctx := context.Background()
	a, err := proof.OpenKeys(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	b, err := proof.OpenKeys(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	if changed, err := b.Refresh(ctx); err != nil || changed {
		t.Fatalf("refresh without a rotation: %v %v", changed, err)
	}
	k, err := a.Rotate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if b.Ring().Current() == k.ID {
		t.Fatal("b signs with the new key before it refreshed")
	}
	if changed, err := b.Refresh(ctx); err != nil || !changed || b.Ring().Current() != k.ID {
		t.Fatalf("after refresh: %v %v, signs with %s, want %s", changed, err, b.Ring().Current(), k.ID)
	}
}
