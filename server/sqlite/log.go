package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/bits"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/koekje/koekje/server/consent"
	"github.com/koekje/koekje/server/store"
	"github.com/koekje/koekje/server/translog"
)

// The transparency log lives beside the records: the writer gives each
// record its leaf (salted commitment and site tag) in the transaction that
// commits it, stores the tree's new hashes, and signs a checkpoint of the
// new size, so a record's inclusion proof is ready when its 201 is sent.

// logState is the writer's view of the log; owned by the writer goroutine
// once StartLog has set it.
type logState struct {
	signer    *translog.Signer
	auditRoot []byte
	size      int64
	// recent keeps the stored hashes of the tree's right edge: appending
	// and the tree hash read only those.
	recent map[int64]tlog.Hash
	// guard, once GuardLog set it, says whether the log may be signed on;
	// while it holds, records wait in log_pending with mac's MAC, and
	// queued counts them.
	guard  *translog.Guard
	mac    translog.QueueMAC
	queued int64
	waking atomic.Bool // an empty batch is on its way to append what waits
}

// AuditKey is the key whose holder can find a site's leaves in the log.
func AuditKey(root []byte, site string) []byte {
	return translog.AuditKey(root, site)
}

// StartLog keeps the transparency log from now on, with the log's key from
// the database's secrets (made the first time). The log is named once, by
// the first StartLog or NewLogSigner, after origin; every later start signs
// under that name, whatever origin it is given (the signer's Origin says
// which). Records written before the log was made are given leaves then,
// in the order they were written: that is the one way into the log besides
// the write path, so a record slipped into the database later never gets a
// leaf. It returns the signer, whose verifier key auditors use.
func (db *DB) StartLog(ctx context.Context, origin string) (*translog.Signer, error) {
	named, made, err := db.nameLog(ctx, origin)
	if err != nil {
		return nil, err
	}
	st, err := db.newLogState(ctx, named)
	if err != nil {
		return nil, err
	}
	db.commitMu.Lock()
	defer db.commitMu.Unlock()
	if err := db.write.QueryRowContext(ctx, `SELECT coalesce(max(idx) + 1, 0) FROM log_leaves`).Scan(&st.size); err != nil {
		return nil, fmt.Errorf("log size: %w", err)
	}
	// Only a log made now over an empty tree takes in the records written
	// before it: a log whose name row went missing is not made anew.
	if made && st.size == 0 {
		if err := db.backfillLog(ctx, st); err != nil {
			return nil, err
		}
	}
	if err := db.resignUnderName(ctx, st); err != nil {
		return nil, err
	}
	if err := db.write.QueryRowContext(ctx, `SELECT count(*) FROM log_pending`).Scan(&st.queued); err != nil {
		return nil, fmt.Errorf("log queue: %w", err)
	}
	// Records that wait for the log are appended by the next batch or, if
	// a guard is set to say whether they may be, at once by an empty one.
	st.guard = db.guard
	db.tl = st
	if st.queued > 0 && st.guard != nil {
		go db.wakeLog() // once StartLog lets go of the writer
	}
	return st.signer, nil
}

// GuardLog makes every batch ask g before it appends and signs: while g
// holds, the batch's records wait in log_pending with the write path's MAC.
// When g may let go, an empty batch looks at the tree again and appends
// what waits.
func (db *DB) GuardLog(g *translog.Guard) {
	db.commitMu.Lock()
	db.guard = g
	st := db.tl
	if st != nil {
		st.guard = g
	}
	db.commitMu.Unlock()
	g.OnRelease(db.wakeLog)
	db.wakeLog()
}

// wakeLog commits an empty batch in the background, which appends the
// records waiting for the log if the guard lets it; one at a time.
func (db *DB) wakeLog() {
	db.commitMu.Lock()
	st := db.tl
	queued := st != nil && st.queued > 0
	db.commitMu.Unlock()
	if !queued || !st.waking.CompareAndSwap(false, true) {
		return
	}
	go func() {
		defer st.waking.Store(false)
		for {
			if err := db.commit(nil); err != nil {
				db.log.Warn("append the records waiting for the log", "err", err)
				return
			}
			db.commitMu.Lock()
			more := st.queued > 0 && (st.guard == nil || !st.guard.Held())
			db.commitMu.Unlock()
			if !more {
				return
			}
		}
	}()
}

