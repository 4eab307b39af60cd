package cli

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"slices"
	"strings"
	"time"

	"github.com/koekje/koekje/config"
	"github.com/koekje/koekje/server/consent"
	"github.com/koekje/koekje/server/export"
	"github.com/koekje/koekje/server/postgres"
	"github.com/koekje/koekje/server/proof"
	klog "github.com/koekje/koekje/server/tlog"
)

// ErrFailed makes the command exit non-zero after it printed why.
var ErrFailed = errors.New("failed")

// open loads the config and opens the database for an auditor command.
func (o *options) open(ctx context.Context) (*config.Config, store, error) {
	cfg, err := loadConfig(o.config)
	if err != nil {
		return nil, nil, err
	}
	if _, err := os.Stat(o.db); err != nil && !postgres.IsDSN(o.db) {
		return nil, nil, fmt.Errorf("database %s: %w", o.db, err)
	}
	db, err := o.openDB(nil)
	return cfg, db, err
}

// openSites opens the database and returns the site named by --site, or
// every site the database holds: an auditor command works from what the
// database holds, never from a configuration that may not describe it.
func (o *options) openSites(ctx context.Context, id string) ([]string, *config.Config, store, error) {
	cfg, db, err := o.open(ctx)
	if err != nil {
		return nil, nil, nil, err
	}
	held, err := db.Sites(ctx)
	if err != nil {
		db.Close()
		return nil, nil, nil, err
	}
	if len(held) == 0 {
		db.Close()
		return nil, nil, nil, fmt.Errorf("database %s holds no site", o.dbName())
	}
	if id == "" {
		return held, cfg, db, nil
	}
	if !slices.Contains(held, id) {
		db.Close()
		return nil, nil, nil, fmt.Errorf("database %s holds no site %q (it holds %s)", o.dbName(), id, strings.Join(held, ", "))
	}
	return []string{id}, cfg, db, nil
}

