package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/google/uuid"

	"github.com/koekje/koekje/server/consent"
	"github.com/koekje/koekje/server/keyfile"
	"github.com/koekje/koekje/server/store"
)

// migrations run in order, each once and in its own transaction; PRAGMA
// user_version counts them. kek is the key file's key, for the migrations
// that seal secrets.
var migrations = []func(tx *sql.Tx, kek *keyfile.Key) error{
	execMigration(`-- Long strings that repeat across records (user agents, page URLs,
	-- banner version hashes) are stored once and referred to by id.
	CREATE TABLE texts (
		id    INTEGER PRIMARY KEY,
		value TEXT NOT NULL UNIQUE
	);

	CREATE TABLE records (
		id          INTEGER PRIMARY KEY, -- insertion order: time-ordered, inserts stay at the B-tree's right edge
		record_id   BLOB NOT NULL,       -- UUIDv7, the record's public name
		site        TEXT NOT NULL,
		seq         INTEGER NOT NULL,    -- position in the site's hash chain, from 1
		consent_id  BLOB NOT NULL,
		recorded_at INTEGER NOT NULL,    -- Unix microseconds, UTC
		action      TEXT NOT NULL,
		choices     TEXT NOT NULL,       -- JSON object of every category, keys sorted
		services    TEXT NOT NULL,       -- services granted one by one, comma-separated
		revision    INTEGER NOT NULL,
		config_hash INTEGER NOT NULL REFERENCES texts (id),
		language    TEXT NOT NULL,
		url         INTEGER NOT NULL REFERENCES texts (id),
		user_agent  INTEGER NOT NULL REFERENCES texts (id),
		ip          TEXT NOT NULL,       -- truncated: IPv4 /24, IPv6 /48
		gpc         INTEGER NOT NULL,
		prev_hash   BLOB,
		hash        BLOB NOT NULL
	);
	CREATE UNIQUE INDEX records_site_seq ON records (site, seq);
	CREATE INDEX records_consent ON records (consent_id);
	CREATE TRIGGER records_append_only BEFORE UPDATE ON records
	BEGIN SELECT RAISE(ABORT, 'consent records are append-only'); END;

	-- Where a purge cut a chain: the last purged record's sequence and hash.
	CREATE TABLE checkpoints (
		site       TEXT NOT NULL,
		seq        INTEGER NOT NULL,
		hash       BLOB NOT NULL,
		created_at INTEGER NOT NULL,
		key_id     TEXT,
		signature  BLOB,
		PRIMARY KEY (site, seq)
	) WITHOUT ROWID;

	-- Every banner version a site served, stored once under its hash.
	CREATE TABLE versions (
		site       TEXT NOT NULL,
		hash       TEXT NOT NULL,
		body       BLOB NOT NULL,
		created_at INTEGER NOT NULL,
		PRIMARY KEY (site, hash)
	) WITHOUT ROWID;

	-- Keys made on first start, such as the MAC key of visitor tokens.
	CREATE TABLE secrets (
		name       TEXT PRIMARY KEY,
		value      BLOB NOT NULL,
		created_at INTEGER NOT NULL
	) WITHOUT ROWID;

	-- Ed25519 keys that sign receipts and checkpoints; the newest signs,
	-- all stay published.
	CREATE TABLE signing_keys (
		id         TEXT PRIMARY KEY,
		private    BLOB NOT NULL,
		created_at INTEGER NOT NULL
	) WITHOUT ROWID;`),
	addConsentKeys,
	execMigration(`-- Client-made request IDs of recorded choices: a retried POST gets
	-- the first answer, and nothing is recorded twice.
	CREATE TABLE requests (
		site       TEXT NOT NULL,
		request_id TEXT NOT NULL,
		record     INTEGER NOT NULL, -- records.id
		PRIMARY KEY (site, request_id)
	) WITHOUT ROWID;

	-- Counters that other processes read: a purge raises texts_generation
	-- when it deletes texts, so a writer drops the ids it cached.
	CREATE TABLE counters (
		name  TEXT PRIMARY KEY,
		value INTEGER NOT NULL
	) WITHOUT ROWID;
	INSERT INTO counters (name, value) VALUES ('texts_generation', 0);`),
	execMigration(`-- The transparency log: a leaf per record (server/tlog's koekje-leaf-v1),
	-- the tree's stored hashes, and the signed checkpoints.
	CREATE TABLE log_leaves (
		idx    INTEGER PRIMARY KEY, -- the leaf's index in the log
		record INTEGER UNIQUE,      -- records.id; NULL once purged
		site   TEXT NOT NULL,
		salt   BLOB,                -- of the commitment; NULL once purged
		entry  BLOB NOT NULL
	);
	CREATE TABLE log_hashes (
		id   INTEGER PRIMARY KEY, -- tlog's stored hash index
		hash BLOB NOT NULL
	);
	CREATE TABLE log_checkpoints (
		size       INTEGER PRIMARY KEY,
		signed     BLOB NOT NULL, -- C2SP signed note
		created_at INTEGER NOT NULL
	);
	-- Checkpoints with the witnesses' cosignatures they gathered.
	CREATE TABLE log_witnessed (
		size     INTEGER PRIMARY KEY,
		cosigned BLOB NOT NULL
	);
	-- A purge checkpoint names the last purged record's leaf, so the
	-- leaves up to it may lack records.
	ALTER TABLE checkpoints ADD COLUMN log_index INTEGER;`),
	sealSecrets,
	execMigration(`-- Console sessions: what ends one holds for every instance.
	CREATE TABLE sessions (
		id         BLOB PRIMARY KEY,
		token      BLOB NOT NULL,    -- keyed ID of the token that signed in, never the token
		created_at INTEGER NOT NULL, -- Unix microseconds
		expires_at INTEGER NOT NULL,
		ended_at   INTEGER           -- set by logout, or when the token is no longer configured
	) WITHOUT ROWID;`),
	execMigration(`-- Leases: work that one server at a time does (the daily retention
	-- purge), held until a time and taken over once it has passed.
	CREATE TABLE leases (
		name   TEXT PRIMARY KEY,
		holder TEXT NOT NULL,
		until  INTEGER NOT NULL -- Unix microseconds
	) WITHOUT ROWID;`),
	execMigration(`-- Reports of koekje scan --record. No personal data: the retention
	-- purge keeps them. Append-only, as records are.
	CREATE TABLE scans (
		id          INTEGER PRIMARY KEY,
		scan_id     BLOB NOT NULL UNIQUE, -- UUIDv7: recording order
		site        TEXT NOT NULL,
		started_at  INTEGER NOT NULL,     -- Unix microseconds
		recorded_at INTEGER NOT NULL,
		config_hash TEXT NOT NULL,        -- the banner version the pages were held against
		violations  INTEGER NOT NULL,
		undeclared  INTEGER NOT NULL,
		stale       INTEGER NOT NULL,
		urls        TEXT NOT NULL,        -- JSON array of the pages scanned
		report      BLOB NOT NULL         -- the JSON report, as written
	);
	CREATE INDEX scans_site ON scans (site, scan_id);
	CREATE TRIGGER scans_append_only BEFORE UPDATE ON scans
	BEGIN SELECT RAISE(ABORT, 'scan reports are append-only'); END;`),
	nameTheLog,
	hashRequestIDs,
	addScanVerdicts,
	addPurgeEntries,
	addSignals,
	execMigration(`-- Records written while the log signs nothing (its tree does not extend
	-- what the server signed before, translog.Guard) wait here for their
	-- leaves, in the order they were written, each with the write path's MAC
	-- (translog.QueueMAC): a row added any other way never gets a leaf.
	CREATE TABLE IF NOT EXISTS log_pending (
		record INTEGER PRIMARY KEY, -- records.id
		mac    BLOB NOT NULL
	);`),
}

