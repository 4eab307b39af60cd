package export

import (
	"bytes"
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"fmt"
	"io"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/koekje/koekje/server/consent"
	"github.com/koekje/koekje/server/proof"
	"github.com/koekje/koekje/server/translog"
)

// Log is a public log as a verifier reads it: its checkpoint and tiles
// (translog.Remote over HTTP, translog.Dir from saved files).
type Log interface {
	tlog.TileReader
	Get(path string) ([]byte, error)
}

// VerifyOptions say what an export is checked against. Nothing in them
// comes from the database or the key file.
type VerifyOptions struct {
	Log Log
	// Policy is the log's witness policy (C2SP tlog-policy) the auditor
	// pinned: the log's key, and the witnesses a quorum of which must have
	// cosigned the log's checkpoint.
	Policy   *translog.Policy
	AuditKey []byte // the site's audit key: finds the site's leaves
	// Keys are the site's signing keys by ID (its JWKS, GET
	// /api/v1/keys, proof.ParseJWKS), which every purge the summary names
	// must be signed by; needed only when it names one.
	Keys map[string]ed25519.PublicKey
}

// Verification is what verifying an export found. Error names the first
// problem, with the record and line it is on.
type Verification struct {
	OK     bool   `json:"ok"`
	Format string `json:"format"`
	Site   string `json:"site,omitempty"`
	// Records verified, and of them those not in the log yet.
	Records int64 `json:"records"`
	Pending int64 `json:"pending_records,omitempty"`
	// The leaves the export accounts for, and how many of the log's
	// entries in between were read to account for them.
	FirstLeaf *int64 `json:"first_leaf,omitempty"`
	LastLeaf  *int64 `json:"last_leaf,omitempty"`
	Entries   int64  `json:"entries_read"`
	// PurgedLeaves are the site's leaves before the first record, whose
	// records a retention purge removed: a purge entry of the site follows
	// them in the log. PurgeEntries counts those entries.
	PurgedLeaves int64 `json:"purged_leaves,omitempty"`
	PurgeEntries int64 `json:"purge_entries,omitempty"`
	// PurgesSigned counts the purges the summary names whose Ed25519
	// signature verified under the site's keys.
	PurgesSigned int64 `json:"purges_signed,omitempty"`
	// ScanEntries counts the site's recorded scans in the log (which an
	// export of records does not carry, so they are counted, not opened).
	ScanEntries int64 `json:"scan_entries,omitempty"`
	// OneVisitor: the export holds one visitor's records, so the chain
	// links between them and the leaves between theirs are not checked.
	OneVisitor bool `json:"one_visitor,omitempty"`
	// The filter the export's summary claims: compare it with what was
	// asked for, since an export only accounts for the leaves it covers.
	From      string `json:"from,omitempty"`
	To        string `json:"to,omitempty"`
	ConsentID string `json:"consent_id,omitempty"`
	// The export's checkpoint, and the log's that it was held against.
	ExportSize int64    `json:"export_checkpoint_size"`
	LogOrigin  string   `json:"log_origin,omitempty"`
	LogSize    int64    `json:"log_checkpoint_size"`
	Cosigners  []string `json:"cosigned_by,omitempty"`
	Error      string   `json:"error,omitempty"`
	// Line and Sequence place the first problem, when it is a record's.
	Line     int   `json:"line,omitempty"`
	Sequence int64 `json:"sequence,omitempty"`
}

// Verify checks an NDJSON or CSV export against the public log and the
// site's audit key alone, in one pass with flat memory: every record's
// hash (rehashed from its fields, the CSV's escaping undone), every chain
// link in order, every record's leaf (its commitment and the site's tag),
// that every leaf of the site between the export's first and last is one
// of its records, and the summary: its counts, and its checkpoint, signed
// by the log and a prefix of the log's current tree, which a quorum of the
// policy's witnesses cosigned.
func Verify(in io.Reader, o VerifyOptions) *Verification {
	v := &Verification{}
	err := verify(in, o, v)
	v.OK = err == nil
	if err != nil {
		v.Error = err.Error()
	}
	return v
}

// recordError is a problem with one record.
type recordError struct {
	line int
	seq  int64
	err  error
}

func (e *recordError) Error() string {
	return fmt.Sprintf("record %d (line %d): %v", e.seq, e.line, e.err)
}

