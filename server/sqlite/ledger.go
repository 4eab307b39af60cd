package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/koekje/koekje/config"
	"github.com/koekje/koekje/server/consent"
)

// Scan streams the records of f in time order; memory stays flat whatever
// the number of rows. For one site, the time range becomes a range of
// sequence numbers, so the (site, seq) index serves it.
func (db *DB) Scan(ctx context.Context, f consent.Filter, fn func(*consent.Record) error) error {
	q, args, err := db.scanQuery(ctx, f)
	if err != nil {
		return err
	}
	return db.eachWith(ctx, fn, true, q, args...)
}

// scanQuery is the query and arguments of Scan.
func (db *DB) scanQuery(ctx context.Context, f consent.Filter) (string, []any, error) {
	var (
		where []string
		args  []any
		order = " ORDER BY r.id"
	)
	if f.Site != "" {
		lo, hi, err := db.seqRange(ctx, db.read, f.Site, f.From, f.To)
		if err != nil {
			return "", nil, err
		}
		// One visitor's records are found by the consent key; the unary +
		// keeps SQLite from walking the site's whole sequence range instead.
		site := "r.site = ? AND r.seq >= ? AND r.seq < ?"
		if f.ConsentID != uuid.Nil {
			site = "+r.site = ? AND +r.seq >= ? AND +r.seq < ?"
		}
		where, args = append(where, site), append(args, f.Site, lo, hi)
		order = " ORDER BY r.seq"
	} else {
		if !f.From.IsZero() {
			where, args = append(where, "r.recorded_at >= ?"), append(args, f.From.UnixMicro())
		}
		if !f.To.IsZero() {
			where, args = append(where, "r.recorded_at < ?"), append(args, f.To.UnixMicro())
		}
	}
	if f.ConsentID != uuid.Nil {
		key := db.ids.Key(f.ConsentID)
		where, args = append(where, "r.consent_key = ? AND r.consent_id = ?"), append(args, key[:], f.ConsentID[:])
	}
	// Each record with its leaf in the log, if it has one (exports carry
	// the leaf's index and salt).
	q := `SELECT ` + recordColumns + `, l.idx, l.salt FROM records r LEFT JOIN log_leaves l ON l.record = r.id`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	return q + order, args, nil
}

type querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// seqRange turns a time range of a site into the range of sequence numbers
// [lo, hi) recorded in it. Zero times are unbounded.
func (db *DB) seqRange(ctx context.Context, q querier, site string, from, to time.Time) (lo, hi int64, err error) {
	lo, hi = 0, math.MaxInt64
	if !from.IsZero() {
		if lo, err = seqAt(ctx, q, site, from); err != nil {
			return
		}
	}
	if !to.IsZero() {
		hi, err = seqAt(ctx, q, site, to)
	}
	return
}

// seqAt returns the first sequence number of site recorded at or after t,
// by binary search: recorded_at never decreases along a chain.
func seqAt(ctx context.Context, q querier, site string, t time.Time) (int64, error) {
	var lo, hi int64
	// Two ordered lookups, not min() and max() together, which SQLite
	// answers by reading the whole site's index (0.48 s at 1M records).
	if err := q.QueryRowContext(ctx, `SELECT ifnull((SELECT seq FROM records WHERE site = ?1 ORDER BY seq LIMIT 1), 0),
		ifnull((SELECT seq FROM records WHERE site = ?1 ORDER BY seq DESC LIMIT 1), 0) + 1`, site).Scan(&lo, &hi); err != nil {
		return 0, fmt.Errorf("sequence range: %w", err)
	}
	want := t.UnixMicro()
	for lo < hi {
		mid := lo + (hi-lo)/2
		var at, seq int64
		err := q.QueryRowContext(ctx, `SELECT recorded_at, seq FROM records WHERE site = ? AND seq >= ? ORDER BY seq LIMIT 1`, site, mid).Scan(&at, &seq)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			hi = mid
		case err != nil:
			return 0, fmt.Errorf("sequence at %s: %w", t, err)
		case at < want:
			lo = seq + 1
		default:
			hi = mid
		}
	}
	return lo, nil
}

// Chain streams a site's records in sequence order.
func (db *DB) Chain(ctx context.Context, site string, fn func(*consent.Record) error) error {
	return db.each(ctx, fn, `SELECT `+recordColumns+` FROM records r WHERE r.site = ? ORDER BY r.seq`, site)
}

// each streams the records of a query to fn. Reading rows (in SQLite,
// through cgo) and decoding them run on two goroutines, a few batches apart,
// so a long export uses both cores in flat memory.
func (db *DB) each(ctx context.Context, fn func(*consent.Record) error, q string, args ...any) error {
	return db.eachWith(ctx, fn, false, q, args...)
}

