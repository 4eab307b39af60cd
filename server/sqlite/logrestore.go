package sqlite

import (
	"context"
	"errors"
	"fmt"

	"github.com/koekje/koekje/server/translog"
)

// LogSize is the number of leaves the log holds.
func (db *DB) LogSize(ctx context.Context) (int64, error) {
	var n int64
	if err := db.read.QueryRowContext(ctx, `SELECT coalesce(max(idx) + 1, 0) FROM log_leaves`).Scan(&n); err != nil {
		return 0, fmt.Errorf("log size: %w", err)
	}
	return n, nil
}

// RestoreLog appends entries, restored from the log's published tiles
// (koekje recover-log), after the database's leaves [0, from), and signs
// the tree they make again: cp, the reference's checkpoint, whose root the
// caller proved they rebuild (translog.MissingEntries). Each entry keeps
// the site its tag names among the database's sites, but neither record
// nor salt: those records were lost with the restore. Records waiting in
// the log's queue are not touched; the server appends them after cp.
func (db *DB) RestoreLog(ctx context.Context, from int64, entries [][]byte, cp translog.Checkpoint) error {
	db.commitMu.Lock()
	defer db.commitMu.Unlock()
	if db.tl != nil {
		return errors.New("the log is started in this process: restore it with the server stopped")
	}
	origin, err := db.LogOrigin(ctx)
	if err != nil {
		return err
	}
	if origin == "" || origin != cp.Origin {
		return fmt.Errorf("this database's log is %q, not %q", origin, cp.Origin)
	}
	st, err := db.newLogState(ctx, origin)
	if err != nil {
		return err
	}
	var sites []string
	rows, err := db.read.QueryContext(ctx, `SELECT site FROM records UNION SELECT site FROM log_leaves UNION SELECT site FROM checkpoints`)
	if err != nil {
		return fmt.Errorf("restore the log: %w", err)
	}
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			rows.Close()
			return fmt.Errorf("restore the log: %w", err)
		}
		sites = append(sites, s)
	}
	if err := rows.Close(); err != nil {
		return err
	}
	tx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	a, err := st.appenderAt(ctx, tx)
	if err != nil {
		return err
	}
	if a.size != from {
		return fmt.Errorf("the database's log holds %d leaves, not %d: it changed since the tiles were read", a.size, from)
	}
	a.restore = true
	taggers := make([]*translog.SiteTagger, len(sites))
	for i, s := range sites {
		taggers[i] = translog.NewSiteTagger(AuditKey(st.auditRoot, s))
	}
	for i, e := range entries {
		idx := from + int64(i)
		leaf, err := translog.ParseLeaf(e)
		if err != nil {
			return fmt.Errorf("restored leaf %d: %w", idx, err)
		}
		site := ""
		for j, tg := range taggers {
			if tg.Tag(idx) == leaf.SiteTag {
				site = sites[j]
				break
			}
		}
		if err := a.addEntry(nil, site, nil, leaf.Kind, e); err != nil {
			return err
		}
	}
	if err := a.finish(ctx); err != nil {
		return err
	}
	if a.signed.Size != cp.Size || a.signed.Hash != cp.Hash {
		return fmt.Errorf("the restored tree of %d leaves is not the reference's: nothing restored", a.size)
	}
	return tx.Commit()
}
