package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/koekje/koekje/server/consent"
	"github.com/koekje/koekje/server/proof"
)

// Purge deletes site's records from before the given time in one
// transaction with the checkpoint that lets the chain still verify and,
// with a log, the purge's entry in it: a leaf of kind purge, under the
// site's tag, committing to the checkpoint's statement. It holds the
// writer's lock, as a batch's commit does, since it extends the log.
func (db *DB) Purge(ctx context.Context, site string, before time.Time, sign func(*consent.Checkpoint) error) (int64, error) {
	db.commitMu.Lock()
	defer db.commitMu.Unlock()
	st, err := db.logForEntry(ctx)
	if err != nil {
		return 0, err
	}
	tx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("purge: %w", err)
	}
	defer tx.Rollback()
	cp := &consent.Checkpoint{Site: site, CreatedAt: time.Now().UTC().Truncate(time.Microsecond), Before: before.UTC().Truncate(time.Microsecond)}
	end, err := seqAt(ctx, tx, site, before)
	if err != nil {
		return 0, err
	}
	err = tx.QueryRowContext(ctx, `SELECT seq, hash FROM records WHERE site = ? AND seq < ?
		ORDER BY seq DESC LIMIT 1`, site, end).Scan(&cp.Seq, &cp.Hash)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("purge: %w", err)
	}
	if err := sign(cp); err != nil {
		return 0, err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO checkpoints (site, seq, hash, created_at, key_id, signature, purged_before)
		VALUES (?, ?, ?, ?, ?, ?, ?)`, cp.Site, cp.Seq, cp.Hash, cp.CreatedAt.UnixMicro(), cp.KeyID, cp.Signature, cp.Before.UnixMicro()); err != nil {
		return 0, fmt.Errorf("purge: checkpoint: %w", err)
	}
	// Everything up to the checkpoint goes, so the chain that stays starts
	// right after it; so do the request IDs of what went.
	var last int64
	if err := tx.QueryRowContext(ctx, `SELECT id FROM records WHERE site = ? AND seq = ?`, site, cp.Seq).Scan(&last); err != nil {
		return 0, fmt.Errorf("purge: %w", err)
	}
	res, err := tx.ExecContext(ctx, `DELETE FROM records WHERE site = ? AND seq <= ?`, site, cp.Seq)
	if err != nil {
		return 0, fmt.Errorf("purge: delete: %w", err)
	}
	n, _ := res.RowsAffected()
	if _, err := tx.ExecContext(ctx, `DELETE FROM requests WHERE site = ? AND record <= ?`, site, last); err != nil {
		return 0, fmt.Errorf("purge: request ids: %w", err)
	}
	// The purged records' leaves stay in the log, but lose their salts:
	// nothing links them to anyone any more. The checkpoint names the
	// last one, so verification knows those leaves have no records.
	if _, err := tx.ExecContext(ctx, `UPDATE log_leaves SET salt = NULL, record = NULL WHERE site = ? AND record <= ?`, site, last); err != nil {
		return 0, fmt.Errorf("purge: log salts: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE checkpoints SET log_index = (SELECT max(idx) FROM log_leaves WHERE site = ? AND record IS NULL AND kind = 1)
		WHERE site = ? AND seq = ?`, site, site, cp.Seq); err != nil {
		return 0, fmt.Errorf("purge: checkpoint: %w", err)
	}
	var leaves *appender
	if st != nil {
		if leaves, err = st.entryAppender(ctx, tx); err != nil {
			return 0, err
		}
		idx, salt, err := leaves.addPurge(site, proof.PurgeStatement(cp))
		if err != nil {
			return 0, fmt.Errorf("purge: log entry: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE checkpoints SET entry_index = ?, entry_salt = ? WHERE site = ? AND seq = ?`,
			idx, salt, site, cp.Seq); err != nil {
			return 0, fmt.Errorf("purge: checkpoint: %w", err)
		}
		if err := leaves.finish(ctx); err != nil {
			return 0, fmt.Errorf("purge: log entry: %w", err)
		}
	}
	// Page URLs and user agents that no remaining record refers to go too,
	// and writers are told to forget the ids they cached.
	if _, err := tx.ExecContext(ctx, `DELETE FROM texts WHERE id NOT IN
		(SELECT url FROM records UNION SELECT user_agent FROM records UNION SELECT config_hash FROM records)`); err != nil {
		return 0, fmt.Errorf("purge: texts: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE counters SET value = value + 1 WHERE name = 'texts_generation'`); err != nil {
		return 0, fmt.Errorf("purge: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("purge: commit: %w", err)
	}
	if leaves != nil {
		leaves.done()
	}
	// secure_delete overwrote the deleted content in the pages the purge
	// wrote to the log; truncating the log lets no old frame keep it.
	if _, err := db.write.ExecContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
		db.log.Warn("purge: checkpoint the log", "err", err)
	}
	return n, nil
}

// LastCheckpoint returns the newest checkpoint of site, or nil.
func (db *DB) LastCheckpoint(ctx context.Context, site string) (*consent.Checkpoint, error) {
	cps, err := db.checkpoints(ctx, site, 1)
	if err != nil || len(cps) == 0 {
		return nil, err
	}
	return cps[0], nil
}

// Checkpoints returns every purge checkpoint of site, newest first.
func (db *DB) Checkpoints(ctx context.Context, site string) ([]*consent.Checkpoint, error) {
	return db.checkpoints(ctx, site, -1)
}

func (db *DB) checkpoints(ctx context.Context, site string, limit int) ([]*consent.Checkpoint, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT seq, hash, created_at, key_id, signature, log_index, entry_index, entry_salt, purged_before FROM checkpoints
		WHERE site = ? ORDER BY seq DESC LIMIT ?`, site, limit)
	if err != nil {
		return nil, fmt.Errorf("checkpoints: %w", err)
	}
	defer rows.Close()
	var out []*consent.Checkpoint
	for rows.Next() {
		cp := consent.Checkpoint{Site: site}
		var created int64
		var kid sql.NullString
		var idx, entry, before sql.NullInt64
		if err := rows.Scan(&cp.Seq, &cp.Hash, &created, &kid, &cp.Signature, &idx, &entry, &cp.EntrySalt, &before); err != nil {
			return nil, fmt.Errorf("checkpoints: %w", err)
		}
		cp.CreatedAt, cp.KeyID = time.UnixMicro(created).UTC(), kid.String
		if idx.Valid {
			cp.LogIndex = &idx.Int64
		}
		if entry.Valid {
			cp.EntryIndex = &entry.Int64
		}
		if before.Valid {
			cp.Before = time.UnixMicro(before.Int64).UTC()
		}
		out = append(out, &cp)
	}
	return out, rows.Err()
}
