package postgres

import (
	"context"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/koekje/koekje/server/consent"
	"github.com/koekje/koekje/server/keyfile"
	"github.com/koekje/koekje/server/store"
)

// loadRequestIDs reads the key of stored request IDs, making it the first
// time.
func loadRequestIDs(ctx context.Context, q execQuerier, kek *keyfile.Key) (consent.RequestIDs, error) {
	key, err := secret(ctx, q, kek, store.RequestIDSecret, 32)
	if err != nil {
		return consent.RequestIDs{}, err
	}
	return consent.NewRequestIDs(key)
}

// hashRequestIDs replaces the request IDs an older schema stored in the
// clear by their keyed hashes, once, in the Open that migrates past it.
func hashRequestIDs(ctx context.Context, pool *pgxpool.Pool, reqs consent.RequestIDs) error {
	rows, err := pool.Query(ctx, `SELECT site, request_id FROM requests`)
	if err != nil {
		return err
	}
	var sites, olds, news []string
	for rows.Next() {
		var site, id string
		if err := rows.Scan(&site, &id); err != nil {
			rows.Close()
			return err
		}
		if !consent.IsStored(id) {
			sites, olds, news = append(sites, site), append(olds, id), append(news, reqs.Stored(site, id))
		}
	}
	if err := rows.Err(); err != nil {
		return err
	}
	if len(sites) == 0 {
		return nil
	}
	_, err = pool.Exec(ctx, `UPDATE requests q SET request_id = u.new
		FROM unnest($1::text[], $2::text[], $3::text[]) AS u (site, old, new)
		WHERE q.site = u.site AND q.request_id = u.old`, sites, olds, news)
	return err
}
