package proof

import (
	"context"
	"fmt"
	"time"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/koekje/koekje/server/consent"
	"github.com/koekje/koekje/server/translog"
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
	LogLeaves(ctx context.Context, fn func(*translog.LeafRecord) error) error
	// EarlierLogKeys returns the verifier keys of the names the log had
	// before it succeeded them, oldest first.
	EarlierLogKeys(ctx context.Context) ([]string, error)
	ScanLog
}

// LogResult is what the log says of a site.
type LogResult struct {
	Origin string `json:"origin"`
	Size   int64  `json:"size"` // of the reference checkpoint
	// Reference names the checkpoint the database was held against: one the
	// caller kept (or a witness cosigned), or only the database's own newest,
	// which proves nothing against whoever controls the database.
	Reference string `json:"reference"`
	// ReferenceSize is the size of the kept reference the checkpoint was
	// proven to extend, with ReferenceKept.
	ReferenceSize int64 `json:"reference_size,omitempty"`
	Leaves        int64 `json:"leaves"`        // of this site, in the whole log
	Purged        int64 `json:"purged_leaves"` // of those, whose records a purge removed
	// PurgeEntries counts the site's purge entries in the log, each the
	// commitment to one of its purge checkpoints.
	PurgeEntries int64 `json:"purge_entries"`
	// ScanEntries counts the site's recorded scans in the log, each the
	// commitment to one stored scan and its report.
	ScanEntries int64 `json:"scan_entries"`
	// Pending counts the site's newest records that are committed but not
	// in the log yet: on PostgreSQL the integrator takes records in within
	// moments of their commit. Only the chain's newest records may wait.
	Pending int64       `json:"pending_records,omitempty"`
	Purges  []PurgeView `json:"purges,omitempty"`
	// Successions are the successor statements the log holds: where it
	// took over from a log of an earlier name, and what of it it lacks.
	Successions []Succession `json:"successions,omitempty"`
}

// Succession is a successor statement in the log (translog.Successor), as
// verify checked it.
type Succession struct {
	Entry           int64  `json:"entry"` // its leaf: the old log's leaves before it are carried
	Predecessor     string `json:"predecessor"`
	PredecessorSize int64  `json:"predecessor_size"` // of the old log's last checkpoint
	// Lost names the old log's leaves this log does not hold, "" for none.
	Lost string `json:"lost,omitempty"`
	// Checked says what was proven of the carried leaves.
	Checked string `json:"checked"`
}

// PendingStore is a store whose records reach the log after their commit
// (PostgreSQL): it counts those still waiting.
type PendingStore interface {
	// LogPending counts site's records up to sequence through that are
	// queued for the log and have no leaf yet.
	LogPending(ctx context.Context, site string, through int64) (int64, error)
}

// ScanLog is a store whose recorded scans have entries in the log: each
// entry is held to its scan and report.
type ScanLog interface {
	// ScanEntries calls fn with each of site's scans that has an entry in
	// the log, with its report.
	ScanEntries(ctx context.Context, site string, fn func(*consent.Scan) error) error
}

// scanEntry is what the pass holds a scan's entry to.
type scanEntry struct {
	id        string
	salt      []byte
	statement []byte
}

// PurgeView is a purge as an auditor reads it.
type PurgeView struct {
	ThroughSeq  int64  `json:"through_sequence"`
	ThroughLeaf *int64 `json:"through_leaf,omitempty"`
	// Entry is the purge's own entry in the log.
	Entry *int64    `json:"entry,omitempty"`
	At    time.Time `json:"at"`
	KeyID string    `json:"key_id"`
}

// References for LogResult.Reference.
const (
	ReferenceGiven    = "given checkpoint"
	ReferenceDatabase = "the database's own newest checkpoint"
	// ReferenceKept is the database's newest checkpoint once proven to
	// extend the log reference the server keeps beside its key file,
	// outside the database (translog.Reference).
	ReferenceKept = "the database's newest checkpoint, proven to extend the log reference kept outside the database"
)

