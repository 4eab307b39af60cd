package consent

import (
	"crypto/aes"
	"crypto/cipher"
	"encoding/binary"
	"fmt"

	"github.com/google/uuid"
)

// Consent IDs are random UUIDv4s, but a B-tree index over random keys
// dirties one page per insert wherever the key lands: at a million records
// every first choice cost one more page written to the WAL, and the POST
// rate fell as the database grew.
//
// So the stores mint consent IDs themselves, as a keyed permutation of a
// time-ordered UUIDv7. The 122 bits of the v7 that are not version or
// variant go through a four-round Feistel network (Luby–Rackoff) whose
// round function is AES-128 under a key the store keeps sealed among its secrets; the
// result, marked version 4, is the consent ID. Without the key its bits are
// pseudorandom (AES of distinct inputs, as in a counter-mode generator);
// with it, the store turns any consent ID back into its v7, and indexes
// that: first choices land at the index's right edge, like the records
// themselves. The permutation is a bijection, so minted IDs never collide.
//
// The index key is derived data: a lookup also compares the consent ID
// itself, so an ID the store never minted (or a key that lost its meaning)
// can only miss, never return another visitor's records.
//
// Every store mints with this one permutation, so an ID minted by one is
// found by another given the same key (a copy from SQLite to PostgreSQL).
type IDs struct {
	block cipher.Block
}

// NewIDs makes the permutation from its 16-byte key.
func NewIDs(key []byte) (IDs, error) {
	b, err := aes.NewCipher(key)
	if err != nil {
		return IDs{}, fmt.Errorf("consent ID key: %w", err)
	}
	return IDs{b}, nil
}

const (
	mask61       = 1<<61 - 1
	feistelRound = 4
)

// Mint turns a fresh UUIDv7 into a consent ID (UUIDv4).
func (c IDs) Mint(v7 uuid.UUID) uuid.UUID {
	l, r := pack(v7)
	buf := new([2 * aes.BlockSize]byte)
	for i := range feistelRound {
		l, r = r, l^c.round(i, r, buf)
	}
	return unpack(l, r, 4)
}

// Key returns the index key of a consent ID: the UUIDv7 it was minted from.
func (c IDs) Key(id uuid.UUID) uuid.UUID {
	l, r := pack(id)
	buf := new([2 * aes.BlockSize]byte)
	for i := feistelRound - 1; i >= 0; i-- {
		l, r = r^c.round(i, l, buf), l
	}
	return unpack(l, r, 7)
}

// round is the Feistel function: 61 bits of AES(round number, half). buf
// is scratch space, one allocation for all rounds.
func (c IDs) round(i int, half uint64, buf *[2 * aes.BlockSize]byte) uint64 {
	in, out := buf[:aes.BlockSize], buf[aes.BlockSize:]
	clear(in)
	in[0] = byte(i)
	binary.BigEndian.PutUint64(in[8:], half)
	c.block.Encrypt(out, in)
	return binary.BigEndian.Uint64(out[:8]) & mask61
}

// pack splits the 122 bits of u that are neither version (bits 48–51) nor
// variant (bits 64–65) into two 61-bit halves.
func pack(u uuid.UUID) (l, r uint64) {
	hi := binary.BigEndian.Uint64(u[:8])
	lo := binary.BigEndian.Uint64(u[8:])
	a := hi>>16<<12 | hi&0xfff // 60 bits
	b := lo & (1<<62 - 1)      // 62 bits
	return a<<1 | b>>61, b & mask61
}

// unpack is pack's inverse, with the given version and the RFC 9562 variant.
func unpack(l, r uint64, version uint64) uuid.UUID {
	a := l >> 1
	b := (l&1)<<61 | r
	var u uuid.UUID
	binary.BigEndian.PutUint64(u[:8], a>>12<<16|version<<12|a&0xfff)
	binary.BigEndian.PutUint64(u[8:], 0b10<<62|b)
	return u
}
