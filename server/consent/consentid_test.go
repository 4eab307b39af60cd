package consent

import (
	"bytes"
	"math/bits"
	"testing"

	"github.com/google/uuid"
)

func testIDs(t *testing.T) IDs {
	t.Helper()
	ids, err := NewIDs(bytes.Repeat([]byte{7}, 16))
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

func TestPackUnpack(t *testing.T) {
	for range 1000 {
		u := uuid.New()
		if got := unpackV4(pack(u)); got != u {
			// pack drops version 4 and the variant; unpack puts them back.
			t.Fatalf("unpack(pack(%s)) = %s", u, got)
		}
	}
}

// unpackV4 lets TestPackUnpack call unpack with pack's two results.
func unpackV4(l, r uint64) uuid.UUID { return unpack(l, r, 4) }

func TestMintedIDsAreV4AndInvertible(t *testing.T) {
	ids := testIDs(t)
	var prev uuid.UUID
	seen := map[uuid.UUID]bool{}
	for range 1000 {
		v7, err := uuid.NewV7()
		if err != nil {
			t.Fatal(err)
		}
		id := ids.Mint(v7)
		if id.Version() != 4 || id.Variant() != uuid.RFC4122 {
			t.Fatalf("minted %s: version %d, variant %v", id, id.Version(), id.Variant())
		}
		if id == v7 || seen[id] {
			t.Fatalf("minted %s twice or unchanged", id)
		}
		seen[id] = true
		key := ids.Key(id)
		if key != v7 {
			t.Fatalf("key(mint(%s)) = %s", v7, key)
		}
		if bytes.Compare(key[:], prev[:]) <= 0 {
			t.Fatalf("keys out of order: %s after %s", key, prev)
		}
		prev = key
	}
}

// Any version 4 ID, minted here or not, has exactly one key, and minting
// that key gives the ID back: the permutation covers all of v4's space.
func TestKeyOfAnyV4(t *testing.T) {
	ids := testIDs(t)
	for range 1000 {
		id := uuid.New()
		key := ids.Key(id)
		if key.Version() != 7 {
			t.Fatalf("key of %s is version %d", id, key.Version())
		}
		if got := ids.Mint(key); got != id {
			t.Fatalf("mint(key(%s)) = %s", id, got)
		}
	}
}

// Consent IDs minted from consecutive UUIDv7s must not show their order:
// every one of the 122 free bits is set in about half of them, and two
// neighbours differ in about half their bits.
func TestMintedIDsLookRandom(t *testing.T) {
	ids := testIDs(t)
	const n = 20000
	var ones [128]int
	var diff int
	var prev uuid.UUID
	for i := range n {
		v7, _ := uuid.NewV7()
		id := ids.Mint(v7)
		for b := range 128 {
			if id[b/8]>>(7-b%8)&1 == 1 {
				ones[b]++
			}
		}
		if i > 0 {
			for j := range id {
				diff += bits.OnesCount8(id[j] ^ prev[j])
			}
		}
		prev = id
	}
	for b, c := range ones {
		if b >= 48 && b < 52 || b == 64 || b == 65 {
			continue // version and variant
		}
		// 20,000 fair coins: 5 standard deviations is about ±354.
		if c < n/2-400 || c > n/2+400 {
			t.Errorf("bit %d set in %d of %d IDs", b, c, n)
		}
	}
	if avg := float64(diff) / (n - 1); avg < 58 || avg > 64 {
		t.Errorf("neighbouring IDs differ in %.1f bits on average, want about 61", avg)
	}
}

func BenchmarkMint(b *testing.B) {
	ids, _ := NewIDs(make([]byte, 16))
	v7, _ := uuid.NewV7()
	for b.Loop() {
		v7 = ids.Key(ids.Mint(v7))
	}
}
