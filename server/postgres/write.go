package postgres

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/koekje/koekje/server/batch"
	"github.com/koekje/koekje/server/consent"
)

// maxAttempts bounds the tries of one batch: each retry follows another
// writer's commit to the same chains, so the batch is starved only if
// other instances win every time.
const maxAttempts = 20

// Append queues r for the writer and waits until its batch is committed.
func (db *DB) Append(ctx context.Context, r *consent.Record) error {
	if err := storable(r); err != nil {
		return err
	}
	err := db.queue.Add(ctx, r)
	if errors.Is(err, batch.ErrClosed) {
		return consent.Errorf(consent.EUNAVAILABLE, "the server is shutting down")
	}
	return err
}

// storable refuses, before it joins a batch, a record whose text columns
// PostgreSQL cannot hold (a NUL byte, invalid UTF-8): it would fail its
// whole batch. Requests are validated long before; this is the store's own
// guard.
func storable(r *consent.Record) error {
	for _, f := range []struct{ name, v string }{
		{"site", r.Site}, {"action", r.Action}, {"language", r.Language}, {"ip", r.IP}, {"request_id", r.RequestID},
		{"services", strings.Join(r.Services, ",")},
	} {
		if strings.IndexByte(f.v, 0) >= 0 || !utf8.ValidString(f.v) {
			return consent.FieldErrorf(consent.EINVALID, f.name, "holds a NUL byte or invalid UTF-8")
		}
	}
	for k := range r.Choices {
		if strings.IndexByte(k, 0) >= 0 || !utf8.ValidString(k) {
			return consent.FieldErrorf(consent.EINVALID, "choices", "a category name holds a NUL byte or invalid UTF-8")
		}
	}
	return nil
}

// flush commits one batch; a failure is logged (at most every ten seconds)
// and answered as what a client may see.
func (db *DB) flush(recs []*consent.Record) error {
	err := db.commit(recs)
	if err == nil {
		return nil
	}
	db.failed++
	if now := time.Now(); now.Sub(db.lastLogged) >= 10*time.Second {
		db.log.Error("commit batch", "records", len(recs), "failed_batches", db.failed, "err", err)
		db.failed, db.lastLogged = 0, now
	}
	return consent.Errorf(consent.EUNAVAILABLE, "the consent store cannot write right now; nothing was recorded, try again later")
}

// commit writes a batch, retrying it from the start when another writer
// moved a head or deleted a text the batch relied on.
func (db *DB) commit(recs []*consent.Record) error {
	orig := make([]consent.Record, len(recs))
	for i, r := range recs {
		orig[i] = *r
	}
	for attempt := 1; ; attempt++ {
		// The first attempt trusts the cached heads; a retry locks the
		// heads first, so a writer that lost a race once cannot lose it
		// again and again to one whose cache is always fresh.
		err := db.try(recs, attempt > 1)
		if err == nil {
			return nil
		}
		// Whatever failed, the cached heads of these chains may be stale
		// (a commit whose answer was lost may even have gone through).
		for _, r := range orig {
			delete(db.heads, r.Site)
		}
		code := ""
		var pe *pgconn.PgError
		if errors.As(err, &pe) {
			code = pe.Code
		}
		if code == "23503" { // a text this writer cached was purged
			db.texts.reset()
		}
		switch code {
		case "KJ409", "23505", "23503", "40P01", "40001":
		default:
			return err
		}
		if attempt == maxAttempts {
			return fmt.Errorf("gave up after %d attempts: %w", attempt, err)
		}
		db.retries.Add(1)
		for i, r := range recs {
			*r = orig[i]
		}
	}
}

// rows is a batch in columns, for INSERT … SELECT FROM unnest(…).
type rows struct {
	site                                  []string
	seq                                   []int64
	recordID, consentID, consentKey       []pgtype.UUID
	at                                    []time.Time
	action, choices, services, lang, ip   []string
	revision                              []int32
	configHash, url, ua, prevHash, hashes [][]byte
	gpc, gpcHeader                        []bool
	encoding                              []int16
	adpc, signal                          []string
}

