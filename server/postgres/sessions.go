package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// StartSession records a console session made with the token whose ID is
// token, and forgets sessions that expired.
func (db *DB) StartSession(ctx context.Context, id, token []byte, expires time.Time) error {
	if _, err := db.pool.Exec(ctx, `DELETE FROM sessions WHERE expires_at < now()`); err != nil {
		return fmt.Errorf("start session: %w", err)
	}
	if _, err := db.pool.Exec(ctx, `INSERT INTO sessions (id, token, created_at, expires_at) VALUES ($1, $2, now(), $3)`,
		id, token, expires); err != nil {
		return fmt.Errorf("start session: %w", err)
	}
	return nil
}

// SessionLive reports whether a session was started, is not ended and has
// not expired at now.
func (db *DB) SessionLive(ctx context.Context, id []byte, now time.Time) (bool, error) {
	var live bool
	err := db.pool.QueryRow(ctx, `SELECT ended_at IS NULL AND $2 < expires_at FROM sessions WHERE id = $1`, id, now).Scan(&live)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("session: %w", err)
	}
	return live, nil
}

// EndSession ends one session.
func (db *DB) EndSession(ctx context.Context, id []byte, now time.Time) error {
	if _, err := db.pool.Exec(ctx, `UPDATE sessions SET ended_at = $1 WHERE id = $2 AND ended_at IS NULL`, now, id); err != nil {
		return fmt.Errorf("end session: %w", err)
	}
	return nil
}

// EndSessionsExcept ends every live session made with a token whose ID is
// not in tokens, and returns how many it ended.
func (db *DB) EndSessionsExcept(ctx context.Context, tokens [][]byte, now time.Time) (int64, error) {
	if tokens == nil {
		tokens = [][]byte{}
	}
	tag, err := db.pool.Exec(ctx, `UPDATE sessions SET ended_at = $1 WHERE ended_at IS NULL AND NOT (token = ANY ($2))`, now, tokens)
	if err != nil {
		return 0, fmt.Errorf("end sessions: %w", err)
	}
	return tag.RowsAffected(), nil
}
