package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/koekje/koekje/server/consent"
)

// scanRecord reads one row of recordColumns, then into extra any columns
// after them.
func scanRecord(rows pgx.Rows, extra ...any) (*consent.Record, error) {
	var (
		r                   consent.Record
		recordID, consentID pgtype.UUID
		choices, services   string
		configHash, url, ua []byte
		revision, encoding  int32
		dest                []any
	)
	dest = append(extra, &recordID, &r.Site, &r.Seq, &consentID, &r.RecordedAt, &r.Action, &choices, &services,
		&revision, &configHash, &r.Language, &url, &ua, &r.IP, &r.GPC, &r.PrevHash, &r.Hash,
		&encoding, &r.GPCHeader, &r.ADPC, &r.Signal)
	if err := rows.Scan(dest...); err != nil {
		return nil, fmt.Errorf("scan record: %w", err)
	}
	r.RecordID, r.ConsentID = recordID.Bytes, consentID.Bytes
	r.RecordedAt = r.RecordedAt.UTC()
	r.Revision, r.Encoding = int(revision), int(encoding)
	r.ConfigHash, r.URL, r.UserAgent = string(configHash), string(url), string(ua)
	if services != "" {
		r.Services = strings.Split(services, ",")
	}
	if err := json.Unmarshal([]byte(choices), &r.Choices); err != nil {
		return nil, fmt.Errorf("choices of %s: %w", r.RecordID, err)
	}
	return &r, nil
}