func verify(in io.Reader, o VerifyOptions, v *Verification) error {
	if len(o.AuditKey) == 0 {
		return errors.New("the site's audit key is needed to find its leaves")
	}
	signed, err := o.Log.Get("checkpoint")
	if err != nil {
		return fmt.Errorf("the log's checkpoint: %w", err)
	}
	cp, cosigners, _, err := o.Policy.Open(signed)
	if err != nil {
		return fmt.Errorf("the log's checkpoint under its witness policy: %w", err)
	}
	v.LogOrigin, v.LogSize, v.Cosigners = cp.Origin, cp.Size, cosigners
	rd, err := NewReader(in)
	if err != nil {
		return err
	}
	v.Format = rd.Format()
	var (
		entries = &entryCursor{log: o.Log, size: cp.Size, hashes: tlog.TileHashReader(tlog.Tree{N: cp.Size, Hash: cp.Hash}, o.Log)}
		tagger  = translog.NewSiteTagger(o.AuditKey)
		commit  translog.Committer
		prev    *consent.Record
		first   *consent.Record
		prevAt  int64 = -1 // the previous record's leaf
		// Problems that only the summary can excuse: in an export of one
		// visitor, records are not neighbours in the chain.
		linkErr, gapErr error
		consentIDs      = map[[16]byte]bool{}
	)
	for {
		r, err := rd.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("line %d: %w", rd.Line(), err)
		}
		fail := func(format string, args ...any) error {
			v.Line, v.Sequence = rd.Line(), r.Seq
			return &recordError{rd.Line(), r.Seq, fmt.Errorf(format, args...)}
		}
		v.Records++
		if first == nil {
			first = r
		}
		if v.Site == "" {
			v.Site = r.Site
		} else if r.Site != v.Site {
			return fail("its site %q is not the export's %q", r.Site, v.Site)
		}
		if len(consentIDs) < 2 {
			consentIDs[r.ConsentID] = true
		}
		if !bytes.Equal(consent.RecordHash(r), r.Hash) {
			return fail("its fields do not hash to its hash: the record was changed")
		}
		switch {
		case prev == nil && r.Seq == 1 && len(r.PrevHash) != 0:
			return fail("the chain's first record links to a predecessor")
		case prev != nil && r.Seq <= prev.Seq:
			return fail("it follows record %d: the records are out of order", prev.Seq)
		case prev != nil && linkErr == nil && (r.Seq != prev.Seq+1 || !bytes.Equal(r.PrevHash, prev.Hash)):
			if r.Seq != prev.Seq+1 {
				linkErr = fail("it follows record %d: record %d is missing", prev.Seq, prev.Seq+1)
			} else {
				linkErr = fail("its link is not the hash of record %d before it", prev.Seq)
			}
		}
		if r.LogIndex == nil {
			if len(r.LogSalt) != 0 {
				return fail("it has a log salt and no leaf")
			}
			v.Pending++
			prev = r
			continue
		}
		at := *r.LogIndex
		switch {
		case v.Pending > 0:
			return fail("it has a leaf, yet an earlier record has none: only the newest records may wait for the log")
		case at <= prevAt:
			return fail("its leaf %d does not follow the previous record's leaf %d", at, prevAt)
		case at >= cp.Size:
			return fail("its leaf %d is not in the log's checkpoint of %d leaves", at, cp.Size)
		case len(r.LogSalt) != translog.SaltSize:
			return fail("its log salt has %d bytes, not %d", len(r.LogSalt), translog.SaltSize)
		}
		// Every leaf between the previous record's and this one must be
		// another site's: a leaf tagged for this site is a record left out.
		if prevAt >= 0 {
			for i := prevAt + 1; i < at && gapErr == nil; i++ {
				l, isRecord, err := entries.leaf(i)
				if err != nil {
					return err
				}
				if isRecord && l.SiteTag == tagger.Tag(i) {
					gapErr = fail("leaf %d, between this record's and the previous one's, is the site's, and its record is not in the export", i)
				}
			}
		}
		l, isRecord, err := entries.leaf(at)
		if err != nil {
			return err
		}
		if !isRecord {
			return fail("its leaf %d is not a record leaf (koekje-leaf-v1)", at)
		}
		if l.SiteTag != tagger.Tag(at) {
			return fail("its leaf %d is not the site's (the audit key's tag does not match)", at)
		}
		if l.Commitment != commit.Commit(r.LogSalt, r.Hash) {
			return fail("its leaf %d does not commit to it", at)
		}
		if v.FirstLeaf == nil {
			first := at
			v.FirstLeaf = &first
		}
		last := at
		v.LastLeaf, prevAt, prev = &last, at, r
	}
	v.Entries = entries.read
	s := rd.Summary()
	v.OneVisitor, v.From, v.To, v.ConsentID = s.ConsentID != "", s.From, s.To, s.ConsentID
	if !v.OneVisitor {
		if linkErr != nil {
			return linkErr
		}
		if gapErr != nil {
			return gapErr
		}
	} else if len(consentIDs) > 1 || (len(consentIDs) == 1 && !consentIDs[parseUUID(s.ConsentID)]) {
		return fmt.Errorf("the summary names one visitor, %s, and the records are not all theirs", s.ConsentID)
	}
	if err := checkSummary(s, v, o, cp, prev); err != nil {
		return err
	}
	// Without an end to the filter, every leaf of the site after the last
	// record's, up to the export's checkpoint, must be a record of the
	// export too: a leaf of the site there is a record cut off the end.
	if !v.OneVisitor && s.To == "" && v.LastLeaf != nil {
		for i := *v.LastLeaf + 1; i < v.ExportSize; i++ {
			l, isRecord, err := entries.leaf(i)
			if err != nil {
				return err
			}
			if isRecord && l.SiteTag == tagger.Tag(i) {
				return fmt.Errorf("leaf %d of the site, after the export's last record and within its checkpoint, has no record in the export: records were cut off the end", i)
			}
		}
		v.Entries = entries.read
	}
	// Before the first record of an export of the whole site, every leaf
	// of the site lost its record to a retention purge, which put an entry
	// of its own in the log after them: a leaf of the site there with no
	// purge entry of the site after it is a record deleted, not purged.
	if !v.OneVisitor && s.From == "" && v.FirstLeaf != nil {
		if err := v.checkPurged(entries, tagger, s); err != nil {
			return err
		}
	}
	if err := v.checkPurgeSignatures(s, o.Keys); err != nil {
		return err
	}
	// The chain of an export of the whole site starts at its beginning, or
	// right after the newest purge, linked to the hash that purge signed.
	if !v.OneVisitor && s.From == "" && first != nil {
		return checkChainStart(first, s.Purges)
	}
	return nil
}