// addSignals keeps the browser's signals beside a record (consent.Record's
// GPCHeader, ADPC and Signal) and the version of the encoding it is hashed
// under: records stored before are koekje-record-v1 and have none. A
// column there already (a migration run again) is left as it is.
func addSignals(tx *sql.Tx, _ *keyfile.Key) error {
	return addColumns(tx, "records", "encoding INTEGER NOT NULL DEFAULT 1", "records", "gpc_header INTEGER NOT NULL DEFAULT 0",
		"records", "adpc TEXT NOT NULL DEFAULT ''", "records", "signal TEXT NOT NULL DEFAULT ''")
}

// addPurgeEntries lets a purge, and a recorded scan, put an entry of its
// own in the log: leaves get a kind (translog.KindRecord, KindPurge,
// KindScan), a scan the index and salt of its entry, and a purge checkpoint the
// index and salt of its entry and the rule it applied (purged_before, Unix
// microseconds); a scan the schedule that ran it. A column there already (a migration run
// again) is left as it is.
func addPurgeEntries(tx *sql.Tx, _ *keyfile.Key) error {
	// A recorded scan's entry: scans are append-only, so where its entry
	// is goes in a table of its own.
	if _, err := tx.Exec(`CREATE TABLE IF NOT EXISTS scan_entries (
		scan_id     BLOB PRIMARY KEY,
		entry_index INTEGER NOT NULL,
		entry_salt  BLOB NOT NULL
	) WITHOUT ROWID`); err != nil {
		return err
	}
	return addColumns(tx, "log_leaves", "kind INTEGER NOT NULL DEFAULT 1",
		"checkpoints", "entry_index INTEGER", "checkpoints", "entry_salt BLOB", "checkpoints", "purged_before INTEGER",
		"scans", "schedule TEXT") // the schedule that ran a scan (NULL: koekje scan)
}

