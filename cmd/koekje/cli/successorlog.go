package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/koekje/koekje/server/store"
	"github.com/koekje/koekje/server/translog"
)

// successorLogCmd makes the database's log a successor of itself, under a
// new name and key: the way out when the log is held and no published
// tiles of its missing leaves were kept (recover-log cannot restore them),
// and the way to move a log to a new public URL. The successor carries the
// leaves the database holds and states in its first new entry what it
// succeeds and which leaves of the old log it does not hold; the old name
// never signs again.
func successorLogCmd(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	var o options
	fs := o.flags("successor-log", getenv, stderr)
	publicURL := fs.String("public-url", getenv("KOEKJE_PUBLIC_URL"), "the public URL the successor is served at, which names it; under the old log's URL, or with none, the old name with a generation: …/log/2 (KOEKJE_PUBLIC_URL)")
	if err := parseAnywhere(fs, args); err != nil {
		return err
	}
	if !strings.Contains(o.db, "://") {
		release, err := lockServe(o.db)
		if err != nil {
			return fmt.Errorf("%w: stop it first, then make the successor log", err)
		}
		defer release()
	}
	db, err := o.openExisting()
	if err != nil {
		return err
	}
	defer db.Close()
	ls, ok := db.(store.LogSuccessor)
	if !ok {
		return fmt.Errorf("%s cannot make a successor log", o.dbName())
	}
	old, err := db.LogSigner(ctx)
	if err != nil {
		return err
	}
	if old == nil {
		return fmt.Errorf("database %s keeps no log", o.dbName())
	}
	s, err := successorOf(ctx, db, ls, old)
	if err != nil {
		return err
	}
	want := ""
	if *publicURL != "" {
		want = logOrigin(*publicURL)
	}
	held := s.Carried < s.Predecessor.Size
	if !held && (want == "" || translog.SameLog(old.Origin(), want)) {
		return fmt.Errorf("the log %s holds every leaf it signed (%d) and keeps its name: there is nothing to succeed; to move it to a new public URL, give that URL (--public-url)", old.Origin(), s.Predecessor.Size)
	}
	earlier, err := db.EarlierLogKeys(ctx)
	if err != nil {
		return err
	}
	var used []string
	for _, k := range earlier {
		name, _, _ := strings.Cut(k, "+")
		used = append(used, name)
	}
	s.Origin = translog.SuccessorOrigin(old.Origin(), want, used)
	signer, cp, err := ls.SucceedLog(ctx, s)
	if err != nil {
		return err
	}
	ref, err := translog.OpenReference(db.KeyFile())
	if err != nil {
		return err
	}
	if err := ref.Accept(cp); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "the log %s is succeeded by the log %s\n  old log key: %s\n  new log key: %s\n", old.Origin(), signer.Origin(), old.VerifierKey(), signer.VerifierKey())
	fmt.Fprintf(stdout, "%s\n", s.Gap())
	fmt.Fprintf(stdout, "the statement is leaf %d of the new log, whose checkpoint (%d leaves) is the log reference now; koekje serve signs on from it and appends the records that waited\n", s.Carried, cp.Size)
	fmt.Fprintf(stdout, "give the new log key to the log's witnesses and auditors (koekje witness --log-key, koekje log-audit --log-key): they know only the old one, which verifies the old log's checkpoints and receipts and signs nothing again\n")
	fmt.Fprintf(stdout, "keep the new log's tiles (koekje backup --tiles, koekje log-audit --state) apart from the old log's: backup --tiles refuses a directory that holds another log's\n")
	return nil
}

// successorOf is the statement of a successor to the log old signs, but
// its name: the old log's last checkpoint (the reference beside the key
// file, which is the newest it signed or saw cosigned, or the database's
// own newest when that is newer and extends it) and the leaves the
// database holds of it.
func successorOf(ctx context.Context, db store.Store, ls store.LogSuccessor, old *translog.Signer) (*translog.Successor, error) {
	have, err := ls.LogSize(ctx)
	if err != nil {
		return nil, err
	}
	newest, hashes, err := translog.Latest(ctx, db, old.VerifierKey())
	if err != nil {
		return nil, fmt.Errorf("the log's newest checkpoint: %w", err)
	}
	if newest.Size != have {
		return nil, fmt.Errorf("the database's log holds %d leaves and its newest checkpoint %d", have, newest.Size)
	}
	signed, err := db.LatestCheckpoint(ctx)
	if err != nil {
		return nil, err
	}
	ref, err := translog.OpenReference(db.KeyFile())
	if err != nil {
		return nil, err
	}
	last := newest
	kept, hasRef := ref.Checkpoint()
	switch {
	case !hasRef:
	case kept.Origin != old.Origin():
		return nil, fmt.Errorf("the log reference beside the key file (%s) is of the log %s, not of this database's %s", translog.ReferencePath(db.KeyFile()), kept.Origin, old.Origin())
	case translog.Consistent(kept, newest, hashes) == nil:
	case newest.Size < kept.Size:
		// The reference is a checkpoint this key signed or a witness
		// cosigned; signed again, it is the same note.
		last = kept
		if signed, err = old.Sign(kept.Size, kept.Hash); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("the database's tree of %d leaves is not the one the log signed (the reference at %s holds %d): a rewritten tail, which a successor must not carry", have, translog.ReferencePath(db.KeyFile()), kept.Size)
	}
	// A witness's cosigned note of that checkpoint says more than the
	// log's own signature: it is carried instead.
	if w, err := db.LatestWitnessed(ctx); err == nil && w != nil {
		if wcp, _, err := translog.OpenCheckpoint(w, old.VerifierKey()); err == nil && wcp == last {
			signed = w
		}
	}
	if signed == nil && last.Size == 0 { // a log that never signed: its empty tree
		if last.Hash, err = tlog.TreeHash(0, hashes); err != nil {
			return nil, err
		}
		if signed, err = old.Sign(0, last.Hash); err != nil {
			return nil, err
		}
	}
	if signed == nil || !bytes.HasPrefix(signed, []byte(last.Text())) {
		return nil, errors.New("the old log's last checkpoint could not be read")
	}
	return &translog.Successor{Predecessor: last, PredecessorKey: old.VerifierKey(), Signed: signed, Carried: have}, nil
}

// followSuccessor moves the reference beside the key file, if it is of an
// earlier name of the log, to the successor that carries it: an instance
// that did not run successor-log (another PostgreSQL instance) signs on.
func followSuccessor(ctx context.Context, db store.Store, logKey string, log *slog.Logger) error {
	earlier, err := db.EarlierLogKeys(ctx)
	if err != nil || len(earlier) == 0 {
		return err
	}
	ref, err := translog.OpenReference(db.KeyFile())
	if err != nil {
		return err
	}
	return translog.FollowSuccessor(ctx, db, ref, logKey, earlier, log)
}
