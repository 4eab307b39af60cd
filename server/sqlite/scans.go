package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/koekje/koekje/server/consent"
	"github.com/koekje/koekje/server/proof"
	"github.com/koekje/koekje/server/translog"
)

// AddScan stores a scan report, giving it its ID and recording time, and
// with a log, its entry there (a leaf of kind scan committing to
// proof.ScanStatement) in the same transaction.
func (db *DB) AddScan(ctx context.Context, s *consent.Scan) error {
	if err := s.Validate(); err != nil {
		return err
	}
	id, err := uuid.NewV7()
	if err != nil {
		return err
	}
	urls, err := json.Marshal(nonNil(s.URLs))
	if err != nil {
		return err
	}
	now := db.Now().UTC().Truncate(time.Microsecond)
	db.commitMu.Lock()
	defer db.commitMu.Unlock()
	st, err := db.logForEntry(ctx)
	if err != nil {
		return err
	}
	tx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("add scan: %w", err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `INSERT INTO scans (scan_id, site, started_at, recorded_at, config_hash,
		verdict, violations, undeclared, stale, urls, schedule, report) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		id[:], s.Site, s.StartedAt.UnixMicro(), now.UnixMicro(), s.ConfigHash, s.Verdict,
		s.Violations, s.Undeclared, s.Stale, string(urls), sql.NullString{String: s.Schedule, Valid: s.Schedule != ""}, []byte(s.Report)); err != nil {
		return fmt.Errorf("add scan: %w", err)
	}
	stored := *s
	stored.ID, stored.RecordedAt, stored.StartedAt = id, now, s.StartedAt.UTC().Truncate(time.Microsecond)
	var leaves *appender
	if st != nil {
		if leaves, err = st.entryAppender(ctx, tx); err != nil {
			return err
		}
		idx, salt, err := leaves.addLeaf(nil, s.Site, translog.KindScan, proof.ScanStatement(&stored, s.Report))
		if err != nil {
			return fmt.Errorf("add scan: log entry: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO scan_entries (scan_id, entry_index, entry_salt) VALUES (?, ?, ?)`, id[:], idx, salt); err != nil {
			return fmt.Errorf("add scan: log entry: %w", err)
		}
		if err := leaves.finish(ctx); err != nil {
			return fmt.Errorf("add scan: log entry: %w", err)
		}
		s.EntryIndex, s.EntrySalt = &idx, salt
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("add scan: %w", err)
	}
	if leaves != nil {
		leaves.done()
	}
	s.ID, s.RecordedAt = id, now
	return nil
}

var scanColumns = `scan_id, site, started_at, recorded_at, config_hash, ` + consent.VerdictSQL + `, violations, undeclared, stale, urls, coalesce(schedule, ''),
	(SELECT entry_index FROM scan_entries e WHERE e.scan_id = scans.scan_id), (SELECT entry_salt FROM scan_entries e WHERE e.scan_id = scans.scan_id)`

// Scans lists site's recorded scans, newest first, without their reports:
// up to limit of them recorded before the scan before (uuid.Nil: from the
// newest).
func (db *DB) Scans(ctx context.Context, site string, before uuid.UUID, limit int) ([]*consent.Scan, error) {
	q := `SELECT ` + scanColumns + ` FROM scans WHERE site = ?`
	args := []any{site}
	if before != uuid.Nil {
		q += ` AND scan_id < ?`
		args = append(args, before[:])
	}
	rows, err := db.read.QueryContext(ctx, q+` ORDER BY scan_id DESC LIMIT ?`, append(args, limit)...)
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
	return out, rows.Err()
}

// ScanEntries calls fn with each of site's scans that has an entry in the
// log, with its report, in recording order.
func (db *DB) ScanEntries(ctx context.Context, site string, fn func(*consent.Scan) error) error {
	return db.eachScan(ctx, fn, `WHERE site = ? AND scan_id IN (SELECT scan_id FROM scan_entries)`, site)
}

// eachScan calls fn with each scan where says, with its report, in
// recording order.
func (db *DB) eachScan(ctx context.Context, fn func(*consent.Scan) error, where string, args ...any) error {
	rows, err := db.read.QueryContext(ctx, `SELECT `+scanColumns+`, report FROM scans `+where+` ORDER BY scan_id`, args...)
	if err != nil {
		return fmt.Errorf("scans: %w", err)
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
	rows, err := db.read.QueryContext(ctx, `SELECT `+scanColumns+`, report FROM scans WHERE scan_id = ? AND site = ?`, id[:], site)
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

func scanScan(rows *sql.Rows, extra ...any) (*consent.Scan, error) {
	var s consent.Scan
	var id []byte
	var started, recorded int64
	var urls string
	var entry sql.NullInt64
	if err := rows.Scan(append([]any{&id, &s.Site, &started, &recorded, &s.ConfigHash, &s.Verdict,
		&s.Violations, &s.Undeclared, &s.Stale, &urls, &s.Schedule, &entry, &s.EntrySalt}, extra...)...); err != nil {
		return nil, fmt.Errorf("scan row: %w", err)
	}
	if entry.Valid {
		s.EntryIndex = &entry.Int64
	}
	var err error
	if s.ID, err = uuid.FromBytes(id); err != nil {
		return nil, fmt.Errorf("scan row: %w", err)
	}
	if err := json.Unmarshal([]byte(urls), &s.URLs); err != nil {
		return nil, fmt.Errorf("scan row: urls: %w", err)
	}
	s.StartedAt, s.RecordedAt = time.UnixMicro(started).UTC(), time.UnixMicro(recorded).UTC()
	return &s, nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
