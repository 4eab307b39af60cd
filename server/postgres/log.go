package postgres

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/koekje/koekje/server/consent"
	"github.com/koekje/koekje/server/proof"
	"github.com/koekje/koekje/server/store"
	"github.com/koekje/koekje/server/translog"
)

// The transparency log on PostgreSQL. Batches commit records as before,
// and a trigger queues each in log_pending. Of the instances that started
// the log, the one holding the "log" lease integrates: it reads the
// committed part of the queue in the order the records were written (their
// identity; a chain's records are written in its order), gives each record
// its leaf (salted commitment and site tag), writes the tree's new hashes
// and a signed checkpoint, and takes the records off the queue, all in one
// transaction whose first statement moves log_state from the size and root
// it read to the new ones (koekje_advance_log). An integrator that lost the
// lease without noticing, or raced another, fails that statement and reads
// again: the log never forks, and each record gets one leaf. The
// integrator runs every integrateEvery and right after its own instance
// commits a batch, off the write path: a record's proof is ready a fraction
// of a second after its 201, not with it. Batches send no NOTIFY to wake
// it: a notifying transaction takes a database-wide lock at commit, which
// would serialize every instance's batches.

const (
	// logLease elects the integrator.
	logLease = "log"
	// integrateEvery is how often the integrator looks at the queue.
	integrateEvery = 200 * time.Millisecond
	// leaseTTL is how long an integrator that stopped (killed, cut off)
	// holds up the log before another instance takes over; the holder
	// renews it every leaseRenew.
	leaseTTL   = 5 * time.Second
	leaseRenew = time.Second
	// maxIntegrate bounds the records of one integration transaction.
	maxIntegrate = 10000
	// maxRecentHashes bounds the integrator's copy of the tree's right edge.
	maxRecentHashes = 1 << 14
)

// errLogMoved is a pass that lost the compare-and-set on log_state.
var errLogMoved = errors.New("another integrator moved the log first")

// integrator is an instance's side of the log, made by StartLog.
type integrator struct {
	signer    *translog.Signer
	auditRoot []byte
	holder    string // this instance's name for the lease
	nudge     chan struct{}

	mu      sync.Mutex // one pass at a time
	recent  map[int64]tlog.Hash
	taggers map[string]*translog.SiteTagger

	moved      atomic.Int64 // passes that lost the compare-and-set
	integrated atomic.Int64 // records given their leaves
	refused    atomic.Int64 // queued records without a valid MAC, given none

	// beforeAdvance, when set, runs between computing a pass and
	// committing it; tests use it to make two integrators race.
	beforeAdvance func()
}

// StartLog keeps the transparency log from now on and returns its signer,
// whose verifier key auditors and witnesses use. The first instance to
// start the log names it with origin; every later one signs under that
// name, whatever its own public URL says, so the instances publish one log.
// The integrator runs in the background until Close.
func (db *DB) StartLog(ctx context.Context, origin string) (*translog.Signer, error) {
	if db.tl.Load() != nil {
		return nil, errors.New("the log is already started")
	}
	seed, err := db.Secret(ctx, store.LogKeySecret, 32)
	if err != nil {
		return nil, err
	}
	root, err := db.Secret(ctx, store.LogAuditRootSecret, 32)
	if err != nil {
		return nil, err
	}
	if _, err := translog.NewSigner(origin, seed); err != nil { // a name a log may have
		return nil, err
	}
	var named string
	if err := db.pool.QueryRow(ctx, `UPDATE log_state SET origin = coalesce(origin, $1) RETURNING origin`, origin).Scan(&named); err != nil {
		return nil, fmt.Errorf("log state: %w", err)
	}
	signer, err := translog.NewSigner(named, seed)
	if err != nil {
		return nil, err
	}
	host, _ := os.Hostname()
	tag := make([]byte, 4)
	rand.Read(tag)
	in := &integrator{
		signer: signer, auditRoot: root, holder: fmt.Sprintf("%s/%d/%s", host, os.Getpid(), hex.EncodeToString(tag)),
		nudge: make(chan struct{}, 1), recent: map[int64]tlog.Hash{}, taggers: map[string]*translog.SiteTagger{},
	}
	lctx, cancel := context.WithCancel(context.Background())
	db.stopLog, db.logDone = cancel, make(chan struct{})
	db.tl.Store(in)
	go db.runLog(lctx, in)
	return signer, nil
}

