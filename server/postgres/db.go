// Package postgres stores consent records in PostgreSQL (pgx, pgxpool), for
// several Koekje instances on one database: each instance commits queued
// records in batches (group commit on server/batch), one transaction per
// batch sent in one round trip, and a chain_heads row per site, moved only
// by compare-and-set, keeps every chain unforked whichever instance writes.
package postgres

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/koekje/koekje/config"
	"github.com/koekje/koekje/server/batch"
	"github.com/koekje/koekje/server/consent"
	"github.com/koekje/koekje/server/keyfile"
	"github.com/koekje/koekje/server/store"
)

// maxBatch bounds one transaction; the batching window is the previous
// commit.
const maxBatch = 512

// Batch yielding, as in the SQLite store.
const (
	yieldFrom   = 8
	batchYields = 2
)

// DB is the PostgreSQL store.
type DB struct {
	pool *pgxpool.Pool
	log  *slog.Logger
	kek  *keyfile.Key
	ids  consent.IDs
	// logMAC authenticates what the write path queues for the log.
	logMAC logMAC
	reqs   consent.RequestIDs // what is stored of request IDs

	queue *batch.Queue[*consent.Record]

	// Owned by the writer goroutine (the queue's flush).
	heads      map[string]head
	texts      textCache
	failed     int
	lastLogged time.Time

	retries atomic.Int64 // batches retried after another writer moved a head

	// The transparency log, once StartLog made it (log.go).
	tl      atomic.Pointer[integrator]
	stopLog context.CancelFunc
	logDone chan struct{}

	onCommit func(size int, d time.Duration, err error)
	now      func() time.Time
	// NewID stamps records; tests may set it before the first Append.
	NewID func() (uuid.UUID, error)
}

type head struct {
	seq  int64
	hash []byte
	at   time.Time
}

// Options are what Open takes besides the DSN.
type Options struct {
	// KeyFile holds the key that seals the stored secrets; required. It is
	// made (mode 0600) when missing, unless the database already holds
	// sealed secrets: then its key file was lost or not given. Every
	// instance on one database is given the same key file.
	KeyFile string
	Log     *slog.Logger
	// Existing opens the database only as it is: its schema must be this
	// binary's and the key file must exist. Nothing is made and nothing
	// upgraded, for the commands whose job that is not.
	Existing bool
}

// IsDSN reports whether s names a PostgreSQL database rather than a file.
func IsDSN(s string) bool {
	return strings.HasPrefix(s, "postgres://") || strings.HasPrefix(s, "postgresql://")
}

// Open connects to the database at dsn, applies migrations and starts the
// writer.
func Open(ctx context.Context, dsn string, o Options) (*DB, error) {
	log := o.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if o.KeyFile == "" {
		return nil, errors.New("a PostgreSQL store needs --key-file (KOEKJE_KEY_FILE): the key file that seals its keys, the same for every instance")
	}
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("PostgreSQL DSN: %w", err)
	}
	if !strings.Contains(dsn, "pool_max_conns") {
		cfg.MaxConns = 16
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect to PostgreSQL: %w", err)
	}
	fail := func(err error) (*DB, error) {
		pool.Close()
		return nil, err
	}
	var (
		from int
		kek  *keyfile.Key
	)
	if o.Existing {
		if from, err = current(ctx, pool); err != nil {
			return fail(err)
		}
	} else if from, err = migrate(ctx, pool); err != nil {
		return fail(fmt.Errorf("migrate: %w", err))
	}
	if err := checkAppendOnly(ctx, pool); err != nil {
		return fail(err)
	}
	if o.Existing {
		kek, err = keyfile.Load(o.KeyFile)
		if errors.Is(err, keyfile.ErrNotExist) {
			err = fmt.Errorf("the key file %s does not exist: give the database's key file with --key-file (KOEKJE_KEY_FILE)", o.KeyFile)
		}
	} else {
		kek, err = loadKey(ctx, pool, o.KeyFile)
	}
	if err != nil {
		return fail(err)
	}
	db := &DB{
		pool:  pool,
		log:   log,
		kek:   kek,
		heads: map[string]head{},
		texts: textCache{hashes: map[string][]byte{}},
		now:   time.Now,
		NewID: uuid.NewV7,
	}
	key, err := db.Secret(ctx, store.ConsentIDSecret, 16)
	if err != nil {
		return fail(fmt.Errorf("open with key file %s: %w", kek.Path(), err))
	}
	if db.ids, err = consent.NewIDs(key); err != nil {
		return fail(err)
	}
	if db.logMAC, err = loadLogMAC(ctx, pool, kek); err != nil {
		return fail(err)
	}
	if from > 0 && from < logMACSchema {
		if err := macQueuedBefore(ctx, pool, db.logMAC); err != nil {
			return fail(fmt.Errorf("authenticate the records queued for the log: %w", err))
		}
	}
	if db.reqs, err = loadRequestIDs(ctx, pool, kek); err != nil {
		return fail(err)
	}
	if from > 0 && from < requestHashSchema {
		if err := hashRequestIDs(ctx, pool, db.reqs); err != nil {
			return fail(fmt.Errorf("hash the stored request IDs: %w", err))
		}
	}
	db.queue = batch.New(batch.Options{Max: maxBatch, YieldFrom: yieldFrom, Yields: batchYields, OnFlush: db.onFlush}, db.flush)
	return db, nil
}