// VerifyLog holds a site whose chain verified (res, from Verify) against the
// transparency log: the database's log must be the log the reference
// checkpoint signed (rebuilt from its entries, not from stored hashes),
// every record of the site must be its leaf's commitment, and every leaf the
// site's audit key tags must have its record, unless a purge removed it
// (purges remove the oldest records, so such leaves all come first).
// ref is a signed checkpoint the caller trusts; nil uses the database's own.
func VerifyLog(ctx context.Context, store LogStore, res *Result, logKey string, auditKey, ref []byte) error {
	return VerifyLogSites(ctx, store, []*Result{res}, logKey, [][]byte{auditKey}, ref)
}

// siteLog is one site's state in VerifyLogSites' pass over the leaves.
type siteLog struct {
	res           *Result
	out           *LogResult
	tagger        *translog.SiteTagger
	purgedThrough int64 // the newest purge's last leaf, or -1
	pending       int64 // records queued for the log, counted before the pass
	recorded      int64 // records of the site that have a leaf
	lastSeq       int64 // the sequence number of the last of those
	done          bool  // failed: later leaves say nothing more
	// entries are the site's purge checkpoints by the index of their
	// entry in the log, until the pass meets the entry.
	entries map[int64]*consent.Checkpoint
	// scans are the site's recorded scans by the index of their entry.
	scans map[int64]scanEntry
}

// fail records why the site does not verify.
func (st *siteLog) fail(seq int64, reason, detail string) {
	st.res.OK, st.res.Seq, st.res.Reason, st.res.Detail = false, seq, reason, detail
	st.done = true
}

