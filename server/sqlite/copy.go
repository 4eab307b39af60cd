package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/koekje/koekje/server/consent"
	"github.com/koekje/koekje/server/store"
	"github.com/koekje/koekje/server/translog"
)

// What koekje migrate-store reads to copy the store elsewhere: every row
// as stored, secrets opened with this database's key file.

// AllSecrets returns every stored secret in the clear, by name.
func (db *DB) AllSecrets(ctx context.Context) ([]store.Secret, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT name, sealed, created_at FROM secrets ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("secrets: %w", err)
	}
	defer rows.Close()
	var out []store.Secret
	for rows.Next() {
		var s store.Secret
		var sealed []byte
		var created int64
		if err := rows.Scan(&s.Name, &sealed, &created); err != nil {
			return nil, fmt.Errorf("secrets: %w", err)
		}
		if s.Value, err = db.kek.Open(s.Name, sealed); err != nil {
			return nil, fmt.Errorf("open with key file %s: %w", db.kek.Path(), err)
		}
		s.CreatedAt = time.UnixMicro(created).UTC()
		out = append(out, s)
	}
	return out, rows.Err()
}

// EachText calls fn with every stored text (user agents, page URLs, banner
// version hashes), in the order they were first stored.
func (db *DB) EachText(ctx context.Context, fn func(value string) error) error {
	rows, err := db.read.QueryContext(ctx, `SELECT value FROM texts ORDER BY id`)
	if err != nil {
		return fmt.Errorf("texts: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			return fmt.Errorf("texts: %w", err)
		}
		if err := fn(v); err != nil {
			return err
		}
	}
	return rows.Err()
}

// EachStored calls fn with every record in the order it was written (so
// each site's chain in sequence order), with its consent ID's index key.
func (db *DB) EachStored(ctx context.Context, fn func(*store.StoredRecord) error) error {
	rows, err := db.read.QueryContext(ctx, `SELECT `+recordColumns+`, r.consent_key FROM records r ORDER BY r.id`)
	if err != nil {
		return fmt.Errorf("records: %w", err)
	}
	defer rows.Close()
	rs := &rowStrings{m: map[string]string{}}
	for rows.Next() {
		var raw rawRecord
		var key []byte
		if err := raw.scan(rows, rs, &key); err != nil {
			return err
		}
		r, err := raw.record()
		if err != nil {
			return err
		}
		if len(key) != 16 {
			return fmt.Errorf("record %s: its consent key is not 16 bytes", r.RecordID)
		}
		s := &store.StoredRecord{Record: *r}
		copy(s.ConsentKey[:], key)
		if err := fn(s); err != nil {
			return err
		}
	}
	return rows.Err()
}

