package cli

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/koekje/koekje/server/consent"
	"github.com/koekje/koekje/server/export"
)

func lookupCmd(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	var o options
	fs := o.flags("lookup", getenv, stderr)
	if err := parseAnywhere(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return errors.New("usage: koekje lookup [flags] CONSENT_ID")
	}
	id, err := consent.ParseID(fs.Arg(0))
	if err != nil {
		return err
	}
	_, db, err := o.open(ctx)
	if err != nil {
		return err
	}
	defer db.Close()
	exp, _ := export.New("ndjson", nil, stdout)
	n := 0
	if err := db.Scan(ctx, consent.Filter{ConsentID: id}, func(r *consent.Record) error { n++; return exp.Write(r) }); err != nil {
		return err
	}
	if err := exp.Close(); err != nil {
		return err
	}
	if n == 0 {
		fmt.Fprintln(stderr, "no records for", id)
		return ErrFailed
	}
	return nil
}
