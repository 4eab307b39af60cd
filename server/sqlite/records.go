package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

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

// Stats counts choices per UTC day: by action, with GPC, and per category granted.
func (db *DB) Stats(ctx context.Context, f consent.Filter, categories []string) ([]consent.DayStats, error) {
	var sel strings.Builder
	sel.WriteString(`SELECT date(recorded_at / 1000000, 'unixepoch') AS day, action, count(*), sum(gpc OR gpc_header)`)
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

// History returns up to limit records of consentID (of one site, or of
// every site when site is ""), oldest first, from after the cursor after (0:
// from the start). next is the cursor of the following page, 0 at the end.
func (db *DB) History(ctx context.Context, consentID uuid.UUID, site string, after int64, limit int) (recs []*consent.Record, next int64, err error) {
	key := db.ids.Key(consentID)
	rows, err := db.read.QueryContext(ctx, `SELECT `+recordColumns+`, r.id FROM records r
		WHERE r.consent_key = ? AND r.consent_id = ? AND r.id > ? AND (? = '' OR r.site = ?)
		ORDER BY r.id LIMIT ?`, key[:], consentID[:], after, site, site, limit+1)
	if err != nil {
		return nil, 0, fmt.Errorf("history: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var raw rawRecord
		var row int64
		if err := raw.scan(rows, nil, &row); err != nil {
			return nil, 0, err
		}
		if len(recs) == limit {
			return recs, next, nil
		}
		r, err := raw.record()
		if err != nil {
			return nil, 0, err
		}
		recs, next = append(recs, r), row
	}
	return recs, 0, rows.Err()
}

// Records returns a page of q's records, newest first, and the cursor of
// the next page (0 at the end). The time range becomes a range of
// sequence numbers, so the (site, seq) index serves every page.
func (db *DB) Records(ctx context.Context, q consent.Query) (recs []*consent.Record, next int64, err error) {
	lo, hi, err := db.seqRange(ctx, db.read, q.Site, q.From, q.To)
	if err != nil {
		return nil, 0, err
	}
	if q.Before > 0 {
		hi = min(hi, q.Before)
	}
	floor := lo // the page's cursor goes on below lo when Span cut it
	if q.Span > 0 {
		if hi == math.MaxInt64 {
			if err := db.read.QueryRowContext(ctx, `SELECT ifnull((SELECT seq FROM records WHERE site = ? ORDER BY seq DESC LIMIT 1), 0) + 1`, q.Site).Scan(&hi); err != nil {
				return nil, 0, fmt.Errorf("records: %w", err)
			}
		}
		lo = max(lo, hi-q.Span)
	}
	where, args := "r.site = ? AND r.seq >= ? AND r.seq < ?", []any{q.Site, lo, hi}
	if q.ConsentID != uuid.Nil {
		key := db.ids.Key(q.ConsentID)
		// The unary + keeps SQLite on the consent key's index.
		where = "+r.site = ? AND +r.seq >= ? AND +r.seq < ? AND r.consent_key = ? AND r.consent_id = ?"
		args = append(args, key[:], q.ConsentID[:])
	}
	if q.Action != "" {
		where, args = where+" AND r.action = ?", append(args, q.Action)
	}
	if q.GPC != nil {
		where, args = where+" AND (r.gpc OR r.gpc_header) = ?", append(args, *q.GPC)
	}
	rows, err := db.read.QueryContext(ctx, `SELECT `+recordColumns+` FROM records r WHERE `+where+
		` ORDER BY r.seq DESC LIMIT ?`, append(args, q.Limit+1)...)
	if err != nil {
		return nil, 0, fmt.Errorf("records: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		if len(recs) == q.Limit {
			return recs, recs[len(recs)-1].Seq, nil
		}
		r, err := scanRecord(rows)
		if err != nil {
			return nil, 0, err
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

// Latest returns the newest record of consentID on site (any site when
// site is ""), or nil.
func (db *DB) Latest(ctx context.Context, consentID uuid.UUID, site string) (*consent.Record, error) {
	key := db.ids.Key(consentID)
	rows, err := db.read.QueryContext(ctx, `SELECT `+recordColumns+` FROM records r
		WHERE r.consent_key = ? AND r.consent_id = ? AND (? = '' OR r.site = ?) ORDER BY r.id DESC LIMIT 1`, key[:], consentID[:], site, site)
	if err != nil {
		return nil, fmt.Errorf("latest: %w", err)
	}
	defer rows.Close()
	if !rows.Next() {
		return nil, rows.Err()
	}
	return scanRecord(rows)
}

// ByRequest returns the record a request ID made on site, or nil.
func (db *DB) ByRequest(ctx context.Context, site, requestID string) (*consent.Record, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT `+recordColumns+` FROM requests q JOIN records r ON r.id = q.record
		WHERE q.site = ? AND q.request_id = ?`, site, db.reqs.Stored(site, requestID))
	if err != nil {
		return nil, fmt.Errorf("by request: %w", err)
	}
	defer rows.Close()
	if !rows.Next() {
		return nil, rows.Err()
	}
	return scanRecord(rows)
}

// CountSince counts the records of consentID recorded at or after since.
func (db *DB) CountSince(ctx context.Context, consentID uuid.UUID, since time.Time) (int, error) {
	key := db.ids.Key(consentID)
	var n int
	err := db.read.QueryRowContext(ctx, `SELECT count(*) FROM records r
		WHERE r.consent_key = ? AND r.consent_id = ? AND r.recorded_at >= ?`, key[:], consentID[:], since.UnixMicro()).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("count: %w", err)
	}
	return n, nil
}

func scanRecord(rows *sql.Rows) (*consent.Record, error) {
	var raw rawRecord
	if err := raw.scan(rows, nil); err != nil {
		return nil, err
	}
	return raw.record()
}

// rawRecord is a row as scanned, before its columns are decoded.
type rawRecord struct {
	r        consent.Record
	choices  []byte
	micros   int64
	services string
	idErr    error
}

// rowStrings hands out one string per distinct value of the columns that
// repeat across rows (site, action, hash, language, URL, user agent,
// network), so a long scan does not allocate them row after row.
type rowStrings struct {
	m   map[string]string
	raw [9]sql.RawBytes
}

func (rs *rowStrings) get(b []byte) string {
	if s, ok := rs.m[string(b)]; ok {
		return s
	}
	s := string(b)
	if len(rs.m) < 8192 {
		rs.m[s] = s
	}
	return s
}

// scan reads one row of recordColumns, then into extra any columns after them.
func (raw *rawRecord) scan(rows *sql.Rows, rs *rowStrings, extra ...any) error {
	r := &raw.r
	if rs == nil {
		rs = &rowStrings{m: map[string]string{}}
	}
	t := &rs.raw
	dest := []any{&t[7], &t[0], &r.Seq, &t[8], &raw.micros, &t[1], &raw.choices, &raw.services,
		&r.Revision, &t[2], &t[3], &t[4], &t[5], &t[6], &r.GPC, &r.PrevHash, &r.Hash,
		&r.Encoding, &r.GPCHeader, &r.ADPC, &r.Signal}
	if err := rows.Scan(append(dest, extra...)...); err != nil {
		return fmt.Errorf("scan record: %w", err)
	}
	r.Site, r.Action, r.ConfigHash, r.Language = rs.get(t[0]), rs.get(t[1]), rs.get(t[2]), rs.get(t[3])
	r.URL, r.UserAgent, r.IP = rs.get(t[4]), rs.get(t[5]), rs.get(t[6])
	if len(t[7]) != 16 || len(t[8]) != 16 {
		raw.idErr = fmt.Errorf("record %x: IDs are not 16 bytes", t[7])
	}
	copy(r.RecordID[:], t[7])
	copy(r.ConsentID[:], t[8])
	return nil
}

func (raw *rawRecord) record() (*consent.Record, error) {
	r := &raw.r
	if raw.idErr != nil {
		return nil, raw.idErr
	}
	var err error
	r.RecordedAt = time.UnixMicro(raw.micros).UTC()
	if raw.services != "" {
		r.Services = strings.Split(raw.services, ",")
	}
	if r.Choices, err = decodeChoices(raw.choices); err != nil {
		return nil, fmt.Errorf("choices of %s: %w", r.RecordID, err)
	}
	return r, nil
}

// decodeChoices reads the choices column. The store writes it as a flat
// object of simple names and booleans, which is read here without
// reflection; anything else goes through encoding/json.
func decodeChoices(b []byte) (map[string]bool, error) {
	m := make(map[string]bool, 4)
	if len(b) < 2 || b[0] != '{' || b[len(b)-1] != '}' {
		return m, json.Unmarshal(b, &m)
	}
	rest := b[1 : len(b)-1]
	for len(rest) > 0 {
		if rest[0] != '"' {
			return m, json.Unmarshal(b, &m)
		}
		end := bytes.IndexByte(rest[1:], '"')
		if end < 0 || bytes.IndexByte(rest[1:end+1], '\\') >= 0 {
			return m, json.Unmarshal(b, &m)
		}
		key := string(rest[1 : end+1])
		rest = rest[end+2:]
		switch {
		case bytes.HasPrefix(rest, []byte(":true")):
			m[key], rest = true, rest[5:]
		case bytes.HasPrefix(rest, []byte(":false")):
			m[key], rest = false, rest[6:]
		default:
			return m, json.Unmarshal(b, &m)
		}
		if len(rest) > 0 {
			if rest[0] != ',' {
				return m, json.Unmarshal(b, &m)
			}
			rest = rest[1:]
		}
	}
	return m, nil
}

// encodeChoices writes choices as a JSON object with sorted keys, as
// encoding/json would; category ids are plain names, anything else goes
// through encoding/json.
func encodeChoices(c map[string]bool) (string, error) {
	var keyBuf [8]string
	keys := keyBuf[:0]
	for k := range c {
		for i := 0; i < len(k); i++ {
			if ch := k[i]; ch < 0x20 || ch >= 0x7f || ch == '"' || ch == '\\' || ch == '<' || ch == '>' || ch == '&' {
				b, err := json.Marshal(c)
				return string(b), err
			}
		}
		keys = append(keys, k)
	}
	slices.Sort(keys)
	b := make([]byte, 0, 16*len(keys)+2)
	b = append(b, '{')
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '"')
		b = append(b, k...)
		b = append(b, '"', ':')
		b = strconv.AppendBool(b, c[k])
	}
	return string(append(b, '}')), nil
}

// Sites lists the sites the database holds: those with records (found by
// hopping along the (site, seq) index, one probe a site), banner versions or
// purge checkpoints.
func (db *DB) Sites(ctx context.Context) ([]string, error) {
	rows, err := db.read.QueryContext(ctx, `WITH RECURSIVE s(site) AS (
			SELECT min(site) FROM records
			UNION ALL SELECT (SELECT min(site) FROM records WHERE site > s.site) FROM s WHERE s.site IS NOT NULL)
		SELECT site FROM s WHERE site IS NOT NULL
		UNION SELECT site FROM versions UNION SELECT site FROM checkpoints ORDER BY 1`)
	if err != nil {
		return nil, fmt.Errorf("sites: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}
