package postgres

import (
	"context"
	"errors"
	"fmt"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/koekje/koekje/server/consent"
	klog "github.com/koekje/koekje/server/tlog"
)

// The transparency log does not run on PostgreSQL yet: StartLog refuses,
// and the log's read methods answer as a store that never kept one.

// ErrNoLog is StartLog's answer.
var ErrNoLog = errors.New("the transparency log does not run on PostgreSQL yet")

// StartLog refuses: see ErrNoLog.
func (db *DB) StartLog(context.Context, string) (*klog.Signer, error) { return nil, ErrNoLog }

// LogAuditKey returns a site's audit key, derived as on SQLite, so the
// leaves a future log tags are found with the key an auditor holds now.
func (db *DB) LogAuditKey(ctx context.Context, site string) ([]byte, error) {
	root, err := db.Secret(ctx, klog.AuditRootSecret, 32)
	if err != nil {
		return nil, err
	}
	return klog.AuditKey(root, site), nil
}

// LogSigner returns nil: no log was ever kept.
func (db *DB) LogSigner(context.Context) (*klog.Signer, error) { return nil, nil }

// LatestCheckpoint returns nil: there is no log.
func (db *DB) LatestCheckpoint(context.Context) ([]byte, error) { return nil, nil }

// LatestWitnessed returns nil: there is no log.
func (db *DB) LatestWitnessed(context.Context) ([]byte, error) { return nil, nil }

// SaveWitnessed refuses: there is no log to witness.
func (db *DB) SaveWitnessed(context.Context, int64, []byte) error { return ErrNoLog }

// LogHashes finds no hash: the log is empty.
func (db *DB) LogHashes(_ context.Context, indexes []int64) ([]tlog.Hash, error) {
	if len(indexes) == 0 {
		return []tlog.Hash{}, nil
	}
	return nil, fmt.Errorf("log hash %d: %w", indexes[0], consent.Errorf(consent.ENOTFOUND, "not in the log"))
}

// LogEntries returns no entries: the log is empty.
func (db *DB) LogEntries(context.Context, int64, int64) ([][]byte, error) { return nil, nil }

// LeafOf returns nil: no record has a leaf.
func (db *DB) LeafOf(context.Context, string, int64) (*klog.StoredLeaf, error) { return nil, nil }

// LogLeaves calls fn for no leaf.
func (db *DB) LogLeaves(context.Context, func(*klog.LeafRecord) error) error { return nil }

// NewLogSigner refuses: see ErrNoLog.
func (db *DB) NewLogSigner(context.Context, string) (*klog.Signer, error) { return nil, ErrNoLog }
