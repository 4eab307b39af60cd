package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/koekje/koekje/server/store"
	"github.com/koekje/koekje/server/translog"
)

// SucceedLog makes the log a successor of itself (koekje successor-log): in
// one transaction the leaves it holds stay as they are, s's statement is
// appended at index s.Carried, the log is named s.Origin with a new key,
// and the tree is signed under it. The old name's verifier key is kept
// among the earlier keys and its seed is replaced, so the old name never
// signs again; the witnessed checkpoints of the old name are dropped (the
// newest of them is what the statement carries, or older), as the new
// log's witnesses cosign only its own. Records waiting in the log's queue
// are not touched: the server appends them after the statement.
func (db *DB) SucceedLog(ctx context.Context, s *translog.Successor) (*translog.Signer, translog.Checkpoint, error) {
	var none translog.Checkpoint
	db.commitMu.Lock()
	defer db.commitMu.Unlock()
	if db.tl != nil {
		return nil, none, errors.New("the log is started in this process: make its successor with the server stopped")
	}
	sc, err := store.NewSuccession(ctx, db, s)
	if err != nil {
		return nil, none, err
	}
	st, err := db.newLogState(ctx, s.Predecessor.Origin)
	if err != nil {
		return nil, none, err
	}
	st.signer = sc.Signer
	tx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		return nil, none, err
	}
	defer tx.Rollback()
	a, err := st.appenderAt(ctx, tx)
	if err != nil {
		return nil, none, err
	}
	if a.size != s.Carried {
		return nil, none, fmt.Errorf("the database's log holds %d leaves, and the statement carries %d: it changed meanwhile", a.size, s.Carried)
	}
	now := time.Now().UnixMicro()
	for _, q := range []struct {
		query string
		args  []any
	}{
		{`UPDATE secrets SET sealed = ?, created_at = ? WHERE name = ?`, []any{sc.SealedKey, now, store.LogKeySecret}},
		{`INSERT INTO secrets (name, sealed, created_at) VALUES (?, ?, ?)
			ON CONFLICT (name) DO UPDATE SET sealed = excluded.sealed, created_at = excluded.created_at`, []any{store.LogEarlierKeysSecret, sc.SealedEarlier, now}},
		// log_name keeps a log's name for life (no UPDATE): the successor
		// is another log, which takes the row's place.
		{`DELETE FROM log_name`, nil},
		{`INSERT INTO log_name (one, origin) VALUES (1, ?)`, []any{s.Origin}},
		{`DELETE FROM log_witnessed`, nil},
	} {
		if _, err := tx.ExecContext(ctx, q.query, q.args...); err != nil {
			return nil, none, fmt.Errorf("succeed the log: %w", err)
		}
	}
	if err := a.addEntry(nil, "", nil, translog.KindSuccessor, sc.Entry); err != nil {
		return nil, none, err
	}
	if err := a.finish(ctx); err != nil {
		return nil, none, err
	}
	if err := tx.Commit(); err != nil {
		return nil, none, fmt.Errorf("succeed the log: %w", err)
	}
	return st.signer, a.signed, nil
}

// EarlierLogKeys returns the verifier keys of the log's earlier names,
// oldest first; none for a log that succeeded no other.
func (db *DB) EarlierLogKeys(ctx context.Context) ([]string, error) {
	var sealed []byte
	err := db.read.QueryRowContext(ctx, `SELECT sealed FROM secrets WHERE name = ?`, store.LogEarlierKeysSecret).Scan(&sealed)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("the log's earlier keys: %w", err)
	}
	return store.OpenEarlierKeys(db.kek, sealed)
}
