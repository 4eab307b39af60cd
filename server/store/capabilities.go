package store

import (
	"context"
	"time"

	"github.com/koekje/koekje/server/consent"
	"github.com/koekje/koekje/server/proof"
	"github.com/koekje/koekje/server/translog"
)

// What only some stores do. Each is asked for by its name, with a type
// assertion on the Store that Open returned.

// Integrator is a store whose records reach the log after their commit
// (PostgreSQL): Integrate takes in every record committed so far, and
// LogPending counts those still waiting.
type Integrator interface {
	Integrate(ctx context.Context) (int64, error)
	proof.PendingStore
}

// SharedFailures keeps the count of failed token attempts per network in
// the store, so instances sharing it count together (PostgreSQL); without
// it each instance counts in memory.
type SharedFailures interface {
	// Failures reads a network's count, last failure and block.
	Failures(ctx context.Context, network string) (count int, last, until time.Time, err error)
	// AddFailure replaces a network's count with what next makes of it,
	// under a lock on its row, so instances that fail at once both count.
	AddFailure(ctx context.Context, network string, next func(count int, last, until time.Time) (int, time.Time, time.Time)) error
}

// Counters are a store's own counts, for metrics (PostgreSQL).
type Counters interface {
	// Retries counts the batches retried because another writer moved a
	// chain's head under them.
	Retries() int64
	// LogIntegrated counts the records this instance gave their leaves,
	// LogRaces its integration passes another integrator beat to the log,
	// LogRefused the queued records it gave no leaf because the write path
	// did not authenticate them.
	LogIntegrated() int64
	LogRaces() int64
	LogRefused() int64
}

// Source is a store that can be copied whole into another (koekje
// migrate-store): it hands out every row as stored.
type Source interface {
	Store
	AllSecrets(ctx context.Context) ([]Secret, error)
	AllSessions(ctx context.Context) ([]Session, error)
	EachText(ctx context.Context, fn func(value string) error) error
	EachVersion(ctx context.Context, fn func(*Version) error) error
	EachStored(ctx context.Context, fn func(*StoredRecord) error) error
	EachRequest(ctx context.Context, fn func(*RequestID) error) error
	EachScan(ctx context.Context, fn func(*consent.Scan) error) error
	// LogLeafCount is the size of the log the store keeps, 0 for none.
	LogLeafCount(ctx context.Context) (int64, error)
	EachLogLeaf(ctx context.Context, fn func(*LogLeaf) error) error
	EachLogHash(ctx context.Context, fn func(id int64, hash []byte) error) error
	EachLogCheckpoint(ctx context.Context, fn func(cp *LogCheckpoint, witnessed bool) error) error
}

// Import is a copy into an empty database in one transaction: nothing of
// it is seen until Commit, and Rollback (or the process's end) leaves the
// database as empty as it was. It reads back what it holds, so the copy is
// verified before it commits.
type Import interface {
	proof.Chain
	PutSecrets(ctx context.Context, secrets []Secret) error
	PutKeys(ctx context.Context, keys []consent.SigningKey) error
	PutTexts(ctx context.Context, values []string) error
	PutVersions(ctx context.Context, vs []*Version) error
	PutCheckpoints(ctx context.Context, cps []*consent.Checkpoint) error
	PutRecords(ctx context.Context, recs []*StoredRecord) error
	PutRequestIDs(ctx context.Context, qs []*RequestID) error
	PutScan(ctx context.Context, s *consent.Scan) error
	PutSessions(ctx context.Context, ss []Session) error
	PutLogLeaves(ctx context.Context, leaves []*LogLeaf) error
	PutLogHashes(ctx context.Context, ids []int64, hashes [][]byte) error
	PutLogCheckpoint(ctx context.Context, cp *LogCheckpoint, witnessed bool) error
	// FinishLog makes the copied log the target's: its size, root and name.
	FinishLog(ctx context.Context, size int64, root []byte, origin string) error
	LatestCheckpoint(ctx context.Context) ([]byte, error)
	LogLeaves(ctx context.Context, fn func(*translog.LeafRecord) error) error
	// KeyFile is the path of the key file the target's secrets are sealed
	// with.
	KeyFile() string
	Commit(ctx context.Context) error
	Rollback()
}

// LogRestorer is a store whose log can be given back the leaves a restored
// database lacks, from the log's published tiles (koekje recover-log).
type LogRestorer interface {
	// LogSize is the number of leaves the store's log holds.
	LogSize(ctx context.Context) (int64, error)
	// RestoreLog appends entries after the leaves [0, from) and signs the
	// tree they make again, which must be cp.
	RestoreLog(ctx context.Context, from int64, entries [][]byte, cp translog.Checkpoint) error
}

// LogSuccessor is a store whose log can be succeeded by a new one (koekje
// successor-log): the leaves it holds carried over, the successor's
// statement appended after them, and the log named anew with a new key.
type LogSuccessor interface {
	LogRestorer
	// SucceedLog appends s's statement (its entry) at index s.Carried, which
	// must be the log's size, under the name s.Origin and a new key, and
	// signs the tree. The old name's verifier key is kept among the log's
	// earlier keys and its private key is dropped: the old name never
	// signs again. It returns the successor's signer and checkpoint.
	SucceedLog(ctx context.Context, s *translog.Successor) (*translog.Signer, translog.Checkpoint, error)
}
