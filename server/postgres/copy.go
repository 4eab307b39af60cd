package postgres

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/koekje/koekje/server/consent"
	"github.com/koekje/koekje/server/keyfile"
	"github.com/koekje/koekje/server/store"
	"github.com/koekje/koekje/server/translog"
)

// Import copies a whole store into an empty database (koekje
// migrate-store). Everything goes in one transaction, which holds the
// lock migrations take: a server starting on the database meanwhile waits
// in its migrations and then finds the copy whole, a second copy waits and
// then finds the database taken, and a copy that is interrupted, fails or
// does not verify leaves the database as empty as it found it. Rows go in
// batches, one multi-row INSERT each.
type Import struct {
	pool  *pgxpool.Pool
	tx    pgx.Tx
	kek   *keyfile.Key
	heads map[string]head
	mac   logMAC // made at the first records
}

// ErrNotEmpty is BeginImport's answer for a database that holds anything.
var ErrNotEmpty = errors.New("the target database is not empty")

// BeginImport connects to dsn, brings its schema up to date (refusing one
// newer than this binary's), and begins the copy, refusing a database that
// holds anything. keyFile seals the copied secrets; it is made when missing.
func BeginImport(ctx context.Context, dsn, keyFile string) (*Import, error) {
	if keyFile == "" {
		return nil, errors.New("a PostgreSQL store needs --key-file: the key file that seals its keys, the same for every instance")
	}
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("PostgreSQL DSN: %w", err)
	}
	cfg.MaxConns = 4
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect to PostgreSQL: %w", err)
	}
	imp := &Import{pool: pool, heads: map[string]head{}}
	fail := func(err error) (*Import, error) {
		imp.Rollback()
		return nil, err
	}
	if _, err := migrate(ctx, pool); err != nil {
		return fail(fmt.Errorf("migrate: %w", err))
	}
	if err := checkAppendOnly(ctx, pool); err != nil {
		return fail(err)
	}
	if imp.tx, err = pool.Begin(ctx); err != nil {
		return fail(err)
	}
	if _, err := imp.tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(migrateLock)); err != nil {
		return fail(err)
	}
	held, err := nonEmptyTables(ctx, imp.tx)
	if err != nil {
		return fail(err)
	}
	if len(held) > 0 {
		return fail(fmt.Errorf("%w: it holds rows in %s; migrate-store copies only into a database no Koekje has used", ErrNotEmpty, strings.Join(held, ", ")))
	}
	if imp.kek, err = keyfile.Load(keyFile); errors.Is(err, keyfile.ErrNotExist) {
		imp.kek, err = keyfile.Create(keyFile)
	}
	if err != nil {
		return fail(err)
	}
	return imp, nil
}

// nonEmptyTables names the schema's tables that hold rows, whichever
// migrations made them.
func nonEmptyTables(ctx context.Context, tx pgx.Tx) ([]string, error) {
	rows, err := tx.Query(ctx, `SELECT table_name FROM information_schema.tables
		WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' AND table_name <> 'schema_version' ORDER BY 1`)
	if err != nil {
		return nil, fmt.Errorf("list tables: %w", err)
	}
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("list tables: %w", err)
	}
	var held []string
	for _, t := range tables {
		q := `SELECT EXISTS (SELECT 1 FROM ` + pgx.Identifier{t}.Sanitize() + `)`
		if t == "log_state" {
			// Its one row is made by the migration: an empty log.
			q = `SELECT EXISTS (SELECT 1 FROM log_state WHERE size > 0 OR origin IS NOT NULL)`
		}
		var any bool
		if err := tx.QueryRow(ctx, q).Scan(&any); err != nil {
			return nil, fmt.Errorf("look into %s: %w", t, err)
		}
		if any {
			held = append(held, t)
		}
	}
	return held, nil
}

// KeyFile is the path of the key file the copy's secrets are sealed with.
func (imp *Import) KeyFile() string { return imp.kek.Path() }

// Rollback abandons the copy (a no-op after Commit) and disconnects.
func (imp *Import) Rollback() {
	if imp.tx != nil {
		imp.tx.Rollback(context.Background())
	}
	imp.pool.Close()
}