// runLog integrates while this instance holds the log lease.
func (db *DB) runLog(ctx context.Context, in *integrator) {
	defer close(db.logDone)
	tick := time.NewTicker(integrateEvery)
	defer tick.Stop()
	var (
		leader     bool
		renewed    time.Time
		lastLogged time.Time
	)
	warn := func(msg string, err error) {
		if ctx.Err() == nil && time.Since(lastLogged) >= 10*time.Second {
			db.log.Warn(msg, "err", err)
			lastLogged = time.Now()
		}
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case <-in.nudge:
		}
		if time.Since(renewed) >= leaseRenew {
			ok, err := db.Lease(ctx, logLease, in.holder, leaseTTL)
			if err != nil {
				warn("log lease", err)
				leader = false
				continue
			}
			if ok != leader {
				db.log.Info("log lease", "holder", in.holder, "integrating", ok)
			}
			leader, renewed = ok, time.Now()
		}
		if !leader {
			continue
		}
		if _, err := db.integrate(ctx, in); err != nil && !errors.Is(err, errLogMoved) {
			warn("integrate the log", err)
		}
	}
}

// GuardLog makes every integration pass ask g before it appends and signs:
// while g holds, records stay in log_pending, and when g may let go the
// integrator looks again.
func (db *DB) GuardLog(g *translog.Guard) {
	db.guard.Store(g)
	g.OnRelease(db.nudgeLog)
}

// nudgeLog wakes the integrator after this instance committed a batch.
func (db *DB) nudgeLog() {
	if in := db.tl.Load(); in != nil {
		select {
		case in.nudge <- struct{}{}:
		default:
		}
	}
}

// Integrate gives every queued record its leaf now, whoever holds the
// lease (the compare-and-set keeps that safe), and returns how many this
// instance gave; when another integrator moves the log first, it reads
// again and goes on.
func (db *DB) Integrate(ctx context.Context) (int64, error) {
	in := db.tl.Load()
	if in == nil {
		return 0, errors.New("the log is not started")
	}
	var total int64
	for try := 0; ; try++ {
		n, err := db.integrate(ctx, in)
		total += n
		if !errors.Is(err, errLogMoved) || try == 100 {
			return total, err
		}
	}
}

// LogRaces counts this instance's integration passes that another
// integrator beat to the log.
func (db *DB) LogRaces() int64 {
	if in := db.tl.Load(); in != nil {
		return in.moved.Load()
	}
	return 0
}

// LogIntegrated counts the records this instance gave their leaves.
func (db *DB) LogIntegrated() int64 {
	if in := db.tl.Load(); in != nil {
		return in.integrated.Load()
	}
	return 0
}

// LogRefused counts the queued records this instance gave no leaf because
// the write path did not authenticate them.
func (db *DB) LogRefused() int64 {
	if in := db.tl.Load(); in != nil {
		return in.refused.Load()
	}
	return 0
}

// integrate runs passes until the queue is empty.
func (db *DB) integrate(ctx context.Context, in *integrator) (int64, error) {
	var total int64
	for {
		n, more, err := db.pass(ctx, in)
		total += n
		if err != nil || !more {
			return total, err
		}
	}
}

// queued is a record waiting for its leaf.
type queued struct {
	id   int64
	site string
	seq  int64
	kind translog.LeafKind
	hash []byte // nil: the record is gone (purged) or already has a leaf
	mac  []byte // the write path's MAC of the record (logmac.go)
	// created and before are a purge checkpoint's time and rule: with
	// site, seq and hash (the last purged record's) they make the purge's
	// statement.
	created, before *time.Time
	// scan is a recorded scan's row, for its statement (kind 3).
	scan   *consent.Scan
	report []byte
}