// addColumns adds each column (given as table, then its definition) that
// its table does not have yet.
func addColumns(tx *sql.Tx, tableAndColumn ...string) error {
	for i := 0; i+1 < len(tableAndColumn); i += 2 {
		table, def := tableAndColumn[i], tableAndColumn[i+1]
		name, _, _ := strings.Cut(def, " ")
		var has int
		if err := tx.QueryRow(`SELECT count(*) FROM pragma_table_info(?) WHERE name = ?`, table, name).Scan(&has); err != nil {
			return err
		}
		if has == 0 {
			if _, err := tx.Exec(`ALTER TABLE ` + table + ` ADD COLUMN ` + def); err != nil {
				return err
			}
		}
	}
	return nil
}

// addScanVerdicts keeps a scan's verdict, as koekje scan judged it: an
// inconclusive scan (a page not scanned) is neither clean nor failed.
// Scans recorded before have none (consent.VerdictSQL reads them). A
// database that has the column already (a migration run again) is left as
// it is.
func addScanVerdicts(tx *sql.Tx, _ *keyfile.Key) error {
	return addColumns(tx, "scans", "verdict TEXT CHECK (verdict IN ('clean', 'fail', 'inconclusive'))")
}

// nameTheLog keeps the transparency log's name in the database: a log has
// one name for life, whatever address or public URL a later start has.
// Before, the name came from each start's public URL; a log renamed that
// way keeps the newest name a witness cosigned, else its newest
// checkpoint's. A database without a log gets its name when the log is made.
func nameTheLog(tx *sql.Tx, _ *keyfile.Key) error {
	if _, err := tx.Exec(`CREATE TABLE log_name (
		one    INTEGER PRIMARY KEY CHECK (one = 1),
		origin TEXT NOT NULL
	);
	CREATE TRIGGER log_name_for_life BEFORE UPDATE ON log_name
	BEGIN SELECT RAISE(ABORT, 'a log keeps its name for life'); END;`); err != nil {
		return err
	}
	var signed []byte
	err := tx.QueryRow(`SELECT cosigned FROM log_witnessed ORDER BY size DESC LIMIT 1`).Scan(&signed)
	if errors.Is(err, sql.ErrNoRows) {
		err = tx.QueryRow(`SELECT signed FROM log_checkpoints ORDER BY size DESC LIMIT 1`).Scan(&signed)
	}
	if errors.Is(err, sql.ErrNoRows) {
		return nil
	}
	if err != nil {
		return err
	}
	origin, _, _ := strings.Cut(string(signed), "\n")
	_, err = tx.Exec(`INSERT INTO log_name (one, origin) VALUES (1, ?)`, origin)
	return err
}

func execMigration(q string) func(*sql.Tx, *keyfile.Key) error {
	return func(tx *sql.Tx, _ *keyfile.Key) error {
		_, err := tx.Exec(q)
		return err
	}
}

// addConsentKeys indexes records by the time-ordered key of their consent
// ID (see consent.IDs) instead of by the random ID itself.
func addConsentKeys(tx *sql.Tx, _ *keyfile.Key) error {
	// Secrets are still stored in the clear at this point of the schema;
	// sealSecrets seals them next.
	key, err := plainSecret(context.Background(), tx, store.ConsentIDSecret, 16)
	if err != nil {
		return err
	}
	ids, err := consent.NewIDs(key)
	if err != nil {
		return err
	}
	if _, err := tx.Exec(`ALTER TABLE records ADD COLUMN consent_key BLOB NOT NULL DEFAULT x''`); err != nil {
		return err
	}
	// Records written before this migration get their key once; the
	// append-only trigger is lifted for that and only within this transaction.
	if _, err := tx.Exec(`DROP TRIGGER records_append_only`); err != nil {
		return err
	}
	set, err := tx.Prepare(`UPDATE records SET consent_key = ? WHERE id = ?`)
	if err != nil {
		return err
	}
	defer set.Close()
	type row struct {
		id        int64
		consentID uuid.UUID
	}
	for last := int64(0); ; {
		rows, err := tx.Query(`SELECT id, consent_id FROM records WHERE id > ? ORDER BY id LIMIT 10000`, last)
		if err != nil {
			return err
		}
		var page []row
		for rows.Next() {
			var r row
			var b []byte
			if err := rows.Scan(&r.id, &b); err != nil {
				rows.Close()
				return err
			}
			copy(r.consentID[:], b)
			page = append(page, r)
		}
		if err := rows.Close(); err != nil {
			return err
		}
		if len(page) == 0 {
			break
		}
		for _, r := range page {
			k := ids.Key(r.consentID)
			if _, err := set.Exec(k[:], r.id); err != nil {
				return err
			}
		}
		last = page[len(page)-1].id
	}
	_, err = tx.Exec(`CREATE TRIGGER records_append_only BEFORE UPDATE ON records
		BEGIN SELECT RAISE(ABORT, 'consent records are append-only'); END;
		DROP INDEX records_consent;
		CREATE INDEX records_consent_key ON records (consent_key);`)
	return err
}