// add appends a record's columns: its consent key, its choices as JSON,
// and its texts by the hash textHash gives.
func (rs *rows) add(r *consent.Record, consentKey uuid.UUID, choices []byte, textHash func(string) []byte) {
	rs.site = append(rs.site, r.Site)
	rs.seq = append(rs.seq, r.Seq)
	rs.recordID = append(rs.recordID, pgtype.UUID{Bytes: r.RecordID, Valid: true})
	rs.consentID = append(rs.consentID, pgtype.UUID{Bytes: r.ConsentID, Valid: true})
	rs.consentKey = append(rs.consentKey, pgtype.UUID{Bytes: consentKey, Valid: true})
	rs.at = append(rs.at, r.RecordedAt)
	rs.action = append(rs.action, r.Action)
	rs.choices = append(rs.choices, string(choices))
	rs.services = append(rs.services, strings.Join(r.Services, ","))
	rs.revision = append(rs.revision, int32(r.Revision))
	rs.configHash = append(rs.configHash, textHash(r.ConfigHash))
	rs.lang = append(rs.lang, r.Language)
	rs.url = append(rs.url, textHash(r.URL))
	rs.ua = append(rs.ua, textHash(r.UserAgent))
	rs.ip = append(rs.ip, r.IP)
	rs.gpc = append(rs.gpc, r.GPC)
	rs.encoding = append(rs.encoding, int16(consent.EncodingOf(r)))
	rs.gpcHeader = append(rs.gpcHeader, r.GPCHeader)
	rs.adpc = append(rs.adpc, r.ADPC)
	rs.signal = append(rs.signal, r.Signal)
	rs.prevHash = append(rs.prevHash, r.PrevHash)
	rs.hashes = append(rs.hashes, r.Hash)
}

