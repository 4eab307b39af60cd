package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/koekje/koekje/server/store"
	"github.com/koekje/koekje/server/translog"
)

// migrateStoreCmd copies a SQLite store into an empty PostgreSQL database,
// verifies every chain there, and only then commits the copy (store.Copy).
func migrateStoreCmd(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("migrate-store", flag.ContinueOnError)
	fs.SetOutput(stderr)
	from := fs.String("from", "", "the SQLite database to copy (required); no koekje serve may be running on it")
	fromKey := fs.String("from-key-file", "", "the key file of --from; its path + .key when empty")
	to := fs.String("to", "", "the empty PostgreSQL database to copy into, postgres://… (required)")
	keyFile := fs.String("key-file", getenv("KOEKJE_KEY_FILE"), "the key file that seals the secrets in --to, made when missing; every instance on --to is given it (KOEKJE_KEY_FILE; required)")
	dropLog := fs.Bool("drop-log", false, "leave the source's transparency log behind: the target starts a new log, with a new key, over every copied record")
	if err := parseAnywhere(fs, args); err != nil {
		return err
	}
	switch {
	case *from == "":
		return errors.New("--from is required: the SQLite database to copy")
	case isDSN(*from):
		return errors.New("--from must be a SQLite database file: migrate-store copies from SQLite to PostgreSQL")
	case *to == "":
		return errors.New("--to is required: the PostgreSQL database to copy into, postgres://…")
	case *keyFile == "":
		return errors.New("--key-file is required: the key file that will seal the secrets in the PostgreSQL database (made when missing; give it to every instance)")
	}
	toDriver, err := store.Lookup(*to)
	if err != nil {
		return fmt.Errorf("--to: %w", err) // it names the DSN's scheme, never its password
	}
	if toDriver.BeginImport == nil {
		return fmt.Errorf("--to %q is not a PostgreSQL DSN: give postgres://user@host/db", *to)
	}
	if fi, err := os.Stat(*from); err != nil {
		return fmt.Errorf("--from: %w", err)
	} else if !fi.Mode().IsRegular() {
		return fmt.Errorf("--from %s is not a database file", *from)
	}
	// Held until the copy is done: a server started on the source meanwhile
	// would take records the copy misses.
	release, err := lockServe(*from)
	if err != nil {
		return fmt.Errorf("--from: %w; stop it first, so no record is taken after the copy", err)
	}
	defer release()
	opened, _, err := store.Open(ctx, *from, store.Options{KeyFile: *fromKey})
	if err != nil {
		return fmt.Errorf("--from: %w", err)
	}
	defer opened.Close()
	src, ok := opened.(store.Source)
	if !ok {
		return fmt.Errorf("--from %s: this store cannot be copied", *from)
	}
	imp, err := toDriver.BeginImport(ctx, *to, *keyFile)
	if err != nil {
		return fmt.Errorf("--to: %w", err)
	}
	defer imp.Rollback()
	prog := newProgress(stderr)
	defer prog.close()
	c := &store.Copy{Src: src, Dst: imp, SrcName: *from, DropLog: *dropLog, Progress: prog,
		Warn: func(msg string) { fmt.Fprintf(stderr, "koekje: %s\n", msg) }}
	// Whatever stops the copy before its commit leaves the target as empty
	// as it was: the transaction is rolled back (or, if the process dies,
	// dropped by PostgreSQL with its connection).
	interrupted := func(err error) error {
		if ctx.Err() != nil {
			return errors.New("interrupted: nothing was committed, the target database is as empty as it was")
		}
		return fmt.Errorf("%w; nothing was committed, the target database is as empty as it was", err)
	}
	start := time.Now()
	sum, err := c.Run(ctx)
	if err != nil {
		return interrupted(err)
	}
	prog.close()
	fmt.Fprintf(stderr, "koekje: copied %d records in %s; verifying every chain on the copy\n", sum.Records, time.Since(start).Round(time.Millisecond))
	prog = newProgress(stderr)
	defer prog.close()
	c.Progress = prog
	ok, err = c.Verify(ctx)
	if err != nil {
		return interrupted(err)
	}
	prog.end("koekje: verified %d records on the copy", prog.total.Load())
	enc := json.NewEncoder(stdout)
	for _, sc := range c.Sites() {
		enc.Encode(sc)
	}
	sum.OK = ok
	if !ok {
		enc.Encode(sum)
		fmt.Fprintln(stderr, "koekje: a site does not verify on the copy; nothing was committed, the target is still empty")
		return ErrFailed
	}
	var copied []byte
	if c.LogKey() != "" {
		if copied, err = imp.LatestCheckpoint(ctx); err != nil {
			return interrupted(err)
		}
	}
	if err := imp.Commit(ctx); err != nil {
		return fmt.Errorf("--to: %w", err)
	}
	// The copied log, verified above, is what the target's instances
	// extend: its newest checkpoint is their reference.
	if err := translog.ReferenceCopied(imp.KeyFile(), copied, c.LogKey()); err != nil {
		return err
	}
	return enc.Encode(sum)
}