// pass integrates up to maxIntegrate queued records in one transaction and
// reports whether more may be waiting.
func (db *DB) pass(ctx context.Context, in *integrator) (int64, bool, error) {
	in.mu.Lock()
	defer in.mu.Unlock()
	var (
		size int64
		root []byte
	)
	if err := db.pool.QueryRow(ctx, `SELECT size, root FROM log_state`).Scan(&size, &root); err != nil {
		return 0, false, fmt.Errorf("log state: %w", err)
	}
	rows, err := db.pool.Query(ctx, `SELECT p.id, p.site, p.seq, p.kind,
			CASE WHEN EXISTS (SELECT 1 FROM log_leaves l WHERE l.site = p.site AND l.seq = p.seq AND l.kind = p.kind) THEN NULL
				WHEN p.kind = 2 THEN c.hash WHEN p.kind = 3 THEN sha256(s.report) ELSE r.hash END, p.mac, c.created_at, c.purged_before,
			s.id, s.started_at, s.recorded_at, s.verdict, coalesce(s.schedule, ''), s.report
		FROM log_pending p LEFT JOIN records r ON p.kind = 1 AND r.site = p.site AND r.seq = p.seq
			LEFT JOIN checkpoints c ON p.kind = 2 AND c.site = p.site AND c.seq = p.seq
			LEFT JOIN scans s ON p.kind = 3 AND s.id = p.scan
		ORDER BY p.id LIMIT $1`, maxIntegrate)
	if err != nil {
		return 0, false, fmt.Errorf("log queue: %w", err)
	}
	queue, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (queued, error) {
		var q queued
		var kind int16
		var scanID *uuid.UUID
		var started, recorded *time.Time
		var verdict, schedule *string
		err := row.Scan(&q.id, &q.site, &q.seq, &kind, &q.hash, &q.mac, &q.created, &q.before, &scanID, &started, &recorded, &verdict, &schedule, &q.report)
		q.kind = translog.LeafKind(kind)
		if err == nil && scanID != nil {
			q.scan = &consent.Scan{Site: q.site, ID: *scanID, StartedAt: *started, RecordedAt: *recorded, Verdict: *verdict, Schedule: *schedule}
		}
		return q, err
	})
	if err != nil {
		return 0, false, fmt.Errorf("log queue: %w", err)
	}
	if len(queue) == 0 {
		return 0, false, nil
	}
	app := &logAppender{db: db, in: in, ctx: ctx, pending: map[int64]tlog.Hash{}, size: size}
	guard := db.guard.Load()
	if guard != nil && !guard.Allow(in.signer.Origin(), size, app) {
		return 0, false, nil // the records wait in the queue
	}
	taken := make([]int64, len(queue))
	for i, q := range queue {
		taken[i] = q.id
		if q.hash == nil {
			continue
		}
		if q.kind == translog.KindScan {
			statement := proof.ScanStatement(q.scan, q.report)
			if !db.logMAC.validScan(q.site, statement, q.mac) {
				in.refused.Add(1)
				db.log.Error("a scan queued for the log without the write path's MAC gets no entry: it was written behind the server's back",
					"site", q.site, "scan", q.scan.ID)
				continue
			}
			app.scans = append(app.scans, q.scan.ID)
			if err := app.addLeaf(q.site, q.seq, translog.KindScan, statement); err != nil {
				return 0, false, err
			}
			continue
		}
		if q.kind == translog.KindPurge {
			cp := &consent.Checkpoint{Site: q.site, Seq: q.seq, Hash: q.hash, CreatedAt: q.created.UTC()}
			if q.before != nil {
				cp.Before = q.before.UTC()
			}
			statement := proof.PurgeStatement(cp)
			if !db.logMAC.validPurge(q.site, q.seq, statement, q.mac) {
				in.refused.Add(1)
				db.log.Error("a purge queued for the log without the write path's MAC gets no entry: it was written behind the server's back",
					"site", q.site, "seq", q.seq)
				continue
			}
			if err := app.addPurge(q.site, q.seq, statement); err != nil {
				return 0, false, err
			}
			continue
		}
		if !db.logMAC.valid(q.site, q.seq, q.hash, q.mac) {
			// Not written by the write path: it is taken off the queue
			// without a leaf, and verify reports it.
			in.refused.Add(1)
			db.log.Error("a record queued for the log without the write path's MAC gets no leaf: it was written behind the server's back",
				"site", q.site, "seq", q.seq)
			continue
		}
		if err := app.add(q.site, q.seq, q.hash); err != nil {
			return 0, false, err
		}
	}
	newRoot := root
	var (
		signed []byte
		th     tlog.Hash
	)
	if app.size > size {
		th, err = tlog.TreeHash(app.size, app)
		if err != nil {
			return 0, false, fmt.Errorf("tree hash: %w", err)
		}
		newRoot = th[:]
		if signed, err = in.signer.Sign(app.size, th); err != nil {
			return 0, false, fmt.Errorf("sign checkpoint: %w", err)
		}
	}
	if in.beforeAdvance != nil {
		in.beforeAdvance()
	}
	// One implicit transaction, in one round trip: the compare-and-set
	// first, so a loser writes nothing.
	b := &pgx.Batch{}
	b.Queue(`SELECT koekje_advance_log($1, $2, $3, $4, $5)`, size, root, app.size, newRoot, taken)
	if app.size > size {
		ids, hashes := make([]int64, 0, len(app.pending)), make([][]byte, 0, len(app.pending))
		for id, h := range app.pending {
			ids, hashes = append(ids, id), append(hashes, h[:])
		}
		b.Queue(`INSERT INTO log_hashes (id, hash) SELECT * FROM unnest($1::bigint[], $2::bytea[])`, ids, hashes)
		b.Queue(`INSERT INTO log_leaves (idx, site, seq, salt, entry, kind)
			SELECT * FROM unnest($1::bigint[], $2::text[], $3::bigint[], $4::bytea[], $5::bytea[], $6::smallint[])`,
			app.idx, app.sites, app.seqs, app.saltsOut, app.entries, app.kinds)
		if len(app.scans) > 0 {
			// Each scan's entry, with the salt that opens it; the scan
			// is the last leaf of its kind added in order, so the kinds
			// line up with app.scans.
			var idx []int64
			var salts [][]byte
			for i, k := range app.kinds {
				if translog.LeafKind(k) == translog.KindScan {
					idx, salts = append(idx, app.idx[i]), append(salts, app.saltsOut[i])
				}
			}
			b.Queue(`INSERT INTO scan_entries (scan_id, entry_index, entry_salt)
				SELECT * FROM unnest($1::uuid[], $2::bigint[], $3::bytea[])`, app.scans, idx, salts)
		}
		if len(app.purges) > 0 {
			// Each purge checkpoint names its entry, and the salt that
			// opens its commitment.
			var sites []string
			var seqs, idx []int64
			var salts [][]byte
			for _, i := range app.purges {
				sites, seqs, idx, salts = append(sites, app.sites[i]), append(seqs, app.seqs[i]), append(idx, app.idx[i]), append(salts, app.saltsOut[i])
			}
			b.Queue(`UPDATE checkpoints c SET entry_index = u.idx, entry_salt = u.salt
				FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::bytea[]) AS u (site, seq, idx, salt)
				WHERE c.site = u.site AND c.seq = u.seq`, sites, seqs, idx, salts)
		}
		b.Queue(`INSERT INTO log_checkpoints (size, signed, created_at) VALUES ($1, $2, now())`, app.size, signed)
	}
	if err := db.pool.SendBatch(ctx, b).Close(); err != nil {
		var pe *pgconn.PgError
		if errors.As(err, &pe) && (pe.Code == "KJ409" || pe.Code == "23505") {
			in.moved.Add(1)
			return 0, false, fmt.Errorf("%w: %v", errLogMoved, err)
		}
		return 0, false, fmt.Errorf("integrate the log: %w", err)
	}
	if len(in.recent)+len(app.pending) > maxRecentHashes {
		clear(in.recent)
	}
	for k, h := range app.pending {
		in.recent[k] = h
	}
	in.integrated.Add(app.size - size)
	if guard != nil && app.size > size {
		guard.Signed(translog.Checkpoint{Origin: in.signer.Origin(), Size: app.size, Hash: th})
	}
	return app.size - size, len(queue) == maxIntegrate, nil
}

