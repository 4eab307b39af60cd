// Package sqlite stores consent records in SQLite: one writer connection that
// commits queued records in batches (group commit), and a pool of readers.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/koekje/koekje/server/batch"
	"github.com/koekje/koekje/server/consent"
	"github.com/koekje/koekje/server/keyfile"
	"github.com/koekje/koekje/server/translog"
)

// DB is the SQLite store.
type DB struct {
	path  string
	write *sql.DB
	read  *sql.DB
	log   *slog.Logger
	kek   *keyfile.Key // seals every secret and signing key before it is stored

	queue *batch.Queue[*consent.Record]

	ids   consent.IDs        // mints consent IDs and finds their index keys
	reqs  consent.RequestIDs // what is stored of request IDs
	heads map[string]head    // chain head per site; owned by the writer goroutine
	texts textCache          // ids of interned strings; owned by the writer goroutine

	failed     int       // batches that failed since the last log line; owned by the writer goroutine
	lastLogged time.Time // when the writer last logged a failed batch

	// commitMu is held by every batch and by StartLog, which sets tl.
	commitMu sync.Mutex
	tl       *logState       // nil until StartLog: no log is kept
	guard    *translog.Guard // set by GuardLog, before or after StartLog

	closeOnce sync.Once
	closeErr  error

	// OnCommit, if set before the first Append, is called after every batch.
	OnCommit func(size int, d time.Duration, err error)
	// Now and NewID stamp records; tests set them for reproducible output.
	Now   func() time.Time
	NewID func() (uuid.UUID, error)
}

// Options are what OpenWith takes besides the database's path.
type Options struct {
	// KeyFile holds the key that seals the stored secrets; path + ".key"
	// when empty. It is made (mode 0600) when missing, unless the database
	// already holds sealed secrets: then its key file was lost or not given.
	KeyFile string
	Log     *slog.Logger
	// Existing opens the database only as it is: the file and its key
	// file must exist and its schema must be this binary's. Nothing is
	// made and nothing upgraded, for the commands whose job that is not.
	Existing bool
}

// Open opens (creating if needed) the database at path with the key file
// beside it, applies migrations and starts the writer.
func Open(path string, log *slog.Logger) (*DB, error) {
	return OpenWith(path, Options{Log: log})
}

// OpenWith opens (creating if needed) the database at path, applies
// migrations and starts the writer. The database and its -wal and -shm
// files are readable by their owner only.
func OpenWith(path string, o Options) (*DB, error) {
	log := o.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if o.KeyFile == "" {
		o.KeyFile = path + ".key"
	}
	if o.Existing {
		if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("database %s does not exist: give the database's file with --db (KOEKJE_DB)", path)
		} else if err != nil {
			return nil, err
		}
	}
	if err := ownerOnly(path); err != nil {
		return nil, err
	}
	// synchronous=FULL: a 201 promises the record survives a power cut.
	// secure_delete: what a purge deletes is overwritten, not left readable
	// in free pages.
	// _mutex=no on every connection: database/sql never hands one
	// connection to two goroutines at once, so SQLite's own per-connection
	// mutex, taken on every bind and column read, only costs time (15 % of
	// an export).
	// _stmt_cache_size: the writer runs the same few statements in every
	// batch (the texts generation, the log's size, the log's multi-row
	// INSERTs, the checkpoint); kept prepared, a batch parses none of them.
	w, err := sql.Open("sqlite3", "file:"+path+"?_journal_mode=WAL&_synchronous=FULL&_busy_timeout=5000&_txlock=immediate&_cache_size=-65536&_mutex=no&_secure_delete=true&_stmt_cache_size=32")
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	w.SetMaxOpenConns(1)
	w.SetConnMaxLifetime(0)
	w.SetConnMaxIdleTime(0)
	var kek *keyfile.Key
	if o.Existing {
		err = current(w, path)
		if err == nil {
			kek, err = keyfile.Load(o.KeyFile)
		}
		if errors.Is(err, keyfile.ErrNotExist) {
			err = fmt.Errorf("the key file %s of %s does not exist: give it with --key-file (KOEKJE_KEY_FILE)", o.KeyFile, path)
		}
	} else {
		kek, err = loadKey(w, path, o.KeyFile)
	}
	if err != nil {
		w.Close()
		return nil, err
	}
	if err := migrate(w, kek); err != nil {
		w.Close()
		return nil, fmt.Errorf("migrate %s: %w", path, err)
	}
	if err := checkAppendOnly(w); err != nil {
		w.Close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	// Readers read pages through SQLite's page cache, with no memory map:
	// mapped, every page a look-up or an export touched stayed in the
	// process's resident memory, once per connection (2.4 GB after look-ups
	// over a million records, 340 MB for one export), and first touches
	// cost page faults that made look-ups slower, not faster. Each keeps
	// its prepared statements.
	r, err := sql.Open("sqlite3", "file:"+path+"?_journal_mode=WAL&_busy_timeout=5000&_query_only=true&_mutex=no&_stmt_cache_size=16")
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("open %s for reading: %w", path, err)
	}
	r.SetMaxOpenConns(8)
	r.SetMaxIdleConns(8)
	ids, err := loadConsentIDs(context.Background(), w, kek)
	if err != nil {
		w.Close()
		r.Close()
		return nil, fmt.Errorf("open %s with key file %s: %w", path, kek.Path(), err)
	}
	reqs, err := loadRequestIDs(context.Background(), w, kek)
	if err != nil {
		w.Close()
		r.Close()
		return nil, err
	}
	db := &DB{
		ids:   ids,
		reqs:  reqs,
		kek:   kek,
		path:  path,
		write: w,
		read:  r,
		log:   log,
		heads: map[string]head{},
		texts: textCache{ids: map[string]int64{}},
		Now:   time.Now,
		NewID: uuid.NewV7,
	}
	db.queue = batch.New(batch.Options{Max: maxBatch, YieldFrom: yieldFrom, Yields: batchYields, OnFlush: db.onFlush}, db.flush)
	return db, nil
}

