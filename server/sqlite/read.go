package sqlite

import (
	"bytes"
	"context"
	"crypto/rand"
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
	"github.com/koekje/koekje/server/keyfile"
)

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
		where, args = where+" AND r.gpc = ?", append(args, *q.GPC)
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
		&r.Revision, &t[2], &t[3], &t[4], &t[5], &t[6], &r.GPC, &r.PrevHash, &r.Hash}
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

// Lease takes the lease name for holder until now+ttl, if it is free, has
// run out, or is holder's already; it reports whether holder has it.
func (db *DB) Lease(ctx context.Context, name, holder string, ttl time.Duration) (bool, error) {
	now := time.Now()
	var got string
	err := db.write.QueryRowContext(ctx, `INSERT INTO leases (name, holder, until) VALUES (?, ?, ?)
		ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, until = excluded.until
		WHERE leases.until < ? OR leases.holder = excluded.holder
		RETURNING holder`, name, holder, now.Add(ttl).UnixMicro(), now.UnixMicro()).Scan(&got)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("lease %s: %w", name, err)
	}
	return got == holder, nil
}
