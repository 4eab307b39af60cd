// Package postgres stores consent records in PostgreSQL (pgx, pgxpool), for
// several Koekje instances on one database: each instance commits queued
// records in batches (group commit on server/batch), one transaction per
// batch sent in one round trip, and a chain_heads row per site, moved only
// by compare-and-set, keeps every chain unforked whichever instance writes.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/koekje/koekje/server/batch"
	"github.com/koekje/koekje/server/consent"
	"github.com/koekje/koekje/server/keyfile"
	"github.com/koekje/koekje/server/store"
	"github.com/koekje/koekje/server/translog"
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
	tl atomic.Pointer[integrator]
	// guard, once GuardLog set it, says whether the integrator may sign
	// on: while it holds, records wait in log_pending.
	guard   atomic.Pointer[translog.Guard]
	stopLog context.CancelFunc
	logDone chan struct{}

	onCommit func(size int, d time.Duration, err error)
	now      func() time.Time
	// NewID stamps records; tests may set it before the first Append.
	NewID func() (uuid.UUID, error)
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

// LimitSize is SQLite's database cap; PostgreSQL's size is the server's
// business, so only "no cap" is accepted.
func (db *DB) LimitSize(_ context.Context, maxBytes int64) error {
	if maxBytes > 0 {
		return errors.New("--max-db-size caps a SQLite file; on PostgreSQL, bound the database with the server's own means (disk quota, tablespace)")
	}
	return nil
}