// VerifyLogSites is VerifyLog for many sites (results[i] with auditKeys[i])
// in one pass over the log: reading the leaves costs the same for one site
// as for a thousand. A leaf whose record is stored is checked against its
// own site's tag only; a leaf without one (purged, or deleted) against
// every site's, to find whose it is.
func VerifyLogSites(ctx context.Context, store LogStore, results []*Result, logKey string, auditKeys [][]byte, ref []byte) error {
	sites := map[string]*siteLog{}
	var all []*siteLog
	for i, res := range results {
		if res.OK {
			st := &siteLog{res: res, tagger: translog.NewSiteTagger(auditKeys[i]), purgedThrough: -1, entries: map[int64]*consent.Checkpoint{}, scans: map[int64]scanEntry{}}
			sites[res.Site] = st
			all = append(all, st)
		}
	}
	if len(all) == 0 {
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
	failAll := func(reason, detail string) {
		for _, st := range all {
			if !st.done {
				st.fail(0, reason, detail)
			}
		}
	}
	earlier, err := store.EarlierLogKeys(ctx)
	if err != nil {
		return err
	}
	cp, _, err := translog.OpenCheckpoint(ref, logKey)
	// A given checkpoint of an earlier name (kept before the log was
	// succeeded) is held to the successor's statement that names it; the
	// log since is the database's own newest checkpoint's.
	var old *translog.Checkpoint
	if err != nil && reference == ReferenceGiven {
		for _, k := range earlier {
			if c, _, e := translog.OpenCheckpoint(ref, k); e == nil {
				old = &c
				break
			}
		}
		if old != nil {
			reference = fmt.Sprintf("a given checkpoint of the earlier log %s (%d leaves), held to the successor statement that names it; since, the database's own newest checkpoint", old.Origin, old.Size)
			if ref, err = store.LatestCheckpoint(ctx); err != nil || ref == nil {
				return err
			}
			cp, _, err = translog.OpenCheckpoint(ref, logKey)
		}
	}
	if err != nil {
		failAll(LogMismatch, err.Error())
		return nil
	}
	ps, _ := store.(PendingStore)
	for _, st := range all {
		st.out = &LogResult{Origin: cp.Origin, Size: cp.Size, Reference: reference}
		purges, err := store.Checkpoints(ctx, st.res.Site)
		if err != nil {
			return err
		}
		// Counted before the leaves are read: a record integrated in
		// between is then both pending and recorded, never neither.
		if ps != nil {
			if st.pending, err = ps.LogPending(ctx, st.res.Site, st.res.last); err != nil {
				return err
			}
		}
		err = store.ScanEntries(ctx, st.res.Site, func(s *consent.Scan) error {
			if s.EntryIndex != nil && *s.EntryIndex < cp.Size {
				st.scans[*s.EntryIndex] = scanEntry{s.ID.String(), s.EntrySalt, ScanStatement(s, s.Report)}
			}
			return nil
		})
		if err != nil {
			return err
		}
		for i, p := range purges {
			st.out.Purges = append(st.out.Purges, PurgeView{ThroughSeq: p.Seq, ThroughLeaf: p.LogIndex, Entry: p.EntryIndex, At: p.CreatedAt, KeyID: p.KeyID})
			if p.EntryIndex != nil && *p.EntryIndex < cp.Size {
				st.entries[*p.EntryIndex] = p
			}
			if i == 0 && p.LogIndex != nil {
				st.purgedThrough = *p.LogIndex
			}
		}
	}
	var (
		tree   translog.TreeBuilder
		rootOK = cp.Size == 0
		commit translog.Committer
		open   = len(all) // sites not failed yet
		// The successor statements met, the name the next one must
		// succeed, and the root of the given old checkpoint's size.
		successions []Succession
		name        string
		oldRoot     *translog.Checkpoint
		oldMet      bool
	)
	failSite := func(st *siteLog, seq int64, reason, detail string) {
		st.fail(seq, reason, detail)
		open--
	}
	// A purge removes a site's oldest records: once a leaf of the site has
	// its record, no later leaf of the site may lack one.
	err = store.LogLeaves(ctx, func(l *translog.LeafRecord) error {
		if l.Index != tree.Size() {
			failAll(LogMismatch, fmt.Sprintf("leaf %d is missing from the database's log", tree.Size()))
			return errStop
		}
		if len(l.Entry) > 0 && translog.LeafKind(l.Entry[0]) == translog.KindSuccessor {
			sc, err := checkSuccessor(l, tree.Root(), earlier, name, old, oldRoot)
			if err != nil {
				failAll(LogMismatch, err.Error())
				return errStop
			}
			name = sc.origin
			oldMet = oldMet || sc.namesOld
			successions = append(successions, sc.Succession)
		}
		tree.Add(l.Entry)
		if old != nil && tree.Size() == old.Size {
			oldRoot = &translog.Checkpoint{Size: old.Size, Hash: tree.Root()}
		}
		if tree.Size() == cp.Size {
			rootOK = tree.Root() == cp.Hash
			if !rootOK {
				failAll(LogMismatch, fmt.Sprintf("the database's first %d leaves are not the log the checkpoint signed", cp.Size))
				return errStop
			}
		}
		leaf, err := translog.ParseLeaf(l.Entry)
		if err != nil {
			failAll(LogMismatch, fmt.Sprintf("leaf %d: %v", l.Index, err))
			return errStop
		}
		if leaf.Kind == translog.KindSuccessor {
			return next(open) // nobody's: checked above
		}
		if leaf.Kind == translog.KindScan {
			// A recorded scan's entry must open, with its salt, to the
			// statement of a scan the site still has, report and all.
			for _, st := range candidatesOf(all, sites, l, leaf) {
				if st.done || leaf.SiteTag != st.tagger.Tag(l.Index) {
					continue
				}
				switch sc, ok := st.scans[l.Index]; {
				case !ok:
					failSite(st, 0, LogMissing, fmt.Sprintf("leaf %d is a scan entry of this site, and no recorded scan in the database names it", l.Index))
				case translog.KindScan.Commit(sc.salt, sc.statement) != leaf.Commitment:
					failSite(st, 0, Altered, fmt.Sprintf("the recorded scan %s is not the scan its entry %d commits to", sc.id, l.Index))
				default:
					delete(st.scans, l.Index)
					st.out.ScanEntries++
				}
				break
			}
			return next(open)
		}
		if leaf.Kind == translog.KindPurge {
			// A purge's entry must open, with its checkpoint's salt, to
			// the statement of a purge checkpoint the site still has.
			for _, st := range candidatesOf(all, sites, l, leaf) {
				if st.done || leaf.SiteTag != st.tagger.Tag(l.Index) {
					continue
				}
				switch p := st.entries[l.Index]; {
				case p == nil:
					failSite(st, 0, LogMissing, fmt.Sprintf("leaf %d is a purge entry of this site, and no purge checkpoint in the database names it", l.Index))
				case translog.CommitPurge(p.EntrySalt, PurgeStatement(p)) != leaf.Commitment:
					failSite(st, p.Seq, Altered, fmt.Sprintf("the purge checkpoint through record %d is not the purge its entry %d commits to", p.Seq, l.Index))
				default:
					delete(st.entries, l.Index)
					st.out.PurgeEntries++
				}
				break
			}
			return next(open)
		}
		if st := sites[l.Site]; st != nil && l.Site != "" {
			if leaf.SiteTag == st.tagger.Tag(l.Index) {
				switch {
				case st.done:
				case l.Seq > st.res.last:
					// A record committed after the chain was walked.
				case commit.Commit(l.Salt, l.RecordHash) != leaf.Commitment:
					failSite(st, l.Seq, Altered, fmt.Sprintf("it is not the record its leaf %d commits to", l.Index))
				case st.lastSeq != 0 && l.Seq != st.lastSeq+1:
					failSite(st, l.Seq, NotInLog, fmt.Sprintf("its leaf %d follows the leaf of record %d, not of record %d", l.Index, st.lastSeq, l.Seq-1))
				default:
					st.out.Leaves++
					st.recorded++
					st.lastSeq = l.Seq
				}
				return next(open)
			}
			if !st.done {
				failSite(st, l.Seq, NotInLog, fmt.Sprintf("its leaf %d belongs to another site", l.Index))
			}
		}
		// No record of a site being checked has this leaf: it is a purged
		// leaf, a deleted record's, another site's, or (when the tag
		// check above failed) a leaf moved to another record. The site the
		// database names for it is tried first, so a purged leaf costs one
		// tag, not one per site; only a leaf whose named site's tag does
		// not fit is tried against every site's.
		for _, st := range candidatesOf(all, sites, l, leaf) {
			if st.done || leaf.SiteTag != st.tagger.Tag(l.Index) {
				continue
			}
			if l.Site == "" && l.Index <= st.purgedThrough && st.recorded == 0 {
				st.out.Leaves++
				st.out.Purged++
			} else {
				failSite(st, 0, LogMissing, fmt.Sprintf("leaf %d of this site has no record, and no purge removed it", l.Index))
			}
			break
		}
		return next(open)
	})
	switch {
	case err == errStop:
		return nil
	case err != nil:
		return err
	case tree.Size() < cp.Size:
		failAll(LogMismatch, fmt.Sprintf("the database's log has %d leaves; the checkpoint signed %d", tree.Size(), cp.Size))
		return nil
	case !rootOK:
		failAll(LogMismatch, "the database's log is not the log the checkpoint signed")
		return nil
	case name != "" && name != cp.Origin:
		failAll(LogMismatch, fmt.Sprintf("the last successor statement names the log %s, and the checkpoint is of %s", name, cp.Origin))
		return nil
	case old != nil && !oldMet:
		failAll(LogMismatch, fmt.Sprintf("the given checkpoint is of the earlier log %s, and no successor statement in this log names it", old.Origin))
		return nil
	}
	for _, st := range all {
		res := st.res
		var unlogged *consent.Checkpoint // a purge whose named entry is not there
		for _, p := range st.entries {
			unlogged = p
		}
		var unloggedScan string
		for i, sc := range st.scans {
			unloggedScan = fmt.Sprintf("the recorded scan %s names entry %d of the log, which is not its entry", sc.id, i)
		}
		switch {
		case st.done:
		case unloggedScan != "":
			st.fail(0, NotInLog, unloggedScan)
		case unlogged != nil:
			st.fail(unlogged.Seq, NotInLog, fmt.Sprintf("the purge checkpoint through record %d names entry %d of the log, which is not its entry", unlogged.Seq, *unlogged.EntryIndex))
		case st.recorded+st.pending < res.Records:
			st.fail(0, NotInLog, fmt.Sprintf("%d of the site's %d records have no leaf in the log", res.Records-st.recorded, res.Records))
		case st.recorded > 0 && st.lastSeq+res.Records-st.recorded != res.last:
			st.fail(0, NotInLog, fmt.Sprintf("the records without a leaf are not the chain's newest: the last leaf is of record %d of %d", st.lastSeq, res.last))
		default:
			st.out.Pending = res.Records - st.recorded
			st.out.Successions = successions
			res.Log = st.out
		}
	}
	return nil
}

// candidatesOf are the sites a leaf that no checked record has may be of:
// the site the database names for it, when its tag fits, so that such a
// leaf costs one tag, not one per site; else every site.
func candidatesOf(all []*siteLog, sites map[string]*siteLog, l *translog.LeafRecord, leaf translog.Leaf) []*siteLog {
	if st := sites[l.Claimed]; st != nil && l.Claimed != "" && leaf.SiteTag == st.tagger.Tag(l.Index) {
		return []*siteLog{st}
	}
	return all
}

// next goes on with the pass while a site is left to check.
func next(open int) error {
	if open == 0 {
		return errStop
	}
	return nil
}

// successorCheck is what checkSuccessor found.
type successorCheck struct {
	Succession
	origin   string // the successor's name
	namesOld bool   // it succeeds the given old checkpoint's log
}

// checkSuccessor holds the successor statement at leaf l to what it
// claims: it is at the index of the leaves it carries; its old checkpoint
// is signed by a key of an earlier name of this log (earlier), of the name
// the previous statement gave the log (prev, "" for the first); when the
// old checkpoint's size is what it carries, the tree before it (root) is
// that checkpoint's. A given checkpoint of that old log (old, whose root
// oldRoot the pass saw, if the log reached its size) must be the same log:
// the carried leaves, or a checkpoint in the gap the statement names, never
// more than the statement's old checkpoint signed.
func checkSuccessor(l *translog.LeafRecord, root tlog.Hash, earlier []string, prev string, old, oldRoot *translog.Checkpoint) (*successorCheck, error) {
	s, err := translog.ParseSuccessor(l.Entry)
	if err != nil {
		return nil, fmt.Errorf("leaf %d: %w", l.Index, err)
	}
	if s.Carried != l.Index {
		return nil, fmt.Errorf("the successor statement at leaf %d says it carries %d leaves", l.Index, s.Carried)
	}
	if err := s.Open(earlier); err != nil {
		return nil, fmt.Errorf("leaf %d: %w", l.Index, err)
	}
	if prev != "" && s.Predecessor.Origin != prev {
		return nil, fmt.Errorf("the successor statement at leaf %d succeeds %s, and the log was %s", l.Index, s.Predecessor.Origin, prev)
	}
	sc := &successorCheck{origin: s.Origin, Succession: Succession{Entry: l.Index, Predecessor: s.Predecessor.Origin, PredecessorSize: s.Predecessor.Size}}
	from, to := s.Lost()
	if to > from {
		sc.Lost = fmt.Sprintf("leaves %d to %d of %s, and the records they committed to, are not in this log: lost with a restore, with no published tiles of them kept", from, to-1, s.Predecessor.Origin)
		sc.Checked = fmt.Sprintf("the old checkpoint of %d leaves cannot be proven from the %d carried: the successor statement names the gap", s.Predecessor.Size, s.Carried)
	} else {
		if root != s.Predecessor.Hash {
			return nil, fmt.Errorf("the %d leaves before the successor statement at leaf %d are not the tree of the old log's checkpoint it carries", s.Carried, l.Index)
		}
		sc.Checked = fmt.Sprintf("the %d leaves before it are the tree of the old log's last checkpoint", s.Carried)
	}
	if old == nil || old.Origin != s.Predecessor.Origin {
		return sc, nil
	}
	sc.namesOld = true
	switch {
	case old.Size > s.Predecessor.Size:
		return nil, fmt.Errorf("the given checkpoint of %s signed %d leaves, more than the %d of the old checkpoint its successor statement carries", old.Origin, old.Size, s.Predecessor.Size)
	case old.Size == s.Predecessor.Size && old.Hash != s.Predecessor.Hash:
		return nil, fmt.Errorf("the given checkpoint of %s is not the old checkpoint its successor statement carries (%d leaves each)", old.Origin, old.Size)
	case old.Size <= s.Carried && old.Size > 0 && (oldRoot == nil || oldRoot.Hash != old.Hash):
		return nil, fmt.Errorf("the log's first %d leaves are not the tree of the given checkpoint of %s", old.Size, old.Origin)
	case old.Size > s.Carried:
		sc.Checked += fmt.Sprintf("; the given checkpoint (%d leaves) is in that gap", old.Size)
	default:
		sc.Checked += fmt.Sprintf("; the given checkpoint (%d leaves) is their prefix", old.Size)
	}
	return sc, nil
}
