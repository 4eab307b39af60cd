package postgres

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/koekje/koekje/server/consent"
	"github.com/koekje/koekje/server/proof"
)

// Purge deletes site's records from before the given time in one
// transaction with the checkpoint that lets the chain still verify, their
// request IDs, and every text no remaining record refers to, and queues
// the purge's own entry for the log (kind 2, with the write path's MAC of
// its statement), which the integrator gives a leaf as it does records.
// The chain's head row is left alone: the chain goes on from it.
func (db *DB) Purge(ctx context.Context, site string, before time.Time, sign func(*consent.Checkpoint) error) (int64, error) {
	var n int64
	err := pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		cp := &consent.Checkpoint{Site: site, CreatedAt: time.Now().UTC().Truncate(time.Microsecond), Before: before.UTC().Truncate(time.Microsecond)}
		end, err := seqAt(ctx, tx, site, before)
		if err != nil {
			return err
		}
		err = tx.QueryRow(ctx, `SELECT seq, hash FROM records WHERE site = $1 AND seq < $2
			ORDER BY seq DESC LIMIT 1`, site, end).Scan(&cp.Seq, &cp.Hash)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("purge: %w", err)
		}
		if err := sign(cp); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO checkpoints (site, seq, hash, created_at, key_id, signature, purged_before)
			VALUES ($1, $2, $3, $4, $5, $6, $7)`, cp.Site, cp.Seq, cp.Hash, cp.CreatedAt, cp.KeyID, cp.Signature, cp.Before); err != nil {
			return fmt.Errorf("purge: checkpoint: %w", err)
		}
		// Records still queued for the log leave the queue with them: an
		// integrator that read them fails its compare-and-set and reads
		// again. Those already in the log keep their leaves, without their
		// salts: nothing links those leaves to anyone any more. The
		// checkpoint names the last one, so verification knows those leaves
		// have no records.
		if _, err := tx.Exec(ctx, `DELETE FROM log_pending WHERE site = $1 AND seq <= $2 AND kind = 1`, site, cp.Seq); err != nil {
			return fmt.Errorf("purge: log queue: %w", err)
		}
		if _, err := tx.Exec(ctx, `UPDATE log_leaves SET salt = NULL WHERE site = $1 AND seq <= $2 AND kind = 1 AND salt IS NOT NULL`, site, cp.Seq); err != nil {
			return fmt.Errorf("purge: log salts: %w", err)
		}
		if _, err := tx.Exec(ctx, `UPDATE checkpoints SET log_index = (SELECT max(idx) FROM log_leaves WHERE site = $1 AND seq <= $2 AND kind = 1)
			WHERE site = $1 AND seq = $2`, site, cp.Seq); err != nil {
			return fmt.Errorf("purge: checkpoint: %w", err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO log_pending (id, site, seq, kind, mac)
			VALUES (nextval(pg_get_serial_sequence('records', 'id')), $1, $2, 2, $3)`,
			site, cp.Seq, db.logMAC.sumPurge(site, cp.Seq, proof.PurgeStatement(cp))); err != nil {
			return fmt.Errorf("purge: log queue: %w", err)
		}
		tag, err := tx.Exec(ctx, `DELETE FROM records WHERE site = $1 AND seq <= $2`, site, cp.Seq)
		if err != nil {
			return fmt.Errorf("purge: delete: %w", err)
		}
		n = tag.RowsAffected()
		if _, err := tx.Exec(ctx, `DELETE FROM requests WHERE site = $1 AND seq <= $2`, site, cp.Seq); err != nil {
			return fmt.Errorf("purge: request ids: %w", err)
		}
		return deleteUnusedTexts(ctx, tx)
	})
	if err != nil {
		return 0, err
	}
	return n, nil
}

// deleteUnusedTexts deletes the page URLs, user agents and banner hashes no
// record refers to. It can never take a text from under a record, which
// the foreign keys records.config_hash, url and user_agent → texts.hash
// guarantee:
//   - a batch that refers to a text holds, from its INSERT until it
//     commits, the FOR KEY SHARE row lock the foreign key's check takes on
//     that text; FOR UPDATE SKIP LOCKED passes over such texts;
//   - a batch that committed after this statement's snapshot is seen by
//     the foreign key's check on delete, which reads the newest rows: the
//     DELETE fails (23503) and is run again under a fresh snapshot, from a
//     savepoint, so the purge itself goes through;
//   - a batch that inserts a text this purge has deleted but not yet
//     committed waits for the row (ON CONFLICT), then inserts it anew; one
//     that had the text cached as stored fails its own foreign-key check
//     and is retried by its writer, which inserts the text again.
func deleteUnusedTexts(ctx context.Context, tx pgx.Tx) error {
	const attempts = 5
	for i := 1; ; i++ {
		err := pgx.BeginFunc(ctx, tx, func(sp pgx.Tx) error {
			_, err := sp.Exec(ctx, `DELETE FROM texts WHERE hash IN (
				SELECT t.hash FROM texts t
				WHERE NOT EXISTS (SELECT 1 FROM records r WHERE r.url = t.hash)
				  AND NOT EXISTS (SELECT 1 FROM records r WHERE r.user_agent = t.hash)
				  AND NOT EXISTS (SELECT 1 FROM records r WHERE r.config_hash = t.hash)
				FOR UPDATE SKIP LOCKED)`)
			return err
		})
		var pe *pgconn.PgError
		if err == nil || i == attempts || !errors.As(err, &pe) || pe.Code != "23503" {
			if err != nil {
				return fmt.Errorf("purge: texts: %w", err)
			}
			return nil
		}
	}
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
	return db.checkpoints(ctx, site, math.MaxInt32)
}

func (db *DB) checkpoints(ctx context.Context, site string, limit int) ([]*consent.Checkpoint, error) {
	return checkpoints(ctx, db.pool, site, limit)
}

// checkpoints is DB.checkpoints through q.
func checkpoints(ctx context.Context, q querier, site string, limit int) ([]*consent.Checkpoint, error) {
	rows, err := q.Query(ctx, `SELECT seq, hash, created_at, coalesce(key_id, ''), signature, log_index, entry_index, entry_salt, purged_before FROM checkpoints
		WHERE site = $1 ORDER BY seq DESC LIMIT $2`, site, limit)
	if err != nil {
		return nil, fmt.Errorf("checkpoints: %w", err)
	}
	defer rows.Close()
	var out []*consent.Checkpoint
	for rows.Next() {
		cp := consent.Checkpoint{Site: site}
		var before *time.Time
		if err := rows.Scan(&cp.Seq, &cp.Hash, &cp.CreatedAt, &cp.KeyID, &cp.Signature, &cp.LogIndex, &cp.EntryIndex, &cp.EntrySalt, &before); err != nil {
			return nil, fmt.Errorf("checkpoints: %w", err)
		}
		cp.CreatedAt = cp.CreatedAt.UTC()
		if before != nil {
			cp.Before = before.UTC()
		}
		out = append(out, &cp)
	}
	return out, rows.Err()
}