// PutSecrets seals each secret with the target's key file and stores it.
func (imp *Import) PutSecrets(ctx context.Context, secrets []store.Secret) error {
	for _, s := range secrets {
		sealed, err := imp.kek.Seal(s.Name, s.Value)
		if err != nil {
			return err
		}
		if _, err := imp.tx.Exec(ctx, `INSERT INTO secrets (name, sealed, created_at) VALUES ($1, $2, $3)`,
			s.Name, sealed, s.CreatedAt); err != nil {
			return fmt.Errorf("secret %s: %w", s.Name, err)
		}
	}
	return nil
}

// PutKeys stores signing keys, each sealed with the target's key file.
func (imp *Import) PutKeys(ctx context.Context, keys []consent.SigningKey) error {
	for _, k := range keys {
		sealed, err := imp.kek.Seal(signingKeyPrefix+k.ID, k.Private)
		if err != nil {
			return err
		}
		if _, err := imp.tx.Exec(ctx, `INSERT INTO signing_keys (id, sealed, created_at) VALUES ($1, $2, $3)`,
			k.ID, sealed, k.CreatedAt); err != nil {
			return fmt.Errorf("signing key %s: %w", k.ID, err)
		}
	}
	return nil
}

// PutTexts stores texts under their hashes.
func (imp *Import) PutTexts(ctx context.Context, values []string) error {
	hs, vs := make([][]byte, len(values)), make([][]byte, len(values))
	for i, v := range values {
		sum := sha256.Sum256([]byte(v))
		hs[i], vs[i] = sum[:], []byte(v)
	}
	if _, err := imp.tx.Exec(ctx, `INSERT INTO texts (hash, value) SELECT * FROM unnest($1::bytea[], $2::bytea[])
		ON CONFLICT DO NOTHING`, hs, vs); err != nil {
		return fmt.Errorf("texts: %w", err)
	}
	return nil
}

// PutVersions stores banner versions.
func (imp *Import) PutVersions(ctx context.Context, vs []*store.Version) error {
	var sites, hashes []string
	var bodies [][]byte
	var ats []time.Time
	for _, v := range vs {
		sites, hashes, bodies, ats = append(sites, v.Site), append(hashes, v.Hash), append(bodies, v.Body), append(ats, v.CreatedAt)
	}
	if _, err := imp.tx.Exec(ctx, `INSERT INTO versions (site, hash, body, created_at)
		SELECT * FROM unnest($1::text[], $2::text[], $3::bytea[], $4::timestamptz[])`, sites, hashes, bodies, ats); err != nil {
		return fmt.Errorf("versions: %w", err)
	}
	return nil
}

// PutCheckpoints stores purge checkpoints.
func (imp *Import) PutCheckpoints(ctx context.Context, cps []*consent.Checkpoint) error {
	for _, cp := range cps {
		var kid *string
		if cp.KeyID != "" {
			kid = &cp.KeyID
		}
		var before *time.Time
		if !cp.Before.IsZero() {
			before = &cp.Before
		}
		if _, err := imp.tx.Exec(ctx, `INSERT INTO checkpoints (site, seq, hash, created_at, key_id, signature, log_index, entry_index, entry_salt, purged_before)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`, cp.Site, cp.Seq, cp.Hash, cp.CreatedAt, kid, cp.Signature, cp.LogIndex, cp.EntryIndex, cp.EntrySalt, before); err != nil {
			return fmt.Errorf("checkpoint %s/%d: %w", cp.Site, cp.Seq, err)
		}
	}
	return nil
}

