package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/koekje/koekje/config"
	"github.com/koekje/koekje/server/consent"
	"github.com/koekje/koekje/server/scan"
	"github.com/koekje/koekje/server/scan/chromium"
	"github.com/koekje/koekje/server/store"
)

// scanCmd checks a site's pages in a real Chromium against its declaration.
// It fails on violations, and with --strict on undeclared or stale cookies
// (ErrFailed), and when a page could not be scanned (ErrInconclusive).
func scanCmd(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	var o options
	fs := o.flags("scan", getenv, stderr)
	site := fs.String("site", "", "the site's id in the config (default: the config's only site)")
	pages := fs.Int("pages", 10, "pages per profile: the URLs given (a URL ending in .xml is a sitemap: its pages), then same-origin links")
	format := fs.String("format", "text", "report format: text, json or junit")
	out := fs.String("out", "", "also write the report in every format to this directory (report.txt, report.json, report.xml)")
	strict := fs.Bool("strict", false, "fail on undeclared and stale cookies too")
	record := fs.Bool("record", false, "store the report in the database (--db) for the console and auditors")
	pageTimeout := fs.Duration("page-timeout", 20*time.Second, "longest one page may take to load and settle; a page past it is not scanned")
	timeout := fs.Duration("timeout", 10*time.Minute, "longest the whole scan may take; the pages not scanned by then are reported")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: koekje scan URL… [--site S] [--pages N] [--config FILE] [--format text|json|junit] [--out DIR] [--strict] [--record [--db DB]] [--page-timeout D] [--timeout D]")
		fs.PrintDefaults()
	}
	if err := parseAnywhere(fs, args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return errors.New("scan: give at least one URL")
	}
	if !slices.Contains(scan.Formats, *format) {
		return fmt.Errorf("scan: --format %q: want text, json or junit", *format)
	}
	if *pageTimeout <= 0 || *timeout <= 0 {
		return errors.New("scan: --page-timeout and --timeout must be more than 0")
	}
	cfg, err := loadConfig(o.config)
	if err != nil {
		return err
	}
	s, err := scanSite(cfg, *site)
	if err != nil {
		return err
	}
	// The database is opened before the scan, so a wrong --db fails at
	// once rather than after the browsers ran.
	var db store.Store
	if *record {
		if _, db, err = o.open(ctx); err != nil {
			return err
		}
		defer db.Close()
	}
	prog := newProgress(stderr)
	defer prog.close()
	prog.Phase("page visits")
	start := time.Now()
	r, err := chromium.Run(ctx, chromium.Options{Site: s, URLs: fs.Args(), Pages: *pages, Chrome: chromium.ChromePath(getenv),
		PageTimeout: *pageTimeout, Timeout: *timeout, Visited: func() { prog.Add(1) }})
	prog.close()
	if err != nil {
		return err
	}
	if *out != "" {
		if err := os.MkdirAll(*out, 0o755); err != nil {
			return err
		}
		for f, name := range map[string]string{"text": "report.txt", "json": "report.json", "junit": "report.xml"} {
			if err := writeReport(filepath.Join(*out, name), r, f, *strict); err != nil {
				return err
			}
		}
	}
	if err := r.Write(stdout, *format, *strict); err != nil {
		return err
	}
	if db != nil {
		sc, err := recordScan(ctx, db, r, *strict, stderr)
		if err != nil {
			return err
		}
		fmt.Fprintf(stderr, "recorded scan %s of site %s in %s\n", sc.ID, sc.Site, o.dbName())
	}
	fmt.Fprintf(stderr, "koekje scan: %d page visits in %d profiles, %s: %s\n", prog.n.Load(), len(r.Profiles),
		time.Since(start).Round(time.Millisecond), r.Verdict(*strict))
	if r.Verdict(*strict) == scan.VerdictInconclusive && *format != "text" {
		fmt.Fprintln(stderr, "koekje scan: inconclusive: not every page could be scanned; the report says which and why")
	}
	switch r.Verdict(*strict) {
	case scan.VerdictInconclusive:
		return ErrInconclusive
	case scan.VerdictFail:
		return ErrFailed
	}
	return nil
}

// ErrInconclusive makes koekje scan exit with 2 rather than 1: nothing
// failed, but not every page could be scanned, so the scan does not show
// that the site is clean either.
var ErrInconclusive = fmt.Errorf("inconclusive: %w", ErrFailed)

// scanSite is the site to hold the pages against: --site, or the only one.
func scanSite(cfg *config.Config, id string) (*config.Site, error) {
	var ids []string
	for _, s := range cfg.Sites {
		ids = append(ids, s.ID)
	}
	if id == "" {
		if len(cfg.Sites) != 1 {
			return nil, fmt.Errorf("scan: the config has %d sites (%s): name one with --site", len(ids), strings.Join(ids, ", "))
		}
		return cfg.Sites[0], nil
	}
	if s := cfg.Site(id); s != nil {
		return s, nil
	}
	return nil, fmt.Errorf("scan: no site %q in the config (it has %s)", id, strings.Join(ids, ", "))
}

func writeReport(path string, r *scan.Report, format string, strict bool) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	err = r.Write(f, format, strict)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// recordScan stores the report: the JSON report itself, and beside it what
// the console lists without reading it. A report too large for the store
// is stored without its profiles' details, and says so.
func recordScan(ctx context.Context, db store.Store, r *scan.Report, strict bool, stderr io.Writer) (*consent.Scan, error) {
	sc, whole, err := r.Recorded(strict)
	if err != nil {
		return nil, err
	}
	if whole > 0 {
		fmt.Fprintf(stderr, "koekje scan: the report is %d bytes, over the store's limit of %d: it is recorded without the profiles' cookies, storage keys and requests (the findings are whole)\n",
			whole, consent.MaxScanReport)
	}
	if err := db.AddScan(ctx, sc); err != nil {
		return nil, fmt.Errorf("record the scan: %w", err)
	}
	return sc, nil
}