// logAppender collects one pass's leaves and hashes.
type logAppender struct {
	db      *DB
	in      *integrator
	ctx     context.Context
	pending map[int64]tlog.Hash // stored hashes of this pass
	size    int64
	salts   *translog.Salts // this pass's, made at its first leaf

	idx               []int64
	sites             []string
	seqs              []int64
	kinds             []int16
	saltsOut, entries [][]byte
	purges            []int       // the places of purge entries in the above
	scans             []uuid.UUID // the scans whose entries are in the above, in order
}

// add appends the leaf of a record.
func (a *logAppender) add(site string, seq int64, recordHash []byte) error {
	return a.addLeaf(site, seq, translog.KindRecord, recordHash)
}

// addPurge appends the entry of a purge through seq, committing to its
// statement (proof.PurgeStatement).
func (a *logAppender) addPurge(site string, seq int64, statement []byte) error {
	a.purges = append(a.purges, len(a.idx))
	return a.addLeaf(site, seq, translog.KindPurge, statement)
}

// addLeaf appends a leaf of kind committing to what under a fresh salt.
func (a *logAppender) addLeaf(site string, seq int64, kind translog.LeafKind, what []byte) error {
	tagger, ok := a.in.taggers[site]
	if !ok {
		tagger = translog.NewSiteTagger(translog.AuditKey(a.in.auditRoot, site))
		a.in.taggers[site] = tagger
	}
	if a.salts == nil {
		var err error
		if a.salts, err = translog.NewSalts(); err != nil {
			return err
		}
	}
	idx := a.size
	salt := a.salts.For(idx)
	entry := translog.Leaf{Kind: kind, Commitment: kind.Commit(salt, what), SiteTag: tagger.Tag(idx)}.Encode()
	hashes, err := tlog.StoredHashes(idx, entry, a)
	if err != nil {
		return err
	}
	base := tlog.StoredHashIndex(0, idx)
	for i, h := range hashes {
		a.pending[base+int64(i)] = h
	}
	a.idx, a.sites, a.seqs, a.kinds = append(a.idx, idx), append(a.sites, site), append(a.seqs, seq), append(a.kinds, int16(kind))
	a.saltsOut, a.entries = append(a.saltsOut, salt), append(a.entries, entry)
	a.size++
	return nil
}

