package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/koekje/koekje/server/store"
)

// EarlierLogKeys returns the verifier keys of the log's earlier names,
// oldest first; none for a log that succeeded no other.
func (db *DB) EarlierLogKeys(ctx context.Context) ([]string, error) {
	var sealed []byte
	err := db.pool.QueryRow(ctx, `SELECT sealed FROM secrets WHERE name = $1`, store.LogEarlierKeysSecret).Scan(&sealed)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("the log's earlier keys: %w", err)
	}
	keys, err := db.kek.Open(store.LogEarlierKeysSecret, sealed)
	if err != nil {
		return nil, fmt.Errorf("the log's earlier keys: %w", err)
	}
	return strings.Fields(string(keys)), nil
}
