package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Failures reads a network's failed-token count, last failure and block.
func (db *DB) Failures(ctx context.Context, network string) (count int, last, until time.Time, err error) {
	err = db.pool.QueryRow(ctx, `SELECT count, last, until FROM token_failures WHERE network = $1`, network).Scan(&count, &last, &until)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, time.Time{}, time.Time{}, nil
	}
	if err != nil {
		return 0, time.Time{}, time.Time{}, fmt.Errorf("token failures: %w", err)
	}
	return count, last, until, nil
}

// AddFailure replaces a network's count with what next makes of it, in one
// transaction holding the row's lock, so failures at several instances at
// once all count. Rows of networks quiet for a day are swept now and then.
func (db *DB) AddFailure(ctx context.Context, network string, next func(count int, last, until time.Time) (int, time.Time, time.Time)) error {
	tx, err := db.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("token failures: %w", err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, `INSERT INTO token_failures (network, count, last, until) VALUES ($1, 0, 'epoch', 'epoch')
		ON CONFLICT (network) DO NOTHING`, network); err != nil {
		return fmt.Errorf("token failures: %w", err)
	}
	var (
		count       int
		last, until time.Time
	)
	if err := tx.QueryRow(ctx, `SELECT count, last, until FROM token_failures WHERE network = $1 FOR UPDATE`, network).Scan(&count, &last, &until); err != nil {
		return fmt.Errorf("token failures: %w", err)
	}
	count, last, until = next(count, last, until)
	if _, err := tx.Exec(ctx, `UPDATE token_failures SET count = $2, last = $3, until = $4 WHERE network = $1`, network, count, last, until); err != nil {
		return fmt.Errorf("token failures: %w", err)
	}
	if count == 1 { // a new count: sweep networks that went quiet
		if _, err := tx.Exec(ctx, `DELETE FROM token_failures WHERE greatest(last, until) < now() - interval '1 day'`); err != nil {
			return fmt.Errorf("token failures: %w", err)
		}
	}
	return tx.Commit(ctx)
}
