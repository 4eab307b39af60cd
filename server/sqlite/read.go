package sqlite

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/koekje/koekje/server/consent"
)

const recordColumns = `record_id, site, seq, consent_id, recorded_at, action, choices, services,
	revision, config_hash, language, url, user_agent, ip, gpc, prev_hash, hash`

// History returns every record of consentID, oldest first.
func (db *DB) History(ctx context.Context, consentID uuid.UUID) ([]*consent.Record, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT `+recordColumns+` FROM records
		WHERE consent_id = ? ORDER BY recorded_at, seq`, consentID[:])
	if err != nil {
		return nil, fmt.Errorf("history: %w", err)
	}
	defer rows.Close()
	var out []*consent.Record
	for rows.Next() {
		r, err := scanRecord(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

func scanRecord(rows *sql.Rows) (*consent.Record, error) {
	var (
		r                consent.Record
		recordID, consID []byte
		micros           int64
		choices          []byte
		services         string
	)
	if err := rows.Scan(&recordID, &r.Site, &r.Seq, &consID, &micros, &r.Action, &choices, &services,
		&r.Revision, &r.ConfigHash, &r.Language, &r.URL, &r.UserAgent, &r.IP, &r.GPC,
		&r.PrevHash, &r.Hash); err != nil {
		return nil, fmt.Errorf("scan record: %w", err)
	}
	var err error
	if r.RecordID, err = uuid.FromBytes(recordID); err != nil {
		return nil, fmt.Errorf("record id: %w", err)
	}
	if r.ConsentID, err = uuid.FromBytes(consID); err != nil {
		return nil, fmt.Errorf("consent id: %w", err)
	}
	r.RecordedAt = time.UnixMicro(micros).UTC()
	if services != "" {
		r.Services = strings.Split(services, ",")
	}
	if err := json.Unmarshal(choices, &r.Choices); err != nil {
		return nil, fmt.Errorf("choices of %s: %w", r.RecordID, err)
	}
	return &r, nil
}

// encodeChoices writes choices as JSON text; encoding/json sorts map keys.
func encodeChoices(c map[string]bool) (string, error) {
	b, err := json.Marshal(c)
	return string(b), err
}

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

// Secret returns the secret called name, making n random bytes for it the
// first time it is asked for.
func (db *DB) Secret(ctx context.Context, name string, n int) ([]byte, error) {
	fresh := make([]byte, n)
	if _, err := rand.Read(fresh); err != nil {
		return nil, err
	}
	if _, err := db.write.ExecContext(ctx, `INSERT INTO secrets (name, value, created_at)
		VALUES (?, ?, ?) ON CONFLICT DO NOTHING`, name, fresh, time.Now().UnixMicro()); err != nil {
		return nil, fmt.Errorf("store secret %s: %w", name, err)
	}
	var v []byte
	if err := db.write.QueryRowContext(ctx, `SELECT value FROM secrets WHERE name = ?`, name).Scan(&v); err != nil {
		return nil, fmt.Errorf("read secret %s: %w", name, err)
	}
	return v, nil
}
