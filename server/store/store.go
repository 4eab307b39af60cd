// Package store is the one contract between Koekje and the databases that
// keep its records, modelled on database/sql/driver: what every store must
// do (Store, composed of named roles), what only some can (optional
// capabilities, named here and asked for by name), how a store is chosen
// and opened from a DSN (Driver, Register, Open), the rows one store hands
// another and the copy between them with its verification (Copy), and the
// names of the secrets every store seals under its key file.
//
// The SQLite store (server/sqlite) and the PostgreSQL store
// (server/postgres) each register a Driver and assert at compile time that
// they implement Store; server/store/storetest is the suite both pass. The
// domain (server/consent) knows no store; the HTTP server and the commands
// know stores only through this package.
package store

import (
	"context"
	"time"

	"github.com/google/uuid"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/koekje/koekje/server/consent"
	"github.com/koekje/koekje/server/keyfile"
	"github.com/koekje/koekje/server/proof"
	"github.com/koekje/koekje/server/translog"
)

// Store is what every store does.
type Store interface {
	Records
	Histories
	Purges
	Versions
	Keys
	Secrets
	Sessions
	Scans
	Leases
	Log
	Admin
}

// Records is the write path and the chain of each site's records.
type Records interface {
	// Append stores r durably. It assigns RecordID, Seq, RecordedAt, PrevHash
	// and Hash, and a new ConsentID (UUIDv4) if r has none (a first choice);
	// it returns only once r is committed.
	Append(ctx context.Context, r *consent.Record) error
	// ByRequest returns the record a client's request ID made on site, or nil.
	ByRequest(ctx context.Context, site, requestID string) (*consent.Record, error)
	// CountSince counts a consent ID's records from a time on.
	CountSince(ctx context.Context, consentID uuid.UUID, since time.Time) (int, error)
	// Chain calls fn for each record of site in sequence order.
	Chain(ctx context.Context, site string, fn func(*consent.Record) error) error
	// FindHash returns the sequence number of the record of site with this hash.
	FindHash(ctx context.Context, site string, hash []byte) (int64, bool, error)
	// Scan calls fn for each record of f in time order (export order).
	Scan(ctx context.Context, f consent.Filter, fn func(*consent.Record) error) error
	// Stats counts choices per UTC day: by action, with GPC, and per
	// category granted.
	Stats(ctx context.Context, f consent.Filter, categories []string) ([]consent.DayStats, error)
	// Sites lists the sites the database holds.
	Sites(ctx context.Context) ([]string, error)
}

// Histories reads records as a visitor's history and as an auditor pages
// through a site.
type Histories interface {
	// History returns up to limit records of a consent ID (on site, or on
	// every site for ""), oldest first, after a cursor; next is the cursor
	// of the following page, 0 at the end.
	History(ctx context.Context, consentID uuid.UUID, site string, after int64, limit int) (recs []*consent.Record, next int64, err error)
	// Latest returns the newest record of a consent ID on site (any site
	// for ""), or nil.
	Latest(ctx context.Context, consentID uuid.UUID, site string) (*consent.Record, error)
	// NextLink returns the link (prev_hash) of the record after seq on
	// site, or nil when seq is the site's newest record.
	NextLink(ctx context.Context, site string, seq int64) ([]byte, error)
	// Records returns a page of a site's records, newest first, and the
	// cursor (q.Before) of the next page, 0 at the end.
	Records(ctx context.Context, q consent.Query) (recs []*consent.Record, next int64, err error)
}

// Purges removes a site's oldest records under a signed checkpoint.
type Purges interface {
	// Purge deletes site's records recorded before the given time, leaving a
	// checkpoint that sign fills in. It returns how many records went.
	Purge(ctx context.Context, site string, before time.Time, sign func(*consent.Checkpoint) error) (int64, error)
	// LastCheckpoint returns the newest purge checkpoint of site, or nil.
	LastCheckpoint(ctx context.Context, site string) (*consent.Checkpoint, error)
	// Checkpoints returns the site's purge checkpoints, newest first.
	Checkpoints(ctx context.Context, site string) ([]*consent.Checkpoint, error)
}

// Versions keeps the banner versions visitors were shown.
type Versions interface {
	// PutVersion stores a banner version (what a visitor was shown) once.
	PutVersion(ctx context.Context, site, hash string, body []byte) error
	// HasVersion reports whether a banner version is known for site.
	HasVersion(ctx context.Context, site, hash string) (bool, error)
	// Version returns a stored banner version; one whose body does not
	// hash to its name is an error of code consent.EDAMAGED.
	Version(ctx context.Context, site, hash string) ([]byte, error)
	// Versions lists the hashes of the banner versions stored for site.
	Versions(ctx context.Context, site string) ([]string, error)
	// VersionsUsed lists the banner versions a site's records refer to,
	// with when each was first and last chosen under, newest first.
	VersionsUsed(ctx context.Context, site string) ([]consent.VersionUse, error)
}

// Keys keeps the keys that sign receipts and purge checkpoints.
type Keys interface {
	proof.KeyStore
}

