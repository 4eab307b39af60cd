// Package translog is Koekje's transparency log: one Merkle tree (RFC 6962
// hashing) per deployment over salted commitments to record hashes, with
// signed checkpoints and tiles in the C2SP formats (tlog-checkpoint,
// signed-note, tlog-tiles) that the Go checksum database and Certificate
// Transparency use. Its leaves hold no personal data. Hashes, tiles and
// proofs come from golang.org/x/mod/sumdb/tlog; this package adds the leaf
// format, the checkpoint text, tile paths and the checks an auditor runs.
package translog

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"hash"
)

// Leaf format koekje-leaf-v1, 49 bytes:
//
//	kind       byte              0x01: a record's leaf; 0x02: a purge's entry; 0x03: a scan's
//	commitment [32]byte          0x01: SHA-256("koekje-commitment-v1\x00" ‖ salt ‖ record hash)
//	                             0x02: SHA-256("koekje-purge-v1\x00" ‖ salt ‖ purge statement hash)
//	                             0x03: SHA-256("koekje-scan-v1\x00" ‖ salt ‖ scan statement hash)
//	site tag   [16]byte          HMAC-SHA256(site audit key, "koekje-site-tag-v1\x00" ‖ uint64 index)[:16]
//
// A successor log's statement (kind 0x04) is not such a leaf: its entry
// is the byte 0x04 and the statement's text (successor.go), public to
// anyone who reads the tiles.
//
// A purge's entry commits to the signed checkpoint a purge leaves in the
// site's chain (its statement: proof.PurgeStatement), so that the log
// itself says a retention purge happened there, and when, for whoever
// holds the site's audit key; to anyone else it is as opaque as a record's
// leaf, and its kind says only that some site purged.
//
// The salt (32 random bytes per record) is kept beside the record and
// deleted with it: without it the commitment names nothing. The site tag
// lets the holder of a site's audit key find that site's leaves, and only
// those, so an auditor can check that no record of the site went missing;
// to anyone else tags are random.
const (
	LeafSize    = 1 + 32 + SiteTagSize
	SiteTagSize = 16
	SaltSize    = 32
)

// LeafKind is what a leaf commits to: its first byte.
type LeafKind byte

// The kinds of leaf.
const (
	KindRecord LeafKind = 1 // a consent record
	KindPurge  LeafKind = 2 // a retention purge's statement
	KindScan   LeafKind = 3 // a recorded scan's statement
	// KindSuccessor is a successor log's statement (Successor): the entry
	// is the statement itself, not a 49-byte leaf, so that it is public.
	KindSuccessor LeafKind = 4
)

func (k LeafKind) String() string {
	switch k {
	case KindRecord:
		return "record"
	case KindPurge:
		return "purge"
	case KindScan:
		return "scan"
	case KindSuccessor:
		return "successor"
	}
	return fmt.Sprintf("kind %d", byte(k))
}

const (
	purgeTag      = "koekje-purge-v1\x00"
	scanTag       = "koekje-scan-v1\x00"
	commitmentTag = "koekje-commitment-v1\x00"
	siteTagTag    = "koekje-site-tag-v1\x00"
)

// Leaf is one entry of the log.
type Leaf struct {
	Kind       LeafKind // KindRecord when zero
	Commitment [32]byte
	SiteTag    [SiteTagSize]byte
}

// NewSalt returns a fresh salt for a record's commitment.
func NewSalt() ([]byte, error) {
	s := make([]byte, SaltSize)
	_, err := rand.Read(s)
	return s, err
}

// Salts makes the salts of one batch from one random seed: the salt of the
// leaf at index is SHA-256("koekje-salt-v1\0" ‖ seed ‖ uint64 index). The
// seed is never stored, so each salt is as unpredictable as a random one,
// and deleting a salt unlinks its leaf as before; a batch costs one read
// of the system's randomness instead of one per record.
type Salts struct{ buf []byte }

// NewSalts draws a batch's seed.
func NewSalts() (*Salts, error) {
	seed, err := NewSalt()
	if err != nil {
		return nil, err
	}
	return &Salts{buf: append([]byte("koekje-salt-v1\x00"), seed...)}, nil
}

// For returns the salt of the leaf at index.
func (s *Salts) For(index int64) []byte {
	sum := sha256.Sum256(binary.BigEndian.AppendUint64(s.buf[:len(s.buf):len(s.buf)], uint64(index)))
	return sum[:]
}

