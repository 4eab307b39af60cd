package postgres

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/koekje/koekje/server/postgres/pgtest"
)

// SetBeforeAdvance has f run in each integration pass of db between
// computing the pass and committing it; tests make integrators race with it.
func (db *DB) SetBeforeAdvance(f func()) { db.tl.Load().beforeAdvance = f }

// Schema is the migrated database the tests copy, keyed by a hash of the
// migrations: a changed migration makes a new one.
var Schema = pgtest.Template{Key: migrationsHash(), Make: func(ctx context.Context, dsn string) error {
	pool, err := pgxpool.New(ctx, dsn)
	if err != nil {
		return err
	}
	defer pool.Close()
	_, err = migrate(ctx, pool)
	return err
}}

func migrationsHash() string {
	h := sha256.New()
	for _, m := range migrations {
		fmt.Fprintf(h, "%d\n%s\n", len(m), m)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// SchemaBeforeRequestHashes is the schema version before request IDs were
// kept as keyed hashes, and SchemaBeforeLog the one before the log's
// tables (two migrations before the queue's MACs): tests that take a
// database back name them, so that later migrations do not move them.
var (
	SchemaBeforeRequestHashes = requestHashSchema - 1
	SchemaBeforeLog           = logMACSchema - 1 - 2
)
