package proof

import (
	"context"
	"fmt"
	"time"

	"github.com/koekje/koekje/server/consent"
	klog "github.com/koekje/koekje/server/tlog"
)

// Reasons a site does not verify against the transparency log.
const (
	LogMismatch = "log_mismatch" // the database's log is not the one the reference checkpoint signed
	NotInLog    = "not_in_log"   // a record has no leaf: it was slipped in after the fact
	LogMissing  = "missing"      // a leaf of the site has no record and was never purged: deleted
)

// LogStore is what checking a site against the log reads.
type LogStore interface {
	// Checkpoints returns the site's purge checkpoints, newest first.
	Checkpoints(ctx context.Context, site string) ([]*consent.Checkpoint, error)
	// LatestCheckpoint returns the newest signed checkpoint, or nil.
	LatestCheckpoint(ctx context.Context) ([]byte, error)
	// LogLeaves calls fn for each leaf in index order.
	LogLeaves(ctx context.Context, fn func(*klog.LeafRecord) error) error
}

// LogResult is what the log says of a site.
type LogResult struct {
	Origin string `json:"origin"`
	Size   int64  `json:"size"` // of the reference checkpoint
	// Reference names the checkpoint the database was held against: one the
	// caller kept (or a witness cosigned), or only the database's own newest,
	// which proves nothing against whoever controls the database.
	Reference string `json:"reference"`
	Leaves    int64  `json:"leaves"`        // of this site, in the whole log
	Purged    int64  `json:"purged_leaves"` // of those, whose records a purge removed
	// Pending counts the site's newest records that are committed but not
	// in the log yet: on PostgreSQL the integrator takes records in within
	// moments of their commit. Only the chain's newest records may wait.
	Pending int64       `json:"pending_records,omitempty"`
	Purges  []PurgeView `json:"purges,omitempty"`
}

// PendingStore is a store whose records reach the log after their commit
// (PostgreSQL): it counts those still waiting.
type PendingStore interface {
	// LogPending counts site's records up to sequence through that are
	// queued for the log and have no leaf yet.
	LogPending(ctx context.Context, site string, through int64) (int64, error)
}

// PurgeView is a purge as an auditor reads it.
type PurgeView struct {
	ThroughSeq  int64     `json:"through_sequence"`
	ThroughLeaf *int64    `json:"through_leaf,omitempty"`
	At          time.Time `json:"at"`
	KeyID       string    `json:"key_id"`
}

// References for LogResult.Reference.
const (
	ReferenceGiven    = "given checkpoint"
	ReferenceDatabase = "the database's own newest checkpoint"
)

