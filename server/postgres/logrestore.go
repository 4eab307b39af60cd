package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/koekje/koekje/server/store"
	"github.com/koekje/koekje/server/translog"
)

// LogSize is the number of leaves the log holds, as log_state says.
func (db *DB) LogSize(ctx context.Context) (int64, error) {
	var n int64
	if err := db.pool.QueryRow(ctx, `SELECT size FROM log_state`).Scan(&n); err != nil {
		return 0, fmt.Errorf("log state: %w", err)
	}
	return n, nil
}

// RestoreLog appends entries, restored from the log's published tiles
// (koekje recover-log), after the log's leaves [0, from), and signs the
// tree they make again: cp, the reference's checkpoint, whose root the
// caller proved they rebuild (translog.MissingEntries). It moves log_state
// from from to cp in the same transaction, so an integrator that read the
// log before fails its compare-and-set and reads again. Each entry keeps
// the site its tag names among the database's sites; its record was lost
// with the restore, so it names none (its seq is -(index+1), which no
// record has). Instances may go on serving: the queued records are
// integrated after cp once their guards see it.
func (db *DB) RestoreLog(ctx context.Context, from int64, entries [][]byte, cp translog.Checkpoint) error {
	signer, err := db.LogSigner(ctx)
	if err != nil {
		return err
	}
	if signer == nil || signer.Origin() != cp.Origin {
		return fmt.Errorf("this database's log is not %q", cp.Origin)
	}
	root, err := db.Secret(ctx, store.LogAuditRootSecret, 32)
	if err != nil {
		return err
	}
	sites, err := db.Sites(ctx)
	if err != nil {
		return err
	}
	taggers := make([]*translog.SiteTagger, len(sites))
	for i, s := range sites {
		taggers[i] = translog.NewSiteTagger(translog.AuditKey(root, s))
	}
	pending := map[int64]tlog.Hash{}
	hashes := db.hashesOver(ctx, pending)
	var (
		idx, seqs     []int64
		siteOf        []string
		kinds         []int16
		stored        []int64
		storedHashes  [][]byte
		restoredLeafs [][]byte
	)
	for i, e := range entries {
		n := from + int64(i)
		leaf, err := translog.ParseLeaf(e)
		if err != nil {
			return fmt.Errorf("restored leaf %d: %w", n, err)
		}
		site := ""
		for j, tg := range taggers {
			if tg.Tag(n) == leaf.SiteTag {
				site = sites[j]
				break
			}
		}
		hs, err := tlog.StoredHashes(n, e, hashes)
		if err != nil {
			return err
		}
		base := tlog.StoredHashIndex(0, n)
		for k, h := range hs {
			pending[base+int64(k)] = h
			stored, storedHashes = append(stored, base+int64(k)), append(storedHashes, h[:])
		}
		idx, seqs, siteOf, kinds = append(idx, n), append(seqs, -(n+1)), append(siteOf, site), append(kinds, int16(leaf.Kind))
		restoredLeafs = append(restoredLeafs, e)
	}
	th, err := tlog.TreeHash(cp.Size, hashes)
	if err != nil {
		return err
	}
	if from+int64(len(entries)) != cp.Size || th != cp.Hash {
		return fmt.Errorf("the restored tree of %d leaves is not the reference's: nothing restored", from+int64(len(entries)))
	}
	signed, err := signer.Sign(cp.Size, th)
	if err != nil {
		return err
	}
	tx, err := db.pool.BeginTx(ctx, pgx.TxOptions{})
	if err != nil {
		return err
	}
	defer tx.Rollback(ctx)
	tag, err := tx.Exec(ctx, `UPDATE log_state SET size = $1, root = $2 WHERE size = $3`, cp.Size, th[:], from)
	if err != nil {
		return fmt.Errorf("log state: %w", err)
	}
	if tag.RowsAffected() != 1 {
		return errors.New("the log moved since its leaves were counted: nothing restored")
	}
	if _, err := tx.Exec(ctx, `INSERT INTO log_hashes (id, hash) SELECT * FROM unnest($1::bigint[], $2::bytea[])
		ON CONFLICT (id) DO UPDATE SET hash = excluded.hash`, stored, storedHashes); err != nil {
		return fmt.Errorf("restore the log: %w", err)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO log_leaves (idx, site, seq, entry, kind)
		SELECT * FROM unnest($1::bigint[], $2::text[], $3::bigint[], $4::bytea[], $5::smallint[])`,
		idx, siteOf, seqs, restoredLeafs, kinds); err != nil {
		return fmt.Errorf("restore the log: %w", err)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO log_checkpoints (size, signed, created_at) VALUES ($1, $2, $3)
		ON CONFLICT (size) DO UPDATE SET signed = excluded.signed`, cp.Size, signed, time.Now()); err != nil {
		return fmt.Errorf("restore the log: %w", err)
	}
	return tx.Commit(ctx)
}

// hashesOver reads stored hashes from pending (those a transaction is about
// to write), else from the store.
func (db *DB) hashesOver(ctx context.Context, pending map[int64]tlog.Hash) tlog.HashReader {
	return tlog.HashReaderFunc(func(indexes []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(indexes))
		var missing []int64
		for _, x := range indexes {
			if _, ok := pending[x]; !ok {
				missing = append(missing, x)
			}
		}
		found, err := db.LogHashes(ctx, missing)
		if err != nil {
			return nil, err
		}
		for i, j := 0, 0; i < len(indexes); i++ {
			if h, ok := pending[indexes[i]]; ok {
				out[i] = h
			} else {
				out[i], j = found[j], j+1
			}
		}
		return out, nil
	})
}