// checkChainStart holds the first record of an export of the whole site
// to where the site's chain starts: record 1, or the record after the
// newest of purges (whose signature was checked), linked to its hash.
func checkChainStart(first *consent.Record, purges []Purge) error {
	var newest *Purge
	for i := range purges {
		if newest == nil || purges[i].ThroughSeq > newest.ThroughSeq {
			newest = &purges[i]
		}
	}
	if newest == nil {
		if first.Seq != 1 {
			return fmt.Errorf("the export of the whole site starts at record %d, and no purge removed the records before it", first.Seq)
		}
		return nil
	}
	if first.Seq != newest.ThroughSeq+1 || hex.EncodeToString(first.PrevHash) != newest.Hash {
		return fmt.Errorf("the export of the whole site starts at record %d, which does not follow the newest purge (through record %d, hash %s)", first.Seq, newest.ThroughSeq, newest.Hash)
	}
	return nil
}

// checkPurged accounts for the site's leaves before the export's first
// record by the site's purge entries, each of which must be one of the
// purges the summary names, its commitment opened by the purge's
// checkpoint and salt.
func (v *Verification) checkPurged(entries *entryCursor, tagger *translog.SiteTagger, s *Summary) error {
	named := map[int64]*Purge{}
	for i := range s.Purges {
		if p := &s.Purges[i]; p.Entry != nil && *p.Entry < v.ExportSize {
			named[*p.Entry] = p
		}
	}
	lastOrphan, lastPurge := int64(-1), int64(-1)
	for i := range v.ExportSize {
		l, isRecord, err := entries.leaf(i)
		if err != nil {
			return err
		}
		switch {
		case l.SiteTag != tagger.Tag(i):
		case isRecord && i < *v.FirstLeaf:
			lastOrphan = i
			v.PurgedLeaves++
		case l.Kind == translog.KindScan:
			v.ScanEntries++
		case l.Kind == translog.KindPurge:
			if err := openPurge(named[i], i, l, s.Site); err != nil {
				return err
			}
			delete(named, i)
			lastPurge = i
			v.PurgeEntries++
		}
	}
	v.Entries = entries.read
	for i, p := range named {
		return fmt.Errorf("the export's purge through record %d names entry %d of the log, which is not a purge entry of the site", p.ThroughSeq, i)
	}
	if lastOrphan > lastPurge {
		return fmt.Errorf("leaf %d of the site, before the export's first record, has no record in the export, and no purge entry of the site follows it: records were deleted, not purged", lastOrphan)
	}
	return nil
}

