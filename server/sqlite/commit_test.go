package sqlite

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/koekje/koekje/server/consent"
	"github.com/koekje/koekje/server/cputime"
	"github.com/koekje/koekje/server/translog"
)

// BenchmarkCommitBatch commits batches of first choices (8, 32 and 128 at
// a time), one batch after the other, with the transparency log guarded
// as serve keeps it: the writer's own work, without the queue. Besides the
// time per record, which is mostly the fsync and so the disk's and the
// machine's, it reports the CPU time the process spent per record
// (cpu-ns/record), which is what a change to the writer's code moves.
func BenchmarkCommitBatch(b *testing.B) {
	for _, size := range []int{8, 32, 128} {
		b.Run(fmt.Sprintf("size=%d", size), func(b *testing.B) {
			benchmarkCommitBatch(b, size)
		})
	}
}

func benchmarkCommitBatch(b *testing.B, size int) {
	db, err := Open(filepath.Join(b.TempDir(), "koekje.db"), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	signer, err := db.StartLog(ctx, "bench/log")
	if err != nil {
		b.Fatal(err)
	}
	guard, err := translog.CheckLogState(ctx, db, db.KeyFile(), nil, signer.VerifierKey(), nil, false)
	if err != nil || guard.Held() {
		b.Fatalf("guard: %v %q", err, guard.Reason())
	}
	db.GuardLog(guard)
	batch := make([]*consent.Record, size)
	var cpu time.Duration
	b.ReportAllocs()
	for n := 0; b.Loop(); n++ {
		if n%size != 0 {
			continue
		}
		for i := range batch {
			batch[i] = &consent.Record{Site: "demo", Action: consent.Custom,
				Choices:  map[string]bool{"necessary": true, "functional": true, "analytics": false, "embeds": false},
				Revision: 1, ConfigHash: "sha256:" + strings.Repeat("ab", 32),
				Language: "nl", URL: "http://127.0.0.1:18181/contact", IP: "127.0.0.0/24",
				UserAgent: "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0.0.0 Safari/537.36"}
		}
		before := cputime.Process()
		if err := db.commit(batch); err != nil {
			b.Fatal(err)
		}
		cpu += cputime.Process() - before
	}
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/record")
}

// A batch's rows go out in INSERTs of a power of two rows each, at most
// maxRowsPerStatement, and all of them.
func TestRowsPerStatement(t *testing.T) {
	for n := 1; n <= 3*maxRowsPerStatement; n++ {
		left, statements := n, 0
		for left > 0 {
			k := rowsPerStatement(left)
			if k < 1 || k > left || k > maxRowsPerStatement || k&(k-1) != 0 {
				t.Fatalf("%d rows waiting: an INSERT of %d", left, k)
			}
			left -= k
			statements++
		}
		if statements > 8+n/maxRowsPerStatement {
			t.Errorf("%d rows took %d statements", n, statements)
		}
	}
	if got := rowsSQL("INSERT INTO t (a, b) VALUES ", "(?, ?)", 3); got != "INSERT INTO t (a, b) VALUES (?, ?), (?, ?), (?, ?)" {
		t.Errorf("rowsSQL: %q", got)
	}
}

// After every batch the writer's copy of the right edge is enough to hash
// the tree and append the next leaf: the next batch reads no hash from the
// table. Checked against the tree hash of the stored hashes.
func TestRecentIsTheRightEdge(t *testing.T) {
	db, err := Open(filepath.Join(t.TempDir(), "koekje.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	if _, err := db.StartLog(ctx, "koekje.test/log"); err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{1, 1, 2, 5, 8, 13, 32, 1, 64, 100} {
		batch := make([]*consent.Record, n)
		for i := range batch {
			batch[i] = &consent.Record{Site: "demo", Action: consent.AcceptAll, Choices: map[string]bool{"necessary": true},
				Revision: 1, ConfigHash: "sha256:" + strings.Repeat("ab", 32), Language: "nl", URL: "https://example.nl/", UserAgent: "test", IP: "192.0.2.0/24"}
		}
		if err := db.commit(batch); err != nil {
			t.Fatal(err)
		}
		st := db.tl
		edge := tlog.HashReaderFunc(func(indexes []int64) ([]tlog.Hash, error) {
			out := make([]tlog.Hash, len(indexes))
			for i, x := range indexes {
				h, ok := st.recent[x]
				if !ok {
					return nil, fmt.Errorf("stored hash %d is not in the right edge kept", x)
				}
				out[i] = h
			}
			return out, nil
		})
		got, err := tlog.TreeHash(st.size, edge)
		if err != nil {
			t.Fatalf("size %d: %v", st.size, err)
		}
		want, err := tlog.TreeHash(st.size, tlog.HashReaderFunc(func(indexes []int64) ([]tlog.Hash, error) {
			return db.LogHashes(ctx, indexes)
		}))
		if err != nil || got != want {
			t.Fatalf("size %d: tree hash %v from the edge, %v from the table (%v)", st.size, got, want, err)
		}
		if _, err := tlog.StoredHashes(st.size, []byte("next"), edge); err != nil {
			t.Fatalf("size %d: the next leaf: %v", st.size, err)
		}
		if len(st.recent) > 64 {
			t.Fatalf("size %d: %d hashes kept", st.size, len(st.recent))
		}
	}
}