// eachWith is each; with leaves, q selects the record's leaf index and
// salt after its columns.
func (db *DB) eachWith(ctx context.Context, fn func(*consent.Record) error, leaves bool, q string, args ...any) error {
	const batchSize = 256
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	rows, err := db.read.QueryContext(ctx, q, args...)
	if err != nil {
		return fmt.Errorf("query records: %w", err)
	}
	batches := make(chan []rawRecord, 4)
	done := make(chan error, 1)
	go func() {
		defer close(batches)
		defer rows.Close()
		rs := &rowStrings{m: map[string]string{}}
		for {
			b := make([]rawRecord, 0, batchSize)
			for len(b) < batchSize && rows.Next() {
				b = append(b, rawRecord{})
				raw := &b[len(b)-1]
				var err error
				if leaves {
					var index sql.NullInt64
					err = raw.scan(rows, rs, &index, &raw.r.LogSalt)
					if index.Valid {
						raw.r.LogIndex = &index.Int64
					}
				} else {
					err = raw.scan(rows, rs)
				}
				if err != nil {
					done <- err
					return
				}
			}
			if len(b) > 0 {
				select {
				case batches <- b:
				case <-ctx.Done():
					done <- ctx.Err()
					return
				}
			}
			if len(b) < batchSize {
				done <- rows.Err()
				return
			}
		}
	}()
	for b := range batches {
		for i := range b {
			r, err := b[i].record()
			if err == nil {
				err = fn(r)
			}
			if err != nil {
				cancel()
				for range batches {
				}
				return err
			}
		}
	}
	return <-done
}

// FindHash looks a record up by its hash. There is no index on hash: this
// runs only to explain a chain that does not verify.
func (db *DB) FindHash(ctx context.Context, site string, hash []byte) (int64, bool, error) {
	var seq int64
	err := db.read.QueryRowContext(ctx, `SELECT seq FROM records WHERE site = ? AND hash = ?`, site, hash).Scan(&seq)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("find hash: %w", err)
	}
	return seq, true, nil
}

// NextLink returns the link of the record after seq on site (its
// prev_hash), or nil when seq is the site's newest record.
func (db *DB) NextLink(ctx context.Context, site string, seq int64) ([]byte, error) {
	var link []byte
	err := db.read.QueryRowContext(ctx, `SELECT prev_hash FROM records WHERE site = ? AND seq = ?`, site, seq+1).Scan(&link)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("next link: %w", err)
	}
	return link, nil
}

// LastCheckpoint returns the newest checkpoint of site, or nil.
func (db *DB) LastCheckpoint(ctx context.Context, site string) (*consent.Checkpoint, error) {
	cps, err := db.checkpoints(ctx, site, 1)
	if err != nil || len(cps) == 0 {
		return nil, err
	}
	return cps[0], nil
}

// Checkpoints returns every purge checkpoint of site, newest first.
func (db *DB) Checkpoints(ctx context.Context, site string) ([]*consent.Checkpoint, error) {
	return db.checkpoints(ctx, site, -1)
}

