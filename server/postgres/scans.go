package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/koekje/koekje/server/consent"
	"github.com/koekje/koekje/server/proof"
)

// AddScan stores a scan report, giving it its ID and recording time, and
// queues its entry for the log (kind 3, with the write path's MAC of its
// statement) in the same transaction.
func (db *DB) AddScan(ctx context.Context, s *consent.Scan) error {
	if err := s.Validate(); err != nil {
		return err
	}
	id, err := uuid.NewV7()
	if err != nil {
		return err
	}
	urls := s.URLs
	if urls == nil {
		urls = []string{}
	}
	now := db.now().UTC().Truncate(time.Microsecond)
	stored := *s
	stored.ID, stored.RecordedAt, stored.StartedAt = id, now, s.StartedAt.UTC().Truncate(time.Microsecond)
	b := &pgx.Batch{}
	b.Queue(`INSERT INTO scans (id, site, started_at, recorded_at, config_hash,
		verdict, violations, undeclared, stale, urls, schedule, report) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, NULLIF($11, ''), $12)`,
		id, s.Site, stored.StartedAt, now, s.ConfigHash, s.Verdict,
		s.Violations, s.Undeclared, s.Stale, urls, s.Schedule, []byte(s.Report))
	b.Queue(`INSERT INTO log_pending (id, site, seq, kind, scan, mac)
		SELECT n, $1, n, 3, $2, $3 FROM nextval(pg_get_serial_sequence('records', 'id')) AS n`,
		s.Site, id, db.logMAC.sumScan(s.Site, proof.ScanStatement(&stored, s.Report)))
	if err := pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error { return tx.SendBatch(ctx, b).Close() }); err != nil {
		return fmt.Errorf("add scan: %w", err)
	}
	s.ID, s.RecordedAt = id, now
	return nil
}

var scanColumns = `id, site, started_at, recorded_at, config_hash, ` + consent.VerdictSQL + `, violations, undeclared, stale, urls, coalesce(schedule, ''),
	(SELECT entry_index FROM scan_entries e WHERE e.scan_id = scans.id), (SELECT entry_salt FROM scan_entries e WHERE e.scan_id = scans.id)`

// Scans lists site's recorded scans, newest first, without their reports:
// up to limit of them recorded before the scan before (uuid.Nil: from the
// newest).
func (db *DB) Scans(ctx context.Context, site string, before uuid.UUID, limit int) ([]*consent.Scan, error) {
	q := `SELECT ` + scanColumns + ` FROM scans WHERE site = $1 AND ($2::uuid IS NULL OR id < $2) ORDER BY id DESC LIMIT $3`
	var cursor *uuid.UUID
	if before != uuid.Nil {
		cursor = &before
	}
	rows, err := db.pool.Query(ctx, q, site, cursor, limit)
	if err != nil {
		return nil, fmt.Errorf("scans: %w", err)
	}
	defer rows.Close()
	var out []*consent.Scan
	for rows.Next() {
		s, err := scanScan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("scans: %w", err)
	}
	return out, nil
}

// ScanEntries calls fn with each of site's scans that has an entry in the
// log, with its report, in recording order.
func (db *DB) ScanEntries(ctx context.Context, site string, fn func(*consent.Scan) error) error {
	rows, err := db.pool.Query(ctx, `SELECT `+scanColumns+`, report FROM scans
		WHERE site = $1 AND id IN (SELECT scan_id FROM scan_entries) ORDER BY id`, site)
	if err != nil {
		return fmt.Errorf("scan entries: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var report []byte
		s, err := scanScan(rows, &report)
		if err != nil {
			return err
		}
		s.Report = report
		if err := fn(s); err != nil {
			return err
		}
	}
	return rows.Err()
}

// ScanReport returns one of site's recorded scans with its report.
func (db *DB) ScanReport(ctx context.Context, site string, id uuid.UUID) (*consent.Scan, error) {
	rows, err := db.pool.Query(ctx, `SELECT `+scanColumns+`, report FROM scans WHERE id = $1 AND site = $2`, id, site)
	if err != nil {
		return nil, fmt.Errorf("scan report: %w", err)
	}
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("scan report: %w", err)
		}
		return nil, consent.FieldErrorf(consent.ENOTFOUND, "id", "this site has no recorded scan with this ID")
	}
	var report []byte
	s, err := scanScan(rows, &report)
	if err != nil {
		return nil, err
	}
	s.Report = report
	return s, nil
}

func scanScan(rows pgx.Rows, extra ...any) (*consent.Scan, error) {
	var s consent.Scan
	if err := rows.Scan(append([]any{&s.ID, &s.Site, &s.StartedAt, &s.RecordedAt, &s.ConfigHash, &s.Verdict,
		&s.Violations, &s.Undeclared, &s.Stale, &s.URLs, &s.Schedule, &s.EntryIndex, &s.EntrySalt}, extra...)...); err != nil {
		return nil, fmt.Errorf("scan row: %w", err)
	}
	s.StartedAt, s.RecordedAt = s.StartedAt.UTC(), s.RecordedAt.UTC()
	return &s, nil
}
