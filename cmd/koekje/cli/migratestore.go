package cli

import (
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/koekje/koekje/config"
	"github.com/koekje/koekje/server/consent"
	"github.com/koekje/koekje/server/postgres"
	"github.com/koekje/koekje/server/proof"
	"github.com/koekje/koekje/server/sqlite"
	"github.com/koekje/koekje/server/translog"
)

// copyBatch is the number of rows one INSERT of migrate-store carries.
const copyBatch = 2000

// siteCopy is what migrate-store says of one site.
type siteCopy struct {
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

// copySummary is migrate-store's last line.
type copySummary struct {
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

// migrateStoreCmd copies a SQLite store into an empty PostgreSQL database,
// verifies every chain there, and only then commits the copy.
func migrateStoreCmd(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("migrate-store", flag.ContinueOnError)
	fs.SetOutput(stderr)
	from := fs.String("from", "", "the SQLite database to copy (required); no koekje serve may be running on it")
	fromKey := fs.String("from-key-file", "", "the key file of --from; its path + .key when empty")
	to := fs.String("to", "", "the empty PostgreSQL database to copy into, postgres://… (required)")
	keyFile := fs.String("key-file", getenv("KOEKJE_KEY_FILE"), "the key file that seals the secrets in --to, made when missing; every instance on --to is given it (KOEKJE_KEY_FILE; required)")
	dropLog := fs.Bool("drop-log", false, "leave the source's transparency log behind: the target starts a new log, with a new key, over every copied record")
	if err := parseAnywhere(fs, args); err != nil {
		return err
	}
	switch {
	case *from == "":
		return errors.New("--from is required: the SQLite database to copy")
	case postgres.IsDSN(*from):
		return errors.New("--from must be a SQLite database file: migrate-store copies from SQLite to PostgreSQL")
	case *to == "":
		return errors.New("--to is required: the PostgreSQL database to copy into, postgres://…")
	case !postgres.IsDSN(*to):
		return fmt.Errorf("--to %q is not a PostgreSQL DSN: give postgres://user@host/db", *to)
	case *keyFile == "":
		return errors.New("--key-file is required: the key file that will seal the secrets in the PostgreSQL database (made when missing; give it to every instance)")
	}
	if fi, err := os.Stat(*from); err != nil {
		return fmt.Errorf("--from: %w", err)
	} else if !fi.Mode().IsRegular() {
		return fmt.Errorf("--from %s is not a database file", *from)
	}
	// Held until the copy is done: a server started on the source meanwhile
	// would take records the copy misses.
	release, err := lockServe(*from)
	if err != nil {
		return fmt.Errorf("--from: %w; stop it first, so no record is taken after the copy", err)
	}
	defer release()
	src, err := sqlite.OpenWith(*from, sqlite.Options{KeyFile: *fromKey})
	if err != nil {
		return fmt.Errorf("--from: %w", err)
	}
	defer src.Close()
	leaves, err := src.LogLeafCount(ctx)
	if err != nil {
		return err
	}
	imp, err := postgres.BeginImport(ctx, *to, *keyFile)
	if err != nil {
		return fmt.Errorf("--to: %w", err)
	}
	defer imp.Rollback()
	prog := newProgress(stderr)
	defer prog.close()
	c := &storeCopy{src: src, imp: imp, sites: map[string]*siteCopy{}, stderr: stderr, prog: prog,
		copyLog: leaves > 0 && !*dropLog, dropLog: leaves > 0 && *dropLog}
	// Whatever stops the copy before its commit leaves the target as empty
	// as it was: the transaction is rolled back (or, if the process dies,
	// dropped by PostgreSQL with its connection).
	interrupted := func(err error) error {
		if ctx.Err() != nil {
			return errors.New("interrupted: nothing was committed, the target database is as empty as it was")
		}
		return fmt.Errorf("%w; nothing was committed, the target database is as empty as it was", err)
	}
	start := time.Now()
	sum, err := c.run(ctx)
	if err != nil {
		return interrupted(err)
	}
	sum.KeyFile = imp.KeyFile()
	switch {
	case c.copyLog:
		if err := c.copyTheLog(ctx); err != nil {
			return interrupted(err)
		}
		sum.Log = fmt.Sprintf("copied: %d leaves", leaves)
	case c.dropLog:
		sum.Log = fmt.Sprintf("dropped: %d leaves stay in %s; a new log with a new key takes every copied record", leaves, *from)
	default:
		sum.Log = "none"
	}
	prog.close()
	fmt.Fprintf(stderr, "koekje: copied %d records in %s; verifying every chain on the copy\n", sum.Records, time.Since(start).Round(time.Millisecond))
	prog = newProgress(stderr)
	defer prog.close()
	c.prog = prog
	ok, err := c.verify(ctx)
	if err != nil {
		return interrupted(err)
	}
	prog.end("koekje: verified %d records on the copy", prog.total.Load())
	enc := json.NewEncoder(stdout)
	for _, s := range c.order {
		enc.Encode(c.sites[s])
	}
	sum.OK = ok
	if !ok {
		enc.Encode(sum)
		fmt.Fprintln(stderr, "koekje: a site does not verify on the copy; nothing was committed, the target is still empty")
		return ErrFailed
	}
	var copied []byte
	if c.copyLog {
		if copied, err = imp.LatestCheckpoint(ctx); err != nil {
			return interrupted(err)
		}
	}
	if err := imp.Commit(ctx); err != nil {
		return fmt.Errorf("--to: %w", err)
	}
	// The copied log, verified above, is what the target's instances
	// extend: its newest checkpoint is their reference.
	if err := referenceCopied(imp.KeyFile(), copied, c.logKey); err != nil {
		return err
	}
	return enc.Encode(sum)
}

// storeCopy is one run of migrate-store.
type storeCopy struct {
	src    *sqlite.DB
	imp    *postgres.Import
	sites  map[string]*siteCopy
	order  []string
	keys   []consent.SigningKey
	stderr io.Writer
	prog   *progress
	// copyLog: the source's transparency log comes along; dropLog: it
	// stays behind, with its key and the leaf numbers checkpoints name.
	copyLog, dropLog bool
	logKey           string // the copied log's verifier key
}

func (c *storeCopy) site(s string) *siteCopy {
	sc, ok := c.sites[s]
	if !ok {
		sc = &siteCopy{Site: s}
		c.sites[s] = sc
		c.order = append(c.order, s)
	}
	return sc
}

// run copies every part of the store but the transparency log's tables.
func (c *storeCopy) run(ctx context.Context) (*copySummary, error) {
	var sum copySummary
	sites, err := c.src.Sites(ctx)
	if err != nil {
		return nil, err
	}
	for _, s := range sites {
		c.site(s)
	}
	secrets, err := c.src.AllSecrets(ctx)
	if err != nil {
		return nil, err
	}
	defer func() {
		for _, s := range secrets {
			clear(s.Value)
		}
	}()
	var keep []consent.Secret
	for _, s := range secrets {
		// A log's key goes only with its log: a new log signed with it
		// would contradict the checkpoints the old one published.
		if s.Name == sqlite.LogKeySecret && c.dropLog {
			continue
		}
		keep = append(keep, s)
	}
	if err := c.imp.PutSecrets(ctx, keep); err != nil {
		return nil, err
	}
	sum.Secrets = len(keep)
	if c.keys, err = c.src.Keys(ctx); err != nil {
		return nil, err
	}
	if err := c.imp.PutKeys(ctx, c.keys); err != nil {
		return nil, err
	}
	sum.SigningKeys = len(c.keys)

	var texts []string
	err = c.src.EachText(ctx, func(v string) error {
		texts = append(texts, v)
		sum.Texts++
		if len(texts) < copyBatch {
			return nil
		}
		err := c.imp.PutTexts(ctx, texts)
		texts = texts[:0]
		return err
	})
	if err == nil && len(texts) > 0 {
		err = c.imp.PutTexts(ctx, texts)
	}
	if err != nil {
		return nil, err
	}

	var versions []*consent.Version
	size := 0
	err = c.src.EachVersion(ctx, func(v *consent.Version) error {
		sc := c.site(v.Site)
		if config.Hash(v.Body) != v.Hash {
			sc.DamagedVersions = append(sc.DamagedVersions, v.Hash)
			fmt.Fprintf(c.stderr, "koekje: site %s: banner version %s does not hash to its name; not copied\n", v.Site, v.Hash)
			return nil
		}
		sc.Versions++
		versions, size = append(versions, v), size+len(v.Body)
		if size < 8<<20 {
			return nil
		}
		err := c.imp.PutVersions(ctx, versions)
		versions, size = versions[:0], 0
		return err
	})
	if err == nil && len(versions) > 0 {
		err = c.imp.PutVersions(ctx, versions)
	}
	if err != nil {
		return nil, err
	}

	for _, s := range sites {
		cps, err := c.src.Checkpoints(ctx, s)
		if err != nil {
			return nil, err
		}
		for _, cp := range cps {
			if c.dropLog {
				cp.LogIndex = nil // a leaf of the log left behind
			}
		}
		c.site(s).Checkpoints = len(cps)
		if err := c.imp.PutCheckpoints(ctx, cps); err != nil {
			return nil, err
		}
	}

	var recs []*consent.StoredRecord
	c.prog.phase("records copied")
	err = c.src.EachStored(ctx, func(r *consent.StoredRecord) error {
		sc := c.site(r.Site)
		sc.Records++
		sc.head = r.Hash
		recs = append(recs, r)
		sum.Records++
		c.prog.add(1)
		if len(recs) < copyBatch {
			return nil
		}
		err := c.imp.PutRecords(ctx, recs)
		recs = recs[:0]
		return err
	})
	if err == nil && len(recs) > 0 {
		err = c.imp.PutRecords(ctx, recs)
	}
	if err != nil {
		return nil, err
	}

	var reqs []*consent.RequestID
	err = c.src.EachRequest(ctx, func(q *consent.RequestID) error {
		c.site(q.Site).RequestIDs++
		sum.RequestIDs++
		reqs = append(reqs, q)
		if len(reqs) < copyBatch {
			return nil
		}
		err := c.imp.PutRequestIDs(ctx, reqs)
		reqs = reqs[:0]
		return err
	})
	if err == nil && len(reqs) > 0 {
		err = c.imp.PutRequestIDs(ctx, reqs)
	}
	if err != nil {
		return nil, err
	}

	if err := c.src.EachScan(ctx, func(s *consent.Scan) error {
		c.site(s.Site).Scans++
		sum.Scans++
		return c.imp.PutScan(ctx, s)
	}); err != nil {
		return nil, err
	}

	sessions, err := c.src.AllSessions(ctx)
	if err != nil {
		return nil, err
	}
	if err := c.imp.PutSessions(ctx, sessions); err != nil {
		return nil, err
	}
	sum.Sessions = len(sessions)
	sum.Sites = len(c.order)
	return &sum, nil
}

// copyTheLog copies the transparency log: its leaves (with the place in
// its chain of each one's record), its tree's hashes, its signed and
// witnessed checkpoints, and its state, the newest checkpoint.
func (c *storeCopy) copyTheLog(ctx context.Context) error {
	signer, err := c.src.LogSigner(ctx)
	if err != nil {
		return err
	}
	latest, err := c.src.LatestCheckpoint(ctx)
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
	var leaves []*consent.LogLeaf
	err = c.src.EachLogLeaf(ctx, func(l *consent.LogLeaf) error {
		leaves = append(leaves, l)
		if len(leaves) < copyBatch {
			return nil
		}
		err := c.imp.PutLogLeaves(ctx, leaves)
		leaves = leaves[:0]
		return err
	})
	if err == nil && len(leaves) > 0 {
		err = c.imp.PutLogLeaves(ctx, leaves)
	}
	if err != nil {
		return err
	}
	var ids []int64
	var hashes [][]byte
	err = c.src.EachLogHash(ctx, func(id int64, h []byte) error {
		ids, hashes = append(ids, id), append(hashes, h)
		if len(ids) < copyBatch {
			return nil
		}
		err := c.imp.PutLogHashes(ctx, ids, hashes)
		ids, hashes = ids[:0], hashes[:0]
		return err
	})
	if err == nil && len(ids) > 0 {
		err = c.imp.PutLogHashes(ctx, ids, hashes)
	}
	if err != nil {
		return err
	}
	if err := c.src.EachLogCheckpoint(ctx, func(cp *consent.LogCheckpoint, witnessed bool) error {
		return c.imp.PutLogCheckpoint(ctx, cp, witnessed)
	}); err != nil {
		return err
	}
	return c.imp.FinishLog(ctx, cp.Size, cp.Hash[:], cp.Origin)
}

// verify walks every chain as the copy holds it, before it commits: each
// must verify and end where the source's ends, with as many records.
func (c *storeCopy) verify(ctx context.Context) (bool, error) {
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
		c.prog.phase("records of " + s + " verified on the copy")
		res, err := proof.Verify(ctx, countedChain{c.imp, c.prog}, s, pubs, ids)
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
func (c *storeCopy) verifyLog(ctx context.Context) (bool, error) {
	latest, err := c.imp.LatestCheckpoint(ctx)
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
	err = c.imp.LogLeaves(ctx, func(l *translog.LeafRecord) error {
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
			key, err := c.src.LogAuditKey(ctx, l.Site)
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
