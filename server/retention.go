package server

import (
	"context"
	"log/slog"
	"time"

	"github.com/koekje/koekje/config"
	"github.com/koekje/koekje/server/proof"
	"github.com/koekje/koekje/server/store"
)

// Retention purges, once a day, the records of sites that the configuration
// in use gives a retention period, leaving signed checkpoints so the chains still verify.
// Of several instances on one database, the one holding the "retention"
// lease does it; if it dies, another takes over when the lease runs out.
func Retention(ctx context.Context, log *slog.Logger, holder string, cfg func() *config.Config, db store.Store, keys *proof.Keys) {
	for {
		if ok, err := db.Lease(ctx, "retention", holder, 23*time.Hour); err != nil {
			log.Error("retention lease", "err", err)
		} else if ok {
			PurgeExpired(ctx, log, cfg(), db, time.Now(), keys)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(24 * time.Hour):
		}
	}
}

// PurgeExpired purges each site's records older than its retention period,
// signing the checkpoints with the key current at that moment (the one an
// admin may just have rotated to through the API).
func PurgeExpired(ctx context.Context, log *slog.Logger, cfg *config.Config, db store.Store, now time.Time, keys *proof.Keys) {
	for _, s := range cfg.Sites {
		if s.RetentionMonths == 0 {
			continue
		}
		before := now.AddDate(0, -s.RetentionMonths, 0)
		n, err := db.Purge(ctx, s.ID, before, keys.SignCheckpoint)
		if err != nil {
			log.Error("retention purge", "site", s.ID, "err", err)
		} else if n > 0 {
			log.Info("retention purge", "site", s.ID, "records", n, "before", before)
		}
	}
}
