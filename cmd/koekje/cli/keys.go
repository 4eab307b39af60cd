package cli

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/koekje/koekje/server/proof"
	"github.com/koekje/koekje/server/translog"
)

func keysCmd(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	var o options
	fs := o.flags("keys", getenv, stderr)
	site := fs.String("site", "", "the site whose audit key to print (audit-key)")
	publicURL := fs.String("public-url", getenv("KOEKJE_PUBLIC_URL"), "the server's public URL, which names the log (log-key)")
	if err := parseAnywhere(fs, args); err != nil {
		return err
	}
	action := fs.Arg(0)
	if fs.NArg() > 1 {
		return fmt.Errorf("keys %s takes one action; got %q too", action, fs.Arg(1))
	}
	if action == "audit-key" {
		return auditKeyCmd(ctx, &o, *site, stdout)
	}
	if action == "log-key" {
		return logKeyCmd(ctx, &o, *publicURL, stdout)
	}
	if action != "list" && action != "rotate" {
		return errors.New("usage: koekje keys [flags] list|rotate|audit-key --site S|log-key --public-url URL")
	}
	db, err := o.openExisting()
	if err != nil {
		return err
	}
	defer db.Close()
	keys, err := proof.OpenKeys(ctx, db)
	if err != nil {
		return err
	}
	if action == "rotate" {
		k, err := keys.Rotate(ctx)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "new signing key %s; running servers sign with it within 5 s (old keys stay published)\n", k.ID)
	}
	list, err := db.Keys(ctx)
	if err != nil {
		return err
	}
	for i, k := range list {
		mark := ""
		if i == len(list)-1 {
			mark = " (signs)"
		}
		fmt.Fprintf(stdout, "%s  %s%s\n", k.CreatedAt.Format(time.RFC3339), k.ID, mark)
	}
	return nil
}

// auditKeyCmd prints a site's audit key, for the site's auditor: with it,
// log-audit finds the site's leaves in the public log.
func auditKeyCmd(ctx context.Context, o *options, site string, stdout io.Writer) error {
	if site == "" {
		return errors.New("usage: koekje keys audit-key --site S")
	}
	db, err := o.openExisting()
	if err != nil {
		return err
	}
	defer db.Close()
	k, err := db.LogAuditKey(ctx, site)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, hex.EncodeToString(k))
	return nil
}

// logKeyCmd prints the log's verifier key, making the log's key if the
// database has none yet: witnesses are told it before the server starts.
func logKeyCmd(ctx context.Context, o *options, publicURL string, stdout io.Writer) error {
	if publicURL == "" {
		return errors.New("usage: koekje keys log-key --public-url URL (the log is named after it)")
	}
	db, err := o.openDB(nil)
	if err != nil {
		return err
	}
	defer db.Close()
	// A successor log under the same public URL (…/log/2) is its log.
	signer, err := db.LogSigner(ctx)
	if err == nil && (signer == nil || !translog.SameLog(signer.Origin(), logOrigin(publicURL))) {
		signer, err = db.NewLogSigner(ctx, logOrigin(publicURL))
	}
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, signer.VerifierKey())
	return nil
}