// EachRequest calls fn with every stored request ID and its record's
// place in the chain.
func (db *DB) EachRequest(ctx context.Context, fn func(*store.RequestID) error) error {
	rows, err := db.read.QueryContext(ctx, `SELECT q.site, q.request_id, r.seq FROM requests q JOIN records r ON r.id = q.record
		ORDER BY q.record`)
	if err != nil {
		return fmt.Errorf("request ids: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var q store.RequestID
		if err := rows.Scan(&q.Site, &q.RequestID, &q.Seq); err != nil {
			return fmt.Errorf("request ids: %w", err)
		}
		if err := fn(&q); err != nil {
			return err
		}
	}
	return rows.Err()
}

// EachVersion calls fn with every stored banner version.
func (db *DB) EachVersion(ctx context.Context, fn func(*store.Version) error) error {
	rows, err := db.read.QueryContext(ctx, `SELECT site, hash, body, created_at FROM versions ORDER BY site, created_at, hash`)
	if err != nil {
		return fmt.Errorf("versions: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var v store.Version
		var created int64
		if err := rows.Scan(&v.Site, &v.Hash, &v.Body, &created); err != nil {
			return fmt.Errorf("versions: %w", err)
		}
		v.CreatedAt = time.UnixMicro(created).UTC()
		if err := fn(&v); err != nil {
			return err
		}
	}
	return rows.Err()
}

// AllSessions returns every console session.
func (db *DB) AllSessions(ctx context.Context) ([]store.Session, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT id, token, created_at, expires_at, ended_at FROM sessions ORDER BY created_at`)
	if err != nil {
		return nil, fmt.Errorf("sessions: %w", err)
	}
	defer rows.Close()
	var out []store.Session
	for rows.Next() {
		var s store.Session
		var created, expires int64
		var ended sql.NullInt64
		if err := rows.Scan(&s.ID, &s.Token, &created, &expires, &ended); err != nil {
			return nil, fmt.Errorf("sessions: %w", err)
		}
		s.CreatedAt, s.ExpiresAt = time.UnixMicro(created).UTC(), time.UnixMicro(expires).UTC()
		if ended.Valid {
			t := time.UnixMicro(ended.Int64).UTC()
			s.EndedAt = &t
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

// LogLeafCount is the size of the transparency log this database keeps
// (0 when it keeps none). A database whose records wait for the log (it
// was held) is not copied: their leaves come once the log is recovered.
func (db *DB) LogLeafCount(ctx context.Context) (int64, error) {
	var n, waiting int64
	if err := db.read.QueryRowContext(ctx, `SELECT ifnull(max(idx) + 1, 0), (SELECT count(*) FROM log_pending) FROM log_leaves`).Scan(&n, &waiting); err != nil {
		return 0, fmt.Errorf("log size: %w", err)
	}
	if waiting > 0 {
		return 0, fmt.Errorf("%d records wait for the log, which signs nothing since its tree stopped extending its reference: recover the log first (koekje recover-log, see \"Back up and restore\" in the README), then copy", waiting)
	}
	return n, nil
}

// EachLogLeaf calls fn with every leaf of the transparency log in index
// order. A leaf whose record a purge removed no longer names it: its place
// in the chain is found from the site's leaves, which the records got in
// sequence order, the purged (oldest) ones first.
func (db *DB) EachLogLeaf(ctx context.Context, fn func(*store.LogLeaf) error) error {
	next := map[string]int64{} // site → the place of its next purged leaf
	rows, err := db.read.QueryContext(ctx, `SELECT l.site, sum(l.record IS NULL AND l.kind = 1), min(r.seq),
			(SELECT max(seq) FROM checkpoints c WHERE c.site = l.site)
		FROM log_leaves l LEFT JOIN records r ON r.id = l.record GROUP BY l.site`)
	if err != nil {
		return fmt.Errorf("log leaves: %w", err)
	}
	for rows.Next() {
		var site string
		var purged int64
		var first, cp sql.NullInt64
		if err := rows.Scan(&site, &purged, &first, &cp); err != nil {
			rows.Close()
			return fmt.Errorf("log leaves: %w", err)
		}
		switch {
		case purged == 0:
		case first.Valid:
			next[site] = first.Int64 - purged
		case cp.Valid:
			next[site] = cp.Int64 - purged + 1
		default:
			rows.Close()
			return fmt.Errorf("log leaves: %s has %d leaves whose records are gone without a purge checkpoint", site, purged)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("log leaves: %w", err)
	}
	rows, err = db.read.QueryContext(ctx, `SELECT l.idx, l.site, coalesce(r.seq, c.seq), l.salt, l.entry, l.kind
		FROM log_leaves l LEFT JOIN records r ON r.id = l.record LEFT JOIN checkpoints c ON c.site = l.site AND c.entry_index = l.idx
		ORDER BY l.idx`)
	if err != nil {
		return fmt.Errorf("log leaves: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var l store.LogLeaf
		var seq sql.NullInt64
		if err := rows.Scan(&l.Index, &l.Site, &seq, &l.Salt, &l.Entry, &l.Kind); err != nil {
			return fmt.Errorf("log leaves: %w", err)
		}
		switch {
		case l.Kind == translog.KindScan:
			l.Seq = l.Index // a scan's entry has no place in a chain; its index is unique
		case l.Kind == translog.KindSuccessor:
			l.Seq = -(l.Index + 1) // nobody's, as PostgreSQL's SucceedLog numbers it
		case l.Kind == translog.KindPurge && !seq.Valid:
			return fmt.Errorf("log leaves: purge entry %d of %s has no purge checkpoint", l.Index, l.Site)
		case seq.Valid:
			l.Seq = seq.Int64
		default:
			l.Seq, l.Salt = next[l.Site], nil
			next[l.Site]++
		}
		if err := fn(&l); err != nil {
			return err
		}
	}
	return rows.Err()
}

// EachLogHash calls fn with every stored hash of the log's tree, by
// tlog's stored hash index.
func (db *DB) EachLogHash(ctx context.Context, fn func(id int64, hash []byte) error) error {
	rows, err := db.read.QueryContext(ctx, `SELECT id, hash FROM log_hashes ORDER BY id`)
	if err != nil {
		return fmt.Errorf("log hashes: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id int64
		var h []byte
		if err := rows.Scan(&id, &h); err != nil {
			return fmt.Errorf("log hashes: %w", err)
		}
		if err := fn(id, h); err != nil {
			return err
		}
	}
	return rows.Err()
}

// EachLogCheckpoint calls fn with every signed checkpoint of the log, and
// then, with witnessed set, every one witnesses cosigned.
func (db *DB) EachLogCheckpoint(ctx context.Context, fn func(cp *store.LogCheckpoint, witnessed bool) error) error {
	for _, q := range []string{`SELECT size, signed, created_at FROM log_checkpoints ORDER BY size`,
		`SELECT size, cosigned, 0 FROM log_witnessed ORDER BY size`} {
		witnessed := strings.Contains(q, "cosigned")
		rows, err := db.read.QueryContext(ctx, q)
		if err != nil {
			return fmt.Errorf("log checkpoints: %w", err)
		}
		for rows.Next() {
			var cp store.LogCheckpoint
			var created int64
			if err := rows.Scan(&cp.Size, &cp.Signed, &created); err != nil {
				rows.Close()
				return fmt.Errorf("log checkpoints: %w", err)
			}
			cp.CreatedAt = time.UnixMicro(created).UTC()
			if err := fn(&cp, witnessed); err != nil {
				rows.Close()
				return err
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("log checkpoints: %w", err)
		}
	}
	return nil
}

// EachScan calls fn with every recorded scan, with its report, in
// recording order.
func (db *DB) EachScan(ctx context.Context, fn func(*consent.Scan) error) error {
	return db.eachScan(ctx, fn, "")
}
