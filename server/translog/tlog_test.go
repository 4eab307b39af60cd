package translog_test

import (
	"bytes"
	"crypto/sha256"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/koekje/koekje/server/translog"
)

func TestTilePaths(t *testing.T) {
	for _, tt := range []struct {
		tile tlog.Tile
		path string
	}{
		{tlog.Tile{H: 8, L: 0, N: 0, W: 256}, "tile/0/000"},
		{tlog.Tile{H: 8, L: 0, N: 1234067, W: 256}, "tile/0/x001/x234/067"},
		{tlog.Tile{H: 8, L: 2, N: 5, W: 7}, "tile/2/005.p/7"},
		{tlog.Tile{H: 8, L: -1, N: 1000, W: 255}, "tile/entries/x001/000.p/255"},
	} {
		if got := translog.TilePath(tt.tile); got != tt.path {
			t.Errorf("%+v: %s, want %s", tt.tile, got, tt.path)
		}
		back, err := translog.ParseTilePath(tt.path)
		if err != nil || back != tt.tile {
			t.Errorf("%s parses to %+v, %v", tt.path, back, err)
		}
	}
	for _, bad := range []string{"tile/0/1", "tile/0/x1/000", "tile/0/000.p/256", "tile/0/000.p/0", "tile/01/000", "tile/-1/000",
		"tile/0/001/000", "tile/0/x000/001", "tile/entries/000.p/007x", "tiles/0/000", "tile/64/000"} {
		if _, err := translog.ParseTilePath(bad); err == nil {
			t.Errorf("%s parsed", bad)
		}
	}
}

func TestEntryBundle(t *testing.T) {
	entries := [][]byte{[]byte("a"), {}, bytes.Repeat([]byte{7}, 300)}
	got, err := translog.ParseEntryBundle(translog.EntryBundle(entries))
	if err != nil || len(got) != 3 || !bytes.Equal(got[2], entries[2]) || len(got[1]) != 0 {
		t.Fatalf("%v %v", got, err)
	}
	if _, err := translog.ParseEntryBundle([]byte{0, 5, 1}); err == nil {
		t.Error("a truncated bundle parsed")
	}
}

// A checkpoint signs and opens; another key or a changed byte does not.
func TestCheckpointSignature(t *testing.T) {
	s, err := translog.NewSigner("consent.example.nl/log", bytes.Repeat([]byte{1}, 32))
	if err != nil {
		t.Fatal(err)
	}
	h := tlog.Hash(sha256.Sum256([]byte("root")))
	signed, err := s.Sign(42, h)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(signed), "consent.example.nl/log\n42\n") {
		t.Fatalf("checkpoint text: %q", signed)
	}
	cp, _, err := translog.OpenCheckpoint(signed, s.VerifierKey())
	if err != nil || cp.Size != 42 || cp.Hash != h || cp.Origin != "consent.example.nl/log" {
		t.Fatalf("%+v %v", cp, err)
	}
	other, _ := translog.NewSigner("consent.example.nl/log", bytes.Repeat([]byte{2}, 32))
	if _, _, err := translog.OpenCheckpoint(signed, other.VerifierKey()); err == nil {
		t.Error("opened with another key")
	}
	forged := bytes.Replace(signed, []byte("\n42\n"), []byte("\n43\n"), 1)
	if _, _, err := translog.OpenCheckpoint(forged, s.VerifierKey()); err == nil {
		t.Error("a changed size verified")
	}
	if _, err := translog.NewSigner("has space", bytes.Repeat([]byte{1}, 32)); err == nil {
		t.Error("an origin with a space was taken")
	}
}

