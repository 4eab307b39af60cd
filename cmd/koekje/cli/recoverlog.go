package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/koekje/koekje/server/store"
	"github.com/koekje/koekje/server/translog"
)

func recoverLogCmd(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	var o options
	fs := o.flags("recover-log", getenv, stderr)
	tiles := fs.String("tiles", "", "the log's published tiles: a directory (a copy of the log's tile tree, or koekje log-audit's state directory) or a mirror's URL ending in /log/")
	if err := parseAnywhere(fs, args); err != nil {
		return err
	}
	if *tiles == "" {
		return errors.New("usage: koekje recover-log --tiles DIR|URL [--db koekje.db]")
	}
	if !strings.Contains(o.db, "://") {
		release, err := lockServe(o.db)
		if err != nil {
			return fmt.Errorf("%w: stop it first, then recover the log", err)
		}
		defer release()
	}
	db, err := o.openExisting()
	if err != nil {
		return err
	}
	defer db.Close()
	r, ok := db.(store.LogRestorer)
	if !ok {
		return fmt.Errorf("%s cannot restore its log's leaves", o.dbName())
	}
	signer, err := db.LogSigner(ctx)
	if err != nil {
		return err
	}
	if signer == nil {
		return fmt.Errorf("database %s keeps no log", o.dbName())
	}
	ref, err := translog.OpenReference(db.KeyFile())
	if err != nil {
		return err
	}
	cp, ok := ref.Checkpoint()
	if !ok {
		return fmt.Errorf("no log reference beside the key file (%s): nothing says which tree the log published; see \"Back up and restore\" in the README", translog.ReferencePath(db.KeyFile()))
	}
	have, err := r.LogSize(ctx)
	if err != nil {
		return err
	}
	if have >= cp.Size {
		return fmt.Errorf("the database's log holds %d leaves and the reference %d: there is nothing to restore", have, cp.Size)
	}
	source, err := translog.OpenTiles(ctx, *tiles, signer.Origin())
	if err != nil {
		return fmt.Errorf("%w; without tiles of the missing leaves, koekje successor-log succeeds the log by one that states the gap", err)
	}
	// The log may have published a newer checkpoint than the reference
	// holds (a reference file restored from an older copy; a server
	// publishes only what its reference holds): the tiles' own,
	// signed by the log, is the tree to restore then, lest the queued
	// records be appended over leaves already published.
	target := cp
	if signed, err := source.Get("checkpoint"); err == nil {
		if newer, _, err := translog.OpenCheckpoint(signed, signer.VerifierKey()); err == nil && newer.Size > cp.Size {
			target = newer
		}
	}
	missing, err := translog.MissingEntries(ctx, source, target, cp, db, have)
	if err != nil {
		return fmt.Errorf("the tiles of %s: %w; without tiles of the missing leaves, koekje successor-log succeeds the log by one that states the gap", *tiles, err)
	}
	if err := r.RestoreLog(ctx, have, missing, target); err != nil {
		return err
	}
	if target.Size > cp.Size {
		if err := ref.Accept(target); err != nil {
			return err
		}
	}
	lost := 0
	for _, e := range missing {
		if l, err := translog.ParseLeaf(e); err == nil && l.Kind == translog.KindRecord {
			lost++
		}
	}
	fmt.Fprintf(stdout, "restored leaves %d to %d of the log %s from %s: its tree is the one it published (%d leaves); koekje serve signs on from it and appends the records that waited\n",
		have, target.Size-1, signer.Origin(), *tiles, target.Size)
	if lost > 0 {
		fmt.Fprintf(stdout, "%d of those leaves are of records this database does not hold: made after the backup, they were lost with the restore, and koekje verify names them\n", lost)
	}
	return nil
}
