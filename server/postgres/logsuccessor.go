package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/koekje/koekje/server/store"
	"github.com/koekje/koekje/server/translog"
)

// EarlierLogKeys returns the verifier keys of the log's earlier names,
// oldest first; none for a log that succeeded no other.
func (db *DB) EarlierLogKeys(ctx context.Context) ([]string, error) {
	var sealed []byte
	err := db.pool.QueryRow(ctx, `SELECT sealed FROM secrets WHERE name = $1`, store.LogEarlierKeysSecret).Scan(&sealed)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("the log's earlier keys: %w", err)
	}
	return store.OpenEarlierKeys(db.kek, sealed)
}

// SucceedLog makes the log a successor of itself (koekje successor-log), as
// SQLite's does: in one transaction s's statement is appended at index
// s.Carried, log_state moves to the new tree and name by compare-and-set
// from the size and root it was read at, the key is replaced and the old
// name's verifier key kept among the earlier keys, and the old name's
// witnessed checkpoints are dropped. It refuses while an instance holds the
// log's lease: an integrator started under the old name would sign on
// under it.
func (db *DB) SucceedLog(ctx context.Context, s *translog.Successor) (*translog.Signer, translog.Checkpoint, error) {
	var none translog.Checkpoint
	if db.tl.Load() != nil {
		return nil, none, errors.New("the log is started in this process: make its successor with every instance stopped")
	}
	var holder string
	err := db.pool.QueryRow(ctx, `SELECT holder FROM leases WHERE name = $1 AND until > now()`, logLease).Scan(&holder)
	if err == nil {
		return nil, none, fmt.Errorf("the instance %s integrates the log: stop every instance, then make the successor log (a stopped instance's hold on the log runs out within %s)", holder, leaseTTL)
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return nil, none, fmt.Errorf("the log's lease: %w", err)
	}
	sc, err := store.NewSuccession(ctx, db, s)
	if err != nil {
		return nil, none, err
	}
	var (
		size int64
		root []byte
	)
	if err := db.pool.QueryRow(ctx, `SELECT size, root FROM log_state`).Scan(&size, &root); err != nil {
		return nil, none, fmt.Errorf("log state: %w", err)
	}
	if size != s.Carried {
		return nil, none, fmt.Errorf("the database's log holds %d leaves, and the statement carries %d: it changed meanwhile", size, s.Carried)
	}
	pending := map[int64]tlog.Hash{}
	hashes := db.hashesOver(ctx, pending)
	hs, err := tlog.StoredHashes(size, sc.Entry, hashes)
	if err != nil {
		return nil, none, err
	}
	var (
		stored       []int64
		storedHashes [][]byte
	)
	base := tlog.StoredHashIndex(0, size)
	for k, h := range hs {
		pending[base+int64(k)] = h
		stored, storedHashes = append(stored, base+int64(k)), append(storedHashes, h[:])
	}
	th, err := tlog.TreeHash(size+1, hashes)
	if err != nil {
		return nil, none, err
	}
	signed, err := sc.Signer.Sign(size+1, th)
	if err != nil {
		return nil, none, err
	}
	tx, err := db.pool.BeginTx(ctx, pgx.TxOptions{})
	if err != nil {
		return nil, none, err
	}
	defer tx.Rollback(ctx)
	tag, err := tx.Exec(ctx, `UPDATE log_state SET size = $1, root = $2, origin = $3 WHERE size = $4 AND root = $5 AND origin = $6`,
		size+1, th[:], s.Origin, size, root, s.Predecessor.Origin)
	if err != nil {
		return nil, none, fmt.Errorf("log state: %w", err)
	}
	if tag.RowsAffected() != 1 {
		return nil, none, errors.New("the log moved since it was read: no successor made")
	}
	for _, q := range []struct {
		query string
		args  []any
	}{
		{`UPDATE secrets SET sealed = $1, created_at = now() WHERE name = $2`, []any{sc.SealedKey, store.LogKeySecret}},
		{`INSERT INTO secrets (name, sealed, created_at) VALUES ($1, $2, now())
			ON CONFLICT (name) DO UPDATE SET sealed = excluded.sealed, created_at = excluded.created_at`, []any{store.LogEarlierKeysSecret, sc.SealedEarlier}},
		{`DELETE FROM log_witnessed`, nil},
		{`INSERT INTO log_hashes (id, hash) SELECT * FROM unnest($1::bigint[], $2::bytea[])`, []any{stored, storedHashes}},
		// Nobody's leaf: no site, and a seq no record has.
		{`INSERT INTO log_leaves (idx, site, seq, entry, kind) VALUES ($1, '', $2, $3, $4)`, []any{size, -(size + 1), sc.Entry, int16(translog.KindSuccessor)}},
		{`INSERT INTO log_checkpoints (size, signed, created_at) VALUES ($1, $2, now())`, []any{size + 1, signed}},
	} {
		if _, err := tx.Exec(ctx, q.query, q.args...); err != nil {
			return nil, none, fmt.Errorf("succeed the log: %w", err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, none, fmt.Errorf("succeed the log: %w", err)
	}
	return sc.Signer, translog.Checkpoint{Origin: s.Origin, Size: size + 1, Hash: th}, nil
}