// A leaf commits to a record hash under its salt; another salt or hash, or
// another site's key, gives another leaf.
func TestLeaf(t *testing.T) {
	salt, _ := translog.NewSalt()
	rh := sha256.Sum256([]byte("record"))
	key := []byte("site audit key")
	l := translog.NewLeaf(salt, rh[:], key, 9)
	back, err := translog.ParseLeaf(l.Encode())
	if err != nil || back != l || len(l.Encode()) != translog.LeafSize {
		t.Fatalf("%v %v", back, err)
	}
	salt2, _ := translog.NewSalt()
	rh2 := sha256.Sum256([]byte("other"))
	if translog.NewLeaf(salt2, rh[:], key, 9).Commitment == l.Commitment || translog.NewLeaf(salt, rh2[:], key, 9).Commitment == l.Commitment {
		t.Error("the commitment does not depend on salt and record hash")
	}
	if translog.SiteTag([]byte("other key"), 9) == l.SiteTag || translog.SiteTag(key, 10) == l.SiteTag {
		t.Error("the site tag does not depend on key and index")
	}
	if _, err := translog.ParseLeaf(append([]byte{4}, l.Encode()[1:]...)); err == nil {
		t.Error("a leaf of an unknown kind parsed")
	}
	// A purge's entry: its own kind, and a commitment no record's leaf
	// has for the same salt and hash.
	p := translog.Leaf{Kind: translog.KindPurge, Commitment: translog.CommitPurge(salt, rh[:]), SiteTag: l.SiteTag}
	back, err = translog.ParseLeaf(p.Encode())
	if err != nil || back != p || p.Encode()[0] != 2 || back.Kind.String() != "purge" {
		t.Fatalf("a purge entry read back as %v, %v", back, err)
	}
	if p.Commitment == l.Commitment {
		t.Error("a purge's commitment equals a record's for the same salt and hash")
	}
}

// The builder's root is x/mod's tree hash at every size.
func TestTreeBuilder(t *testing.T) {
	var stored []tlog.Hash
	reader := tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(idx))
		for i, x := range idx {
			out[i] = stored[x]
		}
		return out, nil
	})
	var b translog.TreeBuilder
	for n := int64(0); n < 300; n++ {
		entry := []byte{byte(n), byte(n >> 8)}
		hs, err := tlog.StoredHashes(n, entry, reader)
		if err != nil {
			t.Fatal(err)
		}
		stored = append(stored, hs...)
		b.Add(entry)
		want, err := tlog.TreeHash(n+1, reader)
		if err != nil {
			t.Fatal(err)
		}
		if b.Root() != want || b.Size() != n+1 {
			t.Fatalf("size %d: builder root differs from the tree hash", n+1)
		}
	}
}

// Every witness key reads back, those whose base64 holds a + too, and its
// cosignature verifies on the text it signed only.
func TestCosignerKeys(t *testing.T) {
	plus := 0
	for i := range 64 {
		c, err := translog.NewCosigner("witness.test", bytes.Repeat([]byte{byte(i)}, 32))
		if err != nil {
			t.Fatal(err)
		}
		key := c.VerifierKey()
		if strings.Contains(strings.SplitN(key, "+", 3)[2], "+") {
			plus++
		}
		v, err := translog.NewCosignatureVerifier(key)
		if err != nil {
			t.Fatalf("%s: %v", key, err)
		}
		if v.Name() != "witness.test" {
			t.Fatalf("name %q", v.Name())
		}
	}
	if plus == 0 {
		t.Fatal("no key with a + in its base64 was tried")
	}
	log, _ := translog.NewSigner("koekje.test/log", bytes.Repeat([]byte{1}, 32))
	c, _ := translog.NewCosigner("witness.test", bytes.Repeat([]byte{9}, 32))
	signed, _ := log.Sign(3, tlog.Hash{1})
	line := c.Cosign("koekje.test/log\n3\n"+strings.Split(string(signed), "\n")[2]+"\n", time.Unix(1700000000, 0))
	if _, names, err := translog.OpenWitnessed(append(append([]byte{}, signed...), line...), log.VerifierKey(), []string{c.VerifierKey()}); err != nil || len(names) != 1 {
		t.Fatalf("cosigned checkpoint: %v %v", names, err)
	}
	other, _ := log.Sign(4, tlog.Hash{1})
	if _, _, err := translog.OpenWitnessed(append(append([]byte{}, other...), line...), log.VerifierKey(), []string{c.VerifierKey()}); err == nil {
		t.Error("a cosignature verified on another checkpoint")
	}
}

// A batch's salts differ from index to index and from batch to batch, and
// each stands alone once made.
func TestSalts(t *testing.T) {
	a, err := translog.NewSalts()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := translog.NewSalts()
	seen := map[string]bool{}
	for i := int64(0); i < 1000; i++ {
		for _, s := range [][]byte{a.For(i), b.For(i)} {
			if len(s) != translog.SaltSize || seen[string(s)] {
				t.Fatalf("salt %d: %d bytes, repeated %v", i, len(s), seen[string(s)])
			}
			seen[string(s)] = true
		}
	}
	first := append([]byte{}, a.For(7)...)
	a.For(8)
	if !bytes.Equal(a.For(7), first) {
		t.Error("a salt changed when the next was made")
	}
}