// PutRecords stores records as they were stored, each chain's in
// sequence order; their texts must be stored already.
func (imp *Import) PutRecords(ctx context.Context, recs []*store.StoredRecord) error {
	var rs rows
	for _, s := range recs {
		r := &s.Record
		if h, ok := imp.heads[r.Site]; ok && r.Seq <= h.seq {
			return fmt.Errorf("record %s of %s comes at sequence %d, after %d: records must come in chain order", r.RecordID, r.Site, r.Seq, h.seq)
		}
		choices, err := json.Marshal(r.Choices)
		if err != nil {
			return err
		}
		textHash := func(v string) []byte { sum := sha256.Sum256([]byte(v)); return sum[:] }
		rs.add(r, s.ConsentKey, choices, textHash)
		imp.heads[r.Site] = head{r.Seq, r.Hash, r.RecordedAt}
	}
	if _, err := imp.tx.Exec(ctx, `INSERT INTO records (site, seq, record_id, consent_id, consent_key, recorded_at, action, choices, services,
		revision, config_hash, language, url, user_agent, ip, gpc, prev_hash, hash, encoding, gpc_header, adpc, signal)
		SELECT * FROM unnest($1::text[], $2::bigint[], $3::uuid[], $4::uuid[], $5::uuid[], $6::timestamptz[], $7::text[],
			$8::text[], $9::text[], $10::integer[], $11::bytea[], $12::text[], $13::bytea[], $14::bytea[], $15::text[],
			$16::boolean[], $17::bytea[], $18::bytea[], $19::smallint[], $20::boolean[], $21::text[], $22::text[])`,
		rs.site, rs.seq, rs.recordID, rs.consentID, rs.consentKey, rs.at, rs.action, rs.choices, rs.services,
		rs.revision, rs.configHash, rs.lang, rs.url, rs.ua, rs.ip, rs.gpc, rs.prevHash, rs.hashes,
		rs.encoding, rs.gpcHeader, rs.adpc, rs.signal); err != nil {
		return fmt.Errorf("records: %w", err)
	}
	// The copied records come through the copy's verification: those the
	// source's log does not hold yet may enter this one.
	if imp.mac == nil {
		var err error
		if imp.mac, err = loadLogMAC(ctx, imp.tx, imp.kek); err != nil {
			return err
		}
	}
	b := &pgx.Batch{}
	imp.mac.queueMACs(b, rs.site, rs.seq, rs.hashes)
	if err := imp.tx.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("records' log queue: %w", err)
	}
	return nil
}

// PutRequestIDs stores client-made request IDs, so a retried POST still
// gets its first answer.
func (imp *Import) PutRequestIDs(ctx context.Context, qs []*store.RequestID) error {
	var sites, ids []string
	var seqs []int64
	for _, q := range qs {
		sites, ids, seqs = append(sites, q.Site), append(ids, q.RequestID), append(seqs, q.Seq)
	}
	if _, err := imp.tx.Exec(ctx, `INSERT INTO requests (site, request_id, seq) SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[])`,
		sites, ids, seqs); err != nil {
		return fmt.Errorf("request ids: %w", err)
	}
	return nil
}

// PutSessions stores console sessions.
func (imp *Import) PutSessions(ctx context.Context, ss []store.Session) error {
	for _, s := range ss {
		if _, err := imp.tx.Exec(ctx, `INSERT INTO sessions (id, token, created_at, expires_at, ended_at) VALUES ($1, $2, $3, $4, $5)`,
			s.ID, s.Token, s.CreatedAt, s.ExpiresAt, s.EndedAt); err != nil {
			return fmt.Errorf("sessions: %w", err)
		}
	}
	return nil
}

// PutScan stores a recorded scan as it was recorded, ID and times included.
func (imp *Import) PutScan(ctx context.Context, s *consent.Scan) error {
	urls := s.URLs
	if urls == nil {
		urls = []string{}
	}
	if _, err := imp.tx.Exec(ctx, `INSERT INTO scans (id, site, started_at, recorded_at, config_hash,
		verdict, violations, undeclared, stale, urls, schedule, report) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, NULLIF($11, ''), $12)`,
		s.ID, s.Site, s.StartedAt, s.RecordedAt, s.ConfigHash, s.Verdict, s.Violations, s.Undeclared, s.Stale, urls, s.Schedule, []byte(s.Report)); err != nil {
		return fmt.Errorf("scan %s: %w", s.ID, err)
	}
	if s.EntryIndex != nil {
		if _, err := imp.tx.Exec(ctx, `INSERT INTO scan_entries (scan_id, entry_index, entry_salt) VALUES ($1, $2, $3)`,
			s.ID, *s.EntryIndex, s.EntrySalt); err != nil {
			return fmt.Errorf("scan %s: log entry: %w", s.ID, err)
		}
	}
	return nil
}

