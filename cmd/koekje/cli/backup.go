package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/koekje/koekje/server/store"
)

func backupCmd(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("backup", flag.ContinueOnError)
	fs.SetOutput(stderr)
	db := fs.String("db", envOr(getenv, "KOEKJE_DB", "koekje.db"), "the SQLite database to back up; a server may be running on it (KOEKJE_DB)")
	to := fs.String("to", "", "the new file the copy is written to")
	if err := parseAnywhere(fs, args); err != nil {
		return err
	}
	switch {
	case *to == "":
		return errors.New("usage: koekje backup --to FILE [--db koekje.db]")
	}
	d, err := store.Lookup(*db)
	if err != nil {
		return err
	}
	if d.Backup == nil {
		return fmt.Errorf("koekje backup copies a database file; back up %s with its own tools, such as pg_dump or your provider's snapshots (see \"Back up and restore\" in the README)", d.Name)
	}
	prog := newProgress(stderr)
	defer prog.close()
	prog.working("backing up " + *db)
	if err := d.Backup(ctx, *db, *to); err != nil {
		return err
	}
	var size int64
	if fi, err := os.Stat(*to); err == nil {
		size = fi.Size()
	}
	prog.end("koekje backup: %.1f MiB written to %s", float64(size)/(1<<20), *to)
	fmt.Fprintf(stdout, "backed up %s to %s: keep the key file apart (once), and never back up or restore its .log-reference\n", *db, *to)
	return nil
}
