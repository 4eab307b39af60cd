package postgres

import (
	"context"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/koekje/koekje/server/keyfile"
	"github.com/koekje/koekje/server/store"
	"github.com/koekje/koekje/server/translog"
)

type logMAC []byte

func loadLogMAC(ctx context.Context, q execQuerier, kek *keyfile.Key) (logMAC, error) {
	key, err := secret(ctx, q, kek, store.LogQueueMACSecret, 32)
	return logMAC(key), err
}

// sum is the MAC of a site's record at seq with hash.
func (k logMAC) sum(site string, seq int64, hash []byte) []byte {
	return translog.QueueMAC(k).Sum(site, seq, hash)
}

// purgePrefix sets a purge's MAC apart from any record's.
const purgePrefix = "purge\x00"

// sumPurge is the MAC of a site's purge through seq with its statement
// (proof.PurgeStatement).
func (k logMAC) sumPurge(site string, seq int64, statement []byte) []byte {
	return k.sum(purgePrefix+site, seq, statement)
}

// scanPrefix sets a scan's MAC apart from any record's and purge's.
const scanPrefix = "scan\x00"

// sumScan is the MAC of a site's scan with its statement
// (proof.ScanStatement).
func (k logMAC) sumScan(site string, statement []byte) []byte {
	return k.sum(scanPrefix+site, 0, statement)
}

// validScan reports whether mac is the MAC of the scan.
func (k logMAC) validScan(site string, statement, mac []byte) bool {
	return k.valid(scanPrefix+site, 0, statement, mac)
}

// validPurge reports whether mac is the MAC of the purge.
func (k logMAC) validPurge(site string, seq int64, statement, mac []byte) bool {
	return k.valid(purgePrefix+site, seq, statement, mac)
}

// valid reports whether mac is the MAC of the record.
func (k logMAC) valid(site string, seq int64, hash, mac []byte) bool {
	return translog.QueueMAC(k).Valid(site, seq, hash, mac)
}

// queueMACs is the statement that gives the records just inserted their
// MACs in the log's queue, where the insert's trigger put them.
func (k logMAC) queueMACs(b *pgx.Batch, sites []string, seqs []int64, hashes [][]byte) {
	macs := make([][]byte, len(sites))
	for i := range sites {
		macs[i] = k.sum(sites[i], seqs[i], hashes[i])
	}
	b.Queue(`UPDATE log_pending p SET mac = u.mac
		FROM unnest($1::text[], $2::bigint[], $3::bytea[]) AS u (site, seq, mac)
		WHERE p.site = u.site AND p.seq = u.seq AND p.kind = 1`, sites, seqs, macs)
}

// macQueuedBefore authenticates the records an older schema queued for the
// log, once, in the Open that migrates the database to logMACSchema: they
// were written before the write path made MACs.
func macQueuedBefore(ctx context.Context, pool *pgxpool.Pool, k logMAC) error {
	rows, err := pool.Query(ctx, `SELECT p.site, p.seq, r.hash FROM log_pending p
		JOIN records r ON r.site = p.site AND r.seq = p.seq WHERE p.mac IS NULL`)
	if err != nil {
		return err
	}
	var (
		sites  []string
		seqs   []int64
		hashes [][]byte
	)
	for rows.Next() {
		var (
			site string
			seq  int64
			hash []byte
		)
		if err := rows.Scan(&site, &seq, &hash); err != nil {
			rows.Close()
			return err
		}
		sites, seqs, hashes = append(sites, site), append(seqs, seq), append(hashes, hash)
	}
	if err := rows.Err(); err != nil {
		return err
	}
	if len(sites) == 0 {
		return nil
	}
	b := &pgx.Batch{}
	k.queueMACs(b, sites, seqs, hashes)
	return pool.SendBatch(ctx, b).Close()
}
