package sqlite

import (
	"context"
	"database/sql"

	"github.com/koekje/koekje/server/consent"
	"github.com/koekje/koekje/server/keyfile"
	"github.com/koekje/koekje/server/store"
)

// hashRequestIDs replaces the request IDs stored in the clear by their
// keyed hashes (consent.RequestIDs): a stored request ID let anyone with a
// copy of the database replay it for the visitor's token.
func hashRequestIDs(tx *sql.Tx, kek *keyfile.Key) error {
	reqs, err := loadRequestIDs(context.Background(), tx, kek)
	if err != nil {
		return err
	}
	rows, err := tx.Query(`SELECT site, request_id FROM requests`)
	if err != nil {
		return err
	}
	var sites, ids []string
	for rows.Next() {
		var site, id string
		if err := rows.Scan(&site, &id); err != nil {
			rows.Close()
			return err
		}
		if !consent.IsStored(id) {
			sites, ids = append(sites, site), append(ids, id)
		}
	}
	if err := rows.Close(); err != nil {
		return err
	}
	for i := range sites {
		if _, err := tx.Exec(`UPDATE requests SET request_id = ? WHERE site = ? AND request_id = ?`, reqs.Stored(sites[i], ids[i]), sites[i], ids[i]); err != nil {
			return err
		}
	}
	return nil
}

// loadRequestIDs reads the key of stored request IDs, making it the first
// time.
func loadRequestIDs(ctx context.Context, q execQuerier, kek *keyfile.Key) (consent.RequestIDs, error) {
	key, err := secret(ctx, q, kek, store.RequestIDSecret, 32)
	if err != nil {
		return consent.RequestIDs{}, err
	}
	return consent.NewRequestIDs(key)
}
