package store

import (
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/koekje/koekje/config"
	"github.com/koekje/koekje/server/consent"
	"github.com/koekje/koekje/server/proof"
	"github.com/koekje/koekje/server/translog"
)

// SiteCopy is what a copy says of one site.
type SiteCopy struct {
	Site        string `json:"site"`
	OK          bool   `json:"ok"`
	Records     int64  `json:"records"`
	Checkpoints int    `json:"checkpoints"`
	Versions    int    `json:"versions"`
	RequestIDs  int64  `json:"request_ids"`
	Scans       int    `json:"scans"`
	Head        string `json:"head,omitempty"`
	Reason      string `json:"reason,omitempty"`
	Seq         int64  `json:"sequence,omitempty"`
	Detail      string `json:"detail,omitempty"`
	// Banner versions of the source whose body does not hash to their
	// name: not what visitors were shown, so not copied, and the copy fails.
	DamagedVersions []string `json:"damaged_versions,omitempty"`
	head            []byte   // the source's
}

// CopySummary counts what a copy copied.
type CopySummary struct {
	OK          bool   `json:"ok"`
	Sites       int    `json:"sites"`
	Records     int64  `json:"records"`
	RequestIDs  int64  `json:"request_ids"`
	Texts       int64  `json:"texts"`
	Scans       int    `json:"scans"`
	SigningKeys int    `json:"signing_keys"`
	Secrets     int    `json:"secrets"`
	Sessions    int    `json:"sessions"`
	KeyFile     string `json:"key_file"`
	Log         string `json:"log"`
}

// Copy copies one store whole into an empty other (koekje migrate-store):
// every row as stored, and the transparency log with it unless DropLog;
// then Verify walks every chain as the copy holds it, before the caller
// commits the import.
type Copy struct {
	Src Source
	Dst Import
	// SrcName names the source in what the copy says.
	SrcName string
	// DropLog leaves the source's transparency log behind, with its key
	// and the leaf numbers its checkpoints name: the target starts a new
	// log, with a new key, over every copied record.
	DropLog bool
	// Progress, if set, is told each phase and counts records as they go.
	Progress Progress
	// Warn, if set, is told what is not copied, and why.
	Warn func(msg string)

	sites map[string]*SiteCopy
	order []string
	keys  []consent.SigningKey
	// copyLog: the source's transparency log comes along; dropLog: it
	// stays behind.
	copyLog, dropLog bool
	logKey           string // the copied log's verifier key
}

// Progress counts a long copy as it goes.
type Progress interface {
	// Phase names what the counts that follow count.
	Phase(label string)
	Add(n int64)
}

type noProgress struct{}

func (noProgress) Phase(string) {}
func (noProgress) Add(int64)    {}

// copyBatch is the number of rows one Put carries.
const copyBatch = 2000

// Run copies every part of the store, and the log unless DropLog.
func (c *Copy) Run(ctx context.Context) (*CopySummary, error) {
	if c.Progress == nil {
		c.Progress = noProgress{}
	}
	if c.Warn == nil {
		c.Warn = func(string) {}
	}
	c.sites = map[string]*SiteCopy{}
	leaves, err := c.Src.LogLeafCount(ctx)
	if err != nil {
		return nil, err
	}
	c.copyLog, c.dropLog = leaves > 0 && !c.DropLog, leaves > 0 && c.DropLog
	sum, err := c.run(ctx)
	if err != nil {
		return nil, err
	}
	sum.KeyFile = c.Dst.KeyFile()
	switch {
	case c.copyLog:
		if err := c.copyTheLog(ctx); err != nil {
			return nil, err
		}
		sum.Log = fmt.Sprintf("copied: %d leaves", leaves)
	case c.dropLog:
		sum.Log = fmt.Sprintf("dropped: %d leaves stay in %s; a new log with a new key takes every copied record", leaves, c.SrcName)
	default:
		sum.Log = "none"
	}
	return sum, nil
}