func (db *DB) checkpoints(ctx context.Context, site string, limit int) ([]*consent.Checkpoint, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT seq, hash, created_at, key_id, signature, log_index FROM checkpoints
		WHERE site = ? ORDER BY seq DESC LIMIT ?`, site, limit)
	if err != nil {
		return nil, fmt.Errorf("checkpoints: %w", err)
	}
	defer rows.Close()
	var out []*consent.Checkpoint
	for rows.Next() {
		cp := consent.Checkpoint{Site: site}
		var created int64
		var kid sql.NullString
		var idx sql.NullInt64
		if err := rows.Scan(&cp.Seq, &cp.Hash, &created, &kid, &cp.Signature, &idx); err != nil {
			return nil, fmt.Errorf("checkpoints: %w", err)
		}
		cp.CreatedAt, cp.KeyID = time.UnixMicro(created).UTC(), kid.String
		if idx.Valid {
			cp.LogIndex = &idx.Int64
		}
		out = append(out, &cp)
	}
	return out, rows.Err()
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

// Stats counts choices per UTC day: by action, with GPC, and per category granted.
func (db *DB) Stats(ctx context.Context, f consent.Filter, categories []string) ([]consent.DayStats, error) {
	var sel strings.Builder
	sel.WriteString(`SELECT date(recorded_at / 1000000, 'unixepoch') AS day, action, count(*), sum(gpc)`)
	for _, c := range categories {
		fmt.Fprintf(&sel, `, sum(json_extract(choices, '$.%s') = 1)`, strings.ReplaceAll(c, "'", ""))
	}
	sel.WriteString(` FROM records WHERE site = ? AND seq >= ? AND seq < ? GROUP BY day, action ORDER BY day`)
	lo, hi, err := db.seqRange(ctx, db.read, f.Site, f.From, f.To)
	if err != nil {
		return nil, err
	}
	rows, err := db.read.QueryContext(ctx, sel.String(), f.Site, lo, hi)
	if err != nil {
		return nil, fmt.Errorf("stats: %w", err)
	}
	defer rows.Close()
	var out []consent.DayStats
	for rows.Next() {
		var (
			day, action string
			n, gpc      int
			granted     = make([]sql.NullInt64, len(categories))
		)
		dest := []any{&day, &action, &n, &gpc}
		for i := range granted {
			dest = append(dest, &granted[i])
		}
		if err := rows.Scan(dest...); err != nil {
			return nil, fmt.Errorf("stats: %w", err)
		}
		if len(out) == 0 || out[len(out)-1].Day != day {
			out = append(out, consent.DayStats{Day: day, Actions: map[string]int{}, Granted: map[string]int{}})
		}
		d := &out[len(out)-1]
		d.Total += n
		d.GPC += gpc
		d.Actions[action] += n
		for i, c := range categories {
			d.Granted[c] += int(granted[i].Int64)
		}
	}
	return out, rows.Err()
}

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

// Purge deletes site's records from before the given time in one
// transaction with the checkpoint that lets the chain still verify.
func (db *DB) Purge(ctx context.Context, site string, before time.Time, sign func(*consent.Checkpoint) error) (int64, error) {
	tx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("purge: %w", err)
	}
	defer tx.Rollback()
	cp := &consent.Checkpoint{Site: site, CreatedAt: time.Now().UTC().Truncate(time.Microsecond)}
	end, err := seqAt(ctx, tx, site, before)
	if err != nil {
		return 0, err
	}
	err = tx.QueryRowContext(ctx, `SELECT seq, hash FROM records WHERE site = ? AND seq < ?
		ORDER BY seq DESC LIMIT 1`, site, end).Scan(&cp.Seq, &cp.Hash)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("purge: %w", err)
	}
	if err := sign(cp); err != nil {
		return 0, err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO checkpoints (site, seq, hash, created_at, key_id, signature)
		VALUES (?, ?, ?, ?, ?, ?)`, cp.Site, cp.Seq, cp.Hash, cp.CreatedAt.UnixMicro(), cp.KeyID, cp.Signature); err != nil {
		return 0, fmt.Errorf("purge: checkpoint: %w", err)
	}
	// Everything up to the checkpoint goes, so the chain that stays starts
	// right after it; so do the request IDs of what went.
	var last int64
	if err := tx.QueryRowContext(ctx, `SELECT id FROM records WHERE site = ? AND seq = ?`, site, cp.Seq).Scan(&last); err != nil {
		return 0, fmt.Errorf("purge: %w", err)
	}
	res, err := tx.ExecContext(ctx, `DELETE FROM records WHERE site = ? AND seq <= ?`, site, cp.Seq)
	if err != nil {
		return 0, fmt.Errorf("purge: delete: %w", err)
	}
	n, _ := res.RowsAffected()
	if _, err := tx.ExecContext(ctx, `DELETE FROM requests WHERE site = ? AND record <= ?`, site, last); err != nil {
		return 0, fmt.Errorf("purge: request ids: %w", err)
	}
	// The purged records' leaves stay in the log, but lose their salts:
	// nothing links them to anyone any more. The checkpoint names the
	// last one, so verification knows those leaves have no records.
	if _, err := tx.ExecContext(ctx, `UPDATE log_leaves SET salt = NULL, record = NULL WHERE site = ? AND record <= ?`, site, last); err != nil {
		return 0, fmt.Errorf("purge: log salts: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE checkpoints SET log_index = (SELECT max(idx) FROM log_leaves WHERE site = ? AND record IS NULL)
		WHERE site = ? AND seq = ?`, site, site, cp.Seq); err != nil {
		return 0, fmt.Errorf("purge: checkpoint: %w", err)
	}
	// Page URLs and user agents that no remaining record refers to go too,
	// and writers are told to forget the ids they cached.
	if _, err := tx.ExecContext(ctx, `DELETE FROM texts WHERE id NOT IN
		(SELECT url FROM records UNION SELECT user_agent FROM records UNION SELECT config_hash FROM records)`); err != nil {
		return 0, fmt.Errorf("purge: texts: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE counters SET value = value + 1 WHERE name = 'texts_generation'`); err != nil {
		return 0, fmt.Errorf("purge: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("purge: commit: %w", err)
	}
	// secure_delete overwrote the deleted content in the pages the purge
	// wrote to the log; truncating the log lets no old frame keep it.
	if _, err := db.write.ExecContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
		db.log.Warn("purge: checkpoint the log", "err", err)
	}
	return n, nil
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
