package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// migrations run in order, each once; schema_version counts them. Every
// instance runs them at start, under a transaction-scoped advisory lock, so
// instances starting together apply each once (the write path takes no
// advisory lock).
var migrations = []string{
	`-- Long values that repeat across records (user agents, page URLs, banner
	-- version hashes) are stored once, under the SHA-256 of the value: every
	-- instance computes the same key, so none has to ask for an id. Values
	-- are bytes, so no user agent can make a batch fail on its encoding.
	CREATE TABLE texts (
		hash  bytea PRIMARY KEY,
		value bytea NOT NULL
	);

	-- The head of each site's chain: the authority on its last sequence
	-- number, hash and time. A batch moves a head only from the sequence
	-- number it read (koekje_advance_heads); records' (site, seq) key is
	-- the backstop.
	CREATE TABLE chain_heads (
		site        text PRIMARY KEY,
		seq         bigint NOT NULL,
		hash        bytea,
		recorded_at timestamptz
	);

	CREATE TABLE records (
		id          bigint GENERATED ALWAYS AS IDENTITY, -- insertion order: history order and its cursor
		site        text NOT NULL,
		seq         bigint NOT NULL,     -- position in the site's hash chain, from 1
		record_id   uuid NOT NULL,       -- UUIDv7, the record's public name
		consent_id  uuid NOT NULL,
		consent_key uuid NOT NULL,       -- the UUIDv7 the consent ID was minted from (consent.IDs)
		recorded_at timestamptz NOT NULL,
		action      text NOT NULL,
		choices     text NOT NULL,       -- JSON object of every category, keys sorted
		services    text NOT NULL,       -- services granted one by one, comma-separated
		revision    integer NOT NULL,
		config_hash bytea NOT NULL REFERENCES texts (hash),
		language    text NOT NULL,
		url         bytea NOT NULL REFERENCES texts (hash),
		user_agent  bytea NOT NULL REFERENCES texts (hash),
		ip          text NOT NULL,       -- truncated: IPv4 /24, IPv6 /48
		gpc         boolean NOT NULL,
		prev_hash   bytea,
		hash        bytea NOT NULL,
		PRIMARY KEY (site, seq)
	);
	CREATE INDEX records_consent ON records (consent_key, id);
	-- The foreign keys' own indexes: a purge finds unreferenced texts, and
	-- deleting a text checks its references, through them.
	CREATE INDEX records_config_hash ON records (config_hash);
	CREATE INDEX records_url ON records (url);
	CREATE INDEX records_user_agent ON records (user_agent);
	CREATE FUNCTION koekje_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
	BEGIN
		RAISE EXCEPTION 'consent records are append-only';
	END $$;
	CREATE TRIGGER records_append_only BEFORE UPDATE ON records
		FOR EACH ROW EXECUTE FUNCTION koekje_append_only();

	-- koekje_advance_heads moves the heads of a batch's sites (sorted by
	-- site) from the sequence numbers the writer read to the new ones, or
	-- fails with KJ409 if any moved meanwhile: another instance wrote to
	-- that chain, and the writer reloads its heads and retries the batch.
	-- Rows are locked in site order, so instances never wait in a circle.
	CREATE FUNCTION koekje_advance_heads(sites text[], old_seqs bigint[], new_seqs bigint[],
		hashes bytea[], ats timestamptz[]) RETURNS void LANGUAGE plpgsql AS $$
	DECLARE
		moved integer;
	BEGIN
		INSERT INTO chain_heads (site, seq) SELECT s, 0 FROM unnest(sites) AS s ORDER BY s
			ON CONFLICT DO NOTHING;
		PERFORM 1 FROM chain_heads WHERE site = ANY (sites) ORDER BY site FOR UPDATE;
		UPDATE chain_heads h SET seq = u.new_seq, hash = u.hash, recorded_at = u.at
			FROM unnest(sites, old_seqs, new_seqs, hashes, ats) AS u (site, old_seq, new_seq, hash, at)
			WHERE h.site = u.site AND h.seq = u.old_seq;
		GET DIAGNOSTICS moved = ROW_COUNT;
		IF moved <> cardinality(sites) THEN
			RAISE EXCEPTION 'a chain head moved since this writer read it' USING ERRCODE = 'KJ409';
		END IF;
	END $$;

	-- Client-made request IDs of recorded choices: a retried POST gets the
	-- first answer, and nothing is recorded twice.
	CREATE TABLE requests (
		site       text NOT NULL,
		request_id text NOT NULL,
		seq        bigint NOT NULL, -- the record's place in the site's chain
		PRIMARY KEY (site, request_id)
	);

	-- Where a purge cut a chain: the last purged record's sequence and hash.
	CREATE TABLE checkpoints (
		site       text NOT NULL,
		seq        bigint NOT NULL,
		hash       bytea NOT NULL,
		created_at timestamptz NOT NULL,
		key_id     text,
		signature  bytea,
		log_index  bigint,
		PRIMARY KEY (site, seq)
	);

	-- Every banner version a site served, stored once under its hash.
	CREATE TABLE versions (
		site       text NOT NULL,
		hash       text NOT NULL,
		body       bytea NOT NULL,
		created_at timestamptz NOT NULL,
		PRIMARY KEY (site, hash)
	);

	-- Secrets made on first start, sealed under the key file's key with
	-- their name as associated data.
	CREATE TABLE secrets (
		name       text PRIMARY KEY,
		sealed     bytea NOT NULL,
		created_at timestamptz NOT NULL
	);

	-- Ed25519 keys that sign receipts and checkpoints, sealed; the newest
	-- signs, all stay published.
	CREATE TABLE signing_keys (
		id         text PRIMARY KEY,
		sealed     bytea NOT NULL,
		created_at timestamptz NOT NULL
	);

	-- Console sessions: what ends one holds for every instance.
	CREATE TABLE sessions (
		id         bytea PRIMARY KEY,
		token      bytea NOT NULL, -- keyed ID of the token that signed in, never the token
		created_at timestamptz NOT NULL,
		expires_at timestamptz NOT NULL,
		ended_at   timestamptz     -- set by logout, or when the token is no longer configured
	);`,
	`-- Leases: work that one instance at a time does (the daily retention
	-- purge), held until a time and taken over once it has passed.
	CREATE TABLE leases (
		name   text PRIMARY KEY,
		holder text NOT NULL,
		until  timestamptz NOT NULL
	);

	-- Failed admin tokens per client network (/24, /48), counted for every
	-- instance: a guesser cannot spread its guesses over them.
	CREATE TABLE token_failures (
		network text PRIMARY KEY,
		count   integer NOT NULL,
		last    timestamptz NOT NULL,
		until   timestamptz NOT NULL
	);`,
	`-- The transparency log (server/tlog's koekje-leaf-v1 leaves). Batches
	-- commit records as before; one elected integrator (the "log" lease)
	-- gives the records queued in log_pending their leaves, in queue order,
	-- and signs a checkpoint, in one transaction that moves log_state from
	-- the size and root it read (koekje_advance_log): two integrators can
	-- never fork the log, the one that loses the race rolls back.
	CREATE TABLE log_leaves (
		idx   bigint PRIMARY KEY,    -- the leaf's index in the log
		site  text NOT NULL,
		seq   bigint NOT NULL,       -- the record's place in its chain
		salt  bytea,                 -- NULL once a purge removed the record
		entry bytea NOT NULL,
		UNIQUE (site, seq)           -- a record is in the log once
	);
	CREATE TABLE log_hashes (
		id   bigint PRIMARY KEY,     -- tlog's stored hash index
		hash bytea NOT NULL
	);
	CREATE TABLE log_checkpoints (
		size       bigint PRIMARY KEY,
		signed     bytea NOT NULL,
		created_at timestamptz NOT NULL
	);
	CREATE TABLE log_witnessed (
		size     bigint PRIMARY KEY,
		cosigned bytea NOT NULL
	);
	-- The one row the integrator moves by compare-and-set; origin names the
	-- log for every instance, as the first one to start the log named it.
	CREATE TABLE log_state (
		one    boolean PRIMARY KEY DEFAULT true CHECK (one),
		size   bigint NOT NULL,
		root   bytea NOT NULL,
		origin text
	);
	INSERT INTO log_state (size, root) VALUES (0, sha256(''));

	-- Records committed and not yet in the log, by the order they were
	-- written (the records' identity). A statement trigger queues every inserted record,
	-- whichever way it came in; records already there are queued now.
	CREATE TABLE log_pending (
		id   bigint PRIMARY KEY,
		site text NOT NULL,
		seq  bigint NOT NULL
	);
	INSERT INTO log_pending (id, site, seq) SELECT id, site, seq FROM records;
	CREATE FUNCTION koekje_queue_for_log() RETURNS trigger LANGUAGE plpgsql AS $$
	BEGIN
		INSERT INTO log_pending (id, site, seq) SELECT id, site, seq FROM new_records;
		RETURN NULL;
	END $$;
	CREATE TRIGGER records_queue_for_log AFTER INSERT ON records
		REFERENCING NEW TABLE AS new_records FOR EACH STATEMENT EXECUTE FUNCTION koekje_queue_for_log();

	-- koekje_advance_log moves the log from the size and root the
	-- integrator read to the new ones and takes the integrated records off
	-- the queue, or fails with KJ409 if another integrator moved the log
	-- (or a purge took a queued record) meanwhile.
	CREATE FUNCTION koekje_advance_log(old_size bigint, old_root bytea, new_size bigint, new_root bytea,
		taken bigint[]) RETURNS void LANGUAGE plpgsql AS $$
	DECLARE
		n integer;
	BEGIN
		UPDATE log_state SET size = new_size, root = new_root WHERE size = old_size AND root = old_root;
		GET DIAGNOSTICS n = ROW_COUNT;
		IF n <> 1 THEN
			RAISE EXCEPTION 'the log moved since this integrator read it' USING ERRCODE = 'KJ409';
		END IF;
		DELETE FROM log_pending WHERE id = ANY (taken);
		GET DIAGNOSTICS n = ROW_COUNT;
		IF n <> cardinality(taken) THEN
			RAISE EXCEPTION 'a queued record left the queue since this integrator read it' USING ERRCODE = 'KJ409';
		END IF;
	END $$;`,
	`-- Reports of koekje scan --record. No personal data: the retention
	-- purge keeps them. Append-only, as records are.
	CREATE TABLE scans (
		id          uuid PRIMARY KEY,     -- UUIDv7: recording order
		site        text NOT NULL,
		started_at  timestamptz NOT NULL,
		recorded_at timestamptz NOT NULL,
		config_hash text NOT NULL,        -- the banner version the pages were held against
		violations  integer NOT NULL,
		undeclared  integer NOT NULL,
		stale       integer NOT NULL,
		urls        text[] NOT NULL,      -- the pages scanned
		report      bytea NOT NULL        -- the JSON report, as written
	);
	CREATE INDEX scans_site ON scans (site, id);
	CREATE FUNCTION koekje_scans_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
	BEGIN
		RAISE EXCEPTION 'scan reports are append-only';
	END $$;
	CREATE TRIGGER scans_append_only BEFORE UPDATE ON scans
		FOR EACH ROW EXECUTE FUNCTION koekje_scans_append_only();`,
	queueMACs,
	hashedRequests,
	`-- A scan's verdict, as koekje scan judged it: an inconclusive scan (a
	-- page not scanned) is neither clean nor failed. Scans recorded before
	-- have none (consent.VerdictSQL reads them).
	ALTER TABLE scans ADD COLUMN IF NOT EXISTS verdict text CHECK (verdict IN ('clean', 'fail', 'inconclusive'));`,
	`-- A purge puts an entry of its own in the log: leaves and queued rows
	-- get a kind (1: a record, 2: a purge, whose seq is the last record it
	-- removed), and a purge checkpoint the index and salt of its entry.
	ALTER TABLE log_leaves ADD COLUMN IF NOT EXISTS kind smallint NOT NULL DEFAULT 1;
	ALTER TABLE log_leaves DROP CONSTRAINT IF EXISTS log_leaves_site_seq_key;
	CREATE UNIQUE INDEX IF NOT EXISTS log_leaves_site_seq_kind ON log_leaves (site, seq, kind);
	ALTER TABLE log_pending ADD COLUMN IF NOT EXISTS kind smallint NOT NULL DEFAULT 1;
	ALTER TABLE checkpoints ADD COLUMN IF NOT EXISTS entry_index bigint, ADD COLUMN IF NOT EXISTS entry_salt bytea,
		ADD COLUMN IF NOT EXISTS purged_before timestamptz; -- the rule the purge applied
	-- A recorded scan's entry (kind 3): its queued row names the scan, and
	-- where its entry is goes in a table of its own, scans being append-only.
	ALTER TABLE log_pending ADD COLUMN IF NOT EXISTS scan uuid;
	CREATE TABLE IF NOT EXISTS scan_entries (
		scan_id     uuid PRIMARY KEY,
		entry_index bigint NOT NULL,
		entry_salt  bytea NOT NULL
	);
	-- The schedule that ran a scan in koekje serve (NULL: koekje scan).
	ALTER TABLE scans ADD COLUMN IF NOT EXISTS schedule text;`,
	`-- The browser's signals beside a record (consent.Record's GPCHeader,
	-- ADPC and Signal) and the version of the encoding it is hashed under:
	-- records stored before are koekje-record-v1 and have none.
	ALTER TABLE records ADD COLUMN IF NOT EXISTS encoding smallint NOT NULL DEFAULT 1,
		ADD COLUMN IF NOT EXISTS gpc_header boolean NOT NULL DEFAULT false,
		ADD COLUMN IF NOT EXISTS adpc text NOT NULL DEFAULT '',
		ADD COLUMN IF NOT EXISTS signal text NOT NULL DEFAULT '';`,
}