// Sites is what the copy says of each site, in the order it met them.
func (c *Copy) Sites() []*SiteCopy {
	out := make([]*SiteCopy, len(c.order))
	for i, s := range c.order {
		out[i] = c.sites[s]
	}
	return out
}

// LogKey is the copied log's verifier key, "" when no log was copied.
func (c *Copy) LogKey() string { return c.logKey }

func (c *Copy) site(s string) *SiteCopy {
	sc, ok := c.sites[s]
	if !ok {
		sc = &SiteCopy{Site: s}
		c.sites[s] = sc
		c.order = append(c.order, s)
	}
	return sc
}

// run copies every part of the store but the transparency log's tables.
func (c *Copy) run(ctx context.Context) (*CopySummary, error) {
	var sum CopySummary
	sites, err := c.Src.Sites(ctx)
	if err != nil {
		return nil, err
	}
	for _, s := range sites {
		c.site(s)
	}
	secrets, err := c.Src.AllSecrets(ctx)
	if err != nil {
		return nil, err
	}
	defer func() {
		for _, s := range secrets {
			clear(s.Value)
		}
	}()
	var keep []Secret
	for _, s := range secrets {
		// A log's key goes only with its log: a new log signed with it
		// would contradict the checkpoints the old one published.
		if (s.Name == LogKeySecret || s.Name == LogEarlierKeysSecret) && c.dropLog {
			continue
		}
		keep = append(keep, s)
	}
	if err := c.Dst.PutSecrets(ctx, keep); err != nil {
		return nil, err
	}
	sum.Secrets = len(keep)
	if c.keys, err = c.Src.Keys(ctx); err != nil {
		return nil, err
	}
	if err := c.Dst.PutKeys(ctx, c.keys); err != nil {
		return nil, err
	}
	sum.SigningKeys = len(c.keys)

	var texts []string
	err = c.Src.EachText(ctx, func(v string) error {
		texts = append(texts, v)
		sum.Texts++
		if len(texts) < copyBatch {
			return nil
		}
		err := c.Dst.PutTexts(ctx, texts)
		texts = texts[:0]
		return err
	})
	if err == nil && len(texts) > 0 {
		err = c.Dst.PutTexts(ctx, texts)
	}
	if err != nil {
		return nil, err
	}

	var versions []*Version
	size := 0
	err = c.Src.EachVersion(ctx, func(v *Version) error {
		sc := c.site(v.Site)
		if config.Hash(v.Body) != v.Hash {
			sc.DamagedVersions = append(sc.DamagedVersions, v.Hash)
			c.Warn(fmt.Sprintf("site %s: banner version %s does not hash to its name; not copied", v.Site, v.Hash))
			return nil
		}
		sc.Versions++
		versions, size = append(versions, v), size+len(v.Body)
		if size < 8<<20 {
			return nil
		}
		err := c.Dst.PutVersions(ctx, versions)
		versions, size = versions[:0], 0
		return err
	})
	if err == nil && len(versions) > 0 {
		err = c.Dst.PutVersions(ctx, versions)
	}
	if err != nil {
		return nil, err
	}

	for _, s := range sites {
		cps, err := c.Src.Checkpoints(ctx, s)
		if err != nil {
			return nil, err
		}
		for _, cp := range cps {
			if c.dropLog {
				cp.LogIndex, cp.EntryIndex, cp.EntrySalt = nil, nil, nil // leaves of the log left behind
			}
		}
		c.site(s).Checkpoints = len(cps)
		if err := c.Dst.PutCheckpoints(ctx, cps); err != nil {
			return nil, err
		}
	}

	var recs []*StoredRecord
	c.Progress.Phase("records copied")
	err = c.Src.EachStored(ctx, func(r *StoredRecord) error {
		sc := c.site(r.Site)
		sc.Records++
		sc.head = r.Hash
		recs = append(recs, r)
		sum.Records++
		c.Progress.Add(1)
		if len(recs) < copyBatch {
			return nil
		}
		err := c.Dst.PutRecords(ctx, recs)
		recs = recs[:0]
		return err
	})
	if err == nil && len(recs) > 0 {
		err = c.Dst.PutRecords(ctx, recs)
	}
	if err != nil {
		return nil, err
	}

	var reqs []*RequestID
	err = c.Src.EachRequest(ctx, func(q *RequestID) error {
		c.site(q.Site).RequestIDs++
		sum.RequestIDs++
		reqs = append(reqs, q)
		if len(reqs) < copyBatch {
			return nil
		}
		err := c.Dst.PutRequestIDs(ctx, reqs)
		reqs = reqs[:0]
		return err
	})
	if err == nil && len(reqs) > 0 {
		err = c.Dst.PutRequestIDs(ctx, reqs)
	}
	if err != nil {
		return nil, err
	}

	if err := c.Src.EachScan(ctx, func(s *consent.Scan) error {
		c.site(s.Site).Scans++
		sum.Scans++
		return c.Dst.PutScan(ctx, s)
	}); err != nil {
		return nil, err
	}

	sessions, err := c.Src.AllSessions(ctx)
	if err != nil {
		return nil, err
	}
	if err := c.Dst.PutSessions(ctx, sessions); err != nil {
		return nil, err
	}
	sum.Sessions = len(sessions)
	sum.Sites = len(c.order)
	return &sum, nil
}