// try makes one attempt at committing a batch: the request IDs it may
// replay and the heads it lacks are read first (only when needed), then
// the heads' compare-and-set, the texts, the records and the request IDs
// go in one pipelined round trip as one implicit transaction. Locked, the
// heads are read under row locks in an explicit transaction first (two
// more round trips). Either way locks are taken heads first, in site
// order, then texts in hash order.
func (db *DB) try(recs []*consent.Record, locked bool) error {
	ctx := context.Background()
	replayed, err := db.replays(ctx, recs)
	if err != nil {
		return err
	}
	var tx pgx.Tx
	if locked {
		if tx, err = db.pool.Begin(ctx); err != nil {
			return err
		}
		defer tx.Rollback(ctx)
	}
	if err := db.loadHeads(ctx, tx, recs); err != nil {
		return err
	}
	staged := map[string]head{}
	old := map[string]int64{}
	first := map[string]*consent.Record{} // site and request ID → the record of this batch
	newTexts := map[string][]byte{}       // value → hash, of texts not known committed
	var rs rows
	var reqSite, reqID []string
	var reqSeq []int64
	now := db.now().UTC().Truncate(time.Microsecond)
	textHash := func(v string) []byte {
		if h, ok := db.texts.hashes[v]; ok {
			return h
		}
		if h, ok := newTexts[v]; ok {
			return h
		}
		sum := sha256.Sum256([]byte(v))
		newTexts[v] = sum[:]
		return sum[:]
	}
	for _, r := range recs {
		if r.RequestID != "" {
			k := r.Site + "\x00" + r.RequestID
			if prev, ok := first[k]; ok {
				*r = *prev
				r.Replayed = true
				continue
			}
			if prev, ok := replayed[k]; ok {
				reqID := r.RequestID
				*r = *prev
				r.RequestID, r.Replayed = reqID, true
				continue
			}
		}
		h, ok := staged[r.Site]
		if !ok {
			h = db.heads[r.Site]
			old[r.Site] = h.seq
		}
		// Time never runs backwards along a chain, whichever instance's
		// clock stamped the head.
		key, err := consent.Link(r, db.ids, db.NewID, h.seq, h.hash, h.at, now)
		if err != nil {
			return err
		}
		choices, err := json.Marshal(r.Choices)
		if err != nil {
			return err
		}
		rs.add(r, key, choices, textHash)
		if r.RequestID != "" {
			first[r.Site+"\x00"+r.RequestID] = r
			reqSite, reqID, reqSeq = append(reqSite, r.Site), append(reqID, db.reqs.Stored(r.Site, r.RequestID)), append(reqSeq, r.Seq)
		}
		staged[r.Site] = head{r.Seq, r.Hash, r.RecordedAt}
	}
	if len(rs.site) == 0 {
		return nil // every record replayed one already stored
	}

	b := &pgx.Batch{}
	sites := make([]string, 0, len(staged))
	for s := range staged {
		sites = append(sites, s)
	}
	slices.Sort(sites)
	olds, news, hashes, ats := make([]int64, len(sites)), make([]int64, len(sites)), make([][]byte, len(sites)), make([]time.Time, len(sites))
	for i, s := range sites {
		h := staged[s]
		olds[i], news[i], hashes[i], ats[i] = old[s], h.seq, h.hash, h.at
	}
	b.Queue(`SELECT koekje_advance_heads($1, $2, $3, $4, $5)`, sites, olds, news, hashes, ats)
	if len(newTexts) > 0 {
		// Sorted by hash: two batches inserting the same new texts lock
		// them in one order.
		values := make([]string, 0, len(newTexts))
		for v := range newTexts {
			values = append(values, v)
		}
		slices.SortFunc(values, func(a, b string) int { return strings.Compare(string(newTexts[a]), string(newTexts[b])) })
		hs, vs := make([][]byte, len(values)), make([][]byte, len(values))
		for i, v := range values {
			hs[i], vs[i] = newTexts[v], []byte(v)
		}
		b.Queue(`INSERT INTO texts (hash, value) SELECT * FROM unnest($1::bytea[], $2::bytea[]) ON CONFLICT DO NOTHING`, hs, vs)
	}
	b.Queue(`INSERT INTO records (site, seq, record_id, consent_id, consent_key, recorded_at, action, choices, services,
		revision, config_hash, language, url, user_agent, ip, gpc, prev_hash, hash, encoding, gpc_header, adpc, signal)
		SELECT * FROM unnest($1::text[], $2::bigint[], $3::uuid[], $4::uuid[], $5::uuid[], $6::timestamptz[], $7::text[],
			$8::text[], $9::text[], $10::integer[], $11::bytea[], $12::text[], $13::bytea[], $14::bytea[], $15::text[],
			$16::boolean[], $17::bytea[], $18::bytea[], $19::smallint[], $20::boolean[], $21::text[], $22::text[])`,
		rs.site, rs.seq, rs.recordID, rs.consentID, rs.consentKey, rs.at, rs.action, rs.choices, rs.services,
		rs.revision, rs.configHash, rs.lang, rs.url, rs.ua, rs.ip, rs.gpc, rs.prevHash, rs.hashes,
		rs.encoding, rs.gpcHeader, rs.adpc, rs.signal)
	db.logMAC.queueMACs(b, rs.site, rs.seq, rs.hashes)
	if len(reqSite) > 0 {
		b.Queue(`INSERT INTO requests (site, request_id, seq) SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[])`,
			reqSite, reqID, reqSeq)
	}
	if tx != nil {
		if err := tx.SendBatch(ctx, b).Close(); err != nil {
			return err
		}
		if err := tx.Commit(ctx); err != nil {
			return err
		}
	} else if err := db.pool.SendBatch(ctx, b).Close(); err != nil {
		// Queued without BEGIN, the statements ran in one implicit
		// transaction that commits at the pipeline's Sync: Close returns
		// once it did.
		return err
	}
	for s, h := range staged {
		db.heads[s] = h
	}
	for v, h := range newTexts {
		db.texts.add(v, h)
	}
	return nil
}

