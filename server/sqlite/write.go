package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/mattn/go-sqlite3"

	"github.com/koekje/koekje/server/batch"
	"github.com/koekje/koekje/server/consent"
)

// Append queues r for the writer and waits until its batch is committed.
func (db *DB) Append(ctx context.Context, r *consent.Record) error {
	err := db.queue.Add(ctx, r)
	if errors.Is(err, batch.ErrClosed) {
		return consent.Errorf(consent.EUNAVAILABLE, "the server is shutting down")
	}
	return err
}

// flush commits one batch; a failure is logged (at most every ten seconds,
// with how many batches failed since: a full disk must not flood the log)
// and answered as what a client may see.
func (db *DB) flush(batch []*consent.Record) error {
	err := db.commit(batch)
	if err == nil {
		return nil
	}
	db.failed++
	if now := time.Now(); now.Sub(db.lastLogged) >= 10*time.Second {
		db.log.Error("commit batch", "records", len(batch), "failed_batches", db.failed, "err", err)
		db.failed, db.lastLogged = 0, now
	}
	return writeError(err)
}

// checkAppendOnly refuses a database whose append-only trigger is gone:
// someone changed the schema, and records could be rewritten in place.
func checkAppendOnly(q execQuerier) error {
	var n int
	if err := q.QueryRowContext(context.Background(), `SELECT count(*) FROM sqlite_master
		WHERE type = 'trigger' AND name = 'records_append_only' AND tbl_name = 'records'`).Scan(&n); err != nil {
		return fmt.Errorf("check the append-only trigger: %w", err)
	}
	if n != 1 {
		return errors.New("the append-only trigger records_append_only is missing: records could be changed in place; " +
			"restore the database from a backup or recreate the trigger, then run koekje verify")
	}
	return nil
}

func (db *DB) onFlush(size int, d time.Duration, err error) {
	if db.OnCommit != nil {
		db.OnCommit(size, d, err)
	}
}

// writeError turns a failed commit into what a client may see: the store is
// unavailable for now (disk full, read-only, I/O error), nothing was written.
func writeError(err error) error {
	var se sqlite3.Error
	if errors.As(err, &se) && se.Code == sqlite3.ErrFull {
		return consent.Errorf(consent.EUNAVAILABLE, "the consent store is full; nothing was recorded, try again later")
	}
	return consent.Errorf(consent.EUNAVAILABLE, "the consent store cannot write right now; nothing was recorded, try again later")
}

