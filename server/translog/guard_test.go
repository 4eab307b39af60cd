package translog_test

import (
	"bytes"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/koekje/koekje/server/keyfile"
	"github.com/koekje/koekje/server/translog"
)

// The guard lets a store sign on only from a tree that extends the
// reference: a smaller tree or another one of the same size holds it, with
// one ERROR line per change of why, and a tree that extends it again lets
// go, with one INFO line. A tree the store signed itself needs no proof.
func TestGuard(t *testing.T) {
	t.Parallel()
	kek, err := keyfile.Create(filepath.Join(t.TempDir(), "k.key"))
	if err != nil {
		t.Fatal(err)
	}
	var stored []tlog.Hash
	hashes := tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(idx))
		for i, x := range idx {
			out[i] = stored[x]
		}
		return out, nil
	})
	leaves := int64(0)
	grow := func(to int64) {
		for ; leaves < to; leaves++ {
			hs, err := tlog.StoredHashes(leaves, []byte{byte(leaves)}, hashes)
			if err != nil {
				t.Fatal(err)
			}
			stored = append(stored, hs...)
		}
	}
	grow(10)
	root10, _ := tlog.TreeHash(10, hashes)
	ref, err := translog.OpenReference(kek)
	if err != nil {
		t.Fatal(err)
	}
	if err := ref.Accept(translog.Checkpoint{Origin: "o", Size: 10, Hash: root10}); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	g := translog.NewGuard(ref, slog.New(slog.NewJSONHandler(&logs, nil)))
	if !g.Allow("o", 10, hashes) || g.Held() {
		t.Fatalf("the reference's own tree: held because %q", g.Reason())
	}
	for range 2 {
		if g.Allow("o", 7, hashes) {
			t.Error("a tree smaller than the reference was allowed")
		}
	}
	if why := g.Reason(); !strings.Contains(why, "the database holds 7 leaves, the reference 10") {
		t.Errorf("held because %q", why)
	}
	grow(12)
	if !g.Allow("o", 12, hashes) || g.Held() {
		t.Errorf("a tree that extends the reference: held because %q", g.Reason())
	}
	if n := strings.Count(logs.String(), `"level":"ERROR"`); n != 1 {
		t.Errorf("%d ERROR lines for one change, want 1:\n%s", n, logs.String())
	}
	if n := strings.Count(logs.String(), `"level":"INFO","msg":"the log extends what this server signed before again`); n != 1 {
		t.Errorf("%d INFO lines when it let go, want 1:\n%s", n, logs.String())
	}
	// Another tree of the reference's size (a rewritten tail) holds it,
	// even after the store signed a tree of another size.
	g.Signed(translog.Checkpoint{Origin: "o", Size: 12})
	stored[tlog.StoredHashIndex(1, 4)][0] ^= 1 // leaves 8 and 9, rewritten
	if g.Allow("o", 10, hashes) {
		t.Error("a rewritten tail was allowed")
	}
	if why := g.Reason(); !strings.Contains(why, "another tree of 10 leaves") {
		t.Errorf("held because %q", why)
	}
}
