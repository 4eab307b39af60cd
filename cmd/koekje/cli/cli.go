// Package cli is the koekje command: its subcommands, their flags and
// what they print, and the wiring from flags and environment to config,
// store and server. The command's main only calls Run, so tests can run
// it in-process, and a test binary can stand in for the built program.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"slices"
	"strings"

	"github.com/koekje/koekje/config"
	"github.com/koekje/koekje/server/store"
)

// Run runs the command line args (without the program's name), reading the
// environment through getenv: the whole of koekje but for the process's
// signals and exit code, which main owns. An error that is ErrFailed was
// already reported on stdout or stderr.
func Run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cmd := commands[0].name
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		cmd, args = args[0], args[1:]
	} else if len(args) > 0 && (args[0] == "-h" || args[0] == "-help" || args[0] == "--help") {
		fmt.Fprint(stdout, usage())
		return nil
	}
	if cmd == "help" {
		fmt.Fprint(stdout, usage())
		return nil
	}
	if c := lookupCommand(cmd); c != nil {
		return c.run(ctx, args, getenv, stdout, stderr)
	}
	fmt.Fprint(stderr, usage())
	if ext := strings.ToLower(filepath.Ext(cmd)); ext == ".yaml" || ext == ".yml" {
		return fmt.Errorf("unknown command %q: did you mean koekje serve --config %s?", cmd, cmd)
	}
	return fmt.Errorf("unknown command %q", cmd)
}

// parseAnywhere parses flags wherever they stand among the arguments, so
// "koekje lookup ID --db X" reads --db as "koekje lookup --db X ID" does.
// After "--" everything is an argument.
func parseAnywhere(fs *flag.FlagSet, args []string) error {
	var rest []string
	for {
		if err := fs.Parse(args); err != nil {
			return err
		}
		if fs.NArg() == 0 {
			break
		}
		if len(args) > len(fs.Args()) && args[len(args)-len(fs.Args())-1] == "--" {
			rest = append(rest, fs.Args()...)
			break
		}
		rest = append(rest, fs.Arg(0))
		args = fs.Args()[1:]
	}
	if err := fs.Parse(append([]string{"--"}, rest...)); err != nil {
		return err
	}
	if flagsOnly[fs.Name()] && fs.NArg() > 0 {
		return strayArgument(fs, fs.Arg(0))
	}
	return nil
}

// strayArgument refuses an argument given to a command that takes only
// flags, naming the flag it was probably meant for: "koekje serve
// sites.yaml" must not serve the demo.
func strayArgument(fs *flag.FlagSet, arg string) error {
	msg := fmt.Sprintf("%s takes no arguments, only flags; got %q", fs.Name(), arg)
	if f := likelyFlag(fs, arg); f != "" {
		return fmt.Errorf("%s: did you mean %s?", msg, f)
	}
	return fmt.Errorf("%s (koekje %s -h lists its flags)", msg, fs.Name())
}

// likelyFlag guesses from its shape which of fs's flags arg was meant
// for, as the flag and arg to type; "" when none fits.
func likelyFlag(fs *flag.FlagSet, arg string) string {
	has := func(name string) bool { return fs.Lookup(name) != nil }
	lower := strings.ToLower(arg)
	name := strings.TrimLeft(arg, "-")
	ext := filepath.Ext(lower)
	_, _, hostPort := net.SplitHostPort(arg)
	switch {
	case has(name):
		if b, ok := fs.Lookup(name).Value.(interface{ IsBoolFlag() bool }); ok && b.IsBoolFlag() {
			return "--" + name
		}
		return "--" + name + " …"
	case (ext == ".yaml" || ext == ".yml") && has("config"):
		return "--config " + arg
	case (isDSN(arg) || ext == ".db" || ext == ".sqlite" || ext == ".sqlite3") && has("db"):
		return "--db " + arg
	case ext == ".key" && has("key-file"):
		return "--key-file " + arg
	case (strings.HasPrefix(lower, "https://") || strings.HasPrefix(lower, "http://")) && has("public-url"):
		return "--public-url " + arg
	case hostPort == nil && has("addr"):
		return "--addr " + arg
	case has("site") && !strings.ContainsAny(arg, "/.:"):
		return "--site " + arg
	case has("out"):
		return "--out " + arg
	case has("to"):
		return "--to " + arg
	}
	return ""
}

// minAdminToken is the shortest admin token accepted: one guessable by
// trying is no protection.
const minAdminToken = 24

// options shared by the commands that open the database.
type options struct {
	addr, db, keyFile, config, adminToken, trustedProxies, publicURL string
	rateLimit                                                        float64
	maxDBSize                                                        int64
}

func (o *options) flags(name string, getenv func(string) string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.db, "db", envOr(getenv, "KOEKJE_DB", "koekje.db"), "SQLite database file, or a PostgreSQL DSN postgres://… (KOEKJE_DB)")
	fs.StringVar(&o.keyFile, "key-file", getenv("KOEKJE_KEY_FILE"), "key file sealing the database's keys, mode 0600; the database's path + .key when empty, made on first start (KOEKJE_KEY_FILE)")
	fs.StringVar(&o.config, "config", getenv("KOEKJE_CONFIG"), "site configuration YAML; the demo site when empty (KOEKJE_CONFIG)")
	return fs
}

// openDB opens the database with its key file, making both when missing
// and upgrading the schema: for the commands whose job that is (serve,
// keys log-key).
func (o *options) openDB(log *slog.Logger) (store.Store, error) {
	return o.openStore(log, false)
}

// openExisting opens the database as it is: every other command works on
// a database that exists, with its key file, at this binary's schema.
func (o *options) openExisting() (store.Store, error) {
	return o.openStore(nil, true)
}

func envOr(getenv func(string) string, k, def string) string {
	if v := getenv(k); v != "" {
		return v
	}
	return def
}

func loadConfig(path string) (*config.Config, error) {
	if path == "" {
		return config.Demo(), nil
	}
	return config.LoadFile(path)
}

// ErrFailed makes the command exit non-zero after it printed why.
var ErrFailed = errors.New("failed")

// open loads the config and opens the database for an auditor command.
func (o *options) open(ctx context.Context) (*config.Config, store.Store, error) {
	cfg, err := loadConfig(o.config)
	if err != nil {
		return nil, nil, err
	}
	db, err := o.openExisting()
	return cfg, db, err
}

// openSites opens the database and returns the site named by --site, or
// every site the database holds: an auditor command works from what the
// database holds, never from a configuration that may not describe it.
func (o *options) openSites(ctx context.Context, id string) ([]string, *config.Config, store.Store, error) {
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

// isDSN reports whether s names a database of a store that is not a file.
func isDSN(s string) bool {
	d, err := store.Lookup(s)
	return err == nil && !d.File()
}
