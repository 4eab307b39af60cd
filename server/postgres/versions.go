package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/koekje/koekje/config"
	"github.com/koekje/koekje/server/consent"
)

// PutVersion stores a banner version once; storing it again changes nothing.
func (db *DB) PutVersion(ctx context.Context, site, hash string, body []byte) error {
	if _, err := db.pool.Exec(ctx, `INSERT INTO versions (site, hash, body, created_at) VALUES ($1, $2, $3, now())
		ON CONFLICT DO NOTHING`, site, hash, body); err != nil {
		return fmt.Errorf("put version: %w", err)
	}
	return nil
}

// HasVersion reports whether site served a banner version with this hash.
func (db *DB) HasVersion(ctx context.Context, site, hash string) (bool, error) {
	var ok bool
	if err := db.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM versions WHERE site = $1 AND hash = $2)`, site, hash).Scan(&ok); err != nil {
		return false, fmt.Errorf("has version: %w", err)
	}
	return ok, nil
}

// Version returns a stored banner version, or a not-found error. A body
// that does not hash to its name is not what visitors were shown: it is
// never returned, and the error says the version is damaged.
func (db *DB) Version(ctx context.Context, site, hash string) ([]byte, error) {
	var body []byte
	err := db.pool.QueryRow(ctx, `SELECT body FROM versions WHERE site = $1 AND hash = $2`, site, hash).Scan(&body)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, consent.FieldErrorf(consent.ENOTFOUND, "hash", "this site never served a banner with this hash")
	}
	if err != nil {
		return nil, fmt.Errorf("version: %w", err)
	}
	if got := config.Hash(body); got != hash {
		db.log.Error("a stored banner version does not hash to its name: not served", "site", site, "hash", hash, "body_hash", got)
		return nil, consent.FieldErrorf(consent.EDAMAGED, "hash", "the banner version stored under this hash is damaged: its body does not hash to it")
	}
	return body, nil
}

// Versions lists the hashes of the banner versions stored for site,
// oldest first.
func (db *DB) Versions(ctx context.Context, site string) ([]string, error) {
	rows, err := db.pool.Query(ctx, `SELECT hash FROM versions WHERE site = $1 ORDER BY created_at, hash`, site)
	if err != nil {
		return nil, fmt.Errorf("versions: %w", err)
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

// VersionsUsed lists the banner versions a site's records refer to, with
// when each was first and last chosen under, newest first.
func (db *DB) VersionsUsed(ctx context.Context, site string) ([]consent.VersionUse, error) {
	rows, err := db.pool.Query(ctx, `SELECT t.value, min(r.recorded_at), max(r.recorded_at), count(*)
		FROM records r JOIN texts t ON t.hash = r.config_hash WHERE r.site = $1
		GROUP BY t.value ORDER BY max(r.recorded_at) DESC`, site)
	if err != nil {
		return nil, fmt.Errorf("versions used: %w", err)
	}
	defer rows.Close()
	var out []consent.VersionUse
	for rows.Next() {
		var v consent.VersionUse
		var hash []byte
		if err := rows.Scan(&hash, &v.First, &v.Last, &v.Records); err != nil {
			return nil, err
		}
		v.Hash, v.First, v.Last = string(hash), v.First.UTC(), v.Last.UTC()
		out = append(out, v)
	}
	return out, rows.Err()
}