// VerifyLog holds a site whose chain verified (res, from Verify) against the
// transparency log: the database's log must be the log the reference
// checkpoint signed (rebuilt from its entries, not from stored hashes),
// every record of the site must be its leaf's commitment, and every leaf the
// site's audit key tags must have its record, unless a purge removed it
// (purges remove the oldest records, so such leaves all come first).
// ref is a signed checkpoint the caller trusts; nil uses the database's own.
func VerifyLog(ctx context.Context, store LogStore, res *Result, logKey string, auditKey, ref []byte) error {
	if !res.OK {
		return nil
	}
	reference := ReferenceGiven
	if ref == nil {
		reference = ReferenceDatabase
		var err error
		if ref, err = store.LatestCheckpoint(ctx); err != nil || ref == nil {
			return err
		}
	}
	cp, _, err := klog.OpenCheckpoint(ref, logKey)
	if err != nil {
		res.OK, res.Reason, res.Detail = false, LogMismatch, err.Error()
		return nil
	}
	out := &LogResult{Origin: cp.Origin, Size: cp.Size, Reference: reference}
	purges, err := store.Checkpoints(ctx, res.Site)
	if err != nil {
		return err
	}
	// Counted before the leaves are read: a record integrated in between
	// is then both pending and recorded, never neither.
	var pending int64
	if ps, ok := store.(PendingStore); ok {
		if pending, err = ps.LogPending(ctx, res.Site, res.last); err != nil {
			return err
		}
	}
	var purgedThrough int64 = -1
	for i, p := range purges {
		out.Purges = append(out.Purges, PurgeView{ThroughSeq: p.Seq, ThroughLeaf: p.LogIndex, At: p.CreatedAt, KeyID: p.KeyID})
		if i == 0 && p.LogIndex != nil {
			purgedThrough = *p.LogIndex
		}
	}
	fail := func(seq int64, reason, detail string) error {
		res.OK, res.Seq, res.Reason, res.Detail = false, seq, reason, detail
		return errStop
	}
	var (
		tree     klog.TreeBuilder
		recorded int64 // records of the site that have a leaf
		lastSeq  int64 // the sequence number of the last of those
		rootOK   = cp.Size == 0
		tagger   = klog.NewSiteTagger(auditKey)
		commit   klog.Committer
	)
	// A purge removes a site's oldest records: once a leaf of the site has
	// its record, no later leaf of the site may lack one.
	err = store.LogLeaves(ctx, func(l *klog.LeafRecord) error {
		if l.Index != tree.Size() {
			return fail(0, LogMismatch, fmt.Sprintf("leaf %d is missing from the database's log", tree.Size()))
		}
		tree.Add(l.Entry)
		if tree.Size() == cp.Size {
			rootOK = tree.Root() == cp.Hash
			if !rootOK {
				return fail(0, LogMismatch, fmt.Sprintf("the database's first %d leaves are not the log the checkpoint signed", cp.Size))
			}
		}
		leaf, err := klog.ParseLeaf(l.Entry)
		if err != nil {
			return fail(0, LogMismatch, fmt.Sprintf("leaf %d: %v", l.Index, err))
		}
		ours := leaf.SiteTag == tagger.Tag(l.Index)
		switch {
		case l.Site == res.Site && !ours:
			return fail(l.Seq, NotInLog, fmt.Sprintf("its leaf %d belongs to another site", l.Index))
		case l.Site == res.Site && l.Seq > res.last:
			// A record committed after the chain was walked.
		case l.Site == res.Site:
			out.Leaves++
			recorded++
			if commit.Commit(l.Salt, l.RecordHash) != leaf.Commitment {
				return fail(l.Seq, Altered, fmt.Sprintf("it is not the record its leaf %d commits to", l.Index))
			}
			if lastSeq != 0 && l.Seq != lastSeq+1 {
				return fail(l.Seq, NotInLog, fmt.Sprintf("its leaf %d follows the leaf of record %d, not of record %d", l.Index, lastSeq, l.Seq-1))
			}
			lastSeq = l.Seq
		case ours && l.Site == "" && l.Index <= purgedThrough && recorded == 0:
			out.Leaves++
			out.Purged++
		case ours:
			return fail(0, LogMissing, fmt.Sprintf("leaf %d of this site has no record, and no purge removed it", l.Index))
		}
		return nil
	})
	switch {
	case err == errStop:
		return nil
	case err != nil:
		return err
	case tree.Size() < cp.Size:
		return failNow(res, LogMismatch, fmt.Sprintf("the database's log has %d leaves; the checkpoint signed %d", tree.Size(), cp.Size))
	case !rootOK:
		return failNow(res, LogMismatch, "the database's log is not the log the checkpoint signed")
	case recorded+pending < res.Records:
		return failNow(res, NotInLog, fmt.Sprintf("%d of the site's %d records have no leaf in the log", res.Records-recorded, res.Records))
	case recorded > 0 && lastSeq+res.Records-recorded != res.last:
		return failNow(res, NotInLog, fmt.Sprintf("the records without a leaf are not the chain's newest: the last leaf is of record %d of %d", lastSeq, res.last))
	}
	out.Pending = res.Records - recorded
	res.Log = out
	return nil
}

func failNow(res *Result, reason, detail string) error {
	res.OK, res.Reason, res.Detail = false, reason, detail
	return nil
}
