package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Console sessions live in the store, not only in their cookies: ending one
// (logout, its token removed or changed) holds for every instance sharing
// the database, and across restarts.

// StartSession records a console session made with the token whose ID is
// token, and forgets sessions that expired.
func (db *DB) StartSession(ctx context.Context, id, token []byte, expires time.Time) error {
	now := time.Now().UnixMicro()
	if _, err := db.write.ExecContext(ctx, `DELETE FROM sessions WHERE expires_at < ?`, now); err != nil {
		return fmt.Errorf("start session: %w", err)
	}
	if _, err := db.write.ExecContext(ctx, `INSERT INTO sessions (id, token, created_at, expires_at) VALUES (?, ?, ?, ?)`,
		id, token, now, expires.UnixMicro()); err != nil {
		return fmt.Errorf("start session: %w", err)
	}
	return nil
}

// SessionLive reports whether a session was started, is not ended and has
// not expired at now.
func (db *DB) SessionLive(ctx context.Context, id []byte, now time.Time) (bool, error) {
	var expires int64
	var ended sql.NullInt64
	err := db.read.QueryRowContext(ctx, `SELECT expires_at, ended_at FROM sessions WHERE id = ?`, id).Scan(&expires, &ended)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("session: %w", err)
	}
	return !ended.Valid && now.UnixMicro() < expires, nil
}

// EndSession ends one session.
func (db *DB) EndSession(ctx context.Context, id []byte, now time.Time) error {
	if _, err := db.write.ExecContext(ctx, `UPDATE sessions SET ended_at = ? WHERE id = ? AND ended_at IS NULL`, now.UnixMicro(), id); err != nil {
		return fmt.Errorf("end session: %w", err)
	}
	return nil
}

// EndSessionsExcept ends every live session made with a token whose ID is
// not in tokens, and returns how many it ended.
func (db *DB) EndSessionsExcept(ctx context.Context, tokens [][]byte, now time.Time) (int64, error) {
	q := `UPDATE sessions SET ended_at = ? WHERE ended_at IS NULL`
	args := []any{now.UnixMicro()}
	if len(tokens) > 0 {
		q += ` AND token NOT IN (?` + strings.Repeat(`, ?`, len(tokens)-1) + `)`
		for _, t := range tokens {
			args = append(args, t)
		}
	}
	res, err := db.write.ExecContext(ctx, q, args...)
	if err != nil {
		return 0, fmt.Errorf("end sessions: %w", err)
	}
	return res.RowsAffected()
}
