package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strings"

	"github.com/koekje/koekje/server/consent"
	"github.com/koekje/koekje/server/export"
)

func exportCmd(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	var o options
	fs := o.flags("export", getenv, stderr)
	site := fs.String("site", "", "the site to export (required when the database holds several)")
	format := fs.String("format", "ndjson", "ndjson, csv or iso27560")
	from := fs.String("from", "", "first day or time (inclusive)")
	to := fs.String("to", "", "last day (inclusive) or time (exclusive)")
	id := fs.String("consent-id", "", "only this visitor")
	out := fs.String("out", "", "write to this file instead of standard output")
	separator := fs.String("separator", "comma", "CSV: comma, or semicolon as Dutch, German and French spreadsheets expect")
	bom := fs.Bool("bom", false, "CSV: start with a UTF-8 byte order mark (spreadsheets then read it as UTF-8)")
	if err := parseAnywhere(fs, args); err != nil {
		return err
	}
	list, cfg, db, err := o.openSites(ctx, *site)
	if err != nil {
		return err
	}
	defer db.Close()
	if len(list) != 1 {
		return fmt.Errorf("--site is required: the database holds several sites (%s)", strings.Join(list, ", "))
	}
	// CSV has a column per category and ISO 27560 names the controller:
	// both come from the site's configuration.
	siteCfg := cfg.Site(list[0])
	if siteCfg == nil && *format != "ndjson" {
		return fmt.Errorf("site %q is in the database but not in the configuration: give --config with it (%s needs its categories and controller)", list[0], *format)
	}
	f := consent.Filter{Site: list[0]}
	if *from != "" {
		if f.From, err = consent.ParseTime(*from, false); err != nil {
			return fmt.Errorf("--from: %w", err)
		}
	}
	if *to != "" {
		if f.To, err = consent.ParseTime(*to, true); err != nil {
			return fmt.Errorf("--to: %w", err)
		}
	}
	if *id != "" {
		if f.ConsentID, err = consent.ParseID(*id); err != nil {
			return err
		}
	}
	w := stdout
	if *out != "" {
		// Exported records are personal data: the file is the owner's only.
		file, err := os.OpenFile(*out, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
		if err != nil {
			return err
		}
		defer file.Close()
		if err := file.Chmod(0o600); err != nil {
			return err
		}
		w = file
	}
	opts := export.Options{BOM: *bom}
	switch *separator {
	case "comma":
	case "semicolon":
		opts.Separator = ';'
	default:
		return fmt.Errorf("--separator %q: want comma or semicolon", *separator)
	}
	exp, err := export.NewWith(*format, siteCfg, w, opts)
	if err != nil {
		return err
	}
	// An export allocates short-lived rows and keeps nothing: collecting
	// less often makes it about a third faster for ~10 MB more memory.
	debug.SetGCPercent(400)
	// The log's newest checkpoint, read before the records: every leaf of
	// the site below its size is then one of the export's records (unless
	// a purge or the filter left it out).
	signed, err := db.LatestCheckpoint(ctx)
	if err != nil {
		return err
	}
	prog := newProgress(stderr)
	defer prog.close()
	prog.Phase("records of " + list[0] + " exported")
	if err := db.Scan(ctx, f, func(r *consent.Record) error { prog.Add(1); return exp.Write(r) }); err != nil {
		return err
	}
	purges, err := db.Checkpoints(ctx, list[0])
	if err != nil {
		return err
	}
	if err := exp.End(export.NewSummary(f, signed).WithPurges(purges)); err != nil {
		return err
	}
	prog.end("koekje export: %d records of %s (%s)", prog.n.Load(), list[0], *format)
	return nil
}