// copyTheLog copies the transparency log: its leaves (with the place in
// its chain of each one's record), its tree's hashes, its signed and
// witnessed checkpoints, and its state, the newest checkpoint.
func (c *Copy) copyTheLog(ctx context.Context) error {
	signer, err := c.Src.LogSigner(ctx)
	if err != nil {
		return err
	}
	latest, err := c.Src.LatestCheckpoint(ctx)
	if err != nil {
		return err
	}
	if signer == nil || latest == nil {
		return errors.New("the source's log has leaves and no signed checkpoint")
	}
	c.logKey = signer.VerifierKey()
	cp, _, err := translog.OpenCheckpoint(latest, c.logKey)
	if err != nil {
		return fmt.Errorf("the source's newest log checkpoint: %w", err)
	}
	var leaves []*LogLeaf
	err = c.Src.EachLogLeaf(ctx, func(l *LogLeaf) error {
		leaves = append(leaves, l)
		if len(leaves) < copyBatch {
			return nil
		}
		err := c.Dst.PutLogLeaves(ctx, leaves)
		leaves = leaves[:0]
		return err
	})
	if err == nil && len(leaves) > 0 {
		err = c.Dst.PutLogLeaves(ctx, leaves)
	}
	if err != nil {
		return err
	}
	var ids []int64
	var hashes [][]byte
	err = c.Src.EachLogHash(ctx, func(id int64, h []byte) error {
		ids, hashes = append(ids, id), append(hashes, h)
		if len(ids) < copyBatch {
			return nil
		}
		err := c.Dst.PutLogHashes(ctx, ids, hashes)
		ids, hashes = ids[:0], hashes[:0]
		return err
	})
	if err == nil && len(ids) > 0 {
		err = c.Dst.PutLogHashes(ctx, ids, hashes)
	}
	if err != nil {
		return err
	}
	if err := c.Src.EachLogCheckpoint(ctx, func(cp *LogCheckpoint, witnessed bool) error {
		return c.Dst.PutLogCheckpoint(ctx, cp, witnessed)
	}); err != nil {
		return err
	}
	return c.Dst.FinishLog(ctx, cp.Size, cp.Hash[:], cp.Origin)
}