// ownerOnly creates the database file if it does not exist yet, with mode
// 0600, and takes group and others' access away from the files of an
// existing one. SQLite gives the -wal and -shm files it makes the database
// file's mode.
func ownerOnly(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("open %s: %w", path, err)
	}
	f.Close()
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		fi, err := os.Stat(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err == nil && fi.Mode().Perm()&0o077 != 0 {
			err = os.Chmod(p, fi.Mode().Perm()&0o700)
		}
		if err != nil {
			return fmt.Errorf("make %s readable by its owner only: %w", p, err)
		}
	}
	return nil
}

// loadKey loads the key file, making it when the database holds no sealed
// secret yet (a new database, or one whose plaintext secrets the migration
// is about to seal).
func loadKey(db *sql.DB, path, keyPath string) (*keyfile.Key, error) {
	kek, err := keyfile.Load(keyPath)
	if !errors.Is(err, keyfile.ErrNotExist) {
		return kek, err
	}
	var sealed int
	if err := db.QueryRow(`SELECT count(*) FROM pragma_table_info('secrets') WHERE name = 'sealed'`).Scan(&sealed); err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	if sealed > 0 {
		var n int
		if err := db.QueryRow(`SELECT (SELECT count(*) FROM secrets) + (SELECT count(*) FROM signing_keys)`).Scan(&n); err != nil {
			return nil, fmt.Errorf("open %s: %w", path, err)
		}
		if n > 0 {
			return nil, fmt.Errorf("the keys in %s are sealed with a key file, and %s does not exist: give the database's key file with --key-file (KOEKJE_KEY_FILE) or put it there", path, keyPath)
		}
	}
	return keyfile.Create(keyPath)
}

// Close stops accepting records, commits those already queued and closes
// the database.
func (db *DB) Close() error {
	db.closeOnce.Do(func() {
		db.queue.Close()
		db.closeErr = errors.Join(db.read.Close(), db.write.Close())
	})
	return db.closeErr
}

// Ping checks that the database answers.
func (db *DB) Ping(ctx context.Context) error {
	var one int
	return db.read.QueryRowContext(ctx, "SELECT 1").Scan(&one)
}

// SetClock sets the clock that stamps records, as Now does.
func (db *DB) SetClock(now func() time.Time) { db.Now = now }

// SetOnCommit sets OnCommit.
func (db *DB) SetOnCommit(f func(size int, d time.Duration, err error)) { db.OnCommit = f }

// Path is the database file.
func (db *DB) Path() string { return db.path }

// LimitSize caps the database at about maxBytes (0 lifts the cap). Writes
// that would pass it fail as a full disk does: nothing of their batch is
// written, clients get 503, and writing resumes once the cap is raised or
// old records are purged.
func (db *DB) LimitSize(ctx context.Context, maxBytes int64) error {
	var pageSize int64
	if err := db.write.QueryRowContext(ctx, "PRAGMA page_size").Scan(&pageSize); err != nil {
		return fmt.Errorf("page size: %w", err)
	}
	pages := int64(4294967294) // SQLite's largest
	if maxBytes > 0 {
		pages = max(1, maxBytes/pageSize)
	}
	_, err := db.write.ExecContext(ctx, fmt.Sprintf("PRAGMA max_page_count = %d", pages))
	return err
}