// Secrets keeps the store's secrets sealed under its key file.
type Secrets interface {
	// Secret returns the secret called name, making n random bytes for it
	// the first time it is asked for (names: the *Secret constants).
	Secret(ctx context.Context, name string, n int) ([]byte, error)
	// KeyFile is the key the secrets are sealed with.
	KeyFile() *keyfile.Key
}

// Sessions keeps the console's sessions.
type Sessions interface {
	// StartSession records a session made with the token whose ID is token.
	StartSession(ctx context.Context, id, token []byte, expires time.Time) error
	// SessionLive reports whether a session was started, is not ended and
	// has not expired at now.
	SessionLive(ctx context.Context, id []byte, now time.Time) (bool, error)
	// EndSession ends one session.
	EndSession(ctx context.Context, id []byte, now time.Time) error
	// EndSessionsExcept ends every live session made with a token whose ID
	// is not in tokens, and returns how many it ended.
	EndSessionsExcept(ctx context.Context, tokens [][]byte, now time.Time) (int64, error)
}

// Scans keeps the scanner's reports.
type Scans interface {
	// AddScan stores a scan report, giving it its ID and recording time.
	AddScan(ctx context.Context, s *consent.Scan) error
	// Scans lists site's scans newest first, without their reports: up to
	// limit of those recorded before the scan before (uuid.Nil: from the
	// newest).
	Scans(ctx context.Context, site string, before uuid.UUID, limit int) ([]*consent.Scan, error)
	// ScanReport returns one of site's scans with its report.
	ScanReport(ctx context.Context, site string, id uuid.UUID) (*consent.Scan, error)
	// ScanEntries calls fn with each of site's scans that has an entry in
	// the log, with its report, in recording order.
	ScanEntries(ctx context.Context, site string, fn func(*consent.Scan) error) error
}

// Leases elects one holder of a job among the instances sharing a store.
type Leases interface {
	// Lease takes a named lease for holder for ttl, if free, run out or
	// holder's; it reports whether holder has it.
	Lease(ctx context.Context, name, holder string, ttl time.Duration) (bool, error)
}

// Log keeps the transparency log every record is a leaf of.
type Log interface {
	// StartLog keeps the transparency log from now on and returns its
	// signer. The log is named once, after origin, by the first StartLog
	// or NewLogSigner; every later start signs under that name.
	StartLog(ctx context.Context, origin string) (*translog.Signer, error)
	// GuardLog makes every signing from now on ask g first: while g holds,
	// the store signs nothing and new records wait without a leaf in the
	// log's queue, with the write path's MAC, until g lets go; then they
	// are appended, in the order they were written.
	GuardLog(g *translog.Guard)
	// LogOrigin is the log's name, "" before the log is made.
	LogOrigin(ctx context.Context) (string, error)
	// LogSigner returns the log's signer, or nil before the log is made.
	LogSigner(ctx context.Context) (*translog.Signer, error)
	// NewLogSigner returns the log's signer, naming the log after origin
	// and making its key the first time, without starting the log (koekje
	// keys log-key). A log named otherwise is refused.
	NewLogSigner(ctx context.Context, origin string) (*translog.Signer, error)
	// EarlierLogKeys returns the verifier keys of the names the log had
	// before it succeeded them (koekje successor-log), oldest first.
	EarlierLogKeys(ctx context.Context) ([]string, error)
	// SaveWitnessed keeps a checkpoint of size with the witnesses'
	// cosignatures.
	SaveWitnessed(ctx context.Context, size int64, cosigned []byte) error
	// LatestCheckpoint returns the newest signed checkpoint, or nil.
	LatestCheckpoint(ctx context.Context) ([]byte, error)
	// LatestWitnessed returns the newest checkpoint the witnesses cosigned, or nil.
	LatestWitnessed(ctx context.Context) ([]byte, error)
	// LogHashes reads stored hashes by tlog's stored hash index.
	LogHashes(ctx context.Context, indexes []int64) ([]tlog.Hash, error)
	// LogEntries returns the entries of leaves [from, to).
	LogEntries(ctx context.Context, from, to int64) ([][]byte, error)
	// LogLeaves calls fn for each leaf in index order.
	LogLeaves(ctx context.Context, fn func(*translog.LeafRecord) error) error
	// LeafOf returns the leaf of a site's record, or nil.
	LeafOf(ctx context.Context, site string, seq int64) (*translog.StoredLeaf, error)
	// LogAuditKey is the key that finds a site's leaves in the log.
	LogAuditKey(ctx context.Context, site string) ([]byte, error)
}

// Admin is what running a store takes.
type Admin interface {
	// Ping checks that the store can be read.
	Ping(ctx context.Context) error
	// LimitSize caps the database at about maxBytes (0 lifts the cap):
	// writes that would pass it fail as a full disk does, nothing of their
	// batch written.
	LimitSize(ctx context.Context, maxBytes int64) error
	// SetOnCommit is called after each commit of the write path with the
	// records it took, its time and its error (metrics).
	SetOnCommit(f func(size int, d time.Duration, err error))
	// SetClock sets the clock that stamps records.
	SetClock(now func() time.Time)
	Close() error
}

// What the proof package asks of a store, a store has.
var (
	_ proof.Chain    = Store(nil)
	_ proof.LogStore = Store(nil)
	_ proof.KeyStore = Store(nil)
)
