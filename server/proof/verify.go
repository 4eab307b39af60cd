package proof

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"

	"github.com/google/uuid"

	"github.com/koekje/koekje/server/consent"
)

// Reasons a chain does not verify.
const (
	Altered       = "altered"    // a record's fields no longer match its hash
	Missing       = "missing"    // a record the chain links to is gone
	Reordered     = "reordered"  // records are in another order than they were written
	Inserted      = "inserted"   // a record was put in that the chain never linked to
	BadCheckpoint = "checkpoint" // the purge checkpoint's signature does not verify
)

// Result is the outcome of a verification.
type Result struct {
	OK      bool   `json:"ok"`
	Site    string `json:"site"`
	Records int64  `json:"records"`
	Head    string `json:"head,omitempty"` // hex hash of the last record
	// Set when OK is false: the first bad record and why.
	RecordID *uuid.UUID `json:"record_id,omitempty"`
	Seq      int64      `json:"sequence,omitempty"`
	Reason   string     `json:"reason,omitempty"`
	Detail   string     `json:"detail,omitempty"`
	// Log is what the transparency log says, when the site was held against it.
	Log *LogResult `json:"log,omitempty"`

	last int64 // sequence number of the last record verified
}

// Chain is what verification reads of a store.
type Chain interface {
	// Chain calls fn for each record of site in sequence order.
	Chain(ctx context.Context, site string, fn func(*consent.Record) error) error
	// FindHash returns the sequence number of the record of site with this hash.
	FindHash(ctx context.Context, site string, hash []byte) (int64, bool, error)
	// LastCheckpoint returns the newest purge checkpoint of site, or nil.
	LastCheckpoint(ctx context.Context, site string) (*consent.Checkpoint, error)
}

// errStop ends a walk once the first bad record is found.
var errStop = errors.New("stop")

// Verify walks a site's chain in sequence order, from its last checkpoint
// (whose signature must verify against keys) or from the start, and reports
// the first record that is altered, missing, reordered or inserted.
func Verify(ctx context.Context, l Chain, site string, keys []ed25519.PublicKey, keyIDs []string) (*Result, error) {
	res := &Result{Site: site}
	var (
		prev     []byte // hash the next record must link to
		prevRec  *consent.Record
		expected int64           = 1
		pending  *consent.Record // a record whose link broke, waiting for the next one
	)
	cp, err := l.LastCheckpoint(ctx, site)
	if err != nil {
		return nil, err
	}
	if cp != nil {
		if !checkpointValid(cp, keys, keyIDs) {
			res.Reason, res.Seq, res.Detail = BadCheckpoint, cp.Seq, "the purge checkpoint's signature does not verify"
			return res, nil
		}
		prev, expected = cp.Hash, cp.Seq+1
	}
	fail := func(r *consent.Record, reason, detail string) error {
		id := r.RecordID
		res.RecordID, res.Seq, res.Reason, res.Detail = &id, r.Seq, reason, detail
		return errStop
	}
	// explain classifies a broken link at r, the record after it being next
	// (nil at the end of the chain).
	explain := func(r, next *consent.Record) error {
		seq, found, err := l.FindHash(ctx, site, r.PrevHash)
		if err != nil {
			return err
		}
		switch {
		case found && seq > r.Seq:
			return fail(r, Reordered, fmt.Sprintf("it links to record %d, which comes after it", seq))
		case next != nil && bytes.Equal(next.PrevHash, prev):
			return fail(r, Inserted, "the chain links past it")
		case found && seq < r.Seq && prevRec != nil:
			return fail(prevRec, Inserted, fmt.Sprintf("record %d links past it to record %d", r.Seq, seq))
		}
		return fail(r, Missing, "the record it links to is gone")
	}
	err = l.Chain(ctx, site, func(r *consent.Record) error {
		if pending != nil {
			return explain(pending, r)
		}
		if !bytes.Equal(consent.RecordHash(r), r.Hash) {
			return fail(r, Altered, "its fields do not match its hash")
		}
		if r.Seq != expected && !bytes.Equal(r.PrevHash, prev) {
			if r.Seq > expected {
				return fail(r, Missing, fmt.Sprintf("records %d to %d are gone", expected, r.Seq-1))
			}
		}
		if !bytes.Equal(r.PrevHash, prev) {
			pending = r
			return nil
		}
		res.Records++
		res.last = r.Seq
		prev, prevRec, expected = r.Hash, r, r.Seq+1
		return nil
	})
	if err == nil && pending != nil {
		err = explain(pending, nil)
	}
	switch {
	case errors.Is(err, errStop):
		return res, nil
	case err != nil:
		return nil, err
	}
	res.OK = true
	if prev != nil {
		res.Head = fmt.Sprintf("%x", prev)
	}
	return res, nil
}

// Counting is c with each record its walks read counted into add, for
// progress on a long verification.
func Counting(c Chain, add func(n int64)) Chain { return countingChain{c, add} }

type countingChain struct {
	c   Chain
	add func(int64)
}

func (c countingChain) Chain(ctx context.Context, site string, fn func(*consent.Record) error) error {
	return c.c.Chain(ctx, site, func(r *consent.Record) error { c.add(1); return fn(r) })
}

func (c countingChain) FindHash(ctx context.Context, site string, hash []byte) (int64, bool, error) {
	return c.c.FindHash(ctx, site, hash)
}

func (c countingChain) LastCheckpoint(ctx context.Context, site string) (*consent.Checkpoint, error) {
	return c.c.LastCheckpoint(ctx, site)
}