// History returns up to limit records of consentID (of one site, or of
// every site when site is ""), oldest first, from after the cursor after (0:
// from the start). next is the cursor of the following page, 0 at the end.
func (db *DB) History(ctx context.Context, consentID uuid.UUID, site string, after int64, limit int) (recs []*consent.Record, next int64, err error) {
	key := db.ids.Key(consentID)
	rows, err := db.pool.Query(ctx, `SELECT r.id, `+recordColumns+` FROM records r
		WHERE r.consent_key = $1 AND r.consent_id = $2 AND r.id > $3 AND ($4 = '' OR r.site = $4)
		ORDER BY r.id LIMIT $5`, key, consentID, after, site, limit+1)
	if err != nil {
		return nil, 0, fmt.Errorf("history: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id int64
		r, err := scanRecord(rows, &id)
		if err != nil {
			return nil, 0, err
		}
		if len(recs) == limit {
			return recs, next, nil
		}
		recs, next = append(recs, r), id
	}
	return recs, 0, rows.Err()
}

// Records returns a page of q's records, newest first, and the cursor of
// the next page (0 at the end). The time range becomes a range of
// sequence numbers, so the (site, seq) key serves every page.
func (db *DB) Records(ctx context.Context, q consent.Query) (recs []*consent.Record, next int64, err error) {
	lo, hi, err := seqRange(ctx, db.pool, q.Site, q.From, q.To)
	if err != nil {
		return nil, 0, err
	}
	if q.Before > 0 {
		hi = min(hi, q.Before)
	}
	floor := lo // the page's cursor goes on below lo when Span cut it
	if q.Span > 0 {
		if hi == math.MaxInt64 {
			if err := db.pool.QueryRow(ctx, `SELECT coalesce((SELECT seq FROM records WHERE site = $1 ORDER BY seq DESC LIMIT 1), 0) + 1`, q.Site).Scan(&hi); err != nil {
				return nil, 0, fmt.Errorf("records: %w", err)
			}
		}
		lo = max(lo, hi-q.Span)
	}
	where, args := "r.site = $1 AND r.seq >= $2 AND r.seq < $3", []any{q.Site, lo, hi}
	arg := func(v any) string {
		args = append(args, v)
		return fmt.Sprintf("$%d", len(args))
	}
	if q.ConsentID != uuid.Nil {
		where += " AND r.consent_key = " + arg(db.ids.Key(q.ConsentID)) + " AND r.consent_id = " + arg(q.ConsentID)
	}
	if q.Action != "" {
		where += " AND r.action = " + arg(q.Action)
	}
	if q.GPC != nil {
		where += " AND (r.gpc OR r.gpc_header) = " + arg(*q.GPC)
	}
	rows, err := db.pool.Query(ctx, `SELECT `+recordColumns+` FROM records r WHERE `+where+
		` ORDER BY r.seq DESC LIMIT `+arg(q.Limit+1), args...)
	if err != nil {
		return nil, 0, fmt.Errorf("records: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		r, err := scanRecord(rows)
		if err != nil {
			return nil, 0, err
		}
		if len(recs) == q.Limit {
			return recs, recs[len(recs)-1].Seq, nil
		}
		recs = append(recs, r)
	}
	if err := rows.Err(); err != nil {
		return nil, 0, err
	}
	if lo > floor && lo > 0 {
		return recs, lo, nil
	}
	return recs, 0, nil
}

// one returns the first record of a query, or nil.
func (db *DB) one(ctx context.Context, q string, args ...any) (*consent.Record, error) {
	rows, err := db.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	if !rows.Next() {
		return nil, rows.Err()
	}
	return scanRecord(rows)
}

// Latest returns the newest record of consentID on site (any site when
// site is ""), or nil.
func (db *DB) Latest(ctx context.Context, consentID uuid.UUID, site string) (*consent.Record, error) {
	key := db.ids.Key(consentID)
	r, err := db.one(ctx, `SELECT `+recordColumns+` FROM records r
		WHERE r.consent_key = $1 AND r.consent_id = $2 AND ($3 = '' OR r.site = $3) ORDER BY r.id DESC LIMIT 1`, key, consentID, site)
	if err != nil {
		return nil, fmt.Errorf("latest: %w", err)
	}
	return r, nil
}

// ByRequest returns the record a request ID made on site, or nil.
func (db *DB) ByRequest(ctx context.Context, site, requestID string) (*consent.Record, error) {
	r, err := db.one(ctx, `SELECT `+recordColumns+` FROM requests q JOIN records r ON r.site = q.site AND r.seq = q.seq
		WHERE q.site = $1 AND q.request_id = $2`, site, db.reqs.Stored(site, requestID))
	if err != nil {
		return nil, fmt.Errorf("by request: %w", err)
	}
	return r, nil
}

// CountSince counts the records of consentID recorded at or after since.
func (db *DB) CountSince(ctx context.Context, consentID uuid.UUID, since time.Time) (int, error) {
	key := db.ids.Key(consentID)
	var n int
	if err := db.pool.QueryRow(ctx, `SELECT count(*) FROM records r
		WHERE r.consent_key = $1 AND r.consent_id = $2 AND r.recorded_at >= $3`, key, consentID, since).Scan(&n); err != nil {
		return 0, fmt.Errorf("count: %w", err)
	}
	return n, nil
}

// Scan streams the records of f in time order; rows arrive as PostgreSQL
// sends them, so memory stays flat. For one site, the time range becomes a
// range of sequence numbers, so the (site, seq) key serves it.
func (db *DB) Scan(ctx context.Context, f consent.Filter, fn func(*consent.Record) error) error {
	var (
		where []string
		args  []any
		order = " ORDER BY r.id"
	)
	arg := func(v any) string {
		args = append(args, v)
		return fmt.Sprintf("$%d", len(args))
	}
	if f.Site != "" {
		lo, hi, err := seqRange(ctx, db.pool, f.Site, f.From, f.To)
		if err != nil {
			return err
		}
		where = append(where, "r.site = "+arg(f.Site)+" AND r.seq >= "+arg(lo)+" AND r.seq < "+arg(hi))
		order = " ORDER BY r.seq"
	} else {
		if !f.From.IsZero() {
			where = append(where, "r.recorded_at >= "+arg(f.From))
		}
		if !f.To.IsZero() {
			where = append(where, "r.recorded_at < "+arg(f.To))
		}
	}
	if f.ConsentID != uuid.Nil {
		where = append(where, "r.consent_key = "+arg(db.ids.Key(f.ConsentID))+" AND r.consent_id = "+arg(f.ConsentID))
	}
	// Each record with its leaf in the log, if it has one (exports carry
	// the leaf's index and salt).
	q := `SELECT l.idx, l.salt, ` + recordColumns + ` FROM records r LEFT JOIN log_leaves l ON l.site = r.site AND l.seq = r.seq`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	rows, err := db.pool.Query(ctx, q+order, args...)
	if err != nil {
		return fmt.Errorf("query records: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			index *int64
			salt  []byte
		)
		r, err := scanRecord(rows, &index, &salt)
		if err != nil {
			return err
		}
		r.LogIndex, r.LogSalt = index, salt
		if err := fn(r); err != nil {
			return err
		}
	}
	return rows.Err()
}

// Chain streams a site's records in sequence order.
func (db *DB) Chain(ctx context.Context, site string, fn func(*consent.Record) error) error {
	return db.each(ctx, fn, `SELECT `+recordColumns+` FROM records r WHERE r.site = $1 ORDER BY r.seq`, site)
}

func (db *DB) each(ctx context.Context, fn func(*consent.Record) error, q string, args ...any) error {
	return eachRecord(ctx, db.pool, fn, q, args...)
}

// eachRecord calls fn for each record query q (through qr) returns.
func eachRecord(ctx context.Context, qr querier, fn func(*consent.Record) error, q string, args ...any) error {
	rows, err := qr.Query(ctx, q, args...)
	if err != nil {
		return fmt.Errorf("query records: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		r, err := scanRecord(rows)
		if err != nil {
			return err
		}
		if err := fn(r); err != nil {
			return err
		}
	}
	return rows.Err()
}

// querier is a pool or a transaction.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// seqRange turns a time range of a site into the range of sequence numbers
// [lo, hi) recorded in it. Zero times are unbounded.
func seqRange(ctx context.Context, q querier, site string, from, to time.Time) (lo, hi int64, err error) {
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
	if err := q.QueryRow(ctx, `SELECT coalesce(min(seq), 0), coalesce(max(seq), 0) + 1 FROM records WHERE site = $1`, site).Scan(&lo, &hi); err != nil {
		return 0, fmt.Errorf("sequence range: %w", err)
	}
	for lo < hi {
		mid := lo + (hi-lo)/2
		var at time.Time
		var seq int64
		err := q.QueryRow(ctx, `SELECT recorded_at, seq FROM records WHERE site = $1 AND seq >= $2 ORDER BY seq LIMIT 1`, site, mid).Scan(&at, &seq)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			hi = mid
		case err != nil:
			return 0, fmt.Errorf("sequence at %s: %w", t, err)
		case at.Before(t):
			lo = seq + 1
		default:
			hi = mid
		}
	}
	return lo, nil
}

// FindHash looks a record up by its hash, within the site's chain; it runs
// only to explain a chain that does not verify.
func (db *DB) FindHash(ctx context.Context, site string, hash []byte) (int64, bool, error) {
	return findHash(ctx, db.pool, site, hash)
}

// findHash is FindHash through q.
func findHash(ctx context.Context, q querier, site string, hash []byte) (int64, bool, error) {
	var seq int64
	err := q.QueryRow(ctx, `SELECT seq FROM records WHERE site = $1 AND hash = $2`, site, hash).Scan(&seq)
	if errors.Is(err, pgx.ErrNoRows) {
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
	err := db.pool.QueryRow(ctx, `SELECT prev_hash FROM records WHERE site = $1 AND seq = $2`, site, seq+1).Scan(&link)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("next link: %w", err)
	}
	return link, nil
}

// Stats counts choices per UTC day: by action, with GPC, and per category granted.
func (db *DB) Stats(ctx context.Context, f consent.Filter, categories []string) ([]consent.DayStats, error) {
	lo, hi, err := seqRange(ctx, db.pool, f.Site, f.From, f.To)
	if err != nil {
		return nil, err
	}
	var sel strings.Builder
	sel.WriteString(`SELECT to_char(recorded_at AT TIME ZONE 'UTC', 'YYYY-MM-DD') AS day, action, count(*), count(*) FILTER (WHERE gpc OR gpc_header)`)
	args := []any{f.Site, lo, hi}
	for _, c := range categories {
		args = append(args, c)
		fmt.Fprintf(&sel, `, count(*) FILTER (WHERE (choices::jsonb ->> $%d)::boolean)`, len(args))
	}
	sel.WriteString(` FROM records WHERE site = $1 AND seq >= $2 AND seq < $3 GROUP BY day, action ORDER BY day, action`)
	rows, err := db.pool.Query(ctx, sel.String(), args...)
	if err != nil {
		return nil, fmt.Errorf("stats: %w", err)
	}
	defer rows.Close()
	var out []consent.DayStats
	for rows.Next() {
		var (
			day, action string
			n, gpc      int
			granted     = make([]int64, len(categories))
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
			d.Granted[c] += int(granted[i])
		}
	}
	return out, rows.Err()
}

// Sites lists the sites the database holds: those with a chain (records
// now or before a purge), banner versions or purge checkpoints.
func (db *DB) Sites(ctx context.Context) ([]string, error) {
	rows, err := db.pool.Query(ctx, `SELECT site FROM chain_heads UNION SELECT site FROM versions
		UNION SELECT site FROM checkpoints ORDER BY 1`)
	if err != nil {
		return nil, fmt.Errorf("sites: %w", err)
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}