// loadHeads reads the heads of the batch's sites that are not cached, or,
// in tx, every head of the batch under a row lock, in site order.
func (db *DB) loadHeads(ctx context.Context, tx pgx.Tx, recs []*consent.Record) error {
	var missing []string
	for _, r := range recs {
		if _, ok := db.heads[r.Site]; (!ok || tx != nil) && !slices.Contains(missing, r.Site) {
			missing = append(missing, r.Site)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	var q querier = db.pool
	query := `SELECT site, seq, hash, recorded_at FROM chain_heads WHERE site = ANY ($1)`
	if tx != nil {
		slices.Sort(missing)
		if _, err := tx.Exec(ctx, `INSERT INTO chain_heads (site, seq) SELECT unnest($1::text[]), 0 ON CONFLICT DO NOTHING`, missing); err != nil {
			return fmt.Errorf("chain heads: %w", err)
		}
		q, query = tx, query+` ORDER BY site FOR UPDATE`
	}
	rows, err := q.Query(ctx, query, missing)
	if err != nil {
		return fmt.Errorf("chain heads: %w", err)
	}
	defer rows.Close()
	for _, s := range missing {
		db.heads[s] = head{} // no row: the chain has no record yet
	}
	for rows.Next() {
		var site string
		var h head
		var at *time.Time
		if err := rows.Scan(&site, &h.seq, &h.hash, &at); err != nil {
			return fmt.Errorf("chain heads: %w", err)
		}
		if at != nil {
			h.at = at.UTC()
		}
		db.heads[site] = h
	}
	return rows.Err()
}

// replays returns the stored records of the batch's request IDs that were
// recorded before, by site and request ID.
func (db *DB) replays(ctx context.Context, recs []*consent.Record) (map[string]*consent.Record, error) {
	var sites, ids []string
	plain := map[string]string{} // stored (keyed hash) → the request ID
	for _, r := range recs {
		if r.RequestID != "" {
			stored := db.reqs.Stored(r.Site, r.RequestID)
			sites, ids = append(sites, r.Site), append(ids, stored)
			plain[stored] = r.RequestID
		}
	}
	if len(ids) == 0 {
		return nil, nil
	}
	rows, err := db.pool.Query(ctx, `SELECT q.request_id, `+recordColumns+`
		FROM unnest($1::text[], $2::text[]) AS w (site, request_id)
		JOIN requests q ON q.site = w.site AND q.request_id = w.request_id
		JOIN records r ON r.site = q.site AND r.seq = q.seq`, sites, ids)
	if err != nil {
		return nil, fmt.Errorf("replay: %w", err)
	}
	defer rows.Close()
	out := map[string]*consent.Record{}
	for rows.Next() {
		var stored string
		r, err := scanRecord(rows, &stored)
		if err != nil {
			return nil, err
		}
		out[r.Site+"\x00"+plain[stored]] = r
	}
	return out, rows.Err()
}

// textCache maps the values of texts known committed to their hashes,
// bounded by the bytes they take.
type textCache struct {
	hashes map[string][]byte
	bytes  int
}

const maxTextBytes = 8 << 20

func (c *textCache) add(v string, h []byte) {
	if c.bytes+len(v) > maxTextBytes {
		c.reset()
	}
	c.hashes[v] = h
	c.bytes += len(v) + 80
}

func (c *textCache) reset() {
	clear(c.hashes)
	c.bytes = 0
}

// maxBatch bounds one transaction; the batching window is the previous
// commit.
const maxBatch = 512

// Batch yielding, as in the SQLite store.
const (
	yieldFrom   = 8
	batchYields = 2
)

type head struct {
	seq  int64
	hash []byte
	at   time.Time
}

func (db *DB) onFlush(size int, d time.Duration, err error) {
	if err == nil {
		db.nudgeLog()
	}
	if db.onCommit != nil {
		db.onCommit(size, d, err)
	}
}

// Retries counts the batches retried because another writer moved a
// chain's head (or a text) under them.
func (db *DB) Retries() int64 { return db.retries.Load() }