// checkPurgeSignatures holds every purge the summary names to its
// signature under the site's keys: the purge's record, hash, time and rule
// are what the company signed when it purged, not what the export says.
func (v *Verification) checkPurgeSignatures(s *Summary, keys map[string]ed25519.PublicKey) error {
	if len(s.Purges) > 0 && keys == nil {
		return fmt.Errorf("the summary names %d purges, whose signatures are checked against the site's keys: give them (its JWKS, GET /api/v1/keys)", len(s.Purges))
	}
	for i := range s.Purges {
		p := &s.Purges[i]
		cp, err := p.checkpoint(s.Site)
		if err != nil {
			return err
		}
		if keys[cp.KeyID] == nil {
			return fmt.Errorf("the purge through record %d is signed by key %q, which the site's keys do not hold", p.ThroughSeq, p.KeyID)
		}
		if !proof.PurgeSigned(cp, keys) {
			return fmt.Errorf("the purge through record %d: its signature does not verify under key %q: the purge was not signed so", p.ThroughSeq, p.KeyID)
		}
		v.PurgesSigned++
	}
	return nil
}

// openPurge checks that the purge entry l at i is p's: its commitment opens
// with p's salt to the statement of p's checkpoint.
func openPurge(p *Purge, i int64, l translog.Leaf, site string) error {
	if p == nil {
		return fmt.Errorf("entry %d of the log is a purge entry of the site that the export's summary does not name", i)
	}
	cp, err := p.checkpoint(site)
	if err != nil {
		return err
	}
	salt, err := hex.DecodeString(p.EntrySalt)
	if err != nil || len(salt) != translog.SaltSize {
		return fmt.Errorf("the purge through record %d: its entry salt is not %d bytes of hex", p.ThroughSeq, translog.SaltSize)
	}
	if translog.CommitPurge(salt, proof.PurgeStatement(cp)) != l.Commitment {
		return fmt.Errorf("the export's purge through record %d is not the purge its entry %d commits to", p.ThroughSeq, i)
	}
	return nil
}

// checkSummary holds the summary to what was read, and its checkpoint to
// the log's.
func checkSummary(s *Summary, v *Verification, o VerifyOptions, cp translog.Checkpoint, last *consent.Record) error {
	if s.Format != SummaryFormat || s.RecordEncoding != consent.RecordEncodingV1 {
		return fmt.Errorf("the summary's format %q with records in %q: want %s with %s", s.Format, s.RecordEncoding, SummaryFormat, consent.RecordEncodingV1)
	}
	if v.Site != "" && s.Site != v.Site {
		return fmt.Errorf("the summary names site %q, the records are of %q", s.Site, v.Site)
	}
	v.Site = s.Site
	if s.Records != v.Records || s.Pending != v.Pending {
		return fmt.Errorf("the summary counts %d records (%d without a leaf), the export holds %d (%d): records were removed or added",
			s.Records, s.Pending, v.Records, v.Pending)
	}
	if last != nil && s.LastSeq != last.Seq {
		return fmt.Errorf("the summary's last record is %d, the export's is %d", s.LastSeq, last.Seq)
	}
	if !sameIndex(s.FirstLeaf, v.FirstLeaf) || !sameIndex(s.LastLeaf, v.LastLeaf) {
		return fmt.Errorf("the summary's leaves %s to %s are not the records' %s to %s",
			index(s.FirstLeaf), index(s.LastLeaf), index(v.FirstLeaf), index(v.LastLeaf))
	}
	if s.Checkpoint == "" {
		if v.LastLeaf != nil {
			return errors.New("the summary names no checkpoint, yet records have leaves")
		}
		return nil
	}
	// Signed by the log is enough here: the export's checkpoint is held to
	// the log's current one, which met the policy.
	ecp, _, err := o.Policy.Clean([]byte(s.Checkpoint))
	if err != nil {
		return fmt.Errorf("the export's checkpoint: %w", err)
	}
	v.ExportSize = ecp.Size
	if ecp.Size > cp.Size {
		return fmt.Errorf("the log's checkpoint has %d leaves, fewer than the %d of the export's: ask again once the log has published it", cp.Size, ecp.Size)
	}
	h, err := tlog.TreeHash(ecp.Size, tlog.TileHashReader(tlog.Tree{N: cp.Size, Hash: cp.Hash}, o.Log))
	if err != nil {
		return fmt.Errorf("the log's tiles: %w", err)
	}
	if h != ecp.Hash {
		return fmt.Errorf("the export's checkpoint of %d leaves is not a prefix of the log's tree: the log forked", ecp.Size)
	}
	return nil
}