// sealSecrets encrypts the secrets and signing keys that earlier schemas
// stored in the clear, under the key file's key with each secret's name as
// associated data. The columns are renamed, so the schema says what they
// hold and the migration cannot run twice over sealed values.
func sealSecrets(tx *sql.Tx, kek *keyfile.Key) error {
	if _, err := tx.Exec(`ALTER TABLE secrets RENAME COLUMN value TO sealed;
		ALTER TABLE signing_keys RENAME COLUMN private TO sealed`); err != nil {
		return err
	}
	for _, t := range []struct{ table, key, prefix string }{
		{"secrets", "name", ""},
		{"signing_keys", "id", signingKeyPrefix},
	} {
		rows, err := tx.Query(`SELECT ` + t.key + `, sealed FROM ` + t.table)
		if err != nil {
			return err
		}
		plain := map[string][]byte{}
		for rows.Next() {
			var name string
			var v []byte
			if err := rows.Scan(&name, &v); err != nil {
				rows.Close()
				return err
			}
			plain[name] = v
		}
		if err := rows.Close(); err != nil {
			return err
		}
		for name, v := range plain {
			sealed, err := kek.Seal(t.prefix+name, v)
			if err != nil {
				return err
			}
			clear(v)
			if _, err := tx.Exec(`UPDATE `+t.table+` SET sealed = ? WHERE `+t.key+` = ?`, sealed, name); err != nil {
				return err
			}
		}
	}
	return nil
}

// loadConsentIDs reads the consent ID permutation's key, making it the
// first time.
func loadConsentIDs(ctx context.Context, q execQuerier, kek *keyfile.Key) (consent.IDs, error) {
	key, err := secret(ctx, q, kek, store.ConsentIDSecret, 16)
	if err != nil {
		return consent.IDs{}, err
	}
	return consent.NewIDs(key)
}

// SchemaVersion is the schema this binary reads and writes.
var SchemaVersion = len(migrations)

// current refuses a database whose schema is not this binary's, naming the
// command that upgrades one.
func current(db *sql.DB, path string) error {
	var version int
	if err := db.QueryRow(`PRAGMA user_version`).Scan(&version); err != nil {
		return fmt.Errorf("open %s: %w", path, err)
	}
	switch {
	case version == 0:
		return fmt.Errorf("%s is not a koekje database", path)
	case version > len(migrations):
		return fmt.Errorf("database schema %d is newer than this binary's %d", version, len(migrations))
	case version < len(migrations):
		return fmt.Errorf("%s has schema %d and this koekje reads schema %d; this command does not upgrade a database: koekje serve does, when it starts (make a copy first with koekje backup)", path, version, len(migrations))
	}
	return nil
}

func migrate(db *sql.DB, kek *keyfile.Key) error {
	var version int
	if err := db.QueryRow(`PRAGMA user_version`).Scan(&version); err != nil {
		return err
	}
	if version > len(migrations) {
		return fmt.Errorf("database schema %d is newer than this binary's %d", version, len(migrations))
	}
	for i := version; i < len(migrations); i++ {
		tx, err := db.Begin()
		if err != nil {
			return err
		}
		if err := migrations[i](tx, kek); err != nil {
			tx.Rollback()
			return fmt.Errorf("migration %d: %w", i+1, err)
		}
		if _, err := tx.Exec(fmt.Sprintf(`PRAGMA user_version = %d`, i+1)); err != nil {
			tx.Rollback()
			return err
		}
		if err := tx.Commit(); err != nil {
			return err
		}
	}
	return nil
}

const insertRecord = `INSERT INTO records (record_id, site, seq, consent_id, recorded_at,
	action, choices, services, revision, config_hash, language, url, user_agent, ip, gpc, prev_hash, hash, consent_key,
	encoding, gpc_header, adpc, signal)
	VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`

// recordColumns reads a record back with its interned strings.
const recordColumns = `r.record_id, r.site, r.seq, r.consent_id, r.recorded_at, r.action, r.choices, r.services,
	r.revision, (SELECT value FROM texts WHERE id = r.config_hash), r.language,
	(SELECT value FROM texts WHERE id = r.url), (SELECT value FROM texts WHERE id = r.user_agent),
	r.ip, r.gpc, r.prev_hash, r.hash, r.encoding, r.gpc_header, r.adpc, r.signal`