// logForEntry is the log an entry of another kind than a record's (a
// purge's, a scan's) is appended to: the one this process started, or,
// made outside a serving process (koekje purge, koekje scan --record), the
// database's log if it has one; nil without a log. Its keys are read here,
// before a transaction takes the one writer connection; the caller holds
// commitMu.
func (db *DB) logForEntry(ctx context.Context) (*logState, error) {
	if db.tl != nil {
		return db.tl, nil
	}
	origin, err := db.LogOrigin(ctx)
	if err != nil || origin == "" {
		return nil, err
	}
	st, err := db.newLogState(ctx, origin)
	if err != nil {
		return nil, err
	}
	// Another process than the server's is held to the same reference,
	// when there is one beside the key file.
	ref, err := translog.OpenReference(db.kek)
	if err != nil {
		return nil, err
	}
	if _, ok := ref.Checkpoint(); ok {
		st.guard = translog.NewGuard(ref, nil)
	}
	return st, nil
}

// newLogState is the state of the log named origin, for appending to it.
func (db *DB) newLogState(ctx context.Context, origin string) (*logState, error) {
	seed, err := db.Secret(ctx, store.LogKeySecret, 32)
	if err != nil {
		return nil, err
	}
	root, err := db.Secret(ctx, store.LogAuditRootSecret, 32)
	if err != nil {
		return nil, err
	}
	mac, err := db.Secret(ctx, store.LogQueueMACSecret, 32)
	if err != nil {
		return nil, err
	}
	signer, err := translog.NewSigner(origin, seed)
	if err != nil {
		return nil, err
	}
	return &logState{signer: signer, auditRoot: root, mac: mac, recent: map[int64]tlog.Hash{}}, nil
}

// LogOrigin returns the log's name, or "" when no log was made yet.
func (db *DB) LogOrigin(ctx context.Context) (string, error) {
	var origin string
	err := db.read.QueryRowContext(ctx, `SELECT origin FROM log_name`).Scan(&origin)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	return origin, err
}

// nameLog returns the log's name, naming it origin if it has none yet
// (made is then true).
func (db *DB) nameLog(ctx context.Context, origin string) (named string, made bool, err error) {
	if _, err := translog.NewSigner(origin, make([]byte, 32)); err != nil { // a name a log may have
		return "", false, err
	}
	res, err := db.write.ExecContext(ctx, `INSERT INTO log_name (one, origin) VALUES (1, ?) ON CONFLICT (one) DO NOTHING`, origin)
	if err != nil {
		return "", false, fmt.Errorf("name the log: %w", err)
	}
	n, _ := res.RowsAffected()
	if err := db.write.QueryRowContext(ctx, `SELECT origin FROM log_name`).Scan(&named); err != nil {
		return "", false, fmt.Errorf("the log's name: %w", err)
	}
	return named, n == 1, nil
}

