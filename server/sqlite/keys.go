package sqlite

import (
	"context"
	"crypto/rand"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/koekje/koekje/server/consent"
	"github.com/koekje/koekje/server/keyfile"
)

// signingKeyPrefix names a signing key's private key as a secret: its
// sealed value opens only in the row of that key ID.
const signingKeyPrefix = "signing-key:"

// Keys returns every signing key, oldest first.
func (db *DB) Keys(ctx context.Context) ([]consent.SigningKey, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT id, sealed, created_at FROM signing_keys ORDER BY created_at, id`)
	if err != nil {
		return nil, fmt.Errorf("keys: %w", err)
	}
	defer rows.Close()
	var out []consent.SigningKey
	for rows.Next() {
		var k consent.SigningKey
		var created int64
		var sealed []byte
		if err := rows.Scan(&k.ID, &sealed, &created); err != nil {
			return nil, err
		}
		if k.Private, err = db.kek.Open(signingKeyPrefix+k.ID, sealed); err != nil {
			return nil, err
		}
		k.CreatedAt = time.UnixMicro(created).UTC()
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
	_, err = db.write.ExecContext(ctx, `INSERT INTO signing_keys (id, sealed, created_at) VALUES (?, ?, ?)`,
		k.ID, sealed, k.CreatedAt.UnixMicro())
	if err != nil {
		return fmt.Errorf("add key: %w", err)
	}
	return nil
}

// Secret returns the secret called name, making n random bytes for it the
// first time it is asked for.
func (db *DB) Secret(ctx context.Context, name string, n int) ([]byte, error) {
	return secret(ctx, db.write, db.kek, name, n)
}

type execQuerier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// secret reads and opens a sealed secret, making and sealing it the first
// time. Every instance sharing the key file reads the same value.
func secret(ctx context.Context, q execQuerier, kek *keyfile.Key, name string, n int) ([]byte, error) {
	var v []byte
	// Read first: once made, a secret is only ever read, and opening a
	// database for an audit writes nothing.
	err := q.QueryRowContext(ctx, `SELECT sealed FROM secrets WHERE name = ?`, name).Scan(&v)
	if err == nil {
		return kek.Open(name, v)
	}
	if !errors.Is(err, sql.ErrNoRows) {
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
	if _, err := q.ExecContext(ctx, `INSERT INTO secrets (name, sealed, created_at)
		VALUES (?, ?, ?) ON CONFLICT DO NOTHING`, name, sealed, time.Now().UnixMicro()); err != nil {
		return nil, fmt.Errorf("store secret %s: %w", name, err)
	}
	// Another process may have stored its own first: read what won.
	if err := q.QueryRowContext(ctx, `SELECT sealed FROM secrets WHERE name = ?`, name).Scan(&v); err != nil {
		return nil, fmt.Errorf("read secret %s: %w", name, err)
	}
	return kek.Open(name, v)
}

// plainSecret is secret as schemas before sealSecrets stored it: in the
// clear. Only the migrations before sealSecrets use it.
func plainSecret(ctx context.Context, q execQuerier, name string, n int) ([]byte, error) {
	var v []byte
	err := q.QueryRowContext(ctx, `SELECT value FROM secrets WHERE name = ?`, name).Scan(&v)
	if err == nil {
		return v, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("read secret %s: %w", name, err)
	}
	fresh := make([]byte, n)
	if _, err := rand.Read(fresh); err != nil {
		return nil, err
	}
	if _, err := q.ExecContext(ctx, `INSERT INTO secrets (name, value, created_at) VALUES (?, ?, ?)`,
		name, fresh, time.Now().UnixMicro()); err != nil {
		return nil, fmt.Errorf("store secret %s: %w", name, err)
	}
	return fresh, nil
}

// KeyFile is the key file that seals the store's secrets; what is kept
// beside it (the log's reference) is sealed under it too.
func (db *DB) KeyFile() *keyfile.Key { return db.kek }
