package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"

	"github.com/koekje/koekje/server/consent"
	"github.com/koekje/koekje/server/store"
	"github.com/koekje/koekje/server/translog"
)

// While the log's guard holds (its tree does not extend what the server
// signed before: a restored backup, a tail cut behind its back), the
// server signs nothing and keeps recording: each record of a batch is
// committed as always, with a row in log_pending that carries the write
// path's MAC of it instead of a leaf. When the guard lets go (the missing
// leaves restored from the published tiles), the first batch appends what
// waits, in the order it was written, before its own records; a queued row
// whose MAC is not the write path's (written with sqlite3) gets no leaf.

// maxDrain bounds the queued records one batch appends.
const maxDrain = 10000

// logBatch is one batch's side of the log.
type logBatch struct {
	st     *logState
	tx     txQuerier
	log    *slog.Logger
	leaves *appender // nil while the guard holds: nothing is appended
	// queueNew: this batch's records wait too, behind records still queued.
	queueNew bool
	queued   int64 // records this batch queued
	drained  int64 // queued rows this batch took off the queue
}

// begin starts a batch's side of the log in its transaction.
func (st *logState) begin(ctx context.Context, tx txQuerier, log *slog.Logger) (*logBatch, error) {
	a, err := st.appenderAt(ctx, tx)
	if err != nil {
		return nil, err
	}
	b := &logBatch{st: st, tx: tx, log: log}
	if st.guard != nil && !st.guard.Allow(st.signer.Origin(), a.size, a) {
		b.queueNew = true
		return b, nil
	}
	b.leaves = a
	if st.queued > 0 {
		more, err := b.drain(ctx)
		if err != nil {
			return nil, err
		}
		b.queueNew = more
	}
	return b, nil
}

// drain appends up to maxDrain queued records and reports whether more wait.
func (b *logBatch) drain(ctx context.Context) (bool, error) {
	rows, err := b.tx.QueryContext(ctx, `SELECT p.record, p.mac, r.site, r.seq, r.hash
		FROM log_pending p LEFT JOIN records r ON r.id = p.record ORDER BY p.record LIMIT ?`, maxDrain)
	if err != nil {
		return false, fmt.Errorf("log queue: %w", err)
	}
	type row struct {
		record int64
		mac    []byte
		site   sql.NullString
		seq    sql.NullInt64
		hash   []byte
	}
	var page []row
	for rows.Next() {
		var r row
		if err := rows.Scan(&r.record, &r.mac, &r.site, &r.seq, &r.hash); err != nil {
			rows.Close()
			return false, fmt.Errorf("log queue: %w", err)
		}
		page = append(page, r)
	}
	if err := rows.Close(); err != nil {
		return false, fmt.Errorf("log queue: %w", err)
	}
	if len(page) == 0 {
		return false, nil
	}
	for _, r := range page {
		switch {
		case !r.site.Valid: // the record is gone
		case !b.st.mac.Valid(r.site.String, r.seq.Int64, r.hash, r.mac):
			b.log.Error("a record queued for the log without the write path's MAC gets no leaf: it was written behind the server's back",
				"site", r.site.String, "seq", r.seq.Int64)
		default:
			if _, err := b.leaves.add(ctx, r.record, r.site.String, r.hash); err != nil {
				return false, err
			}
		}
	}
	last := page[len(page)-1].record
	if _, err := b.tx.ExecContext(ctx, `DELETE FROM log_pending WHERE record <= ?`, last); err != nil {
		return false, fmt.Errorf("log queue: %w", err)
	}
	b.drained = int64(len(page))
	return int64(len(page)) < b.st.queued, nil
}

// add gives a record just inserted as row its leaf, or queues it.
func (b *logBatch) add(ctx context.Context, row int64, r *consent.Record) error {
	if !b.queueNew {
		_, err := b.leaves.add(ctx, row, r.Site, r.Hash)
		return err
	}
	if _, err := b.tx.ExecContext(ctx, `INSERT INTO log_pending (record, mac) VALUES (?, ?)`, row, b.st.mac.Sum(r.Site, r.Seq, r.Hash)); err != nil {
		return fmt.Errorf("log queue: %w", err)
	}
	b.queued++
	return nil
}

// finish signs the new tree, if the batch appended.
func (b *logBatch) finish(ctx context.Context) error {
	if b.leaves == nil {
		return nil
	}
	return b.leaves.finish(ctx)
}

// done takes the committed batch's state, and reports whether records
// still wait that the log may take now.
func (b *logBatch) done() bool {
	if b.leaves != nil {
		b.leaves.done()
	}
	b.st.queued += b.queued - b.drained
	return b.leaves != nil && b.st.queued > 0
}

// entryAppender is the appender of an entry of another kind than a
// record's (a purge's, a scan's), from the log's size as tx sees it. While
// the log signs nothing, or records wait for it, no entry can go in: the
// purge or the scan is refused, to be made again once the log signs on.
func (st *logState) entryAppender(ctx context.Context, tx txQuerier) (*appender, error) {
	a, err := st.appenderAt(ctx, tx)
	if err != nil {
		return nil, err
	}
	var waiting int64
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM log_pending`).Scan(&waiting); err != nil {
		return nil, fmt.Errorf("log queue: %w", err)
	}
	if st.guard != nil && !st.guard.Allow(st.signer.Origin(), a.size, a) {
		return nil, consent.Errorf(consent.EUNAVAILABLE, "the log signs nothing now (%s): try again once it signs on", st.guard.Reason())
	}
	if waiting > 0 {
		return nil, consent.Errorf(consent.EUNAVAILABLE, "%d records wait for the log: try again once they are appended", waiting)
	}
	return a, nil
}

// LogPending counts site's records up to sequence through that wait in the
// log's queue with the write path's MAC: a queued row written any other
// way is not counted, and stays a record without a leaf.
func (db *DB) LogPending(ctx context.Context, site string, through int64) (int64, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT r.seq, r.hash, p.mac FROM log_pending p JOIN records r ON r.id = p.record
		WHERE r.site = ? AND r.seq <= ?`, site, through)
	if err != nil {
		return 0, fmt.Errorf("log queue: %w", err)
	}
	type row struct {
		seq       int64
		hash, mac []byte
	}
	var queued []row
	for rows.Next() {
		var r row
		if err := rows.Scan(&r.seq, &r.hash, &r.mac); err != nil {
			rows.Close()
			return 0, fmt.Errorf("log queue: %w", err)
		}
		queued = append(queued, r)
	}
	if err := rows.Close(); err != nil || len(queued) == 0 {
		return 0, err
	}
	key, err := db.Secret(ctx, store.LogQueueMACSecret, 32)
	if err != nil {
		return 0, err
	}
	var n int64
	for _, r := range queued {
		if translog.QueueMAC(key).Valid(site, r.seq, r.hash, r.mac) {
			n++
		}
	}
	return n, nil
}