// loadKey loads the key file, making it when the database holds no sealed
// secret yet.
func loadKey(ctx context.Context, pool *pgxpool.Pool, path string) (*keyfile.Key, error) {
	kek, err := keyfile.Load(path)
	if !errors.Is(err, keyfile.ErrNotExist) {
		return kek, err
	}
	var n int
	if err := pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM secrets) + (SELECT count(*) FROM signing_keys)`).Scan(&n); err != nil {
		return nil, err
	}
	if n > 0 {
		// Another instance starting beside this one, given the same path,
		// may have made the key file and sealed a first secret under it
		// since this one looked: it links the file into place before it
		// seals anything, so a second look finds it.
		if kek, err := keyfile.Load(path); !errors.Is(err, keyfile.ErrNotExist) {
			return kek, err
		}
		return nil, fmt.Errorf("the keys in this database are sealed with a key file, and %s does not exist: give the database's key file with --key-file (KOEKJE_KEY_FILE) or put it there", path)
	}
	return keyfile.Create(path)
}

// Close stops accepting records, commits those already queued and closes
// the pool.
func (db *DB) Close() error {
	if db.stopLog != nil {
		db.stopLog()
		<-db.logDone
	}
	db.queue.Close()
	db.pool.Close()
	return nil
}

// Ping checks that the database answers.
func (db *DB) Ping(ctx context.Context) error { return db.pool.Ping(ctx) }

// SetClock sets the clock that stamps records; tests use it.
func (db *DB) SetClock(now func() time.Time) { db.now = now }

// SetOnCommit has f called after every batch with its size, duration and
// error. Set it before the first Append.
func (db *DB) SetOnCommit(f func(size int, d time.Duration, err error)) { db.onCommit = f }

// Retries counts the batches retried because another writer moved a
// chain's head (or a text) under them.
func (db *DB) Retries() int64 { return db.retries.Load() }

func (db *DB) onFlush(size int, d time.Duration, err error) {
	if err == nil {
		db.nudgeLog()
	}
	if db.onCommit != nil {
		db.onCommit(size, d, err)
	}
}

// LimitSize is SQLite's database cap; PostgreSQL's size is the server's
// business, so only "no cap" is accepted.
func (db *DB) LimitSize(_ context.Context, maxBytes int64) error {
	if maxBytes > 0 {
		return errors.New("--max-db-size caps a SQLite file; on PostgreSQL, bound the database with the server's own means (disk quota, tablespace)")
	}
	return nil
}

// Secret returns the secret called name, making n random bytes for it the
// first time it is asked for. Every instance sharing the key file reads
// the same value.
func (db *DB) Secret(ctx context.Context, name string, n int) ([]byte, error) {
	return secret(ctx, db.pool, db.kek, name, n)
}

// execQuerier is a pool or a transaction, for what writes as well as reads.
type execQuerier interface {
	querier
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

func secret(ctx context.Context, q execQuerier, kek *keyfile.Key, name string, n int) ([]byte, error) {
	var v []byte
	err := q.QueryRow(ctx, `SELECT sealed FROM secrets WHERE name = $1`, name).Scan(&v)
	if err == nil {
		return kek.Open(name, v)
	}
	if !errors.Is(err, pgx.ErrNoRows) {
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
	if _, err := q.Exec(ctx, `INSERT INTO secrets (name, sealed, created_at) VALUES ($1, $2, now())
		ON CONFLICT DO NOTHING`, name, sealed); err != nil {
		return nil, fmt.Errorf("store secret %s: %w", name, err)
	}
	// Another instance may have stored its own first: read what won.
	if err := q.QueryRow(ctx, `SELECT sealed FROM secrets WHERE name = $1`, name).Scan(&v); err != nil {
		return nil, fmt.Errorf("read secret %s: %w", name, err)
	}
	return kek.Open(name, v)
}

// signingKeyPrefix names a signing key's private key as a secret: its
// sealed value opens only in the row of that key ID.
const signingKeyPrefix = "signing-key:"

// Keys returns every signing key, oldest first.
func (db *DB) Keys(ctx context.Context) ([]consent.SigningKey, error) {
	rows, err := db.pool.Query(ctx, `SELECT id, sealed, created_at FROM signing_keys ORDER BY created_at, id`)
	if err != nil {
		return nil, fmt.Errorf("keys: %w", err)
	}
	defer rows.Close()
	var out []consent.SigningKey
	for rows.Next() {
		var k consent.SigningKey
		var sealed []byte
		if err := rows.Scan(&k.ID, &sealed, &k.CreatedAt); err != nil {
			return nil, err
		}
		if k.Private, err = db.kek.Open(signingKeyPrefix+k.ID, sealed); err != nil {
			return nil, err
		}
		k.CreatedAt = k.CreatedAt.UTC()
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
	if _, err := db.pool.Exec(ctx, `INSERT INTO signing_keys (id, sealed, created_at) VALUES ($1, $2, $3)`,
		k.ID, sealed, k.CreatedAt); err != nil {
		return fmt.Errorf("add key: %w", err)
	}
	return nil
}

// PutVersion stores a banner version once; storing it again changes nothing.
func (db *DB) PutVersion(ctx context.Context, site, hash string, body []byte) error {
	if _, err := db.pool.Exec(ctx, `INSERT INTO versions (site, hash, body, created_at) VALUES ($1, $2, $3, now())
		ON CONFLICT DO NOTHING`, site, hash, body); err != nil {
		return fmt.Errorf("put version: %w", err)
	}
	return nil
}

// HasVersion reports whether site served a banner version with this hash.
func (db *DB) HasVersion(ctx context.Context, site, hash string) (bool, error) {
	var ok bool
	if err := db.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM versions WHERE site = $1 AND hash = $2)`, site, hash).Scan(&ok); err != nil {
		return false, fmt.Errorf("has version: %w", err)
	}
	return ok, nil
}

