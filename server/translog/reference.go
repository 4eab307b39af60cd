package translog

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/koekje/koekje/server/keyfile"
)

// A Reference is the newest checkpoint this server signed or read validly
// signed, kept in a file beside the key file and sealed under it: never in
// the database, and never in a backup of it. Before the server signs on,
// it proves the database's tree consistent with its reference, so neither a
// database edited behind its back (a tail cut or rewritten) nor a restored
// backup makes it sign a fork of its own public log.
type Reference struct {
	path string
	kek  *keyfile.Key
	mu   sync.Mutex
	cp   Checkpoint
	set  bool
}

// referenceName names the sealed reference, as the key file seals it.
const referenceName = "log-reference"

// ReferencePath is the reference file of a key file.
func ReferencePath(kek *keyfile.Key) string { return kek.Path() + ".log-reference" }

// ErrNoReference is Check's error when there is no reference file: a log
// that is not empty cannot be told from a restored or edited one.
var ErrNoReference = errors.New("no log reference file")

// ErrInconsistent is the error of a tree that does not extend the reference.
var ErrInconsistent = errors.New("the log's tree is not consistent with the newest checkpoint this server signed or saw")

// OpenReference reads the reference file of kek, if there is one.
func OpenReference(kek *keyfile.Key) (*Reference, error) {
	r := &Reference{path: ReferencePath(kek), kek: kek}
	sealed, err := os.ReadFile(r.path)
	if errors.Is(err, os.ErrNotExist) {
		return r, nil
	}
	if err != nil {
		return nil, err
	}
	text, err := kek.Open(referenceName, sealed)
	if err != nil {
		return nil, fmt.Errorf("log reference %s: %w", r.path, err)
	}
	if r.cp, err = ParseCheckpoint(string(text)); err != nil {
		return nil, fmt.Errorf("log reference %s: %w", r.path, err)
	}
	r.set = true
	return r, nil
}

// Checkpoint returns the reference, and whether there is one.
func (r *Reference) Checkpoint() (Checkpoint, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.cp, r.set
}

// Check proves cp, a checkpoint of the log's tree whose stored hashes
// hashes reads, consistent with the reference: the same tree or one that
// only grew from it.
func (r *Reference) Check(cp Checkpoint, hashes tlog.HashReader) error {
	ref, ok := r.Checkpoint()
	if !ok {
		if cp.Size == 0 {
			return nil
		}
		return fmt.Errorf("%w beside the key file (%s) while the log holds %d leaves", ErrNoReference, r.path, cp.Size)
	}
	return Consistent(ref, cp, hashes)
}

// Consistent proves new, whose tree hashes reads, an extension of old.
func Consistent(old, new Checkpoint, hashes tlog.HashReader) error {
	switch {
	case new.Size < old.Size:
		return fmt.Errorf("%w: the log holds %d leaves, %d were signed before (a restored backup or a cut tail)", ErrInconsistent, new.Size, old.Size)
	case old.Size == 0:
		return nil
	case new.Size == old.Size:
		if new.Hash != old.Hash {
			return fmt.Errorf("%w: another tree of %d leaves was signed before (a rewritten tail)", ErrInconsistent, new.Size)
		}
		return nil
	}
	proof, err := tlog.ProveTree(new.Size, old.Size, hashes)
	if err == nil {
		err = tlog.CheckTree(proof, new.Size, new.Hash, old.Size, old.Hash)
	}
	if err != nil {
		return fmt.Errorf("%w: the tree of %d leaves does not extend the one of %d signed before (%v)", ErrInconsistent, new.Size, old.Size, err)
	}
	return nil
}

// Advance checks cp against the reference and makes it the reference,
// synced to disk before it returns. A checkpoint no newer than the
// reference leaves it as it is.
func (r *Reference) Advance(cp Checkpoint, hashes tlog.HashReader) error {
	if err := r.Check(cp, hashes); err != nil && !(errors.Is(err, ErrNoReference)) {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.set && cp.Size <= r.cp.Size {
		return nil
	}
	if err := r.write(cp); err != nil {
		return err
	}
	r.cp, r.set = cp, true
	return nil
}

// Accept makes cp the reference without a check: the operator's explicit
// word that the log's tree is the one to extend.
func (r *Reference) Accept(cp Checkpoint) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if cp.Size == 0 && r.set {
		return nil
	}
	if err := r.write(cp); err != nil {
		return err
	}
	r.cp, r.set = cp, true
	return nil
}

// write replaces the file atomically and durably: a temporary file synced,
// renamed over the reference, and the directory synced.
func (r *Reference) write(cp Checkpoint) error {
	sealed, err := r.kek.Seal(referenceName, []byte(cp.Text()))
	if err != nil {
		return err
	}
	tmp := r.path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("log reference: %w", err)
	}
	if _, err := f.Write(sealed); err != nil {
		f.Close()
		return fmt.Errorf("log reference: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("log reference: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("log reference: %w", err)
	}
	if err := os.Rename(tmp, r.path); err != nil {
		return fmt.Errorf("log reference: %w", err)
	}
	if d, err := os.Open(filepath.Dir(r.path)); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

// CheckpointReader is what keeping the reference needs of a store.
type CheckpointReader interface {
	LatestCheckpoint(ctx context.Context) ([]byte, error)
	LogHashes(ctx context.Context, indexes []int64) ([]tlog.Hash, error)
}

// Latest reads the store's newest checkpoint, verified under logKey, and
// the reader of its stored hashes; a store with no checkpoint gives the
// empty tree under the log's name, which a reference records too: a server
// killed before its first sync then finds that it made the log.
func Latest(ctx context.Context, store CheckpointReader, logKey string) (Checkpoint, tlog.HashReader, error) {
	cp, _, hashes, err := latestSigned(ctx, store, logKey)
	return cp, hashes, err
}

// latestSigned is Latest with the checkpoint's signed note (nil for the
// empty tree).
func latestSigned(ctx context.Context, store CheckpointReader, logKey string) (Checkpoint, []byte, tlog.HashReader, error) {
	hashes := tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) { return store.LogHashes(ctx, idx) })
	signed, err := store.LatestCheckpoint(ctx)
	if err != nil || signed == nil {
		name, _, _ := strings.Cut(logKey, "+")
		return Checkpoint{Origin: name}, nil, hashes, err
	}
	cp, _, err := OpenCheckpoint(signed, logKey)
	return cp, signed, hashes, err
}