// ReadHashes reads stored hashes from this pass, the ones this integrator
// committed lately, or the table.
func (a *logAppender) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(indexes))
	var missing, at []int64
	for i, x := range indexes {
		if h, ok := a.pending[x]; ok {
			out[i] = h
		} else if h, ok := a.in.recent[x]; ok {
			out[i] = h
		} else {
			missing, at = append(missing, x), append(at, int64(i))
		}
	}
	if len(missing) == 0 {
		return out, nil
	}
	found, err := a.db.LogHashes(a.ctx, missing)
	if err != nil {
		return nil, err
	}
	for j, i := range at {
		out[i] = found[j]
	}
	return out, nil
}

// LogAuditKey returns a site's audit key, for its auditor.
func (db *DB) LogAuditKey(ctx context.Context, site string) ([]byte, error) {
	root, err := db.Secret(ctx, store.LogAuditRootSecret, 32)
	if err != nil {
		return nil, err
	}
	return translog.AuditKey(root, site), nil
}

// LatestCheckpoint returns the newest signed checkpoint, or nil.
func (db *DB) LatestCheckpoint(ctx context.Context) ([]byte, error) {
	return db.newest(ctx, `SELECT signed FROM log_checkpoints ORDER BY size DESC LIMIT 1`)
}

// LatestWitnessed returns the newest witnessed checkpoint, or nil.
func (db *DB) LatestWitnessed(ctx context.Context) ([]byte, error) {
	return db.newest(ctx, `SELECT cosigned FROM log_witnessed ORDER BY size DESC LIMIT 1`)
}