func (db *DB) commit(batch []*consent.Record) error {
	db.commitMu.Lock()
	defer db.commitMu.Unlock()
	ctx := context.Background()
	conn, err := db.write.Conn(ctx)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer conn.Close()
	tx, err := beginWrite(ctx, conn)
	if err != nil {
		return err
	}
	defer tx.rollback()
	// A purge (of this process or another) may have deleted texts whose
	// ids are cached: it raised the generation before it let go of the
	// database, so reading it inside this transaction is enough.
	var gen int64
	if err := tx.QueryRowContext(ctx, `SELECT value FROM counters WHERE name = 'texts_generation'`).Scan(&gen); err != nil {
		return fmt.Errorf("texts generation: %w", err)
	}
	if gen != db.texts.gen {
		db.texts.reset(gen)
	}
	in := &interner{tx: tx, known: db.texts.ids, added: map[string]int64{}}
	defer in.close()
	staged := map[string]head{}
	requests := map[string]*consent.Record{} // site and request ID → the record of this batch
	var lg *logBatch
	if db.tl != nil {
		if lg, err = db.tl.begin(ctx, tx, db.log); err != nil {
			return err
		}
	}
	now := db.Now().UTC().Truncate(time.Microsecond)
	for _, r := range batch {
		if r.RequestID != "" {
			done, err := db.replay(ctx, tx, requests, r)
			if err != nil {
				return err
			}
			if done {
				continue
			}
		}
		h, ok := staged[r.Site]
		if !ok {
			if h, err = db.head(ctx, tx, r.Site); err != nil {
				return err
			}
		}
		key, err := consent.Link(r, db.ids, db.NewID, h.seq, h.hash, time.UnixMicro(h.at).UTC(), now)
		if err != nil {
			return err
		}
		choices, err := encodeChoices(r.Choices)
		if err != nil {
			return err
		}
		hashID, err := in.id(ctx, r.ConfigHash)
		if err != nil {
			return err
		}
		urlID, err := in.id(ctx, r.URL)
		if err != nil {
			return err
		}
		uaID, err := in.id(ctx, r.UserAgent)
		if err != nil {
			return err
		}
		// The connection's statement cache keeps the INSERT prepared
		// (PrepareContext would parse it again every batch).
		res, err := tx.ExecContext(ctx, insertRecord, r.RecordID[:], r.Site, r.Seq, r.ConsentID[:],
			r.RecordedAt.UnixMicro(), r.Action, choices, strings.Join(r.Services, ","), r.Revision, hashID,
			r.Language, urlID, uaID, r.IP, r.GPC, r.PrevHash, r.Hash, key[:], consent.EncodingOf(r), r.GPCHeader, r.ADPC, r.Signal)
		if err != nil {
			return fmt.Errorf("insert: %w", err)
		}
		row, _ := res.LastInsertId()
		if lg != nil {
			if err := lg.add(ctx, row, r); err != nil {
				return err
			}
		}
		if r.RequestID != "" {
			if _, err := tx.ExecContext(ctx, `INSERT INTO requests (site, request_id, record) VALUES (?, ?, ?)`, r.Site, db.reqs.Stored(r.Site, r.RequestID), row); err != nil {
				return fmt.Errorf("request id: %w", err)
			}
			requests[r.Site+"\x00"+r.RequestID] = r
		}
		staged[r.Site] = head{r.Seq, r.Hash, r.RecordedAt.UnixMicro()}
	}
	if lg != nil {
		if err := lg.finish(ctx); err != nil {
			return err
		}
	}
	if err := tx.commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	if lg != nil && lg.done() {
		db.wakeLog()
	}
	for site, h := range staged {
		db.heads[site] = h
	}
	for s, id := range in.added {
		db.texts.add(s, id)
	}
	return nil
}

// writeTx is a batch's transaction on the writer's connection, begun and
// ended by statements: database/sql's Tx starts a goroutine and a context
// for every transaction (to roll it back when a context ends, which the
// writer's never does), and waking the threads that run and end them cost
// the writer about 8 % of a small batch's time.
type writeTx struct {
	*sql.Conn
	done bool
}

// txQuerier is what a batch's parts use of its transaction: a writeTx, or
// a *sql.Tx where another path writes the log.
type txQuerier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	PrepareContext(ctx context.Context, query string) (*sql.Stmt, error)
}

// beginWrite begins a write transaction on conn, taking the write lock at
// once, as _txlock=immediate does for BeginTx.
func beginWrite(ctx context.Context, conn *sql.Conn) (*writeTx, error) {
	if _, err := conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		return nil, fmt.Errorf("begin: %w", err)
	}
	return &writeTx{Conn: conn}, nil
}

// commit commits; if that fails, the transaction is rolled back, as SQLite
// may leave it open (a busy or full database).
func (tx *writeTx) commit() error {
	tx.done = true
	_, err := tx.ExecContext(context.Background(), "COMMIT")
	if err != nil {
		tx.ExecContext(context.Background(), "ROLLBACK")
	}
	return err
}

// rollback rolls back a transaction not committed; after commit it does
// nothing.
func (tx *writeTx) rollback() {
	if !tx.done {
		tx.done = true
		tx.ExecContext(context.Background(), "ROLLBACK")
	}
}