// Chain streams a site's copied records in sequence order, from within
// the copy's transaction: the copy is verified before it commits.
func (imp *Import) Chain(ctx context.Context, site string, fn func(*consent.Record) error) error {
	return eachRecord(ctx, imp.tx, fn, `SELECT `+recordColumns+` FROM records r WHERE r.site = $1 ORDER BY r.seq`, site)
}

// FindHash is DB.FindHash within the copy.
func (imp *Import) FindHash(ctx context.Context, site string, hash []byte) (int64, bool, error) {
	return findHash(ctx, imp.tx, site, hash)
}

// LastCheckpoint is DB.LastCheckpoint within the copy.
func (imp *Import) LastCheckpoint(ctx context.Context, site string) (*consent.Checkpoint, error) {
	cps, err := checkpoints(ctx, imp.tx, site, 1)
	if err != nil || len(cps) == 0 {
		return nil, err
	}
	return cps[0], nil
}

// Commit sets each chain's head (its last record, or for a chain whose
// records were all purged, its last checkpoint) and commits the copy.
func (imp *Import) Commit(ctx context.Context) error {
	rows, err := imp.tx.Query(ctx, `SELECT DISTINCT ON (site) site, seq, hash FROM checkpoints ORDER BY site, seq DESC`)
	if err != nil {
		return fmt.Errorf("checkpoints: %w", err)
	}
	heads := map[string]head{}
	for rows.Next() {
		var site string
		var h head
		if err := rows.Scan(&site, &h.seq, &h.hash); err != nil {
			rows.Close()
			return fmt.Errorf("checkpoints: %w", err)
		}
		heads[site] = h
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("checkpoints: %w", err)
	}
	for s, h := range imp.heads {
		heads[s] = h
	}
	sites := make([]string, 0, len(heads))
	for s := range heads {
		sites = append(sites, s)
	}
	slices.Sort(sites)
	seqs, hashes, ats := make([]int64, len(sites)), make([][]byte, len(sites)), make([]*time.Time, len(sites))
	for i, s := range sites {
		h := heads[s]
		seqs[i], hashes[i] = h.seq, h.hash
		if !h.at.IsZero() {
			ats[i] = &h.at
		}
	}
	if _, err := imp.tx.Exec(ctx, `INSERT INTO chain_heads (site, seq, hash, recorded_at)
		SELECT * FROM unnest($1::text[], $2::bigint[], $3::bytea[], $4::timestamptz[])`, sites, seqs, hashes, ats); err != nil {
		return fmt.Errorf("chain heads: %w", err)
	}
	if err := imp.tx.Commit(ctx); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// PutLogLeaves stores leaves of the transparency log.
func (imp *Import) PutLogLeaves(ctx context.Context, leaves []*store.LogLeaf) error {
	idx, seqs := make([]int64, len(leaves)), make([]int64, len(leaves))
	sites, kinds := make([]string, len(leaves)), make([]int16, len(leaves))
	salts, entries := make([][]byte, len(leaves)), make([][]byte, len(leaves))
	for i, l := range leaves {
		idx[i], sites[i], seqs[i], salts[i], entries[i] = l.Index, l.Site, l.Seq, l.Salt, l.Entry
		kinds[i] = int16(max(l.Kind, translog.KindRecord))
	}
	if _, err := imp.tx.Exec(ctx, `INSERT INTO log_leaves (idx, site, seq, salt, entry, kind)
		SELECT * FROM unnest($1::bigint[], $2::text[], $3::bigint[], $4::bytea[], $5::bytea[], $6::smallint[])`, idx, sites, seqs, salts, entries, kinds); err != nil {
		return fmt.Errorf("log leaves: %w", err)
	}
	return nil
}

// PutLogHashes stores hashes of the log's tree by tlog's stored hash index.
func (imp *Import) PutLogHashes(ctx context.Context, ids []int64, hashes [][]byte) error {
	if _, err := imp.tx.Exec(ctx, `INSERT INTO log_hashes (id, hash) SELECT * FROM unnest($1::bigint[], $2::bytea[])`, ids, hashes); err != nil {
		return fmt.Errorf("log hashes: %w", err)
	}
	return nil
}

// PutLogCheckpoint stores a signed checkpoint of the log, or one with the
// witnesses' cosignatures.
func (imp *Import) PutLogCheckpoint(ctx context.Context, cp *store.LogCheckpoint, witnessed bool) error {
	q := `INSERT INTO log_checkpoints (size, signed, created_at) VALUES ($1, $2, $3)`
	args := []any{cp.Size, cp.Signed, cp.CreatedAt}
	if witnessed {
		q, args = `INSERT INTO log_witnessed (size, cosigned) VALUES ($1, $2)`, args[:2]
	}
	if _, err := imp.tx.Exec(ctx, q, args...); err != nil {
		return fmt.Errorf("log checkpoint %d: %w", cp.Size, err)
	}
	return nil
}

// FinishLog sets the log's state to its newest checkpoint (size, root and
// the origin that names it), takes the records that have leaves off the
// integrator's queue, and checks that each purge checkpoint's leaf is
// that of its last purged record.
func (imp *Import) FinishLog(ctx context.Context, size int64, root []byte, origin string) error {
	var leaves int64
	if err := imp.tx.QueryRow(ctx, `SELECT coalesce(max(idx) + 1, 0) FROM log_leaves`).Scan(&leaves); err != nil {
		return fmt.Errorf("log leaves: %w", err)
	}
	if leaves != size {
		return fmt.Errorf("the log's newest checkpoint has size %d, its leaves number %d", size, leaves)
	}
	if _, err := imp.tx.Exec(ctx, `UPDATE log_state SET size = $1, root = $2, origin = $3`, size, root, origin); err != nil {
		return fmt.Errorf("log state: %w", err)
	}
	if _, err := imp.tx.Exec(ctx, `DELETE FROM log_pending p WHERE EXISTS (SELECT 1 FROM log_leaves l WHERE l.site = p.site AND l.seq = p.seq AND l.kind = p.kind)`); err != nil {
		return fmt.Errorf("log queue: %w", err)
	}
	var site string
	var seq int64
	err := imp.tx.QueryRow(ctx, `SELECT c.site, c.seq FROM checkpoints c LEFT JOIN log_leaves l ON l.idx = c.log_index
		WHERE c.log_index IS NOT NULL AND (l.site IS DISTINCT FROM c.site OR l.seq IS DISTINCT FROM c.seq OR l.kind <> 1)
		UNION ALL SELECT c.site, c.seq FROM checkpoints c LEFT JOIN log_leaves l ON l.idx = c.entry_index
		WHERE c.entry_index IS NOT NULL AND (l.site IS DISTINCT FROM c.site OR l.seq IS DISTINCT FROM c.seq OR l.kind <> 2) LIMIT 1`).Scan(&site, &seq)
	if err == nil {
		return fmt.Errorf("the purge checkpoint of %s at %d names a leaf of another record", site, seq)
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("purge checkpoints: %w", err)
	}
	return nil
}

// Checkpoints is DB.Checkpoints within the copy.
func (imp *Import) Checkpoints(ctx context.Context, site string) ([]*consent.Checkpoint, error) {
	return checkpoints(ctx, imp.tx, site, math.MaxInt32)
}

// LatestCheckpoint is the newest signed checkpoint of the copied log.
func (imp *Import) LatestCheckpoint(ctx context.Context) ([]byte, error) {
	var b []byte
	err := imp.tx.QueryRow(ctx, `SELECT signed FROM log_checkpoints ORDER BY size DESC LIMIT 1`).Scan(&b)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("log checkpoint: %w", err)
	}
	return b, nil
}

// LogLeaves calls fn for each copied leaf in index order, with the record
// it commits to if that record is there.
func (imp *Import) LogLeaves(ctx context.Context, fn func(*translog.LeafRecord) error) error {
	return logLeaves(ctx, imp.tx, fn)
}