func (db *DB) newest(ctx context.Context, q string) ([]byte, error) {
	var b []byte
	err := db.pool.QueryRow(ctx, q).Scan(&b)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("log checkpoint: %w", err)
	}
	return b, nil
}

// SaveWitnessed keeps a checkpoint with the cosignatures it gathered; every
// instance then publishes it.
func (db *DB) SaveWitnessed(ctx context.Context, size int64, cosigned []byte) error {
	if _, err := db.pool.Exec(ctx, `INSERT INTO log_witnessed (size, cosigned) VALUES ($1, $2)
		ON CONFLICT (size) DO UPDATE SET cosigned = excluded.cosigned`, size, cosigned); err != nil {
		return fmt.Errorf("save witnessed checkpoint: %w", err)
	}
	return nil
}

// LogHashes reads stored hashes of the log (tlog's stored hash indexes).
func (db *DB) LogHashes(ctx context.Context, indexes []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(indexes))
	if len(indexes) == 0 {
		return out, nil
	}
	rows, err := db.pool.Query(ctx, `SELECT id, hash FROM log_hashes WHERE id = ANY ($1)`, indexes)
	if err != nil {
		return nil, fmt.Errorf("log hashes: %w", err)
	}
	defer rows.Close()
	found := make(map[int64][]byte, len(indexes))
	for rows.Next() {
		var id int64
		var h []byte
		if err := rows.Scan(&id, &h); err != nil {
			return nil, fmt.Errorf("log hashes: %w", err)
		}
		found[id] = h
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("log hashes: %w", err)
	}
	for i, x := range indexes {
		h, ok := found[x]
		if !ok || len(h) != tlog.HashSize {
			return nil, fmt.Errorf("log hash %d: %w", x, consent.Errorf(consent.ENOTFOUND, "not in the log"))
		}
		copy(out[i][:], h)
	}
	return out, nil
}

