package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/koekje/koekje/config"
	"github.com/koekje/koekje/server/consent"
)

// PutVersion stores a banner version once; storing it again changes nothing.
func (db *DB) PutVersion(ctx context.Context, site, hash string, body []byte) error {
	_, err := db.write.ExecContext(ctx, `INSERT INTO versions (site, hash, body, created_at)
		VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING`, site, hash, body, time.Now().UnixMicro())
	if err != nil {
		return fmt.Errorf("put version: %w", err)
	}
	return nil
}

// HasVersion reports whether site served a banner version with this hash.
func (db *DB) HasVersion(ctx context.Context, site, hash string) (bool, error) {
	var one int
	err := db.read.QueryRowContext(ctx, `SELECT 1 FROM versions WHERE site = ? AND hash = ?`, site, hash).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("has version: %w", err)
	}
	return true, nil
}

// Version returns a stored banner version, or a not-found error. A body
// that does not hash to its name is not what visitors were shown: it is
// never returned, and the error says the version is damaged.
func (db *DB) Version(ctx context.Context, site, hash string) ([]byte, error) {
	var body []byte
	err := db.read.QueryRowContext(ctx, `SELECT body FROM versions WHERE site = ? AND hash = ?`, site, hash).Scan(&body)
	if errors.Is(err, sql.ErrNoRows) {
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
	rows, err := db.read.QueryContext(ctx, `SELECT hash FROM versions WHERE site = ? ORDER BY created_at, hash`, site)
	if err != nil {
		return nil, fmt.Errorf("versions: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var h string
		if err := rows.Scan(&h); err != nil {
			return nil, fmt.Errorf("versions: %w", err)
		}
		out = append(out, h)
	}
	return out, rows.Err()
}

// VersionsUsed lists the banner versions a site's records refer to, with
// when each was first and last chosen under, newest first.
func (db *DB) VersionsUsed(ctx context.Context, site string) ([]consent.VersionUse, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT t.value, min(r.recorded_at), max(r.recorded_at), count(*)
		FROM records r JOIN texts t ON t.id = r.config_hash WHERE r.site = ?
		GROUP BY r.config_hash ORDER BY max(r.recorded_at) DESC`, site)
	if err != nil {
		return nil, fmt.Errorf("versions used: %w", err)
	}
	defer rows.Close()
	var out []consent.VersionUse
	for rows.Next() {
		var v consent.VersionUse
		var first, last int64
		if err := rows.Scan(&v.Hash, &first, &last, &v.Records); err != nil {
			return nil, err
		}
		v.First, v.Last = time.UnixMicro(first).UTC(), time.UnixMicro(last).UTC()
		out = append(out, v)
	}
	return out, rows.Err()
}