// Commit is the commitment to a record hash under salt.
func Commit(salt, recordHash []byte) [32]byte {
	var c Committer
	return c.Commit(salt, recordHash)
}

// Committer makes commitments, reusing its buffer: a verifier makes one a
// record.
type Committer struct{ buf []byte }

// Commit is the commitment to a record hash under salt.
func (c *Committer) Commit(salt, recordHash []byte) [32]byte {
	c.buf = append(append(append(c.buf[:0], commitmentTag...), salt...), recordHash...)
	return sha256.Sum256(c.buf)
}

// CommitPurge is the commitment of a purge's entry to its statement's hash
// under salt.
func CommitPurge(salt, statementHash []byte) [32]byte {
	return sha256.Sum256(append(append([]byte(purgeTag), salt...), statementHash...))
}

// Commit is the commitment of a leaf of kind k to what (a record's hash, a
// purge's statement hash) under salt.
func (k LeafKind) Commit(salt, what []byte) [32]byte {
	switch k {
	case KindPurge:
		return CommitPurge(salt, what)
	case KindScan:
		return sha256.Sum256(append(append([]byte(scanTag), salt...), what...))
	}
	return Commit(salt, what)
}

// SiteTag is the tag of the leaf at index under a site's audit key.
func SiteTag(auditKey []byte, index int64) [SiteTagSize]byte {
	return NewSiteTagger(auditKey).Tag(index)
}

// SiteTagger tags one site's leaves, reusing its MAC.
type SiteTagger struct {
	m   hash.Hash
	buf []byte
}

// NewSiteTagger makes the tagger of the site with this audit key.
func NewSiteTagger(auditKey []byte) *SiteTagger {
	return &SiteTagger{m: hmac.New(sha256.New, auditKey)}
}

// Tag is the site tag of the leaf at index.
func (s *SiteTagger) Tag(index int64) [SiteTagSize]byte {
	s.m.Reset()
	s.buf = binary.BigEndian.AppendUint64(append(s.buf[:0], siteTagTag...), uint64(index))
	s.m.Write(s.buf)
	var sum [sha256.Size]byte
	var t [SiteTagSize]byte
	copy(t[:], s.m.Sum(sum[:0]))
	return t
}

// NewLeaf makes the leaf at index for a record hash.
func NewLeaf(salt, recordHash, auditKey []byte, index int64) Leaf {
	return Leaf{Kind: KindRecord, Commitment: Commit(salt, recordHash), SiteTag: SiteTag(auditKey, index)}
}

// Encode returns the leaf's entry bytes (koekje-leaf-v1).
func (l Leaf) Encode() []byte {
	b := make([]byte, 0, LeafSize)
	kind := l.Kind
	if kind == 0 {
		kind = KindRecord
	}
	b = append(b, byte(kind))
	b = append(b, l.Commitment[:]...)
	return append(b, l.SiteTag[:]...)
}

// ParseLeaf reads an entry of any kind. A successor statement's is a leaf
// of its kind alone, with neither commitment nor site tag: ParseSuccessor
// reads the statement.
func ParseLeaf(b []byte) (Leaf, error) {
	var l Leaf
	if len(b) > 0 && LeafKind(b[0]) == KindSuccessor {
		if _, err := ParseSuccessor(b); err != nil {
			return l, err
		}
		l.Kind = KindSuccessor
		return l, nil
	}
	if len(b) != LeafSize || LeafKind(b[0]) < KindRecord || LeafKind(b[0]) > KindScan {
		return l, fmt.Errorf("not a koekje-leaf-v1 entry (%d bytes)", len(b))
	}
	l.Kind = LeafKind(b[0])
	copy(l.Commitment[:], b[1:33])
	copy(l.SiteTag[:], b[33:])
	return l, nil
}

// StoredLeaf is what a store keeps of a record's leaf.
type StoredLeaf struct {
	Index int64
	Salt  []byte // nil once the record was purged
	Entry []byte
}

// LeafRecord is a leaf as verification reads it from a store: its entry,
// and the record it commits to, if that record is still there.
type LeafRecord struct {
	Index      int64
	Entry      []byte
	Salt       []byte // nil once purged
	Site       string // of the record; "" once purged
	Seq        int64
	RecordHash []byte
	// Claimed is the site the database names for the leaf, kept after a
	// purge: a hint for finding whose a record-less leaf is, which only its
	// site tag confirms.
	Claimed string
}
