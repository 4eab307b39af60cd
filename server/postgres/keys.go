package postgres

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/koekje/koekje/server/consent"
	"github.com/koekje/koekje/server/keyfile"
)

// Keys returns every signing key, oldest first.
func (db *DB) Keys(ctx context.Context) ([]consent.SigningKey, error) {
	rows, err := db.pool.Query(ctx, `SELECT id, sealed, created_at FROM signing_keys ORDER BY created_at, id`)
	if err != nil {
		return nil, fmt.Errorf("keys: %w", err)
	}
	defer rows.Close()
	var out []consent.SigningKey
	for rows.Next() {
		var k consent.SigningKey
		var sealed []byte
		if err := rows.Scan(&k.ID, &sealed, &k.CreatedAt); err != nil {
			return nil, err
		}
		if k.Private, err = db.kek.Open(signingKeyPrefix+k.ID, sealed); err != nil {
			return nil, err
		}
		k.CreatedAt = k.CreatedAt.UTC()
		out = append(out, k)
	}
	return out, rows.Err()
}

// AddKey stores a new signing key, its private key sealed.
func (db *DB) AddKey(ctx context.Context, k consent.SigningKey) error {
	sealed, err := db.kek.Seal(signingKeyPrefix+k.ID, k.Private)
	if err != nil {
		return fmt.Errorf("add key: %w", err)
	}
	if _, err := db.pool.Exec(ctx, `INSERT INTO signing_keys (id, sealed, created_at) VALUES ($1, $2, $3)`,
		k.ID, sealed, k.CreatedAt); err != nil {
		return fmt.Errorf("add key: %w", err)
	}
	return nil
}

// Secret returns the secret called name, making n random bytes for it the
// first time it is asked for. Every instance sharing the key file reads
// the same value.
func (db *DB) Secret(ctx context.Context, name string, n int) ([]byte, error) {
	return secret(ctx, db.pool, db.kek, name, n)
}

// execQuerier is a pool or a transaction, for what writes as well as reads.
type execQuerier interface {
	querier
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

func secret(ctx context.Context, q execQuerier, kek *keyfile.Key, name string, n int) ([]byte, error) {
	var v []byte
	err := q.QueryRow(ctx, `SELECT sealed FROM secrets WHERE name = $1`, name).Scan(&v)
	if err == nil {
		return kek.Open(name, v)
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("read secret %s: %w", name, err)
	}
	fresh := make([]byte, n)
	if _, err := rand.Read(fresh); err != nil {
		return nil, err
	}
	sealed, err := kek.Seal(name, fresh)
	if err != nil {
		return nil, err
	}
	if _, err := q.Exec(ctx, `INSERT INTO secrets (name, sealed, created_at) VALUES ($1, $2, now())
		ON CONFLICT DO NOTHING`, name, sealed); err != nil {
		return nil, fmt.Errorf("store secret %s: %w", name, err)
	}
	// Another instance may have stored its own first: read what won.
	if err := q.QueryRow(ctx, `SELECT sealed FROM secrets WHERE name = $1`, name).Scan(&v); err != nil {
		return nil, fmt.Errorf("read secret %s: %w", name, err)
	}
	return kek.Open(name, v)
}

// KeyFile is the key file that seals the store's secrets; what is kept
// beside it (the log's reference) is sealed under it too.
func (db *DB) KeyFile() *keyfile.Key { return db.kek }

// signingKeyPrefix names a signing key's private key as a secret: its
// sealed value opens only in the row of that key ID.
const signingKeyPrefix = "signing-key:"
