package translog

import (
	"crypto/sha256"

	"golang.org/x/mod/sumdb/tlog"
)

// TreeBuilder computes the RFC 6962 root of leaves added in order, keeping
// only one hash per level: a verifier rebuilds the tree from the entries
// themselves instead of trusting stored hashes.
type TreeBuilder struct {
	stack []subtree
	size  int64
}

type subtree struct {
	hash   tlog.Hash
	leaves int64
}

// Add appends the leaf with this entry.
func (b *TreeBuilder) Add(entry []byte) {
	n := subtree{tlog.RecordHash(entry), 1}
	for len(b.stack) > 0 && b.stack[len(b.stack)-1].leaves == n.leaves {
		left := b.stack[len(b.stack)-1]
		b.stack = b.stack[:len(b.stack)-1]
		n = subtree{tlog.NodeHash(left.hash, n.hash), 2 * n.leaves}
	}
	b.stack = append(b.stack, n)
	b.size++
}

// Size is the number of leaves added.
func (b *TreeBuilder) Size() int64 { return b.size }

// Root is the tree hash of the leaves added so far.
func (b *TreeBuilder) Root() tlog.Hash {
	if len(b.stack) == 0 {
		return sha256.Sum256(nil)
	}
	h := b.stack[len(b.stack)-1].hash
	for i := len(b.stack) - 2; i >= 0; i-- {
		h = tlog.NodeHash(b.stack[i].hash, h)
	}
	return h
}
