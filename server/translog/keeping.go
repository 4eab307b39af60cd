package translog

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/koekje/koekje/server/keyfile"
)

// CheckLogState holds the database's log against what this server signed
// or saw before, kept in the reference file beside the key file, and
// against the newest checkpoint each configured witness cosigned: a log
// that does not extend them (a restored backup, a tail cut or rewritten in
// the database) is refused, so the server never signs a fork of its own
// public log. Without a reference file, a log that is not empty needs a
// witness that confirms it, or the operator's --accept-log-state.
func CheckLogState(ctx context.Context, db CheckpointReader, kek *keyfile.Key, log *slog.Logger, logKey string, witnesses []*WitnessClient, accept bool) (*Reference, error) {
	ref, err := OpenReference(kek)
	if err != nil {
		return nil, err
	}
	cp, hashes, err := Latest(ctx, db, logKey)
	if err != nil {
		return nil, fmt.Errorf("the log's newest checkpoint: %w", err)
	}
	confirmed := 0
	for _, wc := range witnesses {
		signed, err := wc.Witnessed(ctx, cp.Origin, logKey)
		if err != nil {
			log.Warn("a witness's newest checkpoint could not be read to check the log against it", "witness", wc.URL, "err", err)
			continue
		}
		wcp, _, err := OpenCheckpoint(signed, logKey)
		if err != nil {
			return nil, err
		}
		if err := Consistent(wcp, cp, hashes); err != nil {
			return nil, fmt.Errorf("witness %s cosigned a checkpoint of %d leaves: %w; see \"Back up and restore\" in the README", wc.URL, wcp.Size, err)
		}
		confirmed++
	}
	err = ref.Check(cp, hashes)
	switch {
	case err == nil:
	case errors.Is(err, ErrNoReference) && (accept || confirmed > 0):
		log.Warn("no log reference file: the log's tree is taken as it is", "size", cp.Size, "confirmed_by_witnesses", confirmed, "accepted_by_flag", accept)
	case errors.Is(err, ErrNoReference):
		return nil, fmt.Errorf("%w: start with a witness that cosigned the log (--witness) or, if this database was moved here as it was, with --accept-log-state", err)
	default:
		ref0, _ := ref.Checkpoint()
		return nil, fmt.Errorf("%w; it signs nothing that would fork it: the database holds %d leaves, the reference %d (%s); see \"Back up and restore\" in the README", err, cp.Size, ref0.Size, ReferencePath(kek))
	}
	if err := ref.Accept(cp); err != nil && !errors.Is(err, ErrInconsistent) {
		return nil, err
	}
	return ref, nil
}

// advance moves the reference to the log's newest checkpoint.
func advance(ctx context.Context, db CheckpointReader, logKey string, ref *Reference) error {
	cp, hashes, err := Latest(ctx, db, logKey)
	if err != nil {
		return err
	}
	return ref.Advance(cp, hashes)
}

// AdvanceReference moves the reference a last time, at shutdown.
func AdvanceReference(ctx context.Context, db CheckpointReader, log *slog.Logger, logKey string, ref *Reference) {
	if err := advance(ctx, db, logKey, ref); err != nil {
		log.Error("the log no longer extends what this server signed before", "err", err)
	}
}

// ReferenceEvery is how often the reference follows the log: the newest
// checkpoint is proven consistent with the reference and synced to disk.
const ReferenceEvery = 250 * time.Millisecond

// KeepReference moves the reference along with the log while serving, and
// says so loudly, once per change, if the log stops extending it: an ERROR
// line, and why in degraded, which /healthz reports.
func KeepReference(ctx context.Context, db CheckpointReader, log *slog.Logger, logKey string, ref *Reference, degraded *atomic.Value) {
	tick := time.NewTicker(ReferenceEvery)
	defer tick.Stop()
	failing := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		err := advance(ctx, db, logKey, ref)
		switch {
		case err != nil && !failing && ctx.Err() == nil:
			log.Error("the log no longer extends what this server signed before", "err", err)
			degraded.Store("the log no longer extends what this server signed before: " + err.Error())
			failing = true
		case err == nil && failing:
			log.Info("the log extends what this server signed before again")
			degraded.Store("")
			failing = false
		}
	}
}

// ReferenceCopied makes the newest checkpoint of a log migrate-store copied
// and verified the reference beside the target's key file.
func ReferenceCopied(keyFile string, signed []byte, logKey string) error {
	if signed == nil {
		return nil
	}
	cp, _, err := OpenCheckpoint(signed, logKey)
	if err != nil {
		return err
	}
	kek, err := keyfile.Load(keyFile)
	if err != nil {
		return err
	}
	ref, err := OpenReference(kek)
	if err != nil {
		return err
	}
	return ref.Accept(cp)
}