// hashedRequests is the migration from which requests.request_id holds
// keyed hashes (consent.RequestIDs), not request IDs: the Open that
// migrates to it hashes those stored before.
const hashedRequests = `COMMENT ON COLUMN requests.request_id IS 'keyed hash of the client''s request ID (consent.RequestIDs)';`

// requestHashSchema is the schema version from which request IDs are
// stored as keyed hashes.
var requestHashSchema = slices.Index(migrations, hashedRequests) + 1

// queueMACs is the migration from which a queued record reaches the log
// only with the MAC the write path gave it, under a key sealed by the key
// file: a row inserted any other way is queued by the trigger but never
// gets a leaf.
const queueMACs = `ALTER TABLE log_pending ADD COLUMN mac bytea;`

// logMACSchema is the schema version from which the write path
// authenticates what it queues for the log; records queued before it are
// authenticated once, by the Open that migrates to it.
var logMACSchema = slices.Index(migrations, queueMACs) + 1

// migrateLock is the advisory lock key the migrations run under.
const migrateLock = 0x6b6f656b6a65 // "koekje"

// SchemaVersion is the schema this binary reads and writes.
var SchemaVersion = len(migrations)

// current returns the database's schema version, refusing one that is not
// this binary's and naming the command that upgrades it.
func current(ctx context.Context, pool *pgxpool.Pool) (int, error) {
	var version int
	err := pool.QueryRow(ctx, `SELECT version FROM schema_version`).Scan(&version)
	var pgErr *pgconn.PgError
	switch {
	case errors.As(err, &pgErr) && pgErr.Code == "42P01", errors.Is(err, pgx.ErrNoRows):
		return 0, errors.New("the database holds no koekje store")
	case err != nil:
		return 0, err
	case version > len(migrations):
		return 0, fmt.Errorf("database schema %d is newer than this binary's %d", version, len(migrations))
	case version < len(migrations):
		return 0, fmt.Errorf("the database has schema %d and this koekje reads schema %d; this command does not upgrade a database: koekje serve does, when it starts (back it up first)", version, len(migrations))
	}
	return version, nil
}

