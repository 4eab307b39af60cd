package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/koekje/koekje/server/consent"
	"github.com/koekje/koekje/server/proof"
)

func purgeCmd(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	var o options
	fs := o.flags("purge", getenv, stderr)
	site := fs.String("site", "", "purge only this site")
	before := fs.String("before", "", "delete records from before this date or time (required)")
	if err := parseAnywhere(fs, args); err != nil {
		return err
	}
	if *before == "" {
		return errors.New("--before is required")
	}
	t, err := consent.ParseTime(*before, false)
	if err != nil {
		return fmt.Errorf("--before: %w", err)
	}
	list, _, db, err := o.openSites(ctx, *site)
	if err != nil {
		return err
	}
	defer db.Close()
	keys, err := proof.OpenKeys(ctx, db)
	if err != nil {
		return err
	}
	for _, s := range list {
		n, err := db.Purge(ctx, s, t, keys.SignCheckpoint)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s: purged %d records from before %s\n", s, n, t.Format(time.RFC3339))
	}
	return nil
}