// replay fills r with the record its request ID already made, in an
// earlier batch or earlier in this one, and reports whether it did.
func (db *DB) replay(ctx context.Context, tx txQuerier, batch map[string]*consent.Record, r *consent.Record) (bool, error) {
	reqID := r.RequestID
	if first, ok := batch[r.Site+"\x00"+reqID]; ok {
		*r = *first
		r.RequestID, r.Replayed = reqID, true
		return true, nil
	}
	rows, err := tx.QueryContext(ctx, `SELECT `+recordColumns+` FROM requests q JOIN records r ON r.id = q.record
		WHERE q.site = ? AND q.request_id = ?`, r.Site, db.reqs.Stored(r.Site, reqID))
	if err != nil {
		return false, fmt.Errorf("replay: %w", err)
	}
	defer rows.Close()
	if !rows.Next() {
		return false, rows.Err()
	}
	first, err := scanRecord(rows)
	if err != nil {
		return false, err
	}
	*r = *first
	r.RequestID, r.Replayed = reqID, true
	return true, nil
}

// textCache holds the ids of interned strings, bounded by the bytes they
// take: unique long URLs and user agents must not grow it without end.
type textCache struct {
	ids   map[string]int64
	bytes int
	gen   int64 // texts_generation the ids are valid for
}

func (c *textCache) add(s string, id int64) {
	if c.bytes+len(s) > maxTextBytes {
		c.reset(c.gen)
	}
	c.ids[s] = id
	c.bytes += len(s) + 48 // the string, its map entry and the id
}

func (c *textCache) reset(gen int64) {
	clear(c.ids)
	c.bytes, c.gen = 0, gen
}

// interner finds or adds strings in the texts table within one batch's
// transaction. What it adds reaches the shared cache only once committed.
type interner struct {
	tx           txQuerier
	known, added map[string]int64
	find, insert *sql.Stmt
}

func (in *interner) id(ctx context.Context, s string) (int64, error) {
	if id, ok := in.known[s]; ok {
		return id, nil
	}
	if id, ok := in.added[s]; ok {
		return id, nil
	}
	var err error
	if in.find == nil {
		if in.find, err = in.tx.PrepareContext(ctx, `SELECT id FROM texts WHERE value = ?`); err != nil {
			return 0, err
		}
		if in.insert, err = in.tx.PrepareContext(ctx, `INSERT INTO texts (value) VALUES (?) RETURNING id`); err != nil {
			return 0, err
		}
	}
	var id int64
	err = in.find.QueryRowContext(ctx, s).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		err = in.insert.QueryRowContext(ctx, s).Scan(&id)
	}
	if err != nil {
		return 0, fmt.Errorf("intern: %w", err)
	}
	in.added[s] = id
	return id, nil
}

func (in *interner) close() {
	if in.find != nil {
		in.find.Close()
		in.insert.Close()
	}
}

// head returns the last sequence number and hash of a site's chain.
func (db *DB) head(ctx context.Context, tx txQuerier, site string) (head, error) {
	if h, ok := db.heads[site]; ok {
		return h, nil
	}
	var h head
	err := tx.QueryRowContext(ctx, `SELECT seq, hash, recorded_at FROM records WHERE site = ? ORDER BY seq DESC LIMIT 1`, site).Scan(&h.seq, &h.hash, &h.at)
	if errors.Is(err, sql.ErrNoRows) {
		err = tx.QueryRowContext(ctx, `SELECT seq, hash FROM checkpoints WHERE site = ? ORDER BY seq DESC LIMIT 1`, site).Scan(&h.seq, &h.hash)
	}
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return head{}, fmt.Errorf("chain head of %s: %w", site, err)
	}
	return h, nil
}

// Before taking a batch, the writer yields batchYields times when its
// previous batch had at least yieldFrom records. Measured at 64 connections:
// 9–11 % more durable writes than without; yielding at every batch cost
// 7 % at 4 connections, where batches are small.
const (
	yieldFrom   = 8
	batchYields = 2
)

// maxBatch bounds one transaction. The batching window is the previous
// commit's fsync: whatever queued up meanwhile goes into the next one.
const maxBatch = 512

type head struct {
	seq  int64
	hash []byte
	at   int64 // recorded_at of the head record, Unix microseconds
}

// maxTextBytes bounds the cache; past it, it starts again empty.
const maxTextBytes = 8 << 20