// Verify walks every chain as the copy holds it, before it commits: each
// must verify and end where the source's ends, with as many records.
func (c *Copy) Verify(ctx context.Context) (bool, error) {
	var pubs []ed25519.PublicKey
	var ids []string
	if len(c.keys) > 0 {
		ring, err := proof.NewKeyring(c.keys)
		if err != nil {
			return false, err
		}
		pubs, ids = ring.Public()
	}
	ok := true
	for _, s := range c.order {
		sc := c.sites[s]
		c.Progress.Phase("records of " + s + " verified on the copy")
		res, err := proof.Verify(ctx, proof.Counting(c.Dst, c.Progress.Add), s, pubs, ids)
		if err != nil {
			return false, err
		}
		sc.OK, sc.Head, sc.Reason, sc.Seq, sc.Detail = res.OK, res.Head, res.Reason, res.Seq, res.Detail
		switch {
		case !res.OK:
		case res.Records != sc.Records:
			sc.OK, sc.Reason = false, "count"
			sc.Detail = fmt.Sprintf("the copy's chain has %d records, the source %d", res.Records, sc.Records)
		case res.Head != hex.EncodeToString(sc.head) && sc.Records > 0:
			sc.OK, sc.Reason = false, "head"
			sc.Detail = "the copy's chain ends elsewhere than the source's"
		}
		ok = ok && sc.OK
	}
	if c.copyLog {
		logOK, err := c.verifyLog(ctx)
		if err != nil {
			return false, err
		}
		ok = ok && logOK
	}
	for _, s := range c.order {
		if sc := c.sites[s]; len(sc.DamagedVersions) > 0 {
			sc.OK, ok = false, false
		}
	}
	return ok, nil
}

// verifyLog holds the copy against the copied log in one pass over its
// leaves (koekje verify does it site by site, a pass each): the tree
// rebuilt from the entries is the one the newest checkpoint signed, every
// copied record is the commitment of a leaf its site's audit key tags, and
// no record lacks a leaf.
func (c *Copy) verifyLog(ctx context.Context) (bool, error) {
	latest, err := c.Dst.LatestCheckpoint(ctx)
	if err != nil {
		return false, err
	}
	cp, _, err := translog.OpenCheckpoint(latest, c.logKey)
	if err != nil {
		return false, fmt.Errorf("the copied log's newest checkpoint: %w", err)
	}
	taggers := map[string]*translog.SiteTagger{}
	leaves := map[string]int64{}
	var tree translog.TreeBuilder
	var commit translog.Committer
	fail := func(site string, seq int64, reason, detail string) {
		sc := c.site(site)
		if sc.OK {
			sc.OK, sc.Seq, sc.Reason, sc.Detail = false, seq, reason, detail
		}
	}
	err = c.Dst.LogLeaves(ctx, func(l *translog.LeafRecord) error {
		if l.Index != tree.Size() {
			return fmt.Errorf("the copied log lacks leaf %d", tree.Size())
		}
		tree.Add(l.Entry)
		if l.Site == "" {
			return nil // a purged record's leaf: FinishLog placed it
		}
		leaf, err := translog.ParseLeaf(l.Entry)
		if err != nil {
			return fmt.Errorf("leaf %d: %w", l.Index, err)
		}
		t, ok := taggers[l.Site]
		if !ok {
			key, err := c.Src.LogAuditKey(ctx, l.Site)
			if err != nil {
				return err
			}
			t = translog.NewSiteTagger(key)
			taggers[l.Site] = t
		}
		leaves[l.Site]++
		switch {
		case leaf.SiteTag != t.Tag(l.Index):
			fail(l.Site, l.Seq, proof.NotInLog, fmt.Sprintf("its leaf %d belongs to another site", l.Index))
		case commit.Commit(l.Salt, l.RecordHash) != leaf.Commitment:
			fail(l.Site, l.Seq, proof.Altered, fmt.Sprintf("it is not the record its leaf %d commits to", l.Index))
		}
		return nil
	})
	if err != nil {
		return false, err
	}
	if tree.Size() != cp.Size || tree.Root() != cp.Hash {
		return false, fmt.Errorf("the copied log's %d leaves are not the log its newest checkpoint (size %d) signed", tree.Size(), cp.Size)
	}
	ok := true
	for _, s := range c.order {
		sc := c.sites[s]
		if sc.OK && leaves[s] != sc.Records {
			fail(s, 0, proof.NotInLog, fmt.Sprintf("%d of the site's %d records have no leaf in the log", sc.Records-leaves[s], sc.Records))
		}
		ok = ok && sc.OK
	}
	return ok, nil
}