// LogEntries returns the entries of leaves [from, to).
func (db *DB) LogEntries(ctx context.Context, from, to int64) ([][]byte, error) {
	rows, err := db.pool.Query(ctx, `SELECT idx, entry FROM log_leaves WHERE idx >= $1 AND idx < $2 ORDER BY idx`, from, to)
	if err != nil {
		return nil, fmt.Errorf("log entries: %w", err)
	}
	defer rows.Close()
	var out [][]byte
	for next := from; rows.Next(); next++ {
		var idx int64
		var e []byte
		if err := rows.Scan(&idx, &e); err != nil {
			return nil, fmt.Errorf("log entries: %w", err)
		}
		if idx != next {
			return nil, fmt.Errorf("log entry %d is missing", next)
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// LeafOf returns the leaf of a site's record seq, or nil if it has none
// (yet: the integrator gives it one within moments of its commit).
func (db *DB) LeafOf(ctx context.Context, site string, seq int64) (*translog.StoredLeaf, error) {
	var l translog.StoredLeaf
	err := db.pool.QueryRow(ctx, `SELECT idx, salt, entry FROM log_leaves WHERE site = $1 AND seq = $2 AND kind = 1`, site, seq).
		Scan(&l.Index, &l.Salt, &l.Entry)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("leaf: %w", err)
	}
	return &l, nil
}

// LogLeaves calls fn for each leaf in index order, with the record it
// commits to if that record is still there.
func (db *DB) LogLeaves(ctx context.Context, fn func(*translog.LeafRecord) error) error {
	return logLeaves(ctx, db.pool, fn)
}

// logLeaves is LogLeaves through q.
func logLeaves(ctx context.Context, q querier, fn func(*translog.LeafRecord) error) error {
	rows, err := q.Query(ctx, `SELECT l.idx, l.entry, l.salt, coalesce(r.site, ''), coalesce(r.seq, 0), r.hash, l.site
		FROM log_leaves l LEFT JOIN records r ON r.site = l.site AND r.seq = l.seq AND l.kind = 1 ORDER BY l.idx`)
	if err != nil {
		return fmt.Errorf("log leaves: %w", err)
	}
	defer rows.Close()
	var l translog.LeafRecord
	for rows.Next() {
		if err := rows.Scan(&l.Index, &l.Entry, &l.Salt, &l.Site, &l.Seq, &l.RecordHash, &l.Claimed); err != nil {
			return fmt.Errorf("log leaves: %w", err)
		}
		if err := fn(&l); err != nil {
			return err
		}
	}
	return rows.Err()
}

// LogPending counts site's records up to sequence through that are queued
// for the log with the write path's MAC and have no leaf yet: a row queued
// by the trigger for a record inserted any other way (psql) is not
// counted, however long the log is held, and stays a record without a leaf.
func (db *DB) LogPending(ctx context.Context, site string, through int64) (int64, error) {
	rows, err := db.pool.Query(ctx, `SELECT p.seq, r.hash, p.mac FROM log_pending p
		JOIN records r ON r.site = p.site AND r.seq = p.seq
		WHERE p.kind = 1 AND p.site = $1 AND p.seq <= $2
			AND NOT EXISTS (SELECT 1 FROM log_leaves l WHERE l.site = p.site AND l.seq = p.seq AND l.kind = 1)`, site, through)
	if err != nil {
		return 0, fmt.Errorf("log queue: %w", err)
	}
	defer rows.Close()
	var n int64
	for rows.Next() {
		var (
			seq       int64
			hash, mac []byte
		)
		if err := rows.Scan(&seq, &hash, &mac); err != nil {
			return 0, fmt.Errorf("log queue: %w", err)
		}
		if db.logMAC.valid(site, seq, hash, mac) {
			n++
		}
	}
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("log queue: %w", err)
	}
	return n, nil
}

// LogOrigin returns the log's name, or "" when no log was made yet.
func (db *DB) LogOrigin(ctx context.Context) (string, error) {
	var origin *string
	if err := db.pool.QueryRow(ctx, `SELECT origin FROM log_state`).Scan(&origin); err != nil {
		return "", fmt.Errorf("log state: %w", err)
	}
	if origin == nil {
		return "", nil
	}
	return *origin, nil
}

// LogSigner returns the log's signer, under the log's name, or nil when no
// log was ever made. It writes nothing.
func (db *DB) LogSigner(ctx context.Context) (*translog.Signer, error) {
	origin, err := db.LogOrigin(ctx)
	if err != nil || origin == "" {
		return nil, err
	}
	seed, err := db.Secret(ctx, store.LogKeySecret, 32)
	if err != nil {
		return nil, err
	}
	return translog.NewSigner(origin, seed)
}

// NewLogSigner returns the signer of the log, naming the log after origin
// and making its key the first time, without starting the log: an operator
// gives its verifier key to witnesses before the server starts. A log
// named otherwise is refused: a log keeps its name for life.
func (db *DB) NewLogSigner(ctx context.Context, origin string) (*translog.Signer, error) {
	seed, err := db.Secret(ctx, store.LogKeySecret, 32)
	if err != nil {
		return nil, err
	}
	signer, err := translog.NewSigner(origin, seed) // a name a log may have
	if err != nil {
		return nil, err
	}
	var named string
	if err := db.pool.QueryRow(ctx, `UPDATE log_state SET origin = coalesce(origin, $1) RETURNING origin`, origin).Scan(&named); err != nil {
		return nil, fmt.Errorf("log state: %w", err)
	}
	if named != origin {
		return nil, fmt.Errorf("%w: this database's log is named %q, not %q", translog.ErrNamed, named, origin)
	}
	return signer, nil
}