func sameIndex(a, b *int64) bool { return (a == nil) == (b == nil) && (a == nil || *a == *b) }

func index(p *int64) string {
	if p == nil {
		return "none"
	}
	return fmt.Sprint(*p)
}

func parseUUID(s string) [16]byte {
	id, _ := consent.ParseID(s)
	return id
}

// entryCursor reads the log's entries in rising order, one entry bundle
// at a time, each bundle's hashes checked against the log's tree.
type entryCursor struct {
	log     Log
	size    int64
	hashes  tlog.HashReader // the checkpoint's tree, tiles checked against its root
	n       int64           // the bundle held
	leaves  []translog.Leaf
	records []bool // whether each entry is a record leaf
	read    int64
}

// leaf returns the entry at index i as a leaf, and whether it is a record
// leaf at all. The bundle holding it is read once, and is proven part of
// the checkpoint's tree before use: its entries must hash to the tree's
// level-0 tile.
func (c *entryCursor) leaf(i int64) (translog.Leaf, bool, error) {
	n := i >> translog.TileHeight
	if c.leaves == nil || n != c.n {
		w := min(c.size-n<<translog.TileHeight, 1<<translog.TileHeight)
		t := tlog.Tile{H: translog.TileHeight, L: -1, N: n, W: int(w)}
		data, err := c.log.ReadTiles([]tlog.Tile{t})
		if err != nil {
			return translog.Leaf{}, false, fmt.Errorf("the log's entries at %d: %w", n<<translog.TileHeight, err)
		}
		raw, err := translog.ParseEntryBundle(data[0])
		if err != nil || int64(len(raw)) != w {
			return translog.Leaf{}, false, fmt.Errorf("the log's entries at %d: %d entries, %v", n<<translog.TileHeight, len(raw), err)
		}
		if err := c.prove(t, raw); err != nil {
			return translog.Leaf{}, false, err
		}
		c.leaves, c.records = c.leaves[:0], c.records[:0]
		for _, e := range raw {
			// An entry of another kind than a record leaf is nobody's
			// record.
			l, err := translog.ParseLeaf(e)
			c.leaves, c.records = append(c.leaves, l), append(c.records, err == nil && l.Kind == translog.KindRecord)
		}
		c.n = n
		c.read += w
	}
	return c.leaves[i-n<<translog.TileHeight], c.records[i-n<<translog.TileHeight], nil
}

// prove checks that the bundle's entries are the tree's leaves: their
// hashes must be those the tree's tiles hold, which the hash reader checks
// against the checkpoint's root.
func (c *entryCursor) prove(t tlog.Tile, raw [][]byte) error {
	first := t.N << translog.TileHeight
	indexes := make([]int64, len(raw))
	for j := range raw {
		indexes[j] = tlog.StoredHashIndex(0, first+int64(j))
	}
	hashes, err := c.hashes.ReadHashes(indexes)
	if err != nil {
		return fmt.Errorf("the log's tiles at %d: %w", first, err)
	}
	for j, e := range raw {
		if tlog.RecordHash(e) != hashes[j] {
			return fmt.Errorf("the log's entry %d is not the leaf its checkpoint signed", first+int64(j))
		}
	}
	return nil
}