// Version returns a stored banner version, or a not-found error. A body
// that does not hash to its name is not what visitors were shown: it is
// never returned, and the error says the version is damaged.
func (db *DB) Version(ctx context.Context, site, hash string) ([]byte, error) {
	var body []byte
	err := db.pool.QueryRow(ctx, `SELECT body FROM versions WHERE site = $1 AND hash = $2`, site, hash).Scan(&body)
	if errors.Is(err, pgx.ErrNoRows) {
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

// StartSession records a console session made with the token whose ID is
// token, and forgets sessions that expired.
func (db *DB) StartSession(ctx context.Context, id, token []byte, expires time.Time) error {
	if _, err := db.pool.Exec(ctx, `DELETE FROM sessions WHERE expires_at < now()`); err != nil {
		return fmt.Errorf("start session: %w", err)
	}
	if _, err := db.pool.Exec(ctx, `INSERT INTO sessions (id, token, created_at, expires_at) VALUES ($1, $2, now(), $3)`,
		id, token, expires); err != nil {
		return fmt.Errorf("start session: %w", err)
	}
	return nil
}

// SessionLive reports whether a session was started, is not ended and has
// not expired at now.
func (db *DB) SessionLive(ctx context.Context, id []byte, now time.Time) (bool, error) {
	var live bool
	err := db.pool.QueryRow(ctx, `SELECT ended_at IS NULL AND $2 < expires_at FROM sessions WHERE id = $1`, id, now).Scan(&live)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("session: %w", err)
	}
	return live, nil
}

// EndSession ends one session.
func (db *DB) EndSession(ctx context.Context, id []byte, now time.Time) error {
	if _, err := db.pool.Exec(ctx, `UPDATE sessions SET ended_at = $1 WHERE id = $2 AND ended_at IS NULL`, now, id); err != nil {
		return fmt.Errorf("end session: %w", err)
	}
	return nil
}

// EndSessionsExcept ends every live session made with a token whose ID is
// not in tokens, and returns how many it ended.
func (db *DB) EndSessionsExcept(ctx context.Context, tokens [][]byte, now time.Time) (int64, error) {
	if tokens == nil {
		tokens = [][]byte{}
	}
	tag, err := db.pool.Exec(ctx, `UPDATE sessions SET ended_at = $1 WHERE ended_at IS NULL AND NOT (token = ANY ($2))`, now, tokens)
	if err != nil {
		return 0, fmt.Errorf("end sessions: %w", err)
	}
	return tag.RowsAffected(), nil
}