// migrate brings the schema up to date in one transaction, and returns
// the version it found.
func migrate(ctx context.Context, pool *pgxpool.Pool) (from int, err error) {
	return from, pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(migrateLock)); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_version (version integer NOT NULL)`); err != nil {
			return err
		}
		var version int
		err := tx.QueryRow(ctx, `SELECT version FROM schema_version`).Scan(&version)
		if err == pgx.ErrNoRows {
			if _, err := tx.Exec(ctx, `INSERT INTO schema_version (version) VALUES (0)`); err != nil {
				return err
			}
		} else if err != nil {
			return err
		}
		from = version
		if version > len(migrations) {
			return fmt.Errorf("database schema %d is newer than this binary's %d", version, len(migrations))
		}
		for i := version; i < len(migrations); i++ {
			if _, err := tx.Exec(ctx, migrations[i]); err != nil {
				return fmt.Errorf("migration %d: %w", i+1, err)
			}
		}
		_, err = tx.Exec(ctx, `UPDATE schema_version SET version = $1`, len(migrations))
		return err
	})
}

// checkAppendOnly refuses a database whose append-only trigger is gone.
func checkAppendOnly(ctx context.Context, pool *pgxpool.Pool) error {
	var n int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM pg_trigger
		WHERE tgname = 'records_append_only' AND tgrelid = 'records'::regclass AND tgenabled <> 'D'`).Scan(&n); err != nil {
		return fmt.Errorf("check the append-only trigger: %w", err)
	}
	if n != 1 {
		return fmt.Errorf("the append-only trigger records_append_only is missing or disabled: records could be changed in place; " +
			"restore the database from a backup or recreate the trigger, then run koekje verify")
	}
	return nil
}

// recordColumns reads a record back with its texts.
const recordColumns = `r.record_id, r.site, r.seq, r.consent_id, r.recorded_at, r.action, r.choices, r.services,
	r.revision, (SELECT value FROM texts WHERE hash = r.config_hash), r.language,
	(SELECT value FROM texts WHERE hash = r.url), (SELECT value FROM texts WHERE hash = r.user_agent),
	r.ip, r.gpc, r.prev_hash, r.hash, r.encoding, r.gpc_header, r.adpc, r.signal`
