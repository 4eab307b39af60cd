package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Lease takes the lease name for holder until now+ttl, if it is free, has
// run out, or is holder's already; it reports whether holder has it.
func (db *DB) Lease(ctx context.Context, name, holder string, ttl time.Duration) (bool, error) {
	now := time.Now()
	var got string
	err := db.write.QueryRowContext(ctx, `INSERT INTO leases (name, holder, until) VALUES (?, ?, ?)
		ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, until = excluded.until
		WHERE leases.until < ? OR leases.holder = excluded.holder
		RETURNING holder`, name, holder, now.Add(ttl).UnixMicro(), now.UnixMicro()).Scan(&got)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("lease %s: %w", name, err)
	}
	return got == holder, nil
}