// resignUnderName signs the newest checkpoint again under the log's name
// when it was signed under another (a database whose log earlier starts
// renamed), so the log is served at once, not only after the next record.
// It signs only the tree that checkpoint committed to: if the stored
// hashes no longer give its root, it signs nothing and says so.
func (db *DB) resignUnderName(ctx context.Context, st *logState) error {
	var (
		size   int64
		signed []byte
	)
	err := db.write.QueryRowContext(ctx, `SELECT size, signed FROM log_checkpoints ORDER BY size DESC LIMIT 1`).Scan(&size, &signed)
	if errors.Is(err, sql.ErrNoRows) {
		return nil
	}
	if err != nil {
		return err
	}
	lines := strings.SplitN(string(signed), "\n", 4)
	if len(lines) < 3 || lines[0] == st.signer.Origin() {
		return nil
	}
	tx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	th, err := tlog.TreeHash(size, st.appender(tx))
	if err != nil {
		return fmt.Errorf("tree hash of checkpoint %d: %w", size, err)
	}
	if lines[2] != th.String() {
		return fmt.Errorf("the newest checkpoint (size %d, under the name %q) does not match the stored tree: not signing it under %q", size, lines[0], st.signer.Origin())
	}
	again, err := st.signer.Sign(size, th)
	if err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO log_checkpoints (size, signed, created_at) VALUES (?, ?, ?)
		ON CONFLICT (size) DO UPDATE SET signed = excluded.signed, created_at = excluded.created_at`, size, again, time.Now().UnixMicro()); err != nil {
		return err
	}
	db.log.Warn("the log's newest checkpoint was signed under another name; signed again under the log's name",
		"log_origin", st.signer.Origin(), "was", lines[0], "size", size)
	return tx.Commit()
}

// LogAuditKey returns a site's audit key, for its auditor.
func (db *DB) LogAuditKey(ctx context.Context, site string) ([]byte, error) {
	root, err := db.Secret(ctx, store.LogAuditRootSecret, 32)
	if err != nil {
		return nil, err
	}
	return AuditKey(root, site), nil
}

// backfillLog gives leaves to records that have none, oldest first, a
// transaction per 10,000.
func (db *DB) backfillLog(ctx context.Context, st *logState) error {
	for {
		tx, err := db.write.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		rows, err := tx.QueryContext(ctx, `SELECT r.id, r.site, r.hash FROM records r
			WHERE NOT EXISTS (SELECT 1 FROM log_leaves l WHERE l.record = r.id) ORDER BY r.id LIMIT 10000`)
		if err != nil {
			tx.Rollback()
			return fmt.Errorf("backfill the log: %w", err)
		}
		type row struct {
			id   int64
			site string
			hash []byte
		}
		var page []row
		for rows.Next() {
			var r row
			if err := rows.Scan(&r.id, &r.site, &r.hash); err != nil {
				rows.Close()
				tx.Rollback()
				return err
			}
			page = append(page, r)
		}
		rows.Close()
		if len(page) == 0 {
			return tx.Rollback()
		}
		app := st.appender(tx)
		for _, r := range page {
			if _, err := app.add(ctx, r.id, r.site, r.hash); err != nil {
				tx.Rollback()
				return fmt.Errorf("backfill the log: %w", err)
			}
		}
		if err := app.finish(ctx); err != nil {
			tx.Rollback()
			return err
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("backfill the log: %w", err)
		}
		app.done()
	}
}

// appender adds leaves within one transaction. It collects the rows and
// writes them at finish in multi-row INSERTs: one statement per row cost
// more than the rest of the log together.
type appender struct {
	st      *logState
	tx      txQuerier
	pending map[int64]tlog.Hash // stored hashes of this transaction
	size    int64
	taggers map[string]*translog.SiteTagger
	salts   *translog.Salts // this transaction's, made at its first leaf
	hashIDs []int64         // stored hash indexes, in the order of pending's rows
	leaves  []any           // idx, record, site, salt, entry, kind of each new leaf
	signed  translog.Checkpoint
	restore bool // entries restored from the tiles (RestoreLog)
}

func (st *logState) appender(tx txQuerier) *appender {
	return &appender{st: st, tx: tx, pending: map[int64]tlog.Hash{}, size: st.size, taggers: map[string]*translog.SiteTagger{}}
}

// appenderAt is an appender from the log's size as tx sees it: another
// process on the database (koekje purge beside a server) may have added
// leaves. If it commits between this read and tx's first write, that write
// fails (WAL's snapshot check), and nothing is appended twice.
func (st *logState) appenderAt(ctx context.Context, tx txQuerier) (*appender, error) {
	a := st.appender(tx)
	if err := tx.QueryRowContext(ctx, `SELECT coalesce(max(idx) + 1, 0) FROM log_leaves`).Scan(&a.size); err != nil {
		return nil, fmt.Errorf("log size: %w", err)
	}
	st.size = a.size
	return a, nil
}

// ReadHashes reads stored hashes from this transaction, the recent ones,
// or the table.
func (a *appender) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(indexes))
	for i, x := range indexes {
		if h, ok := a.pending[x]; ok {
			out[i] = h
			continue
		}
		if h, ok := a.st.recent[x]; ok {
			out[i] = h
			continue
		}
		var b []byte
		if err := a.tx.QueryRowContext(context.Background(), `SELECT hash FROM log_hashes WHERE id = ?`, x).Scan(&b); err != nil {
			return nil, fmt.Errorf("log hash %d: %w", x, err)
		}
		copy(out[i][:], b)
	}
	return out, nil
}

// add appends the leaf of a record and returns its index.
func (a *appender) add(ctx context.Context, record int64, site string, recordHash []byte) (int64, error) {
	idx, _, err := a.addLeaf(record, site, translog.KindRecord, recordHash)
	return idx, err
}

// addPurge appends a purge's entry, committing to its statement
// (proof.PurgeStatement), and returns its index and salt.
func (a *appender) addPurge(site string, statement []byte) (int64, []byte, error) {
	return a.addLeaf(nil, site, translog.KindPurge, statement)
}

// addLeaf appends a leaf of kind committing to what under a fresh salt.
func (a *appender) addLeaf(record any, site string, kind translog.LeafKind, what []byte) (int64, []byte, error) {
	tagger, ok := a.taggers[site]
	if !ok {
		tagger = translog.NewSiteTagger(AuditKey(a.st.auditRoot, site))
		a.taggers[site] = tagger
	}
	if a.salts == nil {
		var err error
		if a.salts, err = translog.NewSalts(); err != nil {
			return 0, nil, err
		}
	}
	salt := a.salts.For(a.size)
	idx := a.size
	entry := translog.Leaf{Kind: kind, Commitment: kind.Commit(salt, what), SiteTag: tagger.Tag(idx)}.Encode()
	if err := a.addEntry(record, site, salt, kind, entry); err != nil {
		return 0, nil, err
	}
	return idx, salt, nil
}

// addEntry appends an entry as it is, with the record and salt that open
// it (nil for an entry restored from the tiles: its record is not here).
func (a *appender) addEntry(record any, site string, salt []byte, kind translog.LeafKind, entry []byte) error {
	idx := a.size
	hashes, err := tlog.StoredHashes(idx, entry, a)
	if err != nil {
		return err
	}
	base := tlog.StoredHashIndex(0, idx)
	for i, h := range hashes {
		a.pending[base+int64(i)] = h
		a.hashIDs = append(a.hashIDs, base+int64(i))
	}
	a.leaves = append(a.leaves, idx, record, site, salt, entry, int(kind))
	a.size++
	return nil
}

// flushRows writes the collected hashes and leaves, in multi-row INSERTs
// of a power of two rows each (at most 256): a batch's rows go in a few
// statements, and the writer's statement cache keeps the few texts that
// makes prepared, where a statement of every batch's own length was
// prepared anew each time.
func (a *appender) flushRows(ctx context.Context) error {
	// A restore writes over the hashes a tail cut left behind; they are
	// the same if the entries are, which the new root proves.
	hashes := `INSERT INTO log_hashes (id, hash) VALUES `
	if a.restore {
		hashes = `INSERT OR REPLACE INTO log_hashes (id, hash) VALUES `
	}
	args := make([]any, 0, 2*min(len(a.hashIDs), maxRowsPerStatement))
	for len(a.hashIDs) > 0 {
		n := rowsPerStatement(len(a.hashIDs))
		args = args[:0]
		for _, id := range a.hashIDs[:n] {
			h := a.pending[id]
			args = append(args, id, h[:])
		}
		if _, err := a.tx.ExecContext(ctx, rowsSQL(hashes, "(?, ?)", n), args...); err != nil {
			return fmt.Errorf("log hashes: %w", err)
		}
		a.hashIDs = a.hashIDs[n:]
	}
	for len(a.leaves) > 0 {
		n := rowsPerStatement(len(a.leaves) / 6)
		if _, err := a.tx.ExecContext(ctx, rowsSQL(`INSERT INTO log_leaves (idx, record, site, salt, entry, kind) VALUES `, "(?, ?, ?, ?, ?, ?)", n),
			a.leaves[:6*n]...); err != nil {
			return fmt.Errorf("log leaves: %w", err)
		}
		a.leaves = a.leaves[6*n:]
	}
	return nil
}

// maxRowsPerStatement bounds a multi-row INSERT (SQLite allows 32,766
// parameters in one statement).
const maxRowsPerStatement = 256

// rowsPerStatement is the number of rows the next INSERT of n waiting
// rows writes: the largest power of two at most n and maxRowsPerStatement.
func rowsPerStatement(n int) int {
	return 1 << (bits.Len(uint(min(n, maxRowsPerStatement))) - 1)
}

// rowsSQL is head followed by n times row, comma-separated; built once
// for each head and n.
func rowsSQL(head, row string, n int) string {
	k := rowsKey{head, n}
	if s, ok := rowsTexts.Load(k); ok {
		return s.(string)
	}
	s := head + row + strings.Repeat(", "+row, n-1)
	rowsTexts.Store(k, s)
	return s
}

type rowsKey struct {
	head string
	n    int
}

var rowsTexts sync.Map // rowsKey → string

// finish signs and stores a checkpoint of the new size, if it grew.
func (a *appender) finish(ctx context.Context) error {
	if a.size == a.st.size {
		return nil
	}
	if err := a.flushRows(ctx); err != nil {
		return err
	}
	th, err := tlog.TreeHash(a.size, a)
	if err != nil {
		return fmt.Errorf("tree hash: %w", err)
	}
	signed, err := a.st.signer.Sign(a.size, th)
	if err != nil {
		return fmt.Errorf("sign checkpoint: %w", err)
	}
	a.signed = translog.Checkpoint{Origin: a.st.signer.Origin(), Size: a.size, Hash: th}
	insert := `INSERT INTO log_checkpoints (size, signed, created_at) VALUES (?, ?, ?)`
	if a.restore { // the checkpoint of that tree may have been kept
		insert = `INSERT OR REPLACE INTO log_checkpoints (size, signed, created_at) VALUES (?, ?, ?)`
	}
	if _, err := a.tx.ExecContext(ctx, insert, a.size, signed, time.Now().UnixMicro()); err != nil {
		return fmt.Errorf("log checkpoint: %w", err)
	}
	return nil
}

// done takes the committed transaction's state. Of the hashes written, it
// keeps what the next batch reads: appending a leaf and the tree hash read
// only the roots of the complete subtrees along the tree's right edge, one
// a level (copying every hash of every batch into the map cost 5 % of the
// writer's time).
func (a *appender) done() {
	edge := make(map[int64]tlog.Hash, bits.Len64(uint64(a.size)))
	for l := 0; a.size>>l > 0; l++ {
		if (a.size>>l)&1 == 0 {
			continue
		}
		x := tlog.StoredHashIndex(l, a.size>>l-1)
		if h, ok := a.pending[x]; ok {
			edge[x] = h
		} else if h, ok := a.st.recent[x]; ok {
			edge[x] = h
		}
	}
	a.st.recent = edge
	a.st.size = a.size
	if a.st.guard != nil && a.signed.Size > 0 {
		a.st.guard.Signed(a.signed)
	}
}

// LatestCheckpoint returns the newest signed checkpoint, or nil.
func (db *DB) LatestCheckpoint(ctx context.Context) ([]byte, error) {
	var b []byte
	err := db.read.QueryRowContext(ctx, `SELECT signed FROM log_checkpoints ORDER BY size DESC LIMIT 1`).Scan(&b)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	return b, err
}

// LogHashes reads stored hashes of the log (tlog's stored hash indexes).
func (db *DB) LogHashes(ctx context.Context, indexes []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(indexes))
	if len(indexes) == 0 {
		return out, nil
	}
	args := make([]any, len(indexes))
	for i, x := range indexes {
		args[i] = x
	}
	rows, err := db.read.QueryContext(ctx, `SELECT id, hash FROM log_hashes WHERE id IN (?`+strings.Repeat(",?", len(indexes)-1)+`)`, args...)
	if err != nil {
		return nil, fmt.Errorf("log hashes: %w", err)
	}
	defer rows.Close()
	found := map[int64][]byte{}
	for rows.Next() {
		var id int64
		var h []byte
		if err := rows.Scan(&id, &h); err != nil {
			return nil, err
		}
		found[id] = h
	}
	if err := rows.Err(); err != nil {
		return nil, err
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
	rows, err := db.read.QueryContext(ctx, `SELECT idx, entry FROM log_leaves WHERE idx >= ? AND idx < ? ORDER BY idx`, from, to)
	if err != nil {
		return nil, fmt.Errorf("log entries: %w", err)
	}
	defer rows.Close()
	var out [][]byte
	for next := from; rows.Next(); next++ {
		var idx int64
		var e []byte
		if err := rows.Scan(&idx, &e); err != nil {
			return nil, err
		}
		if idx != next {
			return nil, fmt.Errorf("log entry %d is missing", next)
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// LeafOf returns the leaf of a site's record seq, or nil if it has none.
func (db *DB) LeafOf(ctx context.Context, site string, seq int64) (*translog.StoredLeaf, error) {
	var l translog.StoredLeaf
	err := db.read.QueryRowContext(ctx, `SELECT l.idx, l.salt, l.entry FROM records r JOIN log_leaves l ON l.record = r.id
		WHERE r.site = ? AND r.seq = ?`, site, seq).Scan(&l.Index, &l.Salt, &l.Entry)
	if errors.Is(err, sql.ErrNoRows) {
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
	rows, err := db.read.QueryContext(ctx, `SELECT l.idx, l.entry, l.salt, coalesce(r.site, ''), coalesce(r.seq, 0), r.hash, l.site
		FROM log_leaves l LEFT JOIN records r ON r.id = l.record ORDER BY l.idx`)
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

// SaveWitnessed keeps a checkpoint with the cosignatures it gathered.
func (db *DB) SaveWitnessed(ctx context.Context, size int64, cosigned []byte) error {
	_, err := db.write.ExecContext(ctx, `INSERT INTO log_witnessed (size, cosigned) VALUES (?, ?)
		ON CONFLICT (size) DO UPDATE SET cosigned = excluded.cosigned`, size, cosigned)
	return err
}

// LatestWitnessed returns the newest witnessed checkpoint, or nil.
func (db *DB) LatestWitnessed(ctx context.Context) ([]byte, error) {
	var b []byte
	err := db.read.QueryRowContext(ctx, `SELECT cosigned FROM log_witnessed ORDER BY size DESC LIMIT 1`).Scan(&b)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	return b, err
}

// NewLogSigner returns the signer of the log, naming the log after origin
// and making its key the first time, without starting the log: an operator
// gives its verifier key to witnesses before the server starts. A log
// named otherwise is refused: a log keeps its name for life.
func (db *DB) NewLogSigner(ctx context.Context, origin string) (*translog.Signer, error) {
	named, _, err := db.nameLog(ctx, origin)
	if err != nil {
		return nil, err
	}
	if named != origin {
		return nil, fmt.Errorf("%w: this database's log is named %q, not %q", translog.ErrNamed, named, origin)
	}
	seed, err := db.Secret(ctx, store.LogKeySecret, 32)
	if err != nil {
		return nil, err
	}
	return translog.NewSigner(origin, seed)
}