func verifyCmd(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	var o options
	fs := o.flags("verify", getenv, stderr)
	site := fs.String("site", "", "verify only this site")
	checkpoint := fs.String("checkpoint", "", "a signed log checkpoint you kept (or a witness cosigned): the database must still hold that log")
	logKey := fs.String("log-key", "", "the log's verifier key you pinned; by default the database's own")
	var witnesses []*klog.WitnessClient
	fs.Func("witness", "a witness as URL=KEY: its newest cosigned checkpoint is the reference", witnessFlag(&witnesses))
	if err := parseAnywhere(fs, args); err != nil {
		return err
	}
	if len(witnesses) > 1 || (len(witnesses) == 1 && *checkpoint != "") {
		return errors.New("give one reference: --checkpoint or one --witness")
	}
	var ref []byte
	if *checkpoint != "" {
		var err error
		if ref, err = os.ReadFile(*checkpoint); err != nil {
			return fmt.Errorf("--checkpoint: %w", err)
		}
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
	if *logKey == "" {
		signer, err := db.LogSigner(ctx)
		if err != nil {
			return err
		}
		if signer != nil {
			*logKey = signer.VerifierKey()
		}
	}
	if *logKey == "" && (ref != nil || len(witnesses) > 0) {
		return errors.New("this database keeps no log; give --log-key")
	}
	if len(witnesses) == 1 {
		origin := strings.Split(*logKey, "+")[0]
		if ref, err = witnessedCheckpoint(ctx, witnesses[0], origin, *logKey); err != nil {
			return err
		}
	}
	pubs, ids := keys.Ring().Public()
	enc := json.NewEncoder(stdout)
	var (
		results   []*proof.Result
		auditKeys [][]byte
	)
	for _, s := range list {
		res, err := proof.Verify(ctx, db, s, pubs, ids)
		if err != nil {
			return err
		}
		results = append(results, res)
		if *logKey != "" {
			auditKey, err := db.LogAuditKey(ctx, s)
			if err != nil {
				return err
			}
			auditKeys = append(auditKeys, auditKey)
		}
	}
	// Every site against the log in one pass over its leaves.
	if *logKey != "" {
		if err := proof.VerifyLogSites(ctx, db, results, *logKey, auditKeys, ref); err != nil {
			return err
		}
	}
	ok := true
	for _, res := range results {
		ok = ok && res.OK
		enc.Encode(res)
	}
	if !ok {
		return ErrFailed
	}
	return nil
}

func exportCmd(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	var o options
	fs := o.flags("export", getenv, stderr)
	site := fs.String("site", "", "the site to export (required when the database holds several)")
	format := fs.String("format", "ndjson", "ndjson, csv or iso27560")
	from := fs.String("from", "", "first day or time (inclusive)")
	to := fs.String("to", "", "last day (inclusive) or time (exclusive)")
	id := fs.String("consent-id", "", "only this visitor")
	out := fs.String("out", "", "write to this file instead of standard output")
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
	exp, err := export.New(*format, siteCfg, w)
	if err != nil {
		return err
	}
	// An export allocates short-lived rows and keeps nothing: collecting
	// less often makes it about a third faster for ~10 MB more memory.
	debug.SetGCPercent(400)
	if err := db.Scan(ctx, f, exp.Write); err != nil {
		return err
	}
	return exp.Close()
}

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

func keysCmd(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	var o options
	fs := o.flags("keys", getenv, stderr)
	site := fs.String("site", "", "the site whose audit key to print (audit-key)")
	publicURL := fs.String("public-url", getenv("KOEKJE_PUBLIC_URL"), "the server's public URL, which names the log (log-key)")
	if err := parseAnywhere(fs, args); err != nil {
		return err
	}
	action := fs.Arg(0)
	if action == "audit-key" {
		return auditKeyCmd(ctx, &o, *site, stdout)
	}
	if action == "log-key" {
		return logKeyCmd(ctx, &o, *publicURL, stdout)
	}
	if action != "list" && action != "rotate" {
		return errors.New("usage: koekje keys [flags] list|rotate|audit-key --site S|log-key --public-url URL")
	}
	db, err := o.openDB(nil)
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

// tokenCmd makes a new admin token and prints the config entry holding its hash.
func tokenCmd(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("token", flag.ContinueOnError)
	fs.SetOutput(stderr)
	name := fs.String("name", "auditor", "the token's name")
	scope := fs.String("scope", "audit", "audit (read and export) or admin")
	if err := parseAnywhere(fs, args); err != nil {
		return err
	}
	tok := newToken()
	sum := sha256.Sum256([]byte(tok))
	fmt.Fprintf(stdout, "token (give it to the holder; it is not stored): %s\n\nconfig entry:\ntokens:\n  - name: %s\n    scope: %s\n    sha256: sha256:%s\n",
		tok, *name, *scope, hex.EncodeToString(sum[:]))
	return nil
}

// checkConfigCmd validates a configuration and prints it as a site owner
// reads it: categories, services and cookies.
func checkConfigCmd(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("check-config", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprintln(stderr, "usage: koekje check-config FILE") }
	if err := parseAnywhere(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return errors.New("usage: koekje check-config FILE")
	}
	args = fs.Args()
	cfg, err := config.LoadFile(args[0])
	if err != nil {
		return err
	}
	w := bufio.NewWriter(stdout)
	defer w.Flush()
	for _, s := range cfg.Sites {
		fmt.Fprintf(w, "site %s — %s (revision %d, choices kept %d months, languages %v)\n", s.ID, s.Name, s.Revision, s.ChoiceMonths, s.Languages)
		for _, c := range s.Categories {
			req := ""
			if c.Required {
				req = ", always on"
			}
			fmt.Fprintf(w, "  %s: %s%s\n", c.ID, c.Title[s.DefaultLanguage], req)
			for _, sv := range s.Services {
				if sv.Category != c.ID {
					continue
				}
				fmt.Fprintf(w, "    %s (%s)\n", sv.ID, sv.Provider)
				for _, ck := range sv.Cookies {
					fmt.Fprintf(w, "      %-22s %-8s %s\n", ck.Name, ck.Duration, ck.Purpose[s.DefaultLanguage])
				}
			}
		}
	}
	fmt.Fprintln(w, "configuration is valid")
	return nil
}
