package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/koekje/koekje/server/store"
	"github.com/koekje/koekje/server/translog"
)

func backupCmd(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("backup", flag.ContinueOnError)
	fs.SetOutput(stderr)
	db := fs.String("db", envOr(getenv, "KOEKJE_DB", "koekje.db"), "the database to back up; a server may be running on it (KOEKJE_DB)")
	keyFile := fs.String("key-file", getenv("KOEKJE_KEY_FILE"), "the database's key file, for --tiles; the database's path + .key when empty (KOEKJE_KEY_FILE)")
	to := fs.String("to", "", "the new file the copy is written to (SQLite)")
	tiles := fs.String("tiles", "", "a directory that keeps the log's entry bundles and newest checkpoint, for koekje recover-log: it only grows, run it often")
	if err := parseAnywhere(fs, args); err != nil {
		return err
	}
	if *to == "" && *tiles == "" {
		return errors.New("usage: koekje backup --to FILE [--tiles DIR] [--db koekje.db], or koekje backup --tiles DIR")
	}
	d, err := store.Lookup(*db)
	if err != nil {
		return err
	}
	if *to != "" {
		if err := backupFile(ctx, d, *db, *to, stdout, stderr); err != nil {
			return err
		}
	}
	if *tiles == "" {
		return nil
	}
	s, _, err := store.Open(ctx, *db, store.Options{KeyFile: *keyFile, Existing: true})
	if err != nil {
		return err
	}
	defer s.Close()
	signer, err := s.LogSigner(ctx)
	if err != nil {
		return err
	}
	if signer == nil {
		return fmt.Errorf("%s keeps no log: there are no tiles to keep", d.Redacted(*db))
	}
	size, err := translog.SaveTiles(ctx, s, signer.VerifierKey(), *tiles)
	if err != nil {
		return fmt.Errorf("keep the log's tiles in %s: %w", *tiles, err)
	}
	fmt.Fprintf(stdout, "kept the log's tiles in %s: %d leaves; koekje recover-log --tiles %s restores them into a restored database\n", *tiles, size, *tiles)
	return nil
}

// backupFile writes a consistent copy of the database at db to a new file.
func backupFile(ctx context.Context, d *store.Driver, db, to string, stdout, stderr io.Writer) error {
	if d.Backup == nil {
		return fmt.Errorf("koekje backup copies a database file; back up %s with its own tools, such as pg_dump or your provider's snapshots (see \"Back up and restore\" in the README); --tiles keeps its log's tiles", d.Name)
	}
	prog := newProgress(stderr)
	defer prog.close()
	prog.working("backing up " + db)
	if err := d.Backup(ctx, db, to); err != nil {
		return err
	}
	var size int64
	if fi, err := os.Stat(to); err == nil {
		size = fi.Size()
	}
	prog.end("koekje backup: %.1f MiB written to %s", float64(size)/(1<<20), to)
	fmt.Fprintf(stdout, "backed up %s to %s: keep the key file apart (once), and never back up or restore its .log-reference\n", db, to)
	return nil
}
